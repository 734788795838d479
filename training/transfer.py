"""`cgan-train --init-from RUN`: start a new run from another run's trained weights.

A few hundred photographs per class are too few to learn drawing from; a generator that
already draws (the shipped CIFAR-10 model's long run, or any run) only has to learn the new
classes. What is carried over, layer by layer (both models come from the same builders):

- G, D and the EMA generator from the source's newest checkpoint (not its optimisers: the
  new run's Adam starts fresh, as in FreezeD and StyleGAN2-ADA's transfer).
- Class-indexed weights (the generator's conditional batch-norm gains and biases, D's
  projection embedding and class head) row by row: a new label takes the row of the source
  label `--init-labels NEW=OLD` names, or with the same name, or the one the new label is a
  kind of in WordNet (english_springer: dog), else the mean of the source's rows.
- 32x32 -> 64x64: G grows by one up-block before its output layers, set to the identity
  (its shortcut copies the channels, its residual branch starts at zero), so the grown
  generator starts by drawing the source's images upsampled. D gets a fresh down-block after
  its first one, so the source's later blocks keep reading features at the scale they learnt.
- A wider generator (`--g-channels` above the source's): the source's is widened first,
  every new channel a copy of an old one, so it draws the same images (training/widen.py).
- D is carried over only when its shape matches (same width, both pixel or both projected);
  otherwise it starts fresh and the start line says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from cgan.common.errors import ImageNetError, TrainingError
from cgan.common.imagenet.wordnet import load_wordnet
from cgan.common.run_dir import RunDir
from cgan.training.config import TrainConfig, load_config
from cgan.training.models import build_discriminator, build_generator
from cgan.training.models.layers import ConditionalBatchNorm, ProjectionLogit
from cgan.training.widen import widen_generator

if TYPE_CHECKING:
    from cgan.training.trainer import GANTrainer

G_BLOCK_LAYERS = 5  # CBN, Conv, CBN, Conv, shortcut Conv: a generator block's weighted layers
G_HEAD_LAYERS = 2  # BatchNormalization, output Conv
D_FIRST_BLOCK_LAYERS = 3  # Conv, Conv, shortcut Conv


@dataclass(frozen=True)
class Source:
    """The run a new one starts from."""

    run_dir: Path
    config: TrainConfig
    checkpoint: Path

    def describe(self) -> str:
        progress = RunDir(self.run_dir).read_progress()
        hours = progress.get("cpu_hours") if isinstance(progress, dict) else None
        hours_text = f", {hours:.2f} CPU-hours" if isinstance(hours, int | float) else ""
        size = self.config.resolution
        return f"{self.run_dir} {self.checkpoint.name} ({size}x{size}{hours_text})"


def parse_label_map(text: str) -> dict[str, str]:
    """'new=old,new2=old2' -> {new: old}; the names are checked against both runs later."""
    pairs: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        new, sep, old = part.partition("=")
        if not sep or not new.strip() or not old.strip():
            raise TrainingError(f"init_labels: {part!r} is not NEW=OLD")
        pairs[new.strip()] = old.strip()
    return pairs


def open_source(config: TrainConfig) -> Source:
    """The source run named by config.init_from, checked against the new run's config."""
    run_dir = Path(config.init_from)
    if not RunDir(run_dir).config.is_file():
        raise TrainingError(f"--init-from {run_dir}: not a run folder (no config.toml)")
    source = load_config(run_dir)
    prefixes = RunDir(run_dir).checkpoint_prefixes()
    if not prefixes:
        raise TrainingError(f"--init-from {run_dir}: the run has no checkpoint")
    problems = []
    if source.arch != "sngan" or config.arch != "sngan":
        problems.append("only sngan runs can start from another run")
    if source.latent_dim != config.latent_dim:
        problems.append(f"latent_dim {config.latent_dim} (source has {source.latent_dim})")
    if config.g_channels < source.g_channels:
        problems.append(
            f"g_channels {config.g_channels} (source has {source.g_channels}; "
            "a generator can grow wider, not narrower)"
        )
    if (source.resolution, config.resolution) not in ((32, 32), (64, 64), (32, 64)):
        problems.append(
            f"resolution {config.resolution} from a {source.resolution}x{source.resolution} run"
        )
    if problems:
        raise TrainingError(f"--init-from {run_dir}: incompatible: " + "; ".join(problems))
    unknown_new = sorted(set(parse_label_map(config.init_labels)) - set(config.labels))
    unknown_old = sorted(set(parse_label_map(config.init_labels).values()) - set(source.labels))
    if unknown_new or unknown_old:
        raise TrainingError(
            "init_labels: "
            + "; ".join(
                [f"{n!r} is not a label of this run" for n in unknown_new]
                + [f"{o!r} is not a label of {run_dir}" for o in unknown_old]
            )
        )
    return Source(run_dir, source, prefixes[0])


def kinds_of(labels: list[str], source_labels: list[str]) -> dict[str, str]:
    """New label -> the source label it is a kind of in WordNet (english_springer -> dog,
    garbage_truck -> truck), by each label's most frequent noun sense; {} without WordNet."""
    try:
        wordnet = load_wordnet()
        kinds = {}
        closures = [
            (name, wordnet.closure(senses[:1]))
            for name in source_labels
            if (senses := wordnet.senses(name))
        ]
        for label in labels:
            senses = wordnet.senses(label)
            found = [name for name, closure in closures if senses and senses[0] in closure]
            if len(found) == 1:
                kinds[label] = found[0]
        return kinds
    except ImageNetError:  # wordnet-base is not installed, or its files are damaged
        return {}


def label_rows(config: TrainConfig, source: TrainConfig) -> list[int | None]:
    """Per new label, the source label whose weights it starts from (None: their mean): the
    one --init-labels names, else the same name, else the one it is a kind of in WordNet."""
    explicit = parse_label_map(config.init_labels)
    by_name = {name.lower(): name for name in source.labels}
    kinds = kinds_of(config.labels, source.labels)
    rows: list[int | None] = []
    for label in config.labels:
        old = explicit.get(label) or by_name.get(label.lower()) or kinds.get(label)
        rows.append(None if old is None else source.labels.index(old))
    return rows


def _take(array: np.ndarray, rows: list[int | None], axis: int) -> np.ndarray:
    """`array`'s slices along `axis` in the new label order; None takes their mean."""
    moved = np.moveaxis(array, axis, 0)
    mean = moved.mean(axis=0)
    picked = np.stack([moved[k] if k is not None else mean for k in rows])
    return np.moveaxis(picked, 0, axis)


def _weighted(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def _copy_layer(
    source: keras.layers.Layer,
    target: keras.layers.Layer,
    rows: list[int | None],
    class_head: bool = False,
) -> None:
    """All of a layer's weights; class-indexed ones row by row."""
    axes: dict[int, int] = {}
    if isinstance(target, ConditionalBatchNorm):
        axes = {2: 0, 3: 0}  # gain and bias tables [classes, channels]
    elif isinstance(target, ProjectionLogit):
        axes = {3: 0}  # the class embedding [classes, features]
    elif class_head:
        axes = {0: 1, 1: 1, 2: 0}  # kernel [features, classes], its power-iteration vector, bias
    for index, (mine, theirs) in enumerate(zip(target.weights, source.weights, strict=True)):
        value = np.asarray(theirs.numpy())
        if index in axes:
            value = _take(value, rows, axes[index])
        if tuple(value.shape) != tuple(mine.shape):
            raise TrainingError(
                f"--init-from: weight {mine.path} is {tuple(mine.shape)}, the source's "
                f"{tuple(value.shape)}"
            )
        mine.assign(value)


def _identity_block(layers: list[keras.layers.Layer]) -> None:
    """A generator block that passes its input through, upsampled: residual branch at zero,
    1x1 shortcut the identity."""
    _, _, _, last_conv, shortcut = layers
    kernel, bias = last_conv.weights
    kernel.assign(np.zeros(kernel.shape, np.float32))
    bias.assign(np.zeros(bias.shape, np.float32))
    kernel, bias = shortcut.weights
    channels = kernel.shape[-1]
    kernel.assign(np.eye(channels, dtype=np.float32).reshape(1, 1, channels, channels))
    bias.assign(np.zeros(bias.shape, np.float32))


def copy_generator(source: keras.Model, target: keras.Model, rows: list[int | None]) -> None:
    mine, theirs = _weighted(target), _weighted(source)
    grown = len(mine) - len(theirs)
    if grown not in (0, G_BLOCK_LAYERS):
        raise TrainingError("--init-from: the generators differ by more than one block")
    body = len(theirs) - G_HEAD_LAYERS
    pairs = list(zip(theirs[:body], mine[:body], strict=True))
    pairs += list(zip(theirs[body:], mine[body + grown :], strict=True))
    for their_layer, my_layer in pairs:
        _copy_layer(their_layer, my_layer, rows)
    if grown:
        _identity_block(mine[body : body + grown])


def copy_discriminator(
    source: keras.Model, target: keras.Model, rows: list[int | None], class_heads: tuple[bool, bool]
) -> None:
    """Pixel D's blocks in order, a fresh block after the first where the target is larger;
    the class head only where both have one."""
    theirs, mine = _weighted(source), _weighted(target)
    their_head = theirs.pop() if class_heads[0] else None
    my_head = mine.pop() if class_heads[1] else None
    grown = len(mine) - len(theirs)
    pairs = list(zip(theirs[:D_FIRST_BLOCK_LAYERS], mine[:D_FIRST_BLOCK_LAYERS], strict=True))
    pairs += list(
        zip(theirs[D_FIRST_BLOCK_LAYERS:], mine[D_FIRST_BLOCK_LAYERS + grown :], strict=True)
    )
    for their_layer, my_layer in pairs:
        _copy_layer(their_layer, my_layer, rows)
    if their_head is not None and my_head is not None:
        _copy_layer(their_head, my_head, rows, class_head=True)


def d_transferable(config: TrainConfig, source: TrainConfig) -> str | None:
    """Why D cannot be carried over, or None."""
    if source.imagenet_projected != config.imagenet_projected:
        return "one discriminator is projected, the other is not"
    names = ["d_channels"]
    if config.imagenet_projected:  # its heads read the resized images: resolution is free
        names += ["projected_size", "projected_endpoints", "projected_mixing"]
    for name in names:
        if getattr(source, name) != getattr(config, name):
            return f"{name} {getattr(config, name)} (source has {getattr(source, name)})"
    return None


def freeze_lower_blocks(discriminator: keras.Model, count: int) -> None:
    """FreezeD (Mo et al. 2020): D's first `count` residual blocks keep their weights; the
    blocks end at its Add layers. Called before the optimiser is built."""
    passed = 0
    for layer in discriminator.layers:
        if passed >= count:
            return
        if isinstance(layer, keras.layers.Add):
            passed += 1
        elif layer.weights:
            layer.trainable = False


def initialise_from(trainer: GANTrainer, source: Source) -> str:
    """Load the source's newest checkpoint into the new run's models; returns the one line
    that says what was carried over."""
    config = trainer.config
    spec = source.config.model_spec()
    their_g = build_generator(spec)
    their_ema = build_generator(spec, name="ema_generator")
    their_d = build_discriminator(spec)
    status = tf.train.Checkpoint(
        generator=their_g, discriminator=their_d, ema_generator=their_ema
    ).restore(str(source.checkpoint))
    try:
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        raise TrainingError(f"--init-from {source.checkpoint}: unreadable ({exc})") from None
    widened = config.g_channels != spec.g_channels
    if widened:  # the same seed: G and its EMA copy the same channels with the same noise
        wide_spec = replace(spec, g_channels=config.g_channels)
        their_g, their_ema = (
            widen_generator(model, build_generator(wide_spec, name=model.name), config.seed)
            for model in (their_g, their_ema)
        )
    rows = label_rows(config, source.config)
    copy_generator(their_g, trainer.generator, rows)
    copy_generator(their_ema, trainer.ema_generator, rows)
    why_not_d = d_transferable(config, source.config)
    if why_not_d is None:
        heads = (source.config.aux_weight > 0, config.aux_weight > 0)
        copy_discriminator(their_d, trainer.discriminator, rows, heads)
    matched = [
        f"{label}<-{source.config.labels[k]}"
        for label, k in zip(config.labels, rows, strict=True)
        if k is not None
    ]
    grown = source.config.resolution != config.resolution
    return (
        f"initialised from {source.describe()}: G and EMA G"
        + (", D" if why_not_d is None else f"; D fresh ({why_not_d})")
        + (f"; G widened {spec.g_channels}->{config.g_channels} channels" if widened else "")
        + (f"; G grown to {config.resolution}x{config.resolution}" if grown else "")
        + f"; labels {', '.join(matched) if matched else 'none matched'} (the rest from the mean)"
    )

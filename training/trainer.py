"""The GAN's compiled train step, EMA generator and checkpoint state (TensorFlow-specific)."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import tensorflow as tf

from cgan.common.cli import first_line
from cgan.common.run_dir import RunDir
from cgan.training.augment import diff_augment
from cgan.training.config import TrainConfig
from cgan.training.losses import LOSSES
from cgan.training.models import build_discriminator, build_generator

METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")
AUX_METRIC_NAMES = ("d_class", "g_class")  # the auxiliary class head's cross-entropies


def _class_loss(labels: tf.Tensor, class_logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=tf.cast(class_logits, tf.float32)
        )
    )


class GANTrainer:
    """Owns G, D, the EMA copy of G, both optimisers and every counter a resume needs."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy, run: RunDir) -> None:
        self.config = config
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self.d_loss_fn, self.g_loss_fn = LOSSES[config.arch]
        spec = config.model_spec()
        with strategy.scope():
            self.generator = build_generator(spec)
            self.discriminator = build_discriminator(spec)
            self.ema_generator = build_generator(spec, name="ema_generator")
            self.ema_generator.set_weights(self.generator.get_weights())
            self.g_optimizer = self._optimizer(config.g_lr)
            self.d_optimizer = self._optimizer(config.d_lr)
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.pretrain_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="pretrain_step"
            )
            # Training CPU time summed over every session, saved with each checkpoint.
            self.cpu_seconds = tf.Variable(
                0.0, dtype=tf.float64, trainable=False, name="cpu_seconds"
            )
            self.noise_rng = tf.random.Generator.from_seed(config.seed)
            self.augment_seed = keras.random.SeedGenerator(config.seed + 1)
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            ema_generator=self.ema_generator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            pretrain_step=self.pretrain_step,
            cpu_seconds=self.cpu_seconds,
            noise_rng=self.noise_rng,
            augment_seed=self.augment_seed.state,
        )
        self.run = run
        self.manager = self._manager()

    def _manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(
            self.checkpoint,
            str(self.run.checkpoints),
            max_to_keep=self.config.keep_checkpoints,
            checkpoint_name="ckpt",
        )

    def _optimizer(self, learning_rate: float) -> keras.optimizers.Optimizer:
        optimizer = keras.optimizers.Adam(
            learning_rate, beta_1=self.config.beta1, beta_2=self.config.beta2
        )
        if self.config.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    # --- state -------------------------------------------------------------------------

    def restore_latest(self) -> str | None:
        """Restore the newest readable checkpoint, if any; returns its path.

        A checkpoint that cannot be read (a crash mid-write, a damaged disk) is moved to
        checkpoints/damaged/ with one line on stderr, and the one before it is used: at most
        one checkpoint interval of training is lost, never the run."""
        skipped = False
        for prefix in self.run.checkpoint_prefixes():
            try:
                self.checkpoint.restore(str(prefix)).assert_existing_objects_matched()
            except Exception as exc:  # TF raises OpError, IndexError, ValueError... here
                reason = first_line(exc)
                folder = self.run.set_aside(prefix)
                print(
                    f"checkpoint {prefix.name} is unreadable ({reason}); moved to {folder}, "
                    "trying the one before it",
                    file=sys.stderr,
                )
                skipped = True
                continue
            if skipped:
                self._rewrite_state(prefix)
            return str(prefix)
        if skipped:
            self._rewrite_state(None)
        return None

    def _rewrite_state(self, latest: Path | None) -> None:
        """Point TensorFlow's `checkpoint` file at the checkpoints that remain."""
        remaining = [str(p) for p in reversed(self.run.checkpoint_prefixes())]
        state = self.run.checkpoints / "checkpoint"
        if latest is None:
            state.unlink(missing_ok=True)
        else:
            tf.compat.v1.train.update_checkpoint_state(
                str(self.run.checkpoints), str(latest), all_model_checkpoint_paths=remaining
            )
        self.manager = self._manager()

    def save(self) -> str:
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def examples_seen(self, global_batch: int) -> int:
        """Real examples D has consumed so far: where the data stream resumes."""
        d_batches = int(self.step.numpy()) * self.config.d_steps + int(self.pretrain_step.numpy())
        return d_batches * global_batch

    # --- steps (run inside tf.function) --------------------------------------------------

    def _augment(self, images: tf.Tensor) -> tf.Tensor:
        if not self.config.augmentations:
            return images
        return diff_augment(images, self.config.augmentations, self.augment_seed)

    def _noise(self, batch: tf.Tensor) -> tf.Tensor:
        return self.noise_rng.normal((batch, self.config.latent_dim))

    def _discriminate(
        self, images: tf.Tensor, labels: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(real/fake logits, class logits or None) in float32."""
        outputs = self.discriminator([images, labels], training=True)
        if self.config.aux_weight > 0:
            logits, class_logits = outputs
            return tf.cast(logits, tf.float32), tf.cast(class_logits, tf.float32)
        return tf.cast(outputs, tf.float32), None

    def _d_replica_step(self, real: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(labels)[0]
        fake = self.generator([self._noise(batch), labels], training=True)
        both_labels = tf.concat([labels, labels], axis=0)
        with tf.GradientTape() as tape:
            images = self._augment(tf.concat([real, tf.cast(fake, real.dtype)], axis=0))
            logits, class_logits = self._discriminate(images, both_labels)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            adversarial = self.d_loss_fn(real_logits, fake_logits)
            loss = adversarial
            if class_logits is not None:  # the class head learns from real images only
                class_loss = _class_loss(labels, class_logits[:batch])
                loss = loss + self.config.aux_weight * class_loss
            scaled = self.d_optimizer.scale_loss(loss / self.replicas)
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        metrics = {
            "d_loss": adversarial,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }
        if class_logits is not None:
            metrics["d_class"] = class_loss
        return metrics

    def _g_replica_step(self, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(labels)[0]
        with tf.GradientTape() as tape:
            fake = self.generator([self._noise(batch), labels], training=True)
            logits, class_logits = self._discriminate(self._augment(fake), labels)
            adversarial = self.g_loss_fn(logits)
            loss = adversarial
            if class_logits is not None:  # G is pushed towards images of the asked class
                class_loss = _class_loss(labels, class_logits)
                loss = loss + self.config.aux_weight * class_loss
            scaled = self.g_optimizer.scale_loss(loss / self.replicas)
        variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        metrics = {"g_loss": adversarial}
        if class_logits is not None:
            metrics["g_class"] = class_loss
        return metrics

    def _update_ema(self) -> None:
        """EMA of every generator weight, BN statistics included. The decay ramps up from
        0 (TF's num_updates rule) so that short runs get a useful EMA too."""
        step = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        pairs = zip(self.ema_generator.weights, self.generator.weights, strict=True)
        for ema, live in pairs:
            ema.assign(decay * ema + (1.0 - decay) * tf.cast(live, ema.dtype))

    def _mean(self, value) -> tf.Tensor:
        return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

    @tf.function
    def train_step(self, iterator) -> dict[str, tf.Tensor]:
        """d_steps discriminator updates on fresh real batches, one generator update, EMA."""
        for _ in range(self.config.d_steps):
            real, labels = next(iterator)
            d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels))
        g_metrics = self.strategy.run(self._g_replica_step, args=(labels,))
        self.step.assign_add(1)
        self._update_ema()
        return {name: self._mean(value) for name, value in {**d_metrics, **g_metrics}.items()}

    @tf.function
    def pretrain_step_fn(self, iterator) -> dict[str, tf.Tensor]:
        """One discriminator-only update (the original design's D warm-up)."""
        real, labels = next(iterator)
        d_metrics = self.strategy.run(self._d_replica_step, args=(real, labels))
        self.pretrain_step.assign_add(1)
        return {name: self._mean(value) for name, value in d_metrics.items()}

    def generate(self, noise, labels, ema: bool = True):
        """Images in inference mode (BN moving statistics), as a numpy array."""
        model = self.ema_generator if ema else self.generator
        return model([noise, labels], training=False).numpy()

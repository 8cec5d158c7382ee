"""The networks of single-image super-resolution: SRGAN's SRResNet generator and its strided
discriminator (Ledig et al. 2017, arXiv 1609.04802, Figure 4).

N(0, 0.02) weights and batch norm over the global batch under a data axis, as the other image
models. The convolutions are :mod:`jaxgan.models`' matrix-product forms but for G's last (a
9×9 convolution to the image at the high resolution), which is XLA's own: inside a training
step's scan on XLA:CPU, XLA's stride-1 convolutions are the slow form (one gradient of G at
width 32, 8 blocks, batch 64 of 7×7: 1.66 s with XLA's, 2.13 s with matrix products only,
0.49 s so; 3×3, 32 to 128 channels at 14×14: 938 ms against 103 ms), while XLA fuses the
PReLU before the last layer into each of its 81 shifted matrix products (1.25 s against
0.34 s without it). Measured on the 2-core CPU the CI uses.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models import DCGAN_INIT, DownConv, ShiftConv, batch_norm

PRELU_INIT = 0.25  # PReLU's initial slope (He et al. 2015; PyTorch's nn.PReLU default)


def pixel_shuffle(x: jnp.ndarray, factor: int) -> jnp.ndarray:
    """Sub-pixel convolution's rearrangement (Shi et al. 2016): ``[n, h, w, c · r²]`` to
    ``[n, h · r, w · r, c]``, channel ``c · r² + i · r + j`` becoming pixel ``(i, j)`` of its
    ``r × r`` block (PyTorch's ``nn.PixelShuffle`` order)."""
    n, h, w, channels = x.shape
    if channels % factor**2:
        raise ValueError(f"pixel_shuffle by {factor} needs channels divisible by {factor**2}, "
                         f"got {channels}")  # fmt: skip
    c = channels // factor**2
    x = x.reshape((n, h, w, c, factor, factor)).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape((n, h * factor, w * factor, c))


def upsampling_steps(scale: int) -> int:
    """The ×2 sub-pixel steps of a ``scale`` × super-resolution (a power of two)."""
    steps = round(math.log2(scale)) if scale >= 2 else 0
    if scale < 2 or 2**steps != scale:
        raise ValueError(f"the upscaling factor must be a power of two >= 2, got {scale}")
    return steps


def _conv(features: int, size: int = 3) -> ShiftConv:
    """A "SAME" stride-1 convolution with a bias (created inside a module's compact method)."""
    return ShiftConv(features, size, padding=size // 2)


def _prelu() -> nn.PReLU:
    return nn.PReLU(negative_slope_init=PRELU_INIT)


class SRResNet(nn.Module):
    """SRGAN's generator: a 9×9 convolution and PReLU; ``blocks`` residual blocks (3×3
    convolution, batch norm, PReLU, 3×3 convolution, batch norm, plus the block's input); a 3×3
    convolution and batch norm plus the first layer's output (the long skip); per ×2 of
    ``scale`` a 3×3 convolution to 4 × ``width`` channels, :func:`pixel_shuffle` and PReLU; a
    9×9 convolution to the image, tanh out (the images' [-1, 1]). The blocks work at the low
    resolution, so their cost is ``scale²`` times smaller than at the output's.

    It takes the low-resolution image alone, ``[n, h, w, c]``, and returns ``[n, h · scale,
    w · scale, channels]``.

    Attributes:
      channels: output channels.
      width: the blocks' channels (the paper: 64).
      blocks: residual blocks (the paper: 16).
      scale: the upscaling factor, a power of two (the paper: 4).
      axis_name: the data-parallel axis while training (batch statistics of the global batch).
    """

    channels: int = 3
    width: int = 64
    blocks: int = 16
    scale: int = 4
    axis_name: str | None = None

    @nn.compact
    def __call__(self, source: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        steps = upsampling_steps(self.scale)
        axis = self.axis_name if train else None
        first = h = _prelu()(_conv(self.width, 9)(source))
        for _ in range(self.blocks):
            r = _prelu()(batch_norm(train, axis)(_conv(self.width)(h)))
            h = h + batch_norm(train, axis)(_conv(self.width)(r))
        h = first + batch_norm(train, axis)(_conv(self.width)(h))
        for _ in range(steps):
            h = _prelu()(pixel_shuffle(_conv(4 * self.width)(h), 2))
        out = nn.Conv(self.channels, (9, 9), padding="SAME", kernel_init=DCGAN_INIT)
        return jnp.tanh(out(h))


class SRDiscriminator(nn.Module):
    """SRGAN's discriminator: a 3×3 convolution and LeakyReLU 0.2, then ``stages`` pairs of
    3×3 convolutions (stride 1, then stride 2; batch norm and LeakyReLU after each but the
    first) with ``width`` channels doubling per stage, a dense layer of 16 × ``width`` units,
    LeakyReLU and a dense layer to the logit ``[n]``. The paper's is ``width`` 64 with 4
    stages (64 to 512 channels, a 96×96 crop judged at 6×6, a 1024-unit dense layer).

    Attributes:
      width: the first stage's channels.
      stages: stride-2 steps (each halves the size, rounding up).
      axis_name: the data-parallel axis to compute batch statistics over.
    """

    width: int = 64
    stages: int = 4
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        axis = self.axis_name if train else None
        h = x
        for i in range(self.stages):
            c = self.width * 2**i
            if i:  # the first stage's stride-1 convolution is the input layer, without norm
                h = batch_norm(train, axis)(ShiftConv(c, use_bias=False)(h))
            else:
                h = ShiftConv(c)(h)
            h = nn.leaky_relu(h, negative_slope=0.2)
            h = batch_norm(train, axis)(DownConv(c, size=3)(h))
            h = nn.leaky_relu(h, negative_slope=0.2)
        h = nn.Dense(16 * self.width)(h.reshape((x.shape[0], -1)))
        return nn.Dense(1)(nn.leaky_relu(h, negative_slope=0.2))[:, 0]

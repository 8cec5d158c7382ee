"""The networks of image-to-image translation: pix2pix's U-Net generator and PatchGAN
discriminator (Isola et al. 2017, arXiv 1611.07004), and CycleGAN's ResNet generator (Zhu et
al. 2017, arXiv 1703.10593, after Johnson et al. 2016), with their reference code's layer
choices.

All are built from :mod:`jaxgan.models`' convolutions (written as matrix products for
XLA:CPU's sake), N(0, 0.02) weights, and batch norm over the global batch under a data axis
or instance norm (per image, so the same on any number of devices), and work at any size the
strides divide.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models import DownConv, Dropout, ShiftConv, UpConv, batch_norm

MAX_MULTIPLIER = 8  # channels stop doubling at 8 × width (pix2pix's ngf * 8, ndf * 8)
NORMS = ("batch", "instance")


def instance_norm() -> nn.InstanceNorm:
    """Instance normalisation without a learned scale and shift, PyTorch's
    ``InstanceNorm2d`` default (CycleGAN's): each image's channels to zero mean, unit variance."""
    return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False)


def norm_layer(norm: str, train: bool, axis_name: str | None) -> nn.Module:
    """``norm``'s layer: batch norm (over the global batch under ``axis_name``) or instance
    norm."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return batch_norm(train, axis_name) if norm == "batch" else instance_norm()


def check_image_size(images: jnp.ndarray, size: int, network: str) -> None:
    """Raises ``ValueError`` unless ``images`` are ``[n, h, w, c]`` with ``h`` and ``w``
    divisible by ``size`` (what ``network``'s stride-2 steps need)."""
    if images.ndim != 4 or images.shape[1] % size or images.shape[2] % size:
        raise ValueError(
            f"{network} takes [n, h, w, c] images with h and w divisible by {size}, got "
            f"{images.shape}"
        )


def unet_channels(width: int, depth: int) -> list[int]:
    """The channels of the U-Net's ``depth`` encoder levels: ``width`` doubling per level up
    to 8 × ``width`` (pix2pix's unet_256 at depth 8: 64, 128, 256, 512, 512, 512, 512, 512)."""
    return [width * min(2**i, MAX_MULTIPLIER) for i in range(depth)]


class UNetGenerator(nn.Module):
    """pix2pix's generator: an encoder of ``depth`` 4×4 stride-2 convolutions (LeakyReLU 0.2,
    batch norm but on the first and the innermost), a decoder of transposed convolutions back
    up (ReLU, batch norm, tanh out) whose every level also sees the encoder's output of the same
    size (skip connections, concatenated), and dropout in the decoder as the noise source.

    It takes the source image alone: ``[n, h, w, c]`` with ``h`` and ``w`` divisible by
    ``2 ** depth`` (at depth 5 a 32×32 image reaches 1×1, as pix2pix's 256×256 at depth 8).

    Attributes:
      channels: output channels.
      width: ngf, the first level's channels.
      depth: the encoder's levels (stride-2 steps).
      dropout: the decoder's dropout rate, in the ``dropout_levels`` levels just above the
        innermost (pix2pix: 0.5 in three).
      dropout_levels: how many decoder levels have dropout.
      dropout_at_sampling: keep dropout on when sampling too, as the paper does at test time.
      axis_name: the data-parallel axis while training (batch norm's statistics and dropout's
        masks are then the global batch's).
    """

    channels: int = 3
    width: int = 64
    depth: int = 8
    dropout: float = 0.5
    dropout_levels: int = 3
    dropout_at_sampling: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, source: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        check_image_size(source, 2**self.depth, f"a U-Net of depth {self.depth}")
        axis = self.axis_name if train else None
        channels = unet_channels(self.width, self.depth)
        innermost = self.depth - 1
        skips, h = [], source
        for i, c in enumerate(channels):
            if i:
                h = nn.leaky_relu(h, negative_slope=0.2)
            h = DownConv(c, name=f"Down_{i}")(h)
            if 0 < i < innermost:
                h = batch_norm(train, axis)(h)
            skips.append(h)
        for i in range(innermost, 0, -1):  # up to the outermost level, joining its skip
            h = batch_norm(train, axis)(UpConv(channels[i - 1], name=f"Up_{i}")(nn.relu(h)))
            if self.dropout and innermost - self.dropout_levels <= i < innermost:
                keep_on = train or self.dropout_at_sampling
                h = Dropout(self.dropout, axis)(h, deterministic=not keep_on)
            h = jnp.concatenate([skips[i - 1], h], axis=-1)
        return jnp.tanh(UpConv(self.channels, use_bias=True, name="Up_0")(nn.relu(h)))


def patch_receptive_field(layers: int) -> int:
    """The input pixels each of a :class:`PatchDiscriminator`'s logits sees (70 at 3 layers)."""
    field = 7  # its two stride-1 4×4 convolutions
    for _ in range(layers):
        field = 2 * field + 2
    return field


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: ``layers`` 4×4 stride-2 convolutions (channels doubling from
    ``width``, LeakyReLU 0.2, batch norm but on the first), a stride-1 one, and a stride-1
    convolution to one logit per patch: ``[n, h', w']`` logits, each judging a
    :func:`patch_receptive_field` square of the input, which the losses average.

    Called as ``D(x, source)`` it judges the (output, source) pair (its channels
    concatenated, pix2pix's conditional D); ``D(x)`` judges the output alone (CycleGAN's).

    Attributes:
      width: ndf, the first layer's channels.
      layers: stride-2 layers (pix2pix's 70×70 PatchGAN: 3).
      axis_name: the data-parallel axis to compute batch statistics over.
      norm: ``"batch"`` (pix2pix's) or ``"instance"`` (CycleGAN's).
    """

    width: int = 64
    layers: int = 3
    axis_name: str | None = None
    norm: str = "batch"

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, source: jnp.ndarray | None = None, *, train: bool = True
    ) -> jnp.ndarray:
        h = x if source is None else jnp.concatenate([x, source.astype(x.dtype)], axis=-1)
        axis = self.axis_name if train else None
        for i in range(self.layers + 1):
            c = self.width * min(2**i, MAX_MULTIPLIER)
            if i < self.layers:
                h = DownConv(c, use_bias=not i, name=f"Down_{i}")(h)
            else:
                h = ShiftConv(c, size=4, padding=1, use_bias=False, name="Conv")(h)
            if i:
                h = norm_layer(self.norm, train, axis)(h)
            h = nn.leaky_relu(h, negative_slope=0.2)
        return ShiftConv(1, size=4, padding=1, name="Logits")(h)[..., 0]


class ResNetGenerator(nn.Module):
    """CycleGAN's generator (Johnson et al.'s network as Zhu et al. use it): a 7×7
    convolution to ``width`` channels, ``downsamplings`` 3×3 stride-2 convolutions doubling
    them, ``blocks`` residual blocks (two 3×3 convolutions, the first followed by ReLU) at
    that size, as many 3×3 stride-2 transposed convolutions back up, and a 7×7 convolution to
    ``channels`` with tanh; instance norm and ReLU after every other convolution, reflection
    padding for the 7×7 and the blocks' convolutions. The paper's: width 64, 2 downsamplings, 9
    blocks at 256×256 (6 at 128×128). Only the last convolution has a bias: instance norm
    cancels the others' (the reference code has them; their gradients are rounding noise,
    which Adam turns into moves of the learning rate's size, and which differs between 8
    devices and 1).

    It takes the image alone, ``[n, h, w, c]``, with ``h`` and ``w`` divisible by
    ``2 ** downsamplings`` (odd sizes below that are fine: 28 → 14 → 7 and back).

    Attributes:
      channels: output channels.
      width: ngf, the first convolution's channels.
      blocks: residual blocks.
      downsamplings: stride-2 steps down (and as many up).
      norm: ``"instance"`` (the paper's) or ``"batch"``.
      axis_name: the data-parallel axis for batch norm's statistics.
    """

    channels: int = 3
    width: int = 64
    blocks: int = 9
    downsamplings: int = 2
    norm: str = "instance"
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        network = f"a ResNet generator with {self.downsamplings} downsamplings"
        check_image_size(x, 2**self.downsamplings, network)
        axis = self.axis_name if train else None

        def norm_relu(h):
            return nn.relu(norm_layer(self.norm, train, axis)(h))

        def conv(features, size, name, bias=False):  # stride 1, reflection padding
            return ShiftConv(features, size, size // 2, use_bias=bias, pad_mode="reflect",
                             patches=True, name=name)  # fmt: skip

        h = norm_relu(conv(self.width, 7, "In")(x))
        for i in range(self.downsamplings):
            h = norm_relu(DownConv(self.width * 2 ** (i + 1), size=3, name=f"Down_{i}")(h))
        c = h.shape[-1]
        for i in range(self.blocks):
            r = norm_relu(conv(c, 3, f"Block_{i}_0")(h))
            h = h + norm_layer(self.norm, train, axis)(conv(c, 3, f"Block_{i}_1")(r))
        for i in reversed(range(self.downsamplings)):
            h = norm_relu(UpConv(self.width * 2**i, size=3, name=f"Up_{i}")(h))
        return jnp.tanh(conv(self.channels, 7, "Out", bias=True)(h))

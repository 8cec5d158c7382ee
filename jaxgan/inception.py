"""Inception-v3 as FID measures with it: the 2015 TensorFlow graph's 2048-d pool features.

Every published FID on an image set (CIFAR-10, CelebA, FFHQ, Lucic et al.'s MNIST table) is a
distance in the features of one network: the ``pool_3`` layer of TensorFlow's 2015 Inception-v3
(``inception-2015-12-05``), which differs from torchvision's Inception-v3 in its weights, in
average pools that leave the padding out of the count, and in the last block's max pool. This
module is that network in Flax, with the preprocessing of clean-fid's "clean" mode (Parmar et
al. 2022), so that numbers computed here can stand beside the literature's:

1. uint8 images; grayscale replicated to three channels;
2. each channel resized to 299×299 as PIL's bicubic filter does on float32 images (no
   quantisation, antialiased when shrinking: :func:`resize_matrix`), clipped to [0, 255];
3. scaled to the network's input range ``(x - 128) / 128``, i.e. [-1, 0.9921875].

The weights come from :mod:`jaxgan.inception_weights` (converted once from a TorchScript copy of
the TF graph into a cache); afterwards extraction is pure JAX, batched and compiled.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

SIZE = 299  # the network's input resolution
FEATURES = 2048
BATCH = 50  # images per forward pass (a compiled program per batch shape)
BN_EPSILON = 1e-3  # the TF graph's batch-norm epsilon


class ConvBN(nn.Module):
    """A bias-free convolution, the TF graph's inference batch norm (shift only, no scale), ReLU.

    ``same`` pads symmetrically by half the kernel (stride-1 convolutions keep the size);
    otherwise no padding. Parameters keep the TF graph's names: ``kernel`` (HWIO), ``beta``,
    ``mean``, ``var``.
    """

    features: int
    kernel: tuple[int, int]
    strides: int = 1
    same: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (*self.kernel, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        beta = self.param("beta", nn.initializers.zeros, (self.features,))
        mean = self.param("mean", nn.initializers.zeros, (self.features,))
        var = self.param("var", nn.initializers.ones, (self.features,))
        padding = [(k // 2, k // 2) for k in self.kernel] if self.same else "VALID"
        y = jax.lax.conv_general_dilated(
            x, kernel, (self.strides, self.strides), padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip
        scale = jax.lax.rsqrt(var + BN_EPSILON)
        return nn.relu(y * scale + (beta - mean * scale))


# A layer of a tower: (output channels, kernel, stride, same padding).
Layer = tuple[int, tuple[int, int], int, bool]


def one_by_one(features: int) -> Layer:
    return (features, (1, 1), 1, True)


class Tower(nn.Module):
    """Convolutions in sequence (named ``conv``, ``conv_1``, ...), after an optional 3×3
    stride-1 pool (``avg``: padding left out of the count, as in TF; or ``max``)."""

    layers: Sequence[Layer]
    pool: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool is not None:
            x = pool_3x3(x, self.pool)
        for i, (features, kernel, strides, same) in enumerate(self.layers):
            x = ConvBN(features, kernel, strides, same, name="conv" if i == 0 else f"conv_{i}")(x)
        return x


def pool_3x3(x: jax.Array, kind: str) -> jax.Array:
    """A 3×3 stride-1 pool keeping the size: TF's average (padding not counted) or max."""
    if kind == "avg":
        return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)
    return nn.max_pool(x, (3, 3), padding=((1, 1), (1, 1)))


def reduce_pool(x: jax.Array) -> jax.Array:
    """The 3×3 stride-2 max pool (no padding) of the stem and the grid reductions."""
    return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(nn.Module):
    """35×35 block: 1×1; 1×1 → 5×5; 1×1 → 3×3 → 3×3; average pool → 1×1."""

    pool_features: int

    @nn.compact
    def __call__(self, x):
        return jnp.concatenate(
            [
                ConvBN(64, (1, 1), name="conv")(x),
                Tower([one_by_one(48), (64, (5, 5), 1, True)], name="tower")(x),
                Tower(
                    [one_by_one(64), (96, (3, 3), 1, True), (96, (3, 3), 1, True)],
                    name="tower_1",
                )(x),
                Tower([one_by_one(self.pool_features)], pool="avg", name="tower_2")(x),
            ],
            axis=-1,
        )


class InceptionB(nn.Module):
    """35 → 17 reduction: 3×3/2; 1×1 → 3×3 → 3×3/2; max pool."""

    @nn.compact
    def __call__(self, x):
        tower = [one_by_one(64), (96, (3, 3), 1, True), (96, (3, 3), 2, False)]
        return jnp.concatenate(
            [
                ConvBN(384, (3, 3), 2, same=False, name="conv")(x),
                Tower(tower, name="tower")(x),
                reduce_pool(x),
            ],
            axis=-1,
        )


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (``width`` channels inside the towers)."""

    width: int

    @nn.compact
    def __call__(self, x):
        c = self.width
        row, column = (c, (1, 7), 1, True), (c, (7, 1), 1, True)
        return jnp.concatenate(
            [
                ConvBN(192, (1, 1), name="conv")(x),
                Tower([one_by_one(c), row, (192, (7, 1), 1, True)], name="tower")(x),
                Tower(
                    [one_by_one(c), column, row, column, (192, (1, 7), 1, True)],
                    name="tower_1",
                )(x),
                Tower([one_by_one(192)], pool="avg", name="tower_2")(x),
            ],
            axis=-1,
        )


class InceptionD(nn.Module):
    """17 → 8 reduction: 1×1 → 3×3/2; 1×1 → 1×7 → 7×1 → 3×3/2; max pool."""

    @nn.compact
    def __call__(self, x):
        seven = [(192, (1, 7), 1, True), (192, (7, 1), 1, True)]
        return jnp.concatenate(
            [
                Tower([one_by_one(192), (320, (3, 3), 2, False)], name="tower")(x),
                Tower([one_by_one(192), *seven, (192, (3, 3), 2, False)], name="tower_1")(x),
                reduce_pool(x),
            ],
            axis=-1,
        )


class InceptionE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs. ``pool`` is ``avg`` in the first and ``max`` in
    the second (the TF graph's last block pools by max, unlike the paper's network)."""

    pool: str

    @nn.compact
    def __call__(self, x):
        def split(y, prefix):
            return [
                ConvBN(384, (1, 3), name=f"{prefix}_mixed_conv")(y),
                ConvBN(384, (3, 1), name=f"{prefix}_mixed_conv_1")(y),
            ]

        a = ConvBN(384, (1, 1), name="tower_conv")(x)
        b = ConvBN(448, (1, 1), name="tower_1_conv")(x)
        b = ConvBN(384, (3, 3), name="tower_1_conv_1")(b)
        pooled = ConvBN(192, (1, 1), name="tower_2_conv")(pool_3x3(x, self.pool))
        return jnp.concatenate(
            [ConvBN(320, (1, 1), name="conv")(x), *split(a, "tower"), *split(b, "tower_1"), pooled],
            axis=-1,
        )


class InceptionV3(nn.Module):
    """The FID Inception-v3: ``[N, 299, 299, 3]`` inputs in [-1, 0.9921875] → ``[N, 2048]``
    features (the global average of the last block, TF's ``pool_3``). Submodule and parameter
    names are the TF graph's (``conv``, ..., ``mixed_10/tower_2_conv``), as in its TorchScript
    copies, so weights convert by name (:mod:`jaxgan.inception_weights`)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvBN(32, (3, 3), 2, same=False, name="conv")(x)
        x = ConvBN(32, (3, 3), same=False, name="conv_1")(x)
        x = reduce_pool(ConvBN(64, (3, 3), name="conv_2")(x))
        x = ConvBN(80, (1, 1), name="conv_3")(x)
        x = reduce_pool(ConvBN(192, (3, 3), same=False, name="conv_4")(x))
        for i, pool_features in enumerate((32, 64, 64)):
            x = InceptionA(pool_features, name="mixed" if i == 0 else f"mixed_{i}")(x)
        x = InceptionB(name="mixed_3")(x)
        for i, width in enumerate((128, 160, 160, 192), start=4):
            x = InceptionC(width, name=f"mixed_{i}")(x)
        x = InceptionD(name="mixed_8")(x)
        x = InceptionE("avg", name="mixed_9")(x)
        x = InceptionE("max", name="mixed_10")(x)
        return x.mean(axis=(1, 2))


def abstract_params() -> dict:
    """The parameter tree's shapes and dtypes (float32), without computing anything."""
    model = InceptionV3()
    return jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))["params"]
    )


# --- Preprocessing: clean-fid's "clean" resize, as matrices.


def _bicubic(x: np.ndarray) -> np.ndarray:
    """PIL's bicubic kernel (Keys, a = -0.5), support 2."""
    x = np.abs(x)
    a = -0.5
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=8)
def resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``[out_size, in_size]`` float64 weights of PIL's bicubic resampling along one axis.

    PIL (``Resample.c``, ``precompute_coeffs``) gives output pixel ``i`` the input pixels whose
    centres lie within the filter's support of ``(i + 0.5) * scale``, weighted by the kernel
    and normalised to sum to 1; when shrinking (scale > 1) the kernel is stretched by the scale,
    which is what makes the resize antialiased. Resizing an image is ``rows @ image @ cols.T``.
    """
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        taps = _bicubic((np.arange(low, high) - centre + 0.5) / stretch)
        weights[i, low:high] = taps / taps.sum()
    return weights


def resize(images: jax.Array, size: int = SIZE) -> jax.Array:
    """float32 ``[N, H, W, C]`` images resized to ``size``×``size`` as clean-fid's "clean" mode
    does (PIL bicubic on float32 channels, :func:`resize_matrix`), clipped to [0, 255]."""
    rows = jnp.asarray(resize_matrix(images.shape[1], size), jnp.float32)
    cols = jnp.asarray(resize_matrix(images.shape[2], size), jnp.float32)
    highest = jax.lax.Precision.HIGHEST
    x = jnp.einsum("nhwc,pw->nhpc", images, cols, precision=highest)  # PIL: width first
    x = jnp.einsum("nhpc,oh->nopc", x, rows, precision=highest)
    return jnp.clip(x, 0.0, 255.0)


def network_input(images: jax.Array) -> jax.Array:
    """uint8 ``[N, H, W, 1 or 3]`` images → the network's input: three channels, resized
    (:func:`resize`) unless already 299×299, scaled to ``(x - 128) / 128``."""
    x = images.astype(jnp.float32)
    if x.shape[1:3] != (SIZE, SIZE):
        x = resize(x)
    if x.shape[-1] == 1:
        x = jnp.broadcast_to(x, (*x.shape[:-1], 3))
    return (x - 128.0) / 128.0


@jax.jit
def batch_features(params: dict, images: jax.Array) -> jax.Array:
    """The compiled program of one batch: ``[n, 2048]`` features of uint8 ``[n, H, W, 1 or
    3]`` images, unchecked (:func:`features` checks them and batches a whole set); public so
    that a benchmark can lower it (``batch_features.lower(params, images)``) for its cost."""
    return InceptionV3().apply({"params": params}, network_input(images))


def features(
    images: np.ndarray, params: dict, *, batch: int = BATCH, progress: str | None = None
) -> np.ndarray:
    """float32 ``[N, 2048]`` Inception features of uint8 ``[N, H, W, 1 or 3]`` images, in
    batches of ``batch`` (the last one padded, so that one program serves every batch; a
    smaller set in one batch); with a
    ``progress`` label, a bar on stderr (10,000 images take minutes on a CPU)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"Inception features take uint8 [N, H, W, 1 or 3] images, got {images.dtype} "
            f"{images.shape}"
        )
    out = np.empty((len(images), FEATURES), np.float32)
    batch = max(min(batch, len(images)), 1)  # a small set in one batch of its own size
    bar = tqdm(
        total=len(images), desc=progress, disable=progress is None, file=sys.stderr, leave=False
    )
    with bar:
        for start in range(0, len(images), batch):
            part = images[start : start + batch]
            padding = np.zeros((batch - len(part), *part.shape[1:]), np.uint8)
            result = batch_features(params, np.concatenate([part, padding]))
            out[start : start + len(part)] = np.asarray(result)[: len(part)]
            bar.update(len(part))
    return out

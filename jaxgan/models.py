"""Flax (linen) generators and discriminators.

Generators map latent vectors ``z`` of shape ``[batch, latent_dim]`` to samples of
``sample_shape``; discriminators map samples to *logits* of shape ``[batch]`` (never
probabilities: the losses apply the log-sigmoid themselves, which is numerically stable).

Every module takes ``train: bool`` so that batch norm and dropout can switch between batch
statistics and running averages; modules without such layers simply ignore it.

Conditional GANs: a generator with ``num_classes > 0`` takes integer labels ``[batch]`` after
``z`` and concatenates them (one-hot, or a learned embedding) to its input. A discriminator's
``conditioning`` says how it uses labels (:data:`D_CONDITIONINGS`): ``"concat"`` appends them to
its input (Mirza & Osindero 2014), ``"projection"`` adds the inner product of a label embedding
with its last features to the logit (Miyato & Koyama 2018), both taking labels after ``x``;
``"classifier"`` takes no labels and returns ``(logits, class_logits [batch, num_classes])``,
the auxiliary classifier of AC-GAN (Odena et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=0.2),
    "elu": nn.elu,
    "tanh": jnp.tanh,
    "identity": lambda x: x,
}


def activation(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """Returns the activation called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


D_CONDITIONINGS = ("none", "concat", "projection", "classifier")


def label_features(labels: jnp.ndarray, num_classes: int, embed_dim: int) -> jnp.ndarray:
    """Labels ``[batch]`` as features: one-hot (``embed_dim`` 0) or a learned embedding of
    ``embed_dim``. Call it inside a module's compact method (the embedding is its submodule)."""
    if embed_dim:
        return nn.Embed(num_classes, embed_dim)(labels)
    return jax.nn.one_hot(labels, num_classes)


def _check_labels(module: nn.Module, labels: jnp.ndarray | None, takes_labels: bool) -> None:
    if takes_labels and labels is None:
        raise ValueError(f"{type(module).__name__} is conditional: call it with labels")
    if labels is not None and not takes_labels:
        raise ValueError(f"{type(module).__name__} takes no labels (it is not class-conditional)")


def conditional_generator_input(
    module: nn.Module, z: jnp.ndarray, labels: jnp.ndarray | None
) -> jnp.ndarray:
    """``z``, with the labels' features appended when ``module.num_classes > 0``."""
    _check_labels(module, labels, module.num_classes > 0)
    if not module.num_classes:
        return z
    return jnp.concatenate(
        [z, label_features(labels, module.num_classes, module.label_embed).astype(z.dtype)], -1
    )


def conditional_output(
    module: nn.Module, features: jnp.ndarray, logits: jnp.ndarray, labels: jnp.ndarray | None
):
    """A discriminator's output from its last ``features [batch, F]`` and ``logits [batch]``,
    after ``module.conditioning``: the logits, plus the projection term, or with class logits.
    """
    if module.conditioning == "projection":
        embedding = nn.Embed(module.num_classes, features.shape[-1], name="label_projection")
        return logits + jnp.sum(embedding(labels) * features, axis=-1)
    if module.conditioning == "classifier":
        return logits, nn.Dense(module.num_classes, name="class_head")(features)
    return logits


def _check_conditioning(module: nn.Module, labels: jnp.ndarray | None) -> None:
    if module.conditioning not in D_CONDITIONINGS:
        raise ValueError(
            f"unknown conditioning {module.conditioning!r}; choose one of {D_CONDITIONINGS}"
        )
    if module.conditioning != "none" and module.num_classes < 2:
        raise ValueError(f"conditioning {module.conditioning!r} needs num_classes >= 2")
    _check_labels(module, labels, module.conditioning in ("concat", "projection"))


class MLPGenerator(nn.Module):
    """Fully connected generator: ``hidden`` layers, then a linear map to ``sample_shape``.

    Attributes:
      sample_shape: shape of one generated sample, e.g. ``(1,)``, ``(2,)`` or ``(28, 28, 1)``.
      hidden: width of each hidden layer.
      act: hidden activation name (see :data:`ACTIVATIONS`).
      out_act: output activation name; ``"tanh"`` for images scaled to [-1, 1].
      batch_norm: batch norm after each hidden linear layer (before the activation).
      dropout: dropout rate after each hidden layer while training (needs a ``"dropout"`` rng).
      dropout_at_sampling: keep the dropout on when sampling too: a second source of noise
        (as pix2pix's generator uses it), so samples vary with the sampling key as well as z.
      num_classes: > 0 makes G class-conditional: it takes labels after ``z``.
      label_embed: the labels' learned embedding size (0: one-hot).
      torch_init: initialise the dense layers as PyTorch's ``nn.Linear`` does
        (:func:`linear_init`) instead of flax's default.
      axis_name: the data-parallel axis while training: batch norm's statistics and dropout's
        masks are then the global batch's (see :class:`Dropout`).
    """

    sample_shape: Sequence[int]
    hidden: Sequence[int] = (256, 256)
    act: str = "relu"
    out_act: str = "identity"
    batch_norm: bool = False
    dropout: float = 0.0
    dropout_at_sampling: bool = False
    num_classes: int = 0
    label_embed: int = 0
    torch_init: bool = False
    axis_name: str | None = None

    @nn.compact
    def __call__(
        self, z: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True
    ) -> jnp.ndarray:
        h = conditional_generator_input(self, z, labels)
        axis = self.axis_name if train else None
        for width in self.hidden:
            h = nn.Dense(width, **linear_init(h.shape[-1], self.torch_init))(h)
            if self.batch_norm:
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis)(h)
            h = activation(self.act)(h)
            if self.dropout:
                keep_on = train or self.dropout_at_sampling
                h = Dropout(self.dropout, axis)(h, deterministic=not keep_on)
        init = linear_init(h.shape[-1], self.torch_init)
        out = nn.Dense(math.prod(self.sample_shape), **init)(h)
        return activation(self.out_act)(out).reshape((z.shape[0], *self.sample_shape))


def linear_init(fan_in: int, torch: bool) -> dict[str, Callable]:
    """``nn.Dense`` initialisers: flax's default (LeCun normal kernel, zero bias; ``{}``), or
    PyTorch's ``nn.Linear`` default (kernel and bias uniform in ±1/√fan_in), which the
    reference implementations train with."""
    if not torch:
        return {}
    bound = 1.0 / math.sqrt(fan_in)

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return {
        "kernel_init": nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
        "bias_init": bias_init,
    }


def dense(
    features: int, x: jnp.ndarray, *, spectral_norm: bool, train: bool, torch_init: bool = False
) -> jnp.ndarray:
    """A dense layer, optionally spectrally normalised (Miyato et al. 2018): its kernel divided
    by its largest singular value, estimated by one power iteration per training call (the
    iteration's vector lives in the ``batch_stats`` collection), so the layer is 1-Lipschitz;
    ``torch_init``: see :func:`linear_init`."""
    layer = nn.Dense(features, **linear_init(x.shape[-1], torch_init))
    if spectral_norm:
        return nn.SpectralNorm(layer)(x, update_stats=train)
    return layer(x)


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): the maximum over ``pieces`` linear maps."""

    features: int
    pieces: int
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        h = dense(self.features * self.pieces, x, spectral_norm=self.spectral_norm, train=train)
        return h.reshape((*x.shape[:-1], self.features, self.pieces)).max(axis=-1)


SHARED_RNG = "shared"  # the rng stream every device of a data-parallel step shares


class Dropout(nn.Module):
    """``nn.Dropout`` (same masks on one device) whose mask, with ``axis_name``, is drawn for
    the global batch and sliced, as the noise is: N devices then drop what one device drops.

    With ``axis_name`` it draws from the ``"shared"`` rng stream (one key on every device, which
    the step supplies); without, from ``"dropout"``.
    """

    rate: float
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, deterministic: bool) -> jnp.ndarray:
        if self.rate == 0.0 or deterministic:
            return x
        keep = 1.0 - self.rate
        if self.axis_name is None:
            mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        else:
            n, devices = x.shape[0], jax.lax.axis_size(self.axis_name)
            rng = self.make_rng(SHARED_RNG)
            everyone = jax.random.bernoulli(rng, p=keep, shape=(n * devices, *x.shape[1:]))
            mask = jax.lax.dynamic_slice_in_dim(everyone, jax.lax.axis_index(self.axis_name) * n, n)
        return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def _global_mean(x: jnp.ndarray, axis_name: str | None) -> jnp.ndarray:
    """The mean over the batch, of the global batch with ``axis_name`` (equal shares)."""
    mean = x.mean(axis=0, keepdims=True)
    return mean if axis_name is None else jax.lax.pmean(mean, axis_name)


def minibatch_deviation(x: jnp.ndarray, axis_name: str | None = None) -> jnp.ndarray:
    """Each sample's squared deviation from its batch mean, feature by feature.

    The minibatch statistic of the "GAN in 50 lines" toy: D sees how far each sample lies from
    the batch mean, so a generator that collapses to a point produces zero deviations that D
    can tell from the real spread. With ``axis_name``, the global batch's mean.
    """
    return jnp.square(x - _global_mean(x, axis_name))


def minibatch_std(x: jnp.ndarray, axis_name: str | None = None) -> jnp.ndarray:
    """The batch's standard deviation, averaged over features, as one extra feature per sample.

    The minibatch standard deviation of ProGAN (Karras et al. 2018): a collapsed generator's
    batch has a far smaller spread than a real one, which D sees at once; once G's samples are
    as diverse as the data, the feature carries no information and D judges samples alone.
    With ``axis_name``, the global batch's.
    """
    if axis_name is None:
        var = jnp.var(x, axis=0)
    else:
        var = _global_mean(jnp.square(x - _global_mean(x, axis_name)), axis_name)[0]
    std = jnp.sqrt(var + 1e-8).mean()
    return jnp.broadcast_to(std, (x.shape[0], 1))


def _check_pack(x: jnp.ndarray, pack: int, conditioning: str) -> None:
    if x.shape[0] % pack:
        raise ValueError(f"a batch of {x.shape[0]} does not split into packs of {pack}")
    if pack > 1 and conditioning != "none":
        raise ValueError("PacGAN packing does not combine with class conditioning")


class MLPDiscriminator(nn.Module):
    """Fully connected discriminator returning one logit per sample.

    Attributes:
      hidden: width of each hidden layer.
      act: hidden activation name; ignored by maxout layers.
      maxout_pieces: > 1 replaces each dense+activation by a maxout layer with that many pieces.
      dropout: dropout rate after each hidden layer while training (needs a ``"dropout"`` rng);
        it keeps D from memorising a small training set.
      minibatch_features: append :func:`minibatch_deviation` of the input to each sample.
      minibatch_std: append :func:`minibatch_std` of the input to each sample.
      pack: PacGAN packing (Lin et al. 2018): D judges ``pack`` consecutive samples
        concatenated, returning ``batch // pack`` logits; a batch of near-identical samples is
        then easy to reject, which penalises mode collapse.
      spectral_norm: spectrally normalise every dense layer (see :func:`dense`).
      conditioning: how D uses class labels, one of :data:`D_CONDITIONINGS`.
      num_classes: the number of classes (conditional D only).
      label_embed: with ``"concat"``, the labels' learned embedding size (0: one-hot).
      torch_init: initialise the dense layers as PyTorch's ``nn.Linear`` does
        (:func:`linear_init`).
      axis_name: the data-parallel axis while training: the minibatch statistics and dropout's
        masks are then the global batch's.
    """

    hidden: Sequence[int] = (256, 256)
    act: str = "leaky_relu"
    maxout_pieces: int = 1
    minibatch_features: bool = False
    minibatch_std: bool = False
    pack: int = 1
    dropout: float = 0.0
    spectral_norm: bool = False
    conditioning: str = "none"
    num_classes: int = 0
    label_embed: int = 0
    torch_init: bool = False
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True):
        _check_conditioning(self, labels)
        axis = self.axis_name if train else None
        _check_pack(x, self.pack, self.conditioning)
        h = x.reshape((x.shape[0] // self.pack, -1))
        if self.conditioning == "concat":
            features = label_features(labels, self.num_classes, self.label_embed)
            h = jnp.concatenate([h, features.astype(h.dtype)], axis=-1)
        if self.minibatch_features:
            h = jnp.concatenate([h, minibatch_deviation(h, axis)], axis=-1)
        if self.minibatch_std:
            h = jnp.concatenate([h, minibatch_std(h, axis)], axis=-1)
        sn = {"spectral_norm": self.spectral_norm, "train": train, "torch_init": self.torch_init}
        for width in self.hidden:
            if self.maxout_pieces > 1:
                h = Maxout(width, self.maxout_pieces, self.spectral_norm)(h, train=train)
            else:
                h = activation(self.act)(dense(width, h, **sn))
            if self.dropout:
                h = Dropout(self.dropout, axis)(h, deterministic=not train)
        return conditional_output(self, h, dense(1, h, **sn)[:, 0], labels)


# --- DCGAN (Radford et al. 2016), as in the PyTorch DCGAN tutorial.

DCGAN_RESOLUTIONS = (32, 64, 96)
DCGAN_INIT = nn.initializers.normal(0.02)  # weights N(0, 0.02), the paper's


def _bn_scale_init(key, shape, dtype=jnp.float32):
    """Batch-norm scale N(1, 0.02), the tutorial's ``weights_init``."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def dcgan_layout(resolution: int) -> tuple[int, int]:
    """``(stride-2 layers, base size)``: the spatial size doubles from ``base`` to
    ``resolution`` (4 → 32 in 3 layers, 4 → 64 and 6 → 96 in 4)."""
    if resolution not in DCGAN_RESOLUTIONS:
        raise ValueError(f"DCGAN resolution must be one of {DCGAN_RESOLUTIONS}, got {resolution}")
    layers = 3 if resolution == 32 else 4
    return layers, resolution >> layers


def batch_norm(train: bool, axis_name: str | None) -> nn.BatchNorm:
    """PyTorch's BatchNorm2d defaults (momentum 0.1, eps 1e-5); with ``axis_name`` the batch
    statistics are those of the global batch over that device axis."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=_bn_scale_init,
        axis_name=axis_name if train else None,
    )


class DCGANGenerator(nn.Module):
    """DCGAN generator: z → a ``base × base`` map of ``width · 2^(layers-1)`` channels (a
    transposed convolution of the 1×1 input), then 4×4 stride-2 transposed convolutions that
    halve the channels and double the size, batch norm and ReLU after each but the last,
    tanh out. At 64×64×3 with width 64 it has the tutorial's 3,576,704 parameters.

    Attributes:
      resolution: 32, 64 or 96.
      channels: output channels (1 for MNIST, 3 for colour).
      width: ngf, the channels before the output layer.
      axis_name: the data-parallel axis to compute batch statistics over (None: per device).
      num_classes: > 0 makes G class-conditional: it takes labels after ``z``, whose features
        join z at the input.
      label_embed: the labels' learned embedding size (0: one-hot).
    """

    resolution: int = 64
    channels: int = 3
    width: int = 64
    axis_name: str | None = None
    num_classes: int = 0
    label_embed: int = 0

    @nn.compact
    def __call__(
        self, z: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True
    ) -> jnp.ndarray:
        layers, base = dcgan_layout(self.resolution)
        h = conditional_generator_input(self, z, labels)
        features = self.width * 2 ** (layers - 1)
        h = _Project(features, base, name="ConvTranspose_0")(h)
        for i in range(layers):
            h = nn.relu(batch_norm(train, self.axis_name)(h))
            last = features == self.width
            features = self.channels if last else features // 2
            h = UpConv(features, name=f"ConvTranspose_{i + 1}")(h)
        return jnp.tanh(h)


class _Project(nn.Module):
    """G's first layer: a ``size × size`` transposed convolution of the 1×1 input (PyTorch's
    ``ConvTranspose2d(nz, features, size, 1, 0)``), which is a matrix product; computed as one,
    since XLA:CPU differentiates the convolution form slowly. Its kernel is the convolution's
    (``[size, size, in, features]``), so checkpoints and parameter counts are unchanged."""

    features: int
    size: int

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        shape = (self.size, self.size, h.shape[-1], self.features)
        kernel = self.param("kernel", DCGAN_INIT, shape)
        # a transposed convolution of a single pixel places the flipped kernel
        return jnp.einsum("bc,ijcf->bijf", h, kernel[::-1, ::-1])


def _shifted_views(x: jnp.ndarray, size: int) -> list[jnp.ndarray]:
    """The ``size²`` views of ``x`` (``[N, H, W, C]``) that a "VALID" ``size`` × ``size``
    convolution multiplies by its kernel's taps, in the kernel's row-major order."""
    height, width = x.shape[1] - size + 1, x.shape[2] - size + 1
    return [x[:, a : a + height, b : b + width] for a in range(size) for b in range(size)]


def _shifted_products(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """:func:`conv_valid`'s value: the sum over taps of each view times its ``[C, F]`` tap."""
    taps = kernel.reshape((-1, *kernel.shape[2:]))
    views = _shifted_views(x, kernel.shape[0])
    return sum(view @ tap for view, tap in zip(views, taps, strict=True))


@jax.custom_vjp
def conv_valid(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """A stride-1 "VALID" convolution (``[N, H, W, C]`` by ``[k, k, C, F]``) as ``k²`` matrix
    products of shifted views, whose gradients are matrix products too.

    jaxgan's convolutions are written with it (:class:`DownConv`, :class:`UpConv`,
    :class:`ShiftConv`) because XLA:CPU computes convolution kernel gradients inside a whole
    training step on a slow path: at 32×32, width 32, batch 128, DCGAN D's four kernel
    gradients took 1.3–1.7 s each and the step 7.3 s; as matrix products the step takes 0.67 s
    (and at 64×64, width 64, 11 s instead of 328 s). The values are the convolutions' (tested).

    Its backward pass is written out (:func:`_conv_valid_backward`): each tap's kernel
    gradient is one product of the output gradient, flattened to ``[N·H·W, F]``, with the
    flattened view. Left to autodiff, XLA:CPU fused the transposition that product needs into
    the layers' elementwise backward work, a loop over the transposed order that took 0.46 s
    of a 3.7 s DCGAN 64×64 step twice (experiments/benchmarks/dcgan_step.py); written out, the
    step takes 2.5 s, and 20 jitted DCGAN steps end with bitwise the same parameters."""
    return _shifted_products(x, kernel)


def _conv_valid_forward(x: jnp.ndarray, kernel: jnp.ndarray):
    return _shifted_products(x, kernel), (x, kernel)


def _conv_valid_backward(residuals, grad: jnp.ndarray):
    """:func:`conv_valid`'s input gradient (autodiff's: the products' transposes, padded back
    into place) and kernel gradient (one product per tap)."""
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _shifted_products(x, kernel), x)
    rows = grad.reshape((-1, grad.shape[-1]))
    taps = [
        view.reshape((-1, view.shape[-1])).T @ rows for view in _shifted_views(x, kernel.shape[0])
    ]
    return input_vjp(grad)[0], jnp.stack(taps).reshape(kernel.shape)


conv_valid.defvjp(_conv_valid_forward, _conv_valid_backward)


def conv_patches(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """:func:`conv_valid` as one matrix product: the ``k²`` shifted views side by side in the
    channels (im2col), times the kernel flattened to ``[k² C, F]``. One product instead of
    ``k²`` makes a smaller program where a network runs many times in a step, and a faster
    one when ``C`` is small (CycleGAN's step runs each generator three times, forward and
    back: with its ResNet generators' convolutions as one product each, its epoch compiles in
    9 s instead of 16 s at the tests' sizes, and the MNIST default trains 6.1 steps/s instead
    of 5.2)."""
    views = _shifted_views(x, kernel.shape[0])
    return jnp.concatenate(views, axis=-1) @ kernel.reshape((-1, kernel.shape[-1]))


class DownConv(nn.Module):
    """A stride-2 convolution with padding 1: 4×4 (PyTorch's ``Conv2d(in, out, 4, 2, 1)``,
    DCGAN's and pix2pix's) or 3×3 (``size`` 3: ``Conv2d(in, out, 3, 2, 1)``, SRGAN's D),
    computed as a 2×2 stride-1 convolution of the padded input with each 2×2 block of pixels
    folded into the channels (space-to-depth), the kernel folded alike.

    Output pixel ``i`` reads padded input rows ``2i .. 2i + 3``: blocks ``i`` and ``i + 1``, so
    kernel tap ``2a + p`` meets position ``p`` of block ``i + a``. A 3×3 kernel is the 4×4 one
    with a zero last tap, which also lets it take odd sizes (one more zero row, never read:
    the output is ``ceil(h / 2)``, PyTorch's); the 4×4 needs even ones. Its kernel is the
    strided convolution's (``[size, size, in, out]``), so checkpoints and parameter counts are
    unchanged; ``use_bias`` adds a bias (initialised 0).
    """

    features: int
    use_bias: bool = False
    size: int = 4

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        if self.size not in (3, 4):
            raise ValueError(f"DownConv's size is 3 or 4, got {self.size}")
        odd = (h.shape[1] % 2, h.shape[2] % 2)
        if self.size == 4 and any(odd):
            raise ValueError(f"a 4x4 stride-2 convolution needs an even size, got {h.shape[1:3]}")
        shape = (self.size, self.size, h.shape[-1], self.features)
        kernel = self.param("kernel", DCGAN_INIT, shape)
        if self.size == 3:
            kernel = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
        h = jnp.pad(h, ((0, 0), (1, 1 + odd[0]), (1, 1 + odd[1]), (0, 0)))
        b, height, width, c = h.shape
        blocks = h.reshape((b, height // 2, 2, width // 2, 2, c)).transpose(0, 1, 3, 2, 4, 5)
        folded = kernel.reshape((2, 2, 2, 2, c, self.features)).transpose(0, 2, 1, 3, 4, 5)
        out = conv_valid(
            blocks.reshape((b, height // 2, width // 2, 4 * c)),
            folded.reshape((2, 2, 4 * c, self.features)),
        )
        return _add_bias(self, out)


class UpConv(nn.Module):
    """A 4×4 stride-2 transposed convolution that doubles the size (``nn.ConvTranspose`` with
    padding "SAME", PyTorch's ``ConvTranspose2d(in, out, 4, 2, 1)``), computed as four 2×2
    stride-1 convolutions, one per output phase, interleaved.

    Output pixel ``2i + r`` takes input pixels ``i - 1, i`` (r = 0) or ``i, i + 1`` (r = 1)
    with kernel taps ``r`` and ``r + 2``: a 2×2 convolution with ``kernel[r::2]`` of the input
    padded on one side (no multiplications by the zeros a transposed convolution inserts).
    ``size`` 3 is the 4×4 with a zero first tap: ``nn.ConvTranspose`` of a 3×3 kernel with
    padding ``(1, 2)``, PyTorch's ``ConvTranspose2d(in, out, 3, 2, 1, output_padding=1)``
    (CycleGAN's ResNet generator), also doubling the size.
    """

    features: int
    use_bias: bool = False
    size: int = 4

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        if self.size not in (3, 4):
            raise ValueError(f"UpConv's size is 3 or 4, got {self.size}")
        shape = (self.size, self.size, h.shape[-1], self.features)
        kernel = self.param("kernel", DCGAN_INIT, shape)
        if self.size == 3:
            kernel = jnp.pad(kernel, ((1, 0), (1, 0), (0, 0), (0, 0)))
        b, height, width, _ = h.shape
        phases = [
            conv_valid(jnp.pad(h, ((0, 0), (1 - r, r), (1 - s, s), (0, 0))), kernel[r::2, s::2])
            for r in (0, 1)
            for s in (0, 1)
        ]
        out = jnp.stack(phases, axis=3).reshape((b, height, width, 2, 2, self.features))
        out = out.transpose(0, 1, 3, 2, 4, 5).reshape((b, 2 * height, 2 * width, self.features))
        return _add_bias(self, out)


class ShiftConv(nn.Module):
    """A stride-1 ``size`` × ``size`` convolution with ``padding`` zeros on every side
    (PyTorch's ``Conv2d(in, out, size, 1, padding)``; ``padding = size // 2`` keeps odd sizes
    "SAME"), as :func:`conv_valid`'s matrix products (with ``patches``, as
    :func:`conv_patches`' one); kernel ``[size, size, in, out]`` initialised N(0, 0.02), and a
    bias (0) when ``use_bias``. ``pad_mode`` ``"reflect"`` pads with the mirrored border
    instead (PyTorch's ``ReflectionPad2d``, CycleGAN's)."""

    features: int
    size: int = 3
    padding: int = 1
    use_bias: bool = True
    pad_mode: str = "constant"
    patches: bool = False

    @nn.compact
    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        shape = (self.size, self.size, h.shape[-1], self.features)
        kernel = self.param("kernel", DCGAN_INIT, shape)
        p = self.padding
        h = jnp.pad(h, ((0, 0), (p, p), (p, p), (0, 0)), mode=self.pad_mode)
        return _add_bias(self, (conv_patches if self.patches else conv_valid)(h, kernel))


def _add_bias(layer: nn.Module, out: jnp.ndarray) -> jnp.ndarray:
    """``out`` plus the layer's bias (a parameter initialised to 0) when it has one."""
    if not layer.use_bias:
        return out
    return out + layer.param("bias", nn.initializers.zeros, (layer.features,))


def pack_channels(x: jnp.ndarray, pack: int, conditioning: str = "none") -> jnp.ndarray:
    """Images ``[n, h, w, c]`` as ``n // pack`` packs ``[n // pack, h, w, pack * c]``: each
    pack is ``pack`` consecutive images, the first's channels first."""
    _check_pack(x, pack, conditioning)
    n, height, width, channels = x.shape
    x = x.reshape((n // pack, pack, height, width, channels))
    return jnp.moveaxis(x, 1, 3).reshape((n // pack, height, width, pack * channels))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: 4×4 stride-2 convolutions doubling the channels from ``width``,
    LeakyReLU(0.2), batch norm on all but the first, then a ``base × base`` convolution to one
    logit per image. At 64×64×3 with width 64 it has the tutorial's 2,765,568 parameters.

    Attributes:
      resolution: 32, 64 or 96 (of the images it judges).
      width: ndf, the channels of the first layer.
      axis_name: the data-parallel axis to compute batch statistics over (None: per device).
      conditioning: how D uses class labels, one of :data:`D_CONDITIONINGS`; ``"concat"``
        appends them to the image as constant channels, projection and the classifier head
        work on the last convolution's features, flattened.
      num_classes: the number of classes (conditional D only).
      label_embed: with ``"concat"``, the labels' learned embedding size (0: one-hot).
      pack: PacGAN packing (Lin et al. 2018): D judges ``pack`` consecutive images stacked
        along the channels (the reference code's ``concat(..., 3)``), returning
        ``batch // pack`` logits.
      batch_norm: False leaves batch norm out and gives the convolutions biases, as
        R3GAN's D (Huang et al. 2024), whose R1 and R2 penalties judge each sample alone: with
        batch norm, a sample's logit and its input gradient depend on the rest of its batch.
    """

    resolution: int = 64
    width: int = 64
    axis_name: str | None = None
    conditioning: str = "none"
    num_classes: int = 0
    label_embed: int = 0
    pack: int = 1
    batch_norm: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True):
        _check_conditioning(self, labels)
        layers, base = dcgan_layout(self.resolution)
        if x.ndim != 4 or x.shape[1:3] != (self.resolution, self.resolution):
            raise ValueError(
                f"DCGANDiscriminator(resolution={self.resolution}) judges [batch, "
                f"{self.resolution}, {self.resolution}, channels] images, got "
                f"{list(x.shape)}; build it with the images' resolution"
            )
        x = pack_channels(x, self.pack, self.conditioning)
        h = x
        if self.conditioning == "concat":
            features = label_features(labels, self.num_classes, self.label_embed).astype(x.dtype)
            planes = jnp.broadcast_to(features[:, None, None], (*x.shape[:3], features.shape[-1]))
            h = jnp.concatenate([x, planes], axis=-1)
        for i in range(layers):
            h = DownConv(self.width * 2**i, use_bias=not self.batch_norm, name=f"Conv_{i}")(h)
            if self.batch_norm and i:
                h = batch_norm(train, self.axis_name)(h)
            h = nn.leaky_relu(h, negative_slope=0.2)
        logits = nn.Conv(
            1, (base, base), padding="VALID", use_bias=False, kernel_init=DCGAN_INIT,
            name=f"Conv_{layers}",
        )  # fmt: skip
        return conditional_output(
            self, h.reshape((x.shape[0], -1)), logits(h).reshape((x.shape[0],)), labels
        )

"""What a GAN variant adds to the losses: D's regularisers and G's extra terms, as values.

A *D term* is a callable ``term(inputs: DTermInputs)`` and a *G term* ``term(inputs:
GTermInputs)``; each returns its (already weighted) scalar, or ``(scalar, metrics)`` with a
dict of scalars to log. The step adds them to the loss in the order listed
(``StepConfig(d_terms=..., g_terms=...)``). A term of one's own is any such function: it sees
D as a function of its input, the samples, D's outputs, the conditions and the batch.

The label targets (smoothing, flips) and instance noise change how D's loss is computed and
what D sees, rather than adding to it; they are values of the step too
(:class:`LabelTargets`, :class:`InstanceNoise`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from jaxgan.axis import DataAxis
from jaxgan.losses import class_loss, gradient_penalty, r1_penalty, soft_bce_d_loss

Array = jax.Array


class DTermInputs(NamedTuple):
    """What a D term sees, for one discriminator update.

    Attributes:
      critic: D's scores as a function of its input, ``[n]`` (a PatchGAN's: each sample's
        mean patch logit), conditioned as the real samples are (batch statistics not
        updated); the penalties differentiate it.
      fake_critic: the same, conditioned as the generated samples are.
      real, fake: D's inputs (instance noise included).
      real_out, fake_out: D's whole outputs on them (``(logits, class_logits)`` for AC-GAN).
      real_condition, fake_condition: what each was conditioned on (labels, a source image).
      batch: the update's real minibatch.
      key: for the term's random draws (a term that may be combined with another random
        term folds in a constant of its own).
      axis: the data-parallel axis: draw per-example numbers with ``axis.rows``.
    """

    critic: Callable[[Array], Array]
    fake_critic: Callable[[Array], Array]
    real: Array
    fake: Array
    real_out: Any
    fake_out: Any
    real_condition: Any
    fake_condition: Any
    batch: dict[str, Array]
    key: Array
    axis: DataAxis


class GTermInputs(NamedTuple):
    """What a G term sees, for the generator update.

    Attributes:
      fake: G's output (differentiable with respect to G's parameters).
      fake_out: D's whole output on it.
      real_out: D's whole output on the minibatch's real samples.
      fake_condition: what G was conditioned on.
      batch: the step's last real minibatch (the source and target of a translation).
      axis: the data-parallel axis.
    """

    fake: Array
    fake_out: Any
    real_out: Any
    fake_condition: Any
    batch: dict[str, Array]
    axis: DataAxis


def add_terms(value: Array, terms, inputs) -> tuple[Array, dict[str, Array]]:
    """``value`` plus every term's value, and the metrics the terms report."""
    metrics: dict[str, Array] = {}
    for term in terms:
        out = term(inputs)
        if isinstance(out, tuple):
            out, extra = out
            metrics.update(extra)
        value += out
    return value, metrics


def _check_weight(name: str, value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclasses.dataclass(frozen=True)
class GradientPenalty:
    """WGAN-GP's penalty, ``weight * E[(||grad D(x_hat)|| - 1)^2]`` on random points between
    real and generated samples (:func:`~jaxgan.losses.gradient_penalty`)."""

    weight: float = 10.0

    def __post_init__(self):
        _check_weight("gp_weight", self.weight)

    def __call__(self, inputs: DTermInputs) -> Array:
        n = inputs.real.shape[0]
        eps = inputs.axis.rows(inputs.key, n, lambda k, rows: jax.random.uniform(k, (rows,)))
        return self.weight * gradient_penalty(inputs.critic, inputs.real, inputs.fake, eps)


@dataclasses.dataclass(frozen=True)
class R1Penalty:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * E[||grad D(x)||^2]`` on real samples."""

    gamma: float

    def __post_init__(self):
        _check_weight("r1_gamma", self.gamma)

    def __call__(self, inputs: DTermInputs) -> Array:
        return 0.5 * self.gamma * r1_penalty(inputs.critic, inputs.real)


@dataclasses.dataclass(frozen=True)
class R2Penalty:
    """R2: R1's form on generated samples, ``gamma / 2 * E[||grad D(G(z))||^2]`` (Mescheder et
    al. 2018; with R1, the pairing R3GAN trains with)."""

    gamma: float

    def __post_init__(self):
        _check_weight("r2_gamma", self.gamma)

    def __call__(self, inputs: DTermInputs) -> Array:
        return 0.5 * self.gamma * r1_penalty(inputs.fake_critic, inputs.fake)


@dataclasses.dataclass(frozen=True)
class ClassLoss:
    """AC-GAN's D term: ``weight * (CE(real classes) + CE(fake classes))`` of D's class logits
    (``out[1]``) against the labels; logs ``d_class_accuracy`` on the real samples.

    Attributes:
      weight: the term's weight.
      on_fake: include the generated samples (with the labels G was asked for).
    """

    weight: float = 1.0
    on_fake: bool = True

    def __call__(self, inputs: DTermInputs):
        real_classes, labels = inputs.real_out[1], inputs.real_condition
        fake_term = class_loss(inputs.fake_out[1], inputs.fake_condition) if self.on_fake else 0.0
        value = self.weight * (class_loss(real_classes, labels) + fake_term)
        accuracy = jnp.mean(jnp.argmax(real_classes, -1) == labels)
        return value, {"d_class_accuracy": accuracy}


@dataclasses.dataclass(frozen=True)
class GeneratorClassLoss:
    """AC-GAN's G term: ``weight * CE`` of D's class logits on G's samples against the labels
    G was asked for."""

    weight: float = 1.0

    def __call__(self, inputs: GTermInputs) -> Array:
        return self.weight * class_loss(inputs.fake_out[1], inputs.fake_condition)


@dataclasses.dataclass(frozen=True)
class DistanceToTarget:
    """``weight * mean(distance(φ(G(c)), φ(batch[target])))``: a G term pulling its output
    towards the batch's target image, in pixels (φ the identity) or in a network's features.
    Logs the unweighted mean as ``g_{name}``. :class:`L1ToTarget`, :class:`MSEToTarget` and
    :class:`FeatureContent` are its cases.

    Attributes:
      weight: the term's weight.
      target: the batch entry G's output is compared with (default ``"x"``, the real output).
    """

    weight: float = 1.0
    target: str = "x"

    name: ClassVar[str]

    def __post_init__(self):
        _check_weight(f"{self.name} weight", self.weight)

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.target,)

    def features(self, images: Array) -> Array:
        """φ: what is compared (the pixels themselves)."""
        return images

    def distance(self, a: Array, b: Array) -> Array:
        raise NotImplementedError

    def __call__(self, inputs: GTermInputs):
        output = self.features(inputs.fake.astype(jnp.float32))
        target = self.features(inputs.batch[self.target].astype(jnp.float32))
        value = jnp.mean(self.distance(output, jax.lax.stop_gradient(target)))
        return self.weight * value, {f"g_{self.name}": value}


@dataclasses.dataclass(frozen=True)
class L1ToTarget(DistanceToTarget):
    """``weight * E|G(c) - batch[target]|``: pix2pix's L1 term (λ = 100 in the paper); logs
    ``g_l1``."""

    weight: float = 100.0
    name: ClassVar[str] = "l1"

    def distance(self, a: Array, b: Array) -> Array:
        return jnp.abs(a - b)


@dataclasses.dataclass(frozen=True)
class MSEToTarget(DistanceToTarget):
    """``weight * E(G(c) - batch[target])²``: SRResNet's pixel-wise MSE content loss (Ledig
    et al. 2017); logs ``g_mse``."""

    name: ClassVar[str] = "mse"

    def distance(self, a: Array, b: Array) -> Array:
        return jnp.square(a - b)


@dataclasses.dataclass(frozen=True)
class FeatureContent(MSEToTarget):
    """``weight * E(φ(G(c)) - φ(batch[target]))²``: SRGAN's content loss in a network's
    features (the paper's φ: VGG19's; e.g. :class:`jaxgan.classifier.FeatureMaps`); logs
    ``g_content``.

    Attributes:
      network: φ, a function of images in G's range; a value (hashable, compared by its
        fields), as every part of the step's configuration.
    """

    network: Callable[[Array], Array] | None = None
    name: ClassVar[str] = "content"

    def __post_init__(self):
        super().__post_init__()
        if self.network is None:
            raise ValueError("FeatureContent needs the network whose features it compares")

    def features(self, images: Array) -> Array:
        return self.network(images)


@dataclasses.dataclass(frozen=True)
class LabelTargets:
    """D's cross-entropy against per-example targets instead of 1 and 0: one-sided label
    smoothing (real ``(0.9, 0.9)``, Salimans et al. 2016), soft labels (fake ``(0.0, 0.1)``),
    and a ``flip`` share of examples whose real/fake targets are swapped.

    Attributes:
      real: D's targets for real samples, uniform in ``[lo, hi]``.
      fake: D's targets for generated samples, uniform in ``[lo, hi]``.
      flip: the share of examples whose target is drawn from the other range.
    """

    real: tuple[float, float] = (1.0, 1.0)
    fake: tuple[float, float] = (0.0, 0.0)
    flip: float = 0.0

    def __post_init__(self):
        for name in ("real", "fake"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(
                    f"{name}_target must be a range lo <= hi within [0, 1], got {lo, hi}"
                )
        if not 0.0 <= self.flip <= 0.5:
            raise ValueError(f"label_flip must be in [0, 0.5], got {self.flip}")

    def draw(self, key: Array, n: int) -> Array:
        """``[n, 2]`` targets: column 0 for real examples, column 1 for fakes."""
        real_key, fake_key, flip_key = jax.random.split(key, 3)
        real = jax.random.uniform(real_key, (n, 2), minval=self.real[0], maxval=self.real[1])
        fake = jax.random.uniform(fake_key, (n, 2), minval=self.fake[0], maxval=self.fake[1])
        flip = jax.random.bernoulli(flip_key, self.flip, (n, 2))
        return jnp.stack(
            [
                jnp.where(flip[:, 0], fake[:, 0], real[:, 0]),
                jnp.where(flip[:, 1], real[:, 1], fake[:, 1]),
            ],
            axis=1,
        )

    def d_loss(self, real_logits: Array, fake_logits: Array, key: Array, axis: DataAxis) -> Array:
        """D's loss on this update's logits, the targets drawn for the global batch."""
        t = axis.rows(key, real_logits.shape[0], self.draw)
        per_sample = (-1,) + (1,) * (real_logits.ndim - 1)  # one target for all its patches
        return soft_bce_d_loss(
            real_logits, fake_logits, t[:, 0].reshape(per_sample), t[:, 1].reshape(per_sample)
        )


@dataclasses.dataclass(frozen=True)
class InstanceNoise:
    """Gaussian noise on every input of D (Sønderby et al. 2017), its standard deviation
    decaying linearly from ``std`` to 0 over ``steps`` (0 = constant)."""

    std: float
    steps: int = 0

    def __post_init__(self):
        _check_weight("instance_noise", self.std)
        if self.steps < 0:
            raise ValueError(f"instance_noise_steps must be >= 0, got {self.steps}")

    def std_at(self, step: Array) -> Array:
        """The standard deviation at ``step``."""
        if not self.steps:
            return jnp.asarray(self.std, jnp.float32)
        return self.std * jnp.maximum(0.0, 1.0 - step / self.steps)

    def apply(self, x: Array, step: Array, key: Array, axis: DataAxis) -> Array:
        """``x`` with this step's noise (drawn for the global batch)."""
        noise = axis.rows(
            key, x.shape[0], lambda k, rows: jax.random.normal(k, (rows, *x.shape[1:]))
        )
        return x + self.std_at(step) * noise

"""GAN losses as pure functions of the discriminator's logits.

Every discriminator loss takes ``(real_logits, fake_logits)`` and every generator loss takes
``(fake_logits, real_logits)`` (the real ones matter to relativistic losses; the classic ones
ignore them and accept ``fake_logits`` alone); both return a scalar to *minimise*. Logits come
one per sample, ``[n]``, or one per patch (PatchGAN's ``[n, h, w]``): every loss averages over
all of them, and the relativistic pairing pairs patches by position.
Probabilities never appear: with ``D(x) = sigmoid(l)``, ``log D(x) = -softplus(-l)`` and
``log(1 - D(x)) = -softplus(l)``, which stay finite for any logit, where ``log(sigmoid(l))``
underflows to ``-inf`` once ``l < -88``.

A loss is a :class:`GANLoss` value: its two functions and its own settings (a default gradient
penalty, weight clipping, whether its logits are cross-entropy logits, the health monitor's
"D is winning" threshold). The step takes the value itself, so a loss of one's own needs no
registration; :data:`LOSSES` names the built-in ones for the command line. Penalties on D's
input gradients (:func:`gradient_penalty`, :func:`r1_penalty`) take D as a function, since they
differentiate through it.

Example:
  >>> import jax.numpy as jnp
  >>> real, fake = jnp.array([2.0]), jnp.array([-1.0])
  >>> float(bce_d_loss(real, fake))  # softplus(-2) + softplus(-1)
  0.4401...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def bce_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Discriminator binary cross-entropy: ``-E[log D(x)] - E[log(1 - D(G(z)))]``.

    This is the negated GAN value ``V(D, G)`` of Goodfellow et al. 2014, which D maximises.

    Args:
      real_logits: D's logits on real samples, any shape.
      fake_logits: D's logits on generated samples, any shape.

    Returns:
      The scalar loss; ``2 log 2`` when D outputs 1/2 everywhere.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_value(real_logits: Array, fake_logits: Array) -> Array:
    """The GAN value ``V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]`` (D maximises, G minimises).

    Args:
      real_logits: D's logits on real samples.
      fake_logits: D's logits on generated samples.

    Returns:
      The scalar value; ``-2 log 2`` at the game's equilibrium ``D = 1/2``.
    """
    return -bce_d_loss(real_logits, fake_logits)


def minimax_g_loss(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """The original (saturating) generator loss: G minimises ``E[log(1 - D(G(z)))]``.

    Its gradient vanishes where D confidently rejects the fakes (``D(G(z)) -> 0``), which is
    why :func:`non_saturating_g_loss` is used in practice.

    Args:
      fake_logits: D's logits on generated samples.
      real_logits: unused; every generator loss takes them (relativistic ones need them).

    Returns:
      The scalar loss, ``-E[softplus(l)]``.
    """
    return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_g_loss(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """The non-saturating generator loss: G maximises ``E[log D(G(z))]``.

    Same fixed point as the minimax game, but strong gradients exactly where the minimax loss
    saturates (Goodfellow et al. 2014, section 3).

    Args:
      fake_logits: D's logits on generated samples.
      real_logits: unused; every generator loss takes them (relativistic ones need them).

    Returns:
      The scalar loss, ``E[softplus(-l)]``.
    """
    return jnp.mean(jax.nn.softplus(-fake_logits))


def lsgan_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Least-squares discriminator loss (Mao et al. 2017, targets a=0, b=1).

    ``1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]`` on D's raw (unsquashed) output.

    Args:
      real_logits: D's raw outputs on real samples.
      fake_logits: D's raw outputs on generated samples.

    Returns:
      The scalar loss.
    """
    return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def lsgan_g_loss(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """Least-squares generator loss (Mao et al. 2017, target c=1): ``1/2 E[(D(G(z)) - 1)^2]``.

    Args:
      fake_logits: D's raw outputs on generated samples.
      real_logits: unused; every generator loss takes them (relativistic ones need them).

    Returns:
      The scalar loss.
    """
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


def hinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018).

    ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``: D stops pushing on samples it already
    separates by a margin of 1, which keeps its logits bounded.

    Args:
      real_logits: D's raw outputs on real samples.
      fake_logits: D's raw outputs on generated samples.

    Returns:
      The scalar loss.
    """
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits: Array, real_logits: Array | None = None) -> Array:
    """Hinge-GAN generator loss: ``-E[D(G(z))]``; also WGAN's (Arjovsky et al. 2017).

    Args:
      fake_logits: D's raw outputs on generated samples.
      real_logits: unused; every generator loss takes them (relativistic ones need them).

    Returns:
      The scalar loss.
    """
    return -jnp.mean(fake_logits)


def wasserstein_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """WGAN critic loss (Arjovsky et al. 2017): ``E[D(G(z))] - E[D(x)]``.

    Minimising it maximises the critic's estimate of the Wasserstein-1 distance, which is only
    meaningful for a Lipschitz critic: pair it with weight clipping (``wgan``) or the gradient
    penalty (``wgan_gp``).

    Args:
      real_logits: the critic's raw outputs on real samples.
      fake_logits: the critic's raw outputs on generated samples.

    Returns:
      The scalar loss (unbounded: its negation is the distance estimate).
    """
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def rpgan_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Relativistic pairing discriminator loss (Jolicoeur-Martineau 2018; R3GAN's form, Huang
    et al. 2024): ``E[softplus(D(G(z)) - D(x))]``, each real sample paired with a fake one.

    D must score each real sample above its partner; unlike the classic loss, G can move the
    decision only relative to the data, which removes a source of mode dropping.

    Args:
      real_logits: D's raw outputs on real samples, ``[n]`` (or ``[n, h, w]`` patches).
      fake_logits: D's raw outputs on generated samples, shaped alike (paired by position).

    Returns:
      The scalar loss; ``log 2`` at the fixed point ``D(x) = D(G(z))``.
    """
    return jnp.mean(jax.nn.softplus(fake_logits - real_logits))


def rpgan_g_loss(fake_logits: Array, real_logits: Array) -> Array:
    """Relativistic pairing generator loss: ``E[softplus(D(x) - D(G(z)))]`` (pairs as in
    :func:`rpgan_d_loss`).

    Args:
      fake_logits: D's raw outputs on generated samples, ``[n]`` (or ``[n, h, w]``).
      real_logits: D's raw outputs on real samples, shaped alike.

    Returns:
      The scalar loss; ``log 2`` at the fixed point.
    """
    return jnp.mean(jax.nn.softplus(real_logits - fake_logits))


def ragan_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Relativistic average discriminator loss (RaGAN, Jolicoeur-Martineau 2018):
    ``E[softplus(-(D(x) - E D(G(z))))] + E[softplus(D(G(z)) - E D(x))]``: each real sample
    judged against the average fake, each fake against the average real.

    Args:
      real_logits: D's raw outputs on real samples.
      fake_logits: D's raw outputs on generated samples.

    Returns:
      The scalar loss; ``2 log 2`` at the fixed point.
    """
    real_vs = real_logits - jnp.mean(fake_logits)
    fake_vs = fake_logits - jnp.mean(real_logits)
    return jnp.mean(jax.nn.softplus(-real_vs)) + jnp.mean(jax.nn.softplus(fake_vs))


def ragan_g_loss(fake_logits: Array, real_logits: Array) -> Array:
    """Relativistic average generator loss: the discriminator loss with real and fake
    swapped, ``E[softplus(-(D(G(z)) - E D(x)))] + E[softplus(D(x) - E D(G(z)))]``.

    Args:
      fake_logits: D's raw outputs on generated samples.
      real_logits: D's raw outputs on real samples.

    Returns:
      The scalar loss; ``2 log 2`` at the fixed point.
    """
    return ragan_d_loss(fake_logits, real_logits)


def soft_bce_d_loss(
    real_logits: Array, fake_logits: Array, real_targets: Array, fake_targets: Array
) -> Array:
    """Discriminator cross-entropy against per-example targets in [0, 1].

    ``E[BCE(l_real, t_real)] + E[BCE(l_fake, t_fake)]`` with ``BCE(l, t) = t softplus(-l) +
    (1 - t) softplus(l)``. With targets 1 and 0 it is :func:`bce_d_loss`; label smoothing
    (real targets 0.9, Salimans et al. 2016), soft labels and label flipping are targets.

    Args:
      real_logits, fake_logits: D's logits, ``[n]`` (or ``[n, h, w]``) each.
      real_targets, fake_targets: the targets, broadcastable to the logits.

    Returns:
      The scalar loss.
    """

    def bce(logits, targets):
        return jnp.mean(
            targets * jax.nn.softplus(-logits) + (1 - targets) * jax.nn.softplus(logits)
        )

    return bce(real_logits, real_targets) + bce(fake_logits, fake_targets)


def _input_gradients(critic: Callable[[Array], Array], x: Array) -> Array:
    """Per-sample gradients of the critic's outputs with respect to its inputs, flattened.

    The gradient of the summed outputs: exact for a critic that scores each sample on its own
    (with batch statistics or packs, samples' gradients mix, as in the references' code)."""
    grads = jax.grad(lambda inputs: jnp.sum(critic(inputs)))(x)
    return grads.reshape((x.shape[0], -1))


def gradient_penalty(
    critic: Callable[[Array], Array], real: Array, fake: Array, weights: Array
) -> Array:
    """WGAN-GP's penalty (Gulrajani et al. 2017): ``E[(||grad D(x_hat)|| - 1)^2]``.

    ``x_hat = e x + (1 - e) G(z)`` with ``e ~ U[0, 1]`` per sample (``weights``, drawn by the
    caller so that a data-parallel step can draw the global batch's): the optimal critic has
    gradient norm 1 on the lines between real and generated samples, so the penalty is 0 for a
    critic that is exactly 1-Lipschitz along them. Weighted by λ = 10 in the paper.

    Args:
      critic: maps a batch shaped like ``real`` to ``[n]`` outputs (the step gives a
        PatchGAN's as each sample's mean patch logit).
      real, fake: real and generated batches of one shape.
      weights: ``[n]`` interpolation weights in [0, 1].

    Returns:
      The scalar penalty (unweighted).
    """
    eps = weights.reshape((-1,) + (1,) * (real.ndim - 1))
    norms = jnp.linalg.norm(_input_gradients(critic, eps * real + (1 - eps) * fake), axis=1)
    return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic: Callable[[Array], Array], real: Array) -> Array:
    """The R1 penalty (Mescheder et al. 2018): ``E[||grad D(x)||^2]`` on real data.

    Pushes D's gradient to zero on the data, which makes the game locally convergent; added
    to D's loss as ``gamma / 2`` times this value.

    Args:
      critic: maps a batch shaped like ``real`` to ``[n]`` outputs (the step gives a
        PatchGAN's as each sample's mean patch logit).
      real: a real batch.

    Returns:
      The scalar penalty (unweighted).
    """
    return jnp.mean(jnp.sum(jnp.square(_input_gradients(critic, real)), axis=1))


def class_loss(class_logits: Array, labels: Array) -> Array:
    """The auxiliary classifier's loss of AC-GAN (Odena et al. 2017): the mean softmax
    cross-entropy ``-E[log p(c | x)]`` of D's class logits against the labels.

    D adds it on real and generated samples (with the labels G was asked for), G on its own
    samples: both want generated samples that are recognisably of their class.

    Args:
      class_logits: ``[n, num_classes]`` logits.
      labels: ``[n]`` integer labels.

    Returns:
      The scalar loss; ``log(num_classes)`` for uniform logits.

    Example:
      >>> float(class_loss(jnp.zeros((1, 4)), jnp.array([2])))  # log 4
      1.3862...
    """
    log_p = jax.nn.log_softmax(class_logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1))


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A discriminator loss, the generator loss that plays against it, and their settings.

    A value the step is built from (part of the state's static settings): two losses are the
    same compiled step only when they are equal, and their functions compare by identity, so
    two different losses never share a compiled program, whatever their names.

    Attributes:
      name: how logs and errors call it.
      discriminator: ``(real_logits, fake_logits) -> scalar`` that D minimises.
      generator: ``(fake_logits, real_logits) -> scalar`` that G minimises.
      gp_weight: λ of the gradient penalty the loss needs by default (WGAN-GP's 10), added
        to D's terms unless they list a :class:`~jaxgan.step.GradientPenalty` themselves.
      weight_clip: clip D's parameters to ``[-c, c]`` after each update (WGAN's 0.01); 0 = off.
      cross_entropy: D's logits are read as probabilities ``sigmoid(l)``, so label targets
        (smoothing, flips) apply to the loss.
      winning_d_loss: D's loss below which the health monitor counts D as winning; None
        turns that sign off (unbounded critics).
      exploding_d_loss: D's loss above which the monitor counts the game as out of balance
        the other way (D far worse than at chance, or diverging); None turns it off.

    Example:
      >>> rpgan = GANLoss(
      ...     "rpgan",
      ...     discriminator=lambda r, f: jnp.mean(jax.nn.softplus(f - r)),
      ...     generator=lambda f, r: jnp.mean(jax.nn.softplus(r - f)),
      ... )
    """

    name: str
    discriminator: Callable[[Array, Array], Array]
    generator: Callable[[Array, Array], Array]
    gp_weight: float = 0.0
    weight_clip: float = 0.0
    cross_entropy: bool = False
    winning_d_loss: float | None = None
    exploding_d_loss: float | None = None

    def __post_init__(self):
        for name in ("discriminator", "generator"):
            if not callable(getattr(self, name)):
                raise TypeError(f"GANLoss {self.name!r}: {name} must be a function")
        for name in ("gp_weight", "weight_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GANLoss {self.name!r}: {name} must be >= 0")


# The health monitor's thresholds: D "winning" below about 7 % of its loss at chance (2 log 2
# for cross-entropy, 1/4 for least squares at outputs 1/2, 2 for hinge at 0), the game out of
# balance the other way above 5-8 times it (10, 2 and 10).
_CROSS_ENTROPY = {"cross_entropy": True, "winning_d_loss": 0.1, "exploding_d_loss": 10.0}
LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", bce_d_loss, minimax_g_loss, **_CROSS_ENTROPY),
        GANLoss("non_saturating", bce_d_loss, non_saturating_g_loss, **_CROSS_ENTROPY),
        GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss, winning_d_loss=0.02, exploding_d_loss=2.0),
        GANLoss("hinge", hinge_d_loss, hinge_g_loss, winning_d_loss=0.1, exploding_d_loss=10.0),
        # The Lipschitz constraints of the WGANs: weight clipping at c = 0.01 (Arjovsky et
        # al.), the gradient penalty's λ = 10 (Gulrajani et al.).
        # Relativistic: D's loss is log 2 (rpgan) or 2 log 2 (ragan) at the fixed point.
        GANLoss("rpgan", rpgan_d_loss, rpgan_g_loss, winning_d_loss=0.05, exploding_d_loss=5.0),
        GANLoss("ragan", ragan_d_loss, ragan_g_loss, winning_d_loss=0.1, exploding_d_loss=10.0),
        GANLoss("wgan", wasserstein_d_loss, hinge_g_loss, weight_clip=0.01),
        GANLoss("wgan_gp", wasserstein_d_loss, hinge_g_loss, gp_weight=10.0),
    )
}


def get_loss(loss: str | GANLoss) -> GANLoss:
    """``loss`` itself, or the built-in loss of that name; raises ``ValueError`` naming the
    valid ones, ``TypeError`` for anything else."""
    if isinstance(loss, GANLoss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"a loss is a GANLoss or the name of one in LOSSES, not {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(sorted(LOSSES))}")
    return LOSSES[loss]

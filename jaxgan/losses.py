"""GAN losses as pure functions of the discriminator's logits.

Every discriminator loss takes ``(real_logits, fake_logits)`` and every generator loss takes
``fake_logits``; both return a scalar to *minimise*. Probabilities never appear: with
``D(x) = sigmoid(l)``, ``log D(x) = -softplus(-l)`` and ``log(1 - D(x)) = -softplus(l)``, which
stay finite for any logit, where ``log(sigmoid(l))`` underflows to ``-inf`` once ``l < -88``.

A loss is registered in :data:`LOSSES` as a :class:`GANLoss` pair; adding one is writing its
two functions (or reusing a discriminator loss) and one line in the table.

Example:
  >>> import jax.numpy as jnp
  >>> real, fake = jnp.array([2.0]), jnp.array([-1.0])
  >>> float(bce_d_loss(real, fake))  # softplus(-2) + softplus(-1)
  0.4401...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

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


def minimax_g_loss(fake_logits: Array) -> Array:
    """The original (saturating) generator loss: G minimises ``E[log(1 - D(G(z)))]``.

    Its gradient vanishes where D confidently rejects the fakes (``D(G(z)) -> 0``), which is
    why :func:`non_saturating_g_loss` is used in practice.

    Args:
      fake_logits: D's logits on generated samples.

    Returns:
      The scalar loss, ``-E[softplus(l)]``.
    """
    return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_g_loss(fake_logits: Array) -> Array:
    """The non-saturating generator loss: G maximises ``E[log D(G(z))]``.

    Same fixed point as the minimax game, but strong gradients exactly where the minimax loss
    saturates (Goodfellow et al. 2014, section 3).

    Args:
      fake_logits: D's logits on generated samples.

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


def lsgan_g_loss(fake_logits: Array) -> Array:
    """Least-squares generator loss (Mao et al. 2017, target c=1): ``1/2 E[(D(G(z)) - 1)^2]``.

    Args:
      fake_logits: D's raw outputs on generated samples.

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


def hinge_g_loss(fake_logits: Array) -> Array:
    """Hinge-GAN generator loss: ``-E[D(G(z))]``.

    Args:
      fake_logits: D's raw outputs on generated samples.

    Returns:
      The scalar loss.
    """
    return -jnp.mean(fake_logits)


class GANLoss(NamedTuple):
    """A discriminator loss and the generator loss that plays against it."""

    discriminator: Callable[[Array, Array], Array]
    generator: Callable[[Array], Array]


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(bce_d_loss, minimax_g_loss),
    "non_saturating": GANLoss(bce_d_loss, non_saturating_g_loss),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
}


def get_loss(name: str) -> GANLoss:
    """Returns the registered loss ``name``; raises ``ValueError`` naming the valid ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}")
    return LOSSES[name]

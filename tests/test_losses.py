"""Loss values against hand computations, gradient signs, and numerical stability."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses

SP = lambda x: math.log1p(math.exp(x))  # noqa: E731 (softplus, by hand)

D_CASES = [
    # (loss, real logits, fake logits, expected)
    (losses.bce_d_loss, [0.0], [0.0], 2 * math.log(2)),
    (losses.bce_d_loss, [2.0], [-1.0], SP(-2.0) + SP(-1.0)),
    (losses.bce_d_loss, [2.0, 0.0], [-1.0, 3.0], (SP(-2) + SP(0)) / 2 + (SP(-1) + SP(3)) / 2),
    (losses.lsgan_d_loss, [1.0], [0.0], 0.0),
    (losses.lsgan_d_loss, [0.0], [1.0], 1.0),
    (losses.lsgan_d_loss, [3.0], [-2.0], 0.5 * 4 + 0.5 * 4),
    (losses.hinge_d_loss, [2.0], [-2.0], 0.0),
    (losses.hinge_d_loss, [0.0], [0.0], 2.0),
    (losses.hinge_d_loss, [0.5, 3.0], [0.5, -3.0], 0.25 + 0.75),
]

G_CASES = [
    (losses.non_saturating_g_loss, [0.0], math.log(2)),
    (losses.non_saturating_g_loss, [-1.0], SP(1.0)),
    (losses.minimax_g_loss, [0.0], -math.log(2)),
    (losses.minimax_g_loss, [-1.0], -SP(-1.0)),
    (losses.lsgan_g_loss, [0.0], 0.5),
    (losses.lsgan_g_loss, [1.0, 3.0], (0.0 + 0.5 * 4) / 2),
    (losses.hinge_g_loss, [3.0, -1.0], -1.0),
]


@pytest.mark.parametrize(("fn", "real", "fake", "expected"), D_CASES)
def test_discriminator_loss_values(fn, real, fake, expected):
    assert float(fn(jnp.array(real), jnp.array(fake))) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("fn", "fake", "expected"), G_CASES)
def test_generator_loss_values(fn, fake, expected):
    assert float(fn(jnp.array(fake))) == pytest.approx(expected, rel=1e-6)


def test_minimax_value_is_minus_bce_and_minus_2log2_at_equilibrium():
    zeros = jnp.zeros(4)
    assert float(losses.minimax_value(zeros, zeros)) == pytest.approx(-2 * math.log(2))
    real, fake = jnp.array([1.5, -0.5]), jnp.array([0.3, -2.0])
    assert float(losses.minimax_value(real, fake)) == -float(losses.bce_d_loss(real, fake))


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_gradient_signs(name):
    """D pushes real logits up and fake logits down; G pushes fake logits up.

    At 0.3 every loss is active: below LSGAN's and hinge's real target (1), above LSGAN's fake
    target (0) and hinge's fake margin (-1).
    """
    loss = losses.get_loss(name)
    real, fake = jnp.array([0.3]), jnp.array([0.3])
    d_real, d_fake = jax.grad(loss.discriminator, argnums=(0, 1))(real, fake)
    g_fake = jax.grad(loss.generator)(fake)
    assert d_real[0] < 0 < d_fake[0]
    assert g_fake[0] < 0


def test_minimax_saturates_where_non_saturating_does_not():
    """Where D confidently rejects fakes, the minimax G loss has (almost) no gradient."""
    fake = jnp.array([-10.0])
    minimax = jax.grad(losses.minimax_g_loss)(fake)[0]
    non_saturating = jax.grad(losses.non_saturating_g_loss)(fake)[0]
    assert abs(minimax) < 1e-4
    assert non_saturating == pytest.approx(-1.0, abs=1e-4)


def test_extreme_logits_stay_finite():
    real, fake = jnp.array([-1000.0]), jnp.array([1000.0])
    assert float(losses.bce_d_loss(real, fake)) == pytest.approx(2000.0)
    assert float(losses.non_saturating_g_loss(-fake)) == pytest.approx(1000.0)
    grads = jax.grad(losses.bce_d_loss, argnums=(0, 1))(real, fake)
    assert all(np.isfinite(g).all() for g in grads)


def test_unknown_loss_names_the_valid_ones():
    with pytest.raises(ValueError, match="hinge"):
        losses.get_loss("wasserstein-ish")

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
    (losses.wasserstein_d_loss, [2.0, 4.0], [-1.0, 0.0], -0.5 - 3.0),
    (losses.wasserstein_d_loss, [0.0], [0.0], 0.0),
    (losses.rpgan_d_loss, [0.7, -2.0], [0.7, -2.0], math.log(2)),  # the fixed point
    (losses.rpgan_d_loss, [2.0, 0.0], [1.0, -1.0], SP(-1.0)),
    (losses.ragan_d_loss, [0.4, 0.4], [0.4, 0.4], 2 * math.log(2)),  # its fixed point
    # mean fake 0, mean real 1: (SP(-2) + SP(0)) / 2 + (SP(0) + SP(-2)) / 2
    (losses.ragan_d_loss, [2.0, 0.0], [1.0, -1.0], SP(-2.0) + SP(0.0)),
]

# Relativistic G losses: (loss, real logits, fake logits, expected).
RELATIVISTIC_G_CASES = [
    (losses.rpgan_g_loss, [0.7, -2.0], [0.7, -2.0], math.log(2)),
    (losses.rpgan_g_loss, [2.0, 0.0], [1.0, -1.0], SP(1.0)),
    (losses.ragan_g_loss, [0.4, 0.4], [0.4, 0.4], 2 * math.log(2)),
    # (SP(-(1 - 1)) + SP(-(-1 - 1))) / 2 + (SP(2 - 0) + SP(0 - 0)) / 2
    (losses.ragan_g_loss, [2.0, 0.0], [1.0, -1.0], SP(0.0) + SP(2.0)),
]


@pytest.mark.parametrize(("fn", "real", "fake", "expected"), RELATIVISTIC_G_CASES)
def test_relativistic_generator_losses_match_hand_values(fn, real, fake, expected):
    value = float(fn(jnp.array(fake), jnp.array(real)))
    assert value == pytest.approx(expected, rel=1e-6)


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
    g_fake = jax.grad(loss.generator)(fake, real)  # relativistic ones read the real logits
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


def test_wasserstein_gradients_are_constant():
    """The critic loss's gradient is -1/n on each real and +1/n on each fake output."""
    real, fake = jnp.array([5.0, -3.0]), jnp.array([100.0, 0.2])
    d_real, d_fake = jax.grad(losses.wasserstein_d_loss, argnums=(0, 1))(real, fake)
    np.testing.assert_allclose(d_real, [-0.5, -0.5])
    np.testing.assert_allclose(d_fake, [0.5, 0.5])


def test_soft_bce_with_hard_targets_is_bce_and_matches_hand_values():
    real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
    hard = losses.soft_bce_d_loss(real, fake, jnp.ones(2), jnp.zeros(2))
    assert float(hard) == pytest.approx(float(losses.bce_d_loss(real, fake)), rel=1e-6)
    # Target 0.9 on real logit 0: 0.9 softplus(0) + 0.1 softplus(0) = log 2, whatever the target.
    smooth = losses.soft_bce_d_loss(jnp.zeros(1), jnp.zeros(1), jnp.full(1, 0.9), jnp.zeros(1))
    assert float(smooth) == pytest.approx(2 * math.log(2))
    # Its gradient in the real logit is sigmoid(l) - t: 0.5 - 0.9 at l = 0.
    grad = jax.grad(lambda r: losses.soft_bce_d_loss(r, jnp.zeros(1), 0.9, 0.0))(jnp.zeros(1))
    assert float(grad[0]) == pytest.approx(-0.4)


def linear_critic(w):
    return lambda x: x.reshape((x.shape[0], -1)) @ w


def test_gradient_penalty_is_zero_for_a_1_lipschitz_critic_and_positive_otherwise():
    key = jax.random.key(0)
    real, fake = jax.random.normal(key, (2, 16, 3))
    weights = jax.random.uniform(jax.random.key(1), (16,))
    unit = jnp.array([0.6, 0.0, 0.8])  # |w| = 1: gradient norm 1 everywhere
    assert float(losses.gradient_penalty(linear_critic(unit), real, fake, weights)) == (
        pytest.approx(0.0, abs=1e-10)
    )
    # |w| = 2: (2 - 1)² = 1; |w| = 0.5: (0.5 - 1)² = 0.25.
    for scale, expected in ((2.0, 1.0), (0.5, 0.25)):
        penalty = losses.gradient_penalty(linear_critic(scale * unit), real, fake, weights)
        assert float(penalty) == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_is_taken_at_the_interpolates():
    """For D(x) = |x|²/2 the input gradient is x itself, so the penalty is E(|x_hat| - 1)²."""
    real, fake = jnp.array([[3.0, 4.0]]), jnp.array([[0.0, 0.0]])
    penalty = losses.gradient_penalty(
        lambda x: 0.5 * jnp.sum(x * x, axis=1), real, fake, jnp.array([0.5])
    )
    assert float(penalty) == pytest.approx((2.5 - 1.0) ** 2)  # x_hat = (1.5, 2)


def test_r1_penalty_is_the_squared_input_gradient_norm():
    real = jax.random.normal(jax.random.key(2), (8, 2, 2))
    w = jnp.array([1.0, 2.0, -2.0, 0.0])
    assert float(losses.r1_penalty(linear_critic(w), real)) == pytest.approx(9.0)

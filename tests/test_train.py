"""GANState, train_step and the epoch runner: learning, determinism, vmap, k D-steps."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import adam_step_sizes, assert_same_state

from jaxgan import GANState, StepConfig, train_step
from jaxgan.epoch import epoch_permutation, train_epoch
from jaxgan.experiments import gaussian1d
from jaxgan.losses import bce_d_loss
from jaxgan.models import MLPDiscriminator, MLPGenerator, minibatch_std
from jaxgan.state import generate_samples
from jaxgan.step import train_step_body
from jaxgan.trainer import make_optimizer


def make_state(seed=0, *, d_steps=1, g_tx=None, d_tx=None, batch_norm=False, ema_decay=0.0):
    key = seed if isinstance(seed, jax.Array) else jax.random.key(seed)
    return GANState.create(
        generator=MLPGenerator((2,), hidden=(16, 16), batch_norm=batch_norm),
        discriminator=MLPDiscriminator(hidden=(16, 16)),
        g_tx=g_tx or optax.adam(1e-3),
        d_tx=d_tx or optax.adam(1e-3),
        key=key,
        config=StepConfig(d_steps=d_steps, latent_dim=3, ema_decay=ema_decay),
    )


def real_batch(n, seed=1):
    return {"x": jax.random.normal(jax.random.key(seed), (n, 2)) + 3.0}


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_step_returns_metrics_and_advances():
    state, metrics = train_step(make_state(), real_batch(32))
    assert set(metrics) == {
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "d_grad_norm",
        "g_grad_norm",
    } | {
        "diversity",
        "d_winning",
    }
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
    assert int(state.step) == 1


def test_discriminator_update_lowers_its_loss_on_fixed_data():
    """With G frozen, one D step lowers D's loss on a fixed real batch and fixed fakes."""
    state = make_state(g_tx=optax.set_to_zero(), d_tx=optax.sgd(0.1))
    batch = real_batch(512)
    z = jax.random.normal(jax.random.key(7), (512, 3))

    def d_loss(s):
        fake = generate_samples(s, z)
        return float(
            bce_d_loss(
                s.d.apply_fn({"params": s.d.params}, batch["x"]),
                s.d.apply_fn({"params": s.d.params}, fake),
            )
        )

    before = d_loss(state)
    g_before = jax.tree.map(np.asarray, state.g.params)
    state, _ = train_step(state, batch)
    assert d_loss(state) < before - 1e-3
    assert trees_equal(g_before, state.g.params)


def trees_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


def run(seed, steps=20, **kwargs):
    state = make_state(seed, **kwargs)
    for i in range(steps):
        state, _ = train_step(state, real_batch(32, seed=100 + i))
    return state


def test_same_seed_gives_bitwise_identical_parameters():
    a, b = run(0), run(0)
    assert trees_equal(a.g.params, b.g.params) and trees_equal(a.d.params, b.d.params)
    assert trees_equal(a.g.opt_state, b.g.opt_state) and trees_equal(a.d.opt_state, b.d.opt_state)
    c = run(1)
    assert not np.array_equal(leaves(a.g.params)[0], leaves(c.g.params)[0])


@jax.default_matmul_precision("float32")  # GPUs' default TF32 differs batched and unbatched
def test_vmap_over_three_seeds_equals_three_separate_runs():
    seeds = (0, 1, 2)
    stacked = jax.vmap(make_state)(jax.vmap(jax.random.key)(jnp.array(seeds)))
    step = jax.jit(jax.vmap(train_step_body, in_axes=(0, None)))
    for i in range(10):
        stacked, metrics = step(stacked, real_batch(32, seed=100 + i))
    assert metrics["d_loss"].shape == (3,)
    for j, seed in enumerate(seeds):
        alone = run(seed, steps=10)
        for x, y in zip(leaves(alone.g.params), leaves(stacked.g.params), strict=True):
            np.testing.assert_allclose(x, y[j], rtol=1e-5, atol=1e-6)
        for x, y in zip(leaves(alone.d.params), leaves(stacked.d.params), strict=True):
            np.testing.assert_allclose(x, y[j], rtol=1e-5, atol=1e-6)


def test_k_discriminator_steps_per_generator_step():
    state, _ = train_step(make_state(d_steps=3), real_batch(3 * 8))
    assert int(state.d.step) == 3 and int(state.g.step) == 1
    with pytest.raises(ValueError, match="d_steps=3"):
        train_step(make_state(d_steps=3), real_batch(10))


def test_batch_norm_statistics_are_carried():
    state = make_state(batch_norm=True)
    before = leaves(state.g.batch_stats)
    state, _ = train_step(state, real_batch(32))
    after = leaves(state.g.batch_stats)
    assert before and not all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_ema_follows_the_closed_form():
    """The EMA is the exponentially weighted average of the iterates, with the warm-up decay
    min(d, (1 + t) / (10 + t)) at step t: 0.1, 2/11, 3/12, then d = 0.3 from step 3 on."""
    decay = 0.3
    state = make_state(ema_decay=decay, g_tx=optax.sgd(0.05))
    ema = leaves(state.ema_params)
    for t in range(6):
        state, _ = train_step(state, real_batch(16, seed=200 + t))
        d = min(decay, (1 + t) / (10 + t))
        ema = [d * e + (1 - d) * p for e, p in zip(ema, leaves(state.g.params), strict=True)]
    for expected, got in zip(ema, leaves(state.ema_params), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_epoch_runner_scans_a_permutation_of_the_data():
    data = real_batch(100)
    state, metrics = train_epoch(make_state(d_steps=2), data, batch_size=10)
    assert metrics["g_loss"].shape == (5,)  # 100 // (10 * 2)
    assert int(state.step) == 5 and int(state.d.step) == 10


def test_epoch_runner_learns_the_data_mean():
    """Generated samples move from around 0 towards real data centred at (3, 3)."""
    state = make_state()
    z = jax.random.normal(jax.random.key(9), (2000, 3))
    start = float(jnp.mean(generate_samples(state, z)))
    data = real_batch(4000)
    for _ in range(6):
        state, _ = train_epoch(state, data, batch_size=50)
    end = float(jnp.mean(generate_samples(state, z)))
    assert abs(start - 3.0) > 2.0 and abs(end - 3.0) < 0.5


def test_discriminator_dropout_is_active_in_training_only():
    d = MLPDiscriminator(hidden=(64,), dropout=0.5)
    x = jax.random.normal(jax.random.key(0), (8, 2))
    params = d.init(jax.random.key(1), x, train=False)
    evaluate = d.apply(params, x, train=False)
    np.testing.assert_array_equal(evaluate, d.apply(params, x, train=False))
    a = d.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    b = d.apply(params, x, train=True, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(a, b) and not np.allclose(a, evaluate)
    state = GANState.create(
        generator=MLPGenerator((2,), hidden=(16,)),
        discriminator=d,
        g_tx=optax.adam(1e-3),
        d_tx=optax.adam(1e-3),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=3),
    )
    state, metrics = train_step(state, real_batch(32))  # the step supplies dropout keys
    assert np.isfinite(float(metrics["d_loss"]))


def test_minibatch_std_is_the_batch_spread_for_every_sample():
    x = jnp.array([[0.0, 0.0], [2.0, 4.0]])  # per-feature std 1 and 2: mean 1.5
    np.testing.assert_allclose(minibatch_std(x), [[1.5], [1.5]], rtol=1e-6)
    collapsed = jnp.ones((4, 2))
    assert float(minibatch_std(collapsed)[0, 0]) < 1e-3
    d = MLPDiscriminator(hidden=(8,), minibatch_std=True)
    params = d.init(jax.random.key(0), x)["params"]
    assert params["Dense_0"]["kernel"].shape == (3, 8)  # 2 inputs + the batch's spread


def test_assert_same_state_compares_bits():
    assert_same_state({"a": np.array([0.0, np.nan])}, {"a": np.array([0.0, np.nan])})
    for other in (np.array([-0.0, np.nan]), np.array([0.0, 1.0]), np.array([0.0, np.nan], "f4")):
        with pytest.raises(AssertionError):
            assert_same_state({"a": np.array([0.0, np.nan])}, {"a": other})


# --- optimisation: schedules, rmsprop; the data order ------------------------------------


def test_learning_rate_schedules_follow_their_formulas_over_the_run():
    lr, total = 1e-2, 10
    t = np.arange(total)
    for schedule, expected in (
        ("constant", np.full(total, lr)),
        ("linear", lr * (1 - t / total)),  # to 0 at the run's end
        ("cosine", lr * 0.5 * (1 + np.cos(np.pi * t / total))),
    ):
        config = gaussian1d.Config(lr_schedule=schedule, beta1=0.5)
        sizes = adam_step_sizes(make_optimizer(lr, config, total), total)
        np.testing.assert_allclose(sizes, expected, rtol=1e-4, atol=1e-9, err_msg=schedule)


def test_rmsprop_takes_its_hand_computed_steps():
    lr, decay, eps = 1e-2, 0.9, 1e-8  # optax.rmsprop's defaults
    config = gaussian1d.Config(optimizer="rmsprop", lr_schedule="constant")
    sizes = adam_step_sizes(make_optimizer(lr, config, 3), 3)
    v = np.cumsum([(1 - decay) * decay**k for k in range(3)])  # v_t for g = 1, v_0 = 0
    np.testing.assert_allclose(sizes, lr / (np.sqrt(v) + eps), rtol=1e-5)  # 3.16 lr, ...


def test_each_epoch_has_its_own_data_order_a_function_of_key_and_step():
    key, n = jax.random.key(7), 50
    orders = [np.asarray(epoch_permutation(key, jnp.array(s), n)) for s in (0, 10, 20)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))  # a permutation
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    np.testing.assert_array_equal(orders[1], epoch_permutation(key, jnp.array(10), n))  # again
    other = np.asarray(epoch_permutation(jax.random.key(8), jnp.array(10), n))
    assert not np.array_equal(orders[1], other)


def test_train_epoch_feeds_each_step_the_epochs_order_and_a_chunk_resumes_it():
    """A step of one's own that records its batch: the epoch's rows are the permutation's,
    batch after batch, and two half-epoch chunks see what one whole epoch sees."""

    @flax.struct.dataclass
    class Counter:
        step: jax.Array
        key: jax.Array

    def record(state, batch, axis_name=None):
        return state.replace(step=state.step + 1), {"rows": batch["x"]}

    def start():  # the epoch at step 10 (train_epoch donates the state it is given)
        return Counter(step=jnp.array(10), key=jax.random.key(3))

    data = {"x": jnp.arange(40)}
    expected = np.asarray(epoch_permutation(start().key, jnp.array(10), 40)).reshape(10, 4)
    state, metrics = train_epoch(start(), data, batch_size=4, step_fn=record)
    np.testing.assert_array_equal(metrics["rows"], expected)
    assert int(state.step) == 20
    half, first = train_epoch(start(), data, batch_size=4, step_fn=record, steps=5)
    _, second = train_epoch(half, data, batch_size=4, step_fn=record, steps=5)
    np.testing.assert_array_equal(np.concatenate([first["rows"], second["rows"]]), expected)

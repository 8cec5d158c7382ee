"""Stabilisation tricks and the health monitor: spectral norm, label targets, instance noise,
weight clipping, penalties in the step, and warnings on a failing run but not a healthy one."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import monitor
from jaxgan.experiments import gaussian1d
from jaxgan.losses import LOSSES
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, StepConfig, generate_samples
from jaxgan.step import train_step
from jaxgan.terms import GradientPenalty, InstanceNoise, LabelTargets


def test_spectral_norm_brings_each_layers_largest_singular_value_to_one():
    model = MLPDiscriminator(hidden=(32,), spectral_norm=True)
    x = jax.random.normal(jax.random.key(0), (4, 8))
    variables = model.init(jax.random.key(1), x, train=False)
    params, stats = variables["params"], variables["batch_stats"]
    params["Dense_0"]["kernel"] = 3.0 * params["Dense_0"]["kernel"]  # far from 1 by itself
    for _ in range(30):  # one power iteration per training call
        _, updates = model.apply(
            {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
        )
        stats = updates["batch_stats"]
    kernel = params["Dense_0"]["kernel"]
    sigma = stats["SpectralNorm_0"]["Dense_0/kernel/sigma"]
    assert np.linalg.svd(np.asarray(kernel), compute_uv=False)[0] > 3.0
    normalised = np.asarray(kernel) / float(sigma)
    assert np.linalg.svd(normalised, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-3)


def test_spectrally_normalised_d_trains_through_the_step():
    state = make_state(discriminator=MLPDiscriminator(hidden=(16,), spectral_norm=True))
    before = jax.tree.leaves(jax.tree.map(np.asarray, state.d.batch_stats))
    state, metrics = train_step(state, {"x": jnp.ones((16, 2))})
    after = jax.tree.leaves(state.d.batch_stats)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def make_state(*, discriminator=None, generator=None, d_tx=None, **config):
    return GANState.create(
        generator=generator or MLPGenerator((2,), hidden=(16,)),
        discriminator=discriminator or MLPDiscriminator(hidden=(16,)),
        g_tx=optax.adam(1e-3),
        d_tx=d_tx or optax.adam(1e-3),
        key=jax.random.key(0),
        config=StepConfig.from_options(latent_dim=2, **config),
    )


def test_one_sided_label_smoothing_and_soft_labels_draw_the_specified_targets():
    targets = LabelTargets(real=(0.9, 1.0), fake=(0.0, 0.1))
    t = np.asarray(targets.draw(jax.random.key(0), 20_000))
    assert 0.9 <= t[:, 0].min() and t[:, 0].max() <= 1.0
    assert t[:, 0].mean() == pytest.approx(0.95, abs=0.002)
    assert 0.0 <= t[:, 1].min() and t[:, 1].max() <= 0.1
    assert t[:, 1].mean() == pytest.approx(0.05, abs=0.002)
    fixed = np.asarray(LabelTargets(real=(0.9, 0.9)).draw(jax.random.key(0), 100))
    assert np.all(fixed[:, 0] == pytest.approx(0.9)) and np.all(fixed[:, 1] == 0.0)


def test_label_flipping_swaps_the_specified_share_of_labels():
    t = np.asarray(LabelTargets(flip=0.05).draw(jax.random.key(1), 40_000))
    assert np.mean(t[:, 0] == 0.0) == pytest.approx(0.05, abs=0.005)  # real labelled fake
    assert np.mean(t[:, 1] == 1.0) == pytest.approx(0.05, abs=0.005)  # fake labelled real
    assert set(np.unique(t)) == {0.0, 1.0}


def test_targets_need_a_cross_entropy_loss():
    with pytest.raises(ValueError, match="cross-entropy loss"):
        StepConfig(loss="hinge", targets=LabelTargets(real=(0.9, 0.9)))
    with pytest.raises(ValueError, match="cross-entropy loss"):
        StepConfig.from_options(loss="lsgan", label_flip=0.1)


def test_instance_noise_anneals_linearly_to_zero():
    noise = InstanceNoise(0.2, steps=100)
    values = [float(noise.std_at(jnp.asarray(s))) for s in (0, 50, 100, 150)]
    assert values == pytest.approx([0.2, 0.1, 0.0, 0.0])
    assert float(InstanceNoise(0.2).std_at(jnp.asarray(10**6))) == pytest.approx(0.2)


def test_wgan_clips_d_weights_and_wgan_gp_defaults_its_penalty():
    assert StepConfig(loss="wgan").weight_clip == 0.01
    assert StepConfig(loss="wgan_gp").d_terms == (GradientPenalty(10.0),)
    assert StepConfig().d_terms == () and StepConfig(loss="wgan_gp", d_terms=()).d_terms == ()
    state = make_state(loss="wgan", d_tx=optax.sgd(10.0))  # big steps: weights leave [-c, c]
    state, _ = train_step(state, {"x": 5.0 + jnp.ones((16, 2))})
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.d.params)) <= 0.01


class LinearCritic(nn.Module):
    """D(x) = w . x + b: its gradient in x is w everywhere, so the penalties have closed forms."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(1)(x)[:, 0]


def test_gradient_penalty_and_r1_add_their_hand_computed_values_to_d_loss():
    batch = {"x": jax.random.normal(jax.random.key(3), (16, 2))}

    def first_d_loss(**tricks):
        state = make_state(discriminator=LinearCritic(), **tricks)
        w = np.asarray(state.d.params["Dense_0"]["kernel"])[:, 0]
        return float(train_step(state, batch)[1]["d_loss"]), float(np.linalg.norm(w))

    plain, norm = first_d_loss(loss="wgan", weight_clip=0.0)
    assert abs(norm - 1) > 0.05  # the penalty is not ~0 by chance
    gp, _ = first_d_loss(loss="wgan", weight_clip=0.0, gp_weight=10.0)
    assert gp - plain == pytest.approx(10.0 * (norm - 1) ** 2, rel=1e-4)  # λ E[(|∇D| - 1)²]
    r1, _ = first_d_loss(loss="wgan", weight_clip=0.0, r1_gamma=3.0)
    assert r1 - plain == pytest.approx(3.0 / 2 * norm**2, rel=1e-4)  # γ/2 E[|∇D(x)|²]
    r2, _ = first_d_loss(loss="wgan", weight_clip=0.0, r2_gamma=5.0)
    assert r2 - plain == pytest.approx(5.0 / 2 * norm**2, rel=1e-4)  # γ/2 E[|∇D(G(z))|²]
    both, _ = first_d_loss(loss="wgan", weight_clip=0.0, gp_weight=10.0, r1_gamma=3.0)
    assert both - plain == pytest.approx(10.0 * (norm - 1) ** 2 + 1.5 * norm**2, rel=1e-4)


def test_penalties_and_instance_noise_change_the_d_update():
    batch = {"x": jax.random.normal(jax.random.key(3), (16, 2))}
    sgd = optax.sgd(0.1)  # Adam's first step is lr * sign(grad): blind to a penalty's size

    def d_params(**tricks):
        state, metrics = train_step(make_state(d_tx=sgd, **tricks), batch)
        assert all(np.isfinite(float(v)) for v in metrics.values()), tricks
        return np.concatenate([np.ravel(p) for p in jax.tree.leaves(state.d.params)])

    plain = d_params()
    for tricks in (
        {"gp_weight": 10.0},
        {"r1_gamma": 1.0},
        {"r2_gamma": 1.0},
        {"instance_noise": 0.5},
    ):
        assert np.abs(d_params(**tricks) - plain).max() > 1e-6, tricks


def test_generator_dropout_at_sampling_makes_samples_depend_on_the_key():
    z = jnp.ones((4, 2))
    for at_sampling in (False, True):
        g = MLPGenerator((2,), hidden=(64,), dropout=0.5, dropout_at_sampling=at_sampling)
        state = make_state(generator=g)
        a = generate_samples(state, z, key=jax.random.key(1))
        b = generate_samples(state, z, key=jax.random.key(2))
        assert (not np.allclose(a, b)) == at_sampling
        np.testing.assert_array_equal(generate_samples(state, z), generate_samples(state, z))


def test_diversity_is_one_for_the_data_itself_and_zero_for_a_collapsed_batch():
    real = jax.random.normal(jax.random.key(0), (64, 5))
    assert float(monitor.diversity(real, real)) == pytest.approx(1.0)
    collapsed = jnp.broadcast_to(real[:1], real.shape)
    assert float(monitor.diversity(collapsed, real)) == pytest.approx(0.0, abs=1e-3)
    x = jnp.array([[0.0, 0.0], [3.0, 4.0]])
    assert float(monitor.mean_pairwise_distance(x)) == pytest.approx(5.0)


def test_d_winning_needs_low_loss_and_for_cross_entropy_a_rejected_fake():
    assert (
        float(monitor.d_winning(LOSSES["non_saturating"], jnp.array(0.05), jnp.array(0.01))) == 1.0
    )
    assert (
        float(monitor.d_winning(LOSSES["non_saturating"], jnp.array(0.05), jnp.array(0.2))) == 0.0
    )
    assert (
        float(monitor.d_winning(LOSSES["non_saturating"], jnp.array(0.5), jnp.array(0.01))) == 0.0
    )
    assert float(monitor.d_winning(LOSSES["hinge"], jnp.array(0.05), jnp.array(0.9))) == 1.0
    assert float(monitor.d_winning(LOSSES["wgan"], jnp.array(-5.0), jnp.array(0.0))) == 0.0


def test_monitor_warns_once_per_sustained_episode():
    health = monitor.HealthMonitor(window=3, collapse_ratio=0.5)
    winning = np.array([1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1], np.float32)
    new = health.update(10, {"d_winning": winning, "diversity": np.ones(12)})
    # Runs of 1s end at steps 12 (too short), 18 (long: warns at its third step, 16), 22.
    assert [(w["step"], w["kind"]) for w in new] == [(16, "d_winning"), (22, "d_winning")]
    assert "lower --lr-d" in new[0]["message"]
    later = health.update(22, {"d_winning": np.ones(2), "diversity": np.full(2, 0.1)})
    assert later == []  # the running episode was reported; collapse needs 3 steps
    assert health.state["d_winning"] == 5 and len(health.state["warnings"]) == 2


def run_gaussian1d(tmp_path, name, *options):
    workdir = tmp_path / name
    argv = ["--workdir", str(workdir), "--num-train", "20000", *options]
    try:
        gaussian1d.main(argv)
    except SystemExit as e:
        return workdir, e.code
    return workdir, 0


def test_monitor_stays_silent_on_a_healthy_run_and_stops_a_failing_one(tmp_path, capsys):
    # The default settings on a fifth of the data, 1,500 steps: three default windows (500).
    healthy, code = run_gaussian1d(tmp_path, "healthy", "--epochs", "15")
    summary = json.loads((healthy / "summary.json").read_text())
    assert code == 0 and summary["status"] == "completed" and summary["steps"] == 1500
    assert summary["warnings"] == []
    # G learning 10,000 times slower than D with a far too high lr: D wins at once.
    failing, code = run_gaussian1d(
        tmp_path, "failing", "--epochs", "4", "--lr-d", "0.01", "--lr-g", "1e-6",
        "--monitor-window", "50", "--stop-on-warning",
    )  # fmt: skip
    assert code == 4
    summary = json.loads((failing / "summary.json").read_text())
    assert summary["status"] == "unhealthy" and summary["warnings"][0]["kind"] == "d_winning"
    err = capsys.readouterr().err
    assert "D is winning" in err and "(--stop-on-warning)" in err
    log = [json.loads(line) for line in (failing / "metrics.jsonl").read_text().splitlines()]
    assert any("d_winning" in r.get("warnings", []) for r in log)
    assert (failing / "checkpoints").exists()

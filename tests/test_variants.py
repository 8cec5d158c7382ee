"""GAN variants built from parts: the README's examples as written, losses and terms of one's
own, and the clear errors at the library's boundary."""

import json
import re
import subprocess
import sys
from pathlib import Path

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_same_state

from jaxgan import (
    ClassConditional,
    DataAxis,
    GANLoss,
    GANState,
    LabelTargets,
    R2Penalty,
    StepConfig,
    generate_samples,
    train_epoch,
    train_step,
)
from jaxgan.checkpoint import Checkpointer
from jaxgan.cli import cli_main
from jaxgan.data import DataError, mixture_modes
from jaxgan.metrics import mode_statistics
from jaxgan.models import MLPGenerator
from jaxgan.stream import host_epoch_runner

README = Path(__file__).parents[1] / "README.md"


def readme_examples(section: str = "Your own GAN variant") -> list[str]:
    """The python blocks of a README section, in order."""
    text = README.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def run_example(index: int, section: str = "Your own GAN variant") -> dict:
    namespace: dict = {"__name__": "readme_example"}
    code = readme_examples(section)[index]
    exec(compile(code, f"README {section!r} example {index}", "exec"), namespace)
    return namespace


def test_readme_train_step_example_runs_and_learns_the_mean():
    ns = run_example(0, "Using `train_step` in your own code")
    assert int(ns["state"].step) == 1000
    assert np.abs(np.asarray(ns["samples"]).mean(axis=0) - 3.0).max() < 0.5


def test_readme_has_the_three_variant_examples():
    blocks = readme_examples()
    assert len(blocks) == 3
    assert "GANLoss(" in blocks[0] and "FromBatch(" in blocks[1] and "nnx" in blocks[2]
    assert not re.search(r"jaxgan\.\w*\._|from jaxgan\S* import .*\b_\w", "".join(blocks))


def test_readme_relativistic_loss_finds_every_mode_of_the_ring():
    ns = run_example(0)
    stats = mode_statistics(np.asarray(ns["samples"]), *mixture_modes("ring"))
    assert stats["modes"] == 8 and stats["hq_fraction"] > 0.3, stats


def test_readme_nnx_modules_learn_the_gaussian():
    samples = run_example(2)["samples"]
    assert abs(samples.mean() - 4.0) < 0.3 and 0.8 < samples.std() < 1.8


# --- losses and terms of one's own -------------------------------------------------------


class Linear(nn.Module):
    """A D with one logit per sample, returned as ``[n]``, ``[n, 1]`` or ``[n, 2]``."""

    width: int = 1
    squeeze: bool = True

    @nn.compact
    def __call__(self, x):
        out = nn.Dense(self.width)(x)
        return out[:, 0] if self.squeeze else out


def state_for(config=None, *, generator=None, discriminator=None, **kw):
    return GANState.create(
        generator=generator or MLPGenerator((2,), hidden=(8,)),
        discriminator=discriminator or Linear(),
        g_tx=optax.sgd(0.1),
        d_tx=optax.sgd(0.1),
        key=jax.random.key(0),
        config=config or StepConfig(latent_dim=2),
        **kw,
    )


BATCH = {"x": jax.random.normal(jax.random.key(5), (8, 2))}


def constant_g_loss(value):
    return GANLoss(
        "mine",
        discriminator=lambda r, f: jnp.mean(f) - jnp.mean(r),
        generator=lambda f, r: value + 0.0 * jnp.mean(f),
    )


def test_two_different_losses_of_one_name_never_share_a_compiled_step():
    for value in (1.0, 123.0):
        _, metrics = train_step(
            state_for(StepConfig(loss=constant_g_loss(value), latent_dim=2)), BATCH
        )
        assert float(metrics["g_loss"]) == value


def test_the_generator_loss_sees_the_real_logits_of_the_last_minibatch():
    """G's loss = mean real logit: by hand, the updated D (state.d) on the last minibatch."""
    loss = GANLoss(
        "probe", discriminator=lambda r, f: jnp.mean(f - r), generator=lambda f, r: jnp.mean(r)
    )
    last = BATCH["x"] + 1.0
    state, metrics = train_step(
        state_for(StepConfig(loss=loss, latent_dim=2, d_steps=2)),
        {"x": jnp.concatenate([BATCH["x"], last])},
    )
    dense = state.d.params["Dense_0"]
    by_hand = jnp.mean(last @ dense["kernel"] + dense["bias"])
    assert float(metrics["g_loss"]) == pytest.approx(float(by_hand), rel=1e-5)


def test_a_custom_loss_with_settings_gets_label_targets_and_the_monitor():
    bce = GANLoss(
        "my_bce",
        discriminator=lambda r, f: jnp.mean(jax.nn.softplus(-r)) + jnp.mean(jax.nn.softplus(f)),
        generator=lambda f, r: jnp.mean(jax.nn.softplus(-f)),
        cross_entropy=True,
        winning_d_loss=1e9,  # always "winning": the monitor's sign is on for this loss
    )
    config = StepConfig(loss=bce, latent_dim=2, targets=LabelTargets(real=(0.9, 0.9)))
    _, metrics = train_step(state_for(config), BATCH)
    assert float(metrics["d_winning"]) == (float(metrics["d_fake"]) < 0.05)
    with pytest.raises(ValueError, match="cross-entropy loss"):
        StepConfig(loss=constant_g_loss(0.0), targets=LabelTargets(real=(0.9, 0.9)))


def test_r2_is_r1_on_generated_samples_by_hand():
    """D(x) = w.x + b has input gradient w everywhere: R2 = gamma / 2 * |w|^2 exactly."""
    config = StepConfig(loss="wgan", weight_clip=0.0, latent_dim=2, d_terms=(R2Penalty(4.0),))
    plain = StepConfig(loss="wgan", weight_clip=0.0, latent_dim=2)
    w = state_for(config).d.params["Dense_0"]["kernel"][:, 0]
    with_r2 = float(train_step(state_for(config), BATCH)[1]["d_loss"])
    without = float(train_step(state_for(plain), BATCH)[1]["d_loss"])
    assert with_r2 - without == pytest.approx(0.5 * 4.0 * float(jnp.sum(w * w)), rel=1e-5)


def test_a_g_term_of_ones_own_is_added_and_reports_its_metric():
    def pull_to_origin(inputs):
        value = jnp.mean(jnp.square(inputs.fake))
        return 2.0 * value, {"g_norm2": value}

    base = StepConfig(latent_dim=2)
    config = StepConfig(latent_dim=2, g_terms=(pull_to_origin,))
    _, plain = train_step(state_for(base), BATCH)
    _, metrics = train_step(state_for(config), BATCH)
    assert float(metrics["g_loss"]) == pytest.approx(
        float(plain["g_loss"]) + 2.0 * float(metrics["g_norm2"]), rel=1e-5
    )


# --- the boundary: what is accepted, and clear errors for the rest --------------------------


def test_d_logits_of_shape_n_1_are_squeezed_and_other_shapes_refused():
    config = StepConfig(latent_dim=2, targets=LabelTargets(flip=0.25, real=(0.9, 1.0)))
    _, flat = train_step(state_for(config), BATCH)
    _, column = train_step(state_for(config, discriminator=Linear(squeeze=False)), BATCH)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert float(column[name]) == pytest.approx(float(flat[name]), rel=1e-6), name
    with pytest.raises(ValueError, match=r"one logit per sample.*\(8, 2\)"):
        train_step(state_for(config, discriminator=Linear(width=2, squeeze=False)), BATCH)


def test_batches_that_are_not_what_the_step_reads_are_refused():
    with pytest.raises(TypeError, match="a batch is a dict"):
        train_step(state_for(), BATCH["x"])
    with pytest.raises(ValueError, match="has no 'x'"):
        train_step(state_for(), {"images": BATCH["x"]})
    with pytest.raises(ValueError, match=r"batch\['y'\].*does not use labels"):
        train_step(state_for(), {**BATCH, "y": jnp.zeros(8, jnp.int32)})


def test_generator_inputs_that_do_not_fit_the_modules_are_named():
    with pytest.raises(ValueError, match="unconditional generator"):
        generate_samples(state_for(), jnp.zeros((2, 2)), jnp.zeros(2, jnp.int32))
    cgan = StepConfig(latent_dim=2, inputs=ClassConditional(3))
    with pytest.raises(TypeError, match=r"G cannot be called as G\(\[2, 2\], \[2\]\).*inputs"):
        state_for(cgan, generator=PlainG())


class PlainG(nn.Module):
    """A generator without the ``train`` keyword (no batch norm, no dropout)."""

    @nn.compact
    def __call__(self, z):
        return nn.Dense(2)(z)


def test_plain_modules_without_train_keyword_train():
    state = state_for(generator=PlainG())
    assert not state.g.takes_train and not state.d.takes_train
    before = np.asarray(state.g.params["Dense_0"]["kernel"])
    state, metrics = train_step(state, BATCH)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not np.array_equal(before, state.g.params["Dense_0"]["kernel"])
    assert generate_samples(state, jnp.zeros((3, 2))).shape == (3, 2)


class HalfPrecision(nn.Module):
    """Computes in bfloat16, parameters in float32."""

    features: int

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = nn.relu(nn.Dense(16, dtype=jnp.bfloat16)(x))
        return nn.Dense(self.features, dtype=jnp.bfloat16)(h)


def test_losses_and_metrics_are_float32_when_the_modules_compute_in_bfloat16():
    config = StepConfig(latent_dim=2, d_terms=(R2Penalty(1.0),))
    state = state_for(config, generator=HalfPrecision(2), discriminator=HalfPrecision(1))
    assert generate_samples(state, jnp.zeros((2, 2))).dtype == jnp.bfloat16
    state, metrics = train_step(state, BATCH)
    assert {str(v.dtype) for v in metrics.values()} == {"float32"}
    assert {str(p.dtype) for p in jax.tree.leaves(state.d.params)} == {"float32"}


def test_generate_samples_on_a_stack_of_states_says_how_to_map_it():
    keys = jax.random.split(jax.random.key(0), 3)
    states = jax.vmap(lambda k: state_for().replace(key=k))(keys)
    z = jax.random.normal(jax.random.key(1), (4, 2))
    with pytest.raises(ValueError, match=r"jax.vmap\(generate_samples, in_axes=\(0, None\)\)"):
        generate_samples(states, z)
    stacked = jax.vmap(generate_samples, in_axes=(0, None))(states, z)
    assert stacked.shape == (3, 4, 2)
    one = generate_samples(jax.tree.map(lambda a: a[1], states), z)
    np.testing.assert_allclose(stacked[1], one, rtol=1e-6, atol=1e-7)  # batched matmuls round


def test_checkpoint_progress_is_optional_and_other_settings_are_named(tmp_path):
    state = state_for()
    checkpointer = Checkpointer(tmp_path, keep=1)
    checkpointer.save(1, state)
    checkpointer.wait()
    restored, progress = checkpointer.restore(state)
    assert progress == {}
    np.testing.assert_array_equal(
        restored.g.params["Dense_0"]["kernel"], state.g.params["Dense_0"]["kernel"]
    )
    other = state.replace(config=StepConfig(latent_dim=2, d_steps=3, loss="hinge"))
    with pytest.raises(DataError, match=r"d_steps 1 -> 3; .*loss 'non_saturating' -> 'hinge'"):
        checkpointer.restore(other)
    checkpointer.close()


# --- a state of one's own through the runners ------------------------------------------------


@flax.struct.dataclass
class Tracker:
    """A variant's own state (not a GANState): a running mean of noisy data, its key and step,
    and two real minibatches per step."""

    mean: jax.Array
    key: jax.Array
    step: jax.Array
    minibatches_per_step: int = flax.struct.field(pytree_node=False, default=2)


def tracker_step(state, batch, axis_name=None):
    axis = DataAxis(axis_name)
    x = batch["x"]
    noise = axis.rows(jax.random.fold_in(state.key, state.step), x.shape[0],
                      lambda k, n: jax.random.normal(k, (n, 2)))  # fmt: skip
    new = state.mean + 0.5 * (axis.mean(jnp.mean(x + 0.1 * noise, axis=0)) - state.mean)
    return state.replace(mean=new, step=state.step + 1), {"mean0": new[0]}


def tracker():
    return Tracker(jnp.zeros(2), jax.random.key(0), jnp.zeros((), jnp.int32))


def test_a_state_of_ones_own_trains_checkpoints_and_resumes_exactly(tmp_path):
    data = {"x": np.asarray(jax.random.normal(jax.random.key(3), (640, 2))) + 3.0}
    whole, metrics = train_epoch(tracker(), data, batch_size=32, step_fn=tracker_step)
    assert int(whole.step) == 10 and float(metrics["mean0"][-1]) == pytest.approx(3.0, abs=0.2)

    first, _ = train_epoch(tracker(), data, batch_size=32, steps=5, step_fn=tracker_step)
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(5, first)
    checkpointer.wait()
    restored, _ = checkpointer.restore(tracker())
    checkpointer.close()
    resumed, _ = train_epoch(restored, data, batch_size=32, steps=5, step_fn=tracker_step)
    assert_same_state(resumed, whole)

    host = host_epoch_runner(32, 10, step_fn=tracker_step)  # fed from host memory, step by step
    assert_same_state(host(tracker(), data)[0], whole)


# --- an experiment of one's own over the trainer ----------------------------------------


def test_readme_own_experiment_trains_resumes_and_refuses_bad_options(tmp_path, capsys):
    (code,) = readme_examples("Your own experiment")
    (tmp_path / "my_ring.py").write_text(code)
    workdir = tmp_path / "runs" / "my_ring"
    proc = subprocess.run(
        [sys.executable, "-m", "my_ring", "--workdir", str(workdir), "--epochs", "6"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == f"wrote {workdir / 'summary.json'}"
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["epoch"] for r in records if "modes" in r]
    assert evaluated == [5, 6]  # every 5 epochs, and the last
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 600
    assert summary["modes"] == records[-1]["modes"]
    assert json.loads((workdir / "config.json").read_text())["experiment"] == "my_ring"

    namespace: dict = {"__name__": "my_ring"}
    exec(compile(code, "my_ring.py", "exec"), namespace)

    def main(*argv):
        cli_main("my_ring", namespace["Config"], namespace["train"], "", list(argv))

    capsys.readouterr()
    main("--workdir", str(workdir), "--epochs", "6")  # a rerun: nothing left to train
    assert "is complete (6 epochs, step 600)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main("--workdir", str(tmp_path / "other"), "--width", "0")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "python -m my_ring: error: --width must be >= 1, got 0\n"
    assert not (tmp_path / "other").exists()

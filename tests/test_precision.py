"""Mixed precision (``--precision bfloat16``): the networks compute in bfloat16, everything the
update keeps or reports stays float32, and training in it still learns."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import expect_one_line_error

from jaxgan import GANState, StepConfig, train_step
from jaxgan.experiments import gaussian1d, mixture2d
from jaxgan.models import DCGANDiscriminator, DCGANGenerator
from jaxgan.precision import cast_floating, cast_like, compute_dtype
from jaxgan.state import generate_samples
from jaxgan.terms import R1Penalty


def dcgan_state(precision, ema_decay=0.0):
    """A 32x32 DCGAN: batch norm in G and D, the R1 penalty (a gradient with respect to D's
    input), the EMA of G."""
    return GANState.create(
        generator=DCGANGenerator(resolution=32, channels=1, width=4),
        discriminator=DCGANDiscriminator(resolution=32, width=4),
        g_tx=optax.adam(1e-3),
        d_tx=optax.adam(1e-3),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=8, ema_decay=ema_decay, d_terms=(R1Penalty(1.0),)),
        precision=precision,
    )


def real_images(n=8):
    return {"x": jnp.tanh(jax.random.normal(jax.random.key(1), (n, 32, 32, 1)))}


def dtypes(tree):
    return {str(a.dtype) for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)}


def test_cast_floating_casts_floats_only_and_cast_like_restores():
    tree = {"w": jnp.ones(3), "labels": jnp.arange(3), "key": jax.random.key(0), "none": None}
    cast = cast_floating(tree, jnp.bfloat16)
    assert cast["w"].dtype == jnp.bfloat16 and cast["labels"].dtype == jnp.int32
    assert cast["key"] is tree["key"] and cast["none"] is None
    back = cast_like({"w": cast["w"]}, {"w": tree["w"]})
    assert back["w"].dtype == jnp.float32
    assert compute_dtype("bfloat16") == jnp.bfloat16
    with pytest.raises(ValueError, match=r"unknown precision 'float16'; choose one of"):
        compute_dtype("float16")


def matrix_products(fn, *args) -> list[str]:
    """The StableHLO lines of ``fn``'s matrix products and convolutions."""
    text = jax.jit(fn).lower(*args).as_text()
    ops = ("stablehlo.dot_general", "stablehlo.convolution")
    return [line for line in text.splitlines() if any(op in line for op in ops)]


@pytest.mark.parametrize("precision, dtype", [("bfloat16", "bf16"), ("float32", "f32")])
def test_the_networks_compute_in_the_precision_and_return_float32(precision, dtype):
    state = dcgan_state(precision)
    z = jnp.zeros((2, 8))
    g_products = matrix_products(lambda p: state.g.apply(p, z, train=False)[0], state.g.params)
    x = jnp.zeros((2, 32, 32, 1))
    d_products = matrix_products(lambda p: state.d.apply(p, x, train=False)[0], state.d.params)
    assert len(g_products) >= 3 and len(d_products) >= 3
    for line in g_products + d_products:
        operands = line.split(":")[-1].split("->")[0]
        assert f"x{dtype}>" in operands and "xf32>" not in operands.replace(f"x{dtype}>", ""), line
    samples, _ = state.g.apply(state.g.params, z, train=False)
    logits, _ = state.d.apply(state.d.params, x, train=False)
    assert samples.dtype == logits.dtype == jnp.float32


def test_a_bfloat16_step_keeps_everything_it_stores_and_reports_in_float32():
    state = dcgan_state("bfloat16", ema_decay=0.99)
    before = {name: jax.tree.map(np.asarray, getattr(state, name).batch_stats) for name in "gd"}
    new, metrics = train_step(state, real_images())  # donates state
    for name in ("g", "d"):
        model = getattr(new, name)
        assert dtypes(model.params) == dtypes(model.opt_state) == {"float32"}
        assert dtypes(model.batch_stats) == {"float32"}
        # batch norm's running averages moved (the step ran in training mode)
        moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), model.batch_stats, before[name])
        assert any(jax.tree.leaves(moved))
    assert dtypes(new.ema_params) == {"float32"}
    assert {str(v.dtype) for v in metrics.values()} == {"float32"}
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert generate_samples(new, jnp.zeros((3, 8))).dtype == jnp.float32


def test_bfloat16_rounds_the_compute():
    """The same step in both precisions: close (bfloat16 keeps ~3 significant digits), not equal
    (the casts are really there)."""
    batch = real_images()
    high, _ = train_step(dcgan_state("float32"), batch)
    low, _ = train_step(dcgan_state("bfloat16"), batch)
    z = jnp.asarray(np.random.default_rng(0).normal(size=(16, 8)), jnp.float32)
    difference = float(jnp.max(jnp.abs(generate_samples(high, z) - generate_samples(low, z))))
    assert 0 < difference < 0.05, difference


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        dcgan_state("half")


def test_the_1d_toy_learns_its_target_in_bfloat16(tmp_path):
    argv = [
        "--workdir",
        str(tmp_path),
        "--epochs",
        "2",
        "--num-train",
        "3000",
        "--batch-size",
        "100",
    ]
    argv += ["--eval-samples", "10000", "--hidden", "16", "16", "--lr-g=5e-3", "--lr-d=5e-3"]
    gaussian1d.main([*argv, "--precision", "bfloat16"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["precision"] == "bfloat16"
    # untrained: w1 3.87 (G's outputs near 0, the target N(4, 1.25)); float32 reaches 0.51
    assert summary["w1"] < 1.0 and abs(summary["mean"] - 4.0) < 1.0


def test_the_ring_finds_its_modes_in_bfloat16(tmp_path):
    """1,000 steps of small networks: float32 reaches 8 of the 8 modes at some log point, bfloat16
    6 (the untrained G: 1). Its samples lie on bfloat16's grid, 1/64 apart at the ring's radius
    2, a scale near the modes' std (0.02), hence its lower share of high-quality samples."""
    argv = ["--workdir", str(tmp_path), "--dataset", "ring", "--epochs", "10", "--num-train"]
    argv += ["10000", "--batch-size", "100", "--g-hidden", "64", "64", "--d-hidden", "64", "64"]
    argv += ["--lr-g=1e-3", "--lr-d=1e-3", "--eval-samples", "2000", "--precision", "bfloat16"]
    mixture2d.main(argv)
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["modes"] for r in log) >= 5, [r["modes"] for r in log]


def test_a_bad_precision_is_one_line_and_exit_2(tmp_path, capsys):
    argv = ["--workdir", str(tmp_path / "run"), "--precision", "float16"]
    expect_one_line_error(capsys, gaussian1d.main, argv, "invalid choice: 'float16'")
    assert not (tmp_path / "run").exists()

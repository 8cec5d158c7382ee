"""Data parallelism on 8 devices (simulated CPU devices: ``make test`` sets
``XLA_FLAGS=--xla_force_host_platform_device_count=8``), and 2 processes x 4 devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from conftest import checkpoint_arrays, write_idx_dataset
from jax.sharding import PartitionSpec as P
from test_resume import assert_killed_run_matches_straight
from test_variants import run_example, tracker, tracker_step

from jaxgan import data, pairs, parallel
from jaxgan.checkpoint import Checkpointer
from jaxgan.cli import config_parser
from jaxgan.epoch import exchange_rows, shard_rows, train_epoch
from jaxgan.experiments import (
    cyclegan,
    dcgan,
    gaussian1d,
    mixture2d,
    mnist,
    pix2pix,
    srgan,
    stacked_mnist,
)
from jaxgan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, StepConfig
from jaxgan.step import train_step
from jaxgan.stream import host_epoch_runner
from jaxgan.trainer.config import create_state

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8,
    reason="needs 8 devices: XLA_FLAGS=--xla_force_host_platform_device_count=8 (make test)",
)
K, BATCH = 2, 64  # two D steps per G step; global minibatch of 64 (8 per device)


CLASSES = 3  # of the conditional case's labels


def make_state(**tricks) -> GANState:
    conditional = tricks.get("conditional", "none") != "none"
    g_labels = {"num_classes": CLASSES} if conditional else {}
    d_labels = {"num_classes": CLASSES, "conditioning": "classifier"} if conditional else {}
    return GANState.create(
        generator=MLPGenerator((2,), hidden=(32, 32), **g_labels),
        discriminator=MLPDiscriminator((32, 32), **d_labels),
        g_tx=optax.adam(1e-3, b1=0.5),
        d_tx=optax.adam(1e-3, b1=0.5),
        key=jax.random.key(0),
        config=StepConfig.from_options(d_steps=K, latent_dim=4, ema_decay=0.99, **tricks),
    )


def batches(n: int = 20, labels: bool = False):
    """Batches of 2-D points, with labels for the conditional case."""
    return [
        {
            "x": jax.random.normal(jax.random.key(100 + i), (K * BATCH, 2)) + 1.0,
            **(
                {"y": jax.random.randint(jax.random.key(200 + i), (K * BATCH,), 0, CLASSES)}
                if labels
                else {}
            ),
        }
        for i in range(n)
    ]


def trained_arrays(state: GANState) -> list[np.ndarray]:
    trees = (state.g.params, state.d.params, state.ema_params, state.g.opt_state)
    return [np.asarray(x) for x in jax.tree.leaves(trees)]


def assert_close(a: GANState, b: GANState, atol: float) -> None:
    for x, y in zip(trained_arrays(a), trained_arrays(b), strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def test_shard_batch_gives_each_device_its_rows_of_every_minibatch():
    x = np.arange(2 * 8).reshape(16, 1)  # k = 2 minibatches of 8, 4 devices: 2 rows each
    shards = parallel.shard_batch({"x": x}, num_devices=4, d_steps=2)["x"][..., 0]
    np.testing.assert_array_equal(shards[0], [0, 1, 8, 9])
    np.testing.assert_array_equal(shards[3], [6, 7, 14, 15])


# The tricks' random draws (instance noise, targets and flips, penalty interpolation weights)
# and the labels a conditional G is asked for are drawn for the global batch and sliced, like
# the latent noise.
TRICKS = {
    "plain": {},
    "tricks_acgan": {
        "instance_noise": 0.1,
        "real_target": (0.8, 1.0),
        "fake_target": (0.0, 0.1),
        "label_flip": 0.1,
        "gp_weight": 1.0,
        "r1_gamma": 0.5,
        "conditional": "acgan",
        "num_classes": CLASSES,
    },
}


@pytest.mark.parametrize("tricks", list(TRICKS.values()), ids=list(TRICKS))
def test_pmap_and_shard_map_steps_match_one_device_after_20_steps(tricks):
    labelled = tricks.get("conditional", "none") != "none"
    single = make_state(**tricks)
    for batch in batches(labels=labelled):
        single, metrics = train_step(single, batch)

    pmapped = parallel.replicate(make_state(**tricks), 8)
    for batch in batches(labels=labelled):
        pmapped, pmap_metrics = parallel.pmap_train_step(pmapped, parallel.shard_batch(batch, 8, K))
    pmapped = parallel.unreplicate(pmapped)

    mesh = parallel.data_mesh(8)
    sharded = parallel.to_global(make_state(**tricks), parallel.replicated(mesh))
    step = parallel.sharded_train_step(mesh)
    for batch in batches(labels=labelled):
        sharded, shard_metrics = step(sharded, batch)

    assert int(pmapped.step) == int(sharded.step) == 20
    assert_close(pmapped, single, atol=1e-5)
    assert_close(sharded, single, atol=1e-5)
    assert_close(sharded, pmapped, atol=1e-6)
    for name in metrics.keys() - {"diversity"}:  # diversity: each device's own pairs
        np.testing.assert_allclose(pmap_metrics[name][0], metrics[name], rtol=1e-5)
        np.testing.assert_allclose(shard_metrics[name], metrics[name], rtol=1e-5)


def dcgan_state(axis_name: str | None, precision: str = "float32") -> GANState:
    """A tiny DCGAN (32x32x1, width 4) with the paper's Adam 2e-4, β1 0.5; with ``axis_name``
    its batch norm takes the batch statistics over the devices.

    (At lr 1e-3 this GAN on noise is chaotic: the 1e-7 differences of a reordered batch-norm
    sum grew to 2e-5 by step 15 and 7e-4 by step 20; at 2e-4 they stay at 1e-7.)"""
    return GANState.create(
        generator=DCGANGenerator(32, 1, width=4, axis_name=axis_name),
        discriminator=DCGANDiscriminator(32, width=4, axis_name=axis_name),
        g_tx=optax.adam(2e-4, b1=0.5),
        d_tx=optax.adam(2e-4, b1=0.5),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=8),
        precision=precision,
    )


def dcgan_on_8_devices_and_1(precision: str):
    """The tiny DCGAN's arrays (parameters, optimizer states, batch statistics) after the same
    20 steps on one device and on 8 (batch norm over the devices): ``(eight, one)``."""
    batches = [
        {"x": jax.random.uniform(jax.random.key(i), (32, 32, 32, 1), minval=-1, maxval=1)}
        for i in range(20)
    ]
    single = dcgan_state(None, precision)
    for batch in batches:
        single, _ = train_step(single, batch)
    mesh = parallel.data_mesh(8)
    sharded = parallel.to_global(dcgan_state(parallel.AXIS, precision), parallel.replicated(mesh))
    step = parallel.sharded_train_step(mesh)
    for batch in batches:
        sharded, _ = step(sharded, batch)
    arrays = [
        trained_arrays(s) + jax.tree.leaves((s.g.batch_stats, s.d.batch_stats))
        for s in (sharded, single)
    ]
    return [[np.asarray(a) for a in side] for side in arrays]


def test_dcgan_with_cross_device_batch_norm_matches_one_device():
    """20 steps; per-device batch norm (axis_name None on the 8 devices) differs by ~1e-2."""
    for x, y in zip(*dcgan_on_8_devices_and_1("float32"), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5, rtol=0)


def test_dcgan_in_bfloat16_on_8_devices_matches_one_device_to_bfloat16s_rounding():
    """In bfloat16 the devices' partial results round differently from one device's and the
    differences grow over 20 steps, so the match is to a share of each array's scale: measured,
    a median of 1.5 % and at most 22 % with batch norm over the devices, 10 % and 95 % with the
    per-device batch norm this guards against."""

    def deviations(eight, one):
        return [np.max(np.abs(x - y)) / np.max(np.abs(y)) for x, y in zip(eight, one, strict=True)]

    right = deviations(*dcgan_on_8_devices_and_1("bfloat16"))
    assert np.median(right) < 0.05 and max(right) < 0.5, (np.median(right), max(right))


def test_host_fed_steps_on_8_devices_match_one_device():
    """Data in host memory (jaxgan.stream), each global batch copied to the mesh per step."""
    raw = np.random.default_rng(0).integers(0, 256, (3 * K * BATCH, 2), dtype=np.uint8)

    def scale(batch):
        return {"x": batch["x"] / 127.5 - 1.0}

    single, _ = host_epoch_runner(BATCH, 3, prepare=scale)(make_state(), {"x": raw})
    mesh = parallel.data_mesh(8)
    sharded = parallel.to_global(make_state(), parallel.replicated(mesh))
    sharded, _ = host_epoch_runner(BATCH, 3, mesh=mesh, prepare=scale)(sharded, {"x": raw})
    assert int(parallel.host_local(sharded).step) == 3
    assert_close(parallel.host_local(sharded), single, atol=1e-5)


def test_sharded_epoch_matches_one_device():
    """1,001 examples over 8 devices: shards of 126 rows, the last one padded with 7 zeros."""
    data = {"x": jax.random.normal(jax.random.key(7), (1001, 2))}
    single, metrics = train_epoch(make_state(), data, batch_size=BATCH)
    mesh = parallel.data_mesh(8)
    shards = parallel.shard_data(data, mesh, 1001)
    assert shards["x"].shape == (8 * 126, 2)
    assert [s.data.shape[0] for s in shards["x"].addressable_shards] == [126] * 8
    np.testing.assert_array_equal(np.asarray(shards["x"])[:1001], data["x"])
    np.testing.assert_array_equal(np.asarray(shards["x"])[1001:], 0)
    epoch = parallel.sharded_train_epoch(mesh, BATCH, 1001)
    sharded, sharded_metrics = epoch(
        parallel.to_global(make_state(), parallel.replicated(mesh)), shards
    )
    assert int(sharded.step) == int(single.step) == 1001 // (K * BATCH)
    assert_close(sharded, single, atol=1e-5)
    np.testing.assert_allclose(sharded_metrics["g_loss"], metrics["g_loss"], rtol=1e-5)


def test_exchange_hands_each_device_exactly_its_rows():
    """The rows every device receives are the ones a single device takes from the whole set."""
    data = {"x": np.arange(100 * 3, dtype=np.float32).reshape(100, 3), "y": np.arange(100)}
    mesh = parallel.data_mesh(8)
    idx = np.random.default_rng(0).permutation(100)[: K * 16].reshape(K, 16)

    def per_device(shard, idx):
        return exchange_rows(shard, idx, parallel.AXIS)

    exchange = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(P(parallel.AXIS), P()),
            out_specs=P(parallel.AXIS),
            check_vma=False,
        )
    )
    got = exchange(parallel.shard_data(data, mesh, 100), idx)
    # device i holds rows i * 2:(i + 1) * 2 of each minibatch, both minibatches back to back
    expected = idx.reshape(K, 8, 2).swapaxes(0, 1).reshape(-1)
    np.testing.assert_array_equal(np.asarray(got["y"]), expected)
    np.testing.assert_array_equal(np.asarray(got["x"]), data["x"][expected])


def test_each_process_of_a_mesh_holds_its_devices_rows():
    mesh = parallel.data_mesh(8)  # one process holds all 8 devices here
    assert parallel.process_rows(mesh, 1001) == slice(0, 1001)
    assert parallel.process_rows(None, 50) == slice(0, 50)
    assert shard_rows(1001, 8) == 126 and shard_rows(1000, 8) == 125


# The experiments' --devices option, end to end (gaussian1d; without its minibatch statistic,
# which each device computes over its own share of the batch).
TINY = [
    "--epochs", "2", "--num-train", "1920", "--batch-size", "96", "--hidden", "16", "16",
    "--eval-samples", "2000", "--no-minibatch-features",
]  # fmt: skip


def checkpoint_of(workdir: Path) -> GANState:
    config = gaussian1d.Config(
        num_train=1920, batch_size=96, hidden=(16, 16), epochs=2, minibatch_features=False
    )
    target, _ = create_state(config, *gaussian1d.build_models(config), config.num_train)
    checkpointer = Checkpointer(workdir, create=False)
    state, _ = checkpointer.restore(target)
    checkpointer.close()
    return state


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("one") / "run"
    gaussian1d.main(["--workdir", str(workdir), "--devices", "1", *TINY])
    return workdir


@pytest.fixture(scope="module")
def eight_device_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("eight") / "run"
    gaussian1d.main(["--workdir", str(workdir), *TINY])  # default: all 8 devices
    return workdir


def test_experiment_on_8_devices_matches_1_device(eight_device_run, one_device_run):
    assert_close(checkpoint_of(eight_device_run), checkpoint_of(one_device_run), atol=1e-5)
    ours = json.loads((eight_device_run / "summary.json").read_text())
    theirs = json.loads((one_device_run / "summary.json").read_text())
    assert ours["w1"] == pytest.approx(theirs["w1"], abs=1e-4)


def test_default_devices_is_the_most_that_divide_the_batch(tmp_path, capsys):
    gaussian1d.main(["--workdir", str(tmp_path / "run"), *TINY, "--batch-size", "30"])
    assert "training on 6 of the 8 devices: the most that divide --batch-size 30" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("5", "--devices 5 cannot be used: it does not divide --batch-size 96; valid values: "
         "1, 2, 3, 4, 6, 8"),
        ("16", "--devices 16 cannot be used: only 8 are present"),
    ],
)  # fmt: skip
def test_impossible_device_counts_are_one_line_errors(devices, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gaussian1d.main(["--workdir", str(tmp_path / "run"), *TINY, "--devices", devices])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_two_processes(module: str, args: list[str]) -> list[tuple[str, str]]:
    """Runs ``python -m module *args`` as 2 processes of 4 CPU devices (gloo collectives);
    returns their (stdout, stderr) after checking both succeeded."""
    port = free_port()
    env = {
        **os.environ,
        "XLA_FLAGS": " ".join(  # conftest's flags, 4 devices instead of 8
            [f for f in os.environ["XLA_FLAGS"].split() if "device_count" not in f]
            + ["--xla_force_host_platform_device_count=4"]
        ),
        "JAX_PLATFORMS": "cpu",
    }
    distributed = ["--distributed", "--coordinator-address", f"localhost:{port}"]
    distributed += ["--num-processes", "2", "--process-id"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args, *distributed, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    return outputs


def test_two_processes_of_four_devices_match_one_process_of_eight(eight_device_run, tmp_path):
    workdir = tmp_path / "run"
    outputs = run_two_processes("jaxgan.experiments.gaussian1d", ["--workdir", str(workdir), *TINY])
    assert " w1 " in outputs[0][0] and " w1 " not in outputs[1][0]  # process 0 reports

    assert_close(checkpoint_of(workdir), checkpoint_of(eight_device_run), atol=1e-5)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [20, 40]  # written once


# A conditional DCGAN fed step by step on 200 IDX 'digits': each of two processes reads only
# the 100 rows of its 4 devices' shards, decodes them into its own entry of the disk cache and
# streams them from there; 12 steps with batch norm over the devices and labels exchanged
# with the images, as one process does from host memory (the CPU default).
DCGAN_TINY = [
    "--dataset", "mnist", "--image-size", "32", "--g-width", "4", "--d-width", "4",
    "--epochs", "1", "--batch-size", "16", "--eval-samples", "0", "--conditional", "cgan",
]  # fmt: skip


def test_two_processes_read_only_their_rows_and_match_one_process(tmp_path):
    rng = np.random.default_rng(0)
    data_dir = write_idx_dataset(
        tmp_path / "idx", rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), np.arange(200) % 10
    )
    one, two = tmp_path / "one", tmp_path / "two"
    args = [*DCGAN_TINY, "--data-dir", str(data_dir)]
    dcgan.main([*args, "--workdir", str(one)])
    cache = tmp_path / "cache"
    stream = ["--data-placement", "stream", "--data-cache", str(cache)]
    outputs = run_two_processes("jaxgan.experiments.dcgan", [*args, *stream, "--workdir", str(two)])
    assert "process 0 reads examples 0:100 of 200" in outputs[0][1]
    assert "process 1 reads examples 100:200 of 200" in outputs[1][1]
    rows = [json.loads((e / "meta.json").read_text())["key"]["rows"] for e in cache.iterdir()]
    assert sorted(rows) == [[0, 100], [100, 200]]

    config = dcgan.Config(**vars(config_parser(dcgan.Config, "dcgan", "").parse_args(args)))
    target, _ = create_state(config, *dcgan.build_models(config), 200)

    def restored(workdir: Path) -> GANState:
        checkpointer = Checkpointer(workdir, create=False)
        state, _ = checkpointer.restore(target)
        checkpointer.close()
        return state

    a, b = restored(one), restored(two)
    assert int(a.step) == int(b.step) == 200 // 16
    assert_close(a, b, atol=1e-5)
    for x, y in zip(
        jax.tree.leaves((a.g.batch_stats, a.d.batch_stats)),
        jax.tree.leaves((b.g.batch_stats, b.d.batch_stats)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5, rtol=0)


def test_readme_translation_example_trains_data_parallel_on_8_devices():
    """The README's example (b), as written: G from the batch's source, λ·L1 to the target."""
    ns = run_example(1)
    assert ns["mesh"].size == 8
    l1 = float(np.abs(np.asarray(ns["out"]) - ns["test"]["x"]).mean())
    assert l1 < 0.05, l1  # the identity map is 0.78 off, predicting the mean 0.58


def test_the_wrappers_refuse_a_minibatch_that_does_not_split_over_the_devices():
    mesh = parallel.data_mesh(8)
    state = parallel.to_global(make_state(), parallel.replicated(mesh))
    with pytest.raises(
        ValueError,
        match=r"a minibatch of 12 does not split over 8 devices; .* or 1, 2, 3, 4, 6 devices",
    ):
        parallel.sharded_train_step(mesh)(state, {"x": jnp.zeros((K * 12, 2))})
    with pytest.raises(ValueError, match="a minibatch of 12 does not split over 8 devices"):
        parallel.sharded_train_epoch(mesh, 12, 240)


def test_a_step_of_ones_own_over_its_own_state_runs_data_parallel():
    """A pytree state that is not a GANState (tests/test_variants.py's running mean of noisy
    data) trains through the epoch program on 8 devices with the numbers of one."""
    data = {"x": jax.random.normal(jax.random.key(3), (1024, 2)) + 3.0}
    single, metrics = train_epoch(tracker(), data, batch_size=64, step_fn=tracker_step)
    mesh = parallel.data_mesh(8)
    epoch = parallel.sharded_train_epoch(mesh, 64, 1024, None, tracker_step)
    sharded, _ = epoch(
        parallel.to_global(tracker(), parallel.replicated(mesh)),
        parallel.shard_data(data, mesh, 1024),
    )
    assert int(single.step) == 8 and float(metrics["mean0"][-1]) == pytest.approx(3.0, abs=0.2)
    np.testing.assert_allclose(sharded.mean, single.mean, rtol=1e-6)


# Each experiment's defaults for one epoch of STEPS steps on 8 devices against 1: dropout
# masks, the minibatch statistics and batch norm are the global batch's, so the runs agree to
# rounding (before, the MNIST default's per-device dropout masks made its samples differ by
# 0.13 after 20 steps). Longer runs drift apart chaotically: the MNIST default agrees to 4e-7
# for 10 steps, then one rounding-level event (a unit's pre-activation or a near-zero gradient
# component changing sign) moves its samples 3e-5 apart at step 12 and 1e-3 by step 20; the
# ring without dropout does the same. Such drift starts at a different step for every dataset.
STEPS = 20
DCGAN8 = ("--batch-size", "40", "--g-width", "8", "--d-width", "8", "--eval-samples", "0")
BATCH80 = ("--batch-size", "80")
# (module, options for 20 steps, tolerance on the samples). Adam moves a parameter whose
# gradient is rounding noise by about lr with the noise's sign, and the sign is not
# device-count invariant: on the ring a few hundred such parameters differ by up to 1.3 lr
# after 20 steps (samples 3.5e-4 apart, lr 2e-4), and so did DCGAN's at batch 80 (3.8e-4; at
# batch 40, 6e-8); elsewhere the samples agree to 3e-6 (MNIST on real digits; on
# random-noise "digits" rounding dominates far more gradients).
MNIST80 = ("--data-dir", "{idx}", "--eval-samples", "0", *BATCH80)
DEFAULT_RUNS = {
    "gaussian1d": (gaussian1d, ["--num-train", "4000"], 1e-5),
    "mixture2d_ring": (mixture2d, ["--num-train", "4000", "--eval-samples", "100"], 2e-3),
    "mixture2d_grid": (
        mixture2d,
        ["--dataset", "grid", "--num-train", "4000", "--eval-samples", "100"],
        1e-5,
    ),
    # R3GAN's Adam (β1 = 0) moves every parameter by lr·sign(g) at first, so a rounding-noise
    # gradient's sign moves it by lr (5e-4): the samples differ by 1e-5 after 1 step, 2e-5
    # after 3, 0.07 after 20; with β1 = 0.5 the same recipe agrees to 1.9e-5 after 20 steps.
    "mnist": (mnist, list(MNIST80), 5e-5, 3),
    "mnist_beta1": (mnist, [*MNIST80, "--beta1", "0.5"], 5e-5),
    "dcgan": (
        dcgan,
        ["--dataset", "mnist", "--data-dir", "{idx}", "--image-size", "32", *DCGAN8],
        2e-3,
    ),
    # PacGAN packs of 2: each device's 5 packs are pairs of its own rows, the 1-device pairs
    "stacked_mnist_pack2": (
        stacked_mnist,
        ["--data-dir", "{idx}", "--num-train", "480", "--pack", "2", *DCGAN8[2:], *BATCH80],
        1e-4,
        6,
    ),
}


def final_samples(module, argv: list[str], workdir: Path) -> np.ndarray:
    """G's samples (from its sampling parameters, in inference mode) of 64 fixed latent
    vectors, from the run's newest checkpoint."""
    config = module.Config(**vars(config_parser(module.Config, "", "").parse_args(argv)))
    generator = module.build_models(config)[0]
    steps = sorted((workdir / "checkpoints").iterdir(), key=lambda p: int(p.name))
    with ocp.StandardCheckpointer() as reader:
        raw = reader.restore(steps[-1] / "state")
    variables = {"params": raw.get("ema_params") or raw["g"]["params"]}
    if raw["g"].get("batch_stats"):
        variables["batch_stats"] = raw["g"]["batch_stats"]
    z = jax.random.normal(jax.random.key(7), (64, config.latent_dim))
    return np.asarray(generator.apply(variables, z, train=False))


@pytest.mark.parametrize("name", sorted(DEFAULT_RUNS))
def test_each_experiments_default_on_8_devices_matches_1_device(name, tmp_path, request):
    """20 steps (3 of MNIST's default) of each experiment's defaults on 8 devices and on 1 end
    with the same samples, to 1e-5 where no gradient is rounding noise (see DEFAULT_RUNS); the
    image experiments on real digits (a batch's worth for each step)."""
    module, argv, tolerance, steps = (*DEFAULT_RUNS[name], STEPS)[:4]
    idx = None
    if any("{idx}" in a for a in argv):
        real = request.getfixturevalue("real_mnist")
        batch = int(argv[argv.index("--batch-size") + 1])
        digits = data.load_idx(real, "train", rows=slice(0, batch * steps))
        idx = write_idx_dataset(tmp_path / "idx", digits["image"][..., 0], digits["label"])
    samples = []
    for devices in (1, 8):
        workdir = tmp_path / f"d{devices}"
        run_argv = ["--epochs", "1", "--devices", str(devices)]
        run_argv += [a.format(idx=idx) for a in argv]
        module.main(["--workdir", str(workdir), *run_argv])
        assert int(checkpoint_arrays(workdir)["['step']"]) == steps
        samples.append(final_samples(module, run_argv, workdir))
    print(name, float(np.abs(samples[1] - samples[0]).max()))
    np.testing.assert_allclose(samples[1], samples[0], atol=tolerance)


def final_translations(module, argv: list[str], workdir: Path, sources: np.ndarray) -> np.ndarray:
    """A translation experiment's G (inference mode, a fixed dropout key) on uint8
    ``sources``, from the run's newest checkpoint."""
    config = module.Config(**vars(config_parser(module.Config, "", "").parse_args(argv)))
    generator = module.build_models(config)[0]
    steps = sorted((workdir / "checkpoints").iterdir(), key=lambda p: int(p.name))
    with ocp.StandardCheckpointer() as reader:
        raw = reader.restore(steps[-1] / "state")
    variables = {"params": raw["g"]["params"], "batch_stats": raw["g"]["batch_stats"]}
    rngs = {"dropout": jax.random.key(7)}
    return np.asarray(
        generator.apply(variables, data.scale_images(sources), train=False, rngs=rngs)
    )


# A translation experiment's options and the sources its G takes, from 28x28 digits.
TRANSLATION_RUNS = {
    "pix2pix": (
        pix2pix,
        ["--g-width", "8", "--d-width", "8", "--g-depth", "3", "--d-layers", "1"],
        lambda digits: pairs.inpaint_pairs(data.pad_images(digits, 32))["source"],
    ),
    "srgan": (
        srgan,
        ["--g-width", "4", "--g-blocks", "1", "--d-width", "4", "--d-stages", "2"],
        lambda digits: pairs.downscale(digits, 4),
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSLATION_RUNS))
def test_translations_on_8_devices_match_1_device(name, real_mnist, tmp_path):
    """6 steps of pix2pix (batch norm over the global batch, dropout masks drawn for it,
    patch logits) or SRGAN (batch norm, PReLU, D judging outputs alone) on 8 devices and on 1
    end with the same translations of 64 test digits, to rounding (pix2pix: 6e-9 after 1, 3
    and 5 steps at depth 5). Later Adam's lr-sized moves of rounding-noise gradients set in,
    as in DCGAN's (DEFAULT_RUNS): 8e-5 after 10 steps of pix2pix, 6e-4 after 20."""
    module, options, sources_of = TRANSLATION_RUNS[name]
    steps = 6
    digits = data.load_idx(real_mnist, "train", rows=slice(0, 40 * steps))
    idx = write_idx_dataset(tmp_path / "idx", digits["image"][..., 0], digits["label"])
    argv = ["--data-dir", str(idx), "--batch-size", "40", "--epochs", "1", "--eval-samples", "0"]
    argv += options
    sources = sources_of(digits["image"][:64])
    outputs = []
    for devices in (1, 8):
        workdir = tmp_path / f"d{devices}"
        module.main(["--workdir", str(workdir), "--devices", str(devices), *argv])
        assert int(checkpoint_arrays(workdir)["['step']"]) == steps
        outputs.append(final_translations(module, argv, workdir, sources))
    print(name, float(np.abs(outputs[1] - outputs[0]).max()))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)


def test_cyclegan_on_8_devices_matches_1_device(real_mnist, tmp_path):
    """6 steps of CycleGAN (its own state: two generators and two discriminators with instance
    norm, and the image pools, queried with the global batch's fakes) on 8 devices and on 1
    end with the same state, to the rounding these tiny networks amplify. The pools would
    differ by whole images if the devices drew differently, and D's Adam moments far more than
    their rounding if the devices' gradients were not averaged (each device has 5 samples).

    The generators' gradients pass through 4-channel instance norms, which amplify rounding:
    on an Intel machine with AMX two one-device runs of this command, compiled at different
    LLVM optimisation levels, end with G's first moments 32 % apart (norm of the difference
    over the norm) and 8 devices against 1 28 %, the parameters 0.34 % of their scale, the
    pools' images 0.022 (on an AMD EPYC: 1.2 % of the moments' scale, parameters 5e-5). So
    G's moments are compared by that relative distance (at most 0.5), the parameters to 1 %
    of each array's scale, the pools to 0.1; D's moments (0.4 % apart there) stay within 5 %
    of their scale element by element."""
    digits = data.load_idx(real_mnist, "train", rows=slice(0, 480))  # 240 per domain
    idx = write_idx_dataset(tmp_path / "idx", digits["image"][..., 0], digits["label"])
    argv = ["--data-dir", str(idx), "--batch-size", "40", "--epochs", "1", "--eval-samples", "0"]
    argv += ["--g-width", "4", "--g-blocks", "1", "--d-width", "4", "--d-layers", "1"]
    for devices in (1, 8):
        cyclegan.main(
            ["--workdir", str(tmp_path / f"d{devices}"), "--devices", str(devices), *argv]
        )
    one, eight = checkpoint_arrays(tmp_path / "d1"), checkpoint_arrays(tmp_path / "d8")
    assert one.keys() == eight.keys() and int(one["['step']"]) == 6
    assert int(one["['pool_a']['count']"]) == 50  # full after 2 steps: 4 of swapping
    for name in one:
        scale = np.abs(one[name]).max()
        if "opt_state" in name and one[name].dtype.kind == "f" and name.startswith("['g_"):
            distance = np.linalg.norm(eight[name] - one[name]) / np.linalg.norm(one[name])
            assert distance <= 0.5, (name, distance)
        elif "opt_state" in name and one[name].dtype.kind == "f":
            np.testing.assert_allclose(eight[name], one[name], atol=0.05 * scale, err_msg=name)
        elif name.endswith("['images']"):
            np.testing.assert_allclose(eight[name], one[name], atol=0.1, err_msg=name)
        elif one[name].dtype.kind == "f":
            np.testing.assert_allclose(eight[name], one[name], atol=0.01 * scale, err_msg=name)
        else:
            np.testing.assert_array_equal(eight[name], one[name], err_msg=name)


def test_a_run_over_8_devices_killed_and_resumed_matches_an_uninterrupted_one(tmp_path):
    assert jax.device_count() == 8  # the runs below inherit the simulated devices
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    idx = write_idx_dataset(tmp_path / "idx", images, np.arange(200) % 10)
    options = ["--data-dir", str(idx), "--batch-size", "40", "--epochs", "6"]
    options += ["--eval-samples", "0", "--g-hidden", "32", "--d-hidden", "32"]
    assert_killed_run_matches_straight("mnist", options, tmp_path, kills=1, seed=8)

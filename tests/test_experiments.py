"""Experiments end to end in tiny configurations, and the one-line error contract."""

import dataclasses
import importlib
import json
import subprocess
import sys
import typing
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import assert_same_state, expect_one_line_error

from jaxgan import cli, data, metrics, parallel
from jaxgan.cli import config_parser
from jaxgan.epoch import train_epoch
from jaxgan.experiments import dcgan, gaussian1d, mixture2d, mnist
from jaxgan.state import evaluation_noise, generate_samples
from jaxgan.trainer import create_state


def read_summary(workdir):
    return json.loads((workdir / "summary.json").read_text())


def test_gaussian1d_tiny_run_writes_the_workdir(tmp_path):
    gaussian1d.main(
        [
            "--workdir",
            str(tmp_path),
            "--epochs",
            "2",
            "--batch-size",
            "100",
            "--num-train",
            "3000",
            "--eval-samples",
            "10000",
            "--minibatch-features",
            "--hidden",
            "16",
            "16",
            "--lr-g=5e-3",
            "--lr-d=5e-3",
        ]
    )
    summary = read_summary(tmp_path)
    assert summary["status"] == "completed" and summary["steps"] == 60
    for key in ("mean", "std", "skew", "kurtosis", "w1", "train_steps_per_s"):
        assert isinstance(summary[key], float)
    assert summary["w1"] < 1.5  # from 3.87 untrained (G's outputs near 0, the target N(4, 1.25))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["minibatch_features"] is True and config["hidden"] == [16, 16]
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [30, 60]
    assert (tmp_path / "histogram.png").stat().st_size > 0
    assert list((tmp_path / "tb").iterdir())


def test_mixture2d_tiny_run_with_protocol_networks_and_packing(tmp_path):
    argv = ["--workdir", str(tmp_path), "--dataset", "grid", "--epochs", "4"]
    argv += ["--batch-size", "100", "--num-train", "2000", "--eval-samples", "500", "--pack", "2"]
    argv += ["--g-hidden", "32", "32", "--g-batch-norm", "--d-hidden", "16", "16"]
    argv += ["--d-maxout", "5", "--loss", "non_saturating", "--lr-g=2e-3", "--lr-d=2e-3"]
    mixture2d.main(argv)
    summary = read_summary(tmp_path)
    assert summary["num_modes"] == 25 and summary["steps"] == 80
    assert (tmp_path / "samples.png").stat().st_size > 0
    # it learns: more modes found in some epoch than the untrained G's samples reach
    config = mixture2d.Config(
        dataset="grid", num_train=2000, eval_samples=500, pack=2, g_hidden=(32, 32),
        g_batch_norm=True, d_hidden=(16, 16), d_maxout=5,
    ).resolved()  # fmt: skip
    untrained, _ = create_state(config, *mixture2d.build_models(config), config.num_train)
    samples = generate_samples(untrained, evaluation_noise(untrained, config.eval_samples))
    before = metrics.mode_statistics(np.asarray(samples), *data.mixture_modes("grid"))["modes"]
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["modes"] for r in log) >= before + 3, (before, [r["modes"] for r in log])


BAD_OPTIONS = [
    (["--loss", "wgan-ish"], "invalid choice: 'wgan-ish'"),
    (["--d-steps", "0"], "--d-steps must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--batch-size", "-5"], "--batch-size must be >= 1, got -5"),
    (["--epochs", "two"], "invalid int value: 'two'"),
    (["--lr-d", "0"], "--lr-d must be > 0"),
    (["--batch-size", "100", "--pack", "3"], "must be a multiple of --pack 3"),
    (["--g-hidden", "0", "4"], "--g-hidden widths must be >= 1"),
    (["--num-train", "50", "--batch-size", "100"], "fewer than one step needs"),
]


@pytest.mark.parametrize(("args", "message"), BAD_OPTIONS)
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "keep.txt").write_text("precious")
    expect_one_line_error(capsys, mixture2d.main, ["--workdir", str(workdir), *args], message)
    assert sorted(p.name for p in workdir.iterdir()) == ["keep.txt"]


def test_a_bad_option_is_one_line_and_exit_2_from_the_command_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxgan.experiments.mixture2d",
            "--workdir",
            str(tmp_path),
            "--d-steps",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr
        == "python -m jaxgan.experiments.mixture2d: error: --d-steps must be >= 1, got 0\n"
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["gaussian1d", "mixture2d", "mnist", "dcgan"])
def test_every_experiments_help_shows_each_option_and_its_default(name):
    module = importlib.import_module(f"jaxgan.experiments.{name}")
    text = config_parser(module.Config, name, "").format_help()
    for field in dataclasses.fields(module.Config):
        flag = f"--{field.name.replace('_', '-')}"
        assert flag in text, flag
    assert text.count("(default:") >= len(dataclasses.fields(module.Config))


def test_help_shows_the_experiments_options_first_then_the_trainers_groups():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxgan.experiments.gaussian1d", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m jaxgan.experiments.gaussian1d [options]\n")
    headings = [line[:-1] for line in proc.stdout.splitlines() if line and line[0] != " "]
    expected = ["gaussian1d options", "run", "the GAN step", "optimisation", "model tricks"]
    expected += ["health monitor", "checkpoints", "devices and hosts"]
    assert headings[-len(expected) :] == expected
    own = proc.stdout.split("gaussian1d options:")[1].split("\nrun:")[0]
    assert "--target-mean" in own and "(default: 4.0)" in own and "--lr-d" not in own
    assert "--lr-d" in proc.stdout.split("optimisation:")[1].split("\nmodel tricks:")[0]
    assert "--epochs" in proc.stdout.split("\nrun:")[1].split("\nthe GAN step:")[0]


@pytest.mark.parametrize("name", ["gaussian1d", "mixture2d", "mnist", "dcgan"])
def test_every_float_option_refuses_inf_and_nan(name, capsys):
    config_cls = importlib.import_module(f"jaxgan.experiments.{name}").Config
    parser = config_parser(config_cls, name, "")
    hints = typing.get_type_hints(config_cls)
    floats = [n for n, t in hints.items() if float in (t, *typing.get_args(t))]
    assert {"lr_d", "beta1", "gp_weight", "real_target"} <= set(floats)
    for field in floats:
        for value in ("inf", "-inf", "nan"):
            with pytest.raises(SystemExit) as stopped:
                parser.parse_args([f"--{field.replace('_', '-')}={value}"])
            assert stopped.value.code == 2
            error = capsys.readouterr().err
            assert error.count("\n") == 1 and f"must be a finite number, got '{value}'" in error


def test_mixture2d_defaults_follow_the_dataset_unless_given():
    ring, grid = (mixture2d.Config(dataset=d).resolved() for d in ("ring", "grid"))
    assert ring.g_hidden == (256, 256, 256) and not ring.d_minibatch_std
    assert grid.g_hidden == (256, 256, 256, 256) and grid.d_minibatch_std
    given = mixture2d.Config(dataset="grid", g_hidden=(8,), d_minibatch_std=False).resolved()
    assert given.g_hidden == (8,) and not given.d_minibatch_std


@pytest.mark.parametrize(
    ("environ", "metadata", "expected"),
    [
        ({"TPU_WORKER_HOSTNAMES": "t-w-0,t-w-1,t-w-2,t-w-3"}, None, "TPU_WORKER_HOSTNAMES lists 4"),
        ({"TPU_PROCESS_ADDRESSES": "10.0.0.1:8476,10.0.0.2:8476"}, None, "lists 2 hosts"),
        ({"TPU_WORKER_HOSTNAMES": "localhost"}, None, None),  # a single-host TPU VM
        ({"MEGASCALE_COORDINATOR_ADDRESS": "10.0.0.1"}, None, "multislice"),
        ({}, "w-0:a:10.0.0.1,w-1:b:10.0.0.2", "metadata lists 2 workers"),
        ({}, "10.0.0.1", None),  # a v4-8: one worker
        ({}, None, None),  # no metadata server
    ],
)
def test_tpu_pod_slices_are_recognised_from_their_environment(environ, metadata, expected):
    found = parallel.tpu_pod_environment(environ, lambda name: metadata)
    assert found is None if expected is None else expected in found


def test_this_machine_is_not_a_tpu_pod():
    assert parallel.tpu_pod_environment({}) is None


def test_on_a_pod_slice_experiments_join_the_other_hosts_without_the_flag(
    tmp_path, monkeypatch, capsys
):
    calls = []

    def initialize(*args):
        calls.append(args)
        raise RuntimeError("stop here")  # a real join would wait for the other hosts

    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t-w-0,t-w-1")
    monkeypatch.setattr(cli, "initialize_distributed", initialize)
    with pytest.raises(RuntimeError, match="stop here"):
        gaussian1d.main(["--workdir", str(tmp_path / "run")])
    assert calls == [(None, None, None)]  # jax.distributed.initialize detects the rest
    assert "joining the other hosts as --distributed does: TPU_WORKER_HOSTNAMES lists 2 hosts" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_mixture2d_seeds_train_together_as_each_seed_alone():
    config = mixture2d.Config(
        dataset="ring", seed=3, epochs=1, batch_size=100, num_train=1000, eval_samples=200,
        g_hidden=(16,), d_hidden=(16,), ema_decay=0.9,
    )  # fmt: skip
    seeds = mixture2d.Seeds(config, 2)
    seeds.train_epoch()
    alone = dataclasses.replace(config, seed=4).resolved()
    state, _ = create_state(alone, *mixture2d.build_models(alone), alone.num_train)
    real = data.gaussian_mixture("ring", alone.num_train, seed=4)
    state, _ = train_epoch(state, real, batch_size=alone.batch_size)
    for a, b in zip(
        jax.tree.leaves(state.sampling_params),
        jax.tree.leaves(seeds.states.sampling_params),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b)[1], atol=1e-5)
    stats = seeds.mode_statistics()
    assert len(stats) == 2 and all(s["num_modes"] == 8 for s in stats)


def test_mixture2d_seeds_resume_from_their_checkpoint_bitwise(tmp_path, capsys):
    config = mixture2d.Config(
        dataset="grid", epochs=2, batch_size=100, num_train=500, eval_samples=100,
        g_hidden=(16,), d_hidden=(16,),
    )  # fmt: skip
    straight = mixture2d.Seeds(config, 2)
    straight.fit(2, tmp_path / "straight", every=5)
    stopped = mixture2d.Seeds(config, 2)
    stopped.fit(1, tmp_path / "stopped", every=5)  # the last epoch is always saved
    resumed = mixture2d.Seeds(config, 2)
    resumed.fit(2, tmp_path / "stopped", every=5)
    assert "at epoch 1" in capsys.readouterr().out
    assert resumed.epoch == 2
    assert_same_state(straight.states, resumed.states)
    assert straight.mode_statistics() == resumed.mode_statistics()


def test_losses_table_renders_another_platforms_cells_and_refuses_to_train_them(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
    losses_table = importlib.import_module("losses_table")
    stats = [
        {"modes": 8, "num_modes": 8, "hq_fraction": 0.98, "reverse_kl": 0.002},
        {"modes": 6, "num_modes": 8, "hq_fraction": 0.50, "reverse_kl": 0.100},
    ]
    cell = {"dataset": "ring", "loss": "minimax", "settings": {}, "stats": stats, "device": "X1"}
    (tmp_path / "ring-minimax-3ep-2seeds-tpu.json").write_text(json.dumps(cell))
    argv = ["--platform", "tpu", "--epochs", "3", "--seeds", "2", "--datasets", "ring"]
    argv += ["--results", str(tmp_path), "--workdir", str(tmp_path / "w")]
    losses_table.main([*argv, "--losses", "minimax", "--out", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert text.startswith("2 seeds per cell, 3 epochs (shortened: the protocol is 100), on X1")
    # means and population standard deviations of the two seeds, worked by hand
    assert "| ring | minimax | defaults | 7.0 ± 1.0 | 74.0 ± 24.0 | 0.051 ± 0.049 | 1/2 |" in text
    # a cell of another platform that is missing (or stale) is never trained here
    expect_one_line_error(
        capsys, losses_table.main, [*argv, "--losses", "hinge"], "trained on a tpu machine"
    )
    cell["settings"] = {"lr_g": 1.0}
    (tmp_path / "ring-minimax-3ep-2seeds-tpu.json").write_text(json.dumps(cell))
    expect_one_line_error(
        capsys, losses_table.main, [*argv, "--losses", "minimax"], "has other settings"
    )
    assert not (tmp_path / "w").exists()


def test_paths_are_checked_before_anything_is_written(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("precious")

    def expect(argv, message):
        expect_one_line_error(capsys, gaussian1d.main, argv, message)

    expect(["--workdir", str(a_file)], f"--workdir {a_file} is a file, not a folder")
    expect(["--workdir", str(a_file / "run")], f"is under {a_file}, which is a file")
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # a read-only mount
    expect(["--workdir", str(tmp_path / "run")], f"cannot be written: {tmp_path} is read-only")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert a_file.read_text() == "precious"
    with pytest.raises(cli.UsageError, match=r"--data-dir .* is a file, not a folder"):
        cli.check_paths(dataclasses.replace(mnist.Config(), data_dir=str(a_file)))
    with pytest.raises(cli.UsageError, match=r"--data-cache .* which is a file"):
        cli.check_paths(dcgan.Config(data_cache=str(a_file / "cache")))

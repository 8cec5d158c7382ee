"""Checkpoints, resume and faults, with real subprocesses and real Orbax files.

Every run is the 1-D Gaussian experiment in a tiny configuration (20 steps per epoch, a
checkpoint every epoch), so that a process spends most of its life training and saving.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import adam_step_sizes, assert_same_state, checkpoint_arrays

from jaxgan.checkpoint import Checkpointer
from jaxgan.cli import EXIT_DIVERGED
from jaxgan.data import DataError
from jaxgan.experiments import gaussian1d
from jaxgan.tensorboard import EventWriter
from jaxgan.trainer import CheckpointPolicy, make_optimizer
from jaxgan.trainer.config import create_state

EPOCHS = 8
TINY = [
    "--num-train", "2000", "--batch-size", "100", "--hidden", "16", "16",
    "--eval-samples", "2000", "--checkpoint-every", "1", "--keep-checkpoints", "2",
]  # fmt: skip
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}


def command(workdir: Path, *extra: str, epochs: int = EPOCHS) -> list[str]:
    return [
        sys.executable, "-m", "jaxgan.experiments.gaussian1d", "--workdir", str(workdir),
        "--epochs", str(epochs), *TINY, *extra,
    ]  # fmt: skip


def run(workdir: Path, *extra: str, epochs: int = EPOCHS) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(workdir, *extra, epochs=epochs), capture_output=True, text=True, env=ENV
    )


def run_here(capsys, workdir: Path, *extra: str, epochs: int = EPOCHS) -> tuple[int, str]:
    """:func:`run` in this process (no interpreter start-up): the exit status and stderr."""
    capsys.readouterr()
    try:
        gaussian1d.main(command(workdir, *extra, epochs=epochs)[3:])
        status = 0
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().err


def final_state(workdir: Path, **overrides):
    """The newest checkpoint of ``workdir``, restored into the tiny configuration's model."""
    tiny = {"num_train": 2000, "batch_size": 100, "hidden": (16, 16), "epochs": EPOCHS}
    config = gaussian1d.Config(**(tiny | overrides))
    generator, discriminator = gaussian1d.build_models(config)
    target, _ = create_state(config, generator, discriminator, config.num_train)
    checkpointer = Checkpointer(workdir, create=False)
    state, _ = checkpointer.restore(target)
    checkpointer.close()
    return state


def snapshot(workdir: Path) -> dict[str, str]:
    """Every file under ``workdir`` with a hash of its content."""
    return {
        str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(workdir.rglob("*"))
        if p.is_file()
    }


def logged_epochs(workdir: Path) -> int:
    try:
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        return max((json.loads(line)["epoch"] for line in lines), default=0)
    except (OSError, json.JSONDecodeError):
        return 0


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent XLA cache for the module's processes: each compiles the same programs."""
    ENV["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("xla_cache"))
    ENV["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    yield
    del ENV["JAX_COMPILATION_CACHE_DIR"], ENV["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    result = run(workdir)
    assert result.returncode == 0, result.stderr
    return workdir


def test_killed_at_random_points_and_resumed_matches_uninterrupted(reference, tmp_path):
    # checkpoints every 10 steps, half of them inside an epoch (20 steps); the reference saves
    # at epoch ends only (a safe option to differ)
    workdir, chunked = tmp_path / "run", ("--checkpoint-every-steps", "10")
    rng = random.Random(0)
    kills = sorted(rng.sample(range(1, EPOCHS), 3))
    for epoch in kills:
        proc = subprocess.Popen(
            command(workdir, *chunked),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        while logged_epochs(workdir) < epoch and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))  # anywhere in the epoch, a save included
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at {epoch}"
    result = run(workdir, *chunked)
    assert result.returncode == 0, result.stderr
    assert "resuming from step" in result.stderr

    assert_same_state(final_state(workdir), final_state(reference))
    # every log point exactly once, with the very values of the uninterrupted run
    ours, theirs = ((w / "metrics.jsonl").read_text().splitlines() for w in (workdir, reference))
    assert ours == theirs
    assert len({json.loads(line)["step"] for line in ours}) == len(ours) == EPOCHS
    summary = json.loads((workdir / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    for key in ("status", "steps", "epochs", "w1", "mean", "std", "d_loss", "g_loss"):
        assert summary[key] == expected[key]


def test_sigterm_finishes_the_chunk_saves_and_exits_zero(reference, tmp_path):
    workdir, chunked = tmp_path / "run", ("--checkpoint-every-steps", "5")
    proc = subprocess.Popen(
        command(workdir, *chunked),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    while logged_epochs(workdir) < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    step = int(out.split("saved at step ")[1].split(";")[0])
    assert "rerun the same command to resume" in out
    assert 0 < step < EPOCHS * 20 and step % 5 == 0  # a chunk's end
    assert str(step) in os.listdir(workdir / "checkpoints")
    assert json.loads((workdir / "summary.json").read_text())["status"] == "interrupted"

    result = run(workdir, *chunked)
    assert result.returncode == 0, result.stderr
    assert f"resuming from step {step}" in result.stderr
    assert_same_state(final_state(workdir), final_state(reference))
    ours, theirs = ((w / "metrics.jsonl").read_text() for w in (workdir, reference))
    assert ours == theirs


def overwrite_middle(checkpoint: Path, size: int = 64) -> Path:
    """Random bytes written over the middle of ``checkpoint``'s largest file, its length kept
    (what a flipped disk block does, which the files' own structure does not reveal)."""
    largest = max((p for p in checkpoint.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    content = bytearray(largest.read_bytes())
    middle = len(content) // 2
    content[middle : middle + size] = random.Random(0).randbytes(size)
    largest.write_bytes(bytes(content))
    return largest


def truncate_arrays(checkpoint: Path) -> None:
    """The checkpoint's array data files cut in half (Orbax fails to read them)."""
    for path in checkpoint.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [truncate_arrays, overwrite_middle], ids=["cut", "bytes"])
def test_a_broken_newest_checkpoint_is_set_aside_and_the_one_before_resumes(
    damage, reference, tmp_path
):
    """Cut files Orbax cannot read; overwritten bytes it reads fail the digest. Either way the
    checkpoint is reported readably, moved aside, and the rerun trains the last epoch again
    to the uninterrupted run's state and log."""
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    last = EPOCHS * 20
    damage(workdir / "checkpoints" / str(last))

    result = run(workdir)  # the run is complete, but its last checkpoint is broken
    assert result.returncode == 0, result.stderr
    assert f"checkpoint at step {last} is unreadable" in result.stderr
    assert "<bound method" not in result.stderr and "source locations" not in result.stderr
    assert f"resuming from step {last - 20}" in result.stderr
    assert (workdir / "checkpoints_corrupt" / str(last)).is_dir()
    assert_same_state(final_state(workdir), final_state(reference))
    ours, theirs = ((w / "metrics.jsonl").read_text() for w in (workdir, reference))
    assert ours == theirs


def test_no_readable_checkpoint_stops_the_run_and_keeps_its_files(reference, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    for checkpoint in (workdir / "checkpoints").iterdir():
        overwrite_middle(checkpoint)
    log = (workdir / "metrics.jsonl").read_text()
    for _ in range(2):  # the second time, the checkpoints are already set aside
        result = run(workdir)
        assert result.returncode == 2
        error = result.stderr.strip().splitlines()[-1]
        assert "error: no checkpoint in" in error and "--restart --overwrite starts afresh" in error
        assert "Traceback" not in result.stderr
        assert (workdir / "metrics.jsonl").read_text() == log
    assert not list((workdir / "checkpoints").iterdir())
    assert len(list((workdir / "checkpoints_corrupt").iterdir())) == 2

    result = run(workdir, "--restart", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert not (workdir / "checkpoints_corrupt").exists()
    assert_same_state(final_state(workdir), final_state(reference))


def test_config_that_changes_the_model_or_data_is_refused(reference, tmp_path):
    before = snapshot(reference)
    result = run(reference, "--hidden", "8", "--seed", "3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "--hidden [16, 16] -> [8]" in lines[0] and "--seed 0 -> 3" in lines[0]
    assert "--restart --overwrite" in lines[0]
    assert snapshot(reference) == before


def test_more_epochs_and_new_learning_rates_are_allowed(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert run_here(capsys, workdir, epochs=2)[0] == 0
    status, err = run_here(capsys, workdir, epochs=2)
    assert status == 0 and "is complete (2 epochs, step 40)" in err and "resuming" not in err
    status, err = run_here(capsys, workdir, "--lr-g", "1e-4", epochs=3)
    assert status == 0, err
    assert "resuming from step 40 (epoch 2)" in err
    assert json.loads((workdir / "summary.json").read_text())["steps"] == 60
    assert json.loads((workdir / "config.json").read_text())["lr_g"] == 1e-4


def test_checkpoint_of_another_architecture_is_a_clear_error(reference, tmp_path):
    with pytest.raises(DataError, match=r"does not fit this model: .*shape"):
        final_state(reference, hidden=(8, 8))
    # the same through the command line: another model's checkpoints in a fresh workdir
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(reference / "checkpoints", workdir / "checkpoints")
    result = run(workdir, "--hidden", "8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not fit this model" in result.stderr.strip().splitlines()[-1]


def test_restart_requires_overwrite(reference, tmp_path, capsys):
    before = snapshot(reference)
    status, err = run_here(capsys, reference, "--restart")
    assert status == 2 and "--overwrite" in err
    assert snapshot(reference) == before

    workdir = tmp_path / "run"
    assert run_here(capsys, workdir, epochs=2)[0] == 0
    status, err = run_here(capsys, workdir, "--restart", "--overwrite", epochs=1)
    assert status == 0, err
    assert "resuming" not in err
    assert sorted(os.listdir(workdir / "checkpoints")) == ["20"]
    assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 1


def test_divergence_stops_with_nonzero_exit_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert run_here(capsys, workdir, epochs=2)[0] == 0
    good = final_state(workdir)
    # resuming with an absurd learning rate (a safe option to change) blows the weights up
    status, err = run_here(capsys, workdir, "--lr-d", "1e30", "--lr-g", "1e30", epochs=4)
    assert status == EXIT_DIVERGED
    message = err.strip().splitlines()[-1]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "diverged" and 40 < summary["diverged_at"] <= 60
    assert f"training diverged: non-finite {summary['nonfinite'][0]}" in message
    assert f"at step {summary['diverged_at']} (epoch 3)" in message
    assert "the last good checkpoint is step 40" in message
    assert sorted(os.listdir(workdir / "checkpoints")) == ["20", "40"]
    assert_same_state(final_state(workdir), good)


def test_keep_best_keeps_the_best_checkpoint_besides_the_latest(tmp_path):
    workdir = tmp_path / "run"
    result = run(workdir, "--keep-checkpoints", "1", "--keep-best", "w1:min", epochs=6)
    assert result.returncode == 0, result.stderr
    log = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    best = min(log, key=lambda r: r["w1"])["step"]
    assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == sorted({best, 120})


def test_checkpoint_policy_saves_on_epochs_or_steps_at_chunk_ends():
    by_epochs = CheckpointPolicy(every_epochs=10)
    assert by_epochs.chunk(50) == 50  # whole epochs
    assert by_epochs.due(500, 10, epoch_done=True)
    assert not by_epochs.due(450, 9, epoch_done=True) and not by_epochs.due(490, 10, False)
    assert not CheckpointPolicy(every_epochs=0).due(500, 10, epoch_done=True)  # only at the end
    by_steps = CheckpointPolicy(every_epochs=10, every_steps=20)
    assert by_steps.chunk(50) == 10  # gcd: saves at 20, 40, ... fall on chunk ends
    ends = range(10, 151, by_steps.chunk(50))
    saved = [s for s in ends if by_steps.due(s, s // 50 + 1, s % 50 == 0)]
    assert saved == list(range(20, 151, 20))
    assert CheckpointPolicy.of(gaussian1d.Config(checkpoint_every_steps=7)).every_steps == 7


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (skips where mounting is not permitted)."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (test_a_full_disk_stand_in covers the handling)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_disk_stops_the_run_with_one_line_and_a_later_resume_completes(reference, tmp_path):
    disk = tmp_path / "disk"
    with small_disk(disk, "450k"):
        workdir = disk / "run"
        for _ in range(2):  # a fresh run, then a resume on the still full disk
            result = subprocess.run(
                command(workdir), capture_output=True, text=True, env=ENV, timeout=120
            )  # a hang (tensorboardX's dead writer thread) fails here
            assert result.returncode == 2, result.stderr[-2000:]
            error = result.stderr.strip().splitlines()[-1]
            assert "error: cannot write " in error and str(workdir) in error, error
            assert "No space left on device" in error and "; free space and rerun the same" in error
            assert "Traceback" not in result.stderr and "ERROR:absl" not in result.stderr
        assert any(p.name.isdigit() for p in (workdir / "checkpoints").iterdir())  # kept
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)  # freed
        result = run(workdir)
        assert result.returncode == 0, result.stderr
        assert "resuming from step" in result.stderr
        assert_same_state(final_state(workdir), final_state(reference))
        ours, theirs = ((w / "metrics.jsonl").read_text() for w in (workdir, reference))
        assert ours == theirs


def test_a_full_disk_stand_in(tmp_path, capsys, monkeypatch):
    """Where no tmpfs can be mounted: the TensorBoard writer's disk fills at its 30th event."""
    writes = []

    def write(self, event):
        writes.append(event)
        if len(writes) >= 30:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(EventWriter, "_write", write)
    workdir = tmp_path / "run"
    argv = ["--workdir", str(workdir), "--epochs", str(EPOCHS), *TINY]
    with pytest.raises(SystemExit) as stopped:
        gaussian1d.main(argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        f"python -m jaxgan.experiments.gaussian1d: error: cannot write the run's files in "
        f"{workdir}: No space left on device; free space and rerun the same command to resume "
        "from the last checkpoint"
    )
    assert [p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]


def test_a_resume_with_more_epochs_stretches_the_schedule_over_the_new_total(tmp_path, capsys):
    """A linear schedule reaches 0 at the end of a 2-epoch run (Adam then moves nothing);
    resumed to 4 epochs, its learning rate at step 40 is half the initial one, and training
    goes on."""
    workdir = tmp_path / "run"
    argv = ["--workdir", str(workdir), *TINY, "--lr-schedule", "linear"]
    gaussian1d.main([*argv, "--epochs", "2"])
    ended = final_state(workdir, epochs=2, lr_schedule="linear")
    gaussian1d.main([*argv, "--epochs", "4"])
    assert "resuming from step 40 (epoch 2)" in capsys.readouterr().err
    resumed = final_state(workdir, epochs=4, lr_schedule="linear")
    assert int(resumed.step) == 80
    for before, after in zip(
        jax.tree.leaves(ended.g.params), jax.tree.leaves(resumed.g.params), strict=True
    ):
        assert np.abs(np.asarray(after) - np.asarray(before)).max() > 1e-4
    config = gaussian1d.Config(epochs=4, lr_schedule="linear", lr_g=2e-4)
    schedule = make_optimizer(2e-4, config, 80)  # what the resumed run's optimizer is
    sizes = adam_step_sizes(schedule, 41)
    assert sizes[40] == pytest.approx(1e-4, rel=1e-4)


DCGAN8 = ["--dataset", "mnist", "--image-size", "32", "--g-width", "8", "--d-width", "8"]
SRGAN4 = ["--g-width", "4", "--g-blocks", "1", "--d-width", "4", "--d-stages", "1"]
CYCLEGAN4 = ["--g-width", "4", "--g-blocks", "1", "--d-width", "4", "--d-layers", "1"]
# Each experiment's state kinds under a kill: D's dropout, R1 and R2, G's EMA and the labels
# (the MNIST default's recipe with dropout, conditional: AC-GAN), batch norm on the host-fed
# runner (DCGAN), a G fed from the batch with PReLU and a content term (SRGAN), a state of
# its own with two generators, two discriminators and their image pools (CycleGAN);
# 200 random digits, 4 steps an epoch, checkpoints every 2 steps. (The MNIST default itself is
# killed on 8 devices in tests/multidevice.)
KILL_CASES = {
    "mnist_acgan": (
        "mnist",
        ["--conditional", "acgan", "--g-hidden", "32", "--d-hidden", "32", "--d-dropout", "0.3"],
    ),
    "dcgan_host_fed": ("dcgan", [*DCGAN8, "--data-placement", "host", "--log-every", "4"]),
    # pix2pix and SRGAN train through the same translation runner: SRGAN stands for both
    "srgan": ("srgan", [*SRGAN4, "--log-every", "4"]),
    # 100 digits a domain: batches of 25 make its epochs of 4 steps too
    "cyclegan": (
        "cyclegan",
        [*CYCLEGAN4, "--batch-size", "25", "--log-every", "4", "--pool-size", "30"],
    ),
}


def kill_and_resume(experiment: str, options: list[str], workdir: Path, kills: int, seed: int):
    """Runs ``options`` (at least 6 epochs) to the end with ``kills`` SIGKILLs at random points
    of its first 4 epochs (after an epoch's log line, then anywhere up to 30 ms later: inside
    steps or saves)."""
    argv = [sys.executable, "-m", f"jaxgan.experiments.{experiment}", "--workdir", str(workdir)]
    rng = random.Random(seed)
    for epoch in sorted(rng.sample(range(1, 4), kills)):
        proc = subprocess.Popen(
            [*argv, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
        )
        while logged_epochs(workdir) < epoch and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at {epoch}"
    result = subprocess.run([*argv, *options], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def assert_killed_run_matches_straight(
    experiment: str, options: list[str], tmp_path: Path, *, kills: int, seed: int
) -> None:
    """An uninterrupted run of ``options`` and one killed ``kills`` times on the way
    (:func:`kill_and_resume`, checkpoints every 2 steps) end with bitwise the same checkpointed
    arrays and the same metrics.jsonl."""
    straight = tmp_path / "straight"
    module = f"jaxgan.experiments.{experiment}"
    result = subprocess.run(
        [sys.executable, "-m", module, "--workdir", str(straight), *options],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    killed = tmp_path / "killed"
    chunked = [*options, "--checkpoint-every-steps", "2", "--keep-checkpoints", "2"]
    result = kill_and_resume(experiment, chunked, killed, kills=kills, seed=seed)
    assert "resuming from step" in result.stderr
    ours, theirs = checkpoint_arrays(killed), checkpoint_arrays(straight)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].tobytes() == theirs[name].tobytes(), name
    assert (killed / "metrics.jsonl").read_text() == (straight / "metrics.jsonl").read_text()


@pytest.mark.parametrize("case", sorted(KILL_CASES))
def test_each_experiment_killed_and_resumed_matches_an_uninterrupted_run(
    case, tiny_mnist, tmp_path
):
    experiment, extra = KILL_CASES[case]
    options = ["--data-dir", str(tiny_mnist), "--batch-size", "50", "--epochs", "6"]
    options += ["--eval-samples", "0", *extra]
    kills = 1 if experiment in ("dcgan", "srgan", "cyclegan") else 2  # compiled the longest
    assert_killed_run_matches_straight(experiment, options, tmp_path, kills=kills, seed=len(case))

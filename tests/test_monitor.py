"""The health monitor on runs built to fail each way: D losing (its loss exploding), D winning,
mode collapse, samples like noise; evaluations that stop improving; short runs' windows."""

import json

import numpy as np
import pytest
from conftest import PREVIOUS_MNIST_DEFAULT

from jaxgan.experiments import gaussian1d, mnist
from jaxgan.monitor import PATIENCE, HealthMonitor, QualityWatch, fitted_window


def warned(workdir) -> dict[str, int]:
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "completed"
    return {w["kind"]: w["step"] for w in summary["warnings"]}


def test_a_short_run_is_watched_in_windows_that_fit_it():
    assert fitted_window(500, 10_000) == 500
    assert fitted_window(500, 250) == 50
    assert fitted_window(500, 20) == 10  # never shorter than 10 steps
    assert fitted_window(30, 100) == 20


def test_d_losing_and_noise_like_samples_are_reported(real_mnist, tmp_path, capsys):
    """--lr-d 1000 (the run of the trainer issue, on the previous default's cross-entropy
    recipe): D's loss reaches 1e12-1e16 and the samples score like an untrained G's; before,
    this ended "completed" without a word."""
    workdir = tmp_path / "run"
    mnist.main(["--workdir", str(workdir), "--data-dir", str(real_mnist), "--epochs", "1",
                *PREVIOUS_MNIST_DEFAULT, "--lr-d", "1000", "--eval-samples", "100"])  # fmt: skip
    kinds = warned(workdir)
    assert "d_exploding" in kinds and kinds["noise"] == 50, kinds
    err = capsys.readouterr().err
    assert "windows of 10 steps" in err and "D's loss is far above its value at chance" in err


def test_d_winning_is_reported_when_g_cannot_learn(tmp_path):
    """G frozen (lr 1e-9) against a fast D: D separates the data within a few steps."""
    workdir = tmp_path / "run"
    gaussian1d.main(["--workdir", str(workdir), "--epochs", "2", "--num-train", "4000",
                     "--lr-g", "1e-9", "--lr-d", "1e-2", "--eval-samples", "100"])  # fmt: skip
    assert list(warned(workdir)) == ["d_winning"]


def test_mode_collapse_is_reported_on_the_tutorial_preset(real_mnist, tmp_path):
    workdir = tmp_path / "run"
    mnist.main(["--workdir", str(workdir), "--data-dir", str(real_mnist), "--epochs", "4",
                "--preset", "tutorial", "--eval-samples", "0"])  # fmt: skip
    assert warned(workdir) == {"mode_collapse": 40}  # the first full window of 200 / 5 steps


def test_evaluations_that_stop_improving_are_reported_once_and_survive_a_resume():
    monitor = HealthMonitor(quality=QualityWatch("fid_mnist", "min", noise=400.0))
    assert monitor.evaluated(100, {"fid_mnist": 90.0}) == []
    assert monitor.evaluated(200, {"fid_mnist": 80.0}) == []  # a new best
    for step in (300, 400):
        assert monitor.evaluated(step, {"fid_mnist": 85.0}) == []
    resumed = HealthMonitor(quality=monitor.quality, state=json.loads(json.dumps(monitor.state)))
    (warning,) = resumed.evaluated(500, {"fid_mnist": 81.0})  # PATIENCE evaluations since best
    assert PATIENCE == 3 and warning["kind"] == "not_improving"
    assert "best 80 at step 200" in warning["message"]
    assert resumed.evaluated(600, {"fid_mnist": 82.0}) == []  # said once
    (noise,) = resumed.evaluated(700, {"fid_mnist": 450.0})
    assert noise["kind"] == "noise" and resumed.evaluated(800, {"fid_mnist": 460.0}) == []
    assert monitor.evaluated(900, {"precision": 0.5}) == []  # not the watched metric


@pytest.mark.parametrize(
    "values, warns", [([0.5, 0.6, 0.6, 0.6, 0.6], True), ([0.5, 0.6, 0.6, 0.7, 0.6], False)]
)
def test_a_metric_to_maximise_counts_evaluations_since_its_best(values, warns):
    monitor = HealthMonitor(quality=QualityWatch("hq_fraction", "max"))
    kinds = [
        w["kind"] for i, v in enumerate(values) for w in monitor.evaluated(i, {"hq_fraction": v})
    ]
    assert kinds == (["not_improving"] if warns else [])


def test_a_failure_sign_counted_before_a_resume_counts_on_after_it():
    """300 collapsed steps before a checkpoint and 200 after it make one 500-step window: the
    counts are saved (as JSON, with the checkpoint's progress) and carried on."""
    collapsed = {"diversity": np.full(300, 0.1), "d_loss": np.full(300, 0.7)}
    before = HealthMonitor(window=500)
    assert before.update(0, collapsed) == []
    saved = json.loads(json.dumps(before.state))
    after = HealthMonitor(window=500, state=saved)
    warnings = after.update(300, {k: v[:200] for k, v in collapsed.items()})
    assert [(w["step"], w["kind"]) for w in warnings] == [(500, "mode_collapse")]
    fresh = HealthMonitor(window=500)  # without the carried counts: no window completes yet
    assert fresh.update(300, {k: v[:200] for k, v in collapsed.items()}) == []

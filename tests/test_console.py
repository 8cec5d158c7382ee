"""What a run shows: the progress line's figures within 80 columns, its closing lines."""

import json

import pytest

from jaxgan.experiments import gaussian1d
from jaxgan.trainer.console import WIDTH, closing_lines, progress_text

TYPICAL = {"d_loss": 1.2345, "g_loss": 0.789, "d_real": 0.5312, "d_fake": 0.4771, "diversity": 0.9}


@pytest.mark.parametrize(
    "epoch, epochs, step, values, rate",
    [
        (3, 200, 150, TYPICAL, 210.4),
        (200, 200, 10_000, TYPICAL, 3315.0),
        (1, 5, 50, {**TYPICAL, "d_loss": 1.3e13, "g_loss": -5.5e14}, 12.0),
        (999, 999, 99_999, {**TYPICAL, "d_loss": -1.234, "g_loss": -4.567}, 9999.0),
        (1, 10, 0, {}, None),
    ],
)
def test_the_progress_line_shows_the_six_figures_in_order_within_80_columns(
    epoch, epochs, step, values, rate
):
    text = progress_text(epoch, epochs, step, values, rate)
    assert len(text) <= WIDTH, text
    labels = ["step", "d_loss", "g_loss", "D(x)", "D(G(z))"] if values else ["step"]
    positions = [text.index(f"{label} ") for label in labels]
    assert positions == sorted(positions), text
    assert text.startswith(f"{epoch}/{epochs}") and f"step {step}" in text
    assert ("steps/s" in text) == (rate is not None)
    assert "diversity" not in text  # the rest goes to the logs
    if values is TYPICAL:
        assert "d_loss 1.23 g_loss 0.789 D(x) 0.53 D(G(z)) 0.48" in text


def test_closing_lines_name_the_headline_numbers_and_the_files(tmp_path):
    (tmp_path / "real_vs_fake.png").write_bytes(b"")
    summary = {"fid_mnist": 83.91, "precision": 0.7321, "recall": 0.347, "classes_covered": 10}
    headline = ("fid_mnist", "precision", "recall", "classes_covered", "label_accuracy")
    lines = closing_lines(summary, headline, tmp_path, ["real_vs_fake.png", "none.png"])
    assert lines[0] == "fid_mnist 83.9  precision 0.732  recall 0.347  classes_covered 10"
    assert lines[1] == f"wrote {tmp_path / 'real_vs_fake.png'}, {tmp_path / 'summary.json'}"


def test_an_experiment_ends_with_its_numbers_and_where_its_files_are(tmp_path, capsys):
    workdir = tmp_path / "run"
    gaussian1d.main(["--workdir", str(workdir), "--epochs", "1", "--num-train", "2000",
                     "--eval-samples", "100"])  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((workdir / "summary.json").read_text())
    assert out[-2].startswith(f"mean {summary['mean']:.3g}  std ") and " w1 " in out[-2]
    assert out[-1] == f"wrote {workdir / 'histogram.png'}, {workdir / 'summary.json'}"

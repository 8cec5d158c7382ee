"""What a run shows on the terminal: one progress line of the figures that matter, a line when
an evaluation runs, and the run's closing lines.

The progress line keeps a stable order within 80 columns (:data:`WIDTH`): the epoch (of the
run's epochs), the step, ``d_loss``, ``g_loss``, ``D(x)``, ``D(G(z))`` and steps/s; every other
metric goes to the logs only. (No drawn bar: with these six figures it would have a handful of
columns, appearing and vanishing as the numbers change width.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm import tqdm

from jaxgan.parallel import is_primary

WIDTH = 80
# (metric, label) in the order shown: the losses and D's mean outputs on real and fake samples.
SHOWN = (("d_loss", "d_loss"), ("g_loss", "g_loss"), ("d_real", "D(x)"), ("d_fake", "D(G(z))"))


def number(value: float) -> str:
    """A compact figure: 3 significant digits."""
    return f"{value:.3g}"


def _shown(name: str, value: float) -> str:
    """D's mean outputs (probabilities for the cross-entropy losses) with 2 decimals, the
    losses with 3 significant digits."""
    return f"{value:.2f}" if name in ("d_real", "d_fake") else number(value)


def progress_text(
    epoch: int, epochs: int, step: int, values: Mapping[str, float], rate: float | None
) -> str:
    """The progress line: ``epoch/epochs``, the step and the figures; within :data:`WIDTH`
    columns for runs of up to 999 epochs and 99,999 steps at up to 9,999 steps/s with losses
    of up to 5 characters (-1.23); longer values (1.3e+13) take more only in longer runs."""
    parts = [f"{epoch}/{epochs}", f"step {step}"]
    parts += [f"{label} {_shown(name, values[name])}" for name, label in SHOWN if name in values]
    if rate is not None:
        parts.append(f"{rate:.0f} steps/s")
    return " ".join(parts)


class ProgressLine:
    """The progress line of a run (a tqdm bar whose whole text is :func:`progress_text`), on
    stderr, shown in the primary process only."""

    def __init__(self, first_epoch: int, epochs: int, *, enabled: bool = True):
        self.epochs, self.enabled = epochs, enabled
        self._bar = tqdm(
            total=epochs,
            initial=first_epoch,
            bar_format="{desc}",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=False,
        )

    def update(self, epoch: int, step: int, values: Mapping[str, float], rate: float | None):
        self._bar.set_description_str(
            progress_text(epoch, self.epochs, step, values, rate), refresh=True
        )

    def write(self, line: str) -> None:
        """A line above the progress line (a warning)."""
        if self.enabled:
            self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stage_bar(description: str, stages: int) -> tqdm:
    """A short-lived bar of ``stages`` steps (an evaluation: sampling, then scoring), on
    stderr, removed when done."""
    return tqdm(total=stages, desc=description, file=sys.stderr, leave=False, ncols=WIDTH)


def closing_lines(
    results: Mapping[str, float | int],
    headline: Iterable[str],
    workdir: Path,
    pictures: Iterable[str] = (),
) -> list[str]:
    """A run's last words: its headline numbers, and where its pictures and summary.json are.

    Args:
      results: the run's summary.
      headline: the keys of ``results`` to show, in order (absent ones are left out).
      workdir: the run's directory.
      pictures: the figures it wrote, relative to ``workdir``.
    """
    shown = [f"{k} {_format(results[k])}" for k in headline if k in results]
    lines = ["  ".join(shown)] if shown else []
    files = [str(workdir / p) for p in pictures if (workdir / p).exists()]
    files.append(str(workdir / "summary.json"))
    lines.append(f"wrote {', '.join(files)}")
    return lines


def print_closing(
    results: Mapping[str, float | int],
    headline: Iterable[str],
    workdir: str | Path,
    pictures: Iterable[str] = (),
) -> None:
    """Prints :func:`closing_lines` on stdout (in the primary process)."""
    if is_primary():
        print("\n".join(closing_lines(results, headline, Path(workdir), pictures)), flush=True)


def _format(value) -> str:
    if isinstance(value, float):
        return number(value) if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)

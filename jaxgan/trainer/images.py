"""What the image experiments (MNIST, DCGAN) share: their data and evaluation options,
fixed-noise sample grids saved every epoch, the evaluation, and the figures written at the end
of a run."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from jaxgan import data, viz
from jaxgan.cli import option, require
from jaxgan.evaluate import NOISE_FID, MNISTEvaluator, run_evaluator
from jaxgan.monitor import QualityWatch
from jaxgan.state import GANState, evaluation_noise, generate_samples
from jaxgan.trainer.config import ConditionalConfig
from jaxgan.trainer.console import print_closing
from jaxgan.trainer.run import Run
from jaxgan.workdir import RunWriter


@dataclasses.dataclass(frozen=True)
class ImageConfig(ConditionalConfig):
    """The options of the image experiments besides their models: data, and the evaluation
    of MNIST runs by :mod:`jaxgan.evaluate`."""

    RESUME_SAFE: ClassVar[frozenset[str]] = ConditionalConfig.RESUME_SAFE | {
        "tfds_data_dir",
        "eval_every",
        "eval_samples",
    }

    dataset: str = option("mnist", "dataset")
    data_dir: str | None = option(None, "directory of local IDX files instead of tfds")
    tfds_data_dir: str | None = option(None, "tfds data directory (default: tfds' own)")
    eval_samples: int = option(
        10_000, "mnist: generated digits scored against the test images at the end (0 = off)"
    )
    eval_every: int = option(0, "mnist: also evaluate every this many epochs (0 = only at end)")

    def validate(self) -> None:
        super().validate()
        require(
            self.eval_samples == 0 or self.eval_samples >= 10,
            f"--eval-samples must be 0 (off) or >= 10, got {self.eval_samples}",
        )
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")

    def evaluator(self) -> MNISTEvaluator | None:
        """The evaluator of MNIST runs (the classifier knows MNIST digits only), else None."""
        if self.eval_samples and self.dataset == "mnist":
            return run_evaluator(self.data_dir, self.tfds_data_dir)
        if self.eval_samples:
            print(
                f"no evaluation: the evaluation classifier knows MNIST digits, not {self.dataset}"
            )
        return None

    def train_size(self) -> int:
        """The size of a tfds or IDX (``--data-dir``, digits) training set, from its metadata
        or header, without reading the examples."""
        if self.data_dir is not None and self.dataset in data.IDX_DATASETS:
            return data.idx_size(self.data_dir, "train")
        return data.tfds_size(self.dataset, "train", self.tfds_data_dir)


GRID = 64  # fixed-noise samples per grid (8 x 8)
PER_CLASS = 10  # a conditional grid's columns: samples per class row


def class_rows(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """:data:`PER_CLASS` images of each class, class after class (black where a class has
    fewer), for a grid with a row per class."""
    rows = []
    for c in range(num_classes):
        row = images[np.flatnonzero(labels == c)[:PER_CLASS]]  # reads 10 rows of a memmap
        blank = np.zeros((PER_CLASS - len(row), *images.shape[1:]), images.dtype)
        rows.append(np.concatenate([row, blank]))
    return np.concatenate(rows)


class SampleGrids:
    """A run's grid of real images and its fixed-noise grids of samples.

    Unconditional runs show 8 × 8 samples of the run's evaluation noise; conditional runs a
    row per class, the same noise in every row, so a column shows one latent vector drawn as
    each class.

    Args:
      state: the run's state (its key fixes the noise; its config says whether and how many
        classes).
      images: uint8 training images, for the real grid.
      labels: their labels (conditional runs).
    """

    def __init__(self, state: GANState, images: np.ndarray, labels: np.ndarray | None = None):
        config = state.config
        if config.num_classes:
            classes = config.num_classes
            self.ncols = PER_CLASS
            self.real = viz.image_grid(class_rows(images, labels, classes), ncols=self.ncols)
            self.z = jnp.tile(evaluation_noise(state, PER_CLASS), (classes, 1))
            self.labels = jnp.repeat(jnp.arange(classes), PER_CLASS)
        else:
            self.ncols = int(np.sqrt(GRID))
            self.real = viz.image_grid(images[:GRID], ncols=self.ncols)
            self.z, self.labels = evaluation_noise(state, GRID), None

    def fake(self, state: GANState) -> np.ndarray:
        """The grid of ``state``'s samples of the fixed noise."""
        samples = generate_samples(state, self.z, self.labels)
        return viz.image_grid(data.to_uint8(samples), ncols=self.ncols)

    def save_real(self, writer: RunWriter) -> None:
        viz.save_png(self.real, writer.path("samples", "real.png"))
        writer.image("real", 0, self.real)

    def save_epoch(self, writer: RunWriter, state: GANState, epoch: int) -> None:
        """samples/epoch_NNNN.png and a TensorBoard image."""
        grid = self.fake(state)
        viz.save_png(grid, writer.path("samples", f"epoch_{epoch:04d}.png"))
        writer.image("samples", int(state.step), grid)


def write_figures(writer: RunWriter, grids: SampleGrids, state: GANState) -> None:
    """loss_curves.png, fid_curve.png (when FID was measured more than once), progress.gif and
    real_vs_fake.png, from the run's metrics.jsonl and sample grids."""
    log = [json.loads(line) for line in writer.path("metrics.jsonl").read_text().splitlines()]
    viz.loss_curves(
        np.array([r["step"] for r in log]),
        np.array([r["d_loss"] for r in log]),
        np.array([r["g_loss"] for r in log]),
        writer.path("loss_curves.png"),
    )
    evaluated = [r for r in log if "fid_mnist" in r]
    if len(evaluated) > 1:
        steps, fids = zip(*[(r["step"], r["fid_mnist"]) for r in evaluated], strict=True)
        viz.metric_curve(np.array(steps), np.array(fids), "fid_mnist", writer.path("fid_curve.png"))
    viz.save_gif(sorted(writer.path("samples").glob("epoch_*.png")), writer.path("progress.gif"))
    viz.real_vs_fake(grids.real, grids.fake(state), writer.path("real_vs_fake.png"))


HEADLINE = ("fid_mnist", "precision", "recall", "classes_covered", "label_accuracy")
PICTURES = ("real_vs_fake.png", "loss_curves.png", "progress.gif", "fid_curve.png")


def finish(run: Run, grids: SampleGrids, state: GANState, summary: dict, **extra) -> dict:
    """The end of an image run: its figures, ``summary.json`` (with ``extra``), and the closing
    lines on stdout (the headline numbers and where the files are); returns the summary."""
    write_figures(run.writer, grids, state)
    summary.update(extra)
    run.writer.summary(summary)
    print_closing(summary, HEADLINE, run.config.workdir, PICTURES)
    return summary


def quality_watch(evaluator: MNISTEvaluator | None) -> QualityWatch | None:
    """What the health monitor watches the evaluations for: fid_mnist not improving, or in the
    range of an untrained generator's."""
    return None if evaluator is None else QualityWatch("fid_mnist", "min", noise=NOISE_FID)


def epoch_hook(
    config: ImageConfig,
    writer: RunWriter,
    grids: SampleGrids,
    evaluator: MNISTEvaluator | None,
) -> Callable[[GANState, int], dict]:
    """``fit``'s ``on_epoch``: saves the epoch's grid and, when due (``--eval-every``, and the
    last epoch), returns the evaluation's numbers for the log."""

    def on_epoch(state: GANState, epoch: int) -> dict:
        grids.save_epoch(writer, state, epoch)
        due = epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0)
        return evaluator.score(state, config.eval_samples) if evaluator and due else {}

    return on_epoch

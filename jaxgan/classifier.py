"""The MNIST evaluation classifier: a small CNN whose penultimate layer is the feature space of
``fid_mnist`` and whose softmax gives the class statistics of generated digits.

The Inception network behind the usual FID knows nothing about handwriting; a classifier trained
on the digits themselves measures what matters for MNIST. Its weights ship inside the package
(``jaxgan/assets/mnist_classifier.msgpack``, with ``mnist_classifier.json`` recording the exact
training command, data and test accuracy) so every user computes the same numbers. They are
trained by ``python -m jaxgan.experiments.mnist_classifier``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxgan.data import DataError, scale_images

ASSETS = Path(__file__).parent / "assets"
WEIGHTS_FILE = "mnist_classifier.msgpack"
RECORD_FILE = "mnist_classifier.json"
NUM_CLASSES = 10
FEATURES = 128
BATCH = 1000  # images per forward pass when extracting features


class MNISTClassifier(nn.Module):
    """Two blocks of a 3×3 convolution (32, then 64 channels) and 2×2 max-pooling (28 → 14 → 7),
    a third pooling (7 → 3), a 128-unit ReLU layer (the features) and a linear layer to the 10
    class logits: 93k parameters, 4 M multiply-adds per image (cheap on a CPU).

    Inputs are images scaled to [-1, 1] (:func:`jaxgan.data.scale_images`), as G outputs them.
    """

    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Returns ``(features [N, 128], logits [N, 10])``."""
        for width in (32, 64):
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.max_pool(x, (2, 2), strides=(2, 2)).reshape((x.shape[0], -1))
        features = nn.relu(nn.Dense(FEATURES)(x))
        logits = nn.Dense(NUM_CLASSES)(nn.Dropout(self.dropout, deterministic=not train)(features))
        return features, logits


def init_params(key: jax.Array) -> dict:
    return MNISTClassifier().init(key, jnp.zeros((1, 28, 28, 1)))["params"]


def save(params: dict, record: dict, directory: str | Path) -> None:
    """Writes the weights and their provenance record into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / WEIGHTS_FILE).write_bytes(serialization.to_bytes(jax.device_get(params)))
    (directory / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")


@functools.cache
def load(directory: str | Path = ASSETS) -> dict:
    """The classifier's parameters from ``directory`` (default: the shipped ones)."""
    path = Path(directory) / WEIGHTS_FILE
    try:
        return serialization.from_bytes(init_params(jax.random.key(0)), path.read_bytes())
    except (OSError, ValueError, KeyError) as e:
        raise DataError(
            f"cannot read the evaluation classifier {path} ({e}); reinstall jaxgan or retrain "
            "it with python -m jaxgan.experiments.mnist_classifier"
        ) from e


def record(directory: str | Path = ASSETS) -> dict:
    """The shipped classifier's provenance: training command, data, test accuracy."""
    return json.loads((Path(directory) / RECORD_FILE).read_text())


@dataclasses.dataclass(frozen=True)
class FeatureMaps:
    """The classifier's deepest convolutional features of images in [-1, 1]: its second
    convolution's ReLU output, ``[N, H/2, W/2, 64]`` (14×14 for MNIST's 28×28), before the
    pooling that leads to ``fid_mnist``'s features. A differentiable function of the images,
    for a content loss in feature space (SRGAN's VGG loss, Ledig et al. 2017, in the features
    of a network that knows digits); a value (its weights' directory), so a step's
    configuration holding it compares equal when rebuilt.

    Attributes:
      directory: the weights' directory (default: the shipped ones; another classifier, e.g.
        trained with another seed, keeps the loss apart from the network that scores runs).
    """

    directory: str = str(ASSETS)

    def __call__(self, images: jax.Array) -> jax.Array:
        def second_conv(module: nn.Module, method: str) -> bool:
            return module.name == "Conv_1" and method == "__call__"

        _, state = MNISTClassifier().apply(
            {"params": load(self.directory)}, images, capture_intermediates=second_conv
        )
        return nn.relu(state["intermediates"]["Conv_1"]["__call__"][0])


@jax.jit
def _apply(params: dict, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    features, logits = MNISTClassifier().apply({"params": params}, scale_images(images))
    return features, jax.nn.softmax(logits)


def features_and_probs(images: np.ndarray, params: dict | None = None) -> tuple[np.ndarray, ...]:
    """Features ``[N, 128]`` and class probabilities ``[N, 10]`` of uint8 ``[N, 28, 28, 1]``
    images, computed in batches of :data:`BATCH` (the last one padded so one program serves)."""
    params = load() if params is None else params
    images = np.asarray(images)
    if images.shape[1:] != (28, 28, 1) or images.dtype != np.uint8:
        raise DataError(
            f"the MNIST classifier takes uint8 images of shape [N, 28, 28, 1], got "
            f"{images.dtype} {list(images.shape)}"
        )
    outputs = []
    for i in range(0, len(images), BATCH):
        chunk = images[i : i + BATCH]
        padded = np.concatenate([chunk, np.zeros((BATCH - len(chunk), 28, 28, 1), np.uint8)])
        features, probs = jax.device_get(_apply(params, padded))
        outputs.append((features[: len(chunk)], probs[: len(chunk)]))
    return tuple(np.concatenate(parts) for parts in zip(*outputs, strict=True))

"""Which digit classes do generated MNIST samples cover? (A measurement aid until the project's
evaluation classifier and ``python -m jaxgan.evaluate`` exist.)

Trains a small MLP digit classifier on the local 5,000-image training subset (seeded, ~30 s on
two CPU cores), reports its accuracy on the 10,000 test images, then classifies each
``--npz`` file written by ``python -m jaxgan.generate --npz`` and prints the class histogram.

    python experiments/mnist_class_coverage.py --data-dir ../shared/data/mnist runs/mnist.npz

A class counts as covered when at least 2 % of the samples are assigned to it (a uniform
generator gives each class 10 %).
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxgan.data import load_idx, scale_images

COVERED = 0.02


class DigitClassifier(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        x = nn.Dropout(0.3, deterministic=not train)(nn.relu(nn.Dense(512)(x)))
        return nn.Dense(10)(nn.relu(nn.Dense(256)(x)))


def train_classifier(data_dir: str, *, epochs: int = 30, seed: int = 0):
    """Returns the classifier's parameters and its accuracy on the test split."""
    model, train = DigitClassifier(), load_idx(data_dir, "train")
    x, y = scale_images(train["image"]), train["label"]
    params = model.init(jax.random.key(seed), x[:2])["params"]
    tx = optax.adam(1e-3)

    @jax.jit
    def step(params, opt_state, xb, yb, key):
        def loss(p):
            logits = model.apply({"params": p}, xb, train=True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state)
        return optax.apply_updates(params, updates), opt_state

    opt_state, rng = tx.init(params), np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 100):
            idx = order[i : i + 100]
            key = jax.random.fold_in(jax.random.key(seed), epoch * len(x) + i)
            params, opt_state = step(params, opt_state, x[idx], y[idx], key)
    test = load_idx(data_dir, "test")
    predicted = model.apply({"params": params}, scale_images(test["image"])).argmax(-1)
    return params, float((predicted == test["label"]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("npz", nargs="+", help="files written by jaxgan.generate --npz")
    args = parser.parse_args()
    params, accuracy = train_classifier(args.data_dir)
    print(f"classifier test accuracy: {accuracy:.4f} (10,000 test images)")
    for path in args.npz:
        x = np.load(path)["x"]
        counts = np.bincount(
            DigitClassifier().apply({"params": params}, x).argmax(-1), minlength=10
        )
        covered = int((counts >= COVERED * len(x)).sum())
        print(f"{path}: {len(x)} samples, {covered}/10 classes covered, {counts.tolist()}")


if __name__ == "__main__":
    main()

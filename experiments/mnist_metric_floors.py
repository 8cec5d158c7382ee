"""What real MNIST digits score against the 10,000 test images: the floors of jaxgan.evaluate's
metrics at the sample sizes used, printed as a Markdown table.

    python experiments/mnist_metric_floors.py --data-dir ../shared/data/mnist
    python experiments/mnist_metric_floors.py --data-dir ../shared/data/mnist --features inception

Rows: random halves of the test set (5,000 vs 5,000, three split seeds; what
``python -m jaxgan.evaluate --real-halves`` reports), the test set's first half against its second
(different NIST writers, so not one distribution), and the training images against all 10,000
test images (what a generator that reproduced its training set would score). With
``--features inception`` the same rows in the FID Inception's features (jaxgan.inception_eval;
both sets' features are cached, so a second run takes seconds).
"""

from __future__ import annotations

import argparse

from jaxgan import data, evaluate, inception_eval, inception_weights

COLUMNS = ("fid_mnist", "kid_mnist", "precision", "recall", "density", "coverage")
COLUMNS += ("classes_covered", "class_kl", "mnist_score", "num_fake", "num_real")
INCEPTION_COLUMNS = ("fid_inception", "kid_inception", "precision_inception")  # KID ×10³
INCEPTION_COLUMNS += ("recall_inception", "density_inception", "coverage_inception")
INCEPTION_COLUMNS += ("num_fake", "num_real")


def classifier_rows(data_dir: str, test, train) -> dict[str, dict]:
    half = len(test) // 2
    rows = {
        f"random halves, seed {seed}": evaluate.evaluate_real_halves(data_dir, seed)
        for seed in range(3)
    }
    rows["first half vs second half"] = evaluate.MNISTEvaluator(test[half:])(test[:half])
    rows["training images vs test set"] = evaluate.MNISTEvaluator(test)(train)
    return rows


def inception_rows(test, train) -> dict[str, dict]:
    evaluator = inception_eval.InceptionEvaluator(test, name="mnist-test")
    features, half = evaluator.real_features, len(test) // 2
    rows = {
        f"random halves, seed {seed}": inception_eval.halves(features, seed) for seed in range(3)
    }
    rows["first half vs second half"] = inception_eval.scores(features[half:], features[:half])
    train_features = inception_eval.real_features(
        train, evaluator.params, name="mnist-train", weights=inception_weights.DEFAULT_NAME
    )
    rows["training images vs test set"] = inception_eval.scores(features, train_features)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files (train and test)")
    parser.add_argument("--features", choices=("mnist", "inception"), default="mnist")
    args = parser.parse_args()
    test = evaluate.load_test_images(args.data_dir)
    train = data.load_idx(args.data_dir, "train")["image"]
    if args.features == "inception":
        rows, columns = inception_rows(test, train), INCEPTION_COLUMNS
    else:
        rows, columns = classifier_rows(args.data_dir, test, train), COLUMNS
    header = [f"{c} ×10³" if c == "kid_inception" else c for c in columns]
    print("| real images scored | " + " | ".join(header) + " |")
    print("| --- " * (len(columns) + 1) + "|")
    for name, scores in rows.items():
        print(f"| {name} | " + " | ".join(cell(scores, c) for c in columns) + " |")


def cell(scores: dict, column: str) -> str:
    """A table cell: counts as they are, Inception's KID ×10³ (its usual unit: values of
    1e-5 would print as 0.000), other values to 3 decimals."""
    value = scores[column]
    if not isinstance(value, float):
        return str(value)
    return f"{value * 1e3:.3f}" if column == "kid_inception" else f"{value:.3f}"


if __name__ == "__main__":
    main()

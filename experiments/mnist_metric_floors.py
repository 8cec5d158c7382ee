"""What real MNIST digits score against the 10,000 test images: the floors of jaxgan.evaluate's
metrics at the sample sizes used, printed as a Markdown table.

    python experiments/mnist_metric_floors.py --data-dir ../shared/data/mnist

Rows: random halves of the test set (5,000 vs 5,000, three split seeds; what
``python -m jaxgan.evaluate --real-halves`` reports), the test set's first half against its second
(different NIST writers, so not one distribution), and the training images against all 10,000
test images (what a generator that reproduced its training set would score).
"""

from __future__ import annotations

import argparse

from jaxgan import data, evaluate

COLUMNS = ("fid_mnist", "kid_mnist", "precision", "recall", "density", "coverage")
COLUMNS += ("classes_covered", "class_kl", "mnist_score", "num_fake", "num_real")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files (train and test)")
    args = parser.parse_args()
    test = evaluate.load_test_images(args.data_dir)
    half = len(test) // 2
    rows = {
        f"random halves, seed {seed}": evaluate.evaluate_real_halves(args.data_dir, seed)
        for seed in range(3)
    }
    rows["first half vs second half"] = evaluate.MNISTEvaluator(test[half:])(test[:half])
    train = data.load_idx(args.data_dir, "train")["image"]
    rows["training images vs test set"] = evaluate.MNISTEvaluator(test)(train)
    print("| real images scored | " + " | ".join(COLUMNS) + " |")
    print("| --- " * (len(COLUMNS) + 1) + "|")
    for name, scores in rows.items():
        cells = [
            f"{scores[c]:.3f}" if isinstance(scores[c], float) else str(scores[c]) for c in COLUMNS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""The Stacked MNIST table: modes (of 1,000) and KL to uniform of the CPU default's DCGAN, of
PacDCGAN2, of RpGAN + R1 + R2, and of RpGAN + R1 + R2 with R3GAN's Adam betas (0, 0.99) and a D
without batch norm, on several seeds each, beside PacGAN's Table 2 and R3GAN's ablation
(experiments/results/README.md).

Each cell (row, seed) is one run of ``python -m jaxgan.experiments.stacked_mnist`` for
``--epochs`` in ``--root``, resumed from its checkpoint when a session stopped it; its scores
are added to the results file of that length (JSON, kept in the repository:
``results/stacked_mnist_{epochs}epochs.json``) as soon as it finishes, so finished cells are
never trained again. The scores are also taken halfway (metrics.jsonl).

    python experiments/stacked_mnist_table.py --data-dir ../shared/data/mnist --seeds 0 1 2
    python experiments/stacked_mnist_table.py --data-dir ../shared/data/mnist --epochs 10
"""

from __future__ import annotations

import argparse
import functools
import os

from cells import fill, train_cell

from jaxgan.experiments.stacked_mnist import Config

ROWS: dict[str, list[str]] = {
    "dcgan": [],
    "pacdcgan2": ["--pack", "2"],
    "rpgan_r1_r2": ["--loss", "rpgan", "--r1-gamma", "1", "--r2-gamma", "1"],
    "rpgan_r3gan": ["--loss", "rpgan", "--r1-gamma", "1", "--r2-gamma", "1",
                    "--beta1", "0", "--beta2", "0.99", "--no-d-batch-norm"],
}  # fmt: skip
KEYS = ("modes", "kl", "real_modes", "real_kl", "wall_s", "steps")
RESULTS = os.path.join(os.path.dirname(__file__), "results", "stacked_mnist_{epochs}epochs.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=Config.epochs, help="(the CPU default's)")
    parser.add_argument("--root", default="runs/stacked_mnist_table")
    parser.add_argument("--results", help="(default: results/stacked_mnist_{epochs}epochs.json)")
    args = parser.parse_args()
    if args.epochs % 2:
        parser.error(f"--epochs must be even (the cells are scored halfway), got {args.epochs}")
    common = ["--epochs", str(args.epochs), "--eval-every", str(args.epochs // 2)]
    root = os.path.join(args.root, f"{args.epochs}epochs")

    train = functools.partial(
        train_cell, "jaxgan.experiments.stacked_mnist", root=root, data_dir=args.data_dir,
        common=common, options=ROWS, scores=KEYS,
    )  # fmt: skip

    def line(key: str, r: dict) -> str:
        return (f"{key}: modes {r['modes']}, kl {r['kl']:.3f} (real {r['real_kl']:.3f}), "
                f"{r['wall_s']:.0f} s")  # fmt: skip

    keys = [f"{row}/seed{seed}" for seed in args.seeds for row in args.rows]
    fill(args.results or RESULTS.format(epochs=args.epochs), keys, train, line)


if __name__ == "__main__":
    main()

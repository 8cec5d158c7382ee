"""The Stacked MNIST table: modes (of 1,000) and KL to uniform of the CPU default's DCGAN, of
PacDCGAN2 and of RpGAN + R1 + R2, on several seeds each, beside PacGAN's Table 2 and R3GAN's
ablation (experiments/results/README.md).

Each cell (row, seed) is one run of ``python -m jaxgan.experiments.stacked_mnist`` in
``--root``, resumed from its checkpoint when a session stopped it; its scores are added to
``--results`` (JSON, kept in the repository) as soon as it finishes, so finished cells are never
trained again.

    python experiments/stacked_mnist_table.py --data-dir ../shared/data/mnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import functools
import os

from cells import fill, train_cell

ROWS: dict[str, list[str]] = {
    "dcgan": [],
    "pacdcgan2": ["--pack", "2"],
    "rpgan_r1_r2": ["--loss", "rpgan", "--r1-gamma", "1", "--r2-gamma", "1"],
}
COMMON = ["--eval-every", "5"]  # the scores halfway too (metrics.jsonl)
KEYS = ("modes", "kl", "real_modes", "real_kl", "wall_s", "steps")
RESULTS = os.path.join(os.path.dirname(__file__), "results", "stacked_mnist.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--root", default="runs/stacked_mnist_table")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()

    train = functools.partial(
        train_cell, "jaxgan.experiments.stacked_mnist", root=args.root, data_dir=args.data_dir,
        common=COMMON, options=ROWS, scores=KEYS,
    )  # fmt: skip

    def line(key: str, r: dict) -> str:
        return (f"{key}: modes {r['modes']}, kl {r['kl']:.3f} (real {r['real_kl']:.3f}), "
                f"{r['wall_s']:.0f} s")  # fmt: skip

    keys = [f"{row}/seed{seed}" for seed in args.seeds for row in args.rows]
    fill(args.results, keys, train, line)


if __name__ == "__main__":
    main()

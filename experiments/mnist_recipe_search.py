"""Candidate training recipes for the MNIST main job, each on several seeds, with their scores:
the tool that chose the default (issue "an MNIST main job whose digits look like digits").

Every recipe keeps the job's MLP shape (two hidden layers in G and D), its 10,000 steps (200
epochs of the 5,000-digit subset; the conditional ones 100 epochs) and batch 100, and changes
only what trains it. Each cell (recipe, seed) is one run of ``python -m
jaxgan.experiments.mnist`` in ``--root``; its ``summary.json`` scores are collected into
``--results`` (JSON) as soon as it finishes, so a stopped search continues where it was and
finished cells are never trained again.

    python experiments/mnist_recipe_search.py --data-dir ../shared/data/mnist \\
        --recipes wide_r1 rpgan_r1r2 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import functools

from cells import fill, train_cell

COMMON = ["--eval-every", "0", "--checkpoint-every", "50"]
# The job's default before this search; every recipe but the last three starts from it (later
# options win), so the rows mean the same whatever the default is now.
PREVIOUS = [
    *("--loss", "non_saturating", "--r1-gamma", "0", "--r2-gamma", "0", "--lr-g", "2e-4"),
    *("--lr-d", "2e-4", "--beta1", "0.5", "--beta2", "0.999", "--d-dropout", "0.3"),
    *("--g-hidden", "256", "256", "--d-hidden", "256", "256"),
]
WIDE = [*PREVIOUS, "--g-hidden", "512", "512", "--d-hidden", "512", "512"]
RPGAN = ["--loss", "rpgan", "--r1-gamma", "1", "--r2-gamma", "1"]
B0 = ["--beta1", "0", "--beta2", "0.99"]  # R3GAN's Adam betas
NODROP = ["--d-dropout", "0"]
LR5E4 = ["--lr-g", "5e-4", "--lr-d", "5e-4"]
R3 = [*WIDE, *RPGAN, *B0, *NODROP]
G1024 = ["--g-hidden", "1024", "1024"]
ACGAN = ["--conditional", "acgan", "--epochs", "100"]
CGAN_PROJECTION = ["--conditional", "cgan", "--d-conditioning", "projection", "--epochs", "100"]
RECIPES: dict[str, list[str]] = {
    "previous_default": PREVIOUS,
    "wide_r1": [*WIDE, "--r1-gamma", "1"],
    "wide_r1_cosine": [*WIDE, "--r1-gamma", "1", "--lr-schedule", "cosine"],
    "rpgan_r1r2": [*WIDE, *RPGAN],
    "rpgan_r1r2_nodrop": [*WIDE, *RPGAN, *NODROP],
    "rpgan_r1r2_cosine": [*WIDE, *RPGAN, "--lr-schedule", "cosine"],
    "rpgan_r1r2_b0": [*WIDE, *RPGAN, *B0],
    "rp_b0_nodrop": R3,
    "rp_b0_nodrop_g10": [*R3, "--r1-gamma", "10", "--r2-gamma", "10"],
    "rp_b0_nodrop_lr5e4": [*R3, *LR5E4],
    "rp_b0_nodrop_lr1e3": [*R3, "--lr-g", "1e-3", "--lr-d", "1e-3"],
    "lr5e4_ema9995": [*R3, *LR5E4, "--ema-decay", "0.9995"],
    "lr5e4_linear": [*R3, *LR5E4, "--lr-schedule", "linear"],
    "lr5e4_g1024": [*R3, *LR5E4, *G1024],  # the default since
    "acgan_lr5e4": [*R3, *LR5E4, *ACGAN],
    "acgan_lr5e4_real": [*R3, *LR5E4, *ACGAN, "--no-ac-fake-in-d", "--ac-weight", "3"],
    "cgan_proj_lr5e4": [*R3, *LR5E4, *CGAN_PROJECTION],
    # the default itself (lr5e4_g1024) and its conditional runs
    "default": [],
    "acgan_default": ACGAN,
    "cgan_proj_default": CGAN_PROJECTION,
}
KEYS = ("fid_mnist", "precision", "recall", "classes_covered", "class_kl", "mnist_score")
KEYS += ("label_accuracy", "label_accuracy_min", "wall_s")  # the first two: conditional runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--root", default="runs/mnist_recipes")
    parser.add_argument("--results", default="runs/mnist_recipes/results.json")
    args = parser.parse_args()

    train = functools.partial(
        train_cell, "jaxgan.experiments.mnist", root=args.root, data_dir=args.data_dir,
        common=COMMON, options=RECIPES, scores=KEYS,
    )  # fmt: skip

    def line(key: str, r: dict) -> str:
        return (f"{key}: fid_mnist {r['fid_mnist']:.1f}, recall {r['recall']:.3f}, "
                f"precision {r['precision']:.3f}, classes {r['classes_covered']}, "
                f"{r['wall_s']:.0f} s")  # fmt: skip

    keys = [f"{recipe}/seed{seed}" for recipe in args.recipes for seed in args.seeds]
    fill(args.results, keys, train, line)


if __name__ == "__main__":
    main()

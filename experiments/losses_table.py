"""Every GAN loss on the 2-D ring and grid (PacGAN's protocol), several seeds each, with the
settings its paper recommends: modes captured, high-quality fraction and reverse KL, as a
Markdown table (mean ± standard deviation over seeds).

    python experiments/losses_table.py --seeds 5 --epochs 100 --out experiments/results/losses.md
    python experiments/losses_table.py --losses wgan_gp_toy    # a variant row (VARIANTS)
    python experiments/losses_table.py --platform gpu --out t.md  # render the GPU's cells here

The seeds of one (loss, dataset) run as one program (``jax.vmap`` over GANStates), so seed
``s`` computes what ``python -m jaxgan.experiments.mixture2d --seed s`` with the same options
computes, up to floating-point reassociation. Everything else is the mixture2d default (G and D
MLPs, batch 200, 100,000 samples, EMA 0.999, cosine decay); ``--epochs`` below the default 100
is a shortened protocol and the table says so.

The full table is hours of CPU, so it is resumable: each finished cell is a JSON file in
``--results`` (a later run reads it instead of training again) and the cell in progress is
checkpointed in ``--workdir`` every ``--checkpoint-every`` epochs, from where a rerun of the same
command goes on (bitwise as if never stopped). Cells are kept per platform (``-cpu``, ``-gpu``,
``-tpu`` in their names): numbers from different devices differ in the last bits, which a GAN
amplifies, so one table is one device's; ``--platform`` renders another platform's cells
(read, never trained). Float32 matmuls run at full precision everywhere (GPUs
would otherwise use TF32), so a GPU table computes what the CPU one does, up to reassociation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxgan import data
from jaxgan.experiments import mixture2d

# Each loss with its paper's optimisation (the rest: mixture2d's defaults, Adam 2e-4, β1 0.5).
RECOMMENDED: dict[str, dict] = {
    "minimax": {},
    "non_saturating": {},
    "lsgan": {},  # Mao et al. 2017 used Adam 2e-4, β1 0.5, as the default
    "hinge": {},
    # Arjovsky et al. 2017: RMSprop 5e-5, 5 critic steps, clipping at 0.01 (the loss's own).
    "wgan": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "d_steps": 5},
    # Gulrajani et al. 2017: Adam 1e-4, β = (0, 0.9), 5 critic steps, λ = 10 (the loss's own).
    "wgan_gp": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9, "d_steps": 5},
}
# Rows that can be asked for by name beside those (--losses NAME): name -> (loss, settings).
VARIANTS: dict[str, tuple[str, dict]] = {
    # The WGAN-GP authors' own toy script (gan_toy.py, igul222/improved_wgan_training):
    # λ = 0.1 ("smaller lambda seems to help for toy tasks"), Adam 1e-4 with β = (0.5, 0.9),
    # 5 critic steps.
    "wgan_gp_toy": (
        "wgan_gp",
        {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.9, "d_steps": 5, "gp_weight": 0.1},
    ),
}
SETTINGS = {loss: (loss, settings) for loss, settings in RECOMMENDED.items()} | VARIANTS


def cell_name(dataset: str, row_name: str, args: argparse.Namespace) -> str:
    return f"{dataset}-{row_name}-{args.epochs}ep-{args.seeds}seeds-{args.platform}"


def run_cell(dataset: str, row_name: str, args: argparse.Namespace) -> dict:
    """One (dataset, row) cell's result, trained now (resuming its checkpoint in
    ``--workdir``) unless ``--results`` already holds it for the same settings. Cells of
    another ``--platform`` than this machine's are only read."""
    name = cell_name(dataset, row_name, args)
    path = Path(args.results) / f"{name}.json"
    loss, settings = SETTINGS[row_name]
    if path.exists():
        stored = json.loads(path.read_text())
        if stored["settings"] == settings:
            return stored
    if args.platform != jax.default_backend():
        print(
            f"losses_table.py: error: {path} is missing or has other settings; a "
            f"{args.platform} cell is trained on a {args.platform} machine (this one is "
            f"{jax.default_backend()}), or drop --platform to train this machine's",
            file=sys.stderr,
        )
        sys.exit(2)
    config = mixture2d.Config(dataset=dataset, loss=loss, epochs=args.epochs, **settings)
    config.validate()
    seeds = mixture2d.Seeds(config, args.seeds)
    start = time.perf_counter()
    seeds.fit(args.epochs, Path(args.workdir) / name, every=args.checkpoint_every)
    result = {
        "dataset": dataset,
        "loss": loss,
        "settings": settings,
        "epochs": args.epochs,
        "seeds": list(range(args.seeds)),
        "stats": seeds.mode_statistics(),
        "wall_s_this_session": round(time.perf_counter() - start),
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def cell(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = scale * np.asarray(values)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def table(results: list[dict], args: argparse.Namespace) -> str:
    devices = ", ".join(sorted({r.get("device", args.platform) for r in results}))
    return "\n".join(
        [
            f"{args.seeds} seeds per cell, {args.epochs} epochs"
            + (" (shortened: the protocol is 100)" if args.epochs < 100 else "")
            + f", on {devices} ({args.platform})",
            "",
            "| dataset | loss | settings | modes | high quality (%) | reverse KL "
            "| seeds with all modes |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *map(row, results),
            "",
        ]
    )


def row(result: dict) -> str:
    stats = result["stats"]
    shown = ", ".join(f"{k} {v}" for k, v in result["settings"].items()) or "defaults"
    return (
        f"| {result['dataset']} | {result['loss']} | {shown} "
        f"| {cell([s['modes'] for s in stats])} "
        f"| {cell([s['hq_fraction'] for s in stats], 100)} "
        f"| {cell([s['reverse_kl'] for s in stats], digits=3)} "
        f"| {sum(s['modes'] == s['num_modes'] for s in stats)}/{len(stats)} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 per loss")
    parser.add_argument("--epochs", type=int, default=100, help="epochs (100 = the protocol)")
    parser.add_argument("--datasets", nargs="+", default=["ring", "grid"], choices=data.MIXTURES)
    parser.add_argument(
        "--losses",
        nargs="+",
        default=list(RECOMMENDED),
        choices=SETTINGS,
        help=f"rows: the losses, each with its recommended settings, or {', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--results", default="experiments/results/losses", help="one JSON per finished cell"
    )
    parser.add_argument(
        "--workdir", default="runs/losses_table", help="checkpoints of the cells in progress"
    )
    parser.add_argument("--checkpoint-every", type=int, default=10, help="epochs")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument(
        "--platform",
        default=jax.default_backend(),
        choices=["cpu", "gpu", "tpu"],
        help="whose cells (default: this machine's); another platform's are read, not trained",
    )
    args = parser.parse_args(argv)
    results = []
    for dataset in args.datasets:
        for row_name in args.losses:
            with jax.default_matmul_precision("highest"):
                results.append(run_cell(dataset, row_name, args))
            print(row(results[-1]), flush=True)
            if args.out:
                Path(args.out).write_text(table(results, args))


if __name__ == "__main__":
    main()

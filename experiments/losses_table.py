"""Every GAN loss on the 2-D ring and grid (PacGAN's protocol), several seeds each, with the
settings its paper recommends: modes captured, high-quality fraction and reverse KL, as a
Markdown table (mean ± standard deviation over seeds).

    python experiments/losses_table.py --seeds 5 --epochs 100 --out experiments/results/losses.md

The seeds of one (loss, dataset) run as one program (``jax.vmap`` over GANStates), so seed
``s`` computes what ``python -m jaxgan.experiments.mixture2d --seed s`` with the same options
computes, up to floating-point reassociation. Everything else is the mixture2d default (G and D
MLPs, batch 200, 100,000 samples, EMA 0.999, cosine decay); ``--epochs`` below the default 100
is a shortened protocol and the table says so.

The full table is hours of CPU, so it is resumable: each finished cell is a JSON file in
``--results`` (a later run reads it instead of training again) and the cell in progress is
checkpointed in ``--workdir`` every ``--checkpoint-every`` epochs, from where a rerun of the same
command goes on (bitwise as if never stopped).
"""

from __future__ import annotations

import argparse
import json
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


def cell_name(dataset: str, loss: str, epochs: int, seeds: int) -> str:
    return f"{dataset}-{loss}-{epochs}ep-{seeds}seeds"


def run_cell(dataset: str, loss: str, args: argparse.Namespace) -> dict:
    """One (dataset, loss) cell's result, trained now (resuming its checkpoint in
    ``--workdir``) unless ``--results`` already holds it for the same settings."""
    name = cell_name(dataset, loss, args.epochs, args.seeds)
    path = Path(args.results) / f"{name}.json"
    settings = RECOMMENDED[loss]
    if path.exists():
        stored = json.loads(path.read_text())
        if stored["settings"] == settings:
            return stored
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
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def cell(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = scale * np.asarray(values)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 per loss")
    parser.add_argument("--epochs", type=int, default=100, help="epochs (100 = the protocol)")
    parser.add_argument("--datasets", nargs="+", default=["ring", "grid"], choices=data.MIXTURES)
    parser.add_argument("--losses", nargs="+", default=list(RECOMMENDED), choices=RECOMMENDED)
    parser.add_argument(
        "--results", default="experiments/results/losses", help="one JSON per finished cell"
    )
    parser.add_argument(
        "--workdir", default="runs/losses_table", help="checkpoints of the cells in progress"
    )
    parser.add_argument("--checkpoint-every", type=int, default=10, help="epochs")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()
    lines = [
        f"{args.seeds} seeds per cell, {args.epochs} epochs"
        + (" (shortened: the protocol is 100)" if args.epochs < 100 else ""),
        "",
        "| dataset | loss | settings | modes | high quality (%) | reverse KL "
        "| seeds with all modes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset in args.datasets:
        for loss in args.losses:
            lines.append(row(run_cell(dataset, loss, args)))
            print(lines[-1], flush=True)
            if args.out:
                Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Draws samples from a trained run's checkpoint, and walks its latent space.

    python -m jaxgan.generate --workdir runs/mnist --num 64 --out samples.png [--npz s.npz]
    python -m jaxgan.generate --workdir runs/mnist --interpolate slerp --out paths.png
    python -m jaxgan.generate --workdir runs/mnist --traverse 3 --range -3 3 --out dim3.png
    python -m jaxgan.generate --workdir runs/cgan --label 7 --out sevens.png

The workdir's config.json names the experiment and its model; the newest readable Orbax
checkpoint supplies the weights (the EMA of G's weights when the run kept one). ``--out``
writes a PNG grid; ``--npz`` writes the raw samples for evaluation: ``x`` (float32 generator
output in [-1, 1]), ``images`` (uint8, the datasets' own format), ``z`` and, for conditional
runs, ``labels``.

``--interpolate lerp|slerp`` draws ``--num`` pairs of latent vectors and one row of ``--steps``
images along the path between each pair; ``--traverse DIM`` sweeps dimension DIM over
``--range`` in ``--steps`` for each of ``--num`` random vectors (:mod:`jaxgan.latent`).
Conditional runs draw every class in turn (a row per class on paths), or only ``--label C``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgan import checkpoint, data, viz
from jaxgan.cli import OneLineParser, UsageError, make_parent, output_file
from jaxgan.latent import INTERPOLATIONS, interpolate, traverse
from jaxgan.state import balanced_labels, generate_samples, sample_latent
from jaxgan.trainer.config import init_state
from jaxgan.workdir import experiment_module

CHUNK = 1000  # samples per generator call, bounding memory for large --num
NUM_PATHS = 8  # rows of an --interpolate/--traverse grid unless --num says otherwise


def load_run(workdir: Path):
    """The config and the restored state of the run in ``workdir``."""
    path = workdir / "config.json"
    try:
        fields = json.loads(path.read_text())
        module = importlib.import_module(experiment_module(fields.pop("experiment")))
    except (OSError, json.JSONDecodeError, KeyError, ModuleNotFoundError) as e:
        raise data.DataError(f"{path} is missing or not a jaxgan run config ({e})") from e
    if getattr(module, "TRANSLATES", False):
        raise data.DataError(
            f"{workdir} holds a {module.__name__} run, whose G translates source images instead "
            f"of drawing samples from noise: its translations of test images are in "
            f"{workdir / 'translations.png'} and samples/, their scores in summary.json"
        )
    if not getattr(module, "IMAGES", False):
        raise data.DataError(f"{workdir} holds a {module.__name__} run, which saves no images")
    names = {f.name for f in dataclasses.fields(module.Config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in names}
    config = module.Config(**values)
    generator, discriminator = module.build_models(config)
    abstract = jax.eval_shape(lambda: init_state(config, generator, discriminator, 1))
    return config, checkpoint.restore_latest(workdir, abstract)


def sample(state, z: jax.Array, labels: jax.Array | None = None) -> np.ndarray:
    """The generator's outputs for latent vectors ``z`` (and, for a conditional generator,
    ``labels``), in chunks of :data:`CHUNK`."""
    chunks = [
        generate_samples(state, z[i : i + CHUNK], None if labels is None else labels[i : i + CHUNK])
        for i in range(0, len(z), CHUNK)
    ]
    return np.concatenate([np.asarray(c) for c in chunks])


def latent_grid(args, config) -> tuple[jax.Array, int]:
    """The latent vectors the options ask for, row after row, and the grid's columns."""
    key = jax.random.key(args.seed)
    if args.interpolate:
        start_key, end_key = jax.random.split(key)
        starts = sample_latent(start_key, args.num, config)
        ends = sample_latent(end_key, args.num, config)
        paths = interpolate(starts, ends, args.steps, args.interpolate)
    elif args.traverse is not None:
        lo, hi = args.range or ((-1.0, 1.0) if config.latent == "uniform" else (-3.0, 3.0))
        values = jax.numpy.linspace(lo, hi, args.steps)
        paths = traverse(sample_latent(key, args.num, config), args.traverse, values)
    else:
        return sample_latent(key, args.num, config), math.ceil(math.sqrt(args.num))
    return paths.reshape((-1, config.latent_dim)), args.steps


def labels_for(args, config, rows: int, per_row: int) -> np.ndarray | None:
    """The classes to draw: ``--label``, else every class in turn (one per row of a path grid,
    one per sample otherwise); None for an unconditional run."""
    classes = balanced_labels(rows, config)
    if classes is None:
        return None
    if args.label is not None:
        return np.full(rows * per_row, args.label, np.int32)
    return np.repeat(np.asarray(classes), per_row)


def check_options(parser, args, config) -> None:
    """Refuses options the run cannot take (one line, exit status 2)."""
    if args.label is not None:
        if not config.num_classes:
            parser.error(f"--label needs a conditional run; {args.workdir} is unconditional")
        if not 0 <= args.label < config.num_classes:
            parser.error(f"--label must be in 0..{config.num_classes - 1}, got {args.label}")
    if args.traverse is not None and not 0 <= args.traverse < config.latent_dim:
        parser.error(
            f"--traverse must be a latent dimension in 0..{config.latent_dim - 1}, "
            f"got {args.traverse}"
        )


def main(argv=None) -> None:
    parser = OneLineParser(
        prog="python -m jaxgan.generate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, required=True, help="a trained run's workdir")
    parser.add_argument(
        "--num", type=int, help=f"number of samples (default 64), or of paths (default {NUM_PATHS})"
    )
    parser.add_argument("--out", type=Path, help="PNG grid to write")
    parser.add_argument("--npz", type=Path, help="raw samples to write (x, images, z, labels)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent noise")
    parser.add_argument("--label", type=int, help="conditional runs: draw only this class")
    paths = parser.add_mutually_exclusive_group()
    paths.add_argument(
        "--interpolate", choices=INTERPOLATIONS, help="rows of images between pairs of latents"
    )
    paths.add_argument(
        "--traverse", type=int, metavar="DIM", help="rows of images sweeping latent dimension DIM"
    )
    parser.add_argument("--steps", type=int, default=10, help="images along each path")
    parser.add_argument(
        "--range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="--traverse's values (default -3 3, or -1 1 for uniform latents)",
    )
    args = parser.parse_args(argv)
    on_paths = args.interpolate is not None or args.traverse is not None
    args.num = args.num if args.num is not None else NUM_PATHS if on_paths else 64
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    if on_paths and args.steps < 2:
        parser.error(f"--steps must be >= 2, got {args.steps}")
    if args.out is None and args.npz is None:
        parser.error("nothing to write: give --out FILE.png and/or --npz FILE.npz")
    try:
        for name, suffix in (("out", ".png"), ("npz", ".npz")):
            if getattr(args, name) is not None:
                output_file(getattr(args, name), f"--{name}", (suffix,))
        _, state = load_run(args.workdir)
    except (data.DataError, UsageError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    check_options(parser, args, state.config)
    z, ncols = latent_grid(args, state.config)
    labels = labels_for(args, state.config, args.num, args.steps if on_paths else 1)
    x = sample(state, z, labels)
    images = data.to_uint8(x)
    what = f"{args.num} paths of {args.steps}" if on_paths else f"{args.num}"
    if args.out is not None:
        viz.save_png(viz.image_grid(images, ncols=ncols), make_parent(args.out))
        print(f"wrote {what} samples to {args.out}")
    if args.npz is not None:
        extra = {} if labels is None else {"labels": labels}
        np.savez_compressed(make_parent(args.npz), x=x, images=images, z=np.asarray(z), **extra)
        print(f"wrote {what} samples to {args.npz}")


if __name__ == "__main__":
    main()

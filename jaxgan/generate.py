"""Draws samples from a trained run's checkpoint.

    python -m jaxgan.generate --workdir runs/mnist --num 64 --out samples.png [--npz s.npz]

The workdir's config.json names the experiment and its model; the newest readable Orbax
checkpoint supplies the weights (the EMA of G's weights when the run kept one). ``--out``
writes a PNG grid; ``--npz`` writes the raw samples for evaluation: ``x`` (float32 generator
output in [-1, 1]) and ``images`` (uint8, the datasets' own format).
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
from jaxgan.experiments.common import OneLineParser, init_state
from jaxgan.train import generate_samples, sample_latent

CHUNK = 1000  # samples per generator call, bounding memory for large --num


def load_run(workdir: Path):
    """The config and the restored state of the run in ``workdir``."""
    path = workdir / "config.json"
    try:
        fields = json.loads(path.read_text())
        module = importlib.import_module(f"jaxgan.experiments.{fields.pop('experiment')}")
    except (OSError, json.JSONDecodeError, KeyError, ModuleNotFoundError) as e:
        raise data.DataError(f"{path} is missing or not a jaxgan run config ({e})") from e
    if not hasattr(module, "IMAGE_SHAPE"):
        raise data.DataError(f"{workdir} holds a {module.__name__} run, which saves no images")
    names = {f.name for f in dataclasses.fields(module.Config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in names}
    config = module.Config(**values)
    generator, discriminator = module.build_models(config)
    abstract = jax.eval_shape(lambda: init_state(config, generator, discriminator, 1))
    return config, checkpoint.restore_latest(workdir, abstract)


def sample(state, z: jax.Array) -> np.ndarray:
    """The generator's outputs for latent vectors ``z``, in chunks of :data:`CHUNK`."""
    return np.concatenate(
        [np.asarray(generate_samples(state, z[i : i + CHUNK])) for i in range(0, len(z), CHUNK)]
    )


def main(argv=None) -> None:
    parser = OneLineParser(
        prog="python -m jaxgan.generate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, required=True, help="a trained run's workdir")
    parser.add_argument("--num", type=int, default=64, help="number of samples")
    parser.add_argument("--out", type=Path, help="PNG grid to write")
    parser.add_argument("--npz", type=Path, help="raw samples to write (x, images)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent noise")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    if args.out is None and args.npz is None:
        parser.error("nothing to write: give --out FILE.png and/or --npz FILE.npz")
    try:
        _, state = load_run(args.workdir)
    except data.DataError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    x = sample(state, sample_latent(jax.random.key(args.seed), args.num, state.config))
    images = data.to_uint8(x)
    if args.out is not None:
        grid = viz.image_grid(images, ncols=math.ceil(math.sqrt(args.num)))
        viz.save_png(grid, args.out)
        print(f"wrote {args.num} samples to {args.out}")
    if args.npz is not None:
        np.savez_compressed(args.npz, x=x, images=images)
        print(f"wrote {args.num} samples to {args.npz}")


if __name__ == "__main__":
    main()

"""One picture comparing translation runs on the same fixed test pairs: rows of sources, (for
super-resolution) their bicubic upsampling, each run's outputs, and the targets, for each block
of 8 pairs. The tiles come from the runs' own ``translations.png`` (rows of sources, outputs
and targets: :class:`jaxgan.trainer.translation.PairGrids`), so the picture shows exactly what
the runs saved.

    .venv/bin/python experiments/translation_figure.py runs/srresnet runs/srgan \\
        --bicubic 4 --out docs/srgan_mnist.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgan import pairs, viz
from jaxgan.trainer.translation import GRID_COLUMNS, GRID_PAIRS

PAD, SCALE = 2, 2  # viz.image_grid's padding, viz.save_png's enlargement


def tiles(workdir: Path) -> np.ndarray:
    """The run's grid as tiles ``[rows, 8, h, w, c]`` (rows: source, output, target, ...)."""
    image = np.asarray(Image.open(workdir / "translations.png"))[::SCALE, ::SCALE]
    image = image.reshape(*image.shape[:2], -1)
    rows = 3 * GRID_PAIRS // GRID_COLUMNS
    h = (image.shape[0] - PAD) // rows - PAD
    w = (image.shape[1] - PAD) // GRID_COLUMNS - PAD
    return np.stack([
        np.stack([
            image[PAD + r * (h + PAD) :][:h, PAD + c * (w + PAD) :][:, :w]
            for c in range(GRID_COLUMNS)
        ])
        for r in range(rows)
    ])  # fmt: skip


def figure(runs: list[Path], bicubic: int) -> np.ndarray:
    grids = [tiles(run) for run in runs]
    rows = []
    for block in range(0, len(grids[0]), 3):
        source, target = grids[0][block], grids[0][block + 2]
        rows.append(source)
        if bicubic:  # the sources were enlarged by repeating pixels: undo, then interpolate
            rows.append(pairs.upscale(source[:, ::bicubic, ::bicubic], bicubic))
        rows += [grid[block + 1] for grid in grids]
        rows.append(target)
    return viz.image_grid(np.concatenate(rows), ncols=GRID_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="workdirs, in the rows' order")
    parser.add_argument("--bicubic", type=int, default=0,
                        help="super-resolution's factor: add the bicubic row")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    viz.save_png(figure(args.runs, args.bicubic), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

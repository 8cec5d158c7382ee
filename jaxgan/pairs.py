"""Paired images for translation: ``{"source": ..., "target": ...}`` uint8 ``[N, H, W, C]``.

- :func:`load_aligned_folder`: the format of pix2pix's datasets (facades, maps, edges2shoes):
  each file holds the pair side by side, A on the left and B on the right, in ``train/``,
  ``val/`` and ``test/`` folders;
- :func:`inpaint_pairs`: a task with ground truth built from any digits, the lower half of each
  blanked in the source (an ambiguous completion: the top of a 7 is also the top of a 9).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxgan.data import DataError, image_files, square_resize

DIRECTIONS = ("AtoB", "BtoA")
SPLITS = ("train", "val", "test")


def inpaint_pairs(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each uint8 ``[N, H, W, C]`` image as the target, and as the source with its lower half
    (rows ``H // 2`` on) set to 0, black: the background of MNIST-style digits."""
    source = images.copy()
    source[:, images.shape[1] // 2 :] = 0
    return {"source": source, "target": images}


def _split_pair(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """One A|B file's halves, each centre-cropped square and resized to ``size``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            width, height = image.size
            if width != 2 * height:
                raise DataError(
                    f"{path} is {width}x{height}, not an A|B pair (two squares side by side, "
                    f"width = 2 x height); the aligned format keeps each pair in one file"
                )
            halves = (image.crop((0, 0, height, height)), image.crop((height, 0, width, height)))
            return tuple(
                np.asarray(square_resize(h, size), np.uint8).reshape(size, size, channels)
                for h in halves
            )
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot read {path}: {e}") from e


def load_aligned_folder(
    root: str | os.PathLike,
    split: str,
    size: int,
    *,
    direction: str = "AtoB",
    channels: int = 3,
) -> dict[str, np.ndarray]:
    """The pairs in ``root/split`` (JPEG/PNG files in sorted order, recursively), each half
    resized to ``size`` × ``size``: the source is A and the target B (``direction`` "AtoB"), or
    the other way round ("BtoA").

    Raises:
      DataError: the folder is missing or empty, a file is not an A|B pair or unreadable.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    folder = Path(root) / split
    if not folder.is_dir():
        found = [s for s in SPLITS if (Path(root) / s).is_dir()]
        raise DataError(
            f"{folder} is not a directory: an aligned dataset has {'/, '.join(SPLITS)}/ "
            f"folders of A|B images" + (f" ({root} has {', '.join(found)})" if found else "")
        )
    a, b = zip(*(_split_pair(p, size, channels) for p in image_files(folder)), strict=True)
    a, b = np.stack(a), np.stack(b)
    return {"source": a, "target": b} if direction == "AtoB" else {"source": b, "target": a}


def aligned_eval_split(root: str | os.PathLike) -> str:
    """The split a folder's run is scored on: ``test``, or ``val`` when there is no test/."""
    return "test" if (Path(root) / "test").is_dir() else "val"

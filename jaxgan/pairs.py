"""Paired images for translation: ``{"source": ..., "target": ...}`` uint8 ``[N, H, W, C]``.

- :func:`load_aligned_folder`: the format of pix2pix's datasets (facades, maps, edges2shoes):
  each file holds the pair side by side, A on the left and B on the right, in ``train/``,
  ``val/`` and ``test/`` folders;
- :func:`inpaint_pairs`: a task with ground truth built from any digits, the lower half of each
  blanked in the source (an ambiguous completion: the top of a 7 is also the top of a 9);
- :func:`downscaled_pairs`: super-resolution's, each image the target and its bicubic
  downscaling the source; :func:`load_crop_folder` makes them of any folder of images (random
  crops for training, centre crops for testing).
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


def eval_split(root: str | os.PathLike) -> str:
    """The split a folder's run is scored on: ``test``, or ``val`` when there is no test/."""
    return "test" if (Path(root) / "test").is_dir() else "val"


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` images resized to ``size`` (height, width) by PIL's bicubic
    filter (Keys' a = -0.5 kernel, widened when shrinking: antialiased, as MATLAB's imresize
    that SR benchmarks downscale with)."""
    from PIL import Image

    channels = images.shape[-1]

    def one(image: np.ndarray) -> np.ndarray:
        pil = Image.fromarray(image[..., 0] if channels == 1 else image)
        resized = pil.resize(size[::-1], Image.Resampling.BICUBIC)
        return np.asarray(resized, np.uint8).reshape(*size, channels)

    return np.stack([one(image) for image in images])


def downscale(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` images shrunk ``factor`` times by bicubic filtering (H and W
    divisible by it): super-resolution's low-resolution inputs."""
    h, w = images.shape[1:3]
    if h % factor or w % factor:
        raise ValueError(f"{h}x{w} images do not divide by the downscaling factor {factor}")
    return _resize(images, (h // factor, w // factor))


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 images enlarged ``factor`` times by bicubic interpolation: the baseline a
    super-resolution network must beat."""
    h, w = images.shape[1:3]
    return _resize(images, (h * factor, w * factor))


def downscaled_pairs(images: np.ndarray, factor: int) -> dict[str, np.ndarray]:
    """Each uint8 ``[N, H, W, C]`` image as the target and its :func:`downscale` by
    ``factor`` as the source."""
    return {"source": downscale(images, factor), "target": images}


def _crops(path: Path, size: int, channels: int, count: int, rng: np.random.Generator):
    """``count`` random ``size`` squares of one image (0: its centre square)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = np.asarray(image.convert("RGB" if channels == 3 else "L"), np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    h, w = image.shape[:2]
    if h < size or w < size:
        raise DataError(f"{path} is {w}x{h}, smaller than the {size}x{size} crops: lower "
                        "--image-size or remove the image")  # fmt: skip
    if count:
        corners = zip(rng.integers(0, h - size + 1, count), rng.integers(0, w - size + 1, count),
                      strict=True)  # fmt: skip
    else:
        corners = [((h - size) // 2, (w - size) // 2)]
    image = image.reshape(h, w, channels)
    return [image[top : top + size, left : left + size] for top, left in corners]


def load_crop_folder(
    root: str | os.PathLike,
    split: str,
    size: int,
    factor: int,
    *,
    crops: int = 0,
    seed: int = 0,
    channels: int = 3,
) -> dict[str, np.ndarray]:
    """Super-resolution pairs of the images in ``root/split`` (JPEG/PNG, recursively, sorted):
    ``crops`` random ``size`` × ``size`` crops of each (drawn once, from ``seed``; 0: its
    centre crop, for testing) as the targets, their :func:`downscale` by ``factor`` as the
    sources.

    Raises:
      DataError: the folder is missing or empty, an image is unreadable or smaller than
        ``size``.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(f"{folder} is not a directory: a super-resolution folder has train/ "
                        "and test/ (or val/) folders of images")  # fmt: skip
    rng = np.random.default_rng(seed)
    targets = [c for path in image_files(folder) for c in _crops(path, size, channels, crops, rng)]
    return downscaled_pairs(np.stack(targets), factor)

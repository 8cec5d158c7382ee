"""Datasets as host arrays: synthetic distributions, MNIST-style IDX files, tensorflow-datasets.

Every loader returns a dict of arrays (so labels can ride along): ``{"x": float32}`` for the
synthetic sets, ``{"image": uint8 [N, H, W, C], "label": int32 [N]}`` for image datasets
(IDX files, tensorflow-datasets, or any folder of JPEG/PNG images). The
experiment puts the data on the device once and scales images there (:func:`scale_images`).

Problems with the data (missing, truncated or corrupt files; no network for a download) raise
:class:`DataError` with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import os
import socket
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np


class DataError(Exception):
    """The data cannot be loaded; the message names the file or dataset and the fix."""


MIXTURES = ("ring", "grid")


def gaussian_1d(num: int, *, mean: float, std: float, seed: int) -> dict[str, np.ndarray]:
    """``num`` samples of N(mean, std²), shaped ``[num, 1]``."""
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(mean, std, size=(num, 1)).astype(np.float32)}


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and component standard deviation of a 2-D benchmark mixture.

    PacGAN's protocol (Lin et al. 2018): ``ring`` = 8 modes on the unit circle, sigma 0.01;
    ``grid`` = 25 modes at {-4, -2, 0, 2, 4}², sigma 0.05.
    """
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
    if name == "grid":
        axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2), 0.05
    raise ValueError(f"unknown mixture {name!r}; choose one of {MIXTURES}")


def gaussian_mixture(name: str, num: int, *, seed: int) -> dict[str, np.ndarray]:
    """``num`` samples of the equal-weight mixture ``name`` (see :func:`mixture_modes`)."""
    modes, sigma = mixture_modes(name)
    rng = np.random.default_rng(seed)
    centres = modes[rng.integers(len(modes), size=num)]
    return {"x": (centres + sigma * rng.standard_normal((num, 2))).astype(np.float32)}


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08


def _find_idx(data_dir: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``data_dir``; raises DataError if neither exists."""
    for path in (data_dir / stem, data_dir / f"{stem}.gz"):
        if path.exists():
            return path
    raise DataError(
        f"{data_dir} has no {stem}[.gz]; point --data-dir at a directory with the IDX files"
    )


def _stored_size(path: Path) -> int:
    """The (decompressed) size of an IDX file in bytes; a gzipped one is decompressed in
    chunks to count them, without holding it."""
    if path.suffix != ".gz":
        return path.stat().st_size
    size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            size += len(chunk)
    return size


def read_idx(
    data_dir: str | os.PathLike, stem: str, *, ndim: int, rows: slice | None = None
) -> tuple[np.ndarray, int]:
    """Reads one IDX file of unsigned bytes (the MNIST format), validating it.

    An IDX file is a 4-byte magic number (two zero bytes, the element type 0x08 for unsigned
    bytes, and the number of dimensions), the dimensions as big-endian uint32, then the data.

    Args:
      data_dir: directory holding ``stem`` or ``stem.gz``.
      stem: file name without ``.gz``, e.g. ``"train-images-idx3-ubyte"``.
      ndim: expected number of dimensions (3 for images, 1 for labels).
      rows: read only these rows (along the first dimension); only they are held in memory.

    Returns:
      A uint8 array of the file's shape (its ``rows``), and the file's number of rows.
    """
    path = _find_idx(Path(data_dir), stem)
    try:
        size = _stored_size(path)
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] or magic[1] or magic[2] != _IDX_UBYTE or magic[3] != ndim:
                raise DataError(
                    f"{path} is not an IDX file of {ndim}-D unsigned bytes (magic number "
                    f"{magic.hex() or 'missing'}, expected 000008{ndim:02x}); is it the right file?"
                )
            header = 4 + 4 * ndim
            if size < header:
                raise DataError(f"{path} is truncated inside its header; download it again")
            shape = tuple(int(d) for d in np.frombuffer(f.read(4 * ndim), ">u4"))
            expected = header + int(np.prod(shape))
            if size != expected:
                what = "truncated" if size < expected else "longer than its header says"
                raise DataError(
                    f"{path} is {what}: {size} bytes for shape {shape}, expected {expected}; "
                    "download it again"
                )
            start, stop = (rows or slice(None)).indices(shape[0])[:2]
            stop = max(start, stop)
            row_bytes = int(np.prod(shape[1:]))
            f.seek(header + start * row_bytes)
            raw = f.read((stop - start) * row_bytes)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a readable gzip file ({e}); download it again") from e
    return np.frombuffer(raw, np.uint8).reshape((stop - start, *shape[1:])), shape[0]


def load_idx(
    data_dir: str | os.PathLike, split: str = "train", rows: slice | None = None
) -> dict[str, np.ndarray]:
    """MNIST-layout IDX files (``train-*`` or ``t10k-*``, optionally gzipped) from ``data_dir``.

    ``rows`` reads only that slice of the split (a process's share in a multi-host run).

    Returns:
      ``{"image": uint8 [N, H, W, 1], "label": int32 [N]}``.
    """
    return _read_split(data_dir, split, rows)[0]


def idx_size(data_dir: str | os.PathLike, split: str = "train") -> int:
    """The number of examples in an IDX split (its files validated, no rows read)."""
    return _read_split(data_dir, split, slice(0, 0))[1]


def _read_split(
    data_dir: str | os.PathLike, split: str, rows: slice | None
) -> tuple[dict[str, np.ndarray], int]:
    """:func:`load_idx`'s arrays and the split's size, its two files checked against each
    other."""
    if split not in IDX_FILES:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(IDX_FILES)}")
    image_stem, label_stem = IDX_FILES[split]
    images, num_images = read_idx(data_dir, image_stem, ndim=3, rows=rows)
    labels, num_labels = read_idx(data_dir, label_stem, ndim=1, rows=rows)
    if num_images != num_labels:
        raise DataError(
            f"{data_dir}: {num_images} images but {num_labels} labels in the {split} split; "
            "the image and label files do not belong together"
        )
    if num_images == 0:
        raise DataError(f"{data_dir}: the {split} split is empty")
    return {"image": images[..., None], "label": labels.astype(np.int32)}, num_images


# tfds datasets whose files exist in MNIST's IDX layout, which load_idx reads instead.
IDX_DATASETS = ("mnist", "fashion_mnist")
# tfds' own storage (dataset metadata, and mirrors such as MNIST's): reachable iff online.
TFDS_HOST = "storage.googleapis.com"


def _reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _tfds_builder(name: str, data_dir: str | None):
    """``(builder, tfds module, how to do without tfds)`` for ``name``; raises DataError at
    once when the dataset is not prepared and there is no network to prepare it.

    TensorFlow is imported here, not at module import, so runs without tfds start fast."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    tf.config.set_visible_devices([], "GPU")  # keep TensorFlow off the accelerators JAX uses
    absl_logging.set_verbosity(absl_logging.ERROR)  # tfds' warnings would bury our one line
    local = (
        "pass --data-dir DIR with the dataset's IDX files (train-images-idx3-ubyte[.gz], ...)"
        if name in IDX_DATASETS
        else "prepare it once where there is network (--tfds-data-dir DIR to choose where), or "
        "train on local images with --dataset folder --data-dir DIR"
    )
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared() and not _reachable(TFDS_HOST):
        raise DataError(
            f"{name!r} is not in the tfds data dir ({builder.data_dir}) and it cannot be "
            f"downloaded: no network ({TFDS_HOST} is unreachable); {local}"
        )
    return builder, tfds, local


def _tfds_error(name: str, e: Exception, local: str) -> DataError:
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return DataError(f"tensorflow-datasets could not load {name!r} ({reason}); {local}")


def tfds_size(name: str, split: str = "train", data_dir: str | None = None) -> int:
    """The number of examples in a tfds split (preparing the dataset first if needed)."""
    builder, _, local = _tfds_builder(name, data_dir)
    try:
        builder.download_and_prepare()
        return builder.info.splits[split].num_examples
    except Exception as e:  # tfds raises many types for "cannot download / prepare"
        raise _tfds_error(name, e, local) from e


def load_tfds(
    name: str,
    split: str = "train",
    data_dir: str | None = None,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    rows: slice | None = None,
) -> dict[str, np.ndarray]:
    """An image dataset's split from tensorflow-datasets as numpy (downloads on first use);
    with ``rows``, only that slice of it (a process's share in a multi-host run).

    ``data_dir`` defaults to tfds' own (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). A
    dataset that is not there yet needs the network: without it this fails in seconds, where
    tfds itself would retry its downloads for minutes. ``transform`` maps each chunk of
    10,000 decoded images (e.g. :func:`resize_images`), so only the transformed dataset is
    ever held whole: CelebA's 202,599 images are 23 GB as decoded, 2.5 GB at 64×64.

    Returns:
      ``{"image": uint8 [N, H, W, C], "label": int32 [N]}``; datasets without a ``label``
      feature (CelebA) have no ``"label"``.
    """
    return concatenate(tfds_chunks(name, split, data_dir, transform=transform, rows=rows))


def load_mnist(
    split: str, data_dir: str | None = None, tfds_data_dir: str | None = None
) -> dict[str, np.ndarray]:
    """MNIST's ``split`` (``"train"`` or ``"test"``): the IDX files in ``data_dir``, else tfds'
    ``mnist`` (from ``tfds_data_dir``, default tfds' own): ``{"image", "label"}``."""
    if data_dir is not None:
        return load_idx(data_dir, split)
    return load_tfds("mnist", split, tfds_data_dir)


def tfds_chunks(
    name: str,
    split: str = "train",
    data_dir: str | None = None,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    rows: slice | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`load_tfds`' dataset as chunks of 10,000 examples, in order (read by tf.data).
    Images of varying sizes (cycle_gan's feature is ``[None, None, 3]``) are transformed one
    by one, then stacked: give a ``transform`` that brings them to one size."""
    tfds, local = _tfds_builder(name, data_dir)[1:]
    if rows is not None:
        split = f"{split}[{rows.start}:{rows.stop}]"
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir)
    except Exception as e:  # tfds raises many types for "cannot download / prepare"
        raise _tfds_error(name, e, local) from e
    transform = transform or (lambda images: images)
    if None in dataset.element_spec["image"].shape:  # sizes vary: transform image by image
        yield from _one_by_one(tfds.as_numpy(dataset), transform)
        return
    for batch in tfds.as_numpy(dataset.batch(10_000)):
        chunk = {"image": transform(batch["image"].astype(np.uint8))}
        if "label" in batch:
            chunk["label"] = batch["label"].astype(np.int32)
        yield chunk


def _one_by_one(examples: Iterable[dict], transform, size: int = 10_000) -> Iterator[dict]:
    """Chunks of ``size`` examples whose images each ``transform`` maps on its own."""
    images, labels = [], []
    for example in examples:
        images.append(transform(example["image"][None].astype(np.uint8)))
        if "label" in example:
            labels.append(example["label"])
        if len(images) == size:
            yield _chunk(images, labels)
            images, labels = [], []
    if images:
        yield _chunk(images, labels)


def _chunk(images: list[np.ndarray], labels: list) -> dict[str, np.ndarray]:
    chunk = {"image": np.concatenate(images)}
    if labels:
        chunk["label"] = np.array(labels, np.int32)
    return chunk


def concatenate(chunks: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One dict of arrays from a dataset's chunks (dicts with the same keys)."""
    chunks = list(chunks)
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def square_resize(image, size: int):
    """Centre crop to a square (the shorter side), then resize to ``size`` × ``size``."""
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side)).resize(
        (size, size), Image.Resampling.BICUBIC
    )


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` images centre-cropped to squares and resized to ``size`` (bicubic),
    as the folder loader does; returned unchanged when already ``size`` × ``size``."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    channels = images.shape[-1]

    def one(image: np.ndarray) -> np.ndarray:
        pil = Image.fromarray(image[..., 0] if channels == 1 else image)
        return np.asarray(square_resize(pil, size), np.uint8).reshape(size, size, channels)

    return np.stack([one(image) for image in images])


def pad_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images ``[N, H, W, C]`` padded with black borders to ``size`` × ``size`` (centred):
    MNIST's 28×28 digits as the 32×32 images of LeNet-5 and of DCGANs on MNIST."""
    h, w = images.shape[1:3]
    top, left = (size - h) // 2, (size - w) // 2
    if top < 0 or left < 0:
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    widths = ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0))
    return np.pad(images, widths)


def load_image_folder(
    directory: str | os.PathLike,
    size: int,
    *,
    channels: int = 3,
    report: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Every JPEG/PNG image under ``directory`` (recursively, in sorted order), centre-cropped
    to a square and resized to ``size`` × ``size``, as RGB (``channels`` 3) or grayscale (1).

    Labels follow torchvision's ImageFolder: the index of the image's top-level subdirectory in
    sorted order (0 for images directly in ``directory``). Files that cannot be decoded are
    skipped and counted in one line passed to ``report`` (default: stderr).

    Raises:
      DataError: the directory is missing, holds no JPEG/PNG files, or none of them decodes.
    """
    return concatenate(image_folder_chunks(directory, size, channels=channels, report=report))


def image_files(directory: str | os.PathLike) -> list[Path]:
    """The JPEG/PNG files under ``directory``, recursively, in sorted order.

    Raises:
      DataError: the directory is missing or holds no such files.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory; point --data-dir at a folder of images")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{root} holds no JPEG or PNG images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def image_folder_chunks(
    directory: str | os.PathLike,
    size: int,
    *,
    channels: int = 3,
    report: Callable[[str], None] | None = None,
    chunk: int = 1000,
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`load_image_folder`'s images and labels, decoded ``chunk`` files at a time."""
    from PIL import Image, UnidentifiedImageError

    root = Path(directory)
    paths = image_files(root)
    classes = sorted({p.relative_to(root).parts[0] for p in paths if p.parent != root})
    skipped, decoded = [], 0
    for start in range(0, len(paths), chunk):
        images, labels = [], []
        for path in paths[start : start + chunk]:
            try:
                with Image.open(path) as image:
                    image = square_resize(image.convert("RGB" if channels == 3 else "L"), size)
            except (OSError, UnidentifiedImageError, ValueError):
                skipped.append(path)
                continue
            images.append(np.asarray(image, np.uint8).reshape(size, size, channels))
            top = path.relative_to(root).parts[0]
            labels.append(0 if path.parent == root else classes.index(top))
        if images:
            decoded += len(images)
            yield {"image": np.stack(images), "label": np.array(labels, np.int32)}
    if not decoded:
        raise DataError(f"none of the {len(paths)} image files under {root} could be read")
    if skipped:
        line = (
            f"skipped {len(skipped)} unreadable of {len(paths)} image files under {root} "
            f"(first: {skipped[0].relative_to(root)})"
        )
        (report or (lambda text: print(text, file=sys.stderr)))(line)


def digits_at(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 28×28 digits ``[N, 28, 28, C]`` at ``size``: padded to 32×32 (the size of LeNet-5's
    and of DCGANs on MNIST, :func:`pad_images`), else resized (:func:`resize_images`)."""
    return pad_images(images, 32) if size == 32 else resize_images(images, size)


def scale_images(images):
    """uint8 images in [0, 255] to float32 in [-1, 1], the range of a tanh generator."""
    return images.astype(np.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
    """Generator outputs in [-1, 1] back to uint8 images (values outside are clipped)."""
    return np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)

"""DCGAN (Radford et al. 2016) on image datasets, with the PyTorch DCGAN tutorial's settings.

    python -m jaxgan.experiments.dcgan --dataset celeb_a --image-size 64 --workdir runs/celeba
    python -m jaxgan.experiments.dcgan --dataset mnist --data-dir ../shared/data/mnist \\
        --image-size 32 --epochs 25 --workdir runs/dcgan_mnist32
    python -m jaxgan.experiments.dcgan --dataset folder --data-dir ~/anime_faces

Datasets: ``cifar10``, ``celeb_a``, ``mnist`` and ``fashion_mnist`` from tensorflow-datasets
(MNIST-style datasets also from local IDX files with ``--data-dir``), or ``folder``: any tree
of JPEG/PNG images under ``--data-dir`` (labels from the top-level subfolders). Images are
centre-cropped and resized to ``--image-size`` (CelebA like the tutorial); 28×28 digits are
padded to 32×32 (resized for 64 and 96). Defaults: Adam 2e-4, β1 0.5, batch 128, latent 100,
widths ngf = ndf = 64, the non-saturating loss; ``--conditional cgan|acgan`` uses the labels.

Datasets that fit on the device stay there (an epoch is one program); larger ones, and all on
CPU, stay in host memory and are fed step by step (``--data-placement``, :mod:`jaxgan.stream`);
sets too large for the host's memory are decoded once into a cache on disk and streamed from
it (``stream``, :mod:`jaxgan.datacache`), in the same order with the same numbers.
The outputs are the MNIST job's: fixed-noise grids per epoch, loss curves, progress.gif,
real_vs_fake.png, metrics.jsonl, TensorBoard, summary.json, Orbax checkpoints (resumable,
``python -m jaxgan.generate``); MNIST runs are also scored by :mod:`jaxgan.evaluate`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from jaxgan import data, datacache
from jaxgan.cli import cli_main, option, require
from jaxgan.epoch import shard_rows
from jaxgan.models import DCGAN_RESOLUTIONS, DCGANDiscriminator, DCGANGenerator
from jaxgan.trainer import choose_devices, load_rows, override
from jaxgan.trainer.images import ImageConfig, train_images

NAME = "dcgan"
IMAGES = True  # its runs' samples are images (jaxgan.generate draws them)
DATASETS = ("cifar10", "celeb_a", "mnist", "fashion_mnist", "folder")
DIGITS = data.IDX_DATASETS  # 28x28 grayscale, IDX files or tfds
TFDS_CLASSES = {"cifar10": 10, "mnist": 10, "fashion_mnist": 10}  # celeb_a: no class label
DEVICE_DATA_SHARE = 0.25  # data bigger than this share of the device's memory stay on the host
HOST_DATA_SHARE = 0.5  # uint8 data bigger than this share of the host's memory are streamed
PLACEMENTS = ("auto", "device", "host", "stream")
IDX_CHUNK = 10_000  # IDX images read and resized at a time


@dataclasses.dataclass(frozen=True)
class Config(ImageConfig):
    RESUME_SAFE: ClassVar[frozenset[str]] = ImageConfig.RESUME_SAFE | {
        "data_placement",
        "data_cache",
    }

    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset()

    workdir: str = override("workdir", "runs/dcgan")
    dataset: str = option("celeb_a", "dataset (folder: --data-dir's images)", choices=DATASETS)
    data_dir: str | None = option(
        None, "folder: the image folder; mnist/fashion_mnist: local IDX files instead of tfds"
    )
    image_size: int = option(64, "image resolution", choices=DCGAN_RESOLUTIONS)
    classes: int | None = option(
        None, "folder with --conditional: number of classes (default: the subfolders found)"
    )
    epochs: int = override("epochs", 5)
    batch_size: int = override("batch_size", 128)
    latent_dim: int = override("latent_dim", 100)
    log_every: int = override("log_every", 50)
    checkpoint_every: int = override("checkpoint_every", 1)
    g_width: int = option(64, "ngf: the generator's channels before its output layer")
    d_width: int = option(64, "ndf: the discriminator's first-layer channels")
    data_placement: str = option(
        "auto",
        "device (an epoch is one program), host (in host memory, fed step by step), stream "
        "(decoded once into --data-cache, read from disk step by step), or auto: device when "
        "the data take under a quarter of an accelerator's memory, stream when they take over "
        "half the host's",
        choices=PLACEMENTS,
    )
    data_cache: str | None = option(
        None, "stream: the decoded images' directory (default: $JAXGAN_CACHE_DIR, ~/.cache/jaxgan)"
    )

    def validate(self) -> None:
        require(
            self.classes is None or self.classes >= 2, f"--classes must be >= 2, got {self.classes}"
        )
        super().validate()
        for name in ("g_width", "d_width"):
            value = getattr(self, name)
            require(value >= 1, f"--{name.replace('_', '-')} must be >= 1, got {value}")
        require(
            self.dataset != "folder" or self.data_dir is not None,
            "--dataset folder needs --data-dir DIR, a folder of JPEG/PNG images",
        )
        require(
            self.conditional == "none" or self.dataset != "celeb_a",
            "celeb_a has no class labels; --conditional needs mnist, fashion_mnist, cifar10 "
            "or a folder with a subfolder per class",
        )
        require(
            self.classes is None or self.dataset == "folder",
            "--classes is for --dataset folder (the other datasets know their classes)",
        )

    def num_classes(self) -> int | None:
        if self.dataset == "folder":
            return self.classes  # None until the folder is read (with_classes)
        return TFDS_CLASSES.get(self.dataset)

    def channels(self) -> int:
        return 1 if self.dataset in DIGITS else 3


def build_models(
    config: Config, axis_name: str | None = None
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN pair at ``config.image_size``; with ``axis_name`` batch norm takes its
    statistics over the devices (the global batch's), as one device would."""
    g_labels, d_labels = config.conditioning_kwargs()
    size = config.image_size
    generator = DCGANGenerator(
        size, config.channels(), width=config.g_width, axis_name=axis_name, **g_labels
    )
    discriminator = DCGANDiscriminator(size, width=config.d_width, axis_name=axis_name, **d_labels)
    return generator, discriminator


def fit_images(images: np.ndarray, config: Config) -> np.ndarray:
    """Images at ``config.image_size``: 28x28 digits padded to 32, anything else cropped and
    resized."""
    if config.dataset in DIGITS:
        return data.digits_at(images, config.image_size)
    return data.resize_images(images, config.image_size)


def data_chunks(config: Config, rows: slice | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The training images (uint8, ``image_size`` square) and labels (where the data have
    them), ``rows`` only if given, in chunks: decoded a chunk at a time, never all at once."""
    if config.dataset == "folder":
        yield from data.image_folder_chunks(config.data_dir, config.image_size, channels=3)
    elif config.dataset in DIGITS and config.data_dir is not None:
        rows = rows or slice(0, data.idx_size(config.data_dir, "train"))
        for start in range(rows.start, rows.stop, IDX_CHUNK):
            part = slice(start, min(start + IDX_CHUNK, rows.stop))
            train_set = data.load_idx(config.data_dir, "train", rows=part)
            yield {**train_set, "image": fit_images(train_set["image"], config)}
    else:
        yield from data.tfds_chunks(
            config.dataset,
            "train",
            config.tfds_data_dir,
            transform=lambda images: fit_images(images, config),
            rows=rows,
        )


def load_data(config: Config, rows: slice | None = None) -> dict[str, np.ndarray]:
    """:func:`data_chunks` as one dict of arrays in host memory."""
    return data.concatenate(data_chunks(config, rows))


def cached_data(config: Config, rows: slice | None = None) -> dict[str, np.ndarray]:
    """:func:`data_chunks` decoded once into ``--data-cache`` and memory-mapped from there
    (:func:`jaxgan.datacache.cached`); the key names the source and every setting that changes
    the decoded bytes."""
    key: dict[str, Any] = {
        "dataset": config.dataset,
        "image_size": config.image_size,
        "rows": None if rows is None else [rows.start, rows.stop],
    }
    if config.data_dir is not None:  # a folder or IDX files: their paths, sizes, times
        root = Path(config.data_dir).resolve()
        files = (
            data.image_files(root)
            if config.dataset == "folder"
            else [p for p in sorted(root.iterdir()) if p.is_file()]
        )
        key.update(data_dir=str(root), files=datacache.folder_fingerprint(files, root))
    else:
        key["tfds_data_dir"] = config.tfds_data_dir
    directory = config.data_cache or datacache.default_dir()
    return datacache.cached(directory, config.dataset, key, lambda: data_chunks(config, rows))


def load_train_set(
    config: Config, devices: int, placement: str
) -> tuple[Config, dict[str, np.ndarray], int]:
    """This process's rows of the training set (:func:`jaxgan.trainer.load_rows`),
    in host memory or (``placement`` stream) memory-mapped from the cache; the set's size; and
    the config with a folder's classes settled (:func:`with_classes`).

    Every process decodes a whole folder, since which files are unreadable shows only then."""
    load = cached_data if placement == "stream" else load_data
    if config.dataset != "folder":
        train_set, num_train = load_rows(
            devices, lambda rows: load(config, rows), config.train_size
        )
        return config, train_set, num_train
    folder = load(config)
    config = with_classes(config, folder["label"])
    train_set, num_train = load_rows(
        devices,
        lambda rows: {name: a[rows or slice(None)] for name, a in folder.items()},
        lambda: len(folder["image"]),
    )
    return config, train_set, num_train


def with_classes(config: Config, labels: np.ndarray | None) -> Config:
    """``config`` with a conditional folder run's number of classes settled (recorded in
    config.json, so that ``jaxgan.generate`` rebuilds the same models); folders always have
    labels, other datasets' configs come back unchanged."""
    if config.conditional == "none" or config.dataset != "folder":
        return config
    found = int(labels.max()) + 1
    if config.classes is None:
        if found < 2:
            raise data.DataError(
                f"{config.data_dir} has no subfolders of classes; --conditional needs one "
                "subfolder per class"
            )
        return dataclasses.replace(config, classes=found)
    if found > config.classes:
        raise data.DataError(
            f"{config.data_dir} holds {found} classes (subfolders), more than --classes "
            f"{config.classes}"
        )
    return config


def choose_placement(config: Config, devices: int) -> str:
    """Where the training set lives: ``--data-placement``, or for ``auto`` the device when the
    data (float32, split over the devices) take under :data:`DEVICE_DATA_SHARE` of an
    accelerator's memory, a disk stream when this process's rows (uint8) would take over
    :data:`HOST_DATA_SHARE` of the host's, else host memory (always on CPU, where XLA runs
    convolutions faster one step per program)."""
    if config.data_placement != "auto":
        return config.data_placement
    num_train = (
        len(data.image_files(config.data_dir))
        if config.dataset == "folder"
        else config.train_size()
    )
    image_bytes = config.image_size**2 * config.channels()
    host_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if image_bytes * num_train / jax.process_count() > HOST_DATA_SHARE * host_memory:
        return "stream"
    limit = (jax.local_devices()[0].memory_stats() or {}).get("bytes_limit")
    if jax.default_backend() == "cpu" or not limit:
        return "host"
    fits = 4 * image_bytes * shard_rows(num_train, devices) <= DEVICE_DATA_SHARE * limit
    return "device" if fits else "host"


def train(config: Config) -> dict[str, Any]:
    """Trains the DCGAN and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    placement = choose_placement(config, devices)
    config, train_set, num_train = load_train_set(config, devices, placement)
    return train_images(
        config, NAME, build_models, train_set, num_train, devices,
        on_host=placement != "device", image_size=config.image_size,
    )  # fmt: skip


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

"""The decoded-dataset cache on disk (a DCGAN run streamed from it: tests/test_dcgan.py)."""

import json
import shutil
import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import data, datacache
from jaxgan.experiments import dcgan


def chunks_of(rng: np.random.Generator, sizes=(3, 4, 2)):
    """Chunks of uint8 images and int32 labels, and a log of how often they were produced."""
    produced = []

    def chunks():
        produced.append(True)
        for n in sizes:
            yield {
                "image": rng.integers(0, 256, (n, 5, 5, 3), dtype=np.uint8),
                "label": rng.integers(0, 10, n).astype(np.int32),
            }

    return chunks, produced


def test_a_dataset_is_decoded_once_then_memory_mapped(tmp_path):
    chunks, produced = chunks_of(np.random.default_rng(0))
    expected = {
        name: np.concatenate([c[name] for c in chunks_of(np.random.default_rng(0))[0]()])
        for name in ("image", "label")
    }
    lines = []
    key = {"dataset": "toy", "image_size": 5}
    first = datacache.cached(tmp_path, "toy", key, chunks, report=lines.append)
    again = datacache.cached(tmp_path, "toy", key, chunks, report=lines.append)
    assert len(produced) == 1  # the second call read the cache
    assert lines[0].startswith("decoding toy once into") and lines[1].startswith("reading")
    for loaded in (first, again):
        assert isinstance(loaded["image"], np.memmap)
        for name, array in expected.items():
            assert loaded[name].dtype == array.dtype
            np.testing.assert_array_equal(loaded[name], array)
    (entry,) = tmp_path.iterdir()
    assert json.loads((entry / "meta.json").read_text())["arrays"]["image"]["shape"] == [9, 5, 5, 3]
    # another key (here: another image size) is another entry
    datacache.cached(tmp_path, "toy", {**key, "image_size": 6}, chunks, report=lines.append)
    assert len(produced) == 2 and len(list(tmp_path.iterdir())) == 2


def test_a_failed_or_killed_build_leaves_no_entry(tmp_path):
    def failing():
        yield {"image": np.zeros((2, 3), np.uint8)}
        raise OSError("disk full")

    key = {"dataset": "toy"}
    with pytest.raises(OSError, match="disk full"):
        datacache.cached(tmp_path, "toy", key, failing, report=lambda line: None)
    assert list(tmp_path.iterdir()) == []
    # a build killed with SIGKILL leaves its temporary directory: the next build removes it
    chunks, _ = chunks_of(np.random.default_rng(0))
    datacache.cached(tmp_path, "toy", key, chunks, report=lambda line: None)
    (entry,) = tmp_path.iterdir()
    shutil.rmtree(entry)
    stale = tmp_path / f"{entry.name}.tmp-{socket.gethostname()}-999999999"  # no such process
    stale.mkdir()
    datacache.cached(tmp_path, "toy", key, chunks, report=lambda line: None)
    assert list(tmp_path.iterdir()) == [entry]


def test_a_tfds_dataset_is_cached_as_loaded(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host: True)  # as on a connected machine
    config = dcgan.Config(dataset="cifar10", image_size=32, data_cache=str(tmp_path))
    with tfds.testing.mock_data(num_examples=12):
        loaded = dcgan.load_data(config)
        cached = dcgan.cached_data(config)
    assert isinstance(cached["image"], np.memmap) and set(cached) == {"image", "label"}
    for name, array in loaded.items():
        np.testing.assert_array_equal(cached[name], array)

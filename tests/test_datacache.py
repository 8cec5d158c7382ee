"""The decoded-dataset cache on disk, and DCGAN runs streamed from it."""

import json
import shutil
import socket

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan import data, datacache
from jaxgan.checkpoint import Checkpointer
from jaxgan.experiments import dcgan
from jaxgan.experiments.common import config_parser, create_state


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


@pytest.fixture
def faces(tmp_path):
    """30 random-noise images of assorted sizes in two class folders."""
    rng = np.random.default_rng(1)
    for i in range(30):
        folder = tmp_path / "faces" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        size = (int(rng.integers(24, 60)), int(rng.integers(24, 60)))
        pixels = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path / "faces"


TINY = [
    "--dataset", "folder", "--image-size", "32", "--g-width", "4", "--d-width", "4",
    "--epochs", "2", "--batch-size", "10", "--eval-samples", "0", "--conditional", "cgan",
]  # fmt: skip


def final_state(workdir, argv):
    config = dcgan.Config(**vars(config_parser(dcgan.Config, "dcgan", "").parse_args(argv)))
    config = dcgan.with_classes(config, np.array([0, 1]))
    target, _ = create_state(config, *dcgan.build_models(config), 30)
    checkpointer = Checkpointer(workdir, create=False)
    state, _ = checkpointer.restore(target)
    checkpointer.close()
    return state


def trained_arrays(state) -> list[np.ndarray]:
    models = (state.g.params, state.d.params, state.g.batch_stats, state.d.batch_stats)
    return [np.asarray(x) for x in jax.tree.leaves((*models, state.g.opt_state, state.d.opt_state))]


def test_a_run_streamed_from_the_cache_matches_one_in_host_memory(tmp_path, faces, capsys):
    cache = tmp_path / "cache"
    argv = [*TINY, "--data-dir", str(faces)]
    runs = {}
    for placement in ("host", "stream"):
        runs[placement] = tmp_path / placement
        extra = ["--data-placement", placement, "--data-cache", str(cache)]
        dcgan.main([*argv, *extra, "--workdir", str(runs[placement])])
    assert "decoding folder once into" in capsys.readouterr().err
    (entry,) = cache.iterdir()
    assert json.loads((entry / "meta.json").read_text())["arrays"]["image"]["shape"] == (
        [30, 32, 32, 3]
    )
    streamed = final_state(runs["stream"], argv)
    assert int(streamed.step) == 2 * 3
    reference = trained_arrays(final_state(runs["host"], argv))
    for a, b in zip(trained_arrays(streamed), reference, strict=True):
        np.testing.assert_array_equal(a, b)

"""Shared test helpers: IDX files written on the fly, and the location of the real MNIST."""

import gzip
import os
import shutil
import struct
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The tests compile hundreds of small programs and run each briefly. LLVM's optimisation level
# 1 compiles them about 4x faster (six random-normal initialisers: 6.5 s -> 1.5 s; the main
# suite ran 9:17 -> 7:06). Set before JAX starts its backend; subprocesses of tests inherit it.
# Level 0 is faster still (the main suite 9:40 -> 7:16), but its rounding differs between 8
# simulated devices and 1 beyond what tests/multidevice allows (3e-5..5e-5 after 80 steps of
# the MNIST default), so that suite keeps level 1.
os.environ["XLA_FLAGS"] = " ".join(
    [
        os.environ.get("XLA_FLAGS", ""),
        "--xla_backend_optimization_level="
        + (
            "1"
            if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            else "0"
        ),
    ]
).strip()

import orbax.checkpoint as ocp

from jaxgan.data import IDX_FILES, load_idx
from jaxgan.workdir import CHECKPOINT_DIR

# One persistent XLA compilation cache for the run, shared by the xdist workers: many tests
# compile the same programs (the evaluation classifier, tiny MLP and DCGAN steps), and reading
# one back is faster than compiling it again (the main suite: 8:24 -> 6:02-6:23 on 2 cores).
# The controller (or a run without xdist) makes the folder and removes it at the end; the
# workers inherit its path.
_OWNS_XLA_CACHE = "JAXGAN_TEST_XLA_CACHE" not in os.environ
if _OWNS_XLA_CACHE:
    os.environ["JAXGAN_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="jaxgan-xla-cache-")
jax.config.update("jax_compilation_cache_dir", os.environ["JAXGAN_TEST_XLA_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.3)
# The experiments the tests run as subprocesses (killed and resumed runs, ...) share it: JAX
# reads these when it is imported there.
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["JAXGAN_TEST_XLA_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.3"


def pytest_unconfigure(config):
    if _OWNS_XLA_CACHE:
        shutil.rmtree(os.environ.pop("JAXGAN_TEST_XLA_CACHE"), ignore_errors=True)


# The MNIST job's default before R3GAN's recipe (issue "an MNIST main job whose digits look like
# digits"), for the tests whose cases were measured with it.
PREVIOUS_MNIST_DEFAULT = (
    *("--loss", "non_saturating", "--r1-gamma", "0", "--r2-gamma", "0", "--lr-g", "2e-4"),
    *("--lr-d", "2e-4", "--beta1", "0.5", "--beta2", "0.999", "--d-dropout", "0.3"),
    *("--g-hidden", "256", "256", "--d-hidden", "256", "256"),
)
MNIST_DIR = Path(
    os.environ.get("JAXGAN_MNIST_DIR", Path(__file__).parents[1] / "../shared/data/mnist")
)


def expect_one_line_error(capsys, main, argv, message):
    """``main(argv)`` exits with status 2 and one line on stderr that contains ``message``."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080N, big-endian dims, data."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.asarray(array, np.uint8).tobytes()


def write_idx_dataset(directory: Path, images: np.ndarray, labels: np.ndarray):
    """Writes gzipped IDX image and label files in MNIST's layout: the training split, and the
    first half of it again as the test split."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, end in (("train", len(images)), ("test", len(images) // 2)):
        image_stem, label_stem = IDX_FILES[split]
        (directory / f"{image_stem}.gz").write_bytes(gzip.compress(idx_bytes(images[:end])))
        (directory / f"{label_stem}.gz").write_bytes(gzip.compress(idx_bytes(labels[:end])))
    return directory


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """200 random 28x28 'digits' with labels, as IDX files."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    return write_idx_dataset(tmp_path / "idx", images, np.arange(200) % 10)


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {MNIST_DIR} (set JAXGAN_MNIST_DIR to its directory)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def digits_400(real_mnist, tmp_path_factory) -> Path:
    """The first 400 real training digits as IDX files (test split: their first 200)."""
    digits = load_idx(real_mnist, "train", rows=slice(0, 400))
    return write_idx_dataset(
        tmp_path_factory.mktemp("digits") / "idx", digits["image"][..., 0], digits["label"]
    )


def checkpoint_arrays(workdir: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's newest checkpoint by key path (``['g']['params']...``, sorted);
    PRNG keys as their raw data."""
    steps = sorted((Path(workdir) / CHECKPOINT_DIR).iterdir(), key=lambda p: int(p.name))
    with ocp.StandardCheckpointer() as reader:
        state = reader.restore(steps[-1] / "state")
    flat = [
        (jax.tree_util.keystr(path), leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
    ]
    return {name: leaves(leaf)[0] for name, leaf in sorted(flat)}


def leaves(state) -> list[np.ndarray]:
    """Every array of ``state`` as numpy, PRNG keys as their raw data."""
    state = jax.tree.map(
        lambda x: (
            jax.random.key_data(x)
            if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
            else x
        ),
        state,
    )
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def adam_step_sizes(tx, steps: int) -> np.ndarray:
    """|update| of ``tx`` for a constant unit gradient: Adam's bias-corrected m / sqrt(v) is 1
    then, so each step moves by the learning rate of that step (up to eps)."""
    params = {"w": jnp.zeros(())}
    opt_state, sizes = tx.init(params), []
    for _ in range(steps):
        updates, opt_state = tx.update({"w": jnp.ones(())}, opt_state, params)
        sizes.append(float(jnp.abs(updates["w"])))
    return np.array(sizes)


def assert_same_state(a, b) -> None:
    """Two states (or any pytrees) hold bitwise-equal arrays: the same dtypes, shapes and bytes
    (so NaN != 0 and -0.0 != 0.0, which ``assert_array_equal`` lets pass)."""
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for i, (x, y) in enumerate(zip(la, lb, strict=True)):
        assert (x.dtype, x.shape) == (y.dtype, y.shape), i
        if x.tobytes() != y.tobytes():
            np.testing.assert_array_equal(x, y)  # shows where they differ
            raise AssertionError(f"leaf {i}: equal values, different bits (-0.0 or NaN payloads)")

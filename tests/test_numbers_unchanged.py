"""A refactor keeps the numbers: the experiments' final states, bitwise.

Each case trains one experiment from the command line for a few epochs and digests its final
checkpoint's arrays (G's and D's parameters, batch statistics and optimizer states, the EMA):
SHA-256 of their bytes. ``tests/data/numbers_unchanged.json`` holds the digests recorded before
the update was rebuilt from parts (issue "Open the GAN update"), with the machine they were
recorded on: XLA's CPU code differs between instruction sets and jaxlib versions, so the
comparison runs where the machine matches and is skipped, saying why, elsewhere.

Record anew (after a change that is meant to change the numbers, or on a new machine, from a
commit whose numbers are trusted)::

    JAXGAN_RECORD_NUMBERS=1 .venv/bin/pytest tests/test_numbers_unchanged.py
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import re
from pathlib import Path

import jaxlib
import numpy as np
import pytest
from conftest import PREVIOUS_MNIST_DEFAULT, checkpoint_arrays

REFERENCE = Path(__file__).parent / "data" / "numbers_unchanged.json"
RECORD = os.environ.get("JAXGAN_RECORD_NUMBERS") == "1"

MNIST = ("--eval-samples", "0", "--data-dir", "{mnist}")
# The cases of the MNIST job's previous default keep their digests, recorded before the update
# was rebuilt from parts.
PREVIOUS = PREVIOUS_MNIST_DEFAULT
CGAN_PROJECTION = ("--conditional", "cgan", "--d-conditioning", "projection")
DCGAN16 = ("--g-width", "16", "--d-width", "16", "--epochs", "1")
CASES = {
    "gaussian1d_default": ("gaussian1d", ("--epochs", "3")),
    "mnist_default": ("mnist", ("--epochs", "2", *MNIST)),
    "mnist_previous_default": ("mnist", ("--epochs", "2", *PREVIOUS, *MNIST)),
    "mnist_tutorial": ("mnist", ("--preset", "tutorial", "--epochs", "2", *MNIST)),
    "dcgan_mnist32": ("dcgan", ("--dataset", "mnist", "--image-size", "32", *DCGAN16, *MNIST)),
    "mnist_acgan": ("mnist", ("--conditional", "acgan", "--epochs", "2", *PREVIOUS, *MNIST)),
    "mnist_cgan_projection": ("mnist", (*CGAN_PROJECTION, "--epochs", "2", *PREVIOUS, *MNIST)),
    "grid_wgan_gp": ("mixture2d", ("--dataset", "grid", "--loss", "wgan_gp", "--epochs", "1")),
    "grid_r1": ("mixture2d", ("--dataset", "grid", "--r1-gamma", "1", "--epochs", "1")),
}


def machine() -> dict[str, str]:
    """What the digests depend on besides the code: the processor's vector extensions, jaxlib,
    and the XLA flags of the test run (tests/conftest.py sets LLVM's optimisation level)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    words = set(flags.split())
    return {
        "arch": platform.machine(),
        "vector": "avx512f" if "avx512f" in words else "avx2" if "avx2" in words else "other",
        "jaxlib": jaxlib.__version__,
        "xla_flags": " ".join(sorted(set(os.environ.get("XLA_FLAGS", "").split()))),
    }


def digests(workdir: Path) -> dict[str, str]:
    """SHA-256 of the newest checkpoint's arrays, one digest per group (``g/params``, ...)."""
    groups: dict[str, hashlib._Hash] = {}
    for path, leaf in checkpoint_arrays(workdir).items():
        names = re.findall(r"\['([^']*)'\]", path)
        if names[0] in ("key", "step"):
            continue
        group = "/".join(names[:2]) if names[0] in ("g", "d") else names[0]
        h = groups.setdefault(group, hashlib.sha256())
        h.update(path.encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return {group: h.hexdigest() for group, h in sorted(groups.items())}


def _reference() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


@pytest.mark.parametrize("case", sorted(CASES))
def test_final_state_is_bitwise_the_recorded_one(case, real_mnist, tmp_path):
    experiment, argv = CASES[case]
    reference = _reference()
    if not RECORD:
        if reference.get("machine") != machine():
            pytest.skip(
                f"digests recorded on {reference.get('machine')}, this is {machine()}; "
                "see the module docstring to record them here"
            )
    module = importlib.import_module(f"jaxgan.experiments.{experiment}")
    workdir = tmp_path / case
    args = [a.format(mnist=real_mnist) for a in argv]
    module.main(["--workdir", str(workdir), "--seed", "3", *args])
    found = digests(workdir)
    if RECORD:
        reference = _reference()  # another worker may have written cases meanwhile
        reference.setdefault("cases", {})[case] = found
        reference["machine"] = machine()
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
        return
    assert found == reference["cases"][case]

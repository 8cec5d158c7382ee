"""What the benchmarks say about the machine they ran on, and their one-line refusal when the
PyTorch side is not installed."""

from __future__ import annotations

import sys
from typing import NoReturn

# The instruction sets that change the ratios between XLA's and PyTorch's CPU kernels.
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_flags() -> str:
    """Which of :data:`FLAGS` this CPU has (Linux's /proc/cpuinfo), e.g. ``avx2 fma``."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    present = set(line.split(":", 1)[1].split())
    return " ".join(flag for flag in FLAGS if flag in present) or "none of " + " ".join(FLAGS)


def torch_missing(error: ModuleNotFoundError, extra: str) -> NoReturn:
    """Exits with one line (status 2) saying how to install torch, if ``error`` is torch's
    absence (raises it again otherwise)."""
    if error.name != "torch":
        raise error
    print(
        f"{sys.argv[0]}: error: this benchmark compares with PyTorch, which is not installed: "
        f".venv/bin/pip install -e '.[{extra}]' (torch's CPU build)",
        file=sys.stderr,
    )
    sys.exit(2)

"""What the benchmarks share: what they say about the machine they ran on (its CPU flags, its
measured matmul peak), the FLOPs of a compiled program, and their one-line refusal when the
PyTorch side is not installed."""

from __future__ import annotations

import sys
import time
from typing import NoReturn

import jax
import jax.numpy as jnp

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


def matmul_gflops(n: int, dtype=jnp.float32, repeats: int = 5) -> float:
    """The best rate (GFLOP/s) of an ``n``² matmul in ``dtype`` through JAX, of ``repeats``
    timed calls after a compiling one."""
    a = jax.random.normal(jax.random.key(0), (n, n)).astype(dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def program_flops(lowered) -> float:
    """FLOPs of a lowered program (``jax.jit(f).lower(...)``) by XLA's cost analysis of its
    compiled form (which counts the elementwise work too)."""
    costs = lowered.compile().cost_analysis()
    return float((costs[0] if isinstance(costs, list) else costs)["flops"])


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

"""What the MNIST job's training step costs, part by part, and its share of the machine's peak.

    python experiments/benchmarks/mlp_step_parts.py              # ~2 min on 2 cores
    python experiments/benchmarks/mlp_step_parts.py --precision bfloat16

The default preset's step (R3GAN's recipe: rpgan with R1 and R2, EMA of G, G 1024 wide, D 512,
batch 100) trained as the job trains it, an epoch of 50 steps as one program
(:func:`jaxgan.epoch.train_epoch`) on MNIST-sized random images; then the same step with one
part taken away at a time, so each part's cost is the difference. Each variant's FLOPs per
step come from XLA's cost analysis of its compiled step, so the share of the float32 matmul
peak (a 2048² matmul through JAX, best of several) is of the work that variant really does.
The variants are timed round by round, alternating, so a busy machine slows all alike.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from machine import cpu_flags, matmul_gflops, program_flops

from jaxgan.epoch import train_epoch
from jaxgan.experiments import mnist
from jaxgan.step import train_step
from jaxgan.trainer import init_state

NUM_IMAGES = 5000  # the job's training subset: 50 steps of 100 an epoch
# variant -> the default config's fields it changes
VARIANTS = {
    "default preset": {},
    "without R2": {"r2_gamma": 0.0},
    "without R1 and R2": {"r1_gamma": 0.0, "r2_gamma": 0.0},
    "without EMA": {"ema_decay": 0.0},
    "non_saturating, no penalties, no EMA": {
        "loss": "non_saturating",
        "r1_gamma": 0.0,
        "r2_gamma": 0.0,
        "ema_decay": 0.0,
    },
}


class Variant:
    """One config's state on the shared ``data``; ``run()`` trains one epoch, ``flop`` is a
    step's FLOPs."""

    def __init__(self, changes: dict, precision: str, data: dict):
        config = dataclasses.replace(mnist.Config(), precision=precision, **changes)
        self.state = init_state(config, *mnist.build_models(config), total_steps=10_000)
        self.data, self.batch = data, config.batch_size
        self.flop = program_flops(train_step.lower(self.state, {"x": data["x"][: self.batch]}))
        self.steps = NUM_IMAGES // self.batch

    def run(self) -> float:
        """Seconds of one epoch."""
        start = time.perf_counter()
        self.state, metrics = train_epoch(self.state, self.data, batch_size=self.batch)
        jax.block_until_ready(metrics)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per variant")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    images = np.random.default_rng(0).uniform(-1, 1, (NUM_IMAGES, 28, 28, 1))
    data = {"x": jnp.asarray(images, jnp.float32)}
    variants = {name: Variant(c, args.precision, data) for name, c in VARIANTS.items()}
    for v in variants.values():
        v.run()  # compiles and warms up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, v in variants.items():
            seconds[name].append(v.run())
    peak = matmul_gflops(2048)
    print(
        f"{cpu_flags()}; {jax.device_count()} JAX {jax.default_backend()} device(s); "
        f"float32 matmul peak {peak:.0f} GFLOP/s (2048², JAX); precision {args.precision}; "
        f"median of {args.rounds} epochs of {NUM_IMAGES // 100} steps.\n"
    )
    print("| step | ms per step | share of the default's time | MFLOP per step | GFLOP/s "
          "| share of matmul peak |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    base = statistics.median(seconds["default preset"]) / variants["default preset"].steps
    for name, v in variants.items():
        per_step = statistics.median(seconds[name]) / v.steps
        rate = v.flop / per_step / 1e9
        print(
            f"| {name} | {1e3 * per_step:.2f} | {100 * per_step / base:.0f} % | "
            f"{v.flop / 1e6:,.0f} | {rate:.1f} | {100 * rate / peak:.1f} % |"
        )


if __name__ == "__main__":
    main()

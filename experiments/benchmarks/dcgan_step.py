"""Seconds per DCGAN training step, by width and resolution, and where the time goes.

    python experiments/benchmarks/dcgan_step.py                      # widths 16 32 64 at 32x32
    python experiments/benchmarks/dcgan_step.py --widths 64 --resolution 64 --batch-size 128

For each width (ngf = ndf): one ``train_step`` of the DCGAN (latent 100, Adam, batch norm) on
random images, compiled first, then the median of ``--repeats`` timed steps; and, to show
which part costs, G's forward pass alone and with its backward pass (gradients of all its
parameters), D's likewise. On an accelerator the same command gives its numbers. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import optax

from jaxgan.models import DCGANDiscriminator, DCGANGenerator
from jaxgan.state import GANState, StepConfig
from jaxgan.step import train_step


def median_seconds(fn, *args, repeats: int) -> float:
    """Median wall time of ``fn(*args)`` after one untimed (compiling) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_seconds(width: int, resolution: int, channels: int, batch: int, repeats: int) -> float:
    """Median seconds of one full ``train_step`` (the state is carried from step to step)."""
    state = GANState.create(
        generator=DCGANGenerator(resolution, channels, width=width),
        discriminator=DCGANDiscriminator(resolution, width=width),
        g_tx=optax.adam(2e-4, b1=0.5),
        d_tx=optax.adam(2e-4, b1=0.5),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=100),
    )
    shape = (batch, resolution, resolution, channels)
    images = {"x": jax.random.uniform(jax.random.key(1), shape, minval=-1, maxval=1)}
    state, metrics = train_step(state, images)  # compiles
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = train_step(state, images)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def part_seconds(width: int, resolution: int, channels: int, batch: int, repeats: int) -> dict:
    """G's and D's forward, and forward + backward, passes in training mode."""
    g = DCGANGenerator(resolution, channels, width=width)
    d = DCGANDiscriminator(resolution, width=width)
    z = jax.random.normal(jax.random.key(0), (batch, 100))
    x = jax.random.uniform(jax.random.key(1), (batch, resolution, resolution, channels))
    g_vars = g.init(jax.random.key(2), z, train=False)
    d_vars = d.init(jax.random.key(3), x, train=False)

    def run(module, variables, inputs):
        return module.apply(variables, inputs, train=True, mutable=["batch_stats"])[0]

    def grads(module, variables, inputs):
        return jax.grad(lambda v: run(module, v, inputs).sum())(variables)

    timed = {
        "G forward": jax.jit(lambda v, i: run(g, v, i)),
        "G forward+backward": jax.jit(lambda v, i: grads(g, v, i)),
        "D forward": jax.jit(lambda v, i: run(d, v, i)),
        "D forward+backward": jax.jit(lambda v, i: grads(d, v, i)),
    }
    args = {"G": (g_vars, z), "D": (d_vars, x)}
    return {name: median_seconds(fn, *args[name[0]], repeats=repeats) for name, fn in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--resolution", type=int, default=32, choices=(32, 64, 96))
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{jax.devices()[0].device_kind}, {args.resolution}x{args.resolution}x{args.channels}, "
        f"batch {args.batch_size}, median of {args.repeats}\n"
    )
    print("| width | train_step (s) | G fwd | G fwd+bwd | D fwd | D fwd+bwd |")
    print("| --- | --- | --- | --- | --- | --- |")
    for width in args.widths:
        shape = (width, args.resolution, args.channels, args.batch_size)
        step = step_seconds(*shape, args.repeats)
        parts = part_seconds(*shape, args.repeats)
        cells = " | ".join(f"{seconds:.3f}" for seconds in parts.values())
        print(f"| {width} | {step:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()

"""Training throughput of jaxgan against the PyTorch reference, side by side in one process.

    python experiments/benchmarks/throughput.py            # ~5 min on 2 cores
    python experiments/benchmarks/throughput.py --quick    # under a minute

The MLP GAN of the MNIST job with the tutorial's settings (batch 100, Adam 2e-4, no EMA or
dropout: what ``experiments/reference/mnist_mlp_gan.py`` trains) on MNIST-sized random data,
four contenders, alternated round by round so a busy machine slows all of them alike:

- jaxgan, epoch as one program: ``train_epoch`` (a ``lax.scan`` over the epoch's steps);
- jaxgan, one ``train_step`` dispatched per Python iteration;
- PyTorch eager, the tutorial's loop over a shuffled DataLoader;
- PyTorch with both update steps under ``torch.compile``.

Reported: median steps/s over the rounds, the ratio to PyTorch eager, achieved GFLOP/s (from
the architecture: 2,844,672 multiply-adds per sample per iteration, derived in
:func:`mlp_macs_per_sample`) and its share of this machine's float32 matmul rate (a 2048²
matmul through JAX, best of several), and compile time (first call minus a steady call). Writes
Markdown and JSON to ``experiments/results/throughput_cpu.{md,json}`` (``--out`` prefix).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parents[1] / "reference"))
import mnist_mlp_gan as reference

from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.train import GANState, StepConfig, train_epoch, train_step

BATCH = 100
NUM_IMAGES = 6000  # 60 steps an epoch


def mlp_macs_per_sample() -> int:
    """Multiply-adds per sample of one iteration (a D update on a real and a fake batch, then a
    G update) of the 784-256-256-1 D and 64-256-256-784 G.

    D update: G forward for the fakes; D forward on real and fake; D backward on both: weight
    gradients (as many MACs as the forward) and input gradients of D's 2nd and 3rd layers (the
    1st layer's input needs none). G update: G forward, D forward, D backward for input
    gradients only, G backward (weight gradients, input gradients of its 2nd and 3rd layers).
    """
    d_fwd = 784 * 256 + 256 * 256 + 256
    g_fwd = 64 * 256 + 256 * 256 + 256 * 784
    d_inner_inputs = 256 * 256 + 256
    g_inner_inputs = 256 * 256 + 256 * 784
    d_update = g_fwd + 2 * d_fwd + 2 * (d_fwd + d_inner_inputs)
    g_update = g_fwd + d_fwd + d_fwd + (g_fwd + g_inner_inputs)
    return d_update + g_update


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def jaxgan_state() -> GANState:
    return GANState.create(
        generator=MLPGenerator((28, 28, 1), hidden=(256, 256), act="relu", out_act="tanh"),
        discriminator=MLPDiscriminator(hidden=(256, 256), act="leaky_relu"),
        g_tx=optax.adam(2e-4),
        d_tx=optax.adam(2e-4),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=64),
    )


class JaxEpoch:
    name = "jaxgan, epoch as one program"

    def __init__(self, images):
        self.state, self.data = jaxgan_state(), {"x": jnp.asarray(images)}

    def run(self, steps: int) -> None:  # whole epochs of 60 steps
        for _ in range(steps // (NUM_IMAGES // BATCH)):
            self.state, metrics = train_epoch(self.state, self.data, batch_size=BATCH)
        jax.block_until_ready(metrics)


class JaxStep:
    name = "jaxgan, one train_step per dispatch"

    def __init__(self, images):
        self.state = jaxgan_state()
        self.batches = [{"x": jnp.asarray(images[i : i + BATCH])} for i in range(0, 6000, BATCH)]

    def run(self, steps: int) -> None:
        for i in range(steps):
            self.state, metrics = train_step(self.state, self.batches[i % len(self.batches)])
        jax.block_until_ready(metrics)


class TorchLoop:
    name = "PyTorch eager"
    compile = False

    def __init__(self, images):
        self.trainer = reference.Trainer(compile=self.compile)
        self.loader = reference.loader((images + 1.0) * 127.5)
        self.batches = iter(())

    def run(self, steps: int) -> None:
        for _ in range(steps):
            try:
                (x,) = next(self.batches)
            except StopIteration:
                self.batches = iter(self.loader)
                (x,) = next(self.batches)
            self.trainer.step(x)


class TorchCompiled(TorchLoop):
    name = "PyTorch, torch.compile"
    compile = True


CONTENDERS = (JaxEpoch, JaxStep, TorchLoop, TorchCompiled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps (< 1 min)")
    parser.add_argument("--out", default="experiments/results/throughput_cpu")
    args = parser.parse_args()
    rounds, steps = (2, 120) if args.quick else (5, 600)
    images = np.random.default_rng(0).uniform(-1, 1, (NUM_IMAGES, 28, 28, 1)).astype(np.float32)

    contenders, compile_s = [], {}
    for cls in CONTENDERS:
        c = cls(images)
        first = _timed(lambda c=c: c.run(60))  # compiles (jit or torch.compile) and warms up
        steady = _timed(lambda c=c: c.run(60))
        compile_s[c.name] = max(first - steady, 0.0)
        contenders.append(c)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            rates[c.name].append(steps / _timed(lambda c=c: c.run(steps)))
    peak = matmul_gflops()
    flop_per_step = 2 * mlp_macs_per_sample() * BATCH
    eager = statistics.median(rates[TorchLoop.name])
    rows = []
    for c in contenders:
        rate = statistics.median(rates[c.name])
        gflops = rate * flop_per_step / 1e9
        rows.append(
            {
                "contender": c.name,
                "steps_per_s": round(rate, 1),
                "vs_pytorch_eager": round(rate / eager, 2),
                "gflop_per_s": round(gflops, 1),
                "share_of_matmul_peak": round(gflops / peak, 3),
                "compile_s": round(compile_s[c.name], 2),
            }
        )
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} JAX "
        f"CPU device(s), torch threads {reference.torch.get_num_threads()}",
        "mflop_per_step": flop_per_step / 1e6,
        "matmul_peak_gflop_per_s": round(peak, 1),
        "rounds": rounds,
        "steps_per_round": steps,
        "rows": rows,
    }
    lines = [
        f"MLP GAN, batch {BATCH}: {flop_per_step / 1e6:.0f} MFLOP per iteration; float32 matmul "
        f"peak {peak:.0f} GFLOP/s (2048², JAX); median of {rounds} rounds of {steps} steps.",
        "",
        "| contender | steps/s | × PyTorch eager | GFLOP/s | share of matmul peak | compile (s) |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['contender']} | {r['steps_per_s']} | {r['vs_pytorch_eager']} | "
            f"{r['gflop_per_s']} | {100 * r['share_of_matmul_peak']:.1f} % | {r['compile_s']} |"
            for r in rows
        ),
    ]
    print("\n".join(lines))
    if not args.quick:
        Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
        Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

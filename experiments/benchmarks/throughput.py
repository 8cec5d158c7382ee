"""Training throughput of jaxgan against the PyTorch references, side by side in one process.

    python experiments/benchmarks/throughput.py            # every model, ~20 min on 2 cores
    python experiments/benchmarks/throughput.py --quick    # the MLP rows only, under a minute
    python experiments/benchmarks/throughput.py --models dcgan32

Models, each with its contenders alternated round by round (so a busy machine slows all alike):

- ``mlp``: the MLP GAN of the MNIST job with the tutorial's settings (batch 100, Adam 2e-4, no
  EMA or dropout: what ``experiments/reference/mnist_mlp_gan.py`` trains) on MNIST-sized random
  data. Contenders: jaxgan's epoch as one program (``train_epoch``, a ``lax.scan``; in float32
  and in bfloat16), jaxgan dispatching one ``train_step`` per Python iteration, PyTorch eager
  (the tutorial's loop over a shuffled DataLoader), PyTorch with both updates under
  ``torch.compile``.
- ``dcgan32``, ``dcgan64``: the DCGAN tutorial's networks (ngf = ndf = 64, nz 100, batch 128,
  3 channels; ``experiments/reference/dcgan.py``, parameter counts checked equal to jaxgan's)
  on random images. Contenders: jaxgan one ``train_step`` per dispatch in float32 and in
  bfloat16 (what the DCGAN job runs on CPU: XLA:CPU runs convolutional steps inside a
  ``lax.scan`` slower), PyTorch eager, ``torch.compile``. The tutorial's step reuses D's fakes
  for G's update; jaxgan draws them again (one more G forward pass per iteration, counted in
  its FLOPs).

Reported: median steps/s over the rounds, the ratio to PyTorch eager, achieved GFLOP/s and its
share of this machine's matmul rate in the row's precision (a 2048² matmul through JAX, best of
several, in float32 and in bfloat16), compile time (first call minus a steady call), and peak
memory: the growth of the resident set of a fresh process from before the contender is built
to after a few steps (each contender measured in its own subprocess). FLOPs per iteration: the
MLP's from its architecture (2,844,672 multiply-adds per sample, :func:`mlp_macs_per_sample`),
the DCGAN's from XLA's cost analysis of jaxgan's compiled step. Writes Markdown and JSON to
``experiments/results/throughput_cpu.{md,json}`` (``--out`` prefix).

On a GPU (JAX's default backend ``gpu`` and ``torch.cuda`` available) both libraries train on
it, each with its own defaults: JAX's float32 matmuls and convolutions use TF32, PyTorch's
convolutions do and its matmuls do not. The rounds are longer there (:data:`GPU_ROUNDS`), the
peak is an 8192² matmul at JAX's default (TF32) precision, and PyTorch's steps are timed to
``torch.cuda.synchronize``. Peak memory is the host's resident set: pass ``--no-memory`` there.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from machine import cpu_flags, matmul_gflops, program_flops, torch_missing

sys.path.insert(0, str(Path(__file__).parents[1] / "reference"))
try:
    import dcgan as dcgan_reference
    import mnist_mlp_gan as reference
except ModuleNotFoundError as e:
    torch_missing(e, "bench")

from jaxgan.epoch import train_epoch
from jaxgan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, StepConfig
from jaxgan.step import train_step

BATCH = 100
ON_GPU = jax.default_backend() == "gpu" and reference.torch.cuda.is_available()
TORCH_DEVICE = "cuda" if ON_GPU else "cpu"
NUM_IMAGES = 6000  # 60 steps an epoch
DCGAN_BATCH, DCGAN_WIDTH = 128, 64


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


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def jaxgan_state(precision: str = "float32") -> GANState:
    return GANState.create(
        generator=MLPGenerator((28, 28, 1), hidden=(256, 256), act="relu", out_act="tanh"),
        discriminator=MLPDiscriminator(hidden=(256, 256), act="leaky_relu"),
        g_tx=optax.adam(2e-4),
        d_tx=optax.adam(2e-4),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=64),
        precision=precision,
    )


def dcgan_state(resolution: int, precision: str = "float32") -> GANState:
    return GANState.create(
        generator=DCGANGenerator(resolution, 3, width=DCGAN_WIDTH),
        discriminator=DCGANDiscriminator(resolution, width=DCGAN_WIDTH),
        g_tx=optax.adam(2e-4, b1=0.5),
        d_tx=optax.adam(2e-4, b1=0.5),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=dcgan_reference.NZ),
        precision=precision,
    )


def mlp_images() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (NUM_IMAGES, 28, 28, 1)).astype(np.float32)


def dcgan_images(resolution: int) -> np.ndarray:
    """Two batches of random images, NHWC, in [-1, 1]."""
    shape = (2 * DCGAN_BATCH, resolution, resolution, 3)
    return np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)


class JaxEpoch:
    name = "jaxgan, epoch as one program"
    precision = "float32"

    def __init__(self, images):
        self.state, self.data = jaxgan_state(self.precision), {"x": jnp.asarray(images)}

    def run(self, steps: int) -> None:  # whole epochs of 60 steps
        for _ in range(steps // (NUM_IMAGES // BATCH)):
            self.state, metrics = train_epoch(self.state, self.data, batch_size=BATCH)
        jax.block_until_ready(metrics)


class JaxEpochBF16(JaxEpoch):
    name = "jaxgan bfloat16, epoch as one program"
    precision = "bfloat16"


class JaxStep:
    name = "jaxgan, one train_step per dispatch"
    batch = BATCH
    precision = "float32"

    def __init__(self, images):
        self.state = self.make_state(images, self.precision)
        self.batches = [
            {"x": jnp.asarray(images[i : i + self.batch])}
            for i in range(0, len(images), self.batch)
        ]

    @staticmethod
    def make_state(images, precision) -> GANState:
        return jaxgan_state(precision)

    def run(self, steps: int) -> None:
        for i in range(steps):
            self.state, metrics = train_step(self.state, self.batches[i % len(self.batches)])
        jax.block_until_ready(metrics)


class JaxDCGANStep(JaxStep):
    batch = DCGAN_BATCH

    @staticmethod
    def make_state(images, precision) -> GANState:
        return dcgan_state(images.shape[1], precision)


class JaxDCGANStepBF16(JaxDCGANStep):
    name = "jaxgan bfloat16, one train_step per dispatch"
    precision = "bfloat16"


class TorchLoop:
    name = "PyTorch eager"
    compile = False

    def __init__(self, images):
        self.trainer = reference.Trainer(compile=self.compile, device=TORCH_DEVICE)
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
        synchronize()


class TorchCompiled(TorchLoop):
    name = "PyTorch, torch.compile"
    compile = True


class TorchDCGAN:
    name = "PyTorch eager"
    compile = False

    def __init__(self, images):
        self.trainer = dcgan_reference.Trainer(
            images.shape[1], 3, DCGAN_WIDTH, DCGAN_BATCH, compile=self.compile, device=TORCH_DEVICE
        )
        nchw = dcgan_reference.torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        self.batches = list(nchw.to(TORCH_DEVICE).split(DCGAN_BATCH))  # as jaxgan's, on device

    def run(self, steps: int) -> None:
        for i in range(steps):
            self.trainer.step(self.batches[i % len(self.batches)])
        synchronize()


class TorchDCGANCompiled(TorchDCGAN):
    name = "PyTorch, torch.compile"
    compile = True


def synchronize() -> None:
    """Waits for PyTorch's queued GPU work (its steps return before the GPU finishes)."""
    if ON_GPU:
        reference.torch.cuda.synchronize()


def dcgan_flop_per_step(resolution: int) -> float:
    """FLOPs of one jaxgan DCGAN iteration, from XLA's cost analysis of the compiled step."""
    state = dcgan_state(resolution)
    batch = {"x": jnp.asarray(dcgan_images(resolution)[:DCGAN_BATCH])}
    return program_flops(train_step.lower(state, batch))


def check_dcgan_parameter_counts(resolution: int) -> None:
    """The PyTorch reference and jaxgan's DCGAN have the same parameters, layer for layer."""
    g, d = dcgan_reference.build(resolution, 3, DCGAN_WIDTH, DCGAN_WIDTH)
    state = dcgan_state(resolution)
    ours = [sum(x.size for x in jax.tree.leaves(m.params)) for m in (state.g, state.d)]
    theirs = [dcgan_reference.parameter_count(m) for m in (g, d)]
    if ours != theirs:
        raise SystemExit(f"parameter counts differ: jaxgan {ours}, PyTorch {theirs}")


# name -> (title, images, contenders, FLOPs per iteration, (rounds, steps, warm-up steps))
MODELS = {
    "mlp": (
        "MLP GAN, batch 100",
        mlp_images,
        (JaxEpoch, JaxEpochBF16, JaxStep, TorchLoop, TorchCompiled),
        lambda: 2 * mlp_macs_per_sample() * BATCH,
        (5, 600, 60),
    ),
    "dcgan32": (
        "DCGAN 32×32×3, width 64, batch 128",
        lambda: dcgan_images(32),
        (JaxDCGANStep, JaxDCGANStepBF16, TorchDCGAN, TorchDCGANCompiled),
        lambda: dcgan_flop_per_step(32),
        (3, 3, 2),
    ),
    "dcgan64": (
        "DCGAN 64×64×3 (the tutorial's), width 64, batch 128",
        lambda: dcgan_images(64),
        (JaxDCGANStep, JaxDCGANStepBF16, TorchDCGAN, TorchDCGANCompiled),
        lambda: dcgan_flop_per_step(64),
        (3, 2, 1),
    ),
}
QUICK = {"mlp": (2, 120, 60)}
GPU_ROUNDS = {"dcgan32": (5, 200, 20), "dcgan64": (5, 100, 10)}  # the CPU's are ms on a GPU


def peak_memory_mb(model: str, contender: str, steps: int) -> float:
    """Peak resident-set growth (MB) of a fresh process that builds ``contender`` and trains
    ``steps`` steps: ``--probe`` of this script in a subprocess."""
    out = subprocess.run(
        [sys.executable, __file__, "--probe", model, contender, str(steps)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def probe(model: str, contender: str, steps: int) -> None:
    """Prints the resident-set growth (MB) from building ``contender`` to after ``steps``."""
    images = MODELS[model][1]()
    cls = next(c for c in MODELS[model][2] if c.__name__ == contender)
    before = _rss_mb("VmRSS")
    cls(images).run(steps)
    print(_rss_mb("VmHWM") - before)


def _rss_mb(field: str) -> float:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``) in MB, from
    /proc/self/status. (Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``exec``, so
    a subprocess would report its parent's peak.)"""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def measure(model: str, quick: bool, memory: bool) -> dict:
    """Times the model's contenders side by side; returns its section of the results."""
    title, make_images, classes, flop, (rounds, steps, warm) = MODELS[model]
    if quick:
        rounds, steps, warm = QUICK.get(model, (rounds, steps, warm))
    elif ON_GPU:
        rounds, steps, warm = GPU_ROUNDS.get(model, (rounds, steps, warm))
    if model.startswith("dcgan"):
        check_dcgan_parameter_counts(int(model[5:]))
    images = make_images()
    contenders, compile_s, failed = [], {}, {}
    for cls in classes:
        try:
            c = cls(images)
            first = _timed(lambda c=c: c.run(warm))  # compiles (jit or torch.compile), warms up
            steady = _timed(lambda c=c: c.run(warm))
        except Exception as e:  # a contender that fails is reported, the others still run
            failed[cls.name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        compile_s[c.name] = max(first - steady, 0.0)
        contenders.append(c)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            rates[c.name].append(steps / _timed(lambda c=c: c.run(steps)))
    flop_per_step = flop()
    eager = statistics.median(rates[TorchLoop.name])
    rows = [{"contender": name, "error": error} for name, error in failed.items()]
    for c in contenders:
        cls = type(c)
        rate = statistics.median(rates[c.name])
        rows.append(
            {
                "contender": c.name,
                "precision": getattr(cls, "precision", "float32"),
                "steps_per_s": round(rate, 3 if rate < 10 else 1),
                "vs_pytorch_eager": round(rate / eager, 2),
                "gflop_per_s": round(rate * flop_per_step / 1e9, 1),
                "compile_s": round(compile_s[c.name], 2),
                "peak_memory_mb": round(peak_memory_mb(model, cls.__name__, warm))
                if memory
                else None,
            }
        )
    return {
        "model": model,
        "title": title,
        "mflop_per_step": round(flop_per_step / 1e6, 1),
        "rounds": rounds,
        "steps_per_round": steps,
        "rows": rows,
    }


def table(section: dict, peaks: dict[str, float]) -> list[str]:
    """A section as Markdown; each row's share is of the matmul peak of its precision."""
    lines = [
        f"{section['title']}: {section['mflop_per_step']:,.0f} MFLOP per iteration; median of "
        f"{section['rounds']} rounds of {section['steps_per_round']} steps.",
        "",
        "| contender | steps/s | × PyTorch eager | GFLOP/s | share of matmul peak | "
        "compile (s) | peak memory (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        if "error" in r:
            lines.append(f"| {r['contender']} | failed: {r['error']} | | | | | |")
            continue
        memory = "—" if r["peak_memory_mb"] is None else r["peak_memory_mb"]
        share = 100 * r["gflop_per_s"] / peaks[r.get("precision", "float32")]
        lines.append(
            f"| {r['contender']} | {r['steps_per_s']} | {r['vs_pytorch_eager']} | "
            f"{r['gflop_per_s']} | {share:.1f} % | {r['compile_s']} | "
            f"{memory} |"
        )
    return [*lines, ""]


def remeasure_memory(out: str) -> None:
    """Fills the peak memory of every contender into the results at ``out`` (JSON and
    Markdown); memory does not depend on how busy the machine is."""
    result = json.loads(Path(f"{out}.json").read_text())
    for section in result["sections"]:
        classes = MODELS[section["model"]][2]
        warm = MODELS[section["model"]][4][2]
        for row in section["rows"]:
            if "error" not in row:
                cls = next(c for c in classes if c.name == row["contender"])
                row["peak_memory_mb"] = round(peak_memory_mb(section["model"], cls.__name__, warm))
    write(result, out)


def write(result: dict, out: str | None) -> None:
    """Prints the results as Markdown tables; with ``out``, writes them as Markdown and JSON."""
    peak = result["matmul_peak_gflop_per_s"]
    peaks = {"float32": peak, "bfloat16": result.get("matmul_peak_bf16_gflop_per_s")}
    bf16 = f", bfloat16 {peaks['bfloat16']:.0f} GFLOP/s" if peaks["bfloat16"] else ""
    lines = [
        f"{result['machine']}; {result.get('matmul_peak_precision', 'float32')} matmul peak "
        f"{peak:.0f} GFLOP/s{bf16} ({result.get('matmul_peak_n', 2048)}², JAX).",
        "",
        *(line for section in result["sections"] for line in table(section, peaks)),
    ]
    print("\n".join(lines))
    if out:
        Path(f"{out}.md").write_text("\n".join(lines))
        Path(f"{out}.json").write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the MLP only, fewer steps (< 1 min)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--out", default="experiments/results/throughput_cpu")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="measure only the peak memory, into the results already at --out",
    )
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe[0], args.probe[1], int(args.probe[2]))
        return
    if args.memory_only:
        remeasure_memory(args.out)
        return
    models = ["mlp"] if args.quick else args.models
    sections = [measure(m, args.quick, memory=not (args.quick or args.no_memory)) for m in models]
    n = 8192 if ON_GPU else 2048
    peak, peak_bf16 = matmul_gflops(n), matmul_gflops(n, jnp.bfloat16)
    result = {
        "machine": f"{platform.processor() or platform.machine()} ({cpu_flags()}), "
        f"{jax.device_count()} JAX "
        f"{jax.default_backend()} device(s) ({jax.devices()[0].device_kind}), PyTorch on "
        f"{TORCH_DEVICE}, torch threads {reference.torch.get_num_threads()}",
        "matmul_peak_gflop_per_s": round(peak, 1),
        "matmul_peak_bf16_gflop_per_s": round(peak_bf16, 1),
        "matmul_peak_n": n,
        "matmul_peak_precision": "TF32 (JAX's default on GPU)" if ON_GPU else "float32",
        "sections": sections,
    }
    write(result, None if args.quick else args.out)


if __name__ == "__main__":
    main()

"""The DCGAN training step under XLA:CPU's other paths: its flags, and convolutions left to
YNNPACK, side by side with jaxgan's default, as ratios.

    python experiments/benchmarks/xla_cpu_paths.py                 # 32x32 and 64x64, width 64
    python experiments/benchmarks/xla_cpu_paths.py --resolutions 32 --rounds 2

Each variant runs in its own process (XLA reads its flags once per process), the variants
interleaved round by round so that a shared machine's load falls on all of them alike; each
process times ``train_step`` as ``dcgan_step.py`` does (batch 128, 3 channels, median of 3
steps after the compiling one). The variants:

- ``default``: jaxgan as shipped, XLA's default flags (its matrix products go to YNNPACK).
- ``eigen dots``: YNNPACK off (``--xla_cpu_experimental_ynn_fusion_type=``), Eigen's products.
- ``xnnpack dots``: YNNPACK off, XNNPACK's dot fusions instead.
- ``fast math``, ``vector width 512``, ``concurrency scheduler``: the XLA:CPU flags of those
  names.
- ``ynn convolutions``: each 2×2 convolution of :func:`jaxgan.models.conv_valid`, forward and
  input gradient, as one ``lax.conv_general_dilated`` (NHWC by HWIO, which XLA:CPU hands to
  YNNPACK's convolution), the kernel gradient as jaxgan's products per tap.

The oneDNN flags (``--xla_cpu_use_onednn``, ``--xla_cpu_experimental_onednn_*``) are not among
them: the installed jaxlib is built without oneDNN, and they leave the compiled program
unchanged. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
from jax import lax

FLAGS = {
    "default": "",
    "eigen dots": "--xla_cpu_experimental_ynn_fusion_type=",
    "xnnpack dots": "--xla_cpu_experimental_ynn_fusion_type= "
    "--xla_cpu_experimental_xnn_fusion_type=dot",
    "fast math": "--xla_cpu_enable_fast_math=true",
    "vector width 512": "--xla_cpu_prefer_vector_width=512",
    "concurrency scheduler": "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "ynn convolutions": "",
}
NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=NHWC)


@jax.custom_vjp
def ynn_conv_valid(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """``conv_valid``'s value as one XLA convolution (YNNPACK's on XLA:CPU)."""
    return _conv(x, kernel)


def _forward(x, kernel):
    return _conv(x, kernel), (x, kernel)


def _backward(residuals, grad):
    """Input gradient: the "FULL" convolution of the output gradient with the flipped kernel,
    its channels swapped (one more YNNPACK convolution); kernel gradient per tap, a product of
    the flattened shifted view and output gradient."""
    x, kernel = residuals
    k = kernel.shape[0]
    padded = jnp.pad(grad, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
    grad_x = _conv(padded, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
    rows = grad.reshape((-1, grad.shape[-1]))
    h, w = grad.shape[1:3]
    taps = [
        x[:, a : a + h, b : b + w].reshape((-1, x.shape[-1])).T @ rows
        for a in range(k)
        for b in range(k)
    ]
    return grad_x, jnp.stack(taps).reshape(kernel.shape)


ynn_conv_valid.defvjp(_forward, _backward)


def child(variant: str, resolution: int, width: int) -> None:
    """Prints the median seconds of one train_step in this process's configuration."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dcgan_step import step_seconds

    import jaxgan.models

    patch = variant == "ynn convolutions"
    with mock.patch.object(jaxgan.models, "conv_valid", ynn_conv_valid) if patch else nullcontext():
        print(step_seconds(width, resolution, 3, 128, repeats=3))


def timed(variant: str, resolution: int, width: int) -> float:
    """One child process's median step seconds."""
    flags = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), FLAGS[variant]) if f)
    env = {**os.environ, "XLA_FLAGS": flags}
    command = [sys.executable, __file__, "--child", variant, "--resolutions", str(resolution)]
    out = subprocess.run(
        [*command, "--width", str(width)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64], choices=(32, 64))
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variants", nargs="+", default=list(FLAGS), choices=list(FLAGS), help="(default: all)"
    )
    parser.add_argument("--child", choices=list(FLAGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.resolutions[0], args.width)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import cpu_flags

    print(f"CPU flags: {cpu_flags()}; DCGAN width {args.width}, batch 128, 3 channels; "
          f"median of {args.rounds} rounds\n")  # fmt: skip
    variants = ["default"] + [v for v in args.variants if v != "default"]
    print(
        "| variant | " + " | ".join(f"{r}×{r} s/step | speed × default" for r in args.resolutions)
    )
    print("| --- |" + " --- | --- |" * len(args.resolutions))
    seconds = {(v, r): [] for v in variants for r in args.resolutions}
    for _ in range(args.rounds):
        for resolution in args.resolutions:
            for variant in variants:
                seconds[variant, resolution].append(timed(variant, resolution, args.width))
    for variant in variants:
        cells = []
        for resolution in args.resolutions:
            median = statistics.median(seconds[variant, resolution])
            base = statistics.median(seconds["default", resolution])
            cells.append(f"{median:.3f} | {base / median:.2f}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

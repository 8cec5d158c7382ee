"""Images per second of the FID Inception's feature extraction: jaxgan's Flax network against
the TorchScript module its weights come from, side by side in one process.

    python experiments/benchmarks/inception_throughput.py [--num 200] [--rounds 3]

needs ``pip install '.[inception]'``. Three contenders, alternated round by round (so a busy
machine slows all alike), each given uint8 images and returning 2048-d features:

- ``jaxgan 28x28x1``: :func:`jaxgan.inception.features` of MNIST-sized digits (the resize to
  299×299 and the channel replication run inside its compiled program);
- ``jaxgan 299x299x3``: the same of images already at the network's size (no resize);
- ``torch 299x299x3``: the TorchScript module (``torch.no_grad``, its default threads) on the
  same preprocessed input, batches of the same size.

Prints a Markdown table (median images/s, and GFLOP/s counting the FLOPs XLA's cost analysis
gives for the compiled 299×299×3 program) and the machine's CPU flags.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
from machine import cpu_flags, program_flops, torch_missing

from jaxgan import inception, inception_weights

try:
    import torch
except ModuleNotFoundError as e:
    torch_missing(e, "inception")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=200, help="images per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=inception.BATCH)
    args = parser.parse_args()
    params = inception_weights.load()
    module = torch.jit.load(str(inception_weights.wheel_weights()), map_location="cpu").eval()
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (args.num, 28, 28, 1), dtype=np.uint8)
    full = rng.integers(0, 256, (args.num, 299, 299, 3), dtype=np.uint8)
    torch_input = np.asarray(inception.network_input(full)).transpose(0, 3, 1, 2).copy()

    def torch_features():
        with torch.no_grad():
            for start in range(0, args.num, args.batch):
                module(torch.from_numpy(torch_input[start : start + args.batch]))

    contenders = {
        "jaxgan 28x28x1": lambda: inception.features(digits, params, batch=args.batch),
        "jaxgan 299x299x3": lambda: inception.features(full, params, batch=args.batch),
        "torch 299x299x3": torch_features,
    }
    for run in contenders.values():  # compile and warm up
        run()
    batch = full[: args.batch]
    flops_per_image = program_flops(inception.batch_features.lower(params, batch)) / len(batch)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    setting = f"{args.num} images x {args.rounds} rounds, batch {args.batch}"
    print(
        f"CPU flags: {cpu_flags()}; jax {jax.__version__} ({jax.default_backend()}), torch "
        f"{torch.__version__}; {setting}; {flops_per_image / 1e9:.2f} GFLOP per image"
    )
    print("| contender | images/s | GFLOP/s |")
    print("| --- | --- | --- |")
    for name, seconds in times.items():
        rate = args.num / statistics.median(seconds)
        print(f"| {name} | {rate:.1f} | {flops_per_image * rate / 1e9:.0f} |")


if __name__ == "__main__":
    main()

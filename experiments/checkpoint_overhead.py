"""What checkpointing every epoch costs the MNIST main job: no checkpoints, Orbax saves that
run in the background (what ``fit`` does), and saves waited for (synchronous), interleaved in
one process so that the machine's noise hits all three alike.

    python experiments/checkpoint_overhead.py --epochs 20 --repeats 3

Trains the default MNIST GAN (``jaxgan.experiments.mnist``) on 5,000 images (the real subset
when ``--data-dir`` has it, else random images of the same shape: timing does not depend on
the pixels) and prints seconds per epoch for each mode and its ratio to no checkpoints.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxgan import data
from jaxgan.checkpoint import Checkpointer
from jaxgan.epoch import train_epoch
from jaxgan.experiments import mnist
from jaxgan.trainer.config import create_state
from jaxgan.trainer.images import DIGIT_SHAPE

MODES = ("none", "async", "sync")


def images(data_dir: Path) -> np.ndarray:
    try:
        return data.load_idx(data_dir, "train")["image"][:5000]
    except data.DataError:
        return np.random.default_rng(0).integers(0, 256, (5000, *DIGIT_SHAPE), np.uint8)


def timed_epochs(mode: str, epochs: int, train_data, config: mnist.Config) -> float:
    """Seconds per epoch over ``epochs`` epochs (after a warm-up epoch), saving per ``mode``."""
    state, _ = create_state(config, *mnist.build_models(config), len(train_data["x"]))
    with tempfile.TemporaryDirectory() as workdir:
        checkpointer = Checkpointer(workdir)
        state, metrics = train_epoch(state, train_data, batch_size=config.batch_size)
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for _ in range(epochs):
            state, metrics = train_epoch(state, train_data, batch_size=config.batch_size)
            jax.device_get(metrics)  # as fit does: metrics come back every epoch
            if mode != "none":
                checkpointer.save(state, {"epoch": 0})
            if mode == "sync":
                checkpointer.wait()
        checkpointer.wait()  # the last background save counts too
        elapsed = time.perf_counter() - start
        checkpointer.close()
    return elapsed / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    args = parser.parse_args()
    config = mnist.Config()
    train_data = jax.device_put({"x": data.scale_images(images(args.data_dir))})
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            times[mode].append(timed_epochs(mode, args.epochs, train_data, config))
    base = np.median(times["none"])
    print(f"{jax.device_count()} {jax.devices()[0].platform} device(s), {args.epochs} epochs")
    print("| checkpoint every epoch | s / epoch (median) | ratio to none |")
    print("| --- | --- | --- |")
    for mode in MODES:
        median = float(np.median(times[mode]))
        print(f"| {mode} | {median:.3f} | {median / base:.3f} |")


if __name__ == "__main__":
    main()

"""Host memory and speed of a DCGAN run with its data in host memory against one streamed from
the disk cache (``--data-placement host`` vs ``stream``), on the same synthetic IDX dataset.

    python experiments/benchmarks/stream_memory.py                 # 100,000 images, ~16 min
    python experiments/benchmarks/stream_memory.py --num 20000     # quicker

The images (random 28×28 digits-shaped bytes, resized to ``--image-size``) are written as IDX
files to a temporary directory. Three runs, each a fresh process of the DCGAN experiment (two
epochs, narrow networks; the second epoch is timed): ``host``; ``stream`` building the
cache (decoding once); ``stream`` again, reading the cache. Reported per run: the peak of the
process's anonymous resident memory (``RssAnon``, sampled every 20 ms by a thread of the
process; not ``VmHWM``, which also counts the memory-mapped cache's pages, reclaimable page
cache that the kernel drops under pressure), the training steps per second from its
summary.json, and its wall time. Writes Markdown to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Runs the experiment while a thread samples this process's anonymous resident memory every
# 20 ms; reports its peak at exit.
LAUNCH = """
import atexit, sys, threading, time
from jaxgan.experiments import dcgan
peak = [0]
def rss_anon():
    status = open("/proc/self/status").read()
    return int(status.split("RssAnon:")[1].split()[0])
def sample():
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
atexit.register(lambda: print("peak_anon_kB", max(peak[0], rss_anon()), file=sys.stderr))
dcgan.main(sys.argv[1:])
"""


def write_idx(directory: Path, num: int, seed: int = 0) -> None:
    """``num`` random 28×28 uint8 images and labels as MNIST's training IDX files."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, num, dtype=np.uint8)
    directory.mkdir(parents=True)
    header = bytes([0, 0, 8, 3]) + np.array([num, 28, 28], ">u4").tobytes()
    (directory / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    header = bytes([0, 0, 8, 1]) + np.array([num], ">u4").tobytes()
    (directory / "train-labels-idx1-ubyte").write_bytes(header + labels.tobytes())


def run(argv: list[str], workdir: Path) -> dict:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, *argv, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the run failed:\n{result.stderr[-2000:]}")
    peak = int(result.stderr.split("peak_anon_kB")[1].split()[0]) / 1024
    summary = json.loads((workdir / "summary.json").read_text())
    return {"peak_mb": peak, "steps_per_s": summary["train_steps_per_s"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=100_000, help="training images")
    parser.add_argument("--image-size", type=int, default=64, choices=(32, 64, 96))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_idx(root / "idx", args.num)
        common = [
            "--dataset", "mnist", "--data-dir", str(root / "idx"),
            "--image-size", str(args.image_size), "--g-width", "4", "--d-width", "4",
            "--batch-size", str(args.batch_size), "--epochs", "2", "--eval-samples", "0",
            "--data-cache", str(root / "cache"),
        ]  # fmt: skip
        rows = {}
        for name, placement in (
            ("host", "host"),
            ("stream, building the cache", "stream"),
            ("stream, cache built", "stream"),
        ):
            workdir = root / f"run{len(rows)}"
            rows[name] = run([*common, "--data-placement", placement], workdir)
            print(name, rows[name], flush=True)

    size_mb = args.num * args.image_size**2 / 2**20
    lines = [
        f"{args.num:,} images at {args.image_size}×{args.image_size}×1 ({size_mb:.0f} MB as "
        f"uint8), DCGAN widths 4, batch {args.batch_size}, two epochs; "
        f"`python experiments/benchmarks/stream_memory.py --num {args.num}`",
        "",
        "| data | peak anonymous memory (MB) | train steps/s | wall (s) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['peak_mb']:.0f} | {r['steps_per_s']:.2f} | {r['wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()

"""The bad-input sweep: every user mistake we know of, run as a user runs it.

Each case is one command line (an experiment, ``jaxgan.generate`` or ``jaxgan.evaluate``) given
bad data, options, paths, checkpoints or a full disk. A case passes when the program exits with
status 2, its last line on stderr is one ``error:`` line, there is no traceback, and nothing
that existed before (the data, a trained run's files) was changed or deleted. Prints a markdown
table (``experiments/results/README.md`` keeps the latest) and exits 1 if any case fails.

    .venv/bin/python experiments/bad_input_sweep.py --mnist ../shared/data/mnist

The full-disk case mounts a 250 KB tmpfs, which needs root; elsewhere it is reported as skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
MIX = "jaxgan.experiments.mixture2d"
MNIST = "jaxgan.experiments.mnist"
DCGAN = "jaxgan.experiments.dcgan"
TOY = "jaxgan.experiments.gaussian1d"
TOY_RUN = ["--epochs", "2", "--num-train", "2000", "--hidden", "16", "16", "--eval-samples", "2000"]
RUN = " ".join(TOY_RUN)

# (category, case, module, arguments); {w} a fresh workdir, {run} a trained 1-D toy run, {bad}
# a copy of it with every checkpoint damaged, {data} MNIST's IDX folder, {trunc} and {magic}
# copies with a truncated / mislabelled file, {file} a regular file, {empty} an empty folder,
# {full} a workdir on a full disk.
CASES = [
    ("options", "unknown --loss", MIX, "--loss wgan-ish"),
    ("options", "--d-steps 0", MIX, "--d-steps 0"),
    ("options", "--batch-size 0", MIX, "--batch-size 0"),
    ("options", "--epochs two", MIX, "--epochs two"),
    ("options", "--lr-d 0", MIX, "--lr-d 0"),
    ("options", "--lr-d inf", MIX, "--lr-d inf"),
    ("options", "--lr-g nan", MIX, "--lr-g nan"),
    ("options", "--beta1 1", MIX, "--beta1 1"),
    ("options", "--ema-decay 1.5", MIX, "--ema-decay 1.5"),
    ("options", "--real-target 1 2 3", MIX, "--real-target 1 2 3"),
    ("options", "--real-target 1.2", MIX, "--real-target 1.2"),
    ("options", "--label-flip 0.9", MIX, "--label-flip 0.9"),
    ("options", "--label-flip with --loss hinge", MIX, "--label-flip 0.1 --loss hinge"),
    ("options", "--gp-weight -1", MIX, "--gp-weight -1"),
    ("options", "--r1-gamma nan", MIX, "--r1-gamma nan"),
    ("options", "--instance-noise -0.1", MIX, "--instance-noise=-0.1"),
    ("options", "--devices 99", MIX, "--devices 99"),
    ("options", "--keep-best fid:min", MIX, "--keep-best fid:min"),
    ("options", "--overwrite without --restart", MIX, "--overwrite"),
    ("options", "--monitor-window 0", MIX, "--monitor-window 0"),
    ("options", "--collapse-ratio 2", MIX, "--collapse-ratio 2"),
    ("options", "--g-hidden 0 4", MIX, "--g-hidden 0 4"),
    ("options", "--pack 3 with --batch-size 100", MIX, "--batch-size 100 --pack 3"),
    ("options", "fewer examples than a step", MIX, "--num-train 50 --batch-size 100"),
    ("options", "--eval-samples 5", MNIST, "--data-dir {data} --eval-samples 5"),
    ("options", "--keep-best fid_mnist:min without --eval-every 1", MNIST,
     "--data-dir {data} --keep-best fid_mnist:min"),
    ("options", "--dataset folder without --data-dir", DCGAN, "--dataset folder"),
    ("options", "--conditional on celeb_a", DCGAN, "--dataset celeb_a --conditional acgan"),
    ("options", "--image-size 48", DCGAN, "--image-size 48"),
    ("data", "--data-dir missing", MNIST, "--data-dir {w}/nowhere"),
    ("data", "--data-dir a file", MNIST, "--data-dir {file}"),
    ("data", "truncated IDX file", MNIST, "--data-dir {trunc}"),
    ("data", "IDX file with a wrong magic number", MNIST, "--data-dir {magic}"),
    ("data", "image folder without images", DCGAN, "--dataset folder --data-dir {empty}"),
    ("paths", "--workdir a file", TOY, "--workdir {file}"),
    ("paths", "--workdir under a file", TOY, "--workdir {file}/run"),
    ("paths", "generate --out x.txt", "jaxgan.generate", "--workdir {run} --out {w}/x.txt"),
    ("paths", "generate --npz without .npz", "jaxgan.generate", "--workdir {run} --npz {w}/s"),
    ("paths", "generate from a folder without a run", "jaxgan.generate",
     "--workdir {empty} --out {w}/x.png"),
    ("paths", "generate from a 1-D run (no images)", "jaxgan.generate",
     "--workdir {run} --out {w}/x.png"),
    ("paths", "evaluate a folder without a run", "jaxgan.evaluate", "--workdir {empty}"),
    ("checkpoints", "resume with another --seed", TOY, "--workdir {run} --seed 5 " + RUN),
    ("checkpoints", "resume with other widths", TOY, "--workdir {run} --epochs 2 --hidden 8 8"),
    ("checkpoints", "--restart without --overwrite", TOY, "--workdir {run} --restart " + RUN),
    ("checkpoints", "--epochs fewer than trained", TOY,
     "--workdir {run} --epochs 1 --num-train 2000 --hidden 16 16 --eval-samples 2000"),
    ("checkpoints", "every checkpoint damaged", TOY, "--workdir {bad} " + RUN),
    ("disk", "disk full during training", TOY,
     "--workdir {full} --epochs 30 --num-train 2000 --hidden 16 16 --eval-samples 2000 "
     "--checkpoint-every 1"),
]  # fmt: skip


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with a hash of its content."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        if root.exists()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def damage(checkpoint: Path) -> None:
    """64 random bytes written over the middle of the checkpoint's largest file."""
    largest = max((p for p in checkpoint.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    content = bytearray(largest.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 64] = os.urandom(64)
    largest.write_bytes(bytes(content))


def prepare(root: Path, mnist: Path) -> dict[str, str]:
    """The fixtures the cases name: data copies, a trained run, a damaged copy, a full disk."""
    places = {"data": mnist, "file": root / "a_file", "empty": root / "empty"}
    places["file"].write_text("not a folder")
    places["empty"].mkdir()
    for name, change in (("trunc", "truncate"), ("magic", "magic")):
        copy = shutil.copytree(mnist, root / name)
        images = next(copy.glob("train-images-idx3-ubyte*"))
        raw = images.read_bytes()
        if change == "truncate":
            images.write_bytes(raw[: len(raw) // 2])
        else:
            images.write_bytes(b"\x00\x00\x09\x03" + raw[4:])
        places[name] = copy
    run = root / "run"
    subprocess.run(
        [sys.executable, "-m", TOY, "--workdir", str(run), *TOY_RUN],
        env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    places["run"] = run
    bad = shutil.copytree(run, root / "bad")
    for checkpoint in (bad / "checkpoints").iterdir():
        damage(checkpoint)
    places["bad"] = bad
    disk = root / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=250k", "tmpfs", str(disk)]
    mounted = subprocess.run(mount, capture_output=True).returncode == 0
    places["full"] = disk / "run" if mounted else ""
    return {k: str(v) for k, v in places.items()}


def run_case(module: str, args: str, places: dict[str, str], workdir: Path) -> dict:
    argv = args.format(w=workdir, **places).split()
    if module != "jaxgan.generate" and module != "jaxgan.evaluate" and "--workdir" not in argv:
        argv = ["--workdir", str(workdir / "run"), *argv]
    protected = [Path(places[k]) for k in ("data", "run", "bad", "file", "empty")]
    before = snapshot(*protected)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv], capture_output=True, text=True, env=ENV, timeout=300
    )
    lines = proc.stderr.strip().splitlines()
    after = snapshot(*protected)
    # every file as it was; damaged checkpoints may move to checkpoints_corrupt/, intact
    aside = f"{places['bad']}/checkpoints/"
    kept = all(
        after.get(k) == v
        or (k.startswith(aside) and after.get(k.replace(aside, aside[:-1] + "_corrupt/")) == v)
        for k, v in before.items()
    )
    return {
        "status": proc.returncode,
        "line": lines[-1] if lines else "",
        "lines": len(lines),
        "traceback": "Traceback" in proc.stderr,
        "kept": kept,
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist", type=Path, default=Path("../shared/data/mnist"))
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        places = prepare(root, args.mnist.resolve())
        try:
            print("| # | category | case | exit | stderr's last line | ok |")
            print("| --- | --- | --- | --- | --- | --- |")
            for i, (category, case, module, case_args) in enumerate(CASES, 1):
                if "{full}" in case_args and not places["full"]:
                    print(f"| {i} | {category} | {case} | | skipped: no tmpfs (needs root) | |")
                    continue
                result = run_case(module, case_args, places, root / f"case{i}")
                ok = (
                    result["status"] == 2
                    and "error:" in result["line"]
                    and not result["traceback"]
                    and result["kept"]
                )
                failures += not ok
                line = result["line"].replace("|", "\\|")
                print(f"| {i} | {category} | {case} | {result['status']} | {line} | "
                      f"{'yes' if ok else '**no**'} |", flush=True)  # fmt: skip
        finally:
            if places["full"]:
                subprocess.run(["umount", "-l", str(root / "disk")], check=False)
    print(f"\n{len(CASES) - failures} of {len(CASES)} cases as promised")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

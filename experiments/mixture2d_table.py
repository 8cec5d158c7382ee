"""Runs `python -m jaxgan.experiments.mixture2d` on ring and grid for several seeds, two runs at a
time (one per core), and writes the results table beside PacGAN's Table 1 (Lin et al. 2018).

    python experiments/mixture2d_table.py --seeds 0 1 2 3 4 --out experiments/results/mixture2d.md

Extra options after `--` go to every run (e.g. `-- --pack 2`). Each run keeps its workdir under
`--runs` (default runs/mixture2d_table/<dataset>_seed<seed>); `--reuse` rebuilds the table from
the summaries already there instead of training again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# PacGAN Table 1 (mean of 10 runs): modes captured and high-quality fraction (%).
ANCHORS = [
    ("GAN (PacGAN Table 1)", "6.3", "98.2", "17.3", "94.8"),
    ("PacGAN2 (PacGAN Table 1)", "7.9", "95.6", "23.8", "91.3"),
    ("PacGAN4 (PacGAN Table 1)", "—", "—", "24.8", "93.6"),
]


def run(dataset: str, seed: int, runs: Path, extra: list[str], reuse: bool) -> dict:
    workdir = runs / f"{dataset}_seed{seed}"
    if reuse and (workdir / "summary.json").exists():
        return json.loads((workdir / "summary.json").read_text())
    cmd = [
        sys.executable,
        "-m",
        "jaxgan.experiments.mixture2d",
        "--dataset",
        dataset,
        "--seed",
        str(seed),
        "--workdir",
        str(workdir),
        *extra,
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((workdir / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["ring", "grid"])
    parser.add_argument("--runs", type=Path, default=Path("runs/mixture2d_table"))
    parser.add_argument("--out", type=Path, default=Path("experiments/results/mixture2d.md"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="use existing summaries")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    jobs = [(d, s) for d in args.datasets for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(
            zip(jobs, pool.map(lambda j: run(*j, args.runs, extra, args.reuse), jobs), strict=True)
        )

    lines = [
        "| dataset | seed | modes | high quality | reverse KL | steps | wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (dataset, seed), r in results.items():
        modes, hq = f"{r['modes']}/{r['num_modes']}", f"{100 * r['hq_fraction']:.1f} %"
        lines.append(
            f"| {dataset} | {seed} | {modes} | {hq} | {r['reverse_kl']:.4f} "
            f"| {r['steps']} | {r['wall_s']:.0f} |"
        )
    lines += [
        "",
        "| method | ring modes | ring HQ % | grid modes | grid HQ % |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines.append("| jaxgan (this table, mean) | " + " | ".join(_means(results)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in ANCHORS]
    table = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


def _means(results: dict) -> list[str]:
    """Mean modes and high-quality percentage per dataset, as table cells."""
    cells = []
    for name in ("ring", "grid"):
        rows = [r for (d, _), r in results.items() if d == name]
        if not rows:
            cells += ["—", "—"]
            continue
        cells.append(f"{sum(r['modes'] for r in rows) / len(rows):.1f}")
        cells.append(f"{100 * sum(r['hq_fraction'] for r in rows) / len(rows):.1f}")
    return cells


if __name__ == "__main__":
    main()

"""Resumable tables of experiment runs, shared by the table scripts beside it.

A table is a list of cells, each one run of a ``python -m jaxgan.experiments...`` job in its own
workdir. A cell's scores go into a JSON results file as soon as it finishes, so a table stopped
mid-way (a session ends) continues where it was: finished cells are never trained again, and the
cell in progress resumes from its workdir's checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable


def train_cell(
    module: str,
    key: str,
    *,
    root: str,
    data_dir: str,
    common: list[str],
    options: dict[str, list[str]],
    scores: tuple[str, ...],
) -> dict:
    """Trains (or resumes) the cell ``key`` ("name/seedS"): ``python -m module`` in
    ``root/name_seedS`` with ``--seed S``, the ``common`` options and the cell's own
    ``options[name]``; returns the ``scores`` its ``summary.json`` has, and under ``args`` the
    cell's own options. The run's stdout is dropped; its errors stop the table."""
    name, seed = key.split("/seed")
    workdir = os.path.join(root, f"{name}_seed{seed}")
    cmd = [sys.executable, "-m", module, "--data-dir", data_dir, "--workdir", workdir,
           "--seed", seed, *common, *options[name]]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    return {**{k: summary[k] for k in scores if k in summary}, "args": " ".join(options[name])}


def fill(
    path: str,
    keys: Iterable[str],
    train: Callable[[str], dict],
    line: Callable[[str, dict], str],
) -> dict:
    """Fills the results file ``path`` with ``train(key)`` (e.g. a :func:`train_cell`) for every
    key it lacks, in order,
    writing the file after each cell and printing ``line(key, cell)``; returns all results."""
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    for key in keys:
        if key in results:
            continue
        results[key] = train(key)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write("\n")
        print(line(key, results[key]), flush=True)
    return results

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


def run_summary(module: str, workdir: str, options: list[str]) -> dict:
    """Runs (or resumes) ``python -m module --workdir workdir *options`` and returns the run's
    ``summary.json``; its stdout is dropped, its errors stop the table."""
    cmd = [sys.executable, "-m", module, "--workdir", workdir, *options]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def fill(
    path: str,
    keys: Iterable[str],
    train: Callable[[str], dict],
    line: Callable[[str, dict], str],
) -> dict:
    """Fills the results file ``path`` with ``train(key)`` for every key it lacks, in order,
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

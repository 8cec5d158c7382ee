"""The files a run writes into its workdir (the contract of DESIGN.md).

``config.json`` (the resolved config), ``metrics.jsonl`` (one JSON object per log point),
``summary.json`` (final results), TensorBoard event files (``tb/``) and figures. A resumed run
continues the same files: log points after the checkpoint it resumes from are dropped first, so
every step is logged exactly once.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib.util
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from jaxgan.data import DataError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"  # Orbax's (jaxgan.checkpoint)
CORRUPT_DIR = "checkpoints_corrupt"  # unreadable checkpoints set aside
# Errors of the disk a run writes to: the user's to fix (space, quota, permissions, a
# read-only mount), reported as one line and exit status 2 like bad options.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
# Everything a run's training writes besides figures (which a new run overwrites).
RUN_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    "summary.json",
    "tb",
    "samples",
    CHECKPOINT_DIR,
    CORRUPT_DIR,
)


def experiment_module(name: str) -> str:
    """The module of the experiment that ``config.json`` names: one of jaxgan's built-in
    experiments by its bare name, else the name as it is (a user's own experiment module)."""
    if "." not in name and importlib.util.find_spec(f"jaxgan.experiments.{name}") is not None:
        return f"jaxgan.experiments.{name}"
    return name


def jsonable(value: Any) -> Any:
    """Converts numpy/JAX scalars and tuples to plain JSON values (non-finite floats to str)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def config_record(config: Any, experiment: str) -> dict[str, Any]:
    """What ``config.json`` holds for ``config``: its fields as JSON values and the experiment."""
    return jsonable({"experiment": experiment, **dataclasses.asdict(config)})


def read_config(workdir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.json`` of the run in ``workdir``, or None when there is none."""
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not readable JSON ({e}); move it away to start afresh") from e


def clear_run(workdir: str | os.PathLike) -> None:
    """Deletes what a run wrote into ``workdir`` (config, logs, checkpoints, samples); other
    files are left alone, and figures are rewritten by the next run."""
    for name in RUN_FILES:
        path = Path(workdir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _truncate_log(path: Path, last_step: int) -> None:
    """Keeps the log points of ``path`` up to ``last_step`` (and drops a torn last line)."""
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by a kill: it and anything after it are not kept
            if record["step"] > last_step:
                break
            kept.append(line + "\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


class RunWriter:
    """Writes a run's config, metrics, TensorBoard scalars/images and summary.

    Args:
      workdir: the run's directory (created if missing).
      config: the resolved config dataclass, written to ``config.json``.
      experiment: the experiment's module name, recorded so tools can rebuild its models.
      resume_step: when resuming from a checkpoint at this step, the log points after it are
        dropped from metrics.jsonl and hidden in TensorBoard (its ``purge_step``), and logging
        continues after them; None starts the logs afresh.
      enabled: False in the processes of a multi-host run other than the first: everything
        goes to a scratch directory that is deleted on :meth:`close`.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        config: Any,
        experiment: str,
        resume_step: int | None = None,
        enabled: bool = True,
    ):
        from jaxgan.tensorboard import EventWriter  # deferred: only runs that write need it

        if not enabled:  # another process of a multi-host run writes the files
            self._scratch = tempfile.TemporaryDirectory()
            workdir, resume_step = self._scratch.name, None
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / CONFIG_FILE, config_record(config, experiment))
        metrics = self.dir / METRICS_FILE
        if resume_step is None:
            self._metrics = open(metrics, "w")
            self._tb = EventWriter(self.dir / "tb")
        else:
            _truncate_log(metrics, resume_step)
            self._metrics = open(metrics, "a")
            self._tb = EventWriter(self.dir / "tb", purge_step=resume_step + 1)

    def path(self, *parts: str) -> Path:
        """A path inside the workdir, its parent directories created."""
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Appends one log point to metrics.jsonl and TensorBoard."""
        record = {"step": int(step), **jsonable(metrics)}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        for name, value in metrics.items():
            if np.ndim(value) == 0:
                self._tb.add_scalar(name, float(value), int(step))

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Adds an ``[H, W, C]`` uint8 image to TensorBoard."""
        self._tb.add_image(tag, image, int(step))

    def summary(self, summary: dict[str, Any]) -> None:
        """Writes summary.json."""
        write_json(self.dir / "summary.json", summary)

    def close(self) -> None:
        self._metrics.close()
        self._tb.close()
        if hasattr(self, "_scratch"):
            self._scratch.cleanup()

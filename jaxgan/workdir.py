"""The files a run writes into its workdir (the contract of DESIGN.md).

``config.json`` (the resolved config), ``metrics.jsonl`` (one JSON object per log point),
``summary.json`` (final results), TensorBoard event files (``tb/``) and figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def _jsonable(value: Any) -> Any:
    """Converts numpy/JAX scalars and tuples to plain JSON values (non-finite floats to str)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class RunWriter:
    """Writes a run's config, metrics, TensorBoard scalars/images and summary.

    Args:
      workdir: the run's directory (created if missing).
      config: the resolved config dataclass, written to ``config.json``.
      experiment: the experiment's module name, recorded so tools can rebuild its models.
    """

    def __init__(self, workdir: str | os.PathLike, config: Any, experiment: str):
        from tensorboardX import SummaryWriter  # deferred: only runs that write need it

        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(
            self.dir / "config.json", {"experiment": experiment, **dataclasses.asdict(config)}
        )
        self._metrics = open(self.dir / "metrics.jsonl", "w")
        self._tb = SummaryWriter(str(self.dir / "tb"))

    def path(self, *parts: str) -> Path:
        """A path inside the workdir, its parent directories created."""
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Appends one log point to metrics.jsonl and TensorBoard."""
        record = {"step": int(step), **_jsonable(metrics)}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        for name, value in metrics.items():
            if np.ndim(value) == 0:
                self._tb.add_scalar(name, float(value), int(step))

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Adds an ``[H, W, C]`` uint8 image to TensorBoard."""
        self._tb.add_image(tag, image, int(step), dataformats="HWC")

    def summary(self, summary: dict[str, Any]) -> None:
        """Writes summary.json."""
        write_json(self.dir / "summary.json", summary)

    def close(self) -> None:
        self._metrics.close()
        self._tb.close()

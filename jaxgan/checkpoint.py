"""A thin layer over Orbax: a run's whole training state in ``<workdir>/checkpoints``.

A checkpoint has two items: ``state``, the :class:`~jaxgan.state.GANState` (both TrainStates with
their optimizer states and batch-norm statistics, the EMA parameters, the PRNG key and the step;
the data order is a function of the key and the step, so it is restored with them), and
``progress``, a small JSON dict the training loop keeps on the host (epoch, wall time, the last
logged metrics, ...). Saving is asynchronous: :meth:`Checkpointer.save` returns once the arrays
are copied off the device and the files are written in the background. Orbax writes each step
into a temporary directory and renames it when complete, and removes old steps only after that,
so the last good checkpoint always survives a crash.

Each checkpoint records a SHA-256 digest of its arrays (:func:`digest`), checked on restore:
bytes damaged on disk that Orbax still reads are caught too. Restoring walks back from the
newest step: a checkpoint whose files are unreadable (truncated, corrupt) or whose arrays fail
their digest is reported, moved to ``<workdir>/checkpoints_corrupt/`` (kept for inspection,
out of Orbax's way) and skipped; one whose arrays do not fit the model is an error, not
corruption.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import hashlib
import logging
import operator
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgan.data import DataError
from jaxgan.losses import GANLoss
from jaxgan.parallel import is_primary, sync_processes
from jaxgan.workdir import CHECKPOINT_DIR, CORRUPT_DIR, DISK_ERRORS


@contextlib.contextmanager
def _quiet_logs():
    """Silences Orbax's own logs (absl, asyncio) while opening and probing checkpoints: a
    broken one is reported once, as one line, by :meth:`Checkpointer.restore`."""
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _disk_errors(directory: Path):
    """Orbax's and TensorStore's errors of a failing disk (``ValueError: RESOURCE_EXHAUSTED
    ... [os_error_code='28']``) as the ``OSError`` they are, naming ``directory``."""
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        code = re.search(r"os_error_code='(\d+)'", str(e))
        if code is None or int(code[1]) not in DISK_ERRORS:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(directory)) from e


def _without_orbax_errors(record: logging.LogRecord) -> bool:
    """A log filter that drops Orbax's error reports (with tracebacks, from its background
    threads and again from ``wait_until_finished``) of a failed asynchronous save: Orbax
    raises the same error to the caller of :meth:`Checkpointer.save` or
    :meth:`~Checkpointer.wait`, which reports it once (as one line, for a full disk)."""
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def _handlers() -> dict[str, ocp.CheckpointHandler]:
    return {"state": ocp.StandardCheckpointHandler(), "progress": ocp.JsonCheckpointHandler()}


def _path_name(path) -> str:
    """``g/params/Dense_0/kernel`` for a key path, whether attributes, dict keys or indices."""
    parts = (getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))) for k in path)
    return "/".join(str(p) for p in parts)


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    """Each array leaf's path and shape; PRNG keys as their raw ``uint32`` data."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.eval_shape(jax.random.key_data, leaf)
        out[_path_name(path)] = tuple(np.shape(leaf))
    return out


def _mismatch(stored, target) -> str | None:
    """How the checkpoint's arrays differ from the model's, or None when they fit."""
    have, want = _shapes(stored), _shapes(target)
    if missing := sorted(want.keys() - have.keys()):
        return f"the model has {len(missing)} arrays the checkpoint lacks, e.g. {missing[0]}"
    if extra := sorted(have.keys() - want.keys()):
        return f"the checkpoint has {len(extra)} arrays the model lacks, e.g. {extra[0]}"
    for name, shape in want.items():
        if have[name] != shape:
            return f"{name} has shape {have[name]} in the checkpoint, {shape} in the model"
    return None


class Checkpointer:
    """Saves and restores one run's checkpoints.

    Args:
      workdir: the run's directory; checkpoints live in ``<workdir>/checkpoints``.
      keep: how many of the newest checkpoints to keep.
      best_metric: also keep the checkpoint with the best value of this metric (one of the
        ``metrics`` passed to :meth:`save`), or None.
      best_mode: ``"max"`` or ``"min"``: which value of ``best_metric`` is best.
      create: create the directory; False only reads (``python -m jaxgan.generate``).
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        keep: int = 3,
        best_metric: str | None = None,
        best_mode: str = "max",
        create: bool = True,
    ):
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / CHECKPOINT_DIR
        logging.getLogger("absl").addFilter(_without_orbax_errors)  # added once
        policies: list[Any] = [ocp.checkpoint_managers.LatestN(keep)]
        best_fn = None
        if best_metric is not None:
            best_fn = operator.itemgetter(best_metric)
            policies.append(
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=best_fn,
                    reverse=best_mode == "min",
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        with _quiet_logs():  # read-only mode logs warnings about the options it adjusts
            self._options = ocp.CheckpointManagerOptions(
                best_fn=best_fn,  # Orbax stores each step's metrics only with a best_fn
                best_mode=best_mode,
                create=create,
                read_only=not create,
                cleanup_tmp_directories=create,  # what a killed save left half-written
                preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            )
            self._manager = ocp.CheckpointManager(
                self.directory, options=self._options, item_handlers=_handlers()
            )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(
        self,
        step: int,
        state: Any,
        progress: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Starts saving ``state`` (any pytree) and ``progress`` (a JSON-able dict, optional)
        under ``step``; returns before the files are written (:meth:`wait` waits for them).
        ``metrics`` rank it for ``best_metric``. The state's static step settings are recorded
        with it (:func:`settings`). Every process of a multi-host run calls it; Orbax writes
        each array once. The dicts are copied: the caller goes on changing its own while the
        files are written.
        """
        self._check_space(state)
        record = {
            **copy.deepcopy(progress or {}),
            SETTINGS_KEY: settings(state),
            DIGEST_KEY: digest(state),
        }
        with _disk_errors(self.directory):
            self._manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    progress=ocp.args.JsonSave(record),
                ),
                metrics=copy.deepcopy(metrics),
            )

    def _check_space(self, state: Any) -> None:
        """Refuses a save the disk has no room for before Orbax starts it: a save that fails
        half-way stops with the same error, but its writes still in flight then print pages of
        tracebacks from a closed event loop."""
        arrays = sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state))
        needed = arrays + SAVE_OVERHEAD
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise OSError(
                errno.ENOSPC,
                f"No space left on device ({free // 1024} KiB free, a checkpoint needs about "
                f"{needed // 1024} KiB)",
                str(self.directory),
            )

    def wait(self) -> None:
        """Blocks until every started save is complete on disk.

        Raises:
          OSError: a save failed for want of space or permission (an earlier save's failure
            surfaces at the next save or wait).
        """
        with _disk_errors(self.directory):
            self._manager.wait_until_finished()

    def close(self) -> None:
        with _disk_errors(self.directory):
            self._manager.close()

    def restore(
        self, target: Any, report: Callable[[str], None] = print, *, check_settings: bool = True
    ) -> tuple[Any, dict[str, Any]] | None:
        """The newest readable checkpoint as ``(state, progress)``, or None when there is none.

        ``target`` is a state of the model being trained (concrete or from ``jax.eval_shape``);
        its structure, shapes and shardings are restored into. Unreadable checkpoints are moved
        aside with a line to ``report``.

        Raises:
          DataError: a readable checkpoint does not fit ``target`` (a different architecture),
            or (``check_settings``) was written by a step with other static settings (naming
            them; the trainer checks its options itself, knowing which may change on resume).
        """
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                with _quiet_logs():
                    stored = self._manager.item_metadata(step)["state"]
                problem = _mismatch(stored, target)
            except Exception as e:  # any failure to read: a broken step
                self._set_aside(step, e, report)
                continue
            if problem is not None:
                raise DataError(
                    f"the checkpoint at step {step} in {self.directory} does not fit this model: "
                    f"{problem}; use the options it was trained with, or another --workdir"
                )
            try:
                with _quiet_logs():
                    restored = self._manager.restore(
                        step,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardRestore(target),
                            progress=ocp.args.JsonRestore(),
                        ),
                    )
            except Exception as e:  # it fits, so its data are damaged
                self._set_aside(step, e, report)
                continue
            progress = dict(restored["progress"])
            stored_digest = progress.pop(DIGEST_KEY, None)  # None: saved before digests
            if stored_digest is not None and digest(restored["state"]) != stored_digest:
                reason = "its arrays do not match the SHA-256 digest saved with them"
                self._set_aside(step, ValueError(reason), report)
                continue
            stored_settings = progress.pop(SETTINGS_KEY, None)
            if check_settings and stored_settings is not None:
                _check_settings(stored_settings, settings(target), step, self.directory)
            return restored["state"], progress
        return None

    def _set_aside(self, step: int, error: Exception, report: Callable[[str], None]) -> None:
        reason = _reason(error)
        if self._options.read_only:
            report(f"checkpoint at step {step} is unreadable ({reason}); skipping it")
            return
        dest = self.workdir / CORRUPT_DIR / str(step)
        if is_primary():  # every process found it broken; one moves it
            if dest.exists():
                shutil.rmtree(dest)
            dest.parent.mkdir(exist_ok=True)
            shutil.move(self.directory / str(step), dest)
        sync_processes(f"set_aside_{step}")
        report(
            f"checkpoint at step {step} is unreadable ({reason}); moved it to {dest} and skipped it"
        )
        self._manager.reload()


def _reason(error: Exception) -> str:
    """A readable line of why a checkpoint could not be read: the error's first line without
    the object reprs (``<bound method ...>``) that TensorStore's errors carry."""
    line = (str(error).strip().splitlines() or [""])[0]
    line = re.sub(r"\s+", " ", re.sub(r"<[^<>]*>|\[source locations=.*", "", line)).strip(" :;,")
    return f"{type(error).__name__}: {line[:160]}" if line else type(error).__name__


SAVE_OVERHEAD = 256 * 1024  # a checkpoint's metadata files beside its arrays, and headroom
SETTINGS_KEY = "step_settings"  # in the progress item: the state's static settings
DIGEST_KEY = "arrays_sha256"  # in the progress item: the digest of the state's arrays


def digest(state: Any) -> str:
    """The SHA-256 of ``state``'s arrays: each leaf's dtype and bytes in tree order (PRNG keys
    as their data; of a replicated array one copy, so every process of a run computes the
    same). It changes with any byte of the arrays."""
    hashed = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        if isinstance(leaf, jax.Array):
            leaf = leaf.addressable_shards[0].data
        array = np.ascontiguousarray(np.asarray(leaf))
        hashed.update(str(array.dtype).encode())
        hashed.update(array.tobytes())
    return hashed.hexdigest()


def _describe(value) -> Any:
    """A JSON-able, process-independent description of a static setting."""
    if isinstance(value, tuple | list):
        return [_describe(v) for v in value]
    if isinstance(value, GANLoss):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__name__, **fields}
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    return value if isinstance(value, bool | int | float | str | type(None)) else repr(value)


def settings(state: Any) -> dict[str, Any]:
    """The static step settings of ``state`` (its ``config`` dataclass, if it has one)."""
    config = getattr(state, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return {}
    return {f.name: _describe(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _check_settings(stored: dict, current: dict, step: int, directory: Path) -> None:
    differ = [
        f"{name} {stored.get(name)!r} -> {current.get(name)!r}"
        for name in sorted(stored.keys() | current.keys())
        if stored.get(name) != current.get(name)
    ]
    if differ:
        raise DataError(
            f"the checkpoint at step {step} in {directory} was trained with other step "
            f"settings ({'; '.join(differ)}); restore it into a state built with its settings"
        )


def restore_latest(workdir: str | os.PathLike, target: Any) -> Any:
    """The newest readable checkpoint's state, read-only (for sampling from a trained run)."""
    directory = Path(workdir) / CHECKPOINT_DIR
    if not directory.is_dir():
        raise DataError(f"{workdir} has no {CHECKPOINT_DIR}/; train a model there first")
    checkpointer = Checkpointer(workdir, create=False)
    try:
        restored = checkpointer.restore(
            target, report=lambda line: print(line, file=sys.stderr), check_settings=False
        )
    finally:
        checkpointer.close()
    if restored is None:
        raise DataError(f"{directory} holds no readable checkpoint; train a model there first")
    return restored[0]

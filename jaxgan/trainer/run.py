"""A workdir opened for training: fresh, or resumed from its newest checkpoint, with the devices
that split each batch; a context manager that closes its writers and checkpoints however the
run ends.

    with open_experiment(config, NAME, build_models, len(images)) as run:  # or open_run
        state, summary = fit(run, {"x": images}, on_epoch=...)  # resumes from a checkpoint
        ...                                      # final evaluation, figures, run.writer.summary
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxgan.checkpoint import Checkpointer
from jaxgan.cli import PATH_OPTIONS, UsageError, flag, same_path
from jaxgan.data import DataError
from jaxgan.parallel import (
    AXIS,
    data_mesh,
    host_local,
    is_primary,
    process_rows,
    replicated,
    sync_processes,
    to_global,
)
from jaxgan.trainer.config import TrainConfig, create_state
from jaxgan.workdir import (
    CHECKPOINT_DIR,
    CORRUPT_DIR,
    RunWriter,
    clear_run,
    config_record,
    read_config,
)


@dataclasses.dataclass
class Progress:
    """What the training loop keeps on the host and checkpoints with the state (as JSON).

    Attributes:
      epoch: epochs completed.
      wall_s: training time over all sessions.
      timed_steps, timed_s: steps and time for the throughput (compilation excluded).
      last: the latest logged values.
      pending: per-step metrics not yet logged (a log window can span a checkpoint).
      monitor: the health monitor's counts, best evaluation and warnings.
      unlogged_warnings: warnings not yet written to a log point.
    """

    epoch: int = 0
    wall_s: float = 0.0
    timed_steps: int = 0
    timed_s: float = 0.0
    last: dict[str, Any] = dataclasses.field(default_factory=dict)
    pending: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    monitor: dict[str, Any] = dataclasses.field(default_factory=dict)
    unlogged_warnings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def count(self, steps: int, seconds: float, *, timed: bool) -> None:
        """Adds a dispatch of ``steps`` that took ``seconds``; ``timed``: it counts for the
        throughput (a session's first dispatch includes compilation and does not)."""
        self.wall_s += seconds
        if timed:
            self.timed_steps += steps
            self.timed_s += seconds

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Progress:
        """From a checkpoint's record (one written before a field existed has its default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclasses.dataclass
class Run:
    """A workdir opened for training.

    Attributes:
      config: the run's config.
      writer: its config/metrics/TensorBoard/summary writer.
      checkpointer: its checkpoints.
      state: the state to train from: initial, or restored from the latest checkpoint; a
        local copy in this process (``fit`` places it on the mesh).
      progress: what the loop keeps on the host and checkpoints with the state.
      mesh: the devices that split each batch (None: one device).
    """

    config: TrainConfig
    writer: RunWriter
    checkpointer: Checkpointer
    state: Any
    progress: Progress
    mesh: Mesh | None = None

    def close(self) -> None:
        self.checkpointer.close()
        self.writer.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
            return
        # the run is ending with an error (a full disk, ...): closing must not hide it
        for close in (self.checkpointer.close, self.writer.close):
            with contextlib.suppress(Exception):
                close()


def report(line: str) -> None:
    """A line on stderr from the primary process."""
    if is_primary():
        print(line, file=sys.stderr, flush=True)


def _changed_fields(previous: dict[str, Any], config: TrainConfig, experiment: str) -> list[str]:
    """The options, unsafe to change on resume, whose values differ from the earlier run's.

    An option the earlier run's jaxgan did not have yet counts as its default."""
    current = config_record(config, experiment)
    defaults = config_record(type(config)(), experiment)
    changed = []
    for name in sorted(previous.keys() | current.keys()):
        before = previous.get(name, defaults.get(name))
        after = current.get(name)
        if name in config.RESUME_SAFE or before == after:
            continue
        if name in PATH_OPTIONS and same_path(before, after):  # another spelling
            continue
        label = "experiment" if name == "experiment" else f"--{flag(name)}"
        changed.append(f"{label} {before!r} -> {current.get(name)!r}")
    return changed


def choose_devices(config: TrainConfig) -> int:
    """How many devices split each minibatch: ``--devices``, or (0) all of them, or the most
    that divide the batch. Each device's share must be a whole multiple of
    ``config.device_share_unit()``.

    Raises:
      UsageError: ``--devices`` exceeds the devices present or does not divide the batch
        (naming the valid values).
    """
    available, unit = jax.device_count(), config.device_share_unit()
    valid = [n for n in range(1, available + 1) if config.batch_size % (n * unit) == 0]
    if config.devices == 0:
        if valid[-1] < available:
            report(
                f"training on {valid[-1]} of the {available} devices: the most that divide "
                f"--batch-size {config.batch_size}" + (f" into packs of {unit}" if unit > 1 else "")
            )
        return valid[-1]
    if config.devices not in valid:
        reason = (
            f"only {available} are present"
            if config.devices > available
            else f"it does not divide --batch-size {config.batch_size}"
            + (f" into packs of {unit}" if unit > 1 else "")
        )
        raise UsageError(
            f"--devices {config.devices} cannot be used: {reason}; valid values: "
            f"{', '.join(map(str, valid))} (or 0 for the most)"
        )
    return config.devices


def open_experiment(
    config: TrainConfig,
    experiment: str,
    build_models: Callable[..., tuple[Any, Any]],
    num_examples: int,
    num_devices: int | None = None,
    example_batch: dict | None = None,
) -> Run:
    """The run set-up every experiment shares: the devices (:func:`choose_devices`, unless
    given), ``build_models(config, axis_name)`` for them, the initial state for
    ``num_examples`` training examples (initialised on ``example_batch`` when G takes its
    input from the batch), and the opened (possibly resumed) run."""
    devices = num_devices or choose_devices(config)
    models = build_models(config, model_axis(devices))
    state, _ = create_state(config, *models, num_examples, example_batch)
    return open_run(config, experiment, state, num_devices=devices)


def model_axis(num_devices: int) -> str | None:
    """The ``axis_name`` to build models with for ``num_devices``: the data axis when the batch
    is split (so batch norm, minibatch statistics and dropout see the global batch), else None
    (one device computes the same without collectives)."""
    return AXIS if num_devices > 1 else None


def load_rows(
    num_devices: int,
    load: Callable[[slice | None], dict[str, np.ndarray]],
    count: Callable[[], int],
) -> tuple[dict[str, np.ndarray], int]:
    """This process's rows of a dataset, and the dataset's size.

    With one process, ``load(None)`` reads everything. With several, each reads only the rows
    of its devices' shards (:func:`jaxgan.parallel.process_rows`): ``count()`` gives the size
    (from file headers or dataset metadata), ``load(rows)`` reads that slice. Pass both results
    on to :func:`fit` (``num_examples``).
    """
    if jax.process_count() == 1:
        loaded = load(None)
        return loaded, len(next(iter(loaded.values())))
    num_examples = count()
    rows = process_rows(data_mesh(num_devices), num_examples)
    print(
        f"process {jax.process_index()} reads examples {rows.start}:{rows.stop} of {num_examples}",
        file=sys.stderr,
        flush=True,
    )
    return load(rows), num_examples


def open_run(
    config: TrainConfig, experiment: str, state: Any, num_devices: int | None = None
) -> Run:
    """Opens ``config.workdir`` to train ``state``'s model, resuming when it holds a checkpoint.

    ``num_devices`` is :func:`choose_devices`' answer, when the caller needed it first (to
    build models whose batch norm spans the devices).

    Raises:
      UsageError: the workdir holds a run of another config (naming the fields that differ),
        or ``--restart`` would discard a run without ``--overwrite``, or ``--epochs`` is fewer
        than the run has already trained.
      DataError: its checkpoint does not fit the model.
    """
    num_devices = num_devices or choose_devices(config)
    mesh = data_mesh(num_devices) if num_devices > 1 else None
    workdir = Path(config.workdir)
    previous = read_config(workdir)
    exists = previous is not None or any((workdir / CHECKPOINT_DIR).glob("*"))
    if config.restart:
        if exists and not config.overwrite:
            raise UsageError(
                f"{workdir} holds a run; --restart discards it only with --overwrite "
                f"(or choose another --workdir)"
            )
        if is_primary():
            clear_run(workdir)
        sync_processes("clear_run")
    elif previous is not None and (changed := _changed_fields(previous, config, experiment)):
        raise UsageError(
            f"{workdir} holds a run with other options ({'; '.join(changed)}); rerun with its "
            f"options to resume it, or use another --workdir, or --restart --overwrite"
        )
    best_metric, best_mode = config.best_checkpoint_metric()
    checkpointer = Checkpointer(
        workdir, keep=config.keep_checkpoints, best_metric=best_metric, best_mode=best_mode
    )
    target = state if mesh is None else to_global(state, replicated(mesh))
    try:
        # the options were checked against config.json, which knows what may change
        restored = checkpointer.restore(target, report=report, check_settings=False)
    except DataError:
        checkpointer.close()
        raise
    if restored is None and any((workdir / CORRUPT_DIR).glob("*")):
        checkpointer.close()
        raise UsageError(
            f"no checkpoint in {workdir} is readable (the unreadable ones are in "
            f"{workdir / CORRUPT_DIR}): nothing to resume, and the run's files are kept; "
            "--restart --overwrite starts afresh"
        )
    progress = Progress()
    resume_step = None
    if restored is not None:
        state, progress = host_local(restored[0]), Progress.from_json(restored[1])
        resume_step = int(state.step)
        if progress.epoch > config.epochs:
            checkpointer.close()
            raise UsageError(
                f"the run in {workdir} has trained {progress.epoch} epochs already, more "
                f"than --epochs {config.epochs}; give --epochs >= {progress.epoch}"
            )
        if progress.epoch == config.epochs:
            report(
                f"the run in {workdir} is complete ({config.epochs} epochs, step {resume_step}): "
                "nothing left to train (a larger --epochs continues it, --restart --overwrite "
                "starts afresh)"
            )
        else:
            report(f"resuming from step {resume_step} (epoch {progress.epoch}) in {workdir}")
    writer = RunWriter(workdir, config, experiment, resume_step=resume_step, enabled=is_primary())
    return Run(config, writer, checkpointer, state, progress, mesh)

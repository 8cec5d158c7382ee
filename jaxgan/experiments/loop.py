"""The training loop every experiment runs: open the workdir (fresh, or resumed from its latest
checkpoint), train epoch by epoch, log, checkpoint, and stop cleanly on signals and divergence.

    state, per_epoch = create_state(config, generator, discriminator, len(images))
    run = open_run(config, NAME, state)      # resumes when the workdir holds a checkpoint
    state, summary = fit(run, {"x": images}, on_epoch=...)
    ...                                      # final evaluation and figures, run.writer.summary
    run.close()

A dispatch is one compiled program over an epoch (or, with ``--checkpoint-every-steps``, over
a chunk of one); after it metrics come back, at an epoch's end the ``on_epoch`` hook runs, and a
checkpoint may be saved. A resumed run continues from its checkpoint's step, and since every
step's noise and every epoch's data order derive from the seed and the step number, it ends
with exactly the parameters an uninterrupted run ends with.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from jaxgan.checkpoint import Checkpointer
from jaxgan.data import DataError
from jaxgan.epoch import StepFn, minibatches_per_step, steps_per_epoch, train_epoch
from jaxgan.experiments.common import (
    EXIT_DIVERGED,
    EXIT_UNHEALTHY,
    TrainConfig,
    TrainingStopped,
    UsageError,
    flag,
)
from jaxgan.monitor import HealthMonitor
from jaxgan.parallel import (
    data_mesh,
    host_local,
    is_primary,
    process_rows,
    replicated,
    shard_data,
    sharded_train_epoch,
    sync_processes,
    to_global,
)
from jaxgan.step import train_step_body
from jaxgan.stream import host_epoch_runner
from jaxgan.workdir import (
    CHECKPOINT_DIR,
    RunWriter,
    clear_run,
    config_record,
    jsonable,
    read_config,
)


@dataclasses.dataclass
class Run:
    """A workdir opened for training.

    Attributes:
      config: the run's config.
      writer: its config/metrics/TensorBoard/summary writer.
      checkpointer: its checkpoints.
      state: the state to train from: initial, or restored from the latest checkpoint; a
        local copy in this process (``fit`` places it on the mesh).
      progress: what the loop keeps on the host and checkpoints with the state: ``epoch``
        (completed), ``wall_s`` (training time over all sessions), ``timed_steps``/``timed_s``
        (for the throughput, compilation excluded), ``last`` (the latest logged values),
        ``monitor`` (the health monitor's counts and warnings).
      mesh: the devices that split each batch (None: one device).
    """

    config: TrainConfig
    writer: RunWriter
    checkpointer: Checkpointer
    state: Any
    progress: dict[str, Any]
    mesh: Mesh | None = None

    def close(self) -> None:
        self.checkpointer.close()
        self.writer.close()


def _report(line: str) -> None:
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
        if name in config.RESUME_SAFE or before == current.get(name):
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
            _report(
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
        restored = checkpointer.restore(target, report=_report, check_settings=False)
    except DataError:
        checkpointer.close()
        raise
    progress: dict[str, Any] = {"epoch": 0, "wall_s": 0.0, "timed_steps": 0, "timed_s": 0.0}
    resume_step = None
    if restored is not None:
        state, progress = host_local(restored[0]), restored[1]
        resume_step = int(state.step)
        if progress["epoch"] > config.epochs:
            checkpointer.close()
            raise UsageError(
                f"the run in {workdir} has trained {progress['epoch']} epochs already, more "
                f"than --epochs {config.epochs}; give --epochs >= {progress['epoch']}"
            )
        _report(f"resuming from step {resume_step} (epoch {progress['epoch']}) in {workdir}")
    writer = RunWriter(workdir, config, experiment, resume_step=resume_step, enabled=is_primary())
    return Run(config, writer, checkpointer, state, progress, mesh)


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """Records SIGTERM and SIGINT instead of dying, so the loop can save and exit cleanly.

    Yields a list that receives the signals' numbers. A second SIGINT interrupts at once.
    """
    received: list[int] = []

    def handler(signum, frame):
        if signum == signal.SIGINT and received:
            raise KeyboardInterrupt
        received.append(signum)
        tqdm.write(
            f"received {signal.Signals(signum).name}: finishing the epoch, then saving",
            file=sys.stderr,
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _windows(pending: dict[str, list[float]], first_step: int, every: int, flush: bool):
    """Takes the complete windows of ``every`` steps off the front of ``pending`` (all of it
    when ``flush``) and yields ``(step at the window's end, window means)``."""
    while (n := len(next(iter(pending.values()), []))) and (n >= every or flush):
        size = min(every, n)
        yield first_step + size, {k: float(np.mean(v[:size])) for k, v in pending.items()}
        for v in pending.values():
            del v[:size]
        first_step += size


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> tuple[int, list[str]] | None:
    """The index of the first step with a non-finite metric, and those metrics' names."""
    finite = np.stack([np.isfinite(v) for v in metrics.values()])
    if finite.all():
        return None
    index = int(np.argmin(finite.all(axis=0)))
    return index, [k for k, ok in zip(metrics, finite[:, index], strict=True) if not ok]


def _chunk_steps(config: TrainConfig, per_epoch: int) -> int:
    """Steps per dispatch: a whole epoch, or (with ``--checkpoint-every-steps S``) the largest
    piece of it that both S and the epoch are multiples of, so saves fall on chunk ends."""
    every = config.checkpoint_every_steps
    return math.gcd(every, per_epoch) if every else per_epoch


def fit(
    run: Run,
    data: dict[str, np.ndarray],
    on_epoch: Callable[[Any, int], dict[str, Any]] | None = None,
    *,
    on_host: bool = False,
    prepare: Callable[[dict], dict] | None = None,
    num_examples: int | None = None,
    step_fn: StepFn = train_step_body,
) -> tuple[Any, dict[str, Any]]:
    """Trains ``run.state`` from where it stands to ``run.config.epochs`` epochs.

    ``step_fn`` is the per-device step (default the GAN update) and ``run.state`` any state it
    takes that has ``step`` and ``key`` (see :mod:`jaxgan.state`).

    ``data`` is the whole training set, or (given ``num_examples``, its size) this process's
    rows of it (:func:`load_rows`); over several devices each holds its shard.

    Each dispatch runs one epoch (or, with ``--checkpoint-every-steps``, a chunk of one) as one
    compiled program on data placed on the device; with ``on_host`` the data stay in host
    memory and each chunk runs step by step (:mod:`jaxgan.stream`, each batch converted on the
    device by ``prepare``), with the same numbers. Metrics come back to the host and are
    logged in windows of
    ``config.log_every`` steps. After each epoch ``on_epoch(state, epoch)`` may evaluate and
    return more values to log. A checkpoint is saved (asynchronously) every
    ``config.checkpoint_every`` epochs or ``config.checkpoint_every_steps`` steps, and at the end.

    Raises:
      TrainingStopped: on SIGTERM/SIGINT, after finishing the chunk and saving (exit code 0);
        at the first non-finite loss or gradient norm (exit code :data:`EXIT_DIVERGED`),
        after writing summary.json with ``"status": "diverged"``; no checkpoint is saved then.

    Returns:
      The final state and a summary: ``status``, ``epochs``, ``steps``, ``wall_s`` (over all
      sessions), ``train_steps_per_s`` (compilation excluded), the last logged values.
    """
    config, writer, checkpointer, progress = run.config, run.writer, run.checkpointer, run.progress
    if num_examples is None:
        num_examples = len(jax.tree.leaves(data)[0])
        rows = process_rows(run.mesh, num_examples)
        data = jax.tree.map(lambda a: a[rows], data)
    per_epoch = steps_per_epoch(num_examples, config.batch_size, minibatches_per_step(run.state))
    chunk = _chunk_steps(config, per_epoch)
    chunk_arg = None if chunk == per_epoch else chunk  # whole epochs compile as before
    if on_host:
        state = run.state if run.mesh is None else to_global(run.state, replicated(run.mesh))
        run_chunk = host_epoch_runner(
            config.batch_size,
            chunk,
            mesh=run.mesh,
            prepare=prepare,
            num_examples=num_examples,
            step_fn=step_fn,
        )
    elif run.mesh is None:
        state, data = run.state, jax.device_put(data)
        run_chunk = functools.partial(
            train_epoch, batch_size=config.batch_size, steps=chunk_arg, step_fn=step_fn
        )
    else:  # each device holds a shard of the data; they exchange each batch's rows
        state = to_global(run.state, replicated(run.mesh))
        data = shard_data(data, run.mesh, num_examples)
        run_chunk = sharded_train_epoch(
            run.mesh, config.batch_size, num_examples, chunk_arg, step_fn
        )
    step = int(run.state.step)
    last: dict[str, float] = progress.get("last", {})
    health = HealthMonitor(config.monitor_window, config.collapse_ratio)
    health.state = progress.setdefault("monitor", health.state)

    def summary(status: str, **extra) -> dict[str, Any]:
        timed_s = progress["timed_s"]
        return {
            "status": status,
            "epochs": progress["epoch"],
            "steps": step,
            "wall_s": progress["wall_s"],
            "train_steps_per_s": progress["timed_steps"] / timed_s if timed_s else None,
            "warnings": health.state["warnings"],
            **last,
            **extra,
        }

    def diverged(at: int, names: list[str], epoch: int) -> TrainingStopped:
        writer.summary(summary("diverged", diverged_at=at, nonfinite=names))
        checkpointer.wait()
        good = checkpointer.latest_step()
        return TrainingStopped(
            f"training diverged: non-finite {', '.join(names)} at step {at} (epoch {epoch}); "
            + (
                f"the last good checkpoint is step {good}; "
                if good is not None
                else "no checkpoint was saved; "
            )
            + "lower --lr-d/--lr-g or try another --loss",
            EXIT_DIVERGED,
        )

    bar = tqdm(
        range(progress["epoch"] + 1, config.epochs + 1),
        initial=progress["epoch"],
        total=config.epochs,
        desc="epochs",
        unit="epoch",
        file=sys.stderr,
        disable=not is_primary(),
    )
    every = config.log_every or per_epoch
    # per-step metrics not yet logged: a window can span chunks, and a checkpoint inside it
    pending: dict[str, list[float]] = progress.get("pending", {})
    first_in_session = True
    with _stop_requests() as stop:
        for epoch in bar:
            while step < epoch * per_epoch:
                t0 = time.perf_counter()
                state, metrics = run_chunk(state, data)
                metrics = jax.device_get(host_local(metrics))
                elapsed = time.perf_counter() - t0
                progress["wall_s"] += elapsed
                if not first_in_session:  # a session's first dispatch includes compilation
                    progress["timed_steps"] += chunk
                    progress["timed_s"] += elapsed
                first_in_session = False
                window_start = step - len(next(iter(pending.values()), []))
                for k, v in metrics.items():
                    pending.setdefault(k, []).extend(v.tolist())
                if (bad := _first_nonfinite(metrics)) is not None:
                    for at, values in _windows(pending, window_start, every, flush=True):
                        writer.log(at, {"epoch": epoch, **values})
                    raise diverged(step + bad[0] + 1, bad[1], epoch)
                warnings = health.update(step, metrics)
                unlogged = progress.setdefault("unlogged_warnings", [])
                unlogged.extend(warnings)
                for w in warnings:
                    if is_primary():
                        tqdm.write(w["message"], file=sys.stderr)
                step += chunk
                epoch_done = step == epoch * per_epoch
                points = list(_windows(pending, window_start, every, flush=epoch_done))
                if epoch_done and on_epoch:
                    extra = jsonable(on_epoch(host_local(state), epoch))
                    points[-1] = (points[-1][0], {**points[-1][1], **extra})  # one record
                for at, values in points:
                    # a warning goes into the record of the first log point at or after it
                    kinds = [w["kind"] for w in unlogged if w["step"] <= at]
                    unlogged[:] = [w for w in unlogged if w["step"] > at]
                    writer.log(
                        at, {"epoch": epoch, **values, **({"warnings": kinds} if kinds else {})}
                    )
                    last = {**last, **values}
                completed = epoch if epoch_done else epoch - 1
                progress.update(epoch=completed, last=last, pending=pending)
                finished = epoch_done and epoch == config.epochs
                unhealthy = bool(warnings) and config.stop_on_warning and not finished
                if finished or stop or unhealthy or _save_due(config, step, epoch, epoch_done):
                    checkpointer.save(step, state, progress, metrics=last)
                shown = {"step": str(step), **{k: f"{last[k]:.3f}" for k in metrics if k in last}}
                bar.set_postfix(shown, **{"steps/s": f"{chunk / elapsed:.0f}"}, refresh=False)
                if unhealthy:
                    checkpointer.wait()
                    bar.close()
                    writer.summary(summary("unhealthy"))
                    raise TrainingStopped(
                        f"stopped at step {step} (--stop-on-warning): {warnings[0]['message']}",
                        EXIT_UNHEALTHY,
                    )
                if stop and not finished:
                    checkpointer.wait()
                    bar.close()
                    writer.summary(summary("interrupted"))
                    raise TrainingStopped(
                        f"saved at step {step}; rerun the same command to resume", 0
                    )
    bar.close()
    checkpointer.wait()
    return host_local(state), summary("completed")


def _save_due(config: TrainConfig, step: int, epoch: int, epoch_done: bool) -> bool:
    if config.checkpoint_every_steps:
        return step % config.checkpoint_every_steps == 0
    return epoch_done and config.checkpoint_every > 0 and epoch % config.checkpoint_every == 0

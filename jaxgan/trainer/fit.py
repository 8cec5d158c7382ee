"""The training loop every experiment runs: train an opened run (:mod:`jaxgan.trainer.run`)
epoch by epoch, log, checkpoint, and stop cleanly on signals and divergence.

A dispatch is one compiled program over an epoch (or, with ``--checkpoint-every-steps``, over
a chunk of one); after it metrics come back, at an epoch's end the epoch hooks run
(:mod:`jaxgan.trainer.plugins`: grids, evaluations), and a checkpoint may be saved. A resumed
run continues from its checkpoint's step, and since every step's noise and every epoch's data
order derive from the seed and the step number, it ends with exactly the parameters an
uninterrupted run ends with.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from jaxgan.cli import EXIT_DIVERGED, EXIT_UNHEALTHY, TrainingStopped
from jaxgan.epoch import StepFn, minibatches_per_step, steps_per_epoch, train_epoch
from jaxgan.monitor import HealthMonitor, QualityWatch, fitted_window
from jaxgan.parallel import (
    host_local,
    is_primary,
    process_rows,
    replicated,
    shard_data,
    sharded_train_epoch,
    to_global,
)
from jaxgan.step import train_step_body
from jaxgan.stream import host_epoch_runner
from jaxgan.trainer.console import ProgressLine
from jaxgan.trainer.plugins import CheckpointPolicy, EpochHook, Evaluation
from jaxgan.trainer.run import Progress, Run, report
from jaxgan.workdir import RunWriter, jsonable


def fit(
    run: Run,
    data: dict[str, np.ndarray],
    hooks: Sequence[EpochHook] = (),
    *,
    on_host: bool = False,
    prepare: Callable[[dict], dict] | None = None,
    num_examples: int | None = None,
    step_fn: StepFn = train_step_body,
    checkpoints: CheckpointPolicy | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Trains ``run.state`` from where it stands to ``run.config.epochs`` epochs.

    ``step_fn`` is the per-device step (default the GAN update) and ``run.state`` any state it
    takes that has ``step`` and ``key`` (see :mod:`jaxgan.state`).

    ``data`` is the whole training set, or (given ``num_examples``, its size) this process's
    rows of it (:func:`~jaxgan.trainer.run.load_rows`); over several devices each holds its
    shard. Each dispatch runs one epoch (or a chunk of one: ``checkpoints.every_steps``) as one
    compiled program on data placed on the device; with ``on_host`` the data stay in host
    memory and each chunk runs step by step (:mod:`jaxgan.stream`, each batch converted on the
    device by ``prepare``), with the same numbers.

    Metrics are logged in windows of ``config.log_every`` steps (default: an epoch). After
    each epoch every hook's values join the epoch's record (the first :class:`Evaluation`'s
    ``watch`` is what the health monitor watches them for). Checkpoints (asynchronous) follow
    ``checkpoints`` (default :meth:`CheckpointPolicy.of` the config), and are saved at the end
    and on a signal. The health monitor (:mod:`jaxgan.monitor`) watches the steps'
    measurements in windows of ``config.monitor_window`` steps (a fifth of a shorter run).

    Raises:
      TrainingStopped: on SIGTERM/SIGINT, after finishing the chunk and saving (exit code 0);
        at the first non-finite loss or gradient norm (exit code :data:`EXIT_DIVERGED`),
        after writing summary.json with ``"status": "diverged"``; no checkpoint is saved then;
        with ``--stop-on-warning``, at the monitor's first warning, after saving.

    Returns:
      The final state and a summary: ``status``, ``epochs``, ``steps``, ``wall_s`` (over all
      sessions), ``train_steps_per_s`` (compilation excluded), the last logged values.
    """
    config, progress, checkpointer = run.config, run.progress, run.checkpointer
    checkpoints = checkpoints or CheckpointPolicy.of(config)
    state, data, run_chunk, per_epoch, chunk = _placed(
        run, data, checkpoints, on_host, prepare, num_examples, step_fn
    )
    step = int(run.state.step)
    health = _monitor(run, per_epoch * config.epochs, hooks)
    log = MetricLog(run.writer, progress, config.log_every or per_epoch)

    def summary(status: str, **extra) -> dict[str, Any]:
        return _summary(progress, status, step, health, **extra)

    bar = ProgressLine(progress.epoch, config.epochs, enabled=is_primary())
    first_in_session = True  # a session's first dispatch includes compilation
    with _stop_requests() as stop, bar:
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            while step < epoch * per_epoch:
                t0 = time.perf_counter()
                state, metrics = run_chunk(state, data)
                metrics = jax.device_get(host_local(metrics))
                elapsed = time.perf_counter() - t0
                progress.count(chunk, elapsed, timed=not first_in_session)
                first_in_session = False
                log.add(metrics)
                if (bad := _first_nonfinite(metrics)) is not None:
                    log.write(step + chunk, epoch, flush=True)
                    raise _diverged(run, summary, step + bad[0] + 1, bad[1], epoch)
                warnings = health.update(step, metrics)
                step += chunk
                epoch_done = step == epoch * per_epoch
                values = _run_hooks(hooks, host_local(state), epoch) if epoch_done else {}
                warnings += health.evaluated(step, values)
                for w in warnings:
                    bar.write(w["message"])
                log.write(step, epoch, flush=epoch_done, extra=values, warnings=warnings)
                progress.epoch = epoch if epoch_done else epoch - 1
                finished = epoch_done and epoch == config.epochs
                unhealthy = bool(warnings) and config.stop_on_warning and not finished
                if finished or stop or unhealthy or checkpoints.due(step, epoch, epoch_done):
                    checkpointer.save(step, state, progress.to_json(), metrics=progress.last)
                bar.update(
                    progress.epoch, step, progress.last, chunk / elapsed if elapsed else None
                )
                if unhealthy:
                    message = (
                        f"stopped at step {step} (--stop-on-warning): {warnings[0]['message']}"
                    )
                    raise _stopped(run, summary("unhealthy"), message, EXIT_UNHEALTHY)
                if stop and not finished:
                    message = f"saved at step {step}; rerun the same command to resume"
                    raise _stopped(run, summary("interrupted"), message, 0)
    checkpointer.wait()
    return host_local(state), summary("completed")


class MetricLog:
    """The per-step metrics written as log records: means over windows of ``every`` steps.

    A window can span dispatches and checkpoints: its steps wait in ``progress.pending``. A
    warning goes into the record of the first log point at or after its step. Each record's
    values also become ``progress.last``.
    """

    def __init__(self, writer: RunWriter, progress: Progress, every: int):
        self.writer, self.progress, self.every = writer, progress, every

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        for k, v in metrics.items():
            self.progress.pending.setdefault(k, []).extend(v.tolist())

    def write(
        self,
        step: int,
        epoch: int,
        *,
        flush: bool,
        extra: dict[str, Any] | None = None,
        warnings: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Writes the complete windows of the steps up to ``step`` (all of them when
        ``flush``); ``extra`` values join the last record."""
        pending, unlogged = self.progress.pending, self.progress.unlogged_warnings
        unlogged.extend(warnings)
        points = list(self._windows(step - len(next(iter(pending.values()), [])), flush))
        if extra and points:
            points[-1] = (points[-1][0], {**points[-1][1], **extra})
        for at, values in points:
            kinds = [w["kind"] for w in unlogged if w["step"] <= at]
            unlogged[:] = [w for w in unlogged if w["step"] > at]
            self.writer.log(
                at, {"epoch": epoch, **values, **({"warnings": kinds} if kinds else {})}
            )
            self.progress.last = {**self.progress.last, **values}

    def _windows(self, first_step: int, flush: bool) -> Iterator[tuple[int, dict[str, float]]]:
        """Takes the complete windows off the front of the pending steps (all of them when
        ``flush``): ``(step at the window's end, window means)``."""
        pending = self.progress.pending
        while (n := len(next(iter(pending.values()), []))) and (n >= self.every or flush):
            size = min(self.every, n)
            yield first_step + size, {k: float(np.mean(v[:size])) for k, v in pending.items()}
            for v in pending.values():
                del v[:size]
            first_step += size


def _placed(
    run: Run,
    data: dict[str, np.ndarray],
    checkpoints: CheckpointPolicy,
    on_host: bool,
    prepare: Callable[[dict], dict] | None,
    num_examples: int | None,
    step_fn: StepFn,
) -> tuple[Any, Any, Callable, int, int]:
    """The state and data placed for the run's devices, the program that trains a chunk of
    steps on them, the steps in an epoch and in a chunk."""
    batch_size = run.config.batch_size
    if num_examples is None:
        num_examples = len(jax.tree.leaves(data)[0])
        data = jax.tree.map(lambda a: a[process_rows(run.mesh, num_examples)], data)
    per_epoch = steps_per_epoch(num_examples, batch_size, minibatches_per_step(run.state))
    chunk = checkpoints.chunk(per_epoch)
    chunk_arg = None if chunk == per_epoch else chunk  # whole epochs compile as before
    state = run.state if run.mesh is None else to_global(run.state, replicated(run.mesh))
    if on_host:
        run_chunk = host_epoch_runner(
            batch_size, chunk, mesh=run.mesh, prepare=prepare, num_examples=num_examples,
            step_fn=step_fn,
        )  # fmt: skip
    elif run.mesh is None:
        data = jax.device_put(data)
        run_chunk = functools.partial(
            train_epoch, batch_size=batch_size, steps=chunk_arg, step_fn=step_fn
        )
    else:  # each device holds a shard of the data; they exchange each batch's rows
        data = shard_data(data, run.mesh, num_examples)
        run_chunk = sharded_train_epoch(run.mesh, batch_size, num_examples, chunk_arg, step_fn)
    return state, data, run_chunk, per_epoch, chunk


def _run_hooks(hooks: Sequence[EpochHook], state: Any, epoch: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for hook in hooks:
        values.update(jsonable(hook(state, epoch)))
    return values


def _summary(
    progress: Progress, status: str, step: int, health: HealthMonitor, **extra
) -> dict[str, Any]:
    return {
        "status": status,
        "epochs": progress.epoch,
        "steps": step,
        "wall_s": progress.wall_s,
        "train_steps_per_s": (
            progress.timed_steps / progress.timed_s if progress.timed_s else None
        ),
        "warnings": health.state["warnings"],
        **progress.last,
        **extra,
    }


def _diverged(
    run: Run, summary: Callable[..., dict], at: int, names: list[str], epoch: int
) -> TrainingStopped:
    run.writer.summary(summary("diverged", diverged_at=at, nonfinite=names))
    run.checkpointer.wait()
    good = run.checkpointer.latest_step()
    kept = (
        f"the last good checkpoint is step {good}; "
        if good is not None
        else "no checkpoint was saved; "
    )
    return TrainingStopped(
        f"training diverged: non-finite {', '.join(names)} at step {at} (epoch {epoch}); "
        f"{kept}lower --lr-d/--lr-g or try another --loss",
        EXIT_DIVERGED,
    )


def _stopped(run: Run, summary: dict, message: str, exit_code: int) -> TrainingStopped:
    """The end of a run stopped early with its state saved."""
    run.checkpointer.wait()
    run.writer.summary(summary)
    return TrainingStopped(message, exit_code)


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> tuple[int, list[str]] | None:
    """The index of the first step with a non-finite metric, and those metrics' names."""
    finite = np.stack([np.isfinite(v) for v in metrics.values()])
    if finite.all():
        return None
    index = int(np.argmin(finite.all(axis=0)))
    return index, [k for k, ok in zip(metrics, finite[:, index], strict=True) if not ok]


def _monitor(run: Run, total_steps: int, hooks: Sequence[EpochHook]) -> HealthMonitor:
    """The run's health monitor, its counts carried over from the checkpoint; its window fitted
    to a short run (said once), D's exploding threshold from the state's loss, the first
    evaluation's watch on the evaluations."""
    config = run.config
    window = fitted_window(config.monitor_window, total_steps)
    if window < config.monitor_window and not run.progress.monitor:
        report(
            f"the health monitor watches windows of {window} steps: --monitor-window "
            f"{config.monitor_window} is longer than a fifth of this {total_steps}-step run"
        )
    loss = getattr(getattr(run.state, "config", None), "loss", None)
    watches: list[QualityWatch] = [
        h.watch for h in hooks if isinstance(h, Evaluation) and h.watch is not None
    ]
    health = HealthMonitor(
        window,
        config.collapse_ratio,
        exploding_d_loss=getattr(loss, "exploding_d_loss", None),
        quality=watches[0] if watches else None,
    )
    if not run.progress.monitor:
        run.progress.monitor = health.state
    health.state = run.progress.monitor
    return health


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

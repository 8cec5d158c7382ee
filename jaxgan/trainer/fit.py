"""The training loop every experiment runs: train an opened run (:mod:`jaxgan.trainer.run`)
epoch by epoch, log, checkpoint, and stop cleanly on signals and divergence.

A dispatch is one compiled program over an epoch (or, with ``--checkpoint-every-steps``, over
a chunk of one); after it metrics come back, at an epoch's end the ``on_epoch`` hook runs, and a
checkpoint may be saved. A resumed run continues from its checkpoint's step, and since every
step's noise and every epoch's data order derive from the seed and the step number, it ends
with exactly the parameters an uninterrupted run ends with.
"""

from __future__ import annotations

import functools
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
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
from jaxgan.trainer.config import TrainConfig
from jaxgan.trainer.console import ProgressLine
from jaxgan.trainer.run import Run, report
from jaxgan.workdir import jsonable


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
    quality: QualityWatch | None = None,
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
    The health monitor (:mod:`jaxgan.monitor`) watches the steps' measurements in windows of
    ``config.monitor_window`` steps (a fifth of a shorter run) and the evaluations for
    ``quality``.

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
    last: dict[str, float] = progress.last
    health = _monitor(run, per_epoch * config.epochs, quality)

    def summary(status: str, **extra) -> dict[str, Any]:
        timed_s = progress.timed_s
        return {
            "status": status,
            "epochs": progress.epoch,
            "steps": step,
            "wall_s": progress.wall_s,
            "train_steps_per_s": progress.timed_steps / timed_s if timed_s else None,
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

    bar = ProgressLine(progress.epoch, config.epochs, enabled=is_primary())
    every = config.log_every or per_epoch
    # per-step metrics not yet logged: a window can span chunks, and a checkpoint inside it
    pending = progress.pending
    first_in_session = True
    with _stop_requests() as stop:
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            while step < epoch * per_epoch:
                t0 = time.perf_counter()
                state, metrics = run_chunk(state, data)
                metrics = jax.device_get(host_local(metrics))
                elapsed = time.perf_counter() - t0
                progress.wall_s += elapsed
                if not first_in_session:  # a session's first dispatch includes compilation
                    progress.timed_steps += chunk
                    progress.timed_s += elapsed
                first_in_session = False
                window_start = step - len(next(iter(pending.values()), []))
                for k, v in metrics.items():
                    pending.setdefault(k, []).extend(v.tolist())
                if (bad := _first_nonfinite(metrics)) is not None:
                    for at, values in _windows(pending, window_start, every, flush=True):
                        writer.log(at, {"epoch": epoch, **values})
                    raise diverged(step + bad[0] + 1, bad[1], epoch)
                warnings = health.update(step, metrics)
                step += chunk
                epoch_done = step == epoch * per_epoch
                points = list(_windows(pending, window_start, every, flush=epoch_done))
                if epoch_done and on_epoch:
                    extra = jsonable(on_epoch(host_local(state), epoch))
                    points[-1] = (points[-1][0], {**points[-1][1], **extra})  # one record
                    warnings += health.evaluated(step, extra)
                unlogged = progress.unlogged_warnings
                unlogged.extend(warnings)
                for w in warnings:
                    if is_primary():
                        bar.write(w["message"])
                for at, values in points:
                    # a warning goes into the record of the first log point at or after it
                    kinds = [w["kind"] for w in unlogged if w["step"] <= at]
                    unlogged[:] = [w for w in unlogged if w["step"] > at]
                    writer.log(
                        at, {"epoch": epoch, **values, **({"warnings": kinds} if kinds else {})}
                    )
                    last = {**last, **values}
                completed = epoch if epoch_done else epoch - 1
                progress.epoch, progress.last = completed, last
                finished = epoch_done and epoch == config.epochs
                unhealthy = bool(warnings) and config.stop_on_warning and not finished
                if finished or stop or unhealthy or _save_due(config, step, epoch, epoch_done):
                    checkpointer.save(step, state, progress.to_json(), metrics=last)
                bar.update(completed, step, last, chunk / elapsed if elapsed else None)
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


def _monitor(run: Run, total_steps: int, quality: QualityWatch | None) -> HealthMonitor:
    """The run's health monitor, its counts carried over from the checkpoint; its window fitted
    to a short run (said once), D's exploding threshold from the state's loss."""
    config = run.config
    window = fitted_window(config.monitor_window, total_steps)
    if window < config.monitor_window and not run.progress.monitor:
        report(
            f"the health monitor watches windows of {window} steps: --monitor-window "
            f"{config.monitor_window} is longer than a fifth of this {total_steps}-step run"
        )
    loss = getattr(getattr(run.state, "config", None), "loss", None)
    health = HealthMonitor(
        window,
        config.collapse_ratio,
        exploding_d_loss=getattr(loss, "exploding_d_loss", None),
        quality=quality,
    )
    if not run.progress.monitor:
        run.progress.monitor = health.state
    health.state = run.progress.monitor
    return health


def _save_due(config: TrainConfig, step: int, epoch: int, epoch_done: bool) -> bool:
    if config.checkpoint_every_steps:
        return step % config.checkpoint_every_steps == 0
    return epoch_done and config.checkpoint_every > 0 and epoch % config.checkpoint_every == 0

"""Training on data kept on the host: one step per dispatch, batches copied ahead.

A dataset too large for the device (CelebA at 64×64 is 2.5 GB as uint8, 10 GB as float32)
stays on the host as uint8: in memory, or memory-mapped from the disk cache of
:mod:`jaxgan.datacache` when it is too large for that too (the runner only indexes the
arrays, so each step reads just its rows). Each step's rows are gathered there, in exactly
the order the on-device epoch (:func:`jaxgan.epoch.train_epoch_body`) uses, copied to the
device by a background thread a few steps ahead, and converted there (``prepare``, e.g.
scaling to [-1, 1]); so a run gives the same numbers whichever way its data travel, and
resumes the same.
Over several devices each process holds only its devices' shards of the data, sends each
device the rows of the step in its shard, and the devices exchange them, as on-device data do.

One dispatch per step is also the faster way for convolutional models on XLA:CPU, which runs a
convolution inside a ``lax.scan`` body several times slower than as a program of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan.epoch import (
    StepFn,
    epoch_order,
    minibatches_per_step,
    pick_rows,
    shard_rows,
    steps_per_epoch,
)
from jaxgan.parallel import (
    AXIS,
    host_local,
    local_positions,
    picked_train_step,
    process_rows,
)
from jaxgan.state import Batch
from jaxgan.step import compiled_step, train_step_body

PREFETCH = 2  # batches on their way to the device while a step runs


def prefetch(batches: Iterator, size: int = PREFETCH) -> Iterator:
    """Yields ``batches``' items, producing up to ``size`` ahead in a background thread (so the
    host-to-device copy of the next batch overlaps the current step)."""
    ready: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def produce():
        try:
            for item in batches:
                ready.put(item)
        except Exception as e:  # raised again in the consumer's thread
            ready.put(e)
        ready.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := ready.get()) is not done:
        if isinstance(item, Exception):
            raise item
        yield item


def host_epoch_runner(
    batch_size: int,
    steps: int,
    *,
    mesh: Mesh | None = None,
    prepare: Callable[[Batch], Batch] | None = None,
    num_examples: int | None = None,
    step_fn: StepFn = train_step_body,
) -> Callable:
    """``run(state, data)``: ``steps`` training steps from where ``state.step`` stands, on
    ``data`` (numpy arrays on the host), returning the new state and the metrics stacked over
    the steps, as :func:`jaxgan.epoch.train_epoch` does.

    Args:
      batch_size: the global minibatch size.
      steps: steps per call; they must not cross an epoch's end.
      mesh: the devices that split each batch (None: one device). Then ``data`` are this
        process's rows (:func:`jaxgan.parallel.process_rows`) of a dataset of
        ``num_examples``: each of its devices is sent the rows of the step that lie in the
        device's shard, and the devices exchange them.
      prepare: a device-side conversion of each batch (jit-compiled), e.g. uint8 to [-1, 1].
      num_examples: the whole dataset's size (default: ``data``'s, for one process).
      step_fn: the per-device step (default the GAN update), over any state it takes.
    """
    if mesh is None:
        step = compiled_step(step_fn)
        convert = jax.jit(prepare) if prepare is not None else lambda batch: batch

        def load(data, idx, total):
            return convert(jax.device_put({name: a[idx.reshape(-1)] for name, a in data.items()}))

    else:
        step = picked_train_step(mesh, prepare, step_fn)
        sharding = NamedSharding(mesh, P(AXIS))

        def load(data, idx, total):
            return _device_blocks(data, idx, mesh, sharding, total)

    def run(state, data: dict[str, np.ndarray]):
        total = num_examples or len(next(iter(data.values())))
        k = minibatches_per_step(state)
        per_epoch = steps_per_epoch(total, batch_size, k)
        first = int(host_local(state.step))
        offset = first % per_epoch
        if offset + steps > per_epoch:
            raise ValueError(f"{steps} steps from step {first} cross the epoch's end")
        order = np.asarray(epoch_order(host_local(state.key), first - offset, total, batch_size, k))
        metrics = []
        for batch in prefetch(load(data, idx, total) for idx in order[offset : offset + steps]):
            state, step_metrics = step(state, batch)
            metrics.append(host_local(step_metrics))
        return state, jax.tree.map(lambda *values: np.stack(values), *jax.device_get(metrics))

    return run


def _device_blocks(data: Batch, idx: np.ndarray, mesh: Mesh, sharding, num_examples: int):
    """``[devices, k, B, ...]`` global arrays: for each of this process's devices, the rows of
    the minibatches ``idx`` in its shard (zeros elsewhere), from this process's rows ``data``."""
    rows = process_rows(mesh, num_examples)
    size = shard_rows(num_examples, mesh.size)
    blocks = []
    for i in local_positions(mesh):
        lo, hi = max(i * size, rows.start), min((i + 1) * size, rows.stop)
        held = {name: a[lo - rows.start : max(lo, hi) - rows.start] for name, a in data.items()}
        blocks.append(pick_rows(held, idx, lo))
    local = jax.tree.map(lambda *b: np.stack(b), *blocks)
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, a, (mesh.size, *a.shape[1:])),
        local,
    )

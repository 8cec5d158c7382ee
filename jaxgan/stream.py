"""Training on data kept in host memory: one step per dispatch, batches copied ahead.

A dataset too large for the device (CelebA at 64×64 is 2.5 GB as uint8, 10 GB as float32)
stays on the host as uint8. Each step's rows are gathered there, in exactly the order the
on-device epoch (:func:`jaxgan.train.train_epoch_body`) uses, copied to the device by a
background thread a few steps ahead, and converted there (``prepare``, e.g. scaling to
[-1, 1]); so a run gives the same numbers whichever way its data travel, and resumes the same.

One dispatch per step is also the faster way for convolutional models on XLA:CPU, which runs a
convolution inside a ``lax.scan`` body several times slower than as a program of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import jax
import numpy as np
from jax.sharding import Mesh

from jaxgan.parallel import host_local, replicated, sharded_train_step, to_global
from jaxgan.train import Batch, GANState, epoch_order, steps_per_epoch, train_step

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
) -> Callable[[GANState, dict[str, np.ndarray]], tuple[GANState, dict]]:
    """``run(state, data)``: ``steps`` training steps from where ``state.step`` stands, on
    ``data`` (numpy arrays on the host), returning the new state and the metrics stacked over
    the steps, as :func:`jaxgan.train.train_epoch` does.

    Args:
      batch_size: the global minibatch size.
      steps: steps per call; they must not cross an epoch's end.
      mesh: the devices that split each batch (None: one device).
      prepare: a device-side conversion of each batch (jit-compiled), e.g. uint8 to [-1, 1].
    """
    step = train_step if mesh is None else sharded_train_step(mesh)
    convert = jax.jit(prepare) if prepare is not None else lambda batch: batch

    def put(batch: Batch) -> Batch:
        return convert(
            jax.device_put(batch) if mesh is None else to_global(batch, replicated(mesh))
        )

    def run(state: GANState, data: dict[str, np.ndarray]):
        num_examples = len(next(iter(data.values())))
        k = state.config.d_steps
        per_epoch = steps_per_epoch(num_examples, batch_size, k)
        first = int(host_local(state.step))
        offset = first % per_epoch
        if offset + steps > per_epoch:
            raise ValueError(f"{steps} steps from step {first} cross the epoch's end")
        key = host_local(state.key)
        order = np.asarray(epoch_order(key, first - offset, num_examples, batch_size, k))
        order = order[offset : offset + steps].reshape(steps, -1)
        batches = ({name: a[idx] for name, a in data.items()} for idx in order)
        metrics = []
        for batch in prefetch(put(b) for b in batches):
            state, step_metrics = step(state, batch)
            metrics.append(host_local(step_metrics))
        return state, jax.tree.map(lambda *values: np.stack(values), *jax.device_get(metrics))

    return run

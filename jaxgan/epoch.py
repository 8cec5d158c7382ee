"""The on-device epoch program over any step: the data order, and one ``lax.scan`` of the step
over an epoch (or a chunk of one), for one device or a dataset split over N.

The runners here and in :mod:`jaxgan.parallel` and :mod:`jaxgan.stream` take the step as a
function ``step_fn(state, batch, axis_name=None) -> (state, metrics)`` and any state pytree
with ``step`` and ``key`` (and ``minibatches_per_step``, default 1; see :mod:`jaxgan.state`),
so a GAN variant with its own state trains, checkpoints and resumes through them unchanged.
The data order is a pure function of the state's key and the epoch's first step, so a run
resumed anywhere in an epoch sees the same order.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.state import DATA_STREAM, Batch
from jaxgan.step import train_step_body

Array = jax.Array
StepFn = Callable[..., tuple]


def minibatches_per_step(state) -> int:
    """The real minibatches one step of ``state`` consumes (``state.minibatches_per_step``,
    else 1)."""
    return getattr(state, "minibatches_per_step", 1)


def epoch_permutation(key: Array, epoch_start: Array, num_examples: int) -> Array:
    """The data order of the epoch that starts at step ``epoch_start``: a pure function of the
    run's key and that step, so a run resumed anywhere in the epoch sees the same order."""
    return jax.random.permutation(
        jax.random.fold_in(jax.random.fold_in(key, DATA_STREAM), epoch_start), num_examples
    )


def steps_per_epoch(num_examples: int, batch_size: int, d_steps: int) -> int:
    """Full iterations in one pass over the data (each consumes ``d_steps`` real minibatches)."""
    return num_examples // (batch_size * d_steps)


def checked_steps_per_epoch(num_examples: int, batch_size: int, d_steps: int) -> int:
    """:func:`steps_per_epoch`, raising ``ValueError`` when the data make no step at all."""
    per_epoch = steps_per_epoch(num_examples, batch_size, d_steps)
    if per_epoch < 1:
        raise ValueError(
            f"{num_examples} examples are fewer than one step's {batch_size * d_steps} "
            f"(batch size {batch_size} x d_steps {d_steps})"
        )
    return per_epoch


def epoch_order(
    key: Array, epoch_start: Array, num_examples: int, batch_size: int, d_steps: int
) -> Array:
    """The example indices of each step of the epoch starting at step ``epoch_start``:
    ``[steps_per_epoch, d_steps, batch_size]``, from :func:`epoch_permutation` (the examples
    left over after the last full step sit this epoch out)."""
    per_epoch = checked_steps_per_epoch(num_examples, batch_size, d_steps)
    order = epoch_permutation(key, epoch_start, num_examples)
    return order[: per_epoch * batch_size * d_steps].reshape(per_epoch, d_steps, batch_size)


def train_epoch_body(
    state,
    data: Batch,
    *,
    batch_size: int,
    step_fn: StepFn = train_step_body,
    axis_name: str | None = None,
    steps: int | None = None,
    num_examples: int | None = None,
):
    """One epoch (or a chunk of one) as a single program: an on-device permutation, then
    ``lax.scan`` of the step.

    Args:
      state: the state at the epoch's start, or where a chunk starts (any state pytree
        ``step_fn`` takes, with ``step`` and ``key``).
      data: the whole dataset on the device, ``{"x": [num_examples, ...]}``; with
        ``axis_name``, this device's shard of it (:func:`shard_rows`).
      batch_size: real samples per minibatch (the global batch: over all devices of
        ``axis_name``).
      step_fn: the per-device step, ``step_fn(state, batch, axis_name=...)``; default the
        GAN update :func:`jaxgan.step.train_step_body`.
      axis_name: the data-parallel axis, or None on one device. Every device computes the
        same permutation and receives its rows of each global minibatch from the devices
        that hold them (:func:`exchange_rows`), so the epoch is the one a single device runs.
      steps: run only this many steps (a divisor of the steps per epoch), from where
        ``state.step`` stands in its epoch; None runs the whole epoch.
      num_examples: the dataset's size; needed with ``axis_name`` (the shards are padded).

    Returns:
      ``(new_state, metrics)`` with each metric stacked over the steps run.
    """
    if axis_name is None:
        num_examples = jax.tree.leaves(data)[0].shape[0]
    elif num_examples is None:
        raise ValueError("a sharded dataset needs num_examples")
    k = minibatches_per_step(state)
    per_epoch = checked_steps_per_epoch(num_examples, batch_size, k)
    steps = per_epoch if steps is None else steps
    if per_epoch % steps:
        raise ValueError(f"chunks of {steps} steps do not divide an epoch of {per_epoch}")
    offset = state.step % per_epoch
    order = epoch_order(state.key, state.step - offset, num_examples, batch_size, k)
    if steps < per_epoch:
        order = jax.lax.dynamic_slice_in_dim(order, offset, steps, axis=0)

    def body(state, idx):  # idx: [k, batch_size], the step's minibatches
        if axis_name is None:
            batch = jax.tree.map(lambda a: a[idx.reshape(-1)], data)
        else:
            batch = exchange_rows(data, idx, axis_name)
        return step_fn(state, batch, axis_name=axis_name)

    return jax.lax.scan(body, state, order)


def shard_rows(num_examples: int, num_shards: int) -> int:
    """Rows per device when a dataset is split over ``num_shards`` devices: device i holds rows
    ``i * size:(i + 1) * size`` (the last shards padded with zeros)."""
    return -(-num_examples // num_shards)


def pick_rows(shard, idx, first_row: int):
    """The rows ``idx`` (global row numbers, any shape) of a dataset, taken from ``shard`` (a
    dict of arrays holding rows ``first_row:first_row + len``) where it holds them, zeros
    elsewhere; works on numpy arrays on the host (reading only the rows held, which matters
    for a memory-mapped set) and jax arrays on the device."""
    on_host = not isinstance(jax.tree.leaves(shard)[0], jax.Array)
    xp = np if on_host else jnp
    size = len(jax.tree.leaves(shard)[0])
    local = idx - first_row
    held = (local >= 0) & (local < size)
    local = xp.clip(local, 0, size - 1)

    def pick(a):
        if on_host:
            out = np.zeros((*idx.shape, *a.shape[1:]), a.dtype)
            out[held] = a[local[held]]
            return out
        if size == 0:  # a shard of padding only
            return xp.zeros((*idx.shape, *a.shape[1:]), a.dtype)
        mask = held.reshape(held.shape + (1,) * (a.ndim - 1))
        return xp.where(mask, a[local], xp.zeros((), a.dtype))

    return jax.tree.map(pick, shard)


def scatter_rows(picked, axis_name: str) -> Batch:
    """Each device's rows of a step's minibatches, from every device's :func:`pick_rows` of
    them (``[k, B, ...]``, zeros where it does not hold a row): summed over the devices (every
    row has exactly one holder, so the sum is exact) and scattered, device i receiving rows
    ``i * b:(i + 1) * b`` of each minibatch (``b = B / devices``), back to back: ``[k * b, ...]``.
    """
    n = jax.lax.axis_size(axis_name)

    def scatter(a):
        k, batch = a.shape[:2]
        a = a.reshape((k, n, batch // n, *a.shape[2:]))
        mine = jax.lax.psum_scatter(a, axis_name, scatter_dimension=1)
        return mine.reshape((-1, *mine.shape[2:]))

    return jax.tree.map(scatter, picked)


def exchange_rows(shard, idx: Array, axis_name: str) -> Batch:
    """This device's rows of the minibatches ``idx`` (``[k, B]`` global row numbers) of a
    dataset sharded over ``axis_name`` (``shard``: this device's :func:`shard_rows` rows)."""
    first_row = jax.lax.axis_index(axis_name) * len(jax.tree.leaves(shard)[0])
    return scatter_rows(pick_rows(shard, idx, first_row), axis_name)


train_epoch = jax.jit(
    train_epoch_body,
    donate_argnums=0,
    static_argnames=("batch_size", "step_fn", "axis_name", "steps", "num_examples"),
)
"""``train_epoch(state, data, batch_size=B[, steps=S, step_fn=...])``: :func:`train_epoch_body`
compiled, donating the state."""

"""Data parallelism: the per-device bodies of :mod:`jaxgan.train` over several devices.

The bodies are written once, with an ``axis_name``; this module wraps them two ways:

- :data:`pmap_train_step`: ``jax.pmap`` of the step. The state carries a leading device axis
  (:func:`replicate`), the batch is split by :func:`shard_batch`.
- :func:`sharded_train_step` and :func:`sharded_train_epoch`: ``jax.jit`` of ``jax.shard_map``
  over a one-axis :func:`data_mesh`. The state is an ordinary (replicated) global array, which
  is what Orbax checkpoints and what spans the processes of a multi-host run; the experiments
  use these.

Either way each device takes its share of every global minibatch and of the global noise and
gradients are averaged with ``lax.pmean``, so N devices compute the update that one device
computes on the whole batch (up to floating-point summation order).

``shard_map`` runs with ``check_vma=False``, the semantics ``pmap`` has: with the check on,
differentiating replicated parameters through per-device data already sums the gradients over
devices, and the body's own ``pmean`` would then scale them by the device count.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan.train import Batch, GANState, train_epoch_body, train_step_body

AXIS = "data"


def data_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh over the first ``num_devices`` devices of all processes (default all)."""
    devices = jax.devices()
    return Mesh(np.array(devices[: num_devices or len(devices)]), (AXIS,))


def replicated(mesh: Mesh):
    """The sharding that keeps a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def to_global(tree, sharding: NamedSharding):
    """``tree`` (the same values in every process) as global arrays laid out by ``sharding``.

    Unlike ``jax.device_put``, this also works when the sharding spans other processes' devices
    (multi-host). PRNG keys travel as their raw data.
    """

    def put(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(
                put(jax.random.key_data(x)), impl=jax.random.key_impl(x)
            )
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def host_local(tree):
    """This process's copy of each replicated array of ``tree`` (on its first device), for
    evaluation, logging and sampling outside the sharded program."""

    def local(x):
        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            return x.addressable_data(0)
        return x

    return jax.tree.map(local, tree)


def is_primary() -> bool:
    """True in the process that writes logs and figures (process 0; the only one usually)."""
    return jax.process_index() == 0


def sync_processes(name: str) -> None:
    """Waits until every process reaches this point (a no-op with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins a multi-process run (``jax.distributed.initialize``) before any device is used.

    On TPU VM pods (and SLURM, Open MPI, Kubernetes) the arguments are detected from the
    environment; elsewhere give all three. CPU processes exchange collectives over gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def shard_batch(batch: Batch, num_devices: int, d_steps: int) -> Batch:
    """Splits a global batch of ``d_steps`` minibatches back to back into per-device batches.

    ``[k * B, ...]`` becomes ``[num_devices, k * B / num_devices, ...]``: device i gets rows
    ``i * b:(i + 1) * b`` of each of the k minibatches (``b = B / num_devices``), in order.
    """

    def split(a):
        a = a.reshape((d_steps, num_devices, -1, *a.shape[1:]))
        return a.swapaxes(0, 1).reshape((num_devices, -1, *a.shape[3:]))

    return jax.tree.map(split, batch)


def replicate(tree, num_devices: int | None = None):
    """``num_devices`` copies of ``tree`` (default: one per local device) stacked on a leading
    axis, the layout ``pmap`` maps over."""
    n = num_devices or jax.local_device_count()
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), tree)


def unreplicate(tree):
    """The first device's copy of a :func:`replicate`-d tree."""
    return jax.tree.map(lambda x: x[0], tree)


pmap_train_step = jax.pmap(
    functools.partial(train_step_body, axis_name=AXIS), axis_name=AXIS, donate_argnums=0
)
"""``pmap_train_step(replicated_state, shard_batch(batch, n, k))``: the data-parallel step."""


@functools.cache
def sharded_train_step(mesh: Mesh):
    """``step(state, batch)`` over ``mesh``: the global batch in, the replicated state out."""

    def per_device(state: GANState, batch: Batch):
        batch = jax.tree.map(lambda a: a.reshape((-1, *a.shape[2:])), batch)  # [k * b, ...]
        return train_step_body(state, batch, axis_name=AXIS)

    step = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(P(), P(None, AXIS)),
        out_specs=P(),
        check_vma=False,  # see the module docstring
    )

    def train_step(state: GANState, batch: Batch):
        k = state.config.d_steps
        return step(state, jax.tree.map(lambda a: a.reshape((k, -1, *a.shape[1:])), batch))

    return jax.jit(train_step, donate_argnums=0)


@functools.cache
def sharded_train_epoch(mesh: Mesh, batch_size: int, steps: int | None = None):
    """``epoch(state, data)`` over ``mesh``, with data and state replicated on every device
    (``steps``: a chunk of the epoch, as in :func:`jaxgan.train.train_epoch_body`)."""
    body = functools.partial(train_epoch_body, batch_size=batch_size, axis_name=AXIS, steps=steps)
    sharded = jax.shard_map(body, mesh=mesh, in_specs=(P(), P()), out_specs=P(), check_vma=False)
    return jax.jit(sharded, donate_argnums=0)

"""Data parallelism: the per-device step and epoch bodies over several devices.

The bodies are written once, with an ``axis_name``; this module wraps them two ways, for the
GAN update by default and for any ``step_fn(state, batch, axis_name=...)`` passed instead
(a variant's own step over its own state):

- :func:`pmap_step` (:data:`pmap_train_step`): ``jax.pmap`` of the step. The state carries a
  leading device axis (:func:`replicate`), the batch is split by :func:`shard_batch`.
- :func:`sharded_train_step` and :func:`sharded_train_epoch`: ``jax.jit`` of ``jax.shard_map``
  over a one-axis :func:`data_mesh`. The state is an ordinary (replicated) global array, which
  is what Orbax checkpoints and what spans the processes of a multi-host run; the experiments
  use these.

Either way each device takes its share of every global minibatch and of the global noise and
gradients are averaged with ``lax.pmean``, so N devices compute the update that one device
computes on the whole batch (up to floating-point summation order).

The dataset itself is split over the mesh (:func:`shard_data`): device i holds rows
``i * S:(i + 1) * S`` and each process loads only the rows of its own devices
(:func:`process_rows`). Every device computes the global data order, picks the rows of each
minibatch it holds, and one reduce-scatter hands every device its share
(:func:`jaxgan.epoch.exchange_rows`): the batches a single device with the whole set would
draw, with 1/N of the data per device.

``shard_map`` runs with ``check_vma=False``, the semantics ``pmap`` has: with the check on,
differentiating replicated parameters through per-device data already sums the gradients over
devices, and the body's own ``pmean`` would then scale them by the device count.
"""

from __future__ import annotations

import functools
import os
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan.epoch import (
    StepFn,
    minibatches_per_step,
    scatter_rows,
    shard_rows,
    train_epoch_body,
)
from jaxgan.state import Batch
from jaxgan.step import train_step_body

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


def tpu_pod_environment(
    environ: Mapping[str, str] = os.environ, metadata: Callable[[str], str | None] | None = None
) -> str | None:
    """Why this process's environment says it is one host of a multi-host TPU pod slice (the
    evidence, in words), or None on a single host or off TPU.

    Looked up where ``jax.distributed.initialize`` looks: ``TPU_PROCESS_ADDRESSES`` or
    ``TPU_WORKER_HOSTNAMES`` (GKE), ``MEGASCALE_COORDINATOR_ADDRESS`` (multislice), else, on
    a Cloud TPU VM (TPU device files present), the ``worker-network-endpoints`` entry of the
    GCE metadata server (``metadata``: a lookup of one entry; default: the server itself).
    """
    for name in ("TPU_PROCESS_ADDRESSES", "TPU_WORKER_HOSTNAMES"):
        if environ.get(name):
            hosts = len(environ[name].split(","))
            return f"{name} lists {hosts} hosts" if hosts > 1 else None
    if environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return "MEGASCALE_COORDINATOR_ADDRESS is set (a multislice run)"
    if metadata is None:
        if not any(Path("/dev").glob("accel*")) and not Path("/dev/vfio").is_dir():
            return None  # not a TPU VM: no metadata server to ask
        metadata = _gce_metadata
    endpoints = metadata("worker-network-endpoints")
    hosts = len(endpoints.split(",")) if endpoints else 0
    return f"the TPU VM's metadata lists {hosts} workers" if hosts > 1 else None


def _gce_metadata(name: str) -> str | None:
    """One instance attribute from the GCE metadata server, or None (not on GCE, not set)."""
    request = urllib.request.Request(
        f"http://metadata.google.internal/computeMetadata/v1/instance/attributes/{name}",
        headers={"Metadata-Flavor": "Google"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


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


def local_positions(mesh: Mesh) -> list[int]:
    """The positions in ``mesh`` of this process's devices."""
    return [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]


def process_rows(mesh: Mesh | None, num_examples: int) -> slice:
    """The rows of a ``num_examples`` dataset that this process holds: those of its devices'
    shards of ``mesh`` (all of them without a mesh).

    Raises:
      ValueError: this process has no device in ``mesh``, or its devices are not adjacent in
        it (``data_mesh`` orders devices by process).
    """
    if mesh is None:
        return slice(0, num_examples)
    size = shard_rows(num_examples, mesh.size)
    mine = local_positions(mesh)
    if not mine or mine != list(range(mine[0], mine[-1] + 1)):
        raise ValueError(
            f"process {jax.process_index()} holds devices {mine} of the {mesh.size}-device "
            "mesh; it needs a contiguous, non-empty run of them (train on all devices)"
        )
    return slice(min(mine[0] * size, num_examples), min((mine[-1] + 1) * size, num_examples))


def shard_data(local: Batch, mesh: Mesh, num_examples: int) -> Batch:
    """The dataset as global arrays split over ``mesh``'s devices (``[devices * S, ...]``,
    device i holding rows ``i * S:(i + 1) * S``, zeros past the end), built from ``local``:
    this process's :func:`process_rows` of it."""
    rows = process_rows(mesh, num_examples)
    size = shard_rows(num_examples, mesh.size)
    sharding = NamedSharding(mesh, P(AXIS))

    def put(a):
        a = np.asarray(a)
        if len(a) != rows.stop - rows.start:
            raise ValueError(f"expected this process's {rows} of the data, got {len(a)} rows")

        def device_rows(index):
            start, stop = index[0].indices(mesh.size * size)[:2]
            out = np.zeros((stop - start, *a.shape[1:]), a.dtype)
            lo, hi = max(start, rows.start), min(stop, rows.stop)
            out[lo - start : max(lo, hi) - start] = a[lo - rows.start : max(lo, hi) - rows.start]
            return out

        return jax.make_array_from_callback((mesh.size * size, *a.shape[1:]), sharding, device_rows)

    return jax.tree.map(put, local)


def shard_batch(batch: Batch, num_devices: int, d_steps: int) -> Batch:
    """Splits a global batch of ``d_steps`` minibatches back to back into per-device batches.

    ``[k * B, ...]`` becomes ``[num_devices, k * B / num_devices, ...]``: device i gets rows
    ``i * b:(i + 1) * b`` of each of the k minibatches (``b = B / num_devices``), in order.
    """

    rows = jax.tree.leaves(batch)[0].shape[0]
    check_divides(rows // d_steps, num_devices)

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


def check_divides(batch_size: int, num_devices: int, what: str = "a minibatch") -> None:
    """Raises ``ValueError`` unless ``batch_size`` rows split evenly over ``num_devices``."""
    if batch_size % num_devices:
        valid = [n for n in range(1, num_devices + 1) if batch_size % n == 0]
        raise ValueError(
            f"{what} of {batch_size} does not split over {num_devices} devices; use a batch "
            f"size that is a multiple of {num_devices}, or {', '.join(map(str, valid))} devices"
        )


@functools.cache
def pmap_step(step_fn: StepFn = train_step_body):
    """``step(replicated_state, shard_batch(batch, n, k))``: ``jax.pmap`` of ``step_fn``."""
    return jax.pmap(functools.partial(step_fn, axis_name=AXIS), axis_name=AXIS, donate_argnums=0)


pmap_train_step = pmap_step()
"""``pmap_train_step(replicated_state, shard_batch(batch, n, k))``: the data-parallel step."""


@functools.cache
def sharded_train_step(mesh: Mesh, step_fn: StepFn = train_step_body):
    """``step(state, batch)`` over ``mesh``: the global batch in, the replicated state out
    (``step_fn``: the per-device step, default the GAN update)."""

    def per_device(state, batch: Batch):
        batch = jax.tree.map(lambda a: a.reshape((-1, *a.shape[2:])), batch)  # [k * b, ...]
        return step_fn(state, batch, axis_name=AXIS)

    step = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(P(), P(None, AXIS)),
        out_specs=P(),
        check_vma=False,  # see the module docstring
    )

    def train_step(state, batch: Batch):
        k = minibatches_per_step(state)
        if not isinstance(batch, dict):
            raise TypeError(f"a batch is a dict of arrays, not a {type(batch).__name__}")
        rows = jax.tree.leaves(batch)[0].shape[0]
        if rows % k:
            raise ValueError(f"batch of {rows} does not split into {k} minibatches")
        check_divides(rows // k, mesh.size)
        return step(state, jax.tree.map(lambda a: a.reshape((k, -1, *a.shape[1:])), batch))

    return jax.jit(train_step, donate_argnums=0)


@functools.cache
def picked_train_step(mesh: Mesh, prepare=None, step_fn: StepFn = train_step_body):
    """``step(state, picked)`` over ``mesh`` for data held in the processes' host memory:
    ``picked`` is ``[devices, k, B, ...]``, device i's block holding the rows of the step's
    minibatches that lie in its shard (:func:`jaxgan.epoch.pick_rows`, zeros elsewhere); the
    devices exchange them (:func:`jaxgan.epoch.scatter_rows`) and convert their rows with
    ``prepare`` before the step."""

    def per_device(state, picked: Batch):
        batch = scatter_rows(jax.tree.map(lambda a: a[0], picked), AXIS)
        return step_fn(state, prepare(batch) if prepare else batch, axis_name=AXIS)

    step = jax.shard_map(
        per_device, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(), check_vma=False
    )
    return jax.jit(step, donate_argnums=0)


@functools.cache
def sharded_train_epoch(
    mesh: Mesh,
    batch_size: int,
    num_examples: int,
    steps: int | None = None,
    step_fn: StepFn = train_step_body,
):
    """``epoch(state, data)`` over ``mesh``: the state replicated, the ``num_examples`` rows of
    data split over the devices by :func:`shard_data` (``steps``: a chunk of the epoch, as in
    :func:`jaxgan.epoch.train_epoch_body`; ``step_fn``: the per-device step)."""
    check_divides(batch_size, mesh.size)
    body = functools.partial(
        train_epoch_body,
        batch_size=batch_size,
        step_fn=step_fn,
        axis_name=AXIS,
        steps=steps,
        num_examples=num_examples,
    )
    sharded = jax.shard_map(
        body, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(), check_vma=False
    )
    return jax.jit(sharded, donate_argnums=0)

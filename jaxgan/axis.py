"""The data-parallel axis as a value the step's parts take: one device, or N that split a batch.

Written once, the same code runs on one device (``DataAxis()``) and inside ``pmap`` or
``shard_map`` (``DataAxis("data")``): gradients, batch statistics and metrics are averaged
over the devices, and every per-example random draw (noise, labels, instance noise, targets,
penalty weights) is made for the global batch and sliced, so N devices compute what one
device computes on the whole batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class DataAxis:
    """The devices one step's batch is split over.

    Attributes:
      name: the ``axis_name`` of the enclosing ``pmap``/``shard_map``, or None on one device.
    """

    name: str | None = None

    def mean(self, tree):
        """``tree`` averaged over the devices (itself on one device)."""
        return tree if self.name is None else jax.lax.pmean(tree, self.name)

    def rows(self, key: Array, n: int, draw: Callable[[Array, int], Array]) -> Array:
        """This device's ``n`` rows of ``draw(key, rows)`` drawn for the global batch: the same
        numbers a one-device run draws for those rows."""
        if self.name is None:
            return draw(key, n)
        return self.own_rows(draw(key, n * jax.lax.axis_size(self.name)))

    def gather(self, x: Array) -> Array:
        """The global batch of which ``x`` (``[n, ...]``) is this device's rows, in device order
        (``x`` itself on one device)."""
        return x if self.name is None else jax.lax.all_gather(x, self.name, tiled=True)

    def own_rows(self, everyone: Array) -> Array:
        """This device's rows of a global batch ``everyone``: the inverse of :meth:`gather`."""
        if self.name is None:
            return everyone
        n = everyone.shape[0] // jax.lax.axis_size(self.name)
        return jax.lax.dynamic_slice_in_dim(everyone, jax.lax.axis_index(self.name) * n, n)

    def local_key(self, key: Array) -> Array:
        """A key for the models' own randomness (dropout), distinct on every device."""
        return key if self.name is None else jax.random.fold_in(key, jax.lax.axis_index(self.name))

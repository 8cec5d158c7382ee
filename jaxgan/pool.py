"""A history of generated images for the discriminator (Shrivastava et al. 2017, as CycleGAN
uses it): D is updated on a mix of the newest fakes and older ones, which damps oscillation.

:class:`ImagePool` is arrays only (the stored images and their count), so it lives in a
training state: checkpointed, restored exactly, ``jax.vmap``-able, and the same on every
device of a data-parallel step (each device queries it with the global batch's fakes and the
same key, then keeps its own rows: :meth:`ImagePool.query_global`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxgan.axis import DataAxis

Array = jax.Array


class ImagePool(struct.PyTreeNode):
    """Up to ``capacity`` earlier generated images.

    Attributes:
      images: ``[capacity, ...]`` the stored images (zeros where none is stored yet).
      count: how many are stored (an int32 array, at most ``capacity``).
    """

    images: Array
    count: Array

    @classmethod
    def create(cls, capacity: int, image_shape: tuple[int, ...], dtype=jnp.float32) -> ImagePool:
        """An empty pool for ``capacity`` images of ``image_shape`` (0: a pool that stores
        nothing and returns the newest images)."""
        if capacity < 0:
            raise ValueError(f"an image pool's capacity must be >= 0, got {capacity}")
        return cls(jnp.zeros((capacity, *image_shape), dtype), jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        return self.images.shape[0]

    def query(self, images: Array, key: Array) -> tuple[ImagePool, Array]:
        """The images for D in place of ``images`` (``[n, ...]``), and the updated pool.

        Image by image, in order (CycleGAN's ``ImagePool.query``): while the pool is not full
        the image is stored and returned; once it is, with probability 1/2 a uniformly chosen
        stored image is returned and the new one takes its place, else the new one is returned.
        """
        if images.shape[1:] != self.images.shape[1:]:
            raise ValueError(
                f"images of shape {images.shape[1:]} for a pool of {self.images.shape[1:]}"
            )
        if not self.capacity:
            return self, images
        n = images.shape[0]
        swap_key, index_key = jax.random.split(key)
        swaps = jax.random.uniform(swap_key, (n,)) < 0.5
        picks = jax.random.randint(index_key, (n,), 0, self.capacity)

        def one(pool, inputs):
            stored, count = pool
            image, swap, pick = inputs
            filling = count < self.capacity
            slot = jnp.where(filling, count, pick)
            old = stored[slot]
            replace = filling | swap
            stored = jnp.where(replace, stored.at[slot].set(image), stored)
            out = jnp.where(swap & ~filling, old, image)
            return (stored, count + filling.astype(count.dtype)), out

        (stored, count), out = jax.lax.scan(one, (self.images, self.count), (images, swaps, picks))
        return self.replace(images=stored, count=count), out

    def query_global(self, images: Array, key: Array, axis: DataAxis) -> tuple[ImagePool, Array]:
        """:meth:`query` with the global batch of which ``images`` are this device's rows: the
        pool that a one-device step over the whole batch ends with (the same on every device),
        and this device's rows of what that step returns."""
        everyone, out = self.query(axis.gather(images), key)
        return everyone, axis.own_rows(out)

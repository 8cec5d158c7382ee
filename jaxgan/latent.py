"""Paths through the latent space, for looking at what a trained generator learned.

Nobody decides what a dimension of z means: one finds out by moving through z and watching the
samples change. :func:`interpolate` walks the line (``lerp``) or the great circle (``slerp``)
between two latent vectors; :func:`traverse` sweeps one dimension while the others stay fixed.
Both return ``[rows, steps, latent_dim]``: one path per row, ready for an image grid.

Slerp (Shoemake 1985; for GANs, White 2016 "Sampling Generative Networks") keeps Gaussian
latents at the norm the generator was trained on: in high dimensions N(0, I) samples lie near
the sphere of radius √d, and the midpoint of a straight line between two of them falls well
inside it (at about √(d/2) for orthogonal vectors), where G has seen no inputs.
"""

from __future__ import annotations

import jax.numpy as jnp

INTERPOLATIONS = ("lerp", "slerp")


def lerp(a: jnp.ndarray, b: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    """``(1 - t) a + t b`` for each ``t`` in ``[steps]``: ``[steps, *a.shape]``."""
    t = t.reshape((-1,) + (1,) * a.ndim)
    return (1 - t) * a + t * b


def slerp(a: jnp.ndarray, b: jnp.ndarray, t: jnp.ndarray, eps: float = 1e-6) -> jnp.ndarray:
    """Spherical interpolation from ``a`` to ``b`` (vectors ``[d]``) at each ``t`` in ``[steps]``.

    Moves along the great circle through the directions of ``a`` and ``b`` at a constant
    angular speed; the norm changes linearly from ``|a|`` to ``|b|``, so equal-norm endpoints
    give a path of that norm. (Anti)parallel endpoints have no unique circle: ``lerp`` then.
    """
    norm_a, norm_b = jnp.linalg.norm(a), jnp.linalg.norm(b)
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = jnp.arccos(jnp.clip(jnp.dot(unit_a, unit_b), -1.0, 1.0))
    t = t.reshape(-1, 1)
    sin = jnp.sin(omega)
    safe = jnp.where(sin > eps, sin, 1.0)
    direction = (jnp.sin((1 - t) * omega) * unit_a + jnp.sin(t * omega) * unit_b) / safe
    norm = (1 - t) * norm_a + t * norm_b
    return jnp.where(sin > eps, norm * direction, lerp(a, b, t[:, 0]))


def interpolate(
    starts: jnp.ndarray, ends: jnp.ndarray, steps: int, method: str = "slerp"
) -> jnp.ndarray:
    """Paths of ``steps`` points from each of ``starts [rows, d]`` to the matching ``ends``.

    Returns:
      ``[rows, steps, d]``; the first column is ``starts``, the last ``ends``.
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; choose one of {INTERPOLATIONS}")
    if steps < 2:
        raise ValueError(f"an interpolation needs steps >= 2, got {steps}")
    path = lerp if method == "lerp" else slerp
    t = jnp.linspace(0.0, 1.0, steps)
    return jnp.stack([path(a, b, t) for a, b in zip(starts, ends, strict=True)])


def traverse(bases: jnp.ndarray, dim: int, values: jnp.ndarray) -> jnp.ndarray:
    """Each of ``bases [rows, d]`` with dimension ``dim`` set to each of ``values [steps]``.

    Returns:
      ``[rows, steps, d]``, equal to the bases everywhere but in dimension ``dim``.
    """
    if not 0 <= dim < bases.shape[-1]:
        raise ValueError(f"dimension {dim} is outside the latent's 0..{bases.shape[-1] - 1}")
    paths = jnp.repeat(bases[:, None], len(values), axis=1)
    return paths.at[:, :, dim].set(values)

"""Mixed precision: the networks compute in a lower-precision dtype, everything else stays
float32.

A precision names the dtype of the networks' compute (:data:`PRECISIONS`). Under
``"bfloat16"``, :meth:`jaxgan.state.ModelState.apply` casts the float32 parameters and the
floating inputs to bfloat16 for the forward pass and casts the outputs back to float32, so:

- parameters, gradients (the casts' transposes return float32 cotangents), optimizer state and
  the EMA are float32;
- the losses, the penalties (R1's gradient is taken with respect to the float32 input), the
  metrics and the health monitor see float32 logits and samples;
- batch-norm statistics are float32: flax reduces them in float32 and the running averages
  are kept in the dtype they were created in.

The policy lives in one place, the model states, so a researcher's own loss or term (which
calls ``state.d.apply``) runs in the run's precision without doing anything. ``"float32"``
changes nothing: no casts are inserted, the numbers are bitwise those of a run without it.
bfloat16 has float32's range (no loss scaling is needed) and an 8-bit mantissa; it pays on
GPUs and TPUs, whose matrix units run it at several times the float32 rate.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PRECISIONS: dict[str, Any] = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(precision: str):
    """The networks' compute dtype of ``precision`` (a key of :data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(PRECISIONS)}")
    return PRECISIONS[precision]


def cast_floating(tree: Any, dtype) -> Any:
    """``tree`` with every floating-point array cast to ``dtype``; integer arrays (labels),
    PRNG keys and None left as they are."""

    def cast(leaf):
        floating = jnp.issubdtype(getattr(leaf, "dtype", jnp.int32), jnp.floating)
        return leaf.astype(dtype) if floating else leaf

    return jax.tree.map(cast, tree)


def cast_like(tree: Any, reference: Any) -> Any:
    """``tree`` cast leaf by leaf to the dtypes of ``reference`` (a tree of the same
    structure): updated batch statistics back to the dtype they are stored in."""
    return jax.tree.map(lambda a, r: a.astype(r.dtype), tree, reference)

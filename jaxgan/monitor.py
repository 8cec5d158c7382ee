"""Training-health monitor: says when a GAN run is failing, while it runs.

Two per-step indicators are computed inside the compiled step (so they cost no extra
device-to-host transfer: they come back with the step's other metrics), beside D's loss:

- ``d_winning`` (0 or 1): D's loss near zero and, for the cross-entropy losses, D(G(z)) near
  zero: D separates real from fake so well that G's gradients vanish;
- ``diversity``: the mean pairwise distance within G's batch over that within a real batch; a
  generator that collapses onto a few modes has a ratio far below 1.

:class:`HealthMonitor` watches them on the host: a condition that holds for ``window``
consecutive steps raises one warning (again only after it has cleared), naming likely
remedies. ``d_winning`` uses the loss's own threshold
(:attr:`~jaxgan.losses.GANLoss.winning_d_loss`), and D's loss above
:attr:`~jaxgan.losses.GANLoss.exploding_d_loss` is the imbalance the other way (``d_exploding``);
the Wasserstein critics' losses are unbounded and have neither. A run's evaluations are watched
too (:class:`QualityWatch`): for samples that score like noise, and for no new best in
:data:`PATIENCE` evaluations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.losses import GANLoss

WINNING_D_FAKE = 0.05  # D(G(z)) near zero, for the cross-entropy losses

REMEDIES = {
    "d_winning": "D is winning: G's gradients vanish. Try a lower --lr-d or a higher --lr-g, "
    "--real-target 0.9 (one-sided label smoothing), --instance-noise 0.1, --label-flip 0.05, "
    "fewer --d-steps, or --loss non_saturating / wgan_gp",
    "mode_collapse": "possible mode collapse: G's samples are far less diverse than the data. "
    "Try --ema-decay 0.999, minibatch standard deviation or packing in D, a lower learning "
    "rate, or --loss wgan_gp",
    "d_exploding": "D's loss is far above its value at chance: the networks are out of balance "
    "or diverging. Try lower learning rates (--lr-d, --lr-g), a penalty (--r1-gamma 1) or "
    "--loss hinge",
    "not_improving": "the samples stopped improving: the run may be past its best (--keep-best "
    "keeps that checkpoint), or need lower learning rates",
    "noise": "the samples look like noise (or one pattern): training is not working; check the "
    "data and the learning rates",
}
MIN_WINDOW = 10  # the shortest window a short run's monitor watches
PATIENCE = 3  # evaluations without a new best before "not improving" is reported


def d_winning(loss: GANLoss, d_loss: jax.Array, d_fake: jax.Array) -> jax.Array:
    """1.0 when D is winning this step (see the module docstring), else 0.0; always 0.0 for a
    loss without a ``winning_d_loss`` threshold."""
    if loss.winning_d_loss is None:
        return jnp.zeros(())
    winning = d_loss < loss.winning_d_loss
    if loss.cross_entropy:
        winning &= d_fake < WINNING_D_FAKE
    return winning.astype(jnp.float32)


def mean_pairwise_distance(x: jax.Array) -> jax.Array:
    """Mean Euclidean distance between the distinct samples of a batch ``[n, ...]``."""
    x = x.reshape((x.shape[0], -1))
    sq = jnp.sum(x * x, axis=1)
    dist = jnp.sqrt(jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    n = x.shape[0]
    return (jnp.sum(dist) - jnp.trace(dist)) / (n * (n - 1))


def diversity(fake: jax.Array, real: jax.Array) -> jax.Array:
    """G's batch diversity relative to a real batch's (1 = as diverse as the data)."""
    fake, real = jax.lax.stop_gradient((fake, real))
    return mean_pairwise_distance(fake) / (mean_pairwise_distance(real) + 1e-12)


def fitted_window(window: int, total_steps: int) -> int:
    """The window a run of ``total_steps`` watches: ``window``, or a fifth of a run shorter
    than five windows (at least :data:`MIN_WINDOW` steps), so a short run is watched too."""
    return min(window, max(MIN_WINDOW, total_steps // 5))


@dataclasses.dataclass(frozen=True)
class QualityWatch:
    """What the evaluations are watched for: ``metric`` (e.g. ``"fid_mnist"``) not reaching a
    new best for :data:`PATIENCE` evaluations in a row, and values beyond ``noise`` (samples
    that look like noise).

    Attributes:
      metric: the evaluation's quality number.
      mode: ``"min"`` or ``"max"``: which way is better.
      noise: the value beyond which samples look like noise (None: not checked).
    """

    metric: str
    mode: str = "min"
    noise: float | None = None

    def better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b


@dataclasses.dataclass
class HealthMonitor:
    """Turns the per-step indicators and the evaluations into warnings.

    Attributes:
      window: consecutive steps a condition must hold before it is reported.
      collapse_ratio: ``diversity`` below this counts as collapse.
      exploding_d_loss: D's loss above this counts as imbalance the other way (D far worse
        than chance: :attr:`~jaxgan.losses.GANLoss.exploding_d_loss`); None: not watched.
      quality: what the evaluations are watched for (:class:`QualityWatch`), or None.
      state: consecutive counts, the best evaluation and the warnings so far; JSON-able,
        saved with checkpoints.
    """

    window: int = 500
    collapse_ratio: float = 0.25
    exploding_d_loss: float | None = None
    quality: QualityWatch | None = None
    state: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"d_winning": 0, "mode_collapse": 0, "warnings": []}
    )

    def update(self, first_step: int, metrics: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Feeds the per-step metrics of steps ``first_step + 1, ...``; returns new warnings,
        each ``{"step", "kind", "message"}``."""
        conditions = {}  # a step of one's own may measure none of them
        if "d_winning" in metrics:
            conditions["d_winning"] = np.asarray(metrics["d_winning"]) > 0.5
        if "diversity" in metrics:
            conditions["mode_collapse"] = np.asarray(metrics["diversity"]) < self.collapse_ratio
        if "d_loss" in metrics and self.exploding_d_loss is not None:
            conditions["d_exploding"] = np.asarray(metrics["d_loss"]) > self.exploding_d_loss
        new = []
        for kind, holds in conditions.items():
            for i, h in enumerate(holds.tolist()):
                count = self.state.get(kind, 0) + 1 if h else 0
                self.state[kind] = count
                if count == self.window:
                    step = first_step + i + 1
                    new.append(_warning(step, kind, f"held for {self.window} steps"))
        self.state["warnings"].extend(new)
        return new

    def evaluated(self, step: int, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Feeds an evaluation's values at ``step``; returns new warnings (once each kind)."""
        watch = self.quality
        if watch is None or watch.metric not in values:
            return []
        value = float(values[watch.metric])
        reported = {w["kind"] for w in self.state["warnings"]}
        new = []
        if watch.noise is not None and not watch.better(value, watch.noise):
            if "noise" not in reported:
                new.append(_warning(step, "noise", f"{watch.metric} {value:.4g}"))
        best = self.state.get("best")
        if best is None or watch.better(value, best["value"]):
            self.state["best"] = {"value": value, "step": step, "since": 0}
        else:
            best["since"] += 1
            if best["since"] == PATIENCE and "not_improving" not in reported:
                detail = (
                    f"{watch.metric} {value:.4g}, best {best['value']:.4g} at step "
                    f"{best['step']}, {PATIENCE} evaluations ago"
                )
                new.append(_warning(step, "not_improving", detail))
        self.state["warnings"].extend(new)
        return new


def _warning(step: int, kind: str, detail: str) -> dict[str, Any]:
    return {
        "step": step,
        "kind": kind,
        "message": f"warning at step {step}: {REMEDIES[kind]} ({detail})",
    }

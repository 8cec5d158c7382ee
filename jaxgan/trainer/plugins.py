"""What :func:`jaxgan.trainer.fit` does besides training, as values an experiment passes to it:
epoch hooks (sample grids, evaluations that return named values) and the checkpoint policy.

An epoch hook is any callable ``hook(state, epoch) -> {name: value}``, run after each epoch on
the host-local state; its values join the epoch's log record, so they reach metrics.jsonl,
TensorBoard, the progress line's last values, ``--keep-best`` and summary.json.
:class:`Evaluation` is the hook that scores the state at chosen epochs and tells the health
monitor (:class:`~jaxgan.monitor.QualityWatch`) which of its values to watch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from jaxgan.monitor import QualityWatch


class EpochHook(Protocol):
    def __call__(self, state: Any, epoch: int) -> Mapping[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Scores the state every ``every`` epochs (0: never before the last) and after the run's
    last epoch, ``epochs``.

    Attributes:
      score: the state's named values (FID, mode counts, moments, ...).
      epochs: the run's last epoch, always evaluated.
      every: the epochs between evaluations before it.
      watch: which of the values the health monitor watches for samples that stop improving or
        look like noise (None: none).
    """

    score: Callable[[Any], Mapping[str, Any]]
    epochs: int
    every: int = 1
    watch: QualityWatch | None = None

    def __call__(self, state: Any, epoch: int) -> Mapping[str, Any]:
        due = epoch == self.epochs or (self.every > 0 and epoch % self.every == 0)
        return self.score(state) if due else {}


@dataclasses.dataclass(frozen=True)
class CheckpointPolicy:
    """When a run saves (besides at its end and on a signal, which always save).

    Attributes:
      every_epochs: epochs between checkpoints (0: only at the end).
      every_steps: steps between checkpoints instead (0: by epochs); epochs then run in chunks,
        which is also how soon a signal is answered.
    """

    every_epochs: int = 10
    every_steps: int = 0

    @classmethod
    def of(cls, config: Any) -> CheckpointPolicy:
        """The policy of ``--checkpoint-every`` and ``--checkpoint-every-steps``."""
        return cls(config.checkpoint_every, config.checkpoint_every_steps)

    def chunk(self, per_epoch: int) -> int:
        """Steps per dispatch: a whole epoch, or the largest piece of it that both
        ``every_steps`` and the epoch are multiples of, so saves fall on chunk ends."""
        return math.gcd(self.every_steps, per_epoch) if self.every_steps else per_epoch

    def due(self, step: int, epoch: int, epoch_done: bool) -> bool:
        """Whether a save is due after ``step`` (in ``epoch``, at its end when ``epoch_done``)."""
        if self.every_steps:
            return step % self.every_steps == 0
        return epoch_done and self.every_epochs > 0 and epoch % self.every_epochs == 0

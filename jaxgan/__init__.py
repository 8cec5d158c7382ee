"""jaxgan: generative adversarial networks in pure JAX.

``train_step(state, batch)`` is the jit-compiled alternating update over a :class:`GANState`
(both Flax TrainStates, the PRNG key and the step), composed of what its :class:`StepConfig`
names: a :class:`GANLoss` (pure functions of D's logits, :mod:`jaxgan.losses`), the terms added
to either loss (:mod:`jaxgan.terms`), and what G takes and D judges (:mod:`jaxgan.inputs`). The
runners (:func:`train_epoch`, :mod:`jaxgan.parallel`, :mod:`jaxgan.stream`) take any step and
any state with ``step`` and ``key``. The networks are Flax modules in :mod:`jaxgan.models`.
"""

from jaxgan.axis import DataAxis
from jaxgan.epoch import train_epoch, train_epoch_body
from jaxgan.inputs import AuxiliaryClassifier, ClassConditional, FromBatch, Unconditional
from jaxgan.losses import LOSSES, GANLoss, get_loss
from jaxgan.pool import ImagePool
from jaxgan.state import GANState, ModelState, StepConfig, generate_samples, sample_latent
from jaxgan.step import train_step, train_step_body
from jaxgan.terms import (
    DistanceToTarget,
    FeatureContent,
    GradientPenalty,
    InstanceNoise,
    L1ToTarget,
    LabelTargets,
    MSEToTarget,
    R1Penalty,
    R2Penalty,
)

__all__ = [
    "LOSSES",
    "AuxiliaryClassifier",
    "ClassConditional",
    "DataAxis",
    "DistanceToTarget",
    "FeatureContent",
    "FromBatch",
    "GANLoss",
    "GANState",
    "GradientPenalty",
    "ImagePool",
    "InstanceNoise",
    "L1ToTarget",
    "LabelTargets",
    "MSEToTarget",
    "ModelState",
    "R1Penalty",
    "R2Penalty",
    "StepConfig",
    "Unconditional",
    "generate_samples",
    "get_loss",
    "sample_latent",
    "train_epoch",
    "train_epoch_body",
    "train_step",
    "train_step_body",
]

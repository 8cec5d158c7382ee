"""jaxgan: generative adversarial networks in pure JAX.

``train_step(state, batch)`` is the jit-compiled alternating update over a :class:`GANState`
(both Flax TrainStates, the PRNG key and the step); the losses are pure functions in
:mod:`jaxgan.losses`, the networks Flax modules in :mod:`jaxgan.models`.
"""

from jaxgan.losses import LOSSES, GANLoss, get_loss
from jaxgan.train import (
    GANState,
    StepConfig,
    generate_samples,
    sample_latent,
    train_epoch,
    train_step,
    train_step_body,
)

__all__ = [
    "LOSSES",
    "GANLoss",
    "GANState",
    "StepConfig",
    "generate_samples",
    "get_loss",
    "sample_latent",
    "train_epoch",
    "train_step",
    "train_step_body",
]

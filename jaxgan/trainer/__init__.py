"""The trainer: what turns a model, a step and data into a run with a workdir.

:mod:`jaxgan.trainer.config` (the options every experiment shares, optimizers, initial state),
:mod:`jaxgan.trainer.run` (open, resume and close a workdir), :mod:`jaxgan.trainer.fit` (the
training loop over any step), :mod:`jaxgan.trainer.plugins` (what the loop does besides
training: epoch hooks, evaluations, the checkpoint policy), :mod:`jaxgan.trainer.images`
(sample grids, evaluation, figures and the run of the image experiments). The command line is
:mod:`jaxgan.cli`.
"""

from jaxgan.trainer.config import (
    ConditionalConfig,
    TrainConfig,
    create_state,
    init_state,
    make_optimizer,
    override,
)
from jaxgan.trainer.fit import fit
from jaxgan.trainer.plugins import CheckpointPolicy, EpochHook, Evaluation
from jaxgan.trainer.run import (
    Run,
    choose_devices,
    load_rows,
    model_axis,
    open_experiment,
    open_run,
)

__all__ = [
    "CheckpointPolicy",
    "ConditionalConfig",
    "EpochHook",
    "Evaluation",
    "Run",
    "TrainConfig",
    "choose_devices",
    "create_state",
    "fit",
    "init_state",
    "load_rows",
    "make_optimizer",
    "model_axis",
    "open_experiment",
    "open_run",
    "override",
]

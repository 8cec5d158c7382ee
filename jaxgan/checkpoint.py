"""A thin layer over Orbax: the whole :class:`~jaxgan.train.GANState` in ``<workdir>/checkpoints``.

The state is saved as one pytree (both TrainStates with optimizer and batch-norm state, the EMA
parameters, the PRNG key and the step), under its step number. Restoring needs an abstract
state of the same structure, which ``jax.eval_shape`` of the state's constructor provides.
"""

from __future__ import annotations

import os
from pathlib import Path

import orbax.checkpoint as ocp

from jaxgan.data import DataError
from jaxgan.train import GANState

CHECKPOINT_DIR = "checkpoints"


def _manager(workdir: str | os.PathLike, *, create: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=3, create=create)
    return ocp.CheckpointManager(Path(workdir).absolute() / CHECKPOINT_DIR, options=options)


def save(workdir: str | os.PathLike, state: GANState) -> None:
    """Saves ``state`` under its step and waits until the checkpoint is complete."""
    with _manager(workdir, create=True) as manager:
        manager.save(int(state.step), args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def restore_latest(workdir: str | os.PathLike, abstract_state: GANState) -> GANState:
    """Restores the newest checkpoint of ``workdir`` into the structure of ``abstract_state``."""
    directory = Path(workdir) / CHECKPOINT_DIR
    if not directory.is_dir():
        raise DataError(f"{workdir} has no {CHECKPOINT_DIR}/; train a model there first")
    with _manager(workdir, create=False) as manager:
        step = manager.latest_step()
        if step is None:
            raise DataError(f"{directory} holds no complete checkpoint; train a model there first")
        try:
            return manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except (ValueError, KeyError) as e:
            raise DataError(
                f"the checkpoint in {directory} does not fit the model of {workdir}/config.json "
                f"({str(e).splitlines()[0][:200]})"
            ) from e

"""2-D mixtures of Gaussians, the standard mode-collapse benchmark (protocol of PacGAN).

``ring``: 8 Gaussians on the unit circle, sigma 0.01. ``grid``: 25 Gaussians at
{-4, -2, 0, 2, 4}², sigma 0.05. 100,000 training samples; 2,500 generated samples are scored:
a sample is high quality within 3 sigma of its nearest mode, a mode is captured when a
high-quality sample is nearest to it, and the reverse KL compares the histogram of
high-quality samples over modes with the uniform distribution.

    python -m jaxgan.experiments.mixture2d --dataset grid --workdir runs/grid

writes summary.json (``modes``, ``num_modes``, ``hq_fraction``, ``reverse_kl``) and
samples.png. ``--pack m`` turns on PacGAN packing. The protocol's own networks (G: 4x400 ReLU
with batch norm; D: 3 maxout layers of 200 units x 5 pieces; Adam 1e-4, beta1 0.8) are
``--g-hidden 400 400 400 400 --g-batch-norm --d-hidden 200 200 200 --d-maxout 5 --lr-g 1e-4
--lr-d 1e-4 --beta1 0.8 --batch-size 100 --ema-decay 0 --lr-schedule constant``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import data, metrics, viz
from jaxgan.checkpoint import Checkpointer
from jaxgan.cli import cli_main, option, require, require_widths
from jaxgan.epoch import steps_per_epoch, train_epoch_body
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, evaluation_noise, generate_samples
from jaxgan.trainer import Evaluation, TrainConfig, fit, init_state, open_experiment, override
from jaxgan.trainer.console import print_closing

NAME = "mixture2d"
# Measured (experiments/results): a fourth layer lets G separate the grid's 25 modes sharply
# (96 % vs 90 % high quality) but made it collapse onto 3 of the ring's 8 modes.
DEFAULT_G_HIDDEN = {"ring": (256, 256, 256), "grid": (256, 256, 256, 256)}
# Measured (experiments/results): with the deeper G, grid seed 4 collapsed onto one mode for 40
# epochs; D's minibatch standard deviation prevents that and sharpens the modes sooner.
DEFAULT_D_MINIBATCH_STD = {"ring": False, "grid": True}


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    RESUME_SAFE: ClassVar[frozenset[str]] = TrainConfig.RESUME_SAFE | {"eval_samples"}
    EPOCH_METRICS: ClassVar[tuple[str, ...]] = (
        *TrainConfig.EPOCH_METRICS,
        *metrics.MODE_STATISTICS,
    )

    workdir: str = override("workdir", "runs/mixture2d")
    dataset: str = option("ring", "which mixture", choices=data.MIXTURES)
    epochs: int = override("epochs", 100)
    batch_size: int = override("batch_size", 200)
    lr_g: float = override("lr_g", 2e-4)
    lr_d: float = override("lr_d", 2e-4)
    lr_schedule: str = override("lr_schedule", "cosine")
    ema_decay: float = override("ema_decay", 0.999)
    latent_dim: int = override("latent_dim", 2)
    num_train: int = option(100_000, "real training samples")
    eval_samples: int = option(2_500, "generated samples scored at the end")
    g_hidden: tuple[int, ...] | None = option(
        None, "generator hidden widths (default: 3 x 256 for ring, 4 x 256 for grid)"
    )
    g_batch_norm: bool = option(False, "batch norm in the generator's hidden layers")
    d_hidden: tuple[int, ...] = option((256, 256, 256), "discriminator hidden widths")
    d_maxout: int = option(1, "maxout pieces per discriminator layer (1 = LeakyReLU layers)")
    pack: int = option(1, "PacGAN packing degree: D judges this many samples at once")
    d_minibatch_std: bool | None = option(
        None,
        "feed D the batch's standard deviation (ProGAN), against mode collapse "
        "(default: on for grid, off for ring)",
    )

    def validate(self) -> None:
        super().validate()
        require(self.num_train >= 1, f"--num-train must be >= 1, got {self.num_train}")
        require(self.eval_samples >= 1, f"--eval-samples must be >= 1, got {self.eval_samples}")
        require(self.d_maxout >= 1, f"--d-maxout must be >= 1, got {self.d_maxout}")
        require(self.pack >= 1, f"--pack must be >= 1, got {self.pack}")
        require(
            self.batch_size % self.pack == 0,
            f"--batch-size {self.batch_size} must be a multiple of --pack {self.pack}",
        )
        require_widths(self, "g_hidden", "d_hidden")

    def device_share_unit(self) -> int:
        return self.pack

    def resolved(self) -> Config:
        """This config with the dataset's defaults (G's widths, D's minibatch std) filled in."""
        return dataclasses.replace(
            self,
            g_hidden=DEFAULT_G_HIDDEN[self.dataset] if self.g_hidden is None else self.g_hidden,
            d_minibatch_std=(
                DEFAULT_D_MINIBATCH_STD[self.dataset]
                if self.d_minibatch_std is None
                else self.d_minibatch_std
            ),
        )


def build_models(
    config: Config, axis_name: str | None = None
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """G and D as configured (ReLU MLP generator; LeakyReLU or maxout discriminator)."""
    config = config.resolved()
    g_tricks, d_tricks = config.model_tricks(axis_name)
    generator = MLPGenerator(
        (2,), hidden=config.g_hidden, batch_norm=config.g_batch_norm, **g_tricks
    )
    discriminator = MLPDiscriminator(
        hidden=config.d_hidden,
        maxout_pieces=config.d_maxout,
        pack=config.pack,
        minibatch_std=config.d_minibatch_std,
        **d_tricks,
    )
    return generator, discriminator


class Seeds:
    """Seeds ``config.seed`` to ``config.seed + num - 1`` trained together as one program
    (``jax.vmap`` over GANStates, no workdir): seed ``s`` computes what ``--seed s`` computes,
    up to floating-point reassociation. For sweeps and tables over seeds."""

    def __init__(self, config: Config, num: int):
        config = config.resolved()
        configs = [dataclasses.replace(config, seed=config.seed + i) for i in range(num)]
        self.data = {
            "x": np.stack(
                [data.gaussian_mixture(c.dataset, c.num_train, seed=c.seed)["x"] for c in configs]
            )
        }
        generator, discriminator = build_models(config)
        total = steps_per_epoch(config.num_train, config.batch_size, config.d_steps) * config.epochs
        keys = jax.vmap(jax.random.key)(jnp.array([c.seed for c in configs]))
        self.states = jax.vmap(
            lambda k: init_state(config, generator, discriminator, total, key=k)
        )(keys)
        self._epoch = jax.jit(
            jax.vmap(lambda s, d: train_epoch_body(s, d, batch_size=config.batch_size)),
            donate_argnums=0,
        )
        self._sample = jax.jit(
            jax.vmap(lambda s: generate_samples(s, evaluation_noise(s, config.eval_samples)))
        )
        self._modes = data.mixture_modes(config.dataset)

        self.epoch = 0

    def train_epoch(self) -> None:
        self.states, _ = self._epoch(self.states, self.data)
        self.epoch += 1

    def fit(self, epochs: int, workdir: str | os.PathLike, every: int = 10) -> None:
        """Trains until ``epochs`` epochs are done, checkpointing the stacked states in
        ``workdir`` every ``every`` epochs and at the end, and resuming from the newest
        checkpoint there: a table that takes hours of CPU survives being stopped, and a resumed
        cell ends bitwise equal to an uninterrupted one (the data order lives in the states)."""
        checkpointer = Checkpointer(workdir, keep=1)
        try:
            restored = checkpointer.restore(self.states)
            if restored is not None:
                self.states, progress = restored
                self.epoch = progress["epoch"]
                print(f"resuming {workdir} at epoch {self.epoch}", flush=True)
            while self.epoch < epochs:
                self.train_epoch()
                if self.epoch % every == 0 or self.epoch == epochs:
                    checkpointer.save(self.epoch, self.states, {"epoch": self.epoch})
            checkpointer.wait()
        finally:
            checkpointer.close()

    def mode_statistics(self) -> list[dict[str, float]]:
        """Each seed's :func:`jaxgan.metrics.mode_statistics` of its evaluation samples."""
        return [
            metrics.mode_statistics(f, *self._modes) for f in np.asarray(self._sample(self.states))
        ]


def train(config: Config) -> dict:
    """Trains on the chosen mixture and writes its workdir; returns the summary.

    The mode statistics of the evaluation samples are logged every epoch, so the log shows
    when modes are found or lost (and ``--keep-best hq_fraction:max`` can keep the best).
    """
    config = config.resolved()
    modes, sigma = data.mixture_modes(config.dataset)
    real = data.gaussian_mixture(config.dataset, config.num_train, seed=config.seed)
    with open_experiment(config, NAME, build_models, config.num_train) as run:
        z_eval = evaluation_noise(run.state, config.eval_samples)

        def evaluate(state: GANState) -> dict:
            samples = np.asarray(generate_samples(state, z_eval))
            return metrics.mode_statistics(samples, modes, sigma)

        state, summary = fit(run, real, [Evaluation(evaluate, config.epochs)])
        fake = np.asarray(generate_samples(state, z_eval))
        stats = metrics.mode_statistics(fake, modes, sigma)
        summary.update(stats, dataset=config.dataset, eval_samples=config.eval_samples)
        title = (
            f"{config.dataset}: {stats['modes']}/{stats['num_modes']} modes, "
            f"{100 * stats['hq_fraction']:.1f}% high quality"
        )
        viz.scatter_modes(fake, modes, run.writer.path("samples.png"), title=title)
        run.writer.summary(summary)
    print_closing(
        summary,
        ("modes", "num_modes", "hq_fraction", "reverse_kl"),
        config.workdir,
        ["samples.png"],
    )
    return summary


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

"""The classic "GAN in 50 lines" toy: learn N(4, 1.25²) from uniform noise.

The generator's input is uniform noise, so G must learn a non-linear map (an approximation of
the normal quantile function). G and D are small ELU networks with two hidden layers, trained
with Adam at 2e-4, D then G. ``--minibatch-features`` feeds D each sample together with its
squared deviation from the batch mean, the original toy's guard against collapse to a point.

    python -m jaxgan.experiments.gaussian1d --workdir runs/gaussian1d

writes summary.json (``mean``, ``std``, ``skew``, ``kurtosis``, ``w1``) and histogram.png.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from jaxgan import data, metrics, viz
from jaxgan.cli import cli_main, option, require, require_widths
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, evaluation_noise, generate_samples
from jaxgan.trainer import Evaluation, TrainConfig, fit, open_experiment, override
from jaxgan.trainer.console import print_closing

NAME = "gaussian1d"
STATISTICS = ("mean", "std", "skew", "kurtosis", "w1")


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    RESUME_SAFE: ClassVar[frozenset[str]] = TrainConfig.RESUME_SAFE | {"eval_samples"}
    EPOCH_METRICS: ClassVar[tuple[str, ...]] = (*TrainConfig.EPOCH_METRICS, *STATISTICS)

    workdir: str = override("workdir", "runs/gaussian1d")
    epochs: int = override("epochs", 60)
    batch_size: int = override("batch_size", 200)
    lr_schedule: str = override("lr_schedule", "cosine")
    ema_decay: float = override("ema_decay", 0.999)
    latent_dim: int = override("latent_dim", 8)
    latent: str = override("latent", "uniform")
    target_mean: float = option(4.0, "mean of the real distribution")
    target_std: float = option(1.25, "standard deviation of the real distribution")
    num_train: int = option(100_000, "real training samples")
    hidden: tuple[int, ...] = option((64, 64), "hidden widths of G and D")
    minibatch_features: bool = option(True, "feed D each sample's deviation from the batch mean")
    eval_samples: int = option(20_000, "generated samples for the final statistics (>= 10000)")

    def validate(self) -> None:
        super().validate()
        require(self.target_std > 0, f"--target-std must be > 0, got {self.target_std}")
        require(self.num_train >= 1, f"--num-train must be >= 1, got {self.num_train}")
        require_widths(self, "hidden")
        require(self.eval_samples >= 2, f"--eval-samples must be >= 2, got {self.eval_samples}")


def build_models(
    config: Config, axis_name: str | None = None
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """G and D: ELU MLPs of the same widths; D optionally with the minibatch statistic."""
    g_tricks, d_tricks = config.model_tricks(axis_name)
    generator = MLPGenerator((1,), hidden=config.hidden, act="elu", **g_tricks)
    discriminator = MLPDiscriminator(
        hidden=config.hidden, act="elu", minibatch_features=config.minibatch_features, **d_tricks
    )
    return generator, discriminator


def statistics(samples: np.ndarray, config: Config) -> dict[str, float]:
    """Moments of ``samples`` and their Wasserstein-1 distance to the target normal."""
    stats = metrics.moments(samples)
    stats["w1"] = metrics.w1_to_normal(samples, config.target_mean, config.target_std)
    return stats


def train(config: Config) -> dict:
    """Trains the toy GAN and writes its workdir; returns the summary.

    The statistics of the evaluation samples are logged every epoch.
    """
    real = data.gaussian_1d(
        config.num_train, mean=config.target_mean, std=config.target_std, seed=config.seed
    )
    with open_experiment(config, NAME, build_models, config.num_train) as run:
        z_eval = evaluation_noise(run.state, config.eval_samples)

        def evaluate(state: GANState) -> dict:
            return statistics(np.asarray(generate_samples(state, z_eval)), config)

        state, summary = fit(run, real, [Evaluation(evaluate, config.epochs)])
        fake = np.asarray(generate_samples(state, z_eval))
        stats = statistics(fake, config)
        summary.update(
            stats,
            target_mean=config.target_mean,
            target_std=config.target_std,
            eval_samples=config.eval_samples,
        )
        title = f"N({config.target_mean}, {config.target_std}²): W1 = {stats['w1']:.4f}"
        viz.histogram_overlay(real["x"], fake, run.writer.path("histogram.png"), title=title)
        run.writer.summary(summary)
    print_closing(summary, STATISTICS, config.workdir, ["histogram.png"])
    return summary


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

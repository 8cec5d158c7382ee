"""Stacked MNIST: three MNIST digits drawn independently as the channels of one image, 1,000
modes (Metz et al. 2017), scored with the protocol of VEEGAN and PacGAN (Lin et al. 2018).

Each training image stacks three random training digits (padded to 32×32) as its red, green
and blue channels; its mode is the triple of digits, one of 1,000. At the end ``--eval-samples``
(26,000, the protocol's) samples are drawn, each channel is classified by the shipped MNIST
classifier, and summary.json records ``modes`` (of the 1,000, those with at least one sample)
and ``kl`` (KL of the samples' mode histogram to the uniform one), next to ``real_modes`` and
``real_kl``: the same scores of as many stacks of real test digits, what a perfect generator
would get (not 0: the classifier errs and 26,000 samples of 1,000 modes are a finite draw).

    python -m jaxgan.experiments.stacked_mnist --data-dir ../shared/data/mnist
    python -m jaxgan.experiments.stacked_mnist --pack 2        # PacDCGAN2
    python -m jaxgan.experiments.stacked_mnist --loss rpgan --r1-gamma 1 --r2-gamma 1

The networks are the DCGAN pair at 32×32×3 (:class:`~jaxgan.models.DCGANGenerator`,
:class:`~jaxgan.models.DCGANDiscriminator`), trained with PacGAN's settings (Adam 2e-4,
β1 0.5, batch 64, latent 100, the non-saturating loss); ``--pack m`` lets D judge m samples
stacked along its input channels (PacGAN); ``--no-d-batch-norm`` with ``--beta1 0 --beta2
0.99`` gives R3GAN's D and Adam. The CPU default trains widths 32 on a
:data:`CPU_DEFAULT_TRAIN`-image set for 40 epochs (16,000 steps); PacGAN's size is
``--g-width 64 --d-width 64 --num-train 128000 --epochs 50`` (a GPU's job), its harder setting
(D a quarter of G's size) ``--g-width 64 --d-width 40`` (1,068,928 and 260,960 parameters).
Runs resume where they stopped, like every jaxgan run; the outputs are DCGAN's (grids, figures,
metrics.jsonl, checkpoints), and ``python -m jaxgan.generate`` draws from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import numpy as np

from jaxgan import classifier, data, metrics
from jaxgan.cli import cli_main, option, require
from jaxgan.evaluate import as_mnist, generated_images, run_test_images
from jaxgan.models import DCGANDiscriminator, DCGANGenerator
from jaxgan.monitor import QualityWatch
from jaxgan.trainer import Evaluation, choose_devices, load_rows, override
from jaxgan.trainer.console import stage_bar
from jaxgan.trainer.images import ImageConfig, train_images

NAME = "stacked_mnist"
IMAGES = True  # its runs' samples are images (jaxgan.generate draws them)
SIZE = 32  # the digits padded to 32x32, DCGAN's smallest layout
CHANNELS = 3  # digits stacked per image: 10**3 modes
CPU_DEFAULT_TRAIN = 25_600
REAL_SEED = 1  # the draw of the real test stacks that give the real_* baseline


def draw_stacks(num: int, pool: int, seed: int) -> np.ndarray:
    """``[num, 3]`` indices into ``pool`` digits, drawn uniformly and independently."""
    return np.random.default_rng(seed).integers(0, pool, size=(num, CHANNELS))


def stack_digits(digits: np.ndarray, stacks: np.ndarray) -> np.ndarray:
    """uint8 ``[len(stacks), 32, 32, 3]``: image i has digit ``stacks[i, c]`` (of the uint8
    ``[N, 28, 28, 1]`` ``digits``) padded to 32×32 in channel c."""
    padded = data.digits_at(digits, SIZE)[..., 0]
    return np.stack([padded[stacks[:, c]] for c in range(CHANNELS)], axis=-1)


def channel_digits(images: np.ndarray) -> np.ndarray:
    """The classifier's digit in each channel of uint8 ``[n, 28, 28, 3]`` images: ``[n, 3]``."""
    return np.stack(
        [
            classifier.features_and_probs(images[..., c : c + 1])[1].argmax(axis=1)
            for c in range(images.shape[-1])
        ],
        axis=1,
    )


def real_scores(test_digits: np.ndarray, num: int) -> dict[str, float]:
    """:func:`~jaxgan.metrics.stacked_modes` of ``num`` stacks of real test digits, as
    ``real_modes`` and ``real_kl``: the protocol's floor for a sample of ``num``."""
    stacks = stack_digits(test_digits, draw_stacks(num, len(test_digits), REAL_SEED))
    scores = metrics.stacked_modes(channel_digits(as_mnist(stacks)))
    return {f"real_{name}": value for name, value in scores.items()}


def mode_scores(state, num: int) -> dict[str, float]:
    """``modes`` and ``kl`` of ``num`` samples of ``state``'s G (its evaluation noise)."""
    with stage_bar(f"evaluating {num} samples", 2) as bar:
        images, _ = generated_images(state, num)
        bar.update()
        scores = metrics.stacked_modes(channel_digits(images))
        bar.update()
    return scores


@dataclasses.dataclass(frozen=True)
class Config(ImageConfig):
    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset()
    HEADLINE: ClassVar[tuple[str, ...]] = ("modes", "kl", "real_modes", "real_kl")
    EVAL_METRICS: ClassVar[tuple[str, ...]] = ("modes", "kl")

    workdir: str = override("workdir", "runs/stacked_mnist")
    dataset: str = option("mnist", "the digits stacked", choices=("mnist",))
    conditional: str = option("none", "Stacked MNIST is unconditional", choices=("none",))
    num_train: int = option(CPU_DEFAULT_TRAIN, "stacked training images drawn (PacGAN's: 128000)")
    epochs: int = override("epochs", 40)
    batch_size: int = override("batch_size", 64)
    latent_dim: int = override("latent_dim", 100)
    log_every: int = override("log_every", 50)
    checkpoint_every: int = override("checkpoint_every", 1)
    eval_samples: int = option(
        26_000, "samples scored at the end (the protocol's 26000; 0 = off)", group="evaluation"
    )
    g_width: int = option(32, "ngf: the generator's channels before its output layer")
    d_width: int = option(32, "ndf: the discriminator's first-layer channels")
    pack: int = option(1, "PacGAN packing degree: D judges this many samples at once")
    d_batch_norm: bool = option(
        True, "batch norm in D (--no-d-batch-norm: none, biases instead; R3GAN's D)"
    )

    def validate(self) -> None:
        super().validate()
        for name in ("num_train", "g_width", "d_width", "pack"):
            value = getattr(self, name)
            require(value >= 1, f"--{name.replace('_', '-')} must be >= 1, got {value}")
        require(
            not self.eval_inception,
            "--eval-inception is for the mnist and dcgan experiments: Stacked MNIST's stacks are "
            "scored by their modes and KL",
        )
        require(
            self.batch_size % self.pack == 0,
            f"--batch-size {self.batch_size} must be a multiple of --pack {self.pack}",
        )

    def device_share_unit(self) -> int:
        return self.pack

    def train_size(self) -> int:
        return self.num_train

    def evaluation(self) -> Evaluation | None:
        """``modes`` and ``kl`` of ``--eval-samples`` samples every ``--eval-every`` epochs
        and at the end, watched for the KL not improving."""
        if not self.eval_samples:
            return None
        return Evaluation(
            lambda state: mode_scores(state, self.eval_samples),
            self.epochs,
            every=self.eval_every,
            watch=QualityWatch("kl", "min"),
        )


def build_models(
    config: Config, axis_name: str | None = None
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN pair at 32×32×3, D packing ``config.pack`` samples; ``axis_name``: batch
    statistics over the devices."""
    generator = DCGANGenerator(SIZE, CHANNELS, width=config.g_width, axis_name=axis_name)
    discriminator = DCGANDiscriminator(
        SIZE,
        width=config.d_width,
        axis_name=axis_name,
        pack=config.pack,
        batch_norm=config.d_batch_norm,
    )
    return generator, discriminator


def stacks_loader(config: Config) -> Callable[[slice | None], dict[str, np.ndarray]]:
    """Reads the training digits once and returns ``load(rows)``: those rows of the stacked
    training set (all with None), which ``config.seed`` draws."""
    digits = data.load_mnist("train", config.data_dir, config.tfds_data_dir)["image"]
    stacks = draw_stacks(config.num_train, len(digits), config.seed)

    def load(rows: slice | None) -> dict[str, np.ndarray]:
        return {"image": stack_digits(digits, stacks[rows or slice(None)])}

    return load


def train(config: Config) -> dict:
    """Trains the DCGAN on Stacked MNIST and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    real = {}
    if config.eval_samples:
        test_digits = run_test_images(config.data_dir, config.tfds_data_dir)
        real = real_scores(test_digits, config.eval_samples)
    train_set, num_train = load_rows(devices, stacks_loader(config), config.train_size)
    return train_images(
        config, NAME, build_models, train_set, num_train, devices,
        on_host=jax.default_backend() == "cpu", **real,
    )  # fmt: skip


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

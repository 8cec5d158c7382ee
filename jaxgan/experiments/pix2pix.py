"""pix2pix (Isola et al. 2017): image-to-image translation with a conditional GAN.

G is a U-Net (skip connections, dropout in the decoder as the noise source, kept on at
sampling as in the paper), D a PatchGAN judging (source, output) pairs patch by patch; G's
loss is the non-saturating GAN loss plus λ·L1 to the target (``--l1-weight``, λ = 100), Adam
2e-4, β1 0.5, as the paper. ``--adv-weight 0`` trains the L1-only network, the baseline.

    python -m jaxgan.experiments.pix2pix --data-dir ../shared/data/mnist --workdir runs/pix2pix
    python -m jaxgan.experiments.pix2pix --task aligned --data-dir ~/facades --direction BtoA \\
        --image-size 256 --g-depth 8 --d-layers 3 --g-width 64 --d-width 64 --batch-size 1

Tasks: ``inpaint`` (MNIST from IDX files in ``--data-dir`` or tfds: the source is a digit with
its lower half blanked, the target the whole digit, padded to 32×32; scored on the 10,000 test
digits, with ``fid_mnist`` of the outputs and ``label_accuracy``: whether the shipped
classifier sees the source's digit in the output); ``aligned``: a folder in the original
repository's format (``train/``, ``val/``, ``test/`` of A|B images side by side), each half
resized to ``--image-size``, scored on ``test/`` (or ``val/``). Writes the grids of fixed test
pairs (source, output, target rows), loss curves, metrics.jsonl, TensorBoard, summary.json
(``test_l1``, ``test_psnr``, ``test_ssim``) and resumable checkpoints, as the other
experiments.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import numpy as np

from jaxgan import data, pairs
from jaxgan.cli import cli_main, flag, option, require
from jaxgan.evaluate import run_evaluator
from jaxgan.inputs import FromBatch
from jaxgan.state import StepConfig
from jaxgan.terms import L1ToTarget
from jaxgan.trainer import TrainConfig, choose_devices, override
from jaxgan.trainer.translation import Pairs, held_out_scoring, train_pairs
from jaxgan.translation import PatchDiscriminator, UNetGenerator, patch_receptive_field

NAME = "pix2pix"
TRANSLATES = True  # G maps source images (jaxgan.generate cannot sample it from noise)
TASKS = ("inpaint", "aligned")


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset({"g_dropout", "g_dropout_at_sampling"})

    workdir: str = override("workdir", "runs/pix2pix")
    task: str = option("inpaint", "inpaint (MNIST's lower halves) or aligned (--data-dir's "
                       "A|B folder)", choices=TASKS)  # fmt: skip
    data_dir: str | None = option(None, "inpaint: local MNIST IDX files instead of tfds; "
                                  "aligned: the folder with train/ and test/")  # fmt: skip
    tfds_data_dir: str | None = option(None, "inpaint: tfds data directory (default: tfds' own)")
    direction: str = option("AtoB", "aligned: translate A to B or B to A",
                            choices=pairs.DIRECTIONS)  # fmt: skip
    image_size: int = option(32, "images' side (inpaint: the digits padded to 32, else resized)")
    epochs: int = override("epochs", 10)
    batch_size: int = override("batch_size", 64)
    log_every: int = override("log_every", 20)
    checkpoint_every: int = override("checkpoint_every", 1)
    l1_weight: float = option(100.0, "λ: the weight of G's L1 distance to the target")
    adv_weight: float = option(1.0, "the GAN loss's weight in G's loss (0: the L1-only "
                               "baseline)")  # fmt: skip
    g_width: int = option(32, "ngf: the U-Net's first-level channels")
    g_depth: int = option(5, "the U-Net's levels (each halves the size: 2^depth must divide "
                          "--image-size)")  # fmt: skip
    g_dropout: float = override("g_dropout", 0.5)
    g_dropout_at_sampling: bool = override("g_dropout_at_sampling", True)
    d_width: int = option(32, "ndf: the PatchGAN's first-layer channels")
    d_layers: int = option(2, "the PatchGAN's stride-2 layers (3: the paper's 70x70 patches)")
    eval_samples: int = option(10_000, "test pairs scored at the end (at most; 0 = off)",
                               group="evaluation")  # fmt: skip
    eval_every: int = option(0, "also score the test pairs every this many epochs (0 = only at "
                             "the end)", group="evaluation")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        require(
            self.task == "inpaint" or self.data_dir is not None,
            "--task aligned needs --data-dir: a folder with train/ and test/ (or val/) of A|B "
            "images",
        )
        for name in ("g_width", "d_width", "g_depth", "d_layers"):
            value = getattr(self, name)
            require(value >= 1, f"--{flag(name)} must be >= 1, got {value}")
        require(self.l1_weight >= 0, f"--l1-weight must be >= 0, got {self.l1_weight}")
        size = 2**self.g_depth
        require(
            self.image_size >= 16 and self.image_size % size == 0,
            f"--image-size {self.image_size} does not divide by 2^{self.g_depth} = {size} (the "
            f"U-Net halves it --g-depth times): use a multiple of {size} (at least 16) or a "
            "smaller --g-depth",
        )
        require(
            self.image_size >> self.d_layers >= 4,
            f"--d-layers {self.d_layers} halves --image-size {self.image_size} below the 4x4 "
            "its last convolutions need: use fewer layers",
        )
        require(self.eval_samples >= 0, f"--eval-samples must be >= 0, got {self.eval_samples}")
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")

    def step_config(self, total_steps: int = 0) -> StepConfig:
        """The GAN step of the options, G fed the batch's source, its loss with λ·L1."""
        return dataclasses.replace(
            super().step_config(total_steps),
            inputs=FromBatch("source"),
            g_terms=(L1ToTarget(self.l1_weight),),
        )


def build_models(config: Config, axis_name: str | None = None):
    channels = 1 if config.task == "inpaint" else 3
    generator = UNetGenerator(channels, config.g_width, config.g_depth, dropout=config.g_dropout,
                              dropout_at_sampling=config.g_dropout_at_sampling,
                              axis_name=axis_name)  # fmt: skip
    return generator, PatchDiscriminator(config.d_width, config.d_layers, axis_name)


def digits_as_pairs(images: np.ndarray, size: int) -> Pairs:
    """MNIST digits as inpainting pairs at ``size`` (32: padded, else resized)."""
    return pairs.inpaint_pairs(data.digits_at(images, size))


def load(config: Config) -> tuple[Pairs, Pairs, np.ndarray | None]:
    """The training pairs, the test pairs, and (inpaint) the test digits' labels."""
    if config.task == "aligned":
        load_split = functools.partial(
            pairs.load_aligned_folder, config.data_dir, size=config.image_size,
            direction=config.direction,
        )  # fmt: skip
        return load_split("train"), load_split(pairs.eval_split(config.data_dir)), None
    train = data.load_mnist("train", config.data_dir, config.tfds_data_dir)
    test = data.load_mnist("test", config.data_dir, config.tfds_data_dir)
    return (
        digits_as_pairs(train["image"], config.image_size),
        digits_as_pairs(test["image"], config.image_size),
        test["label"],
    )


def train(config: Config) -> dict:
    """Trains pix2pix and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    train_set, test_set, labels = load(config)
    evaluator = None
    if config.eval_samples and config.task == "inpaint":
        evaluator = run_evaluator(config.data_dir, config.tfds_data_dir)
    # the source itself as the output: what G must improve on
    score, extra, num_test = held_out_scoring(
        test_set, config.eval_samples, "source", np.asarray, evaluator, labels
    )
    return train_pairs(config, NAME, build_models, train_set, test_set, score, devices,
                       eval_every=config.eval_every, num_test=num_test,
                       patch_receptive_field=patch_receptive_field(config.d_layers),
                       **extra)  # fmt: skip


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

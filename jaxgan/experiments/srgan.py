"""SRGAN (Ledig et al. 2017): single-image super-resolution with a GAN.

G is an SRResNet (residual blocks with batch norm and PReLU at the low resolution, sub-pixel
×2 upsampling steps), D the paper's strided convolutional network judging high-resolution
images alone; G's loss is a content loss plus 1e-3 × the non-saturating GAN loss
(``--adv-weight``), Adam 1e-4, β1 0.9, as the paper. ``--adv-weight 0 --content mse`` trains
SRResNet-MSE, the baseline; bicubic upsampling is scored in every run.

    python -m jaxgan.experiments.srgan --data-dir ../shared/data/mnist --workdir runs/srgan
    python -m jaxgan.experiments.srgan --task folder --data-dir ~/DIV2K --image-size 96 \\
        --g-width 64 --g-blocks 16 --d-width 64 --d-stages 4 --batch-size 16

Content losses: ``mse`` (pixel-wise, SRGAN-MSE) or ``classifier``: the squared distance of
the MNIST classifier's deepest convolutional features (:class:`jaxgan.classifier.FeatureMaps`),
the stand-in for the paper's VGG19 features, which cannot be downloaded here; by default the
shipped classifier, which also computes ``fid_mnist`` (``--content-net`` takes another one).
Tasks: ``mnist`` (IDX files in ``--data-dir`` or tfds: each digit the target, its bicubic
downscaling by ``--scale`` the source, 7×7 → 28×28 by default; scored on the 10,000 test
digits with ``fid_mnist`` and ``label_accuracy``: whether the shipped classifier sees the
source's digit in the output); ``folder``: ``train/`` and ``test/`` (or ``val/``) folders of
images of any size, trained on ``--crops-per-image`` random ``--image-size`` crops of each
(drawn once from the seed) and scored on their centre crops. Writes the grids of fixed test
pairs (source, output, target rows), loss curves, metrics.jsonl, TensorBoard, summary.json
(``test_l1``, ``test_psnr``, ``test_ssim``, and ``bicubic_*``) and resumable checkpoints, as
the other experiments.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import ClassVar

import numpy as np

from jaxgan import data, pairs
from jaxgan.classifier import ASSETS, WEIGHTS_FILE, FeatureMaps
from jaxgan.cli import cli_main, flag, option, require
from jaxgan.evaluate import run_evaluator
from jaxgan.inputs import FromBatch
from jaxgan.state import StepConfig
from jaxgan.superres import SRDiscriminator, SRResNet
from jaxgan.terms import FeatureContent, MSEToTarget
from jaxgan.trainer import TrainConfig, choose_devices, override
from jaxgan.trainer.translation import Pairs, held_out_scoring, train_pairs

NAME = "srgan"
TRANSLATES = True  # G maps low-resolution images (jaxgan.generate cannot sample it from noise)
TASKS = ("mnist", "folder")
CONTENTS = ("mse", "classifier")


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset()

    workdir: str = override("workdir", "runs/srgan")
    task: str = option("mnist", "mnist (the digits, downscaled) or folder (--data-dir's "
                       "train/ and test/ images)", choices=TASKS)  # fmt: skip
    data_dir: str | None = option(None, "mnist: local MNIST IDX files instead of tfds; "
                                  "folder: the folder with train/ and test/")  # fmt: skip
    tfds_data_dir: str | None = option(None, "mnist: tfds data directory (default: tfds' own)")
    scale: int = option(4, "the upscaling factor, a power of two (the paper's 4)")
    image_size: int = option(28, "the high-resolution side (mnist: the digits' 28, 32 padded, "
                             "else resized; folder: the crops', the paper's 96)")  # fmt: skip
    crops_per_image: int = option(16, "folder: random training crops per image (drawn once)")
    epochs: int = override("epochs", 10)
    batch_size: int = override("batch_size", 64)
    log_every: int = override("log_every", 20)
    checkpoint_every: int = override("checkpoint_every", 1)
    lr_g: float = override("lr_g", 1e-4)
    lr_d: float = override("lr_d", 1e-4)
    beta1: float = override("beta1", 0.9)
    content: str = option("mse", "G's content loss: mse (pixels) or classifier (the MNIST "
                          "classifier's convolutional features)", choices=CONTENTS)  # fmt: skip
    content_weight: float = option(1.0, "the content loss's weight")
    content_net: str | None = option(None, "--content classifier: the directory of another "
                                     "classifier's weights (default: the shipped one)")  # fmt: skip
    adv_weight: float = option(1e-3, "the GAN loss's weight in G's loss (0 with --content mse: "
                               "SRResNet-MSE, the baseline)")  # fmt: skip
    g_width: int = option(32, "the SRResNet's channels (the paper's 64)")
    g_blocks: int = option(8, "the SRResNet's residual blocks (the paper's 16)")
    d_width: int = option(32, "D's first channels (the paper's 64)")
    d_stages: int = option(3, "D's stride-2 stages, channels doubling (the paper's 4)")
    eval_samples: int = option(10_000, "test pairs scored at the end (at most; 0 = off)",
                               group="evaluation")  # fmt: skip
    eval_every: int = option(0, "also score the test pairs every this many epochs (0 = only at "
                             "the end)", group="evaluation")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        require(
            self.task == "mnist" or self.data_dir is not None,
            "--task folder needs --data-dir: a folder with train/ and test/ (or val/) of images",
        )
        power_of_two = self.scale >= 2 and not self.scale & (self.scale - 1)
        require(power_of_two, f"--scale must be a power of two >= 2, got {self.scale}")
        require(
            self.image_size >= 2 * self.scale and self.image_size % self.scale == 0,
            f"--image-size {self.image_size} does not divide by --scale {self.scale} into "
            f"low-resolution images of 2 pixels or more: use a multiple of {self.scale}",
        )
        for name in ("g_width", "g_blocks", "d_width", "d_stages", "crops_per_image"):
            value = getattr(self, name)
            require(value >= 1, f"--{flag(name)} must be >= 1, got {value}")
        require(self.content_weight >= 0, f"--content-weight must be >= 0, got "
                f"{self.content_weight}")  # fmt: skip
        require(
            self.content == "mse" or self.task == "mnist",
            "--content classifier compares MNIST classifier features: it needs --task mnist "
            "(use --content mse for a folder)",
        )
        if self.content_net is not None:
            require(self.content == "classifier",
                    "--content-net only applies with --content classifier")  # fmt: skip
            require(
                (Path(self.content_net) / WEIGHTS_FILE).is_file(),
                f"--content-net {self.content_net} holds no {WEIGHTS_FILE}: give the --out "
                "directory of python -m jaxgan.experiments.mnist_classifier",
            )
        require(self.eval_samples >= 0, f"--eval-samples must be >= 0, got {self.eval_samples}")
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")

    def content_term(self):
        """G's content loss, :class:`~jaxgan.terms.MSEToTarget` or a
        :class:`~jaxgan.terms.FeatureContent` in the classifier's features."""
        if self.content == "mse":
            return MSEToTarget(self.content_weight)
        network = FeatureMaps(self.content_net or str(ASSETS))
        return FeatureContent(self.content_weight, network=network)

    def step_config(self, total_steps: int = 0) -> StepConfig:
        """The GAN step of the options: G fed the batch's low-resolution source, D judging
        the high-resolution images alone, G's loss with the content term."""
        return dataclasses.replace(
            super().step_config(total_steps),
            inputs=FromBatch("source", pairs=False),
            g_terms=(self.content_term(),),
        )


def channels(config: Config) -> int:
    return 1 if config.task == "mnist" else 3


def build_models(config: Config, axis_name: str | None = None):
    generator = SRResNet(channels(config), config.g_width, config.g_blocks, config.scale,
                         axis_name=axis_name)  # fmt: skip
    return generator, SRDiscriminator(config.d_width, config.d_stages, axis_name)


def load(config: Config) -> tuple[Pairs, Pairs, np.ndarray | None]:
    """The training pairs, the test pairs, and (mnist) the test digits' labels."""
    if config.task == "folder":
        load_split = functools.partial(
            pairs.load_crop_folder, config.data_dir, size=config.image_size,
            factor=config.scale, channels=channels(config),
        )  # fmt: skip
        train = load_split("train", crops=config.crops_per_image, seed=config.seed)
        return train, load_split(pairs.eval_split(config.data_dir)), None
    train = data.load_mnist("train", config.data_dir, config.tfds_data_dir)
    test = data.load_mnist("test", config.data_dir, config.tfds_data_dir)
    digits = functools.partial(data.digits_at, size=config.image_size)
    return (
        pairs.downscaled_pairs(digits(train["image"]), config.scale),
        pairs.downscaled_pairs(digits(test["image"]), config.scale),
        test["label"],
    )


def train(config: Config) -> dict:
    """Trains SRGAN and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    train_set, test_set, labels = load(config)
    evaluator = None
    if config.eval_samples and config.task == "mnist":
        evaluator = run_evaluator(config.data_dir, config.tfds_data_dir)
    bicubic = functools.partial(pairs.upscale, factor=config.scale)
    score, extra, num_test = held_out_scoring(
        test_set, config.eval_samples, "bicubic", bicubic, evaluator, labels
    )
    return train_pairs(config, NAME, build_models, train_set, test_set, score, devices,
                       eval_every=config.eval_every, num_test=num_test,
                       **extra)  # fmt: skip


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

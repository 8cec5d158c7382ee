"""The main job: an MLP GAN on MNIST, shaped like the well-known PyTorch tutorial's.

The tutorial's G is 64 -> 256 -> 256 -> 784 (ReLU, tanh output), its D 784 -> 256 -> 256 -> 1
(LeakyReLU 0.2); ``--preset tutorial`` trains exactly as the tutorial does (non-saturating BCE,
Adam 2e-4 with default betas, PyTorch's initialisation). The default trains wider MLPs of the
same shape (G 64 -> 1024 -> 1024 -> 784, D 784 -> 512 -> 512 -> 1) with R3GAN's recipe: the
relativistic pairing loss with R1 and R2 (γ 1), Adam 5e-4 with betas (0, 0.99), no dropout,
samples from an EMA of G (measured against the alternatives by
``experiments/mnist_recipe_search.py``). Data from tfds or local IDX files (``--data-dir``);
``--conditional cgan|acgan`` uses the labels. Writes grids, figures, logs, summary.json (with
:mod:`jaxgan.evaluate`'s scores) and resumable checkpoints (README).

    python -m jaxgan.experiments.mnist --data-dir ../shared/data/mnist --workdir runs/mnist
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from jaxgan.cli import cli_main, option, require, require_widths
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.trainer import choose_devices, load_rows, override
from jaxgan.trainer.images import DIGIT_SHAPE, ImageConfig, train_images

NAME = "mnist"
IMAGES = True  # its runs' samples are images (jaxgan.generate draws them)
TUTORIAL = dict(loss="non_saturating", lr_g=2e-4, lr_d=2e-4, beta1=0.9, beta2=0.999,
                lr_schedule="constant", ema_decay=0.0, d_dropout=0.0, init="torch",
                g_hidden=(256, 256), d_hidden=(256, 256), r1_gamma=0.0,
                r2_gamma=0.0)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config(ImageConfig):
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "tutorial": TUTORIAL}
    RESUME_SAFE: ClassVar[frozenset[str]] = ImageConfig.RESUME_SAFE | {"preset"}

    preset: str = option("default", "default, or tutorial (the PyTorch tutorial's settings)",
                         choices=("default", "tutorial"))  # fmt: skip
    workdir: str = override("workdir", "runs/mnist")
    dataset: str = option("mnist", "tfds dataset", choices=("mnist", "fashion_mnist"))
    epochs: int = override("epochs", 200)
    loss: str = override("loss", "rpgan")
    r1_gamma: float = override("r1_gamma", 1.0)
    r2_gamma: float = override("r2_gamma", 1.0)
    lr_g: float = override("lr_g", 5e-4)
    lr_d: float = override("lr_d", 5e-4)
    beta1: float = override("beta1", 0.0)
    beta2: float = override("beta2", 0.99)
    ema_decay: float = override("ema_decay", 0.999)
    g_hidden: tuple[int, ...] = option((1024, 1024), "generator hidden widths")
    d_hidden: tuple[int, ...] = option((512, 512), "discriminator hidden widths")
    d_dropout: float = option(0.0, "dropout rate after D's hidden layers")
    init: str = option("flax", "dense layers' initialisation: flax (LeCun normal) or torch "
                       "(nn.Linear's +-1/sqrt(fan_in))", choices=("flax", "torch"))  # fmt: skip
    log_every: int = override("log_every", 10)

    def validate(self) -> None:
        super().validate()
        require_widths(self, "g_hidden", "d_hidden")
        require(0 <= self.d_dropout < 1, f"--d-dropout must be in [0, 1), got {self.d_dropout}")

    def num_classes(self) -> int:
        return 10  # MNIST and Fashion-MNIST alike


def build_models(config: Config, axis_name: str | None = None):
    """The MLP G and D (conditional when the config says so); ``axis_name``: see
    :func:`jaxgan.trainer.model_axis`."""
    g_tricks, d_tricks = config.model_tricks(axis_name)
    g_labels, d_labels = config.conditioning_kwargs()
    init = {"torch_init": config.init == "torch"}
    generator = MLPGenerator(DIGIT_SHAPE, config.g_hidden, act="relu", out_act="tanh",
                             **init, **g_tricks, **g_labels)  # fmt: skip
    discriminator = MLPDiscriminator(config.d_hidden, act="leaky_relu", dropout=config.d_dropout,
                                     **init, **d_tricks, **d_labels)  # fmt: skip
    return generator, discriminator


def train(config: Config) -> dict:
    """Trains the MNIST GAN and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    train_set, num_train = load_rows(devices, config.load_digits, config.train_size)
    return train_images(config, NAME, build_models, train_set, num_train, devices,
                        preset=config.preset)  # fmt: skip


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

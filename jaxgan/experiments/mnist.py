"""The main job: an MLP GAN on MNIST with the architecture of the well-known PyTorch tutorial.

G: 64 -> 256 -> 256 -> 784, ReLU, tanh output; D: 784 -> 256 -> 256 -> 1, LeakyReLU(0.2),
logits out; images scaled to [-1, 1] to match the tanh. ``--preset tutorial`` trains exactly as
the tutorial does (non-saturating BCE, Adam 2e-4 with default betas, PyTorch's initialisation)
for comparison; the default preset (Adam beta1 0.5, dropout 0.3 in D, sampling from an EMA of
G's weights) keeps all ten digits alive on small data.

    python -m jaxgan.experiments.mnist --data-dir ../shared/data/mnist --workdir runs/mnist

Data come from tensorflow-datasets (``--dataset mnist|fashion_mnist``, downloaded on first use)
or, with ``--data-dir``, from local IDX files (``train-images-idx3-ubyte[.gz]``, ...).
``--conditional cgan|acgan`` trains a class-conditional GAN on the labels (grids then show one
row per class, and the evaluation adds ``label_accuracy``).
Writes per-epoch fixed-noise grids (samples/), loss_curves.png, progress.gif, real_vs_fake.png,
metrics.jsonl, TensorBoard scalars and images, summary.json and Orbax checkpoints, from which
a rerun of the same command resumes and ``python -m jaxgan.generate`` samples. At the end (and
every ``--eval-every`` epochs, plotted in fid_curve.png) ``--eval-samples`` generated digits are
scored against the 10,000 test images (:mod:`jaxgan.evaluate`: fid_mnist, precision, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxgan import data
from jaxgan.cli import cli_main, option, require, require_widths
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.trainer.config import override
from jaxgan.trainer.fit import fit
from jaxgan.trainer.images import ImageConfig, SampleGrids, epoch_hook, finish, quality_watch
from jaxgan.trainer.run import choose_devices, load_rows, open_experiment

NAME = "mnist"
IMAGES = True  # its runs' samples are images (jaxgan.generate draws them)
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# The PyTorch tutorial's optimisation, kept for comparison; the default preset is the Config's
# own defaults (measured comparison in experiments/results).
TUTORIAL = {
    "loss": "non_saturating",
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "beta1": 0.9,
    "beta2": 0.999,
    "lr_schedule": "constant",
    "ema_decay": 0.0,
    "d_dropout": 0.0,
    "init": "torch",
}


@dataclasses.dataclass(frozen=True)
class Config(ImageConfig):
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "tutorial": TUTORIAL}
    RESUME_SAFE: ClassVar[frozenset[str]] = ImageConfig.RESUME_SAFE | {"preset"}

    preset: str = option(
        "default",
        "training settings: default, or tutorial (the PyTorch tutorial's)",
        choices=("default", "tutorial"),
    )
    workdir: str = override("workdir", "runs/mnist")
    dataset: str = option("mnist", "tfds dataset", choices=("mnist", "fashion_mnist"))
    epochs: int = override("epochs", 200)
    batch_size: int = override("batch_size", 100)
    beta1: float = override("beta1", 0.5)
    ema_decay: float = override("ema_decay", 0.999)
    latent_dim: int = override("latent_dim", 64)
    g_hidden: tuple[int, ...] = option((256, 256), "generator hidden widths")
    d_hidden: tuple[int, ...] = option((256, 256), "discriminator hidden widths")
    d_dropout: float = option(0.3, "dropout rate after D's hidden layers")
    init: str = option(
        "flax",
        "dense-layer initialisation: flax (LeCun normal, zero biases) or torch (PyTorch's "
        "nn.Linear: uniform in +-1/sqrt(fan_in)); the tutorial preset uses torch",
        choices=("flax", "torch"),
    )
    log_every: int = override("log_every", 10)

    def validate(self) -> None:
        super().validate()
        require_widths(self, "g_hidden", "d_hidden")
        require(0 <= self.d_dropout < 1, f"--d-dropout must be in [0, 1), got {self.d_dropout}")

    def num_classes(self) -> int:
        return NUM_CLASSES  # MNIST and Fashion-MNIST alike


def build_models(
    config: Config, axis_name: str | None = None
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The tutorial's generator and discriminator (widths from the config), conditional when
    the config says so; ``axis_name``: see :func:`jaxgan.trainer.model_axis`."""
    g_tricks, d_tricks = config.model_tricks(axis_name)
    g_labels, d_labels = config.conditioning_kwargs()
    torch_init = config.init == "torch"
    generator = MLPGenerator(
        IMAGE_SHAPE, hidden=config.g_hidden, act="relu", out_act="tanh", torch_init=torch_init,
        **g_tricks, **g_labels,
    )  # fmt: skip
    discriminator = MLPDiscriminator(
        hidden=config.d_hidden, act="leaky_relu", dropout=config.d_dropout,
        torch_init=torch_init, **d_tricks, **d_labels,
    )  # fmt: skip
    return generator, discriminator


def load_data(config: Config, rows: slice | None = None) -> dict[str, np.ndarray]:
    """The training set, ``{"image": uint8 [N, 28, 28, 1], "label": int32 [N]}`` (its
    ``rows`` only, if given), from IDX files or tfds."""
    if config.data_dir is not None:
        train_set = data.load_idx(config.data_dir, "train", rows=rows)
    else:
        train_set = data.load_tfds(config.dataset, "train", config.tfds_data_dir, rows=rows)
    if train_set["image"].shape[1:] != IMAGE_SHAPE:
        raise data.DataError(f"expected {IMAGE_SHAPE} images, got {train_set['image'].shape[1:]}")
    return train_set


def train(config: Config) -> dict:
    """Trains the MNIST GAN and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    train_set, num_train = load_rows(
        devices, lambda rows: load_data(config, rows), config.train_size
    )
    images, labels = train_set["image"], train_set["label"]
    evaluator = config.evaluator()
    with open_experiment(config, NAME, build_models, num_train, devices) as run:
        grids = SampleGrids(run.state, images, labels)
        grids.save_real(run.writer)
        on_epoch = epoch_hook(config, run.writer, grids, evaluator)
        train_data = {"x": data.scale_images(jnp.asarray(images))}
        if config.conditional != "none":
            train_data["y"] = jnp.asarray(labels)
        state, summary = fit(
            run, train_data, on_epoch=on_epoch, num_examples=num_train,
            quality=quality_watch(evaluator),
        )  # fmt: skip
        return finish(run, grids, state, summary, preset=config.preset, num_train=num_train)


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

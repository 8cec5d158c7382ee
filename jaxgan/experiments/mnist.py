"""The main job: an MLP GAN on MNIST with the architecture of the well-known PyTorch tutorial.

G: 64 -> 256 -> 256 -> 784, ReLU, tanh output; D: 784 -> 256 -> 256 -> 1, LeakyReLU(0.2),
logits out; images scaled to [-1, 1] to match the tanh. ``--preset tutorial`` trains exactly as
the tutorial does (non-saturating BCE, Adam 2e-4 with default betas) for comparison; the default
preset (Adam beta1 0.5, dropout 0.3 in D, sampling from an EMA of G's weights) keeps all ten
digits alive on small data.

    python -m jaxgan.experiments.mnist --data-dir ../shared/data/mnist --workdir runs/mnist

Data come from tensorflow-datasets (``--dataset mnist|fashion_mnist``, downloaded on first use)
or, with ``--data-dir``, from local IDX files (``train-images-idx3-ubyte[.gz]``, ...).
Writes per-epoch fixed-noise grids (samples/), loss_curves.png, progress.gif, real_vs_fake.png,
metrics.jsonl, TensorBoard scalars and images, summary.json and Orbax checkpoints, from which
a rerun of the same command resumes and ``python -m jaxgan.generate`` samples. At the end (and
every ``--eval-every`` epochs, plotted in fid_curve.png) ``--eval-samples`` generated digits are
scored against the 10,000 test images (:mod:`jaxgan.evaluate`: fid_mnist, precision, ...).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from jaxgan import data, viz
from jaxgan.evaluate import MNISTEvaluator, generated_images, load_test_images
from jaxgan.experiments.common import (
    TrainConfig,
    cli_main,
    create_state,
    option,
    override,
    require,
    require_widths,
)
from jaxgan.experiments.loop import fit, open_run
from jaxgan.models import MLPDiscriminator, MLPGenerator
from jaxgan.train import GANState, evaluation_noise, generate_samples

NAME = "mnist"
IMAGE_SHAPE = (28, 28, 1)
GRID = 64  # fixed-noise samples per grid (8 x 8)

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
}


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}, "tutorial": TUTORIAL}
    RESUME_SAFE: ClassVar[frozenset[str]] = TrainConfig.RESUME_SAFE | {
        "preset",
        "tfds_data_dir",
        "eval_every",
        "eval_samples",
    }

    preset: str = option(
        "default",
        "training settings: default, or tutorial (the PyTorch tutorial's)",
        choices=("default", "tutorial"),
    )
    workdir: str = override("workdir", "runs/mnist")
    dataset: str = option("mnist", "tfds dataset", choices=("mnist", "fashion_mnist"))
    data_dir: str | None = option(None, "directory of local IDX files instead of tfds")
    tfds_data_dir: str | None = option(None, "tfds data directory (default: tfds' own)")
    epochs: int = override("epochs", 200)
    batch_size: int = override("batch_size", 100)
    beta1: float = override("beta1", 0.5)
    ema_decay: float = override("ema_decay", 0.999)
    latent_dim: int = override("latent_dim", 64)
    g_hidden: tuple[int, ...] = option((256, 256), "generator hidden widths")
    d_hidden: tuple[int, ...] = option((256, 256), "discriminator hidden widths")
    d_dropout: float = option(0.3, "dropout rate after D's hidden layers")
    log_every: int = override("log_every", 10)
    eval_samples: int = option(
        10_000, "generated digits scored against the test images at the end (0 = no evaluation)"
    )
    eval_every: int = option(0, "also evaluate every this many epochs (0 = only at the end)")

    def validate(self) -> None:
        super().validate()
        require_widths(self, "g_hidden", "d_hidden")
        require(0 <= self.d_dropout < 1, f"--d-dropout must be in [0, 1), got {self.d_dropout}")
        require(
            self.eval_samples == 0 or self.eval_samples >= 10,
            f"--eval-samples must be 0 (off) or >= 10, got {self.eval_samples}",
        )
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")

    def evaluates(self) -> bool:
        """Whether the run scores its samples (the classifier knows MNIST digits only)."""
        return self.eval_samples > 0 and self.dataset == "mnist"


def build_models(config: Config) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The tutorial's generator and discriminator (widths from the config)."""
    g_tricks, d_tricks = config.model_tricks()
    generator = MLPGenerator(
        IMAGE_SHAPE, hidden=config.g_hidden, act="relu", out_act="tanh", **g_tricks
    )
    discriminator = MLPDiscriminator(
        hidden=config.d_hidden, act="leaky_relu", dropout=config.d_dropout, **d_tricks
    )
    return generator, discriminator


def load_images(config: Config) -> np.ndarray:
    """The training images as uint8 ``[N, 28, 28, 1]``, from IDX files or tfds."""
    if config.data_dir is not None:
        images = data.load_idx(config.data_dir, "train")["image"]
    else:
        images = data.load_tfds(config.dataset, "train", config.tfds_data_dir)["image"]
    if images.shape[1:] != IMAGE_SHAPE:
        raise data.DataError(f"expected {IMAGE_SHAPE} images, got {images.shape[1:]}")
    return images


def _grid(images: np.ndarray) -> np.ndarray:
    return viz.image_grid(images, ncols=int(np.sqrt(GRID)))


def train(config: Config) -> dict:
    """Trains the MNIST GAN and writes its workdir; returns the summary."""
    images = load_images(config)
    if config.evaluates():
        try:
            test_images = load_test_images(config.data_dir, config.tfds_data_dir)
        except data.DataError as e:
            raise data.DataError(f"{e}; or pass --eval-samples 0 to skip the evaluation") from e
        evaluator = MNISTEvaluator(test_images)
    elif config.eval_samples:
        print(f"no evaluation: the evaluation classifier knows MNIST digits, not {config.dataset}")
    generator, discriminator = build_models(config)
    state, _ = create_state(config, generator, discriminator, len(images))
    run = open_run(config, NAME, state)
    writer = run.writer

    real_grid = _grid(images[:GRID])
    viz.save_png(real_grid, writer.path("samples", "real.png"))
    writer.image("real", 0, real_grid)
    z_fixed = evaluation_noise(run.state, GRID)

    def fake_grid(state: GANState) -> np.ndarray:
        return _grid(data.to_uint8(generate_samples(state, z_fixed)))

    def on_epoch(state: GANState, epoch: int) -> dict:
        grid = fake_grid(state)
        viz.save_png(grid, writer.path("samples", f"epoch_{epoch:04d}.png"))
        writer.image("samples", int(state.step), grid)
        due = epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0)
        if config.evaluates() and due:
            return evaluator(generated_images(state, config.eval_samples))
        return {}

    train_data = {"x": data.scale_images(jnp.asarray(images))}
    state, summary = fit(run, train_data, on_epoch=on_epoch)

    log = [json.loads(line) for line in writer.path("metrics.jsonl").read_text().splitlines()]
    viz.loss_curves(
        np.array([r["step"] for r in log]),
        np.array([r["d_loss"] for r in log]),
        np.array([r["g_loss"] for r in log]),
        writer.path("loss_curves.png"),
    )
    evaluated = [r for r in log if "fid_mnist" in r]
    if len(evaluated) > 1:
        steps, fids = zip(*[(r["step"], r["fid_mnist"]) for r in evaluated], strict=True)
        viz.metric_curve(np.array(steps), np.array(fids), "fid_mnist", writer.path("fid_curve.png"))
    viz.save_gif(sorted(writer.path("samples").glob("epoch_*.png")), writer.path("progress.gif"))
    viz.real_vs_fake(real_grid, fake_grid(state), writer.path("real_vs_fake.png"))
    summary.update(preset=config.preset, num_train=len(images))
    writer.summary(summary)
    run.close()
    return summary


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

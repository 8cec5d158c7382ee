"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation, two generators and two
discriminators trained together.

G_ab maps domain A to B and G_ba back, each a ResNet generator with instance norm; D_a and
D_b are PatchGANs judging images of their domain. G's loss: the GAN losses of both
(least squares by default, ``--adv-weight 2``: the paper's ``E[(D(G(x)) - 1)^2]``, which is
twice jaxgan's ``lsgan``), λ·L1 of each cycle (``--cycle-weight``, λ = 10) and 0.5·λ·L1 of each
generator on its target domain's images (the identity loss, ``--identity-weight``); D is
updated on a history of 50 earlier fakes (``--pool-size``, :class:`jaxgan.ImagePool`); Adam
2e-4, β1 0.5, the rate constant for half the run, then decaying linearly to 0, as the paper.

    python -m jaxgan.experiments.cyclegan --data-dir ../shared/data/mnist --workdir runs/cyclegan
    python -m jaxgan.experiments.cyclegan --task folder --data-dir ~/horse2zebra \\
        --image-size 256 --g-width 64 --g-blocks 9 --d-width 64 --d-layers 3 --batch-size 1

Tasks: ``thicken`` (MNIST from IDX files in ``--data-dir`` or tfds): domain A is the first half
of the training digits, domain B the other half with their strokes thickened by a fixed
grey-scale dilation (``--thicken-size``), so no pair is ever shown; on the test digits the true
translation is known both ways, and the summary has ``a2b_l1`` and ``b2a_l1`` against it,
``cycle_l1``, ``fid_mnist`` (``a2b_``, ``b2a_``: against the real test digits of the target
domain) and ``label_accuracy`` (the shipped classifier still sees the digit), beside the
identity map's (``identity_*``) and the true transform's label accuracy (``true_*``);
``folder``: ``trainA/ trainB/ testA/ testB/`` as the original repository's datasets;
``tfds``: tfds ``cycle_gan/<--tfds-name>``. Images are resized to ``--image-size`` (no random
crops or flips). A domain smaller than the other is repeated to its size, each epoch a
permutation of the (A, B) rows, so each image pairs with an unrelated one of the other domain.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxgan import data, viz
from jaxgan.axis import DataAxis
from jaxgan.cli import cli_main, flag, option, require
from jaxgan.evaluate import MNISTEvaluator, as_mnist
from jaxgan.losses import LOSSES, GANLoss
from jaxgan.monitor import QualityWatch
from jaxgan.pool import ImagePool
from jaxgan.state import STEP_STREAM, ModelState
from jaxgan.step import logits_of
from jaxgan.trainer import TrainConfig, choose_devices, override
from jaxgan.trainer.config import STEP, make_optimizer
from jaxgan.trainer.console import print_closing, stage_bar
from jaxgan.trainer.fit import fit
from jaxgan.trainer.images import write_training_figures
from jaxgan.trainer.plugins import Evaluation
from jaxgan.trainer.run import open_run
from jaxgan.trainer.translation import GRID_COLUMNS, TranslationGrids, baseline_scores, in_chunks
from jaxgan.translation import PatchDiscriminator, ResNetGenerator

NAME = "cyclegan"
TRANSLATES = True  # G maps images of one domain (jaxgan.generate cannot sample it from noise)
TASKS = ("thicken", "folder", "tfds")
# The losses whose D is an ordinary classifier of real and fake (no penalty or clipping the
# step would have to add): any of them plays the GAN part of the objective.
STEP_LOSSES = ("hinge", "lsgan", "non_saturating", "ragan", "rpgan")
DOMAINS = ("a", "b")
FOLDERS = ("trainA", "trainB", "testA", "testB")


@dataclasses.dataclass(frozen=True)
class CycleSettings:
    """The step's static settings (part of the state's tree structure).

    Attributes:
      loss: the GAN loss both pairs of networks play.
      adv_weight: the GAN losses' weight in G's loss.
      cycle_weight: λ, the weight of each cycle's L1 (A → B → A and B → A → B).
      identity_weight: the identity losses' weight, as a multiple of λ.
    """

    loss: GANLoss
    adv_weight: float = 2.0
    cycle_weight: float = 10.0
    identity_weight: float = 0.5


class CycleGANState(struct.PyTreeNode):
    """Both generators, both discriminators (``d_a`` judges images of domain A), the histories
    of fakes each discriminator is updated on, and the run's key and step: any runner of
    jaxgan trains, checkpoints and resumes it (see :mod:`jaxgan.state`)."""

    g_ab: ModelState
    g_ba: ModelState
    d_a: ModelState
    d_b: ModelState
    pool_a: ImagePool  # G_ba's outputs, for d_a
    pool_b: ImagePool  # G_ab's outputs, for d_b
    key: jax.Array
    step: jax.Array
    settings: CycleSettings = struct.field(pytree_node=False)

    @property
    def config(self) -> CycleSettings:
        """The settings, under the name the trainer reads a state's loss from."""
        return self.settings


def create_state(
    generators: tuple[Any, Any],
    discriminators: tuple[Any, Any],
    optimizers: tuple[optax.GradientTransformation, optax.GradientTransformation],
    example: Mapping[str, np.ndarray],
    key: jax.Array,
    settings: CycleSettings,
    pool_size: int = 50,
    precision: str = "float32",
) -> CycleGANState:
    """The initial state: ``generators`` (A → B, B → A) and ``discriminators`` (of A, of B)
    initialised on ``example`` images (``{"a": ..., "b": ...}``, scaled), G's and D's
    ``optimizers``, empty pools of ``pool_size`` images; the networks compute in
    ``precision`` (:mod:`jaxgan.precision`)."""
    g_tx, d_tx = optimizers
    root, *keys = jax.random.split(key, 5)
    modules = (*generators, *discriminators)
    inputs = (example["a"], example["b"], example["a"], example["b"])

    @jax.jit
    def init(keys):  # one program: each initializer run eagerly is its own compilation
        return [m.init(k, x, train=False) for m, k, x in zip(modules, keys, inputs, strict=True)]

    def model(module, variables, tx):
        state = ModelState.create(
            apply_fn=module.apply, params=variables["params"], tx=tx, precision=precision
        )
        return state.replace(step=jnp.zeros((), jnp.int32))

    variables = init(keys)
    txs = (g_tx, g_tx, d_tx, d_tx)
    g_ab, g_ba, d_a, d_b = (model(*a) for a in zip(modules, variables, txs, strict=True))
    pools = (ImagePool.create(pool_size, example[d].shape[1:]) for d in DOMAINS)
    return CycleGANState(g_ab, g_ba, d_a, d_b, *pools, root, jnp.zeros((), jnp.int32), settings)


def _run(model: ModelState, params, x):
    return model.apply(params, x, train=True)[0]


def l1(x, y):
    return jnp.mean(jnp.abs(x - y))


def cyclegan_step_body(state: CycleGANState, batch, axis_name: str | None = None):
    """One CycleGAN iteration (the reference code's order): both generators updated together
    against the current discriminators, then each discriminator on its real images and the
    pool's answer to the fakes of this step's forward pass (before G's update).

    ``batch`` is ``{"a": [n, ...], "b": [n, ...]}`` in [-1, 1], this device's rows under
    ``axis_name``. Returns the new state and ``d_loss`` (the two D losses' mean), ``g_loss``
    (G's whole loss), ``g_adv``, ``cycle_l1`` and ``idt_l1`` (the cycles' and the identity
    losses' mean L1), each D's loss and the gradient norms."""
    s, axis = state.settings, DataAxis(axis_name)
    real_a, real_b = batch["a"], batch["b"]
    if real_a.shape != real_b.shape:
        raise ValueError(f"the domains' batches differ: {real_a.shape} and {real_b.shape}")

    def d_logits(d: ModelState, params, x):
        return logits_of(_run(d, params, x))

    real_logits_a = d_logits(state.d_a, state.d_a.params, real_a)
    real_logits_b = d_logits(state.d_b, state.d_b.params, real_b)

    def g_loss_fn(params):
        ab, ba = (
            functools.partial(_run, state.g_ab, params[0]),
            functools.partial(_run, state.g_ba, params[1]),
        )
        fake_b, fake_a = ab(real_a), ba(real_b)

        def fooling(d: ModelState, fake, real_logits):  # G's GAN loss against D
            return s.loss.generator(d_logits(d, d.params, fake), real_logits)

        adv = fooling(state.d_b, fake_b, real_logits_b) + fooling(state.d_a, fake_a, real_logits_a)
        cycle = l1(ba(fake_b), real_a) + l1(ab(fake_a), real_b)
        identity = l1(ab(real_b), real_b) + l1(ba(real_a), real_a) if s.identity_weight else 0.0
        total = s.adv_weight * adv + s.cycle_weight * (cycle + s.identity_weight * identity)
        measured = {"g_adv": adv, "cycle_l1": cycle / 2, "idt_l1": identity / 2}
        return total, (fake_a, fake_b, measured)

    g_params = (state.g_ab.params, state.g_ba.params)
    (g_loss, (fake_a, fake_b, metrics)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
        g_params
    )
    grads = axis.mean(grads)
    g_ab = state.g_ab.apply_gradients(grads=grads[0])
    g_ba = state.g_ba.apply_gradients(grads=grads[1])

    step_key = jax.random.fold_in(jax.random.fold_in(state.key, STEP_STREAM), state.step)
    key_a, key_b = jax.random.split(step_key)

    def d_update(d: ModelState, pool: ImagePool, real, fake, key):
        pool, fake = pool.query_global(jax.lax.stop_gradient(fake), key, axis)

        def loss_fn(params):
            return s.loss.discriminator(d_logits(d, params, real), d_logits(d, params, fake))

        loss, grads = jax.value_and_grad(loss_fn)(d.params)
        grads = axis.mean(grads)
        return d.apply_gradients(grads=grads), pool, loss, optax.tree.norm(grads)

    d_a, pool_a, d_a_loss, d_a_norm = d_update(state.d_a, state.pool_a, real_a, fake_a, key_a)
    d_b, pool_b, d_b_loss, d_b_norm = d_update(state.d_b, state.pool_b, real_b, fake_b, key_b)
    metrics = axis.mean(
        {
            **metrics,
            "g_loss": g_loss,
            "d_loss": (d_a_loss + d_b_loss) / 2,
            "d_a_loss": d_a_loss,
            "d_b_loss": d_b_loss,
            "d_grad_norm": jnp.maximum(d_a_norm, d_b_norm),
            "g_grad_norm": optax.tree.norm(grads),
        }
    )
    new = state.replace(
        g_ab=g_ab, g_ba=g_ba, d_a=d_a, d_b=d_b, pool_a=pool_a, pool_b=pool_b, step=state.step + 1
    )
    return new, metrics


@jax.jit
def _translate_chunk(model: ModelState, x):
    return model.apply(model.params, x, train=False)[0]


def translate(model: ModelState, images: np.ndarray) -> np.ndarray:
    """A generator's uint8 outputs for uint8 ``images``, in chunks."""
    return in_chunks(functools.partial(_translate_chunk, model), images)


def thicken(images: np.ndarray, size: int = 3) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` images dilated: each pixel the brightest of the ``size`` ×
    ``size`` square around it (grey-scale morphological dilation; strokes grow by
    ``size - 1`` pixels)."""
    r = size // 2
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)))
    h, w = images.shape[1:3]
    return np.max(
        [padded[:, i : i + h, j : j + w] for i in range(size) for j in range(size)], axis=0
    )


# --- the configuration ------------------------------------------------------------------------


def _unused_options() -> frozenset[str]:
    """The GAN step's options beside ``--loss``, and the EMA: CycleGAN's step has neither."""
    fields = dataclasses.fields(TrainConfig)
    return frozenset(f.name for f in fields if f.metadata.get("group") == STEP) - {"loss"} | {
        "ema_decay"
    }


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset()
    UNUSED_OPTIONS: ClassVar[frozenset[str]] = _unused_options()
    EPOCH_METRICS: ClassVar[tuple[str, ...]] = (
        "d_loss", "g_loss", "g_adv", "cycle_l1", "idt_l1", "d_a_loss", "d_b_loss",
    )  # fmt: skip
    EVAL_METRICS: ClassVar[tuple[str, ...]] = ("a2b_l1", "b2a_l1", "test_cycle_l1")

    workdir: str = override("workdir", "runs/cyclegan")
    task: str = option("thicken", "thicken (MNIST: thin digits to thick ones), folder "
                       "(--data-dir's trainA/ trainB/ testA/ testB/) or tfds (cycle_gan/"
                       "--tfds-name)", choices=TASKS)  # fmt: skip
    data_dir: str | None = option(None, "thicken: local MNIST IDX files instead of tfds; "
                                  "folder: the one with trainA/ trainB/ testA/ testB/")  # fmt: skip
    tfds_data_dir: str | None = option(None, "thicken, tfds: tfds data directory (default: "
                                       "tfds' own)")  # fmt: skip
    tfds_name: str = option("horse2zebra", "tfds: the cycle_gan dataset (horse2zebra, "
                            "monet2photo, ...)")  # fmt: skip
    image_size: int = option(28, "images' side (thicken: MNIST's 28, else resized; the "
                             "paper's 256)")  # fmt: skip
    thicken_size: int = option(3, "thicken: the side of the dilation's square (odd)")
    loss: str = option("lsgan", "GAN loss", choices=STEP_LOSSES, group=STEP)
    epochs: int = override("epochs", 10)
    batch_size: int = override("batch_size", 16)
    log_every: int = override("log_every", 20)
    checkpoint_every: int = override("checkpoint_every", 1)
    lr_schedule: str = override("lr_schedule", "linear")
    lr_hold: float = override("lr_hold", 0.5)
    adv_weight: float = option(2.0, "the GAN losses' weight in G's loss (2 with lsgan: the "
                               "paper's E[(D(G(x)) - 1)^2])")  # fmt: skip
    cycle_weight: float = option(10.0, "λ: the weight of each cycle's L1")
    identity_weight: float = option(0.5, "the identity losses' weight, times λ (0 = off)")
    pool_size: int = option(50, "earlier fakes each D is updated on (0 = only the newest)")
    g_width: int = option(16, "ngf: the ResNet generators' first channels (the paper's 64)")
    g_blocks: int = option(4, "their residual blocks (the paper's 9 at 256, 6 at 128)")
    d_width: int = option(16, "ndf: the PatchGANs' first channels (the paper's 64)")
    d_layers: int = option(2, "the PatchGANs' stride-2 layers (the paper's 3: 70x70 patches)")
    eval_samples: int = option(10_000, "test images per domain scored at the end (at most; 0 "
                               "= off)", group="evaluation")  # fmt: skip
    eval_every: int = option(0, "also score the test images every this many epochs (0 = only "
                             "at the end)", group="evaluation")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        require(
            self.task != "folder" or self.data_dir is not None,
            "--task folder needs --data-dir: a folder with trainA/ trainB/ testA/ testB/",
        )
        for name in ("g_width", "g_blocks", "d_width", "d_layers"):
            value = getattr(self, name)
            require(value >= 1, f"--{flag(name)} must be >= 1, got {value}")
        for name in ("adv_weight", "cycle_weight", "identity_weight", "pool_size"):
            value = getattr(self, name)
            require(value >= 0, f"--{flag(name)} must be >= 0, got {value}")
        require(
            self.thicken_size >= 3 and self.thicken_size % 2,
            f"--thicken-size must be odd and >= 3, got {self.thicken_size}",
        )
        require(
            self.image_size >= 8 and self.image_size % 4 == 0,
            f"--image-size {self.image_size} must be a multiple of 4 (the generators halve it "
            "twice), at least 8",
        )
        require(
            self.image_size % 2**self.d_layers == 0 and self.image_size >> self.d_layers >= 4,
            f"--d-layers {self.d_layers} halves --image-size {self.image_size} to an odd size or "
            "below the 4x4 its last convolutions need: use fewer layers",
        )
        require(self.eval_samples >= 0, f"--eval-samples must be >= 0, got {self.eval_samples}")
        require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")

    def settings(self) -> CycleSettings:
        return CycleSettings(
            LOSSES[self.loss], self.adv_weight, self.cycle_weight, self.identity_weight
        )

    def channels(self) -> int:
        return 1 if self.task == "thicken" else 3


def build_models(config: Config):
    """``(G_ab, G_ba), (D_a, D_b)``: instance norm throughout, so the same on any devices."""
    g = ResNetGenerator(config.channels(), config.g_width, config.g_blocks)
    d = PatchDiscriminator(config.d_width, config.d_layers, norm="instance")
    return (g, g), (d, d)


def initial_state(config: Config, train_set: Mapping[str, np.ndarray]) -> CycleGANState:
    """The config's initial state for ``train_set`` (``{"a", "b"}``, uint8), its learning
    rates' schedules spanning the run."""
    per_epoch = len(train_set["a"]) // config.batch_size
    require(
        per_epoch >= 1,
        f"{len(train_set['a'])} training images per domain are fewer than one batch "
        f"(--batch-size {config.batch_size}); lower it",
    )
    total = per_epoch * config.epochs
    optimizers = (
        make_optimizer(config.lr_g, config, total),
        make_optimizer(config.lr_d, config, total),
    )
    example = {d: data.scale_images(jnp.asarray(train_set[d][:2])) for d in DOMAINS}
    return create_state(*build_models(config), optimizers, example, jax.random.key(config.seed),
                        config.settings(), config.pool_size, config.precision)  # fmt: skip


# --- the data ----------------------------------------------------------------------------------


def unpaired(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """The two domains' images as the rows of one dataset: the smaller repeated to the
    larger's size."""
    n = max(len(a), len(b))
    return {"a": np.resize(a, (n, *a.shape[1:])), "b": np.resize(b, (n, *b.shape[1:]))}


def load_folder(root: str, size: int) -> dict[str, np.ndarray]:
    """The images of CycleGAN's dataset layout, by folder name, resized to ``size``."""
    missing = [f for f in FOLDERS if not (Path(root) / f).is_dir()]
    if missing:
        raise data.DataError(
            f"{root} has no {', '.join(m + '/' for m in missing)}: --task folder needs the "
            f"original repository's layout, {' '.join(f + '/' for f in FOLDERS)}"
        )
    return {f: data.load_image_folder(Path(root) / f, size)["image"] for f in FOLDERS}


def load(config: Config) -> tuple[dict, dict, np.ndarray | None]:
    """The training rows (:func:`unpaired`), the test images by domain (thicken: ``"a"`` the
    test digits, ``"b"`` their thickening, the truth of either translation), and (thicken)
    the test digits' labels."""
    if config.task == "thicken":
        train = data.load_mnist("train", config.data_dir, config.tfds_data_dir)["image"]
        test = data.load_mnist("test", config.data_dir, config.tfds_data_dir)
        train, test_a = (data.digits_at(x, config.image_size) if config.image_size != 28 else x
                         for x in (train, test["image"]))  # fmt: skip
        half = len(train) // 2
        thick = functools.partial(thicken, size=config.thicken_size)
        return (
            unpaired(train[:half], thick(train[half:])),
            {"a": test_a, "b": thick(test_a)},
            test["label"],
        )
    if config.task == "folder":
        images = load_folder(config.data_dir, config.image_size)
    else:
        resize = functools.partial(data.resize_images, size=config.image_size)
        images = {
            f: data.load_tfds(f"cycle_gan/{config.tfds_name}", f, config.tfds_data_dir,
                              transform=resize)["image"]
            for f in FOLDERS
        }  # fmt: skip
    return (
        unpaired(images["trainA"], images["trainB"]),
        {"a": images["testA"], "b": images["testB"]},
        None,
    )


# --- grids and scores --------------------------------------------------------------------------


class CycleGrids(TranslationGrids):
    """Fixed test images of both domains: rows of 8 inputs, their translations and the way
    back (A, then B)."""

    def __init__(self, writer, test_set: Mapping[str, np.ndarray]):
        super().__init__(writer)
        self.inputs = {d: test_set[d][:GRID_COLUMNS] for d in DOMAINS}

    def grid(self, state: CycleGANState) -> np.ndarray:
        rows = []
        for d, there, back in (("a", state.g_ab, state.g_ba), ("b", state.g_ba, state.g_ab)):
            out = translate(there, self.inputs[d])
            rows += [self.inputs[d], out, translate(back, out)]
        return viz.image_grid(np.concatenate(rows), ncols=GRID_COLUMNS)


def cycle_l1(inputs: np.ndarray, returned: np.ndarray) -> float:
    """The mean absolute difference of uint8 images on the [0, 1] scale."""
    return float(np.mean(np.abs(inputs.astype(np.float32) - returned.astype(np.float32))) / 255)


def translated(
    state: CycleGANState, test: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Both generators' translations of the ``test`` images (A → B, B → A), and their
    ``test_cycle_l1``: the two ways' mean :func:`cycle_l1` of each image and its way back."""
    a2b, b2a = translate(state.g_ab, test["a"]), translate(state.g_ba, test["b"])
    back_a, back_b = translate(state.g_ba, a2b), translate(state.g_ab, b2a)
    return a2b, b2a, (cycle_l1(test["a"], back_a) + cycle_l1(test["b"], back_b)) / 2


def scoring(
    test_set: Mapping[str, np.ndarray], num: int, labels: np.ndarray | None, known: bool
) -> tuple[Callable[[CycleGANState], dict] | None, dict[str, Any]]:
    """``score(state)`` of the first ``num`` test images of each domain (None when ``num`` is
    0) and the baselines' scores. Always ``test_cycle_l1``; where the truth is ``known``
    (thicken: each domain's images are the other's translation), ``a2b_*``, ``b2a_*``
    (:func:`~jaxgan.trainer.translation.baseline_scores` against the truth, FID against the
    target domain's test digits), ``label_accuracy`` (both ways' mean), and the identity
    map's and the true translation's."""
    if not num:
        return None, {}
    test = {d: test_set[d][:num] for d in DOMAINS}
    if not known:
        return lambda state: {"test_cycle_l1": translated(state, test)[2]}, {}
    labels = labels[:num]
    with stage_bar("features of the test digits of both domains", 2) as bar:
        evaluators = {}
        for d in DOMAINS:
            evaluators[d] = MNISTEvaluator(as_mnist(test[d]))
            bar.update()
    targets = {"a2b": {"target": test["b"]}, "b2a": {"target": test["a"]}}

    def both_ways(name: str, a2b: np.ndarray, b2a: np.ndarray) -> dict[str, Any]:
        scores = {
            **baseline_scores(f"{name}a2b", a2b, targets["a2b"], evaluators["b"], labels),
            **baseline_scores(f"{name}b2a", b2a, targets["b2a"], evaluators["a"], labels),
        }
        ways = (scores[f"{name}{w}_label_accuracy"] for w in ("a2b", "b2a"))
        return {**scores, f"{name}label_accuracy": sum(ways) / 2}

    def score(state: CycleGANState) -> dict:
        with stage_bar(f"scoring {num} test images per domain", 2) as bar:
            a2b, b2a, cycle = translated(state, test)
            bar.update()
            scores = both_ways("", a2b, b2a)
            bar.update()
        return {**scores, "test_cycle_l1": cycle}

    identity = both_ways("identity_", test["a"], test["b"])
    true = both_ways("true_", test["b"], test["a"])
    true = {k: v for k, v in true.items() if k.endswith("label_accuracy")}  # the rest is 0
    return score, {**identity, **true}


HEADLINE = ("a2b_l1", "b2a_l1", "test_cycle_l1", "label_accuracy", "a2b_fid_mnist", "b2a_fid_mnist")
PICTURES = ("translations.png", "loss_curves.png", "progress.gif")


def train(config: Config) -> dict:
    """Trains CycleGAN and writes its workdir; returns the summary."""
    devices = choose_devices(config)
    train_set, test_set, labels = load(config)
    score, baselines = scoring(test_set, config.eval_samples, labels, config.task == "thicken")
    state = initial_state(config, train_set)
    with open_run(config, NAME, state, num_devices=devices) as run:
        grids = CycleGrids(run.writer, test_set)
        hooks: list = [grids]
        if score is not None:
            watch = QualityWatch("a2b_l1" if config.task == "thicken" else "test_cycle_l1", "min")
            hooks.append(Evaluation(score, config.epochs, every=config.eval_every, watch=watch))
        train_data = {d: data.scale_images(train_set[d]) for d in DOMAINS}
        state, summary = fit(run, train_data, hooks, step_fn=cyclegan_step_body)
        write_training_figures(run.writer)
        viz.save_png(grids.grid(state), run.writer.path("translations.png"))
        summary.update(baselines, num_train=len(train_set["a"]))
        run.writer.summary(summary)
        print_closing(summary, HEADLINE, config.workdir, PICTURES)
        return summary


def main(argv=None) -> None:
    cli_main(NAME, Config, train, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    main()

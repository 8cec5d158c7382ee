"""The trainer's config: the options every experiment shares (a dataclass that
:func:`jaxgan.cli.cli_main` turns into a command line), the optimizers and the initial state.

An experiment defines a subclass of :class:`TrainConfig` (its own fields and defaults) and a
``train(config)`` function that trains with :func:`jaxgan.trainer.fit`, and its ``main`` is
``cli_main(NAME, Config, train, description)``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

import jax
import optax

from jaxgan.cli import UsageError, flag, option, require
from jaxgan.epoch import steps_per_epoch
from jaxgan.losses import LOSSES
from jaxgan.precision import PRECISIONS
from jaxgan.state import CONDITIONALS, LATENT_DISTRIBUTIONS, GANState, StepConfig

# The groups of options in --help.
RUN = "run"
STEP = "the GAN step"
OPTIMISATION = "optimisation"
TRICKS = "model tricks"
HEALTH = "health monitor"
CHECKPOINTS = "checkpoints"
DEVICES = "devices and hosts"
CONDITIONAL = "conditional GANs"
# The options that compose the step: a config's fields named as StepConfig.from_options'
# parameters are passed through, and checked by it (its errors name them, shown as flags).
STEP_OPTIONS = StepConfig.option_names() - {"total_steps", "num_classes"}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options common to every experiment (DESIGN.md); experiments override the defaults.

    ``PRESETS`` maps a ``--preset`` name to the defaults it sets; options given explicitly on
    the command line still win. An experiment with presets declares a ``preset`` field.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    # Options a resumed run may change: they alter neither the model nor the data.
    RESUME_SAFE: ClassVar[frozenset[str]] = frozenset(
        {"workdir", "epochs", "log_every", "checkpoint_every", "checkpoint_every_steps"}
        | {"monitor_window", "collapse_ratio", "stop_on_warning"}
        | {"keep_checkpoints", "keep_best"}
        | {"restart", "overwrite", "lr_g", "lr_d", "devices", "distributed", "precision"}
        | {"coordinator_address", "num_processes", "process_id"}
    )
    # Metrics logged every epoch, which --keep-best may rank checkpoints by.
    EPOCH_METRICS: ClassVar[tuple[str, ...]] = (
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "d_grad_norm",
        "g_grad_norm",
        "diversity",
    )

    # Metrics of an evaluation the experiment may run at some epochs' ends: --keep-best ranks
    # by them when every checkpoint is saved after one (the experiment's validate says when).
    EVAL_METRICS: ClassVar[tuple[str, ...]] = ()
    # The model tricks (the options of the TRICKS group) the experiment's models have; the
    # others are refused when given, rather than silently ignored.
    MODEL_TRICKS: ClassVar[frozenset[str]] = frozenset(
        {"d_spectral_norm", "g_dropout", "g_dropout_at_sampling"}
    )
    # Other options an experiment's own step does not read (CycleGAN's has no d_steps or
    # latent noise): refused when given, rather than silently ignored.
    UNUSED_OPTIONS: ClassVar[frozenset[str]] = frozenset()

    workdir: str = option(
        "runs/experiment", "directory for config, metrics, figures, summary", group=RUN
    )
    seed: int = option(0, "seed from which the whole run derives", group=RUN)
    epochs: int = option(10, "passes over the training set", group=RUN)
    batch_size: int = option(100, "real samples per discriminator minibatch", group=RUN)
    loss: str = option("non_saturating", "GAN loss", choices=sorted(LOSSES), group=STEP)
    d_steps: int = option(1, "discriminator updates per generator update (k)", group=STEP)
    lr_g: float = option(2e-4, "generator learning rate", group=OPTIMISATION)
    lr_d: float = option(2e-4, "discriminator learning rate", group=OPTIMISATION)
    optimizer: str = option(
        "adam",
        "optimizer of both networks (WGAN's paper used rmsprop)",
        choices=("adam", "rmsprop"),
        group=OPTIMISATION,
    )
    beta1: float = option(0.5, "Adam beta1 for both networks", group=OPTIMISATION)
    beta2: float = option(0.999, "Adam beta2 for both networks", group=OPTIMISATION)
    lr_schedule: str = option(
        "constant",
        "learning-rate schedule over the run",
        choices=("constant", "linear", "cosine"),
        group=OPTIMISATION,
    )
    lr_hold: float = option(
        0.0,
        "with --lr-schedule linear or cosine: the share of the run at the full rate before the "
        "decay to 0 begins (CycleGAN: 0.5)",
        group=OPTIMISATION,
    )
    ema_decay: float = option(
        0.0, "EMA decay of G's weights used for sampling (0 = off)", group=OPTIMISATION
    )
    precision: str = option(
        "float32",
        "the networks' compute dtype: bfloat16 runs them in bfloat16 (fast on GPUs and TPUs), "
        "keeping parameters, optimizer state, losses, batch-norm statistics and metrics float32",
        choices=tuple(PRECISIONS),
        group=OPTIMISATION,
    )
    latent_dim: int = option(64, "dimension of the generator's noise input", group=STEP)
    latent: str = option("gaussian", "noise distribution", choices=LATENT_DISTRIBUTIONS, group=STEP)
    gp_weight: float | None = option(
        None,
        "gradient penalty weight λ (default: 10 for --loss wgan_gp, else 0)",
        group=STEP,
    )
    r1_gamma: float = option(0.0, "R1 penalty γ on D's gradient at real data (0 = off)", group=STEP)
    r2_gamma: float = option(
        0.0, "R2 penalty γ on D's gradient at generated data (0 = off; R3GAN: with R1)", group=STEP
    )
    weight_clip: float | None = option(
        None,
        "clip D's weights to [-c, c] (default: 0.01 for --loss wgan, else off)",
        group=STEP,
    )
    real_target: tuple[float, ...] = option(
        (1.0,),
        "D's target for real data: T, or LO HI for uniform (0.9 = label smoothing)",
        group=STEP,
    )
    fake_target: tuple[float, ...] = option(
        (0.0,),
        "D's target for fakes: T, or LO HI for uniform (0 0.1 = soft labels)",
        group=STEP,
    )
    label_flip: float = option(
        0.0, "fraction of D's examples with real/fake labels swapped", group=STEP
    )
    instance_noise: float = option(
        0.0,
        "std of Gaussian noise on D's inputs, annealed linearly to 0 (0 = off)",
        group=STEP,
    )
    instance_noise_steps: int = option(
        0,
        "steps over which the instance noise decays to 0 (0 = the whole run)",
        group=STEP,
    )
    d_spectral_norm: bool = option(
        False, "spectral normalisation of D's layers (Miyato et al.)", group=TRICKS
    )
    g_dropout: float = option(0.0, "dropout rate after G's hidden layers", group=TRICKS)
    g_dropout_at_sampling: bool = option(
        False,
        "keep G's dropout on when sampling (a second noise source)",
        group=TRICKS,
    )
    monitor_window: int = option(
        500,
        "steps a failure sign (D winning or its loss exploding, mode collapse) must last to be "
        "reported (a fifth of a shorter run)",
        group=HEALTH,
    )
    collapse_ratio: float = option(
        0.25,
        "report mode collapse when G's batch diversity falls below this share of the data's",
        group=HEALTH,
    )
    stop_on_warning: bool = option(
        False,
        "stop (saving the state, exit status 4) when the health monitor warns",
        group=HEALTH,
    )
    log_every: int = option(0, "steps between log points (0 = once per epoch)", group=RUN)
    checkpoint_every: int = option(
        10,
        "epochs between checkpoints (0 = only at the end); also saved on SIGTERM/SIGINT",
        group=CHECKPOINTS,
    )
    checkpoint_every_steps: int = option(
        0,
        "steps between checkpoints instead (0 = use --checkpoint-every); epochs then run in "
        "chunks, which is also how soon a signal is answered",
        group=CHECKPOINTS,
    )
    keep_checkpoints: int = option(
        3, "how many of the newest checkpoints to keep", group=CHECKPOINTS
    )
    keep_best: str | None = option(
        None,
        "also keep the best checkpoint by an epoch metric, as NAME:max or NAME:min",
        group=CHECKPOINTS,
    )
    restart: bool = option(
        False, "start afresh instead of resuming the run in --workdir", group=RUN
    )
    overwrite: bool = option(False, "with --restart: allow discarding the existing run", group=RUN)
    devices: int = option(
        0,
        "devices to split each batch over (0 = all, or the most that divide the batch)",
        group=DEVICES,
    )
    distributed: bool = option(
        False,
        "multi-host: join the other processes (jax.distributed.initialize) first; automatic "
        "on the hosts of a TPU pod slice",
        group=DEVICES,
    )
    coordinator_address: str | None = option(
        None,
        "with --distributed: host:port of process 0 (auto-detected on TPU VMs, SLURM)",
        group=DEVICES,
    )
    num_processes: int | None = option(
        None, "with --distributed: number of processes", group=DEVICES
    )
    process_id: int | None = option(None, "with --distributed: this process's index", group=DEVICES)

    def validate(self) -> None:
        """Raises :class:`UsageError` for impossible values; subclasses extend it."""
        for name in ("epochs", "batch_size"):
            require(
                getattr(self, name) >= 1, f"--{flag(name)} must be >= 1, got {getattr(self, name)}"
            )
        for name in ("lr_g", "lr_d"):
            require(
                getattr(self, name) > 0, f"--{flag(name)} must be > 0, got {getattr(self, name)}"
            )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            require(0 <= value < 1, f"--{flag(name)} must be in [0, 1), got {value}")
        require(self.log_every >= 0, f"--log-every must be >= 0, got {self.log_every}")
        require(
            self.checkpoint_every >= 0,
            f"--checkpoint-every must be >= 0, got {self.checkpoint_every}",
        )
        require(
            self.checkpoint_every_steps >= 0,
            f"--checkpoint-every-steps must be >= 0, got {self.checkpoint_every_steps}",
        )
        require(
            self.keep_checkpoints >= 1,
            f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}",
        )
        require(not self.overwrite or self.restart, "--overwrite only applies with --restart")
        require(self.devices >= 0, f"--devices must be >= 0, got {self.devices}")
        require(0 <= self.g_dropout < 1, f"--g-dropout must be in [0, 1), got {self.g_dropout}")
        require(
            0 <= self.collapse_ratio <= 1,
            f"--collapse-ratio must be in [0, 1], got {self.collapse_ratio}",
        )
        require(
            self.monitor_window >= 1, f"--monitor-window must be >= 1, got {self.monitor_window}"
        )
        require(0 <= self.lr_hold < 1, f"--lr-hold must be in [0, 1), got {self.lr_hold}")
        require(
            not self.lr_hold or self.lr_schedule != "constant",
            "--lr-hold holds the rate before a decay: give --lr-schedule linear or cosine, or "
            "--lr-hold 0",
        )
        for f in dataclasses.fields(self):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            given = getattr(self, f.name) != default
            if f.metadata.get("group") == TRICKS and f.name not in self.MODEL_TRICKS and given:
                raise UsageError(f"--{flag(f.name)} is not available: this experiment's models "
                                 "do not have it")  # fmt: skip
            if f.name in self.UNUSED_OPTIONS and given:
                raise UsageError(f"--{flag(f.name)} is not available: this experiment's step "
                                 "does not use it")  # fmt: skip
        try:
            self.step_config()
        except ValueError as e:  # the step's own checks, named by option
            names = "|".join(sorted(self.step_options(), key=len, reverse=True))
            message = re.sub(rf"\b({names})\b", lambda m: f"--{flag(m[1])}", str(e))
            raise UsageError(message) from e
        if self.keep_best is not None:
            name, mode = self.best_checkpoint_metric()
            require(
                name in (*self.EPOCH_METRICS, *self.EVAL_METRICS) and mode in ("max", "min"),
                f"--keep-best must be NAME:max or NAME:min with NAME one of "
                f"{', '.join((*self.EPOCH_METRICS, *self.EVAL_METRICS))}; got {self.keep_best!r}",
            )

    def best_checkpoint_metric(self) -> tuple[str | None, str]:
        """``--keep-best NAME:MODE`` as ``(NAME, MODE)``; ``(None, "max")`` when not given."""
        if self.keep_best is None:
            return None, "max"
        name, _, mode = self.keep_best.partition(":")
        return name, mode

    def model_tricks(self, axis_name: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Keyword arguments for the MLP G and D that carry the model-level tricks, and the
        data axis (:func:`jaxgan.trainer.model_axis`) their batch statistics and dropout span."""
        g = {"dropout": self.g_dropout, "dropout_at_sampling": self.g_dropout_at_sampling}
        axis = {"axis_name": axis_name}
        return {**g, **axis}, {"spectral_norm": self.d_spectral_norm, **axis}

    def device_share_unit(self) -> int:
        """What each device's share of a minibatch must be a multiple of (PacGAN packs)."""
        return 1

    def step_config(self, total_steps: int = 0) -> StepConfig:
        """The step's settings: the fields in :data:`STEP_OPTIONS`, passed through;
        ``total_steps`` (the run's) is where instance noise reaches 0 unless
        ``--instance-noise-steps`` says otherwise."""
        options = {n: getattr(self, n) for n in self.step_options()}
        return StepConfig.from_options(**options, total_steps=total_steps, **self.labels())

    def step_options(self) -> set[str]:
        """This config's fields that compose the step (:data:`STEP_OPTIONS`)."""
        return {f.name for f in dataclasses.fields(self)} & STEP_OPTIONS

    def labels(self) -> dict[str, int]:
        """The labels' number of classes, for a config that trains on them."""
        return {}


@dataclasses.dataclass(frozen=True)
class ConditionalConfig(TrainConfig):
    """The options of experiments on labelled data, which can train class-conditional GANs.

    Subclasses say how many classes their data has (:meth:`num_classes`) and build their
    models with :meth:`conditioning_kwargs`.
    """

    conditional: str = option(
        "none",
        "use the class labels: none; cgan (G and D take the label); acgan (G takes it, D also "
        "classifies, Odena et al.)",
        choices=CONDITIONALS,
        group=CONDITIONAL,
    )
    d_conditioning: str = option(
        "concat",
        "how a cgan's D takes the label: concat (appended to its input) or projection (added "
        "to the logit as an inner product with D's features, Miyato & Koyama)",
        choices=("concat", "projection"),
        group=CONDITIONAL,
    )
    label_embed: int = option(
        0,
        "conditional: a learned label embedding of this size (0 = one-hot)",
        group=CONDITIONAL,
    )
    ac_weight: float = option(
        1.0, "acgan: weight of the classification loss in both losses", group=CONDITIONAL
    )
    ac_fake_in_d: bool = option(
        True,
        "acgan: D's classification loss on generated samples too (off: real ones only)",
        group=CONDITIONAL,
    )

    def num_classes(self) -> int | None:
        """The number of classes of the training labels (None: known once they are loaded)."""
        raise NotImplementedError

    def validate(self) -> None:
        super().validate()
        require(self.label_embed >= 0, f"--label-embed must be >= 0, got {self.label_embed}")

    def conditioning_kwargs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Keyword arguments for G and D (MLP or DCGAN) that make them conditional."""
        if self.conditional == "none":
            return {}, {}
        classes = {"num_classes": self.num_classes()}
        g = {**classes, "label_embed": self.label_embed}
        if self.conditional == "acgan":
            return g, {**classes, "conditioning": "classifier"}
        return g, {**classes, "conditioning": self.d_conditioning, "label_embed": self.label_embed}

    def labels(self) -> dict[str, int]:
        if self.conditional == "none":
            return {}
        # Classes not known before the data are loaded: the settings are checked with the
        # smallest valid count meanwhile (the run itself records the real one).
        return {"num_classes": self.num_classes() or 2}


def override(name: str, default: Any) -> Any:
    """A :class:`TrainConfig` field with a new default for one experiment (help text kept)."""
    meta = TrainConfig.__dataclass_fields__[name].metadata
    return option(default, meta["help"], choices=meta["choices"], group=meta["group"])


def make_optimizer(
    lr: float, config: TrainConfig, total_steps: int
) -> optax.GradientTransformation:
    """Adam (with ``config``'s betas) or RMSprop, the learning rate following ``config``'s
    schedule over ``total_steps`` updates (constant for the ``--lr-hold`` share of them
    first, then decaying to 0)."""
    hold = round(config.lr_hold * total_steps)
    if config.lr_schedule == "linear":
        lr = optax.linear_schedule(lr, 0.0, total_steps - hold, transition_begin=hold)
    elif config.lr_schedule == "cosine":
        decay = optax.cosine_decay_schedule(lr, total_steps - hold)
        lr = optax.join_schedules([optax.constant_schedule(lr), decay], [hold]) if hold else decay
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr)
    return optax.adam(lr, b1=config.beta1, b2=config.beta2)


def init_state(
    config: TrainConfig,
    generator,
    discriminator,
    total_steps: int,
    key: jax.Array | None = None,
    example_batch: dict | None = None,
) -> GANState:
    """The initial state for ``config``, learning-rate schedules spanning ``total_steps``.

    ``key`` defaults to ``jax.random.key(config.seed)``; pass keys explicitly to build a stack
    of states for several seeds with ``jax.vmap``. ``example_batch``: a few rows of the
    training data, for a generator that takes its input from the batch
    (:class:`~jaxgan.inputs.FromBatch`).
    """
    return GANState.create(
        generator=generator,
        discriminator=discriminator,
        g_tx=make_optimizer(config.lr_g, config, total_steps),
        d_tx=make_optimizer(config.lr_d, config, total_steps * config.d_steps),
        key=jax.random.key(config.seed) if key is None else key,
        config=config.step_config(total_steps),
        example_batch=example_batch,
        precision=config.precision,
    )


def create_state(
    config: TrainConfig, generator, discriminator, num_examples: int, example_batch=None
) -> tuple[GANState, int]:
    """The initial state for training on ``num_examples``, and the steps in one epoch.

    Its learning-rate schedules span ``config.epochs``; a resumed run restores its arrays.
    ``example_batch``: as for :func:`init_state`.
    """
    per_epoch = steps_per_epoch(num_examples, config.batch_size, config.d_steps)
    require(
        per_epoch >= 1,
        f"{num_examples} training examples are fewer than one step needs "
        f"(--batch-size {config.batch_size} x --d-steps {config.d_steps}); lower them",
    )
    total = per_epoch * config.epochs
    return init_state(
        config, generator, discriminator, total, example_batch=example_batch
    ), per_epoch

"""The trainer's config: the options every experiment shares (a dataclass that
:func:`jaxgan.cli.cli_main` turns into a command line), the optimizers and the initial state.

An experiment defines a subclass of :class:`TrainConfig` (its own fields and defaults) and a
``train(config)`` function that trains with :func:`jaxgan.trainer.fit`, and its ``main`` is
``cli_main(NAME, Config, train, description)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import optax

from jaxgan.cli import UsageError, flag, option, require
from jaxgan.epoch import steps_per_epoch
from jaxgan.losses import LOSSES
from jaxgan.state import CONDITIONALS, LATENT_DISTRIBUTIONS, GANState, StepConfig

# Options checked by StepConfig itself, whose errors name them by field.
STEP_OPTIONS = ("gp_weight", "r1_gamma", "weight_clip", "real_target", "fake_target")
STEP_OPTIONS += ("label_flip", "instance_noise", "ac_weight")


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
        | {"restart", "overwrite", "lr_g", "lr_d", "devices", "distributed"}
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

    workdir: str = option("runs/experiment", "directory for config, metrics, figures, summary")
    seed: int = option(0, "seed from which the whole run derives")
    epochs: int = option(10, "passes over the training set")
    batch_size: int = option(100, "real samples per discriminator minibatch")
    loss: str = option("non_saturating", "GAN loss", choices=sorted(LOSSES))
    d_steps: int = option(1, "discriminator updates per generator update (k)")
    lr_g: float = option(2e-4, "generator learning rate")
    lr_d: float = option(2e-4, "discriminator learning rate")
    optimizer: str = option(
        "adam",
        "optimizer of both networks (WGAN's paper used rmsprop)",
        choices=("adam", "rmsprop"),
    )
    beta1: float = option(0.5, "Adam beta1 for both networks")
    beta2: float = option(0.999, "Adam beta2 for both networks")
    lr_schedule: str = option(
        "constant", "learning-rate schedule over the run", choices=("constant", "linear", "cosine")
    )
    ema_decay: float = option(0.0, "EMA decay of G's weights used for sampling (0 = off)")
    latent_dim: int = option(64, "dimension of the generator's noise input")
    latent: str = option("gaussian", "noise distribution", choices=LATENT_DISTRIBUTIONS)
    gp_weight: float | None = option(
        None, "gradient penalty weight λ (default: 10 for --loss wgan_gp, else 0)"
    )
    r1_gamma: float = option(0.0, "R1 penalty γ on D's gradient at real data (0 = off)")
    weight_clip: float | None = option(
        None, "clip D's weights to [-c, c] (default: 0.01 for --loss wgan, else off)"
    )
    real_target: tuple[float, ...] = option(
        (1.0,), "D's target for real data: T, or LO HI for uniform (0.9 = label smoothing)"
    )
    fake_target: tuple[float, ...] = option(
        (0.0,), "D's target for fakes: T, or LO HI for uniform (0 0.1 = soft labels)"
    )
    label_flip: float = option(0.0, "fraction of D's examples with real/fake labels swapped")
    instance_noise: float = option(
        0.0, "std of Gaussian noise on D's inputs, annealed linearly to 0 (0 = off)"
    )
    instance_noise_steps: int = option(
        0, "steps over which the instance noise decays to 0 (0 = the whole run)"
    )
    d_spectral_norm: bool = option(False, "spectral normalisation of D's layers (Miyato et al.)")
    g_dropout: float = option(0.0, "dropout rate after G's hidden layers")
    g_dropout_at_sampling: bool = option(
        False, "keep G's dropout on when sampling (a second noise source)"
    )
    monitor_window: int = option(
        500,
        "steps a failure sign (D winning or its loss exploding, mode collapse) must last to be "
        "reported (a fifth of a shorter run)",
    )
    collapse_ratio: float = option(
        0.25, "report mode collapse when G's batch diversity falls below this share of the data's"
    )
    stop_on_warning: bool = option(
        False, "stop (saving the state, exit status 4) when the health monitor warns"
    )
    log_every: int = option(0, "steps between log points (0 = once per epoch)")
    checkpoint_every: int = option(
        10, "epochs between checkpoints (0 = only at the end); also saved on SIGTERM/SIGINT"
    )
    checkpoint_every_steps: int = option(
        0,
        "steps between checkpoints instead (0 = use --checkpoint-every); epochs then run in "
        "chunks, which is also how soon a signal is answered",
    )
    keep_checkpoints: int = option(3, "how many of the newest checkpoints to keep")
    keep_best: str | None = option(
        None, "also keep the best checkpoint by an epoch metric, as NAME:max or NAME:min"
    )
    restart: bool = option(False, "start afresh instead of resuming the run in --workdir")
    overwrite: bool = option(False, "with --restart: allow discarding the existing run")
    devices: int = option(
        0, "devices to split each batch over (0 = all, or the most that divide the batch)"
    )
    distributed: bool = option(
        False,
        "multi-host: join the other processes (jax.distributed.initialize) first; automatic "
        "on the hosts of a TPU pod slice",
    )
    coordinator_address: str | None = option(
        None, "with --distributed: host:port of process 0 (auto-detected on TPU VMs, SLURM)"
    )
    num_processes: int | None = option(None, "with --distributed: number of processes")
    process_id: int | None = option(None, "with --distributed: this process's index")

    def validate(self) -> None:
        """Raises :class:`UsageError` for impossible values; subclasses extend it."""
        for name in ("epochs", "batch_size", "d_steps", "latent_dim"):
            require(
                getattr(self, name) >= 1, f"--{flag(name)} must be >= 1, got {getattr(self, name)}"
            )
        for name in ("lr_g", "lr_d"):
            require(
                getattr(self, name) > 0, f"--{flag(name)} must be > 0, got {getattr(self, name)}"
            )
        for name in ("beta1", "beta2", "ema_decay"):
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
        for name in ("real_target", "fake_target"):
            require(
                len(getattr(self, name)) in (1, 2),
                f"--{flag(name)} takes one value or two (LO HI), got {getattr(self, name)}",
            )
        require(
            self.instance_noise_steps >= 0,
            f"--instance-noise-steps must be >= 0, got {self.instance_noise_steps}",
        )
        try:
            self.step_config()
        except ValueError as e:  # the step's own checks, named by option
            message = str(e)
            for name in STEP_OPTIONS:
                message = message.replace(name, f"--{flag(name)}")
            raise UsageError(message) from e
        if self.keep_best is not None:
            name, mode = self.best_checkpoint_metric()
            require(
                name in self.EPOCH_METRICS and mode in ("max", "min"),
                f"--keep-best must be NAME:max or NAME:min with NAME one of "
                f"{', '.join(self.EPOCH_METRICS)}; got {self.keep_best!r}",
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
        """The step's settings; ``total_steps`` (the run's) is where instance noise reaches 0
        unless ``--instance-noise-steps`` says otherwise."""

        def target_range(values):
            return (values[0], values[-1])

        return StepConfig.from_options(
            loss=self.loss,
            d_steps=self.d_steps,
            latent_dim=self.latent_dim,
            latent=self.latent,
            ema_decay=self.ema_decay,
            gp_weight=self.gp_weight,
            r1_gamma=self.r1_gamma,
            weight_clip=self.weight_clip,
            real_target=target_range(self.real_target),
            fake_target=target_range(self.fake_target),
            label_flip=self.label_flip,
            instance_noise=self.instance_noise,
            instance_noise_steps=self.instance_noise_steps or total_steps,
            **self.conditioning(),
        )

    def conditioning(self) -> dict[str, Any]:
        """The options of :meth:`StepConfig.from_options` that make the step conditional."""
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
    )
    d_conditioning: str = option(
        "concat",
        "how a cgan's D takes the label: concat (appended to its input) or projection (added "
        "to the logit as an inner product with D's features, Miyato & Koyama)",
        choices=("concat", "projection"),
    )
    label_embed: int = option(
        0, "conditional: a learned label embedding of this size (0 = one-hot)"
    )
    ac_weight: float = option(1.0, "acgan: weight of the classification loss in both losses")
    ac_fake_in_d: bool = option(
        True, "acgan: D's classification loss on generated samples too (off: real ones only)"
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

    def conditioning(self) -> dict[str, Any]:
        classes = self.num_classes() if self.conditional != "none" else 0
        return {
            "conditional": self.conditional,
            # Classes not known before the data are loaded: the settings are checked with the
            # smallest valid count meanwhile (the run itself records the real one).
            "num_classes": 2 if classes is None else classes,
            "ac_weight": self.ac_weight,
            "ac_fake_in_d": self.ac_fake_in_d,
        }


def override(name: str, default: Any) -> Any:
    """A :class:`TrainConfig` field with a new default for one experiment (help text kept)."""
    field = TrainConfig.__dataclass_fields__[name]
    return option(default, field.metadata["help"], choices=field.metadata["choices"])


def make_optimizer(
    lr: float, config: TrainConfig, total_steps: int
) -> optax.GradientTransformation:
    """Adam (with ``config``'s betas) or RMSprop, the learning rate following ``config``'s
    schedule over ``total_steps`` updates."""
    if config.lr_schedule == "linear":
        lr = optax.linear_schedule(lr, 0.0, total_steps)
    elif config.lr_schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, total_steps)
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr)
    return optax.adam(lr, b1=config.beta1, b2=config.beta2)


def init_state(
    config: TrainConfig, generator, discriminator, total_steps: int, key: jax.Array | None = None
) -> GANState:
    """The initial state for ``config``, learning-rate schedules spanning ``total_steps``.

    ``key`` defaults to ``jax.random.key(config.seed)``; pass keys explicitly to build a stack
    of states for several seeds with ``jax.vmap``.
    """
    return GANState.create(
        generator=generator,
        discriminator=discriminator,
        g_tx=make_optimizer(config.lr_g, config, total_steps),
        d_tx=make_optimizer(config.lr_d, config, total_steps * config.d_steps),
        key=jax.random.key(config.seed) if key is None else key,
        config=config.step_config(total_steps),
    )


def create_state(
    config: TrainConfig, generator, discriminator, num_examples: int
) -> tuple[GANState, int]:
    """The initial state for training on ``num_examples``, and the steps in one epoch.

    Its learning-rate schedules span ``config.epochs``; a resumed run restores its arrays.
    """
    per_epoch = steps_per_epoch(num_examples, config.batch_size, config.d_steps)
    require(
        per_epoch >= 1,
        f"{num_examples} training examples are fewer than one step needs "
        f"(--batch-size {config.batch_size} x --d-steps {config.d_steps}); lower them",
    )
    return init_state(config, generator, discriminator, per_epoch * config.epochs), per_epoch

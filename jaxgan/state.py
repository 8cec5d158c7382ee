"""The GAN's training state: both networks' TrainStates, the run's key and step, the EMA, and
the step's static settings (:class:`StepConfig`: the loss, terms, inputs and tricks the update
is composed of).

All randomness comes from ``state.key`` by ``fold_in`` of a stream number and the step, so a
run is a pure function of its seed: reproducible, resumable, and ``jax.vmap``-able over a stack
of states (several seeds in one program).

Any pytree trains through jaxgan's runners (:mod:`jaxgan.epoch`, :mod:`jaxgan.parallel`,
:mod:`jaxgan.stream`, the trainer) when it has ``step`` (an int array: steps done) and ``key``
(its root PRNG key); ``minibatches_per_step`` (default 1) says how many real minibatches one
step consumes. :class:`GANState` is one such state.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from jaxgan.inputs import AuxiliaryClassifier, ClassConditional, Unconditional
from jaxgan.losses import GANLoss, get_loss
from jaxgan.precision import cast_floating, cast_like, compute_dtype
from jaxgan.terms import GradientPenalty, InstanceNoise, LabelTargets, R1Penalty, R2Penalty

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]

LATENT_DISTRIBUTIONS = ("gaussian", "uniform")
CONDITIONALS = ("none", "cgan", "acgan")  # the command line's names of the class inputs
# Independent random streams derived from the run's root key.
STEP_STREAM, DATA_STREAM, EVAL_STREAM, SAMPLE_STREAM = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """The update's composition; static (part of the state's tree structure, not its leaves),
    so each composition is its own compiled step.

    Attributes:
      loss: a :class:`~jaxgan.losses.GANLoss`, or the name of a built-in one.
      d_steps: discriminator updates per generator update (k of the original algorithm).
      latent_dim: dimension of the generator's input noise.
      latent: ``"gaussian"`` (N(0, 1)) or ``"uniform"`` (U[-1, 1]) noise.
      ema_decay: when > 0, keep an exponential moving average of G's parameters with this decay
        (after a warm-up, see :func:`ema_decay_at`).
      inputs: what G takes and D judges (:mod:`jaxgan.inputs`); its own terms (AC-GAN's class
        losses) follow ``d_terms`` and ``g_terms``.
      d_terms: D's regularisers (:mod:`jaxgan.terms`), added to its loss in order; None = the
        loss's own (WGAN-GP's gradient penalty).
      g_terms: G's extra terms (an L1 to a target, ...).
      adv_weight: the adversarial loss's weight in G's loss, beside its terms (pix2pix: 1
        with λ = 100 on the L1; SRGAN: 1e-3 beside the content loss); 0 trains G on its terms
        alone, which is how the translation experiments' baselines are trained.
      targets: D's cross-entropy targets (:class:`~jaxgan.terms.LabelTargets`), or None for
        1 and 0; needs a cross-entropy loss.
      instance_noise: noise on D's inputs (:class:`~jaxgan.terms.InstanceNoise`), or None.
      weight_clip: clip D's parameters to [-c, c] after each update (WGAN); None = the loss's
        own (0 = off).
    """

    loss: GANLoss | str = "non_saturating"
    d_steps: int = 1
    latent_dim: int = 64
    latent: str = "gaussian"
    ema_decay: float = 0.0
    inputs: Any = dataclasses.field(default_factory=Unconditional)
    d_terms: tuple | None = None
    g_terms: tuple = ()
    adv_weight: float = 1.0
    targets: LabelTargets | None = None
    instance_noise: InstanceNoise | None = None
    weight_clip: float | None = None

    def __post_init__(self):
        loss = get_loss(self.loss)  # raises naming the valid losses
        settings = {"loss": loss, "g_terms": tuple(self.g_terms)}
        if self.d_terms is None:
            settings["d_terms"] = (GradientPenalty(loss.gp_weight),) if loss.gp_weight else ()
        else:
            settings["d_terms"] = tuple(self.d_terms)
        if self.weight_clip is None:
            settings["weight_clip"] = loss.weight_clip
        for name, value in settings.items():
            object.__setattr__(self, name, value)
        if not self.weight_clip >= 0:
            raise ValueError(f"weight_clip must be >= 0, got {self.weight_clip}")
        if self.targets is not None and not self.loss.cross_entropy:
            raise ValueError(
                f"label targets and flipping need a cross-entropy loss (GANLoss(..., "
                f"cross_entropy=True): minimax, non_saturating), not {self.loss.name!r}"
            )
        if not self.adv_weight >= 0:  # also refuses NaN
            raise ValueError(f"adv_weight must be >= 0, got {self.adv_weight}")
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {self.d_steps}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.latent not in LATENT_DISTRIBUTIONS:
            raise ValueError(f"latent must be one of {LATENT_DISTRIBUTIONS}, got {self.latent!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @classmethod
    def from_options(
        cls,
        *,
        loss: GANLoss | str = "non_saturating",
        gp_weight: float | None = None,
        r1_gamma: float = 0.0,
        r2_gamma: float = 0.0,
        real_target: Sequence[float] = (1.0,),
        fake_target: Sequence[float] = (0.0,),
        label_flip: float = 0.0,
        instance_noise: float = 0.0,
        instance_noise_steps: int = 0,
        total_steps: int = 0,
        conditional: str = "none",
        num_classes: int = 0,
        ac_weight: float = 1.0,
        ac_fake_in_d: bool = True,
        **settings,
    ) -> StepConfig:
        """The composition the command line's options name (each option is the parameter of
        the same name, so the trainer passes its fields through): the gradient penalty (λ;
        None = the loss's own), R1 and R2 (γ) as D's terms; label targets (``T``, or ``LO HI`` for
        a uniform draw) and flipping when set; instance noise decaying to 0 over
        ``instance_noise_steps`` (0: over ``total_steps``, the run's); ``conditional``
        ``"none"``, ``"cgan"`` or ``"acgan"`` as the inputs; ``settings`` are the other
        fields (``d_steps``, ``latent_dim``, ...)."""
        loss = get_loss(loss)
        gp = loss.gp_weight if gp_weight is None else gp_weight
        d_terms = (
            *((GradientPenalty(gp),) if gp else ()),
            *((R1Penalty(r1_gamma),) if r1_gamma else ()),
            *((R2Penalty(r2_gamma),) if r2_gamma else ()),
        )
        for name, target in (("real_target", real_target), ("fake_target", fake_target)):
            if len(target) not in (1, 2):
                raise ValueError(f"{name} takes one value or two (LO HI), got {tuple(target)}")
        real, fake = (real_target[0], real_target[-1]), (fake_target[0], fake_target[-1])
        if real != (1.0, 1.0) or fake != (0.0, 0.0) or label_flip:
            settings["targets"] = LabelTargets(real, fake, label_flip)
        if instance_noise:
            steps = instance_noise_steps or total_steps
            settings["instance_noise"] = InstanceNoise(instance_noise, steps)
        elif instance_noise_steps < 0:
            raise ValueError(f"instance_noise_steps must be >= 0, got {instance_noise_steps}")
        if conditional not in CONDITIONALS:
            raise ValueError(f"conditional must be one of {CONDITIONALS}, got {conditional!r}")
        if conditional == "cgan":
            settings["inputs"] = ClassConditional(num_classes)
        elif conditional == "acgan":
            settings["inputs"] = AuxiliaryClassifier(num_classes, ac_weight, ac_fake_in_d)
        elif not ac_weight >= 0:
            raise ValueError(f"ac_weight must be >= 0, got {ac_weight}")
        return cls(loss=loss, d_terms=d_terms, **settings)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The names :meth:`from_options` takes: its own parameters and the fields."""
        own = set(inspect.signature(cls.from_options).parameters) - {"settings"}
        return frozenset(own | {f.name for f in dataclasses.fields(cls)})

    @property
    def all_d_terms(self) -> tuple:
        """D's terms in the order added: the config's, then the inputs' (AC-GAN's class loss)."""
        return (*self.d_terms, *self.inputs.d_terms)

    @property
    def all_g_terms(self) -> tuple:
        """G's terms in the order added: the config's, then the inputs'."""
        return (*self.g_terms, *self.inputs.g_terms)

    @property
    def reads(self) -> set[str]:
        """The batch entries besides ``"x"`` that the inputs and the terms read."""
        terms = (*self.all_d_terms, *self.all_g_terms)
        return {*self.inputs.reads, *(r for t in terms for r in getattr(t, "reads", ()))}

    @property
    def num_classes(self) -> int:
        """The labels' number of classes of a class-conditional step, else 0."""
        return getattr(self.inputs, "num_classes", 0)


class ModelState(train_state.TrainState):
    """A Flax ``TrainState`` that also carries batch-norm statistics (empty when unused).

    ``takes_train``: whether the module's ``__call__`` has the ``train`` keyword (jaxgan's
    modules do: batch norm and dropout switch on it); a plain module without it is called
    without it. ``precision``: the dtype the module computes in (:mod:`jaxgan.precision`):
    :meth:`apply` casts parameters and inputs to it and the outputs back to float32.
    """

    batch_stats: Any = struct.field(default_factory=dict)
    takes_train: bool = struct.field(pytree_node=False, default=True)
    precision: str = struct.field(pytree_node=False, default="float32")

    def apply(
        self,
        params,
        *inputs,
        train: bool,
        rng: Array | None = None,
        shared_rng: Array | None = None,
    ):
        """Runs the model on ``inputs``; returns its output and the (possibly updated) batch
        statistics. ``rng`` feeds the model's stochastic layers (the ``"dropout"`` stream, its
        own on each device); ``shared_rng`` the ``"shared"`` stream, the same on every device
        of a data-parallel step (draws made for the global batch: :class:`jaxgan.models.Dropout`).
        """
        if self.precision == "float32":
            return self._apply(params, inputs, train, rng, shared_rng)
        dtype = compute_dtype(self.precision)
        params, inputs = cast_floating((params, inputs), dtype)
        out, stats = self._apply(params, inputs, train, rng, shared_rng)
        return cast_floating(out, jnp.float32), cast_like(stats, self.batch_stats)

    def _apply(self, params, inputs: tuple, train: bool, rng, shared_rng):
        rngs = {"dropout": rng} if rng is not None else {}
        if shared_rng is not None:
            rngs["shared"] = shared_rng
        kw: dict[str, Any] = {"rngs": rngs or None}
        if self.takes_train:
            kw["train"] = train
        if not self.batch_stats:
            return self.apply_fn({"params": params}, *inputs, **kw), self.batch_stats
        variables = {"params": params, "batch_stats": self.batch_stats}
        if not train:
            return self.apply_fn(variables, *inputs, **kw), self.batch_stats
        out, updates = self.apply_fn(variables, *inputs, mutable=["batch_stats"], **kw)
        return out, updates["batch_stats"]


def _init(module: nn.Module, key: Array, args: tuple, role: str) -> tuple[Any, bool]:
    """``module.init`` on ``args`` with ``train=False``, or without the keyword for a module
    that has none: the variables, and whether it takes ``train``."""
    try:
        return module.init(key, *args, train=False), True
    except TypeError as e:
        if "train" not in str(e):
            raise _call_error(role, args, e) from e
    try:
        return module.init(key, *args), False
    except TypeError as e:
        raise _call_error(role, args, e) from e


def _call_error(role: str, args: tuple, error: Exception) -> TypeError:
    shapes = ", ".join("None" if a is None else f"[{', '.join(map(str, a.shape))}]" for a in args)
    return TypeError(
        f"{role} cannot be called as {role}({shapes}): {error}. The step's inputs decide what "
        "G and D are given: StepConfig(inputs=Unconditional()) calls G(z) and D(x); "
        "ClassConditional(C) G(z, labels) and D(x, labels); AuxiliaryClassifier(C) G(z, "
        "labels) and D(x) returning (logits, class_logits); FromBatch() G(batch['source'])"
    )


def _init_variables(
    generator: nn.Module, discriminator: nn.Module, config: StepConfig, example, flags, key
):
    """The state's key and both networks' initial variables (compiled as one program by
    :meth:`GANState.create`: run eagerly, every initializer is its own XLA compilation, 18 s of
    a 60 s one-epoch DCGAN run). ``flags`` receives whether G and D take ``train``."""
    root, g_key, d_key = jax.random.split(key, 3)
    inputs = config.inputs
    z = jnp.zeros((2, config.latent_dim), jnp.float32)
    c = inputs.init_condition(2, example)
    g_vars, g_train = _init(generator, g_key, inputs.g_args(z, c), "G")
    kw = {"train": False} if g_train else {}
    x = generator.apply(g_vars, *inputs.g_args(z, c), rngs={"dropout": g_key}, **kw)
    if isinstance(x, tuple | list):
        raise TypeError(f"G must return one array of samples, not a {type(x).__name__}")
    d_vars, d_train = _init(discriminator, d_key, inputs.d_args(x, c), "D")
    flags.extend((g_train, d_train))
    return root, g_vars, d_vars


class GANState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree.

    Attributes:
      g: the generator's TrainState (parameters, optimizer state, batch statistics).
      d: the discriminator's TrainState.
      key: the run's root PRNG key; per-step keys are derived from it, it never changes.
      step: number of completed ``train_step`` calls.
      ema_params: exponential moving average of ``g.params`` (None unless ``config.ema_decay``).
      config: the static :class:`StepConfig`.
    """

    g: ModelState
    d: ModelState
    key: Array
    step: Array
    ema_params: Any = None
    config: StepConfig = struct.field(pytree_node=False, default_factory=StepConfig)

    @classmethod
    def create(
        cls,
        *,
        generator: nn.Module,
        discriminator: nn.Module,
        g_tx: optax.GradientTransformation,
        d_tx: optax.GradientTransformation,
        key: Array,
        config: StepConfig,
        example_batch: Batch | None = None,
        precision: str = "float32",
    ) -> GANState:
        """Initialises both networks and optimizers from ``key``.

        Args:
          generator: a Flax module; called as ``config.inputs`` says (``G(z)`` by default),
            with ``train=`` when its ``__call__`` has that keyword.
          discriminator: a Flax module returning ``[n]`` (or ``[n, 1]``) logits, or a tuple
            whose first element they are.
          g_tx: G's optimizer.
          d_tx: D's optimizer (its own, so learning rates and betas can differ).
          key: PRNG key (``jax.random.key(seed)``); the whole run derives from it.
          config: the static step settings.
          example_batch: a batch to initialise from, for inputs that G takes from the batch.
          precision: the dtype both networks compute in (:mod:`jaxgan.precision`); their
            parameters, optimizer states and the EMA are float32 whatever it is.
        """
        if not isinstance(config, StepConfig):
            raise TypeError(f"config must be a StepConfig, not {type(config).__name__}")
        compute_dtype(precision)  # raises naming the valid ones
        flags: list[bool] = []
        init = functools.partial(
            _init_variables, generator, discriminator, config, example_batch, flags
        )
        root, g_vars, d_vars = jax.jit(init)(key)
        g_train, d_train = flags

        def model_state(module, variables, tx, takes_train):
            state = ModelState.create(
                apply_fn=module.apply,
                params=variables["params"],
                tx=tx,
                batch_stats=variables.get("batch_stats", {}),
                takes_train=takes_train,
                precision=precision,
            )
            # An int32 array rather than TrainState's Python 0: the same type the step returns
            # and a checkpoint restores, so neither triggers a second compilation.
            return state.replace(step=jnp.zeros((), jnp.int32))

        g = model_state(generator, g_vars, g_tx, g_train)
        # A copy, not an alias: the step donates the state, and a buffer can be donated once.
        ema = jax.tree.map(jnp.copy, g.params) if config.ema_decay > 0 else None
        return cls(
            g=g,
            d=model_state(discriminator, d_vars, d_tx, d_train),
            key=root,
            step=jnp.zeros((), jnp.int32),
            ema_params=ema,
            config=config,
        )

    @property
    def sampling_params(self):
        """G's parameters for sampling and evaluation: the EMA when kept, else the live ones."""
        return self.g.params if self.ema_params is None else self.ema_params

    @property
    def minibatches_per_step(self) -> int:
        """Real minibatches one step consumes: ``config.d_steps``."""
        return self.config.d_steps


def sample_latent(key: Array, n: int, config: StepConfig) -> Array:
    """Draws ``n`` latent vectors of ``config.latent_dim`` from ``config.latent``."""
    shape = (n, config.latent_dim)
    if config.latent == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    return jax.random.normal(key, shape)


def balanced_labels(n: int, config: StepConfig) -> Array | None:
    """Labels ``0, 1, ..., C-1, 0, 1, ...`` for ``n`` evaluation samples of a class-conditional
    run (every class equally often), None for another."""
    if not config.num_classes:
        return None
    return jnp.arange(n, dtype=jnp.int32) % config.num_classes


def evaluation_noise(state: GANState, n: int) -> Array:
    """``n`` latent vectors that stay fixed for the whole run and never feed training.

    Fixed-noise sample grids and end-of-run statistics use them, so epochs are comparable and
    evaluation does not depend on how many training steps drew noise before it.
    """
    return sample_latent(jax.random.fold_in(state.key, EVAL_STREAM), n, state.config)


def _generate(state: GANState, z: Array, condition, key: Array | None) -> Array:
    key = jax.random.fold_in(state.key, SAMPLE_STREAM) if key is None else key
    args = state.config.inputs.g_args(z, condition)
    out, _ = state.g.apply(state.sampling_params, *args, train=False, rng=key)
    return out


_generate_jit = jax.jit(_generate)


def generate_samples(
    state: GANState, z: Array, condition: Any = None, *, key: Array | None = None
) -> Array:
    """G's outputs in inference mode (batch norm uses running averages), from the sampling
    parameters; compiled (eagerly, a DCGAN's sample grid was a hundred small compilations).

    ``z`` may be None for a generator that takes no noise (``FromBatch(noise=False)``).
    ``condition`` is what G is conditioned on: the classes a class-conditional G is asked for,
    the source images of a translating one; an unconditional G refuses one. ``key`` feeds a
    generator that keeps dropout on at sampling time; by default a fixed key of the run, so a
    sample grid stays comparable across epochs. For a stack of states (``jax.vmap`` of
    :meth:`GANState.create`), map it: ``jax.vmap(generate_samples, in_axes=(0, None))``.
    """
    if jnp.ndim(state.step) != 0:
        raise ValueError(
            f"a stack of {jnp.shape(state.step)} states: sample with "
            "jax.vmap(generate_samples, in_axes=(0, None))(states, z), or take one with "
            "jax.tree.map(lambda a: a[i], states)"
        )
    return _generate_jit(state, z, condition, key)


def ema_decay_at(step: Array, decay: float) -> Array:
    """The EMA decay used at ``step``: ``min(decay, (1 + step) / (10 + step))``.

    The warm-up of TensorFlow's ExponentialMovingAverage (``num_updates``): early on the average
    follows the weights closely instead of staying near their random initialisation, so samples
    from the EMA are meaningful from the first epoch; later the decay is ``decay`` itself.
    """
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))

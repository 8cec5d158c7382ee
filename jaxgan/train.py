"""The GAN training state, the alternating update, and the on-device epoch runner.

``train_step(state, batch)`` performs one iteration of Algorithm 1 of Goodfellow et al. 2014:
``k = state.config.d_steps`` discriminator updates, each on its own real minibatch and fresh
noise, then one generator update on fresh noise. The batch therefore holds ``k`` minibatches
back to back: ``batch["x"]`` has shape ``[k * batch_size, *sample_shape]``.

All randomness comes from ``state.key`` by ``fold_in`` of the step number (and of the epoch's
first step for the data order), so a run is a pure function of its seed: reproducible,
resumable, and ``jax.vmap``-able over a stack of states (several seeds in one program).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state

from jaxgan import monitor
from jaxgan.losses import (
    CROSS_ENTROPY_LOSSES,
    LOSS_SETTINGS,
    class_loss,
    get_loss,
    gradient_penalty,
    r1_penalty,
    soft_bce_d_loss,
)

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]

LATENT_DISTRIBUTIONS = ("gaussian", "uniform")
# How labels enter the game: not at all, both networks take them (cGAN), or G takes them and
# D classifies (AC-GAN). See jaxgan.models for the matching module settings.
CONDITIONALS = ("none", "cgan", "acgan")
# Independent random streams derived from the run's root key.
_STEP_STREAM, _DATA_STREAM, _EVAL_STREAM, _SAMPLE_STREAM = 0, 1, 2, 3
# Folded into a D update's key for the tricks' randomness (targets, instance noise, penalty
# weights): the keys the plain update splits stay as they were, and so do its numbers.
_TRICK_STREAM = 7
_LABEL_STREAM = 8  # likewise for the labels a conditional G is asked for


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static settings of the update; part of the state's tree structure, not its leaves.

    Attributes:
      loss: name of a loss in :data:`jaxgan.losses.LOSSES`.
      d_steps: discriminator updates per generator update (k of the original algorithm).
      latent_dim: dimension of the generator's input noise.
      latent: ``"gaussian"`` (N(0, 1)) or ``"uniform"`` (U[-1, 1]) noise.
      ema_decay: when > 0, keep an exponential moving average of G's parameters with this decay
        (after a warm-up, see :func:`ema_decay_at`).
      gp_weight: λ of the gradient penalty (:func:`~jaxgan.losses.gradient_penalty`) added to
        D's loss; None = the loss's own (10 for ``wgan_gp``, else 0).
      r1_gamma: γ of the R1 penalty (:func:`~jaxgan.losses.r1_penalty`), added as γ/2 × R1.
      weight_clip: clip D's parameters to [-c, c] after each update (WGAN); None = the loss's
        own (0.01 for ``wgan``, else 0 = off).
      real_target: D's targets for real samples, uniform in ``[lo, hi]`` (one-sided label
        smoothing: (0.9, 0.9) or (0.9, 1.0)); cross-entropy losses only.
      fake_target: D's targets for generated samples, uniform in ``[lo, hi]`` (two-sided soft
        labels: (0.0, 0.1)); cross-entropy losses only.
      label_flip: the fraction of D's examples whose real/fake targets are swapped at random.
      instance_noise: standard deviation of Gaussian noise added to every input of D (real and
        generated), decaying linearly to 0 over ``instance_noise_steps`` (0 = constant).
      instance_noise_steps: see ``instance_noise``.
      conditional: ``"none"``, ``"cgan"`` (G and D take labels: ``batch["y"]`` for the real
        samples, uniform random labels for the generated ones) or ``"acgan"`` (G takes labels,
        D returns ``(logits, class_logits)`` and both add :func:`~jaxgan.losses.class_loss`).
      num_classes: the labels' number of classes (conditional runs).
      ac_weight: AC-GAN's weight of the classification loss in both networks' losses.
      ac_fake_in_d: D's classification loss covers generated samples too (Odena et al.);
        False trains D's classifier on real samples only, so it cannot learn to recognise G's
        own renderings of a class, and G must draw what real digits of the class look like.
    """

    loss: str = "non_saturating"
    d_steps: int = 1
    latent_dim: int = 64
    latent: str = "gaussian"
    ema_decay: float = 0.0
    gp_weight: float | None = None
    r1_gamma: float = 0.0
    weight_clip: float | None = None
    real_target: tuple[float, float] = (1.0, 1.0)
    fake_target: tuple[float, float] = (0.0, 0.0)
    label_flip: float = 0.0
    instance_noise: float = 0.0
    instance_noise_steps: int = 0
    conditional: str = "none"
    num_classes: int = 0
    ac_weight: float = 1.0
    ac_fake_in_d: bool = True

    def __post_init__(self):
        get_loss(self.loss)  # raises ValueError naming the valid losses
        for name in ("gp_weight", "weight_clip"):  # the loss's own setting, else off
            if getattr(self, name) is None:
                object.__setattr__(self, name, LOSS_SETTINGS.get(self.loss, {}).get(name, 0.0))
        for name in ("gp_weight", "r1_gamma", "weight_clip", "instance_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("real_target", "fake_target"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{name} must be a range lo <= hi within [0, 1], got {lo, hi}")
        if not 0.0 <= self.label_flip <= 0.5:
            raise ValueError(f"label_flip must be in [0, 0.5], got {self.label_flip}")
        if self.uses_targets and self.loss not in CROSS_ENTROPY_LOSSES:
            raise ValueError(
                f"label targets and flipping need a cross-entropy loss "
                f"({', '.join(CROSS_ENTROPY_LOSSES)}), not {self.loss!r}"
            )
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {self.d_steps}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.latent not in LATENT_DISTRIBUTIONS:
            raise ValueError(f"latent must be one of {LATENT_DISTRIBUTIONS}, got {self.latent!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.conditional not in CONDITIONALS:
            raise ValueError(f"conditional must be one of {CONDITIONALS}, got {self.conditional!r}")
        if self.conditional != "none" and self.num_classes < 2:
            raise ValueError(f"a conditional GAN needs num_classes >= 2, got {self.num_classes}")
        if self.ac_weight < 0:
            raise ValueError(f"ac_weight must be >= 0, got {self.ac_weight}")

    def g_labels(self, labels: Array | None) -> Array | None:
        """What G takes after z: the labels in conditional runs, else nothing."""
        return labels if self.conditional != "none" else None

    def d_labels(self, labels: Array | None) -> Array | None:
        """What D takes after x: the labels in a cGAN (AC-GAN's D classifies instead)."""
        return labels if self.conditional == "cgan" else None

    @property
    def uses_targets(self) -> bool:
        """Whether D's cross-entropy uses targets other than 1 (real) and 0 (fake)."""
        return (self.real_target, self.fake_target) != ((1.0, 1.0), (0.0, 0.0)) or bool(
            self.label_flip
        )

    def instance_noise_at(self, step: Array) -> Array:
        """The instance noise's standard deviation at ``step``."""
        if not self.instance_noise_steps:
            return jnp.asarray(self.instance_noise, jnp.float32)
        return self.instance_noise * jnp.maximum(0.0, 1.0 - step / self.instance_noise_steps)


class ModelState(train_state.TrainState):
    """A Flax ``TrainState`` that also carries batch-norm statistics (empty when unused)."""

    batch_stats: Any = struct.field(default_factory=dict)

    def apply(
        self,
        params,
        x: Array,
        labels: Array | None = None,
        *,
        train: bool,
        rng: Array | None = None,
    ):
        """Runs the model; returns its output and the (possibly updated) batch statistics.

        ``labels`` (conditional models) follow ``x``; ``rng`` feeds the model's stochastic
        layers (dropout).
        """
        rngs = {"dropout": rng} if rng is not None else None
        inputs = (x,) if labels is None else (x, labels)
        if not self.batch_stats:
            out = self.apply_fn({"params": params}, *inputs, train=train, rngs=rngs)
            return out, self.batch_stats
        variables = {"params": params, "batch_stats": self.batch_stats}
        if not train:
            return self.apply_fn(variables, *inputs, train=False, rngs=rngs), self.batch_stats
        out, updates = self.apply_fn(
            variables, *inputs, train=True, rngs=rngs, mutable=["batch_stats"]
        )
        return out, updates["batch_stats"]


def _init_variables(generator: nn.Module, discriminator: nn.Module, config: StepConfig, key: Array):
    """The state's key and both networks' initial variables (compiled as one program by
    :meth:`GANState.create`: run eagerly, every initializer is its own XLA compilation, 18 s of
    a 60 s one-epoch DCGAN run)."""
    root, g_key, d_key = jax.random.split(key, 3)
    z = jnp.zeros((2, config.latent_dim), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32)
    g_in = (z,) if config.g_labels(labels) is None else (z, labels)
    g_vars = generator.init(g_key, *g_in, train=False)
    x = generator.apply(g_vars, *g_in, train=False, rngs={"dropout": g_key})
    d_in = (x,) if config.d_labels(labels) is None else (x, labels)
    return root, g_vars, discriminator.init(d_key, *d_in, train=False)


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
    ) -> GANState:
        """Initialises both networks and optimizers from ``key``.

        Args:
          generator: a module mapping ``[n, latent_dim]`` noise to samples.
          discriminator: a module mapping samples to ``[n]`` logits.
          g_tx: G's optimizer.
          d_tx: D's optimizer (its own, so learning rates and betas can differ).
          key: PRNG key (``jax.random.key(seed)``); the whole run derives from it.
          config: the static step settings.
        """
        init = functools.partial(_init_variables, generator, discriminator, config)
        root, g_vars, d_vars = jax.jit(init)(key)

        def model_state(module, variables, tx):
            state = ModelState.create(
                apply_fn=module.apply,
                params=variables["params"],
                tx=tx,
                batch_stats=variables.get("batch_stats", {}),
            )
            # An int32 array rather than TrainState's Python 0: the same type the step returns
            # and a checkpoint restores, so neither triggers a second compilation.
            return state.replace(step=jnp.zeros((), jnp.int32))

        g = model_state(generator, g_vars, g_tx)
        # A copy, not an alias: the step donates the state, and a buffer can be donated once.
        ema = jax.tree.map(jnp.copy, g.params) if config.ema_decay > 0 else None
        return cls(
            g=g,
            d=model_state(discriminator, d_vars, d_tx),
            key=root,
            step=jnp.zeros((), jnp.int32),
            ema_params=ema,
            config=config,
        )

    @property
    def sampling_params(self):
        """G's parameters for sampling and evaluation: the EMA when kept, else the live ones."""
        return self.g.params if self.ema_params is None else self.ema_params


def sample_latent(key: Array, n: int, config: StepConfig) -> Array:
    """Draws ``n`` latent vectors of ``config.latent_dim`` from ``config.latent``."""
    shape = (n, config.latent_dim)
    if config.latent == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    return jax.random.normal(key, shape)


def sample_labels(key: Array, n: int, config: StepConfig) -> Array:
    """``n`` class labels, uniform over ``config.num_classes``: what a conditional G is asked
    for in training."""
    return jax.random.randint(key, (n,), 0, config.num_classes)


def balanced_labels(n: int, config: StepConfig) -> Array | None:
    """Labels ``0, 1, ..., C-1, 0, 1, ...`` for ``n`` evaluation samples of a conditional run
    (every class equally often), None for an unconditional one."""
    if config.conditional == "none":
        return None
    return jnp.arange(n, dtype=jnp.int32) % config.num_classes


def d_targets(key: Array, n: int, config: StepConfig) -> Array:
    """D's cross-entropy targets for ``n`` real and ``n`` fake examples, ``[n, 2]``: column 0
    for the real ones, uniform in ``config.real_target``, column 1 for the fakes, uniform in
    ``config.fake_target``; a ``config.label_flip`` share of each column is drawn from the
    other's range instead (the example's label is flipped)."""
    real_key, fake_key, flip_key = jax.random.split(key, 3)
    real = jax.random.uniform(
        real_key, (n, 2), minval=config.real_target[0], maxval=config.real_target[1]
    )
    fake = jax.random.uniform(
        fake_key, (n, 2), minval=config.fake_target[0], maxval=config.fake_target[1]
    )
    flip = jax.random.bernoulli(flip_key, config.label_flip, (n, 2))
    return jnp.stack(
        [
            jnp.where(flip[:, 0], fake[:, 0], real[:, 0]),
            jnp.where(flip[:, 1], real[:, 1], fake[:, 1]),
        ],
        axis=1,
    )


def evaluation_noise(state: GANState, n: int) -> Array:
    """``n`` latent vectors that stay fixed for the whole run and never feed training.

    Fixed-noise sample grids and end-of-run statistics use them, so epochs are comparable and
    evaluation does not depend on how many training steps drew noise before it.
    """
    return sample_latent(jax.random.fold_in(state.key, _EVAL_STREAM), n, state.config)


@jax.jit
def generate_samples(
    state: GANState, z: Array, labels: Array | None = None, *, key: Array | None = None
) -> Array:
    """G(z) in inference mode (batch norm uses running averages), from the sampling parameters.

    Compiled: eagerly, a DCGAN's sample grid was a hundred small XLA compilations.

    ``labels`` are the classes a conditional G is asked for (it needs them; an unconditional G
    refuses them). ``key`` feeds a generator that keeps dropout on at sampling time; by default
    a fixed key of the run, so a sample grid stays comparable across epochs.
    """
    key = jax.random.fold_in(state.key, _SAMPLE_STREAM) if key is None else key
    out, _ = state.g.apply(state.sampling_params, z, labels, train=False, rng=key)
    return out


def ema_decay_at(step: Array, decay: float) -> Array:
    """The EMA decay used at ``step``: ``min(decay, (1 + step) / (10 + step))``.

    The warm-up of TensorFlow's ExponentialMovingAverage (``num_updates``): early on the average
    follows the weights closely instead of staying near their random initialisation, so samples
    from the EMA are meaningful from the first epoch; later the decay is ``decay`` itself.
    """
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def _mean_prob(logits: Array) -> Array:
    return jnp.mean(jax.nn.sigmoid(logits))


def train_step_body(state: GANState, batch: Batch, axis_name: str | None = None):
    """One GAN iteration: ``k`` discriminator updates, then one generator update.

    The per-device body: with ``axis_name`` set (inside ``pmap``/``shard_map``, see
    :mod:`jaxgan.parallel`), each device holds its share of the global batch, gradients,
    batch-norm statistics and metrics are averaged over the axis, and each device draws its
    share of the global batch's noise, so N devices compute the update one device computes on
    the whole batch. Wrap it with ``jax.jit`` (see :data:`train_step`).

    Both networks run in training mode throughout. D sees real and fake minibatches in
    separate passes (each normalised by its own batch statistics, as in the PyTorch DCGAN
    tutorial); G's batch-norm running averages are updated in G's own step only.

    Args:
      state: the current :class:`GANState`.
      batch: ``{"x": [k * batch_size, ...]}``: k real minibatches back to back. Under
        ``axis_name`` with N devices, device i holds rows ``i * b:(i + 1) * b`` of each of the
        k global minibatches, ``b = batch_size / N`` (:func:`jaxgan.parallel.shard_batch`).
      axis_name: the data-parallel axis, or None on one device.

    Returns:
      ``(new_state, metrics)`` with scalar metrics ``d_loss``, ``g_loss`` (the losses being
      minimised), ``d_real`` and ``d_fake`` (mean ``sigmoid`` of D's logits on the last real and
      fake minibatch: D(x) and D(G(z)) for the cross-entropy losses), and ``d_grad_norm``
      (the largest of the k updates) and ``g_grad_norm``, the global norms of the gradients
      applied: non-finite exactly when a gradient is, which is how training notices divergence;
      and the health monitor's ``diversity`` and ``d_winning`` (:mod:`jaxgan.monitor`; under
      ``axis_name`` diversity is each device's own batch's, averaged).

    The step's settings (``state.config``) add the penalties, weight clipping, label targets
    and instance noise; their random draws, like the noise, are made for the global batch.
    Conditional runs (``config.conditional``) read the real samples' labels from
    ``batch["y"]`` and add ``d_class_accuracy`` (AC-GAN: D's classifier on the last real
    minibatch) to the metrics.
    """
    cfg = state.config
    loss = get_loss(cfg.loss)
    k = cfg.d_steps
    x = batch["x"]
    if x.shape[0] % k:
        raise ValueError(f"batch of {x.shape[0]} does not split into d_steps={k} minibatches")
    n = x.shape[0] // k
    reals = x.reshape((k, n, *x.shape[1:]))
    real_labels = None
    if cfg.conditional != "none":
        if "y" not in batch:
            raise ValueError(f"a {cfg.conditional} step needs the real labels in batch['y']")
        real_labels = batch["y"].reshape((k, n))
    step_key = jax.random.fold_in(jax.random.fold_in(state.key, _STEP_STREAM), state.step)
    keys = jax.random.split(step_key, k + 1)

    def sync(tree):
        return tree if axis_name is None else jax.lax.pmean(tree, axis_name)

    def global_rows(key, draw):
        """This device's rows of ``draw(key, rows)`` for the global batch: the same numbers a
        one-device run draws for those rows, so N devices compute the update one device would.
        """
        if axis_name is None:
            return draw(key, n)
        everyone = draw(key, n * jax.lax.axis_size(axis_name))
        return jax.lax.dynamic_slice_in_dim(everyone, jax.lax.axis_index(axis_name) * n, n)

    def latent(key):
        return global_rows(key, lambda k, rows: sample_latent(k, rows, cfg))

    def local(key):
        """A key for the models' own randomness (dropout), distinct on every device."""
        return key if axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(axis_name))

    noise_std = cfg.instance_noise_at(state.step)

    def noisy(x, key):
        """D's input with instance noise (when on)."""
        if not cfg.instance_noise:
            return x
        return x + noise_std * global_rows(
            key, lambda k, rows: jax.random.normal(k, (rows, *x.shape[1:]))
        )

    def fake_labels(key):
        """The labels G is asked for (None when unconditional)."""
        if cfg.conditional == "none":
            return None
        key = jax.random.fold_in(key, _LABEL_STREAM)
        return global_rows(key, lambda k, rows: sample_labels(k, rows, cfg))

    def discriminate(d: ModelState, params, x, labels, rng):
        """D's logits, class logits (AC-GAN, else None) and batch statistics on ``x``."""
        out, stats = d.apply(params, x, cfg.d_labels(labels), train=True, rng=rng)
        logits, class_logits = out if cfg.conditional == "acgan" else (out, None)
        return logits, class_logits, stats

    def d_update(d: ModelState, inputs):
        real, real_y, key = inputs
        z_key, g_key, real_key, fake_key = jax.random.split(key, 4)
        g_key, real_key, fake_key = local(g_key), local(real_key), local(fake_key)
        trick_keys = jax.random.split(jax.random.fold_in(key, _TRICK_STREAM), 4)
        z, fake_y = latent(z_key), fake_labels(key)
        fake = state.g.apply(state.g.params, z, cfg.g_labels(fake_y), train=True, rng=g_key)[0]
        fake = jax.lax.stop_gradient(fake)
        real_in, fake_in = noisy(real, trick_keys[0]), noisy(fake, trick_keys[1])

        def d_loss_fn(params):
            real_logits, real_classes, stats = discriminate(d, params, real_in, real_y, real_key)
            d_stats = d.replace(batch_stats=stats)
            fake_logits, fake_classes, stats = discriminate(
                d_stats, params, fake_in, fake_y, fake_key
            )
            if cfg.uses_targets:
                t = global_rows(trick_keys[2], lambda k, rows: d_targets(k, rows, cfg))
                value = soft_bce_d_loss(real_logits, fake_logits, t[:, 0], t[:, 1])
            else:
                value = loss.discriminator(real_logits, fake_logits)

            def critic(x):  # D as a function of its input (real labels); batch stats dropped
                d_stats = d.replace(batch_stats=stats)
                return discriminate(d_stats, params, x, real_y, fake_key)[0]

            if cfg.gp_weight:
                weights = global_rows(trick_keys[3], lambda k, rows: jax.random.uniform(k, (rows,)))
                value += cfg.gp_weight * gradient_penalty(critic, real_in, fake_in, weights)
            if cfg.r1_gamma:
                value += 0.5 * cfg.r1_gamma * r1_penalty(critic, real_in)
            accuracy = jnp.zeros(())
            if cfg.conditional == "acgan":
                fake_term = class_loss(fake_classes, fake_y) if cfg.ac_fake_in_d else 0.0
                value += cfg.ac_weight * (class_loss(real_classes, real_y) + fake_term)
                accuracy = jnp.mean(jnp.argmax(real_classes, -1) == real_y)
            aux = (stats, _mean_prob(real_logits), _mean_prob(fake_logits), accuracy)
            return value, aux

        (d_loss, (stats, d_real, d_fake, accuracy)), grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(d.params)
        grads = sync(grads)
        d = d.apply_gradients(grads=grads).replace(batch_stats=sync(stats))
        if cfg.weight_clip:
            c = cfg.weight_clip
            d = d.replace(params=jax.tree.map(lambda p: jnp.clip(p, -c, c), d.params))
        return d, (d_loss, d_real, d_fake, optax.tree.norm(grads), accuracy)

    d, (d_losses, d_reals, d_fakes, d_norms, d_accuracies) = jax.lax.scan(
        d_update, state.d, (reals, real_labels, keys[:k])
    )

    z_key, g_key, d_key = jax.random.split(keys[k], 3)
    g_key, d_key = local(g_key), local(d_key)
    z, fake_y = latent(z_key), fake_labels(keys[k])

    def g_loss_fn(params):
        fake, stats = state.g.apply(params, z, cfg.g_labels(fake_y), train=True, rng=g_key)
        d_in = noisy(fake, jax.random.fold_in(keys[k], _TRICK_STREAM))
        fake_logits, fake_classes, _ = discriminate(d, d.params, d_in, fake_y, d_key)
        value = loss.generator(fake_logits)
        if cfg.conditional == "acgan":
            value += cfg.ac_weight * class_loss(fake_classes, fake_y)
        return value, (stats, fake)

    (g_loss, (g_stats, fake)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g.params)
    grads = sync(grads)
    g = state.g.apply_gradients(grads=grads).replace(batch_stats=sync(g_stats))

    ema = state.ema_params
    if ema is not None:
        decay = ema_decay_at(state.step, cfg.ema_decay)
        ema = optax.incremental_update(g.params, ema, step_size=1.0 - decay)
    metrics = sync(
        {
            "d_loss": d_losses[-1],
            "g_loss": g_loss,
            "d_real": d_reals[-1],
            "d_fake": d_fakes[-1],
            "d_grad_norm": jnp.max(d_norms),
            "g_grad_norm": optax.tree.norm(grads),
            "diversity": monitor.diversity(fake, reals[-1]),
            **({"d_class_accuracy": d_accuracies[-1]} if cfg.conditional == "acgan" else {}),
        }
    )
    metrics["d_winning"] = monitor.d_winning(cfg.loss, metrics["d_loss"], metrics["d_fake"])
    new_state = state.replace(g=g, d=d, step=state.step + 1, ema_params=ema)
    return new_state, metrics


train_step = jax.jit(train_step_body, donate_argnums=0, static_argnames="axis_name")
"""``train_step(state, batch)``: :func:`train_step_body` compiled, donating the old state."""


def epoch_permutation(key: Array, epoch_start: Array, num_examples: int) -> Array:
    """The data order of the epoch that starts at step ``epoch_start``: a pure function of the
    run's key and that step, so a run resumed anywhere in the epoch sees the same order."""
    return jax.random.permutation(
        jax.random.fold_in(jax.random.fold_in(key, _DATA_STREAM), epoch_start), num_examples
    )


def steps_per_epoch(num_examples: int, batch_size: int, d_steps: int) -> int:
    """Full iterations in one pass over the data (each consumes ``d_steps`` real minibatches)."""
    return num_examples // (batch_size * d_steps)


def checked_steps_per_epoch(num_examples: int, batch_size: int, d_steps: int) -> int:
    """:func:`steps_per_epoch`, raising ``ValueError`` when the data make no step at all."""
    per_epoch = steps_per_epoch(num_examples, batch_size, d_steps)
    if per_epoch < 1:
        raise ValueError(
            f"{num_examples} examples are fewer than one step's {batch_size * d_steps} "
            f"(batch size {batch_size} x d_steps {d_steps})"
        )
    return per_epoch


def epoch_order(
    key: Array, epoch_start: Array, num_examples: int, batch_size: int, d_steps: int
) -> Array:
    """The example indices of each step of the epoch starting at step ``epoch_start``:
    ``[steps_per_epoch, d_steps, batch_size]``, from :func:`epoch_permutation` (the examples
    left over after the last full step sit this epoch out)."""
    per_epoch = checked_steps_per_epoch(num_examples, batch_size, d_steps)
    order = epoch_permutation(key, epoch_start, num_examples)
    return order[: per_epoch * batch_size * d_steps].reshape(per_epoch, d_steps, batch_size)


def train_epoch_body(
    state: GANState,
    data: Batch,
    *,
    batch_size: int,
    axis_name: str | None = None,
    steps: int | None = None,
    num_examples: int | None = None,
):
    """One epoch (or a chunk of one) as a single program: an on-device permutation, then
    ``lax.scan`` of the step.

    Args:
      state: the state at the epoch's start, or where a chunk starts.
      data: the whole dataset on the device, ``{"x": [num_examples, ...]}``; with
        ``axis_name``, this device's shard of it (:func:`shard_rows`).
      batch_size: real samples per discriminator minibatch (the global batch: over all
        devices of ``axis_name``).
      axis_name: the data-parallel axis, or None on one device. Every device computes the
        same permutation and receives its rows of each global minibatch from the devices
        that hold them (:func:`exchange_rows`), so the epoch is the one a single device runs.
      steps: run only this many steps (a divisor of the steps per epoch), from where
        ``state.step`` stands in its epoch; None runs the whole epoch.
      num_examples: the dataset's size; needed with ``axis_name`` (the shards are padded).

    Returns:
      ``(new_state, metrics)`` with each metric stacked over the steps run.
    """
    if axis_name is None:
        num_examples = jax.tree.leaves(data)[0].shape[0]
    elif num_examples is None:
        raise ValueError("a sharded dataset needs num_examples")
    k = state.config.d_steps
    per_epoch = checked_steps_per_epoch(num_examples, batch_size, k)
    steps = per_epoch if steps is None else steps
    if per_epoch % steps:
        raise ValueError(f"chunks of {steps} steps do not divide an epoch of {per_epoch}")
    offset = state.step % per_epoch
    order = epoch_order(state.key, state.step - offset, num_examples, batch_size, k)
    if steps < per_epoch:
        order = jax.lax.dynamic_slice_in_dim(order, offset, steps, axis=0)

    def body(state, idx):  # idx: [k, batch_size], the step's minibatches
        if axis_name is None:
            batch = jax.tree.map(lambda a: a[idx.reshape(-1)], data)
        else:
            batch = exchange_rows(data, idx, axis_name)
        return train_step_body(state, batch, axis_name=axis_name)

    return jax.lax.scan(body, state, order)


def shard_rows(num_examples: int, num_shards: int) -> int:
    """Rows per device when a dataset is split over ``num_shards`` devices: device i holds rows
    ``i * size:(i + 1) * size`` (the last shards padded with zeros)."""
    return -(-num_examples // num_shards)


def pick_rows(shard, idx, first_row: int):
    """The rows ``idx`` (global row numbers, any shape) of a dataset, taken from ``shard`` (a
    dict of arrays holding rows ``first_row:first_row + len``) where it holds them, zeros
    elsewhere; works on numpy arrays on the host (reading only the rows held, which matters
    for a memory-mapped set) and jax arrays on the device."""
    on_host = not isinstance(jax.tree.leaves(shard)[0], jax.Array)
    xp = np if on_host else jnp
    size = len(jax.tree.leaves(shard)[0])
    local = idx - first_row
    held = (local >= 0) & (local < size)
    local = xp.clip(local, 0, size - 1)

    def pick(a):
        if on_host:
            out = np.zeros((*idx.shape, *a.shape[1:]), a.dtype)
            out[held] = a[local[held]]
            return out
        if size == 0:  # a shard of padding only
            return xp.zeros((*idx.shape, *a.shape[1:]), a.dtype)
        mask = held.reshape(held.shape + (1,) * (a.ndim - 1))
        return xp.where(mask, a[local], xp.zeros((), a.dtype))

    return jax.tree.map(pick, shard)


def scatter_rows(picked, axis_name: str) -> Batch:
    """Each device's rows of a step's minibatches, from every device's :func:`pick_rows` of
    them (``[k, B, ...]``, zeros where it does not hold a row): summed over the devices (every
    row has exactly one holder, so the sum is exact) and scattered, device i receiving rows
    ``i * b:(i + 1) * b`` of each minibatch (``b = B / devices``), back to back: ``[k * b, ...]``.
    """
    n = jax.lax.axis_size(axis_name)

    def scatter(a):
        k, batch = a.shape[:2]
        a = a.reshape((k, n, batch // n, *a.shape[2:]))
        mine = jax.lax.psum_scatter(a, axis_name, scatter_dimension=1)
        return mine.reshape((-1, *mine.shape[2:]))

    return jax.tree.map(scatter, picked)


def exchange_rows(shard, idx: Array, axis_name: str) -> Batch:
    """This device's rows of the minibatches ``idx`` (``[k, B]`` global row numbers) of a
    dataset sharded over ``axis_name`` (``shard``: this device's :func:`shard_rows` rows)."""
    first_row = jax.lax.axis_index(axis_name) * len(jax.tree.leaves(shard)[0])
    return scatter_rows(pick_rows(shard, idx, first_row), axis_name)


train_epoch = jax.jit(
    train_epoch_body,
    donate_argnums=0,
    static_argnames=("batch_size", "axis_name", "steps", "num_examples"),
)
"""``train_epoch(state, data, batch_size=B[, steps=S])``: :func:`train_epoch_body` compiled."""

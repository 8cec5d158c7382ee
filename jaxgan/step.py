"""The alternating GAN update, composed of the parts its :class:`~jaxgan.state.StepConfig`
names: ``train_step(state, batch)``.

One iteration of Algorithm 1 of Goodfellow et al. 2014: ``k = config.d_steps`` discriminator
updates, each on its own real minibatch and fresh noise, then one generator update on fresh
noise; the batch holds the ``k`` minibatches back to back (``batch["x"]`` is
``[k * batch_size, ...]``). What varies between GANs is a value of the config, not a branch
here: the loss (:class:`~jaxgan.losses.GANLoss`, whose G loss also sees the real logits), the
terms added to either loss (:mod:`jaxgan.terms`), what G takes and D judges
(:mod:`jaxgan.inputs`), the label targets and instance noise.

The body is written once for one device and for N (``axis_name``, inside ``pmap`` or
``shard_map``; see :class:`~jaxgan.axis.DataAxis`); a variant with a state of its own writes
its own step from the same pieces (:func:`generate`, :func:`judge`, :func:`update_keys`,
:func:`minibatches`, the terms, :class:`~jaxgan.axis.DataAxis`) and trains through the same runners.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from jaxgan import monitor
from jaxgan.axis import DataAxis
from jaxgan.state import (
    STEP_STREAM,
    Batch,
    GANState,
    Metrics,
    ModelState,
    ema_decay_at,
    sample_latent,
)
from jaxgan.terms import DTermInputs, GTermInputs, add_terms

Array = jax.Array
# Folded into an update's key for the tricks' randomness (instance noise, targets, the terms'
# draws): the keys the plain update splits stay as they were, and so do its numbers.
TRICK_STREAM = 7
REAL_IN_G_STREAM = 9  # D's view of the real minibatch inside G's update (relativistic losses)
ONE_DEVICE = DataAxis()


def minibatches(batch: Batch, k: int, reads: set[str]) -> Batch:
    """``batch`` (a dict of ``[k * n, ...]`` arrays) as ``k`` minibatches, ``[k, n, ...]``,
    after checking it is what the step reads (``reads``: the entries besides ``"x"``)."""
    if not isinstance(batch, dict):
        raise TypeError(f"a batch is a dict of arrays ({{'x': ...}}), not a {type(batch).__name__}")
    if "x" not in batch:
        raise ValueError(f"the batch has no 'x' (the real samples); it has {sorted(batch)}")
    if "y" in batch and "y" not in reads:
        raise ValueError(
            "batch['y'] (labels) is given but this step does not use labels; train a "
            "conditional GAN with StepConfig(inputs=ClassConditional(C) or "
            "AuxiliaryClassifier(C)), or leave 'y' out of the batch"
        )
    rows = batch["x"].shape[0]
    if rows % k:
        raise ValueError(f"batch of {rows} does not split into d_steps={k} minibatches")
    return jax.tree.map(lambda a: a.reshape((k, a.shape[0] // k, *a.shape[1:])), batch)


def update_keys(state, k: int) -> Array:
    """The ``k + 1`` keys of this step's updates (k for D, the last for G)."""
    step_key = jax.random.fold_in(jax.random.fold_in(state.key, STEP_STREAM), state.step)
    return jax.random.split(step_key, k + 1)


def logits_of(out) -> Array:
    """D's logits from its output (an array, or a tuple whose first element they are), in
    float32: one per sample, ``[n]``, or one per patch, ``[n, h, w]`` (PatchGAN's: the losses
    average over patches as over samples). A trailing axis of size 1 is squeezed (``[n, 1]``,
    ``[n, h, w, 1]``); ``[n, k]`` with ``k > 1`` is refused (a two-class softmax or
    probabilities are not logits)."""
    logits = out[0] if isinstance(out, tuple | list) else out
    if logits.ndim in (2, 4) and logits.shape[-1] == 1:
        logits = logits[..., 0]
    if logits.ndim not in (1, 3):
        raise ValueError(
            "D must return one logit per sample, [n] or [n, 1], or one per patch, [n, h, w] "
            f"or [n, h, w, 1]; got shape {logits.shape} (a two-class softmax or probabilities "
            "are not logits: return one unbounded score)"
        )
    return logits.astype(jnp.float32)


def per_sample(logits: Array) -> Array:
    """One score per sample, ``[n]``: the logits themselves, or the mean of a sample's patch
    logits, so that the gradient penalties have the scale of an image-level D's."""
    return logits if logits.ndim == 1 else logits.reshape((logits.shape[0], -1)).mean(axis=1)


def judge(
    d: ModelState, params, x: Array, condition, inputs, key: Array, axis: DataAxis = ONE_DEVICE
):
    """D's output (in float32) and batch statistics on ``x`` conditioned on ``condition``;
    ``key`` feeds its dropout (per device, and shared for draws made for the global batch)."""
    args = inputs.d_args(x, condition)
    out, stats = d.apply(params, *args, train=True, rng=axis.local_key(key), shared_rng=key)
    return jax.tree.map(lambda a: a.astype(jnp.float32), out), stats


def generate(g: ModelState, params, z: Array, condition, inputs, key: Array, axis: DataAxis):
    """G's training-mode output and batch statistics for noise ``z`` and ``condition``."""
    args = inputs.g_args(z, condition)
    return g.apply(params, *args, train=True, rng=axis.local_key(key), shared_rng=key)


def _mean_prob(logits: Array) -> Array:
    return jnp.mean(jax.nn.sigmoid(logits))


def d_update(state: GANState, d: ModelState, batch: Batch, key: Array, axis: DataAxis):
    """One discriminator update on the real minibatch ``batch``; the new D and its measurements."""
    cfg, inputs = state.config, state.config.inputs
    z_key, g_key, real_key, fake_key = jax.random.split(key, 4)
    trick_keys = jax.random.split(jax.random.fold_in(key, TRICK_STREAM), 4)
    real, n = batch["x"], batch["x"].shape[0]
    real_c, fake_c = inputs.real_condition(batch), inputs.fake_condition(key, batch, axis, n)
    z = axis.rows(z_key, n, lambda k, rows: sample_latent(k, rows, cfg))
    fake = generate(state.g, state.g.params, z, fake_c, inputs, g_key, axis)[0]
    real_in = noisy(state, real, trick_keys[0], axis)
    fake_in = noisy(state, jax.lax.stop_gradient(fake), trick_keys[1], axis)

    def loss_fn(params):
        real_out, stats = judge(d, params, real_in, real_c, inputs, real_key, axis)
        fake_out, stats = judge(
            d.replace(batch_stats=stats), params, fake_in, fake_c, inputs, fake_key, axis
        )
        real_logits, fake_logits = logits_of(real_out), logits_of(fake_out)
        if cfg.targets is not None:
            value = cfg.targets.d_loss(real_logits, fake_logits, trick_keys[2], axis)
        else:
            value = cfg.loss.discriminator(real_logits, fake_logits)

        def critic(c):  # D's scores as a function of its input; batch statistics dropped
            return lambda x: per_sample(
                logits_of(
                    judge(d.replace(batch_stats=stats), params, x, c, inputs, fake_key, axis)[0]
                )
            )

        terms = DTermInputs(
            critic(real_c), critic(fake_c), real_in, fake_in, real_out, fake_out, real_c,
            fake_c, batch, trick_keys[3], axis,
        )  # fmt: skip
        value, extra = add_terms(value, cfg.all_d_terms, terms)
        return value, (stats, _mean_prob(real_logits), _mean_prob(fake_logits), extra)

    (loss, (stats, d_real, d_fake, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        d.params
    )
    grads = axis.mean(grads)
    d = d.apply_gradients(grads=grads).replace(batch_stats=axis.mean(stats))
    if cfg.weight_clip:
        c = cfg.weight_clip
        d = d.replace(params=jax.tree.map(lambda p: jnp.clip(p, -c, c), d.params))
    return d, {
        "d_loss": loss,
        "d_real": d_real,
        "d_fake": d_fake,
        "d_grad_norm": optax.tree.norm(grads),
        **extra,
    }


def g_update(state: GANState, d: ModelState, batch: Batch, key: Array, axis: DataAxis):
    """The generator update against the updated ``d``; the new G, its samples and measurements.
    ``batch`` is the step's last real minibatch (the real logits of relativistic losses, the
    source and target of a translation)."""
    cfg, inputs = state.config, state.config.inputs
    z_key, g_key, d_key = jax.random.split(key, 3)
    n = batch["x"].shape[0]
    z = axis.rows(z_key, n, lambda k, rows: sample_latent(k, rows, cfg))
    real_c, fake_c = inputs.real_condition(batch), inputs.fake_condition(key, batch, axis, n)
    real_key = jax.random.fold_in(key, REAL_IN_G_STREAM)
    real_in = noisy(state, batch["x"], jax.random.fold_in(real_key, TRICK_STREAM), axis)
    real_out = judge(d, d.params, real_in, real_c, inputs, real_key, axis)[0]

    def loss_fn(params):
        fake, stats = generate(state.g, params, z, fake_c, inputs, g_key, axis)
        d_in = noisy(state, fake, jax.random.fold_in(key, TRICK_STREAM), axis)
        fake_out = judge(d, d.params, d_in, fake_c, inputs, d_key, axis)[0]
        value = cfg.adv_weight * cfg.loss.generator(logits_of(fake_out), logits_of(real_out))
        terms = GTermInputs(fake, fake_out, real_out, fake_c, batch, axis)
        value, extra = add_terms(value, cfg.all_g_terms, terms)
        return value, (stats, fake, extra)

    (loss, (stats, fake, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g.params)
    grads = axis.mean(grads)
    g = state.g.apply_gradients(grads=grads).replace(batch_stats=axis.mean(stats))
    return g, fake, {"g_loss": loss, "g_grad_norm": optax.tree.norm(grads), **extra}


def noisy(state: GANState, x: Array, key: Array, axis: DataAxis) -> Array:
    """D's input with the step's instance noise (when the config has it)."""
    noise = state.config.instance_noise
    return x if noise is None else noise.apply(x, state.step, key, axis)


def train_step_body(state: GANState, batch: Batch, axis_name: str | None = None):
    """One GAN iteration: ``k`` discriminator updates, then one generator update.

    Args:
      state: the current :class:`~jaxgan.state.GANState`.
      batch: ``{"x": [k * batch_size, ...], ...}``: k real minibatches back to back, with
        what the inputs and terms read (``"y"`` labels, a ``"source"`` image, ...). Under
        ``axis_name`` with N devices, device i holds rows ``i * b:(i + 1) * b`` of each of the
        k global minibatches, ``b = batch_size / N`` (:func:`jaxgan.parallel.shard_batch`).
      axis_name: the data-parallel axis, or None on one device.

    Returns:
      ``(new_state, metrics)`` with scalar metrics ``d_loss`` and ``g_loss`` (the losses
      minimised, terms included), ``d_real`` and ``d_fake`` (mean ``sigmoid`` of D's logits on
      the last real and fake minibatch: D(x) and D(G(z)) for the cross-entropy losses),
      ``d_grad_norm`` (the largest of the k updates) and ``g_grad_norm``: non-finite exactly
      when a gradient is, which is how training notices divergence; the health monitor's
      ``diversity`` and ``d_winning`` (:mod:`jaxgan.monitor`); and what the terms report
      (AC-GAN's ``d_class_accuracy``).
    """
    cfg, axis = state.config, DataAxis(axis_name)
    reals = minibatches(batch, cfg.d_steps, cfg.reads)
    keys = update_keys(state, cfg.d_steps)

    def d_scan(d, inputs):
        return d_update(state, d, *inputs, axis)

    d, d_metrics = jax.lax.scan(d_scan, state.d, (reals, keys[:-1]))
    last = jax.tree.map(lambda a: a[-1], reals)
    g, fake, g_metrics = g_update(state, d, last, keys[-1], axis)
    ema = state.ema_params
    if ema is not None:
        decay = ema_decay_at(state.step, cfg.ema_decay)
        ema = optax.incremental_update(g.params, ema, step_size=1.0 - decay)
    metrics: Metrics = {name: v[-1] for name, v in d_metrics.items()}
    metrics["d_grad_norm"] = jnp.max(d_metrics["d_grad_norm"])
    metrics = axis.mean({**metrics, **g_metrics, "diversity": monitor.diversity(fake, last["x"])})
    metrics["d_winning"] = monitor.d_winning(cfg.loss, metrics["d_loss"], metrics["d_fake"])
    return state.replace(g=g, d=d, step=state.step + 1, ema_params=ema), metrics


@functools.cache
def compiled_step(step_fn):
    """``step_fn(state, batch, axis_name=None)`` compiled (the axis static), donating the old
    state; one compiled wrapper per step function, shared by all who ask."""
    return jax.jit(step_fn, donate_argnums=0, static_argnames="axis_name")


train_step = compiled_step(train_step_body)
"""``train_step(state, batch)``: :func:`train_step_body` compiled, donating the old state."""

"""DCGAN models: the PyTorch tutorial's parameter counts, shapes at every resolution, the
paper's initialisation, and batch norm through the training step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.models import DCGANDiscriminator, DCGANGenerator
from jaxgan.train import GANState, StepConfig, generate_samples, train_step


def init(module, x):
    return module.init(jax.random.key(0), x, train=False)


def init_shapes(module, x):
    """The variables' shapes without computing them (fast even for the 64x64 models)."""
    return jax.eval_shape(lambda inputs: init(module, inputs), x)


def num_params(variables) -> int:
    return sum(a.size for a in jax.tree.leaves(variables["params"]))


def test_parameter_counts_equal_the_pytorch_tutorials_at_64x64x3():
    g = init_shapes(DCGANGenerator(64, 3), jnp.zeros((2, 100)))
    d = init_shapes(DCGANDiscriminator(64), jnp.zeros((2, 64, 64, 3)))
    assert num_params(g) == 3_576_704  # batch-norm statistics not counted
    assert num_params(d) == 2_765_568


@pytest.mark.parametrize(("resolution", "channels", "layers"), [(32, 1, 3), (64, 3, 4), (96, 3, 4)])
def test_shapes_and_depth_follow_the_resolution(resolution, channels, layers):
    g, d = DCGANGenerator(resolution, channels, width=8), DCGANDiscriminator(resolution, width=8)
    g_vars = init_shapes(g, jnp.zeros((3, 100)))
    images = jax.eval_shape(lambda v: g.apply(v, jnp.ones((3, 100)), train=False), g_vars)
    assert images.shape == (3, resolution, resolution, channels)
    d_vars = init_shapes(d, images)
    logits = jax.eval_shape(lambda v, x: d.apply(v, x, train=False), d_vars, images)
    assert logits.shape == (3,)
    # One transposed convolution from 1x1 plus `layers` upsamplings; as many D convolutions.
    assert len(g_vars["params"]) == layers + 1 + layers  # convolutions + batch norms
    assert len(d_vars["batch_stats"]) == layers - 1  # no batch norm on D's first layer
    widths = [v["kernel"].shape[-1] for k, v in d_vars["params"].items() if k.startswith("Conv")]
    assert widths == [8 * 2**i for i in range(layers)] + [1]


def test_initialisation_is_the_papers():
    g = jax.jit(lambda z: init(DCGANGenerator(32, 3, width=16), z))(jnp.zeros((2, 100)))["params"]
    kernel = np.asarray(g["ConvTranspose_1"]["kernel"])
    assert kernel.std() == pytest.approx(0.02, rel=0.02) and abs(kernel.mean()) < 1e-3
    scale = np.asarray(g["BatchNorm_0"]["scale"])
    assert scale.mean() == pytest.approx(1.0, abs=0.005) and scale.std() == pytest.approx(
        0.02, rel=0.2
    )
    assert not np.any(g["BatchNorm_0"]["bias"])


def test_unsupported_resolution_is_refused():
    with pytest.raises(ValueError, match=r"one of \(32, 64, 96\)"):
        init(DCGANGenerator(48, 3), jnp.zeros((2, 100)))


def test_training_step_updates_batch_norm_statistics_and_sampling_uses_them():
    state = GANState.create(
        generator=DCGANGenerator(32, 1, width=4),
        discriminator=DCGANDiscriminator(32, width=4),
        g_tx=optax.adam(2e-4, b1=0.5),
        d_tx=optax.adam(2e-4, b1=0.5),
        key=jax.random.key(0),
        config=StepConfig(latent_dim=100),
    )
    before = [np.asarray(a) for a in jax.tree.leaves((state.g.batch_stats, state.d.batch_stats))]
    z = jnp.ones((4, 100))
    first = np.asarray(generate_samples(state, z))
    assert np.abs(first).max() <= 1.0  # tanh
    batch = {"x": jax.random.uniform(jax.random.key(1), (16, 32, 32, 1), minval=-1, maxval=1)}
    state, metrics = train_step(state, batch)
    after = jax.tree.leaves((state.g.batch_stats, state.d.batch_stats))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert all(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    # Inference mode normalises with the running averages: one sample alone is unchanged by
    # the batch it is drawn in.
    alone = generate_samples(state, z[:1])
    np.testing.assert_allclose(alone, generate_samples(state, z)[:1], atol=1e-6)
    assert not np.allclose(first, generate_samples(state, z))

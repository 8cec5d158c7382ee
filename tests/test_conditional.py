"""Conditional GANs: the AC-GAN loss on known logits, label plumbing through the models and the
step, class-conditional learning on a toy, label accuracy, and the latent-space paths."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jaxgan import generate, latent, metrics
from jaxgan.epoch import train_epoch
from jaxgan.experiments import mnist
from jaxgan.losses import class_loss
from jaxgan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, StepConfig, generate_samples
from jaxgan.step import train_step


def _softmax_ce(row, label):
    return math.log(sum(math.exp(v) for v in row)) - row[label]


@pytest.mark.parametrize(
    ("logits", "labels"),
    [
        ([[0.0, 0.0, 0.0, 0.0]], [2]),  # uniform: log 4
        ([[2.0, 0.0, 0.0]], [0]),
        ([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [2, 2]),  # right, then wrong and confident
        ([[-50.0, 50.0]], [0]),  # 100, not inf
    ],
)
def test_class_loss_is_the_mean_softmax_cross_entropy(logits, labels):
    expected = np.mean([_softmax_ce(r, y) for r, y in zip(logits, labels, strict=True)])
    value = float(class_loss(jnp.array(logits), jnp.array(labels)))
    assert value == pytest.approx(expected, rel=1e-6)


def test_label_accuracy_reports_the_mean_and_the_worst_class():
    probs = np.eye(3)[[0, 1, 1, 2, 0, 2]]  # the classifier's argmax per sample
    scores = metrics.label_accuracy(probs, np.array([0, 1, 2, 2, 0, 2]))
    assert scores == {"label_accuracy": 5 / 6, "label_accuracy_min": 2 / 3}  # class 2: 2 of 3


# --- models


def test_conditional_generator_depends_on_the_label_and_refuses_its_absence():
    g = MLPGenerator((3,), hidden=(8,), num_classes=4)
    z = jnp.ones((2, 5))
    variables = g.init(jax.random.key(0), z, jnp.array([0, 1]), train=False)
    assert variables["params"]["Dense_0"]["kernel"].shape == (5 + 4, 8)  # z and a one-hot
    out = g.apply(variables, z, jnp.array([0, 1]), train=False)
    assert out.shape == (2, 3) and not np.allclose(out[0], out[1])  # same z, other label
    with pytest.raises(ValueError, match="is conditional: call it with labels"):
        g.apply(variables, z, train=False)
    with pytest.raises(ValueError, match="takes no labels"):
        MLPGenerator((3,)).init(jax.random.key(0), z, jnp.array([0, 1]), train=False)
    embedded = MLPGenerator((3,), hidden=(8,), num_classes=4, label_embed=6)
    params = embedded.init(jax.random.key(0), z, jnp.array([0, 1]), train=False)["params"]
    assert params["Embed_0"]["embedding"].shape == (4, 6)
    assert params["Dense_0"]["kernel"].shape == (5 + 6, 8)


def test_projection_discriminator_adds_the_label_embedding_times_the_features():
    d = MLPDiscriminator(hidden=(8,), act="identity", conditioning="projection", num_classes=3)
    x, y = jax.random.normal(jax.random.key(1), (4, 5)), jnp.array([0, 1, 2, 1])
    params = d.init(jax.random.key(0), x, y, train=False)["params"]
    h = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]  # identity activation
    plain = h @ params["Dense_1"]["kernel"][:, 0] + params["Dense_1"]["bias"][0]
    projection = jnp.sum(params["label_projection"]["embedding"][y] * h, axis=-1)
    np.testing.assert_allclose(
        d.apply({"params": params}, x, y, train=False), plain + projection, rtol=1e-5, atol=1e-6
    )


def test_concat_and_classifier_discriminators():
    x, y = jnp.ones((4, 5)), jnp.array([0, 1, 2, 1])
    concat = MLPDiscriminator(hidden=(8,), conditioning="concat", num_classes=3)
    params = concat.init(jax.random.key(0), x, y, train=False)["params"]
    assert params["Dense_0"]["kernel"].shape == (5 + 3, 8)
    logits = concat.apply({"params": params}, x, y, train=False)
    assert logits.shape == (4,) and logits[1] == logits[3] and logits[0] != logits[1]

    acgan = MLPDiscriminator(hidden=(8,), conditioning="classifier", num_classes=3)
    variables = acgan.init(jax.random.key(0), x, train=False)
    source, classes = acgan.apply(variables, x, train=False)
    assert source.shape == (4,) and classes.shape == (4, 3)
    with pytest.raises(ValueError, match="takes no labels"):
        acgan.apply(variables, x, y, train=False)
    with pytest.raises(ValueError, match="unknown conditioning 'bogus'"):
        MLPDiscriminator(conditioning="bogus", num_classes=3).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="packing does not combine"):
        MLPDiscriminator(pack=2, conditioning="concat", num_classes=3).init(jax.random.key(0), x, y)


@pytest.mark.parametrize("conditioning", ["concat", "projection", "classifier"])
def test_dcgan_conditioning_shapes(conditioning):
    g = DCGANGenerator(32, 1, width=4, num_classes=10)
    z, y = jnp.ones((3, 100)), jnp.array([1, 2, 3])
    g_vars = jax.eval_shape(lambda: g.init(jax.random.key(0), z, y, train=False))
    assert g_vars["params"]["ConvTranspose_0"]["kernel"].shape[2] == 100 + 10
    images = jax.eval_shape(lambda v: g.apply(v, z, y, train=False), g_vars)
    assert images.shape == (3, 32, 32, 1)
    d = DCGANDiscriminator(32, width=4, conditioning=conditioning, num_classes=10)
    d_in = (images,) if conditioning == "classifier" else (images, y)
    d_vars = jax.eval_shape(lambda x: d.init(jax.random.key(0), *x, train=False), d_in)
    out = jax.eval_shape(lambda v, x: d.apply(v, *x, train=False), d_vars, d_in)
    if conditioning == "classifier":
        assert out[0].shape == (3,) and out[1].shape == (3, 10)
    else:
        assert out.shape == (3,)
    if conditioning == "concat":  # the labels join the image as 10 constant channels
        assert d_vars["params"]["Conv_0"]["kernel"].shape[2] == 1 + 10


# --- the step

CLASSES = 4
MODES = jnp.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])  # class c's mean


def conditional_state(conditional, conditioning=None, *, lr_d=1e-3, seed=0, **step):
    conditioning = conditioning or ("classifier" if conditional == "acgan" else "concat")
    return GANState.create(
        generator=MLPGenerator((2,), hidden=(64, 64), num_classes=CLASSES),
        discriminator=MLPDiscriminator((64, 64), conditioning=conditioning, num_classes=CLASSES),
        g_tx=optax.adam(1e-3, b1=0.5),
        d_tx=optax.adam(lr_d, b1=0.5) if lr_d else optax.sgd(0.0),
        key=jax.random.key(seed),
        config=StepConfig.from_options(
            latent_dim=4, conditional=conditional, num_classes=CLASSES, **step
        ),
    )


def toy_data(n: int = 2000) -> dict:
    """Class c: a small Gaussian around MODES[c]; G must learn which class goes where."""
    y = jnp.arange(n) % CLASSES
    x = MODES[y] + 0.1 * jax.random.normal(jax.random.key(5), (n, 2))
    return {"x": x, "y": y}


def test_acgan_adds_the_classification_loss_to_both_losses():
    """With the class head zeroed (uniform class logits) and D frozen, AC-GAN's D loss is the
    plain loss + log C (real) + log C (fake), or + log C alone when D classifies real samples
    only, and G's the plain loss + log C."""

    def first_losses(**step):
        state = conditional_state("acgan", lr_d=0.0, **step)
        head = jax.tree.map(jnp.zeros_like, state.d.params["class_head"])
        state = state.replace(d=state.d.replace(params={**state.d.params, "class_head": head}))
        batch = jax.tree.map(lambda a: a[:64], toy_data())
        _, step_metrics = train_step(state, batch)
        return float(step_metrics["d_loss"]), float(step_metrics["g_loss"])

    d0, g0 = first_losses(ac_weight=0.0)
    d1, g1 = first_losses(ac_weight=1.0)
    d2, g2 = first_losses(ac_weight=1.0, ac_fake_in_d=False)
    assert d1 - d0 == pytest.approx(2 * math.log(CLASSES), rel=1e-5)
    assert d2 - d0 == pytest.approx(math.log(CLASSES), rel=1e-5)
    assert g1 - g0 == g2 - g0 == pytest.approx(math.log(CLASSES), rel=1e-5)


def test_a_conditional_step_needs_the_labels():
    state = conditional_state("cgan")
    with pytest.raises(ValueError, match=r"needs the real samples' labels in batch\['y'\]"):
        train_step(state, {"x": jnp.zeros((8, 2))})
    with pytest.raises(ValueError, match="needs num_classes >= 2"):
        StepConfig.from_options(conditional="cgan")


@pytest.mark.parametrize("conditional", ["cgan", "acgan"])
def test_conditional_gan_learns_where_each_class_lives(conditional):
    """Before training G's samples for every class sit near the origin; after 30 epochs each
    class's samples gather around its own mode (2 away from the others). (The projection D's
    arithmetic is checked by hand above.)"""
    state = conditional_state(conditional)
    data = toy_data()
    z = jax.random.normal(jax.random.key(9), (400, 4))
    labels = jnp.arange(400) % CLASSES
    epochs = jax.jit(
        lambda s: jax.lax.fori_loop(0, 30, lambda _, s: train_epoch(s, data, batch_size=100)[0], s)
    )
    state = epochs(state)
    samples = generate_samples(state, z, labels)
    nearest = jnp.argmin(jnp.linalg.norm(samples[:, None] - MODES[None], axis=-1), axis=1)
    assert float(jnp.mean(nearest == labels)) > 0.9
    for c in range(CLASSES):
        centre = samples[labels == c].mean(axis=0)
        assert float(jnp.linalg.norm(centre - MODES[c])) < 0.5, (c, centre)


# --- latent paths


def test_lerp_and_slerp_endpoints_and_midpoints():
    a, b = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0])
    t = jnp.linspace(0.0, 1.0, 5)
    for path in (latent.lerp(a, b, t), latent.slerp(a, b, t)):
        np.testing.assert_allclose(path[0], a, atol=1e-6)
        np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(latent.lerp(a, b, t)[2], [0.5, 0.5, 0.0], atol=1e-6)
    # Slerp of orthogonal unit vectors: the midpoint is at 45 degrees, still of norm 1.
    s = latent.slerp(a, b, t)
    np.testing.assert_allclose(s[2], [1 / math.sqrt(2), 1 / math.sqrt(2), 0.0], atol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=1), 1.0, atol=1e-6)
    # Equal-norm Gaussian-like vectors keep their norm; lerp's midpoint shrinks.
    u = jax.random.normal(jax.random.key(0), (2, 64))
    u = 8.0 * u / jnp.linalg.norm(u, axis=1, keepdims=True)
    np.testing.assert_allclose(jnp.linalg.norm(latent.slerp(u[0], u[1], t), axis=1), 8.0, rtol=1e-5)
    assert float(jnp.linalg.norm(latent.lerp(u[0], u[1], t)[2])) < 6.5
    # Parallel endpoints have no great circle: the straight line.
    np.testing.assert_allclose(latent.slerp(a, 3 * a, t), latent.lerp(a, 3 * a, t), atol=1e-6)


def test_interpolate_and_traverse_build_one_path_per_row():
    starts, ends = jnp.zeros((3, 4)) + 1.0, jnp.zeros((3, 4)) - 1.0
    paths = latent.interpolate(starts, ends, 6, "lerp")
    assert paths.shape == (3, 6, 4)
    np.testing.assert_allclose(paths[:, 0], starts)
    np.testing.assert_allclose(paths[:, -1], ends)
    bases = jax.random.normal(jax.random.key(0), (2, 4))
    values = jnp.linspace(-3.0, 3.0, 7)
    swept = latent.traverse(bases, 1, values)
    assert swept.shape == (2, 7, 4)
    np.testing.assert_allclose(swept[:, :, 1], jnp.broadcast_to(values, (2, 7)))
    np.testing.assert_allclose(
        swept[:, :, [0, 2, 3]], jnp.repeat(bases[:, None][..., [0, 2, 3]], 7, 1)
    )
    with pytest.raises(ValueError, match=r"outside the latent's 0\.\.3"):
        latent.traverse(bases, 4, values)
    with pytest.raises(ValueError, match="unknown interpolation"):
        latent.interpolate(starts, ends, 6, "cubic")


# --- the MNIST job and jaxgan.generate

TINY = ["--epochs", "2", "--batch-size", "50", "--g-hidden", "32", "--d-hidden", "32"]
TINY += ["--eval-samples", "50"]


def grid_size(rows: int, cols: int) -> tuple[int, int]:
    """A saved grid's pixel size: 28-pixel images with 2-pixel gaps, enlarged twice."""
    return (2 * (cols * 30 + 2), 2 * (rows * 30 + 2))


def generate_expecting_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_conditional_mnist_run_and_the_latent_tools_on_its_checkpoint(tmp_path, tiny_mnist, capsys):
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(tiny_mnist), "--workdir", str(workdir), "--conditional", "acgan"]
    mnist.main([*argv, *TINY])
    summary = json.loads((workdir / "summary.json").read_text())
    assert 0 <= summary["label_accuracy_min"] <= summary["label_accuracy"] <= 1
    assert 0 <= summary["d_class_accuracy"] <= 1
    for name in ("real.png", "epoch_0002.png"):  # a row per class, ten columns
        assert Image.open(workdir / "samples" / name).size == grid_size(10, 10)

    common = ["--workdir", str(workdir), "--npz", str(tmp_path / "s.npz")]
    generate.main([*common, "--interpolate", "slerp", "--num", "3", "--steps", "5"])
    paths = np.load(tmp_path / "s.npz")
    assert paths["x"].shape == (15, 28, 28, 1) and paths["z"].shape == (15, 64)
    assert paths["labels"].tolist() == [0] * 5 + [1] * 5 + [2] * 5  # a class per row
    z = paths["z"].reshape(3, 5, 64)
    norms = np.linalg.norm(z, axis=-1)  # slerp: the norm moves linearly along each path
    np.testing.assert_allclose(norms, np.linspace(norms[:, 0], norms[:, -1], 5).T, rtol=1e-5)

    out = tmp_path / "dim5.png"
    sweep = ["--traverse", "5", "--range", "-2", "2", "--num", "2", "--steps", "4", "--label", "7"]
    generate.main([*common, "--out", str(out), *sweep])
    swept = np.load(tmp_path / "s.npz")
    z = swept["z"].reshape(2, 4, 64)
    np.testing.assert_allclose(z[:, :, 5], [np.linspace(-2, 2, 4)] * 2, rtol=1e-6)
    others = np.delete(z, 5, axis=-1)
    np.testing.assert_array_equal(others, np.repeat(others[:, :1], 4, axis=1))
    assert swept["labels"].tolist() == [7] * 8
    assert Image.open(out).size == grid_size(2, 4)

    generate_expecting_error(capsys, [*common, "--label", "10"], "--label must be in 0..9")
    generate_expecting_error(capsys, [*common, "--traverse", "64"], "in 0..63, got 64")
    generate_expecting_error(
        capsys, [*common, "--traverse", "1", "--interpolate", "lerp"], "not allowed with"
    )

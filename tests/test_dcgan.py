"""DCGAN: the PyTorch tutorial's parameter counts, shapes at every resolution, the paper's
initialisation, batch norm through the training step; the experiment on an image folder and on
MNIST at 32x32, its errors, and CelebA through tfds."""

import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from conftest import expect_one_line_error
from PIL import Image

from jaxgan import data, evaluate, generate, models
from jaxgan.checkpoint import Checkpointer
from jaxgan.experiments import dcgan
from jaxgan.models import DCGANDiscriminator, DCGANGenerator
from jaxgan.state import GANState, StepConfig, generate_samples
from jaxgan.step import train_step
from jaxgan.trainer.config import create_state


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


def test_a_discriminator_without_batch_norm_judges_each_sample_alone():
    """R3GAN's D (``batch_norm=False``): no batch statistics, a bias per convolution instead of
    batch norm's scale and shift, and, in training mode, a sample's logit that does not move
    when the rest of its batch changes (with batch norm it does)."""
    x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    plain, normed = (
        DCGANDiscriminator(32, width=8, batch_norm=False),
        DCGANDiscriminator(32, width=8),
    )
    plain_vars, normed_vars = init(plain, x), init(normed, x)
    assert "batch_stats" not in plain_vars
    # widths 8, 16, 32: biases 8 + 16 + 32 in place of batch norm's 2 * (16 + 32)
    assert num_params(plain_vars) == num_params(normed_vars) - 2 * (16 + 32) + (8 + 16 + 32)
    others = x.at[1:].set(jax.random.normal(jax.random.key(3), (3, 32, 32, 3)))

    def first_logit(module, variables, batch):
        out = module.apply(variables, batch, train=True, mutable=["batch_stats"])
        return float((out[0] if isinstance(out, tuple) else out)[0])

    assert first_logit(plain, plain_vars, x) == pytest.approx(
        first_logit(plain, plain_vars, others), abs=1e-6
    )
    assert (
        abs(first_logit(normed, normed_vars, x) - first_logit(normed, normed_vars, others)) > 1e-3
    )


def test_initialisation_is_the_papers():
    g = jax.jit(lambda z: init(DCGANGenerator(32, 3, width=16), z))(jnp.zeros((2, 100)))["params"]
    kernel = np.asarray(g["ConvTranspose_1"]["kernel"])
    assert kernel.std() == pytest.approx(0.02, rel=0.02) and abs(kernel.mean()) < 1e-3
    scale = np.asarray(g["BatchNorm_0"]["scale"])
    assert scale.mean() == pytest.approx(1.0, abs=0.005) and scale.std() == pytest.approx(
        0.02, rel=0.2
    )
    assert not np.any(g["BatchNorm_0"]["bias"])


DOWN = nn.Conv(5, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False)
UP = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)
PROJECT = nn.ConvTranspose(5, (4, 4), padding="VALID", use_bias=False)
SHIFT = nn.Conv(5, (4, 4), padding=((1, 1), (1, 1)), use_bias=False)  # PatchGAN's stride 1
UP3 = nn.ConvTranspose(5, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)), use_bias=False)


@pytest.mark.parametrize(
    ("layer", "reference", "shape"),
    [
        (models.DownConv(5), DOWN, (2, 8, 6, 3)),
        (models.UpConv(5), UP, (2, 3, 4, 6)),
        (models._Project(5, 4), PROJECT, (2, 6)),
        (models.ShiftConv(5, 4, 1, use_bias=False), SHIFT, (2, 7, 6, 3)),
        (models.UpConv(5, size=3), UP3, (2, 3, 4, 6)),  # CycleGAN's
        (models.ShiftConv(5, 4, 1, use_bias=False, patches=True), SHIFT, (2, 7, 6, 3)),
    ],
)
def test_dcgan_layers_compute_the_papers_convolutions(layer, reference, shape):
    """DCGAN's and pix2pix's layers (written as matrix products, with their own backward pass,
    for XLA:CPU's sake) against flax's convolutions with the same kernel: values, kernel and
    input gradients, and the kernel gradient of an input-gradient penalty (R1's double
    backward pass)."""
    x = jax.random.normal(jax.random.key(0), shape)
    x_as_image = x if len(shape) == 4 else x[:, None, None, :]  # z as a 1x1 image
    size = getattr(layer, "size", 4)
    kernel = jax.random.normal(jax.random.key(1), (size, size, shape[-1], 5))

    def weighted_sum(module, kernel, x):  # a loss whose gradient differs per output value
        y = module.apply({"params": {"kernel": kernel}}, x)
        return jnp.sum(jnp.tanh(y) * jnp.arange(y.size).reshape(y.shape) / y.size)

    def penalty(module, kernel, x):  # R1's form: the squared norm of the input gradient
        return jnp.sum(jax.grad(weighted_sum, argnums=2)(module, kernel, x) ** 2)

    np.testing.assert_allclose(
        layer.apply({"params": {"kernel": kernel}}, x),
        reference.apply({"params": {"kernel": kernel}}, x_as_image),
        atol=1e-5,
    )

    def flat_grads(loss, argnums, module, inputs):  # the gradients, raveled end to end
        grads = jax.tree.leaves(jax.grad(loss, argnums)(module, kernel, inputs))
        return np.concatenate([np.ravel(g) for g in grads])

    for loss, argnums, atol in ((weighted_sum, (1, 2), 1e-4), (penalty, 1, 1e-3)):
        np.testing.assert_allclose(
            flat_grads(loss, argnums, layer, x),
            flat_grads(loss, argnums, reference, x_as_image),
            atol=atol,
        )


def test_unsupported_resolution_is_refused():
    with pytest.raises(ValueError, match=r"one of \(32, 64, 96\)"):
        init(DCGANGenerator(48, 3), jnp.zeros((2, 100)))


def test_a_discriminator_given_images_of_another_size_says_so():
    """(It used to fail deep inside with "cannot reshape array of shape (2, 0, 0, 1)".)"""
    with pytest.raises(ValueError, match=r"resolution=64\) judges \[batch, 64, 64, channels\] "):
        init(DCGANDiscriminator(64, width=4), jnp.zeros((2, 32, 32, 1)))
    init(DCGANDiscriminator(32, width=4), jnp.zeros((2, 32, 32, 1)))  # the right size works


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


# --- the experiment: python -m jaxgan.experiments.dcgan

TINY = ["--image-size", "32", "--g-width", "4", "--d-width", "4", "--log-every", "1"]


def grid_size(rows: int, cols: int, side: int = 32) -> tuple[int, int]:
    """A saved grid's pixel size: images with 2-pixel gaps, enlarged twice."""
    return (2 * (cols * (side + 2) + 2), 2 * (rows * (side + 2) + 2))


def expect_usage_error(capsys, argv, message):
    expect_one_line_error(capsys, dcgan.main, argv, message)


@pytest.fixture
def image_folder(tmp_path):
    """Two classes of 12 random-noise images each, of assorted sizes."""
    rng = np.random.default_rng(0)
    for name in ("reds", "blues"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(12):
            height, width = rng.integers(20, 80, 2)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "faces" / name / f"{i}.png")
    return tmp_path / "faces"


def trained_arrays(workdir, config: dcgan.Config) -> list[np.ndarray]:
    """The parameters, batch statistics and optimizer states of ``workdir``'s checkpoint."""
    target, _ = create_state(config, *dcgan.build_models(config), 24)
    checkpointer = Checkpointer(workdir, create=False)
    state, _ = checkpointer.restore(target)
    checkpointer.close()
    g, d = state.g, state.d
    tree = (g.params, d.params, g.batch_stats, d.batch_stats, g.opt_state, d.opt_state)
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_conditional_run_on_an_image_folder_streamed_or_not_and_generate(
    tmp_path, image_folder, capsys
):
    workdir, streamed = tmp_path / "run", tmp_path / "streamed"
    argv = ["--dataset", "folder", "--data-dir", str(image_folder), *TINY, "--epochs", "2"]
    argv += ["--batch-size", "12", "--conditional", "cgan", "--data-cache", str(tmp_path / "c")]
    dcgan.main([*argv, "--data-placement", "host", "--workdir", str(workdir)])
    for name in ("config.json", "metrics.jsonl", "summary.json", "loss_curves.png"):
        assert (workdir / name).stat().st_size > 0, name
    for name in ("progress.gif", "real_vs_fake.png", "samples/epoch_0002.png"):
        assert (workdir / name).stat().st_size > 0, name
    assert json.loads((workdir / "config.json").read_text())["classes"] == 2  # found, recorded
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 2 * (24 // 12) and summary["status"] == "completed"
    assert summary["image_size"] == 32 and "fid_mnist" not in summary
    assert Image.open(workdir / "samples" / "epoch_0001.png").size == grid_size(2, 10)

    # the same run streamed from the disk cache: decoded once, the very same numbers
    dcgan.main([*argv, "--data-placement", "stream", "--workdir", str(streamed)])
    assert "decoding folder once into" in capsys.readouterr().err
    config = dcgan.Config(dataset="folder", image_size=32, g_width=4, d_width=4, epochs=2)
    config = dataclasses.replace(config, batch_size=12, conditional="cgan", classes=2)
    for a, b in zip(trained_arrays(streamed, config), trained_arrays(workdir, config), strict=True):
        np.testing.assert_array_equal(a, b)

    npz = tmp_path / "blues.npz"
    generate.main(["--workdir", str(workdir), "--label", "1", "--num", "4", "--npz", str(npz)])
    samples = np.load(npz)
    assert samples["x"].shape == (4, 32, 32, 3) and samples["labels"].tolist() == [1] * 4


def test_mnist_at_32_is_padded_and_scored_as_28x28_digits(tmp_path, tiny_mnist):
    config = dcgan.Config(dataset="mnist", data_dir=str(tiny_mnist), image_size=32)
    padded = dcgan.load_data(config)["image"]
    original = data.load_idx(tiny_mnist)["image"]
    assert padded.shape == (200, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], original)  # a black 2-pixel border
    assert not padded[:, :2].any() and not padded[:, :, 30:].any()
    np.testing.assert_array_equal(evaluate.as_mnist(padded), original)

    workdir = tmp_path / "run"
    argv = ["--dataset", "mnist", "--data-dir", str(tiny_mnist), "--workdir", str(workdir)]
    dcgan.main([*argv, *TINY, "--epochs", "1", "--batch-size", "50", "--eval-samples", "20"])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["num_real"] == 100 and summary["num_fake"] == 20
    assert summary["fid_mnist"] > 0 and Image.open(workdir / "samples" / "real.png").size == (
        grid_size(8, 8)
    )


def test_dcgan_usage_and_data_errors(tmp_path, capsys, image_folder):
    run = ["--workdir", str(tmp_path / "run")]
    expect_usage_error(capsys, [*run, "--dataset", "folder"], "--dataset folder needs --data-dir")
    expect_usage_error(
        capsys, [*run, "--conditional", "acgan"], "celeb_a has no class labels; --conditional"
    )
    expect_usage_error(capsys, [*run, "--classes", "3"], "--classes is for --dataset folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_usage_error(
        capsys, [*run, "--dataset", "folder", "--data-dir", str(empty)], "holds no JPEG or PNG"
    )
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    argv = [*run, "--dataset", "folder", "--data-dir", str(flat), "--conditional", "cgan"]
    expect_usage_error(capsys, argv, "has no subfolders of classes")
    argv = ["--dataset", "folder", "--data-dir", str(image_folder), "--conditional", "cgan"]
    expect_usage_error(capsys, [*run, *argv, "--classes", "1"], "--classes must be >= 2, got 1")
    (image_folder / "greens").mkdir()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(image_folder / "greens" / "g.png")
    expect_usage_error(capsys, [*run, *argv, "--classes", "2"], "3 classes (subfolders), more")
    assert not (tmp_path / "run").exists()  # nothing written before the data are good


def test_offline_tfds_dataset_error_names_the_ways_out(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host: False)
    argv = ["--dataset", "cifar10", "--workdir", str(tmp_path / "run")]
    argv += ["--tfds-data-dir", str(tmp_path / "tfds")]
    expect_usage_error(capsys, argv, "or train on local images with --dataset folder --data-dir")


def test_celeb_a_from_tfds_is_centre_cropped_and_resized(monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host: True)  # as on a connected machine
    with tfds.testing.mock_data(num_examples=6):
        loaded = dcgan.load_data(dcgan.Config(dataset="celeb_a", image_size=32))
    assert loaded["image"].shape == (6, 32, 32, 3) and loaded["image"].dtype == np.uint8
    assert "label" not in loaded  # CelebA has attributes, no class label

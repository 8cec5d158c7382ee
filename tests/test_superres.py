"""Super-resolution: the sub-pixel shuffle, the 3×3 strided convolution, SRResNet and SRGAN's D
against the paper's sizes, the content losses by hand, downscaled pairs and crop folders, and
the SRGAN experiment (runs that learn, bad input)."""

import dataclasses
import itertools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import expect_one_line_error
from PIL import Image

from jaxgan import classifier, data, metrics, pairs
from jaxgan.data import DataError
from jaxgan.experiments import srgan
from jaxgan.models import DownConv
from jaxgan.superres import SRDiscriminator, SRResNet, pixel_shuffle, upsampling_steps
from jaxgan.terms import FeatureContent, GTermInputs, MSEToTarget

# --- the networks ---------------------------------------------------------------------------


def test_pixel_shuffle_moves_each_channel_group_into_its_block():
    x = np.arange(2 * 3 * 4 * 8, dtype=np.float32).reshape(2, 3, 4, 8)  # c = 2, r = 2
    y = np.asarray(pixel_shuffle(jnp.asarray(x), 2))
    assert y.shape == (2, 6, 8, 2)
    for n, h, w, c, i, j in [(0, 0, 0, 0, 0, 0), (1, 2, 3, 1, 1, 0), (0, 1, 2, 1, 0, 1)]:
        assert y[n, 2 * h + i, 2 * w + j, c] == x[n, h, w, c * 4 + i * 2 + j]
    with pytest.raises(ValueError, match="divisible by 4"):
        pixel_shuffle(jnp.zeros((1, 2, 2, 6)), 2)
    assert [upsampling_steps(s) for s in (2, 4, 8)] == [1, 2, 3]
    for bad in (1, 3, 6):
        with pytest.raises(ValueError, match="power of two"):
            upsampling_steps(bad)


@pytest.mark.parametrize("size", [7, 8])
def test_3x3_strided_convolution_is_pytorchs_on_odd_and_even_sizes(size):
    """DownConv(size=3) against flax's Conv(3x3, stride 2, padding 1) with the same kernel:
    ceil(size / 2) outputs, values and kernel gradients."""
    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
    ours = DownConv(5, size=3)
    reference = nn.Conv(5, (3, 3), strides=2, padding=1, use_bias=False)

    def weighted_sum(module, kernel):
        y = module.apply({"params": {"kernel": kernel}}, x)
        return jnp.sum(y * jnp.arange(y.size).reshape(y.shape) / y.size)

    out = ours.apply({"params": {"kernel": kernel}}, x)
    assert out.shape == (2, (size + 1) // 2, (size + 1) // 2, 5)
    np.testing.assert_allclose(out, reference.apply({"params": {"kernel": kernel}}, x), atol=1e-5)
    np.testing.assert_allclose(
        jax.grad(weighted_sum, argnums=1)(ours, kernel),
        jax.grad(weighted_sum, argnums=1)(reference, kernel),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="even size"):
        DownConv(5).init(jax.random.key(0), x[:, :7, :7])


def count(module, *inputs) -> tuple[int, tuple]:
    """The parameters of ``module`` for ``inputs``' shapes and its output's shape, traced
    abstractly (no compilation: the paper's D has 23.6 M parameters)."""
    variables = jax.eval_shape(module.init, jax.random.key(0), *inputs)
    out = jax.eval_shape(lambda v, *x: module.apply(v, *x, train=False), variables, *inputs)
    return sum(p.size for p in jax.tree.leaves(variables["params"])), out.shape


def test_srresnet_and_d_have_the_papers_sizes_by_hand():
    """The paper's networks (64 channels, 16 blocks, ×4; D 64 to 512 channels on 96×96 RGB
    crops), their parameters counted layer by layer."""

    def conv(k, c, f, bias=True):
        return k * k * c * f + f * bias

    def bn(c):
        return 2 * c

    prelu = 1
    block = 2 * (conv(3, 64, 64) + bn(64)) + prelu
    g_expected = (
        conv(9, 3, 64) + prelu + 16 * block + conv(3, 64, 64) + bn(64)
        + 2 * (conv(3, 64, 256) + prelu) + conv(9, 64, 3)
    )  # fmt: skip
    lr = jnp.zeros((2, 24, 24, 3))
    assert count(SRResNet(3, 64, 16, 4), lr) == (g_expected, (2, 96, 96, 3))
    assert g_expected == 1_549_462

    widths = [64, 128, 256, 512]
    d_expected = conv(3, 3, 64) + conv(3, 64, 64, False) + bn(64)
    for c_in, c in itertools.pairwise(widths):
        d_expected += conv(3, c_in, c, False) + bn(c) + conv(3, c, c, False) + bn(c)
    d_expected += (6 * 6 * 512) * 1024 + 1024 + 1024 + 1  # 96 → 48 → 24 → 12 → 6, dense
    assert count(SRDiscriminator(64, 4), jnp.zeros((3, 96, 96, 3))) == (d_expected, (3,))
    assert d_expected == 23_563_649
    assert count(SRDiscriminator(8, 3), jnp.zeros((3, 28, 28, 1)))[1] == (3,)  # 28 → 14 → 7 → 4


def test_srresnet_upscales_digits_into_the_tanh_range():
    g = SRResNet(1, 4, 1, 4)
    lr = 4 * jax.random.normal(jax.random.key(0), (4, 7, 7, 1))
    variables = g.init(jax.random.key(1), lr)
    out = g.apply(variables, lr, train=False)
    assert out.shape == (4, 28, 28, 1) and float(jnp.abs(out).max()) <= 1.0


# --- the content losses ---------------------------------------------------------------------


def g_inputs(fake, target):
    return GTermInputs(fake, None, None, None, {"x": target}, None)


@dataclasses.dataclass(frozen=True)
class Doubled:
    """φ(x) = 2x: a network whose feature distance is 4 times the pixels'."""

    def __call__(self, images):
        return 2.0 * images


def test_mse_and_feature_content_by_hand():
    fake = jnp.array([[0.0, 1.0], [0.5, -1.0]])
    target = jnp.array([[1.0, 1.0], [0.0, 0.0]])
    mse = (1.0 + 0.0 + 0.25 + 1.0) / 4
    value, logged = MSEToTarget(3.0)(g_inputs(fake, target))
    assert float(value) == pytest.approx(3 * mse) and float(logged["g_mse"]) == pytest.approx(mse)
    value, logged = FeatureContent(0.5, network=Doubled())(g_inputs(fake, target))
    assert float(logged["g_content"]) == pytest.approx(4 * mse)
    assert float(value) == pytest.approx(2 * mse)
    with pytest.raises(ValueError, match="needs the network"):
        FeatureContent(1.0)
    with pytest.raises(ValueError, match="mse weight must be >= 0"):
        MSEToTarget(-1.0)


def test_classifier_feature_maps_are_its_second_convolution_and_a_value():
    """FeatureMaps = relu(conv2(maxpool(relu(conv1(x))))) of the shipped weights, computed here
    with lax directly; two instances compare and hash equal (a step's static part)."""
    params = classifier.load()
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1, maxval=1)

    def conv(h, layer):
        out = jax.lax.conv_general_dilated(
            h, layer["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jax.nn.relu(out + layer["bias"])

    h = conv(x, params["Conv_0"])
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    expected = conv(h, params["Conv_1"])
    maps = classifier.FeatureMaps()
    assert maps(x).shape == (3, 14, 14, 64)
    np.testing.assert_allclose(maps(x), expected, atol=1e-5)
    assert maps == classifier.FeatureMaps() and hash(maps) == hash(classifier.FeatureMaps())
    grad = jax.grad(lambda images: jnp.sum(maps(images)))(x)
    assert float(jnp.abs(grad).max()) > 0  # G learns through it


# --- data -----------------------------------------------------------------------------------


def test_bicubic_downscaling_and_upscaling():
    """Flat images stay flat; PIL's antialiased bicubic filter agrees with jax.image.resize's
    (another implementation of Keys' kernel, widened when shrinking) to a grey level."""
    flat = np.full((2, 28, 28, 1), 77, np.uint8)
    assert (pairs.downscale(flat, 4) == 77).all() and pairs.downscale(flat, 4).shape == (2, 7, 7, 1)
    assert (pairs.upscale(pairs.downscale(flat, 4), 4) == 77).all()
    rng = np.random.default_rng(0)
    smooth = (255 * rng.uniform(0, 1, (3, 8, 8, 3))).repeat(4, 1).repeat(4, 2).astype(np.uint8)
    small = pairs.downscale(smooth, 4)
    reference = jax.image.resize(smooth.astype(np.float32), (3, 8, 8, 3), "bicubic")
    assert np.abs(small.astype(np.float32) - np.asarray(reference)).max() <= 1.5
    with pytest.raises(ValueError, match="do not divide by the downscaling factor 3"):
        pairs.downscale(flat, 3)
    task = pairs.downscaled_pairs(flat, 2)
    assert task["source"].shape == (2, 14, 14, 1) and task["target"] is flat


def test_crop_folders_draw_random_crops_to_train_and_centre_crops_to_test(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        "train/a.png": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        "train/sub/b.jpg": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
        "test/c.png": rng.integers(0, 256, (21, 17, 3), dtype=np.uint8),
    }
    for name, image in images.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / name, quality=100)
    train = pairs.load_crop_folder(tmp_path, "train", 16, 4, crops=3, seed=1)
    assert train["target"].shape == (6, 16, 16, 3) and train["source"].shape == (6, 4, 4, 3)
    a = images["train/a.png"]
    windows = {a[t : t + 16, x : x + 16].tobytes() for t in range(5) for x in range(15)}
    assert all(crop.tobytes() in windows for crop in train["target"][:3])  # crops of a.png
    again = pairs.load_crop_folder(tmp_path, "train", 16, 4, crops=3, seed=1)
    assert np.array_equal(again["target"], train["target"])  # drawn from the seed
    test = pairs.load_crop_folder(tmp_path, pairs.eval_split(tmp_path), 16, 4)
    assert np.array_equal(test["target"][0], images["test/c.png"][2:18, 0:16])
    assert np.array_equal(test["source"], pairs.downscale(test["target"], 4))
    with pytest.raises(DataError, match=r"c.png is 17x21, smaller than the 20x20 crops"):
        pairs.load_crop_folder(tmp_path, "test", 20, 4)
    with pytest.raises(DataError, match="val is not a directory"):
        pairs.load_crop_folder(tmp_path, "val", 16, 4)


# --- the experiment -------------------------------------------------------------------------


def records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_srgan_on_digits_learns_and_scores_bicubic_beside_it(digits_400, tmp_path):
    """A short run on 400 real digits (7×7 → 28×28): G's MSE halves, its outputs beat bicubic
    upsampling's PSNR and SSIM, and the summary's bicubic_* are pairs.upscale's metrics."""
    workdir = tmp_path / "run"
    srgan.main([
        "--data-dir", str(digits_400), "--workdir", str(workdir), "--epochs", "4",
        "--batch-size", "25", "--g-width", "8", "--g-blocks", "1", "--d-width", "8",
        "--d-stages", "1", "--lr-g", "3e-3", "--lr-d", "3e-4", "--log-every", "0",
    ])  # fmt: skip
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["num_train"] == 400 and summary["num_test"] == 200 and summary["steps"] == 64
    task = pairs.downscaled_pairs(data.load_idx(digits_400, "test")["image"], 4)
    bicubic = metrics.paired_scores(pairs.upscale(task["source"], 4), task["target"])
    for name, value in bicubic.items():  # test_psnr's baseline is bicubic_psnr, ...
        assert summary[f"bicubic_{name.removeprefix('test_')}"] == pytest.approx(value), name
    assert summary["test_psnr"] > summary["bicubic_psnr"] + 0.5, summary
    assert summary["test_ssim"] > summary["bicubic_ssim"], summary
    for name in ("fid_mnist", "label_accuracy", "bicubic_fid_mnist", "bicubic_label_accuracy"):
        assert np.isfinite(summary[name]), name
    logged = records(workdir)
    assert logged[-1]["g_mse"] < 0.5 * logged[0]["g_mse"]
    for name in ("translations.png", "samples/epoch_0004.png"):
        assert (workdir / name).is_file(), name


def test_srgan_trains_on_a_folder_with_the_classifier_content_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(n):
            blobs = (255 * rng.uniform(0, 1, (6, 5, 3))).repeat(4, 0).repeat(4, 1)
            Image.fromarray(blobs.astype(np.uint8)).save(tmp_path / "data" / split / f"{i}.png")
    workdir = tmp_path / "run"
    argv = ["--task", "folder", "--data-dir", str(tmp_path / "data"), "--workdir", str(workdir)]
    srgan.main([
        *argv, "--image-size", "16", "--scale", "2", "--crops-per-image", "4", "--epochs", "2",
        "--batch-size", "8", "--g-width", "8", "--g-blocks", "1", "--d-width", "8",
        "--d-stages", "1",
    ])  # fmt: skip
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["num_train"] == 24 and summary["num_test"] == 2 and summary["steps"] == 6
    assert "fid_mnist" not in summary and np.isfinite(summary["bicubic_psnr"])
    grid = np.asarray(Image.open(workdir / "translations.png"))
    assert grid.ndim == 3 and grid.shape[2] == 3  # colour rows of source, output, target
    capsys.readouterr()
    expect_one_line_error(capsys, srgan.main, [*argv, "--content", "classifier", "--restart",
                                                "--overwrite"], "needs --task mnist")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "folder"], "--task folder needs --data-dir"),
        (["--task", "folder", "--data-dir", "{tmp}/none"], "none/train is not a directory"),
        (["--task", "folder", "--data-dir", "{tmp}/small"], "smaller than the 28x28 crops"),
        (["--scale", "3"], "--scale must be a power of two >= 2, got 3"),
        (["--image-size", "30"], "--image-size 30 does not divide by --scale 4"),
        (["--g-blocks", "0"], "--g-blocks must be >= 1"),
        (["--content-net", "{tmp}"], "--content-net only applies with --content classifier"),
        (["--content", "classifier", "--content-net", "{tmp}"], "holds no mnist_classifier"),
        (["--g-dropout", "0.5"], "--g-dropout is not available"),
        (["--adv-weight", "-1"], "--adv-weight must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "small" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "small" / "train" / "0.png")
    argv = [a.format(tmp=tmp_path) for a in argv]
    expect_one_line_error(capsys, srgan.main, ["--workdir", str(tmp_path / "run"), *argv], message)
    assert not (tmp_path / "run" / "checkpoints").exists()

"""CycleGAN: the image pool, the ResNet generator and its layers, the step's losses by hand, the
experiment on thickened digits, folders and tfds, and its errors."""

import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import adam_step_sizes, expect_one_line_error
from PIL import Image

from jaxgan import ImagePool, data
from jaxgan.experiments import cyclegan
from jaxgan.losses import lsgan_d_loss, lsgan_g_loss
from jaxgan.models import ShiftConv
from jaxgan.trainer.config import make_optimizer
from jaxgan.translation import PatchDiscriminator, ResNetGenerator

# --- the image pool ----------------------------------------------------------------------------


def reference_query(stored: list, images: list, swaps, picks, capacity: int):
    """CycleGAN's ImagePool.query in plain Python, with the given draws."""
    out = []
    for image, swap, pick in zip(images, swaps, picks, strict=True):
        if len(stored) < capacity:
            stored.append(image)
            out.append(image)
        elif swap:
            out.append(stored[pick])
            stored[pick] = image
        else:
            out.append(image)
    return stored, out


def test_the_pool_fills_then_swaps_half_the_time_as_the_reference_code():
    pool = ImagePool.create(5, (2,))
    stored, served = [], 0
    for step in range(6):  # 6 batches of 3 images: filled in the second, swapping after
        images = jnp.arange(3 * 2, dtype=jnp.float32).reshape(3, 2) + 100 * step
        key = jax.random.key(step)
        swap_key, index_key = jax.random.split(key)
        swaps = np.asarray(jax.random.uniform(swap_key, (3,)) < 0.5)
        picks = np.asarray(jax.random.randint(index_key, (3,), 0, 5))
        pool, out = pool.query(images, key)
        stored, expected = reference_query(stored, list(np.asarray(images)), swaps, picks, 5)
        np.testing.assert_array_equal(np.asarray(out), np.stack(expected))
        assert int(pool.count) == len(stored)
        np.testing.assert_array_equal(np.asarray(pool.images)[: len(stored)], np.stack(stored))
        served += int(np.sum(np.asarray(out)[:, 0] < 100 * step))  # older than this batch
    assert int(pool.count) == 5 and served > 0


def test_an_empty_pool_returns_the_newest_and_shapes_must_fit():
    pool = ImagePool.create(0, (2,))
    images = jnp.ones((3, 2))
    same, out = pool.query(images, jax.random.key(0))
    assert out is images and same is pool
    with pytest.raises(ValueError, match=r"images of shape \(3,\) for a pool of \(2,\)"):
        ImagePool.create(4, (2,)).query(jnp.ones((1, 3)), jax.random.key(0))
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        ImagePool.create(-1, (2,))


# --- the networks ------------------------------------------------------------------------------


def parameter_count(module, shape) -> int:
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(shape)))
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables))


def test_the_papers_networks_have_the_reference_codes_sizes():
    # The reference code prints 11.378 M for resnet_9blocks and 2.765 M for the 70x70
    # PatchGAN with instance norm; they count 5,248 and 896 biases before instance norms,
    # which subtract them again (jaxgan's layers have none there).
    assert parameter_count(ResNetGenerator(3, 64, 9), (1, 256, 256, 3)) + 5248 == 11_378_179
    d = PatchDiscriminator(64, 3, norm="instance")
    assert parameter_count(d, (1, 256, 256, 3)) + 896 == 2_764_737


def test_the_generator_keeps_odd_intermediate_sizes_and_refuses_others():
    g = ResNetGenerator(1, 4, 1)
    x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    variables = g.init(jax.random.key(1), x)
    y = g.apply(variables, x)
    assert y.shape == x.shape and float(jnp.abs(y).max()) < 1  # tanh
    assert "batch_stats" not in variables  # instance norm: nothing shared between images
    y0 = g.apply(variables, x[:1])
    np.testing.assert_allclose(y0, y[:1], atol=1e-6)  # each image on its own
    with pytest.raises(ValueError, match="divisible by 4"):
        g.init(jax.random.key(1), jnp.zeros((1, 30, 30, 1)))


def test_reflection_padding_is_pytorchs():
    x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    layer = ShiftConv(4, 3, 1, use_bias=False, pad_mode="reflect")
    padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    reference = nn.Conv(4, (3, 3), padding="VALID", use_bias=False)
    np.testing.assert_allclose(
        layer.apply({"params": {"kernel": kernel}}, x),
        reference.apply({"params": {"kernel": kernel}}, padded),
        atol=1e-5,
    )
    assert padded[0, 0, 1, 0] == np.asarray(x)[0, 1, 0, 0]  # the mirror excludes the edge


def test_thickening_grows_a_point_into_a_square():
    image = np.zeros((1, 7, 7, 1), np.uint8)
    image[0, 3, 3] = 200
    image[0, 0, 6] = 50
    thick = cyclegan.thicken(image, 3)[0, ..., 0]
    assert (thick[2:5, 2:5] == 200).all() and thick[0:2, 5:7].tolist() == [[50, 50]] * 2
    assert thick.sum() == 9 * 200 + 4 * 50


# --- the step ----------------------------------------------------------------------------------


def small_state(**settings):
    config = cyclegan.Config(
        g_width=4, g_blocks=1, d_width=4, d_layers=1, image_size=8, batch_size=4
    )
    rng = np.random.default_rng(0)
    train = {d: rng.integers(0, 256, (8, 8, 8, 1), np.uint8) for d in "ab"}
    defaults = {"loss": cyclegan.LOSSES["lsgan"]}
    state = cyclegan.initial_state(config, train)
    return state.replace(settings=cyclegan.CycleSettings(**{**defaults, **settings})), train


def test_the_step_computes_the_papers_objective():
    state, train = small_state(adv_weight=2.0, cycle_weight=10.0, identity_weight=0.5)
    batch = {d: data.scale_images(jnp.asarray(train[d][:4])) for d in "ab"}

    def run(model, x):
        return model.apply(model.params, x, train=True)[0]

    fake_b, fake_a = run(state.g_ab, batch["a"]), run(state.g_ba, batch["b"])
    d_b_fake, d_a_fake = run(state.d_b, fake_b), run(state.d_a, fake_a)
    adv = lsgan_g_loss(d_b_fake) + lsgan_g_loss(d_a_fake)
    mse = jnp.mean((d_b_fake - 1) ** 2) + jnp.mean((d_a_fake - 1) ** 2)
    np.testing.assert_allclose(2 * adv, mse, rtol=1e-6)  # the paper's G loss, with weight 2
    cycle = jnp.mean(jnp.abs(run(state.g_ba, fake_b) - batch["a"])) + jnp.mean(
        jnp.abs(run(state.g_ab, fake_a) - batch["b"])
    )
    identity = jnp.mean(jnp.abs(run(state.g_ab, batch["b"]) - batch["b"])) + jnp.mean(
        jnp.abs(run(state.g_ba, batch["a"]) - batch["a"])
    )
    # an empty pool hands D this step's fakes, from G before its update
    d_a_loss = lsgan_d_loss(run(state.d_a, batch["a"]), d_a_fake)
    new, metrics = jax.jit(cyclegan.cyclegan_step_body)(state, batch)
    np.testing.assert_allclose(metrics["g_loss"], mse + 10 * (cycle + 0.5 * identity), rtol=1e-5)
    np.testing.assert_allclose(metrics["cycle_l1"], cycle / 2, rtol=1e-5)
    np.testing.assert_allclose(metrics["d_a_loss"], d_a_loss, rtol=1e-5)
    np.testing.assert_allclose(new.pool_a.images[:4], fake_a, rtol=1e-5, atol=1e-6)
    assert int(new.pool_b.count) == 4 and int(new.step) == 1
    for name in ("g_ab", "g_ba", "d_a", "d_b"):  # every network moved
        before, after = (jax.tree.leaves(getattr(s, name).params) for s in (state, new))
        assert any(not np.array_equal(x, y) for x, y in zip(before, after, strict=True))


def test_the_learning_rate_holds_then_decays_to_zero():
    config = cyclegan.Config()  # CycleGAN's: linear, held for half the run
    sizes = adam_step_sizes(make_optimizer(1e-3, config, 10), 10)
    np.testing.assert_allclose(sizes, [1e-3] * 6 + [8e-4, 6e-4, 4e-4, 2e-4], rtol=1e-4)
    cosine = dataclasses.replace(config, lr_schedule="cosine")
    sizes = adam_step_sizes(make_optimizer(1e-3, cosine, 10), 10)
    np.testing.assert_allclose(sizes[:6], 1e-3, rtol=1e-4)
    np.testing.assert_allclose(
        sizes[6:], 5e-4 * (1 + np.cos(np.pi * np.arange(1, 5) / 5)), rtol=1e-4
    )


# --- the experiment ----------------------------------------------------------------------------

SMALL = ["--g-width", "8", "--g-blocks", "2", "--d-width", "8", "--d-layers", "2"]


def test_cyclegan_thickens_digits_better_than_the_identity_keeping_their_class(
    digits_400, tmp_path
):
    workdir = tmp_path / "run"
    argv = ["--workdir", str(workdir), "--data-dir", str(digits_400), "--batch-size", "10"]
    fast = ["--lr-g", "1e-3", "--lr-d", "1e-3", "--lr-hold", "0.8", "--g-blocks", "1"]
    cyclegan.main([*argv, "--epochs", "4", *SMALL, *fast])
    summary = json.loads((workdir / "summary.json").read_text())
    print({k: round(v, 3) for k, v in summary.items() if isinstance(v, float)})
    assert summary["status"] == "completed" and summary["steps"] == 4 * 20
    for way in ("a2b", "b2a"):
        assert summary[f"{way}_l1"] < 0.75 * summary[f"identity_{way}_l1"], summary
    assert summary["label_accuracy"] > 0.8 and summary["test_cycle_l1"] < 0.1
    assert summary["true_a2b_label_accuracy"] > 0.8  # the classifier knows thick digits
    for name in ("translations.png", "loss_curves.png", "progress.gif", "samples/epoch_0004.png"):
        assert (workdir / name).is_file(), name
    grid = np.asarray(Image.open(workdir / "translations.png"))
    assert grid.shape[0] > grid.shape[1] * 0.7  # 6 rows of 8: A, A->B, back, B, B->A, back


def write_folder(root, sizes):
    rng = np.random.default_rng(0)
    for folder, count in (("trainA", 6), ("trainB", 9), ("testA", 2), ("testB", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            image = rng.integers(0, 256, (h, w, 3), np.uint8)
            Image.fromarray(image).save(root / folder / f"{i}.png")


def test_cyclegan_trains_on_folders_of_mixed_sizes_and_refuses_broken_layouts(tmp_path, capsys):
    write_folder(tmp_path / "data", [(20, 24), (16, 16), (30, 18)])
    workdir = tmp_path / "run"
    argv = ["--task", "folder", "--data-dir", str(tmp_path / "data"), "--image-size", "16"]
    cyclegan.main(["--workdir", str(workdir), *argv, "--batch-size", "3", "--epochs", "1", *SMALL])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["num_train"] == 9 and summary["steps"] == 3  # trainA repeated to 9
    assert 0 < summary["test_cycle_l1"] < 1 and "a2b_l1" not in summary  # no truth to score
    capsys.readouterr()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "trainA").mkdir()
    bad = [
        "--task",
        "folder",
        "--data-dir",
        str(tmp_path / "bad"),
        "--workdir",
        str(tmp_path / "b"),
    ]
    expect_one_line_error(capsys, cyclegan.main, bad, "has no trainB/, testA/, testB/")
    for folder in ("trainB", "testA", "testB"):
        (tmp_path / "bad" / folder).mkdir()
    expect_one_line_error(capsys, cyclegan.main, bad, "trainA holds no JPEG or PNG images")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--d-steps", "2"], "--d-steps is not available: this experiment's step does not use it"),
        (["--r1-gamma", "1"], "--r1-gamma is not available"),
        (["--loss", "wgan_gp"], "invalid choice: 'wgan_gp'"),
        (["--image-size", "30"], "--image-size 30 must be a multiple of 4"),
        (["--lr-schedule", "constant"], "--lr-hold holds the rate before a decay"),
        (["--thicken-size", "4"], "--thicken-size must be odd"),
        (["--d-layers", "3"], "--d-layers 3 halves --image-size 28 to an odd size"),
    ],
)
def test_options_the_step_does_not_use_or_cannot_take_are_refused(argv, message, capsys, tmp_path):
    expect_one_line_error(capsys, cyclegan.main, ["--workdir", str(tmp_path / "r"), *argv], message)


def test_the_tfds_path_with_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host: True)  # as on a connected machine
    config = cyclegan.Config(task="tfds", image_size=16)
    with tfds.testing.mock_data(num_examples=5):
        train, test, labels = cyclegan.load(config)
    assert train["a"].shape == train["b"].shape == (5, 16, 16, 3) and labels is None
    assert test["a"].shape == (5, 16, 16, 3) and train["a"].dtype == np.uint8

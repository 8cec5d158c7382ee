"""Stacked MNIST: the mode statistics by hand, PacGAN packing of images along the channels,
the stacked data and their classification against the true digits, a short run whose modes
multiply, and the experiment's errors."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import expect_one_line_error

from jaxgan import data, metrics
from jaxgan.experiments import stacked_mnist
from jaxgan.models import DCGANDiscriminator, pack_channels


def test_stacked_modes_by_hand():
    digits = np.array([[0, 0, 0], [0, 0, 0], [1, 2, 3], [9, 9, 9]])
    p = np.array([0.5, 0.25, 0.25])  # modes 000, 123, 999
    scores = metrics.stacked_modes(digits)
    assert scores["modes"] == 3
    assert scores["kl"] == pytest.approx(float(np.sum(p * np.log(p * 1000))), rel=1e-12)
    every_mode = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    assert metrics.stacked_modes(every_mode) == {"modes": 1000, "kl": 0.0}
    assert metrics.stacked_modes(np.array([[4, 4, 4]] * 7))["kl"] == pytest.approx(math.log(1000))
    assert metrics.stacked_modes(np.array([[1, 2], [2, 1]])) == {"modes": 2, "kl": math.log(50)}
    for bad in (np.array([[1, 10, 2]]), np.array([[-1, 0, 0]]), np.zeros(3, int)):
        with pytest.raises(ValueError, match="class indices"):
            metrics.stacked_modes(bad)


def test_packing_stacks_consecutive_images_along_the_channels():
    x = jnp.arange(6 * 2 * 2 * 3, dtype=jnp.float32).reshape((6, 2, 2, 3))
    packed = pack_channels(x, 2)
    assert packed.shape == (3, 2, 2, 6)
    for j in range(3):  # pack j: image 2j's channels, then image 2j + 1's
        np.testing.assert_array_equal(packed[j, ..., :3], x[2 * j])
        np.testing.assert_array_equal(packed[j, ..., 3:], x[2 * j + 1])
    np.testing.assert_array_equal(pack_channels(x, 1), x)

    d = DCGANDiscriminator(32, width=4, pack=2)
    images = jax.random.normal(jax.random.key(0), (6, 32, 32, 3))
    variables = d.init(jax.random.key(1), images, train=False)
    assert variables["params"]["Conv_0"]["kernel"].shape == (4, 4, 6, 4)  # 2 x 3 channels in
    logits = d.apply(variables, images, train=False)
    assert logits.shape == (3,)
    # a pack's logit depends on its own two images only
    changed = images.at[2].set(0.0)
    moved = d.apply(variables, changed, train=False) != logits
    assert moved.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="does not split into packs of 2"):
        d.apply(variables, images[:5], train=False)


def test_stacks_hold_the_drawn_digits_and_the_classifier_reads_them(real_mnist):
    test_set = data.load_idx(real_mnist, "test", rows=slice(0, 2000))
    stacks = stacked_mnist.draw_stacks(3000, 2000, seed=0)
    images = stacked_mnist.stack_digits(test_set["image"], stacks)
    assert images.shape == (3000, 32, 32, 3) and images.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(
            images[:, 2:30, 2:30, c], test_set["image"][stacks[:, c], ..., 0]
        )
    assert not images[:, :2].any() and not images[:, :, 30:].any()  # the padding stays black
    found = stacked_mnist.channel_digits(images[:, 2:30, 2:30])
    truth = test_set["label"][stacks]
    accuracy = (found == truth).mean(axis=0)
    assert (accuracy > 0.97).all(), accuracy  # the shipped classifier: 98.7 % on the test set
    assert metrics.stacked_modes(truth)["modes"] > 900  # 3,000 draws of 1,000 modes: 950 expected


def test_a_short_run_multiplies_its_modes(real_mnist, tmp_path):
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(real_mnist), "--workdir", str(workdir), "--num-train", "6400"]
    argv += ["--epochs", "2", "--eval-every", "1", "--eval-samples", "1000"]
    stacked_mnist.main([*argv, "--g-width", "8", "--d-width", "8"])
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "modes" in r]
    assert [r["step"] for r in scored] == [100, 200]
    first, last = scored[0], scored[1]
    assert last["modes"] >= 10 * first["modes"] and last["kl"] < first["kl"] - 1, (first, last)
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["modes"] == last["modes"] and summary["num_train"] == 6400
    # 1,000 real stacks: 1000 (1 - 1/e) = 632 modes expected, KL about 0.5
    assert 580 < summary["real_modes"] < 680 and 0.4 < summary["real_kl"] < 0.8, summary
    for name in ("real_vs_fake.png", "loss_curves.png", "progress.gif", "samples/epoch_0002.png"):
        assert (workdir / name).stat().st_size > 0, name


def test_stacked_mnist_usage_errors(capsys, tmp_path):
    run = ["--workdir", str(tmp_path / "run")]
    for argv, message in [
        (["--pack", "3"], "--batch-size 64 must be a multiple of --pack 3"),
        (["--pack", "0"], "--pack must be >= 1, got 0"),
        (["--num-train", "0"], "--num-train must be >= 1, got 0"),
        (["--conditional", "acgan"], "invalid choice: 'acgan'"),
        (["--d-spectral-norm"], "--d-spectral-norm is not available"),
    ]:
        expect_one_line_error(capsys, stacked_mnist.main, [*run, *argv], message)
    assert not (tmp_path / "run").exists()


def test_a_missing_test_split_says_how_to_train_without_evaluation(capsys, tmp_path, tiny_mnist):
    (tiny_mnist / "t10k-images-idx3-ubyte.gz").unlink()
    argv = ["--data-dir", str(tiny_mnist), "--workdir", str(tmp_path / "run")]
    message = "has no t10k-images-idx3-ubyte[.gz]; point --data-dir at a directory with the IDX "
    message += "files; or pass --eval-samples 0 to skip the evaluation"
    expect_one_line_error(capsys, stacked_mnist.main, argv, message)
    assert not (tmp_path / "run").exists()

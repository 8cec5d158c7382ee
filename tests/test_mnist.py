"""The MNIST main job: IDX validation, the tfds path, outputs, presets, generate, learning."""

import gzip
import json
import socket

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import expect_one_line_error, idx_bytes

from jaxgan import data, evaluate, generate
from jaxgan.experiments import mnist
from jaxgan.state import sample_latent
from jaxgan.trainer.config import init_state

TINY = ["--epochs", "2", "--batch-size", "50", "--g-hidden", "32", "--d-hidden", "32"]
TINY += ["--eval-samples", "50"]
EVAL_KEYS = ("fid_mnist", "kid_mnist", "precision", "recall", "density", "coverage")
EVAL_KEYS += ("classes_covered", "class_kl", "mnist_score", "num_fake", "num_real")


def run_expecting_error(capsys, argv, message):
    expect_one_line_error(capsys, mnist.main, argv, message)


def test_real_mnist_loads_with_true_counts(real_mnist):
    train, test = data.load_idx(real_mnist, "train"), data.load_idx(real_mnist, "test")
    assert train["image"].shape == (5000, 28, 28, 1) and train["image"].dtype == np.uint8
    assert test["image"].shape == (10000, 28, 28, 1)
    assert np.bincount(train["label"]).tolist() == [500] * 10


def test_idx_reader_round_trip_plain_and_gzip(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))  # plain
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    loaded = data.load_idx(tmp_path)
    np.testing.assert_array_equal(loaded["image"][..., 0], images)
    assert loaded["label"].tolist() == [3, 7]
    assert data.idx_size(tmp_path) == 2


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_reads_only_the_rows_asked_for(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    for stem, array in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)]:
        raw = idx_bytes(array)
        if compress:
            (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (tmp_path / stem).write_bytes(raw)
    part = data.load_idx(tmp_path, rows=slice(3, 7))
    np.testing.assert_array_equal(part["image"][..., 0], images[3:7])
    assert part["label"].tolist() == [3, 4, 5, 6]
    assert data.load_idx(tmp_path, rows=slice(8, 12))["label"].tolist() == [8, 9]  # clipped
    assert len(data.load_idx(tmp_path, rows=slice(0, 0))["image"]) == 0


def corrupt(directory, stem, content: bytes):
    (directory / f"{stem}.gz").write_bytes(content)


BAD_DATA = [
    ("missing", lambda d: (d / "train-images-idx3-ubyte.gz").unlink(), "has no train-images"),
    (
        "truncated",
        lambda d: corrupt(
            d, "train-images-idx3-ubyte", gzip.compress(idx_bytes(np.zeros((200, 28, 28)))[:-100])
        ),
        "is truncated",
    ),
    (
        "bad gzip",
        lambda d: corrupt(d, "train-labels-idx1-ubyte", b"\x1f\x8b not gzip at all"),
        "not a readable gzip file",
    ),
    (
        "bad magic",
        lambda d: corrupt(
            d, "train-images-idx3-ubyte", gzip.compress(b"\x00\x00\x0d\x03" + b"\x00" * 40)
        ),
        "is not an IDX file",
    ),
    (
        "labels as images",
        lambda d: corrupt(d, "train-images-idx3-ubyte", gzip.compress(idx_bytes(np.zeros(200)))),
        "is not an IDX file of 3-D",
    ),
    (
        "count mismatch",
        lambda d: corrupt(d, "train-labels-idx1-ubyte", gzip.compress(idx_bytes(np.zeros(150)))),
        "200 images but 150 labels",
    ),
    (
        "wrong size",
        lambda d: corrupt(
            d, "train-images-idx3-ubyte", gzip.compress(idx_bytes(np.zeros((200, 32, 32))))
        ),
        "expected (28, 28, 1) images",
    ),
    (
        "no test split",
        lambda d: (d / "t10k-images-idx3-ubyte.gz").unlink(),
        "has no t10k-images-idx3-ubyte[.gz]; point --data-dir at a directory with the IDX files; "
        "or pass --eval-samples 0 to skip the evaluation",
    ),
]


@pytest.mark.parametrize(("name", "damage", "message"), BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_idx_data_is_one_clear_line(capsys, tmp_path, tiny_mnist, name, damage, message):
    damage(tiny_mnist)
    workdir = tmp_path / "run"
    run_expecting_error(capsys, ["--data-dir", str(tiny_mnist), "--workdir", str(workdir)], message)
    assert not workdir.exists()


def test_tfds_without_network_fails_fast_and_names_data_dir(capsys, tmp_path, monkeypatch):
    """A dataset missing from the tfds data dir, and no network: one line, no download tries."""

    def no_network(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    def must_not_download(*args, **kwargs):
        raise AssertionError("tfds.load was called although the network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(tfds, "load", must_not_download)
    argv = ["--workdir", str(tmp_path / "run"), "--tfds-data-dir", str(tmp_path / "tfds")]
    run_expecting_error(capsys, argv, "no network (storage.googleapis.com is unreachable)")


def test_tfds_download_failure_names_data_dir(capsys, tmp_path, monkeypatch):
    def failing_download(*args, **kwargs):
        raise ConnectionError("Max retries exceeded with url: /cvdf-datasets/mnist")

    monkeypatch.setattr(data, "_reachable", lambda host: True)
    monkeypatch.setattr(tfds, "load", failing_download)
    argv = ["--workdir", str(tmp_path / "run"), "--tfds-data-dir", str(tmp_path / "tfds")]
    run_expecting_error(capsys, argv, "could not load 'mnist' (Max retries exceeded")


def test_tfds_path_with_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host: True)  # as on a connected machine
    workdir = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=120):
        mnist.main(["--workdir", str(workdir), *TINY])
        mnist.main(["--dataset", "fashion_mnist", "--workdir", str(tmp_path / "f"), *TINY])
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["num_train"] == 120 and summary["steps"] == 4
    assert summary["num_real"] == 120 and summary["num_fake"] == 50  # tfds' test split
    fashion = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert "fid_mnist" not in fashion  # the classifier knows digits only


def test_tiny_run_writes_every_output_and_generate_reads_it(tmp_path, tiny_mnist):
    workdir = tmp_path / "run"
    options = ["--log-every", "2", "--eval-every", "1", *TINY]
    mnist.main(["--data-dir", str(tiny_mnist), "--workdir", str(workdir), *options])
    for name in (
        "fid_curve.png",
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "loss_curves.png",
        "progress.gif",
        "real_vs_fake.png",
        "samples/real.png",
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
    ):
        assert (workdir / name).stat().st_size > 0, name
    assert list((workdir / "tb").iterdir()) and list((workdir / "checkpoints").iterdir())
    summary = json.loads((workdir / "summary.json").read_text())
    for key in (
        "epochs",
        "steps",
        "wall_s",
        "train_steps_per_s",
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
    ):
        assert summary[key] is not None, key
    assert summary["steps"] == 8 and summary["status"] == "completed"
    log = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6, 8]
    assert [r["step"] for r in log if "fid_mnist" in r] == [4, 8]  # every epoch's end
    assert summary["num_fake"] == 50 and summary["num_real"] == 100  # the test split's size
    # jaxgan.evaluate scores the same evaluation noise: it reproduces the summary's numbers.
    evaluate.main(["--workdir", str(workdir), "--num", "50"])
    scores = json.loads((workdir / "eval.json").read_text())
    assert scores["step"] == 8
    assert {k: scores[k] for k in EVAL_KEYS} == pytest.approx({k: summary[k] for k in EVAL_KEYS})

    out, npz = tmp_path / "new" / "folder" / "g.png", tmp_path / "g.npz"  # folders made
    generate.main(["--workdir", str(workdir), "--num", "10", "--out", str(out), "--npz", str(npz)])
    samples = np.load(npz)
    assert samples["x"].shape == (10, 28, 28, 1) and samples["images"].dtype == np.uint8
    assert -1 <= samples["x"].min() and samples["x"].max() <= 1 and out.stat().st_size > 0
    again = tmp_path / "again.npz"
    generate.main(["--workdir", str(workdir), "--num", "10", "--npz", str(again)])
    np.testing.assert_array_equal(np.load(again)["x"], samples["x"])  # same seed, same samples
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--workdir", str(workdir), "--label", "3", "--npz", str(again)])
    assert exit_info.value.code == 2  # an unconditional run draws no classes


def test_generate_errors(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    for args, message in (
        (["--num", "4", "--out", "x.png"], "config.json is missing"),
        (["--num", "0", "--out", "x.png"], "--num must be >= 1"),
        ([], "nothing to write"),
        (["--out", "x.txt"], "--out x.txt: the file is written as PNG; give a name ending in .png"),
        (["--npz", "samples"], "give a name ending in .npz"),
        (["--out", str(tmp_path / "a_file" / "x.png")], "a_file is a file, not a folder"),
        (["--out", str(tmp_path)], "ending in .png"),
    ):
        expect_one_line_error(capsys, generate.main, ["--workdir", str(tmp_path), *args], message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written


def test_presets_set_defaults_that_explicit_options_override(tmp_path, tiny_mnist):
    common = ["--data-dir", str(tiny_mnist), *TINY]
    mnist.main([*common, "--preset", "tutorial", "--workdir", str(tmp_path / "a")])
    tutorial = json.loads((tmp_path / "a" / "config.json").read_text())
    assert tutorial["beta1"] == 0.9 and tutorial["ema_decay"] == 0.0
    mnist.main(
        [*common, "--preset", "tutorial", "--beta1", "0.7", "--workdir", str(tmp_path / "b")]
    )
    assert json.loads((tmp_path / "b" / "config.json").read_text())["beta1"] == 0.7
    mnist.main([*common, "--workdir", str(tmp_path / "c")])
    default = json.loads((tmp_path / "c" / "config.json").read_text())
    assert default["preset"] == "default" and default["ema_decay"] == mnist.Config().ema_decay


def test_training_on_real_mnist_moves_samples_towards_the_data(tmp_path, real_mnist):
    """After 4 epochs the generated mean image is far closer to the real mean image."""
    workdir = tmp_path / "run"
    options = ["--epochs", "4", "--eval-samples", "0"]
    mnist.main(["--data-dir", str(real_mnist), "--workdir", str(workdir), *options])
    real = data.scale_images(data.load_idx(real_mnist)["image"]).mean(0)
    config, state = generate.load_run(workdir)
    z = sample_latent(jax.random.key(1), 1000, state.config)
    trained = generate.sample(state, z).mean(0)
    untrained = init_state(config, *mnist.build_models(config), 1)  # the run's initial weights
    initial = generate.sample(untrained, z).mean(0)
    assert np.abs(trained - real).mean() < 0.5 * np.abs(initial - real).mean()


def test_progress_gif_keeps_at_most_50_evenly_spaced_frames_and_the_last(tmp_path):
    from PIL import Image

    from jaxgan import viz

    frames = []
    for i in range(120):
        frames.append(tmp_path / f"epoch_{i:04d}.png")
        Image.fromarray(np.full((8, 8), i * 2, np.uint8)).save(frames[-1])
    viz.save_gif(frames, tmp_path / "p.gif")
    gif = Image.open(tmp_path / "p.gif")
    assert gif.n_frames == 50 and gif.size == (4, 4)
    gif.seek(49)
    assert np.asarray(gif.convert("L"))[0, 0] == 238  # the last frame, value 119 * 2


class TinyDigits(tfds.core.GeneratorBasedBuilder):
    """A 30-example tfds dataset built on the spot (no download), for the row slicing."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(30):
            yield i, {"image": np.full((28, 28, 1), i, np.uint8), "label": i % 10}


def test_tfds_loads_only_the_rows_asked_for(tmp_path):
    TinyDigits(data_dir=str(tmp_path)).download_and_prepare()
    name = TinyDigits.name
    assert data.tfds_size(name, "train", str(tmp_path)) == 30
    whole = data.load_tfds(name, "train", str(tmp_path))
    assert sorted(whole["image"][:, 0, 0, 0].tolist()) == list(range(30))
    part = data.load_tfds(name, "train", str(tmp_path), rows=slice(10, 20))
    for key in ("image", "label"):  # rows 10-19 in tfds' stored (shuffled) order
        np.testing.assert_array_equal(part[key], whole[key][10:20])


def test_torch_init_draws_the_pytorch_linear_layers_uniforms():
    """PyTorch's nn.Linear: kernel and bias uniform in +-1/sqrt(fan_in) (variance 1/(3 fan_in));
    flax's default: zero biases, LeCun normal kernel (variance 1/fan_in)."""
    config = mnist.Config(preset="tutorial", **mnist.TUTORIAL)
    _, discriminator = mnist.build_models(config)
    params = discriminator.init(jax.random.key(0), np.zeros((2, 28, 28, 1)), train=False)
    first = params["params"]["Dense_0"]
    bound = 1 / np.sqrt(784)
    assert np.abs(first["kernel"]).max() <= bound and np.abs(first["bias"]).max() <= bound
    assert np.var(first["kernel"]) == pytest.approx(bound**2 / 3, rel=0.02)
    assert np.abs(first["bias"]).max() > 0.9 * bound  # uniform biases, not zeros
    _, flax_d = mnist.build_models(mnist.Config())
    flax_first = flax_d.init(jax.random.key(0), np.zeros((2, 28, 28, 1)), train=False)
    assert np.all(flax_first["params"]["Dense_0"]["bias"] == 0)
    assert np.var(flax_first["params"]["Dense_0"]["kernel"]) == pytest.approx(1 / 784, rel=0.05)


def test_a_relative_data_dir_is_stored_absolute_and_another_spelling_resumes(
    tmp_path, tiny_mnist, monkeypatch, capsys
):
    """Trained from one directory with a relative --data-dir; resumed from another with
    another spelling of it; sampled and evaluated from a third."""
    monkeypatch.chdir(tiny_mnist.parent)
    workdir = tmp_path / "run"
    common = ["--workdir", str(workdir), "--eval-samples", "10", "--batch-size", "50"]
    mnist.main([*common, "--data-dir", "idx", "--epochs", "1"])
    recorded = json.loads((workdir / "config.json").read_text())["data_dir"]
    assert recorded == str(tiny_mnist)
    monkeypatch.chdir(tmp_path)
    mnist.main([*common, "--data-dir", str(tiny_mnist / ".." / "idx"), "--epochs", "2"])
    assert "resuming from step 4 (epoch 1)" in capsys.readouterr().err
    monkeypatch.chdir("/")
    generate.main(["--workdir", str(workdir), "--num", "4", "--out", str(tmp_path / "g.png")])
    evaluate.main(["--workdir", str(workdir), "--num", "10"])
    assert json.loads((workdir / "eval.json").read_text())["num_fake"] == 10


def test_keep_best_by_fid_keeps_the_evaluations_best_checkpoint(tmp_path, tiny_mnist, capsys):
    workdir = tmp_path / "run"
    options = ["--epochs", "4", "--eval-every", "1", "--checkpoint-every", "1"]
    options += ["--keep-checkpoints", "1", "--keep-best", "fid_mnist:min", *TINY[2:]]
    mnist.main(["--data-dir", str(tiny_mnist), "--workdir", str(workdir), *options])
    log = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    best = min(log, key=lambda r: r["fid_mnist"])["step"]
    kept = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir())
    assert kept == sorted({best, 16})
    capsys.readouterr()
    for argv, message in (
        (["--keep-best", "fid_mnist:min"], "add --eval-every 1"),
        (["--keep-best", "fid_mnist:min", "--eval-every", "1", "--checkpoint-every-steps", "5"],
         "(and no --checkpoint-every-steps)"),
        (["--keep-best", "recall:max", "--eval-every", "1", "--eval-samples", "0"],
         "--eval-samples > 0"),
        (["--keep-best", "label_accuracy:max", "--eval-every", "1"], "a --conditional run"),
        (["--keep-best", "fid:min"], "NAME one of d_loss, "),
    ):  # fmt: skip
        run_expecting_error(capsys, ["--workdir", str(tmp_path / "other"), *argv], message)
    assert not (tmp_path / "other").exists()

"""The MNIST evaluation classifier and ``jaxgan.evaluate``: the shipped weights' accuracy, known
values on real digits, the training command, and the command line's errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_idx_dataset

from jaxgan import classifier, data, evaluate
from jaxgan.experiments import mnist_classifier


def test_shipped_classifier_record_names_its_command_and_accuracy():
    record = classifier.record()
    assert record["command"].startswith("python -m jaxgan.experiments.mnist_classifier")
    assert record["num_train"] == 5000 and record["num_test"] == 10_000
    assert record["test_accuracy"] >= 0.97


def test_shipped_classifier_is_at_least_97_percent_accurate_on_the_test_set(real_mnist):
    test = data.load_idx(real_mnist, "test")
    _, probs = classifier.features_and_probs(test["image"])
    accuracy = np.mean(probs.argmax(-1) == test["label"])
    assert accuracy >= 0.97
    assert accuracy == pytest.approx(classifier.record()["test_accuracy"], abs=1e-3)


@pytest.fixture(scope="module")
def real_halves_scores(real_mnist):
    return evaluate.evaluate_real_halves(str(real_mnist))


def test_two_halves_of_the_test_set_score_as_near_perfect(real_halves_scores):
    scores = real_halves_scores
    assert scores["num_fake"] == scores["num_real"] == 5000
    # Measured for split seeds 0-2: FID 0.64-1.16, KID -0.04-0.03, precision/recall 0.89-0.91.
    assert scores["fid_mnist"] < 2.0 and abs(scores["kid_mnist"]) < 0.1
    assert scores["precision"] > 0.85 and scores["recall"] > 0.85
    assert 0.9 < scores["density"] < 1.1 and scores["coverage"] > 0.95
    assert scores["classes_covered"] == 10 and scores["class_kl"] < 0.01
    assert scores["mnist_score"] > 9.5


def test_noise_images_score_far_worse_than_real_digits(real_mnist, real_halves_scores):
    real = data.load_idx(real_mnist, "test")["image"]
    noise = np.random.default_rng(0).integers(0, 256, (2000, 28, 28, 1), dtype=np.uint8)
    scores = evaluate.MNISTEvaluator(real)(noise)
    assert scores["fid_mnist"] > 100 * real_halves_scores["fid_mnist"]
    assert scores["precision"] < 0.05 and scores["coverage"] < 0.05
    assert scores["num_fake"] == 2000 and scores["num_real"] == 10_000


def test_label_accuracy_of_real_digits_is_the_classifiers_accuracy(real_mnist):
    """Real test digits 'asked for' as their own class score the classifier's accuracy; asked
    for the next class, almost nothing."""
    test = data.load_idx(real_mnist, "test")
    images, labels = test["image"][:2000], test["label"][:2000]
    evaluator = evaluate.MNISTEvaluator(images[:1000])
    right = evaluator(images[1000:], labels[1000:])
    wrong = evaluator(images[1000:], (labels[1000:] + 1) % 10)
    assert right["label_accuracy"] >= 0.97 and right["label_accuracy_min"] >= 0.85
    assert wrong["label_accuracy"] < 0.03


def test_classifier_rejects_images_of_the_wrong_shape():
    with pytest.raises(data.DataError, match=r"uint8 images of shape \[N, 28, 28, 1\]"):
        classifier.features_and_probs(np.zeros((4, 32, 32, 1), np.uint8))


def _blobs(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Easy 'digits' on noise: class c is a bright 3×3 square in cell c of a 2×5 grid whose
    cells are 10 × 5 pixels apart, so the training shifts (≤ 2 pixels) keep classes apart."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, num)
    images = rng.integers(0, 60, (num, 28, 28), dtype=np.uint8)
    for image, c in zip(images, labels, strict=True):
        row, col = 6 + 10 * (c // 5), 3 + 5 * (c % 5)
        image[row : row + 3, col : col + 3] = 255
    return images, labels


def test_training_command_learns_and_writes_loadable_weights(tmp_path, capsys):
    images, labels = _blobs(400, seed=0)
    data_dir = write_idx_dataset(tmp_path / "blobs", images, labels)
    out = tmp_path / "clf"
    options = ["--epochs", "3", "--batch-size", "20"]
    mnist_classifier.main(["--data-dir", str(data_dir), "--out", str(out), *options])
    record = classifier.record(out)
    assert record["test_accuracy"] > 0.9  # chance is 0.1
    assert record["num_train"] == 400 and record["num_test"] == 200 and record["epochs"] == 3
    assert "--epochs 3 --batch-size 20" in record["command"]
    _, probs = classifier.features_and_probs(images[:200, ..., None], classifier.load(out))
    assert np.mean(probs.argmax(-1) == labels[:200]) == pytest.approx(record["test_accuracy"])
    assert "test accuracy" in capsys.readouterr().out


def test_load_test_images_from_tfds(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "_reachable", lambda host: True)
    with tfds.testing.mock_data(num_examples=30):
        images = evaluate.load_test_images(None)
    assert images.shape == (30, 28, 28, 1) and images.dtype == np.uint8


def test_evaluate_errors_are_one_line(tmp_path, capsys):
    proc = subprocess.run(  # once as a user runs it: one line, no traceback
        [sys.executable, "-m", "jaxgan.evaluate", "--workdir", "does-not-exist"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "python -m jaxgan.evaluate: error: does-not-exist/config.json is missing or not a "
        "jaxgan run config ([Errno 2] No such file or directory: "
        "'does-not-exist/config.json')"
    ]
    for args, message in [
        ([], "give either --workdir DIR or --real-halves"),
        (["--workdir", "w", "--real-halves"], "give either --workdir DIR or --real-halves"),
        (["--workdir", "w", "--num", "5"], "--num must be >= 10"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            evaluate.main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_evaluate_refuses_runs_that_are_not_mnist(tmp_path, capsys):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = {"experiment": "mnist", "dataset": "fashion_mnist"}
    (workdir / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--workdir", str(workdir)])
    assert exit_info.value.code == 2
    assert "holds a mnist run on fashion_mnist" in capsys.readouterr().err

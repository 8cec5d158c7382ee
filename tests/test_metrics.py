"""Sample-quality measurements against hand-worked values."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from jaxgan import data, metrics


def test_moments_of_a_symmetric_two_point_set():
    stats = metrics.moments(np.array([-1.0, 1.0] * 50) * 2 + 3)
    assert stats == pytest.approx({"mean": 3.0, "std": 2.0, "skew": 0.0, "kurtosis": -2.0})


def test_moments_of_normal_samples():
    x = np.random.default_rng(0).normal(4.0, 1.25, 200_000)
    stats = metrics.moments(x)
    assert stats["mean"] == pytest.approx(4.0, abs=0.01)
    assert stats["std"] == pytest.approx(1.25, abs=0.01)
    assert abs(stats["skew"]) < 0.02 and abs(stats["kurtosis"]) < 0.05


def test_w1_is_zero_at_the_quantiles_and_equals_a_shift():
    n = 1000
    q = np.array([NormalDist(4.0, 1.25).inv_cdf((i + 0.5) / n) for i in range(n)])
    rng = np.random.default_rng(0)
    assert metrics.w1_to_normal(rng.permutation(q), 4.0, 1.25) == pytest.approx(0.0, abs=1e-9)
    assert metrics.w1_to_normal(q + 0.3, 4.0, 1.25) == pytest.approx(0.3)


def test_mode_statistics_hand_count():
    modes, sigma = data.mixture_modes("ring")
    samples = np.array(
        [
            modes[0],
            modes[0],
            modes[0],  # three exactly on mode 0
            modes[1] + [0.02, 0.0],  # within 3 sigma = 0.03 of mode 1
            modes[2] + [0.05, 0.0],  # nearest mode 2, but too far: not high quality
            [0.0, 0.0],
        ]  # far from every mode
    )
    stats = metrics.mode_statistics(samples, modes, sigma)
    assert stats["modes"] == 2 and stats["num_modes"] == 8
    assert stats["hq_fraction"] == pytest.approx(4 / 6)
    # histogram over modes (3/4, 1/4) against uniform 1/8
    assert stats["reverse_kl"] == pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2))


def test_mode_statistics_of_real_samples_capture_everything():
    for name, num_modes in (("ring", 8), ("grid", 25)):
        modes, sigma = data.mixture_modes(name)
        assert len(modes) == num_modes
        stats = metrics.mode_statistics(
            data.gaussian_mixture(name, 2500, seed=0)["x"], modes, sigma
        )
        assert stats["modes"] == num_modes
        assert stats["hq_fraction"] > 0.98  # a 2-D Gaussian puts 98.9 % within 3 sigma
        assert stats["reverse_kl"] < 0.02


def test_unknown_mixture():
    with pytest.raises(ValueError, match="ring"):
        data.mixture_modes("spiral")


# --- Feature-set metrics against closed forms and hand-worked examples.


def test_frechet_distance_of_1d_gaussians_is_w2_squared():
    # N(0, 1) vs N(1, 4): (0 - 1)² + (1 - 2)² = 2.
    assert metrics.frechet_distance(0.0, 1.0, 1.0, 4.0) == pytest.approx(2.0, abs=1e-12)


def test_frechet_distance_of_gaussians_with_shared_eigenvectors_matches_closed_form():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))  # covariances are not diagonal
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    sigma1, sigma2 = rotation @ np.diag(a) @ rotation.T, rotation @ np.diag(b) @ rotation.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_non_commuting_covariances():
    import scipy.linalg

    rng = np.random.default_rng(1)
    m1, m2 = rng.standard_normal((2, 5, 5))
    sigma1, sigma2 = m1 @ m1.T, m2 @ m2.T + np.eye(5)
    mu1, mu2 = rng.standard_normal((2, 5))
    root = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * root)
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_rank_deficient():
    rng = np.random.default_rng(2)
    full = rng.standard_normal((300, 32))
    assert abs(metrics.frechet_distance_of(full, full)) < 1e-10
    # Rank 4 of 32: round-off eigenvalues ~1e-14 of the 28 null directions still add their
    # square roots, so the floor is ~sqrt(eps) relative to the total variance (not eps).
    low_rank = full[:, :4] @ rng.standard_normal((4, 32))
    variance = np.trace(np.cov(low_rank, rowvar=False))
    assert abs(metrics.frechet_distance_of(low_rank, low_rank)) < 1e-7 * variance


def test_kid_is_the_unbiased_polynomial_mmd_worked_by_hand():
    # d = 1, k(a, b) = (ab + 1)³; x = {0, 1}, y = {2, 0}.
    # Within x: k(0, 1) = 1 -> 1; within y: k(2, 0) = 1 -> 1;
    # across: k(0,2) = 1, k(0,0) = 1, k(1,2) = 27, k(1,0) = 1 -> mean 7.5. MMD² = 1 + 1 - 15.
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [0.0]])
    mean, std = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=2)
    assert mean == pytest.approx(-13.0) and std == pytest.approx(0.0)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 2000, 16))
    same, _ = metrics.kernel_inception_distance(x, y, num_subsets=20, subset_size=500)
    shifted, _ = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=20, subset_size=500)
    assert abs(same) < 0.01 < 0.1 < shifted


# Real points 0, 1, 2, 10 (1st-neighbour radii 1, 1, 1, 8); fakes 0.5, 1.5, 30, 31 (radii 1 each).
REAL = np.array([[0.0], [1.0], [2.0], [10.0]])
FAKE = np.array([[0.5], [1.5], [30.0], [31.0]])


def test_knn_radii_skip_the_point_itself():
    np.testing.assert_array_equal(metrics.knn_radii(REAL, 1), [1, 1, 1, 8])
    np.testing.assert_array_equal(metrics.knn_radii(REAL, 3), [10, 9, 8, 10])


def test_precision_recall_worked_by_hand():
    # Precision: 0.5 and 1.5 lie in real balls, 30 and 31 in none (10's ball is [2, 18]) -> 1/2.
    # Recall: 0, 1, 2 lie within 1 of a fake; 10 does not -> 3/4.
    result = metrics.precision_recall(REAL, FAKE, k=1)
    assert result == {"precision": 0.5, "recall": 0.75}


def test_precision_and_recall_of_identical_sets_are_one():
    x = np.random.default_rng(4).standard_normal((500, 8))
    assert metrics.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}


def test_density_coverage_worked_by_hand():
    # Real balls: [-1, 1], [0, 2], [1, 3], [2, 18]. 0.5 lies in two, 1.5 in two, 30/31 in none:
    # density = 4 / (k=1 * 4 fakes) = 1. Nearest fakes: 0 -> 0.5, 1 -> 0.5, 2 -> 0.5 (covered);
    # 10 -> 8.5 > 8 (not covered): coverage 3/4.
    assert metrics.density_coverage(REAL, FAKE, k=1) == {"density": 1.0, "coverage": 0.75}


def test_density_coverage_reward_fakes_on_the_data_and_ignore_far_outliers():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((2, 1000, 4))
    matched = metrics.density_coverage(real, fake)
    assert 0.8 < matched["density"] < 1.2 and matched["coverage"] > 0.9
    outliers = metrics.density_coverage(real, fake + 100.0)
    assert outliers == {"density": 0.0, "coverage": 0.0}


def test_class_statistics_hand_count():
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 2])  # histogram 0.5, 0.4, 0.1
    probs = np.eye(10)[labels]
    result = metrics.class_statistics(probs, min_fraction=0.2)
    assert result["classes_covered"] == 2  # class 2's 10 % is below 20 %
    assert result["class_kl"] == pytest.approx(0.5 * np.log(5) + 0.4 * np.log(4))
    # One-hot predictions: E KL(p(y|x) || p(y)) is the entropy of the histogram.
    entropy = -(0.5 * np.log(0.5) + 0.4 * np.log(0.4) + 0.1 * np.log(0.1))
    assert result["classifier_score"] == pytest.approx(np.exp(entropy))


def test_classifier_score_is_one_when_predictions_carry_no_information():
    result = metrics.class_statistics(np.full((50, 10), 0.1))
    assert result["classifier_score"] == pytest.approx(1.0)
    assert result["classes_covered"] == 1  # argmax ties all go to class 0

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

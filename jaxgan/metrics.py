"""Sample-quality measurements: moments and Wasserstein-1 for 1-D samples, mode statistics for
2-D mixtures (the protocol of VEEGAN / PacGAN).

Pure numpy on host arrays: evaluation runs once per log point, on a few thousand samples.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def moments(samples: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, skewness and *excess* kurtosis of 1-D samples."""
    x = np.asarray(samples, np.float64).ravel()
    mean, std = x.mean(), x.std()
    z = (x - mean) / std
    return {
        "mean": float(mean),
        "std": float(std),
        "skew": float(np.mean(z**3)),
        "kurtosis": float(np.mean(z**4) - 3.0),
    }


def w1_to_normal(samples: np.ndarray, mean: float, std: float) -> float:
    """Wasserstein-1 distance between the samples' empirical law and N(mean, std²).

    In 1-D, W1 is the L1 distance between quantile functions: the i-th smallest of n samples is
    compared with the normal quantile at (i - 1/2) / n.
    """
    x = np.sort(np.asarray(samples, np.float64).ravel())
    n = x.size
    dist = NormalDist(mean, std)
    quantiles = np.array([dist.inv_cdf((i + 0.5) / n) for i in range(n)])
    return float(np.mean(np.abs(x - quantiles)))


# The values of mode_statistics that measure quality (num_modes is the mixture's own).
MODE_STATISTICS = ("modes", "hq_fraction", "reverse_kl")


def mode_statistics(samples: np.ndarray, modes: np.ndarray, sigma: float) -> dict[str, float]:
    """Mode coverage of samples from a mixture of equal-weight isotropic Gaussians.

    The protocol of Srivastava et al. 2017 (VEEGAN), used by PacGAN (Lin et al. 2018): a sample
    is *high quality* if it lies within 3 sigma of its nearest mode; a mode is *captured* if at
    least one high-quality sample is nearest to it; the reverse KL is KL(p || uniform) where p is
    the histogram of the high-quality samples over their nearest modes (0 when all modes are
    hit equally, log(num_modes) when one mode gets them all).

    Args:
      samples: ``[n, d]`` generated samples.
      modes: ``[m, d]`` mode centres.
      sigma: the components' standard deviation.

    Returns:
      ``modes`` (captured count), ``num_modes``, ``hq_fraction`` and ``reverse_kl``.
    """
    samples = np.asarray(samples, np.float64)
    dists = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    nearest = dists.argmin(axis=1)
    hq = dists[np.arange(len(samples)), nearest] <= 3.0 * sigma
    counts = np.bincount(nearest[hq], minlength=len(modes))
    num_hq = counts.sum()
    if num_hq:
        p = counts[counts > 0] / num_hq
        reverse_kl = float(np.sum(p * np.log(p * len(modes))))
    else:
        reverse_kl = float(np.log(len(modes)))
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": len(modes),
        "hq_fraction": float(hq.mean()),
        "reverse_kl": reverse_kl,
    }

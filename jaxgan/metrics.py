"""Sample-quality measurements, pure numpy on host arrays (evaluation runs once per log point).

- 1-D samples: moments and the Wasserstein-1 distance to a normal law;
- 2-D mixtures: mode statistics (the protocol of VEEGAN / PacGAN); Stacked MNIST's 1,000 modes;
- feature sets (an evaluation network's embedding of real and generated images): the Fréchet
  distance (FID's formula), KID, improved precision/recall, density/coverage;
- class probabilities of generated samples: classes covered, KL to uniform, an Inception-Score-
  style score;
- paired images (a translation's outputs against their targets): L1, PSNR and SSIM.
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


def stacked_modes(digits: np.ndarray, base: int = 10) -> dict[str, float]:
    """Mode coverage of Stacked MNIST samples (Metz et al. 2017; the protocol of VEEGAN and
    PacGAN): a sample's mode is the tuple of the digits classified in its channels, one of
    ``base ** k``.

    Args:
      digits: ``[n, k]`` class indices in ``[0, base)``, a row per sample.
      base: the classes per channel.

    Returns:
      ``modes``: how many of the ``base ** k`` modes hold at least one sample; ``kl``:
      KL(p ‖ uniform) of the samples' mode histogram p (0 when every mode is hit equally often,
      ``k log base`` when all samples share one mode).
    """
    digits = np.asarray(digits)
    if digits.ndim != 2 or digits.size == 0 or digits.min() < 0 or digits.max() >= base:
        raise ValueError(f"digits must be [n, k] class indices in [0, {base}), got {digits.shape}")
    num_modes = base ** digits.shape[1]
    codes = digits @ (base ** np.arange(digits.shape[1] - 1, -1, -1))
    counts = np.bincount(codes, minlength=num_modes)
    p = counts[counts > 0] / len(digits)
    return {"modes": int((counts > 0).sum()), "kl": float(np.sum(p * np.log(p * num_modes)))}


# --- Distances between sets of feature vectors (the evaluation classifier's penultimate layer).
# Host numpy in float64: run once per evaluation on ~10,000 vectors of 128 features.


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as in the reference FID code) of ``[n, d]`` features."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition
    (round-off's tiny negative eigenvalues clipped to zero)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ‖mu1 − mu2‖² + Tr(sigma1 + sigma2 − 2 (sigma1 sigma2)^½) (Dowson & Landau 1982; as FID,
    Heusel et al. 2017). (sigma1 sigma2)^½ is not symmetric, which is where ``scipy.linalg.sqrtm``
    leaves complex round-off; its trace equals that of (S sigma2 S)^½ with S = sigma1^½, a
    symmetric PSD matrix, so it is the sum of the square roots of that matrix's eigenvalues.

    Example: two 1-D Gaussians N(0, 1) and N(1, 4) are at 1² + (1 − 2)² = 2.
    """
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two feature sets (FID's recipe)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def _cube(a: np.ndarray) -> np.ndarray:
    return a * a * a  # several times faster than a ** 3 on large arrays


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the kernel k(a, b) = (a·b / d + 1)³."""
    d = x.shape[1]
    kxx, kyy, kxy = (_cube(a @ b.T / d + 1.0) for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): the unbiased MMD² between the two sets under the cubic
    polynomial kernel (a·b / d + 1)³, averaged over ``num_subsets`` random subsets of
    ``subset_size`` from each set (fewer if a set is smaller), as in their reference code.

    Unlike FID it is unbiased: its expectation is 0 for two samples of one distribution, so
    small estimates can be negative.

    Returns:
      The mean over subsets and its standard deviation.
    """
    x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 vectors in each set, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    values = [
        _polynomial_mmd2(
            x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)]
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


_ROWS = 1000  # rows per block of a distance matrix (10⁷ float64 entries for 10⁴ columns)


def _squared_distance_blocks(rows: np.ndarray, columns: np.ndarray):
    """Yields ``(start, squared distances [block, len(columns)])`` block of rows by block."""
    columns_sq = np.einsum("ij,ij->i", columns, columns)
    for start in range(0, len(rows), _ROWS):
        r = rows[start : start + _ROWS]
        sq = np.einsum("ij,ij->i", r, r)[:, None] + columns_sq[None, :] - 2.0 * r @ columns.T
        yield start, np.maximum(sq, 0.0)


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Each vector's distance to its k-th nearest neighbour among the others."""
    x = np.asarray(features, np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} vectors, got {k}")
    radii_sq = np.empty(len(x))
    for start, sq in _squared_distance_blocks(x, x):
        # Each row holds the vector's own zero distance, so the k-th neighbour is at index k.
        radii_sq[start : start + len(sq)] = np.partition(sq, k, axis=1)[:, k]
    return np.sqrt(radii_sq)


def _cross_balls(real, fake, real_radii, fake_radii=None) -> dict[str, np.ndarray]:
    """One pass over the real × fake distances: for each fake, how many real closed balls
    contain it; for each real, whether it lies in some fake ball (when ``fake_radii`` is given)
    and whether its own ball holds a fake."""
    fakes_in_real_balls = np.zeros(len(fake), np.int64)
    real_in_fake_balls = np.zeros(len(real), bool)
    real_ball_has_fake = np.zeros(len(real), bool)
    for start, sq in _squared_distance_blocks(real, fake):
        block = slice(start, start + len(sq))
        inside = sq <= (real_radii[block] ** 2)[:, None]
        fakes_in_real_balls += inside.sum(axis=0)
        real_ball_has_fake[block] = inside.any(axis=1)
        if fake_radii is not None:
            real_in_fake_balls[block] = (sq <= (fake_radii**2)[None, :]).any(axis=1)
    return {
        "fakes_in_real_balls": fakes_in_real_balls,
        "real_in_fake_balls": real_in_fake_balls,
        "real_ball_has_fake": real_ball_has_fake,
    }


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of closed balls around its vectors reaching their k-th
    nearest neighbour. Precision = share of fake vectors inside the real manifold (are samples
    realistic?); recall = share of real vectors inside the fake manifold (is the data covered?).
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    balls = _cross_balls(real, fake, knn_radii(real, k), knn_radii(fake, k))
    return {
        "precision": float((balls["fakes_in_real_balls"] > 0).mean()),
        "recall": float(balls["real_in_fake_balls"].mean()),
    }


def density_coverage(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), from balls around the *real* vectors only
    (reaching their k-th nearest real neighbour), so outliers among the fakes cannot inflate them.

    Density = (1 / kM) Σ_j #{real balls containing fake_j}: about 1 when fakes are distributed
    like the reals, above 1 when they crowd dense regions. Coverage = share of real balls that
    contain at least one fake vector.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    balls = _cross_balls(real, fake, knn_radii(real, k))
    return {
        "density": float(balls["fakes_in_real_balls"].sum() / (k * len(fake))),
        "coverage": float(balls["real_ball_has_fake"].mean()),
    }


def class_statistics(probs: np.ndarray, *, min_fraction: float = 0.02) -> dict[str, float]:
    """Mode statistics of generated samples from a classifier's class probabilities ``[n, C]``.

    ``classes_covered``: classes that receive at least ``min_fraction`` of the samples by
    argmax (2 % = a fifth of the uniform share for 10 classes, so a few misclassified samples do
    not count as a mode); ``class_kl``: KL(class histogram ‖ uniform), 0 for a perfectly
    balanced generator, log C when all samples fall in one class; ``classifier_score``: the
    Inception Score's formula exp(E_x KL(p(y|x) ‖ p(y))) (Salimans et al. 2016) over the whole
    set, from 1 (no confident, varied classes) to C (confident and uniform).
    """
    p = np.asarray(probs, np.float64)
    num_classes = p.shape[1]
    histogram = np.bincount(p.argmax(axis=1), minlength=num_classes) / len(p)
    seen = histogram[histogram > 0]
    marginal = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0).sum(axis=1)
    return {
        "classes_covered": int((histogram >= min_fraction).sum()),
        "class_kl": float(np.sum(seen * np.log(seen * num_classes))),
        "classifier_score": float(np.exp(kl.mean())),
    }


def label_accuracy(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How often a classifier finds the class a conditional generator was asked for.

    ``label_accuracy``: the share of samples whose argmax class (of ``probs [n, C]``) equals
    their requested label (``labels [n]``); ``label_accuracy_min``: the same share within the
    worst requested class, so one class G cannot draw is not hidden by the average.
    """
    labels = np.asarray(labels)
    hits = np.asarray(probs).argmax(axis=1) == labels
    per_class = [hits[labels == c].mean() for c in np.unique(labels)]
    return {"label_accuracy": float(hits.mean()), "label_accuracy_min": float(min(per_class))}


def _as_pairs(outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both image sets as float64 ``[N, H, W, C]``; refuses sets that do not pair up."""
    x, y = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"outputs and targets must be image sets [N, H, W, C] of one shape, got "
            f"{x.shape} and {y.shape}"
        )
    return x, y


def psnr(outputs: np.ndarray, targets: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(L^2 / MSE)`` per image (``L`` the
    ``data_range``), averaged over the images; an exact image scores 100 (its MSE clipped at
    ``1e-10 L^2``)."""
    x, y = _as_pairs(outputs, targets)
    mse = np.mean(np.square(x - y), axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(data_range**2 / np.maximum(mse, 1e-10 * data_range**2))))


def _gaussian_filter(images: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """``[N, H, W, C]`` images filtered by a normalised ``size`` × ``size`` Gaussian, only
    where the window fits ("valid"): ``[N, H - size + 1, W - size + 1, C]``."""
    taps = np.exp(-0.5 * np.square(np.arange(size) - (size - 1) / 2) / sigma**2)
    taps /= taps.sum()
    windows = np.lib.stride_tricks.sliding_window_view(images, size, axis=1) @ taps
    return np.lib.stride_tricks.sliding_window_view(windows, size, axis=2) @ taps


def ssim(
    outputs: np.ndarray,
    targets: np.ndarray,
    *,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
) -> float:
    """Structural similarity (Wang et al. 2004), the mean over images, channels and window
    positions of ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 +
    C2))``, with the paper's 11 × 11 Gaussian window (σ 1.5), ``C1 = (0.01 L)^2`` and
    ``C2 = (0.03 L)^2``; 1 for identical images."""
    x, y = _as_pairs(outputs, targets)
    if min(x.shape[1:3]) < window:
        raise ValueError(f"SSIM's {window}x{window} window is larger than {x.shape[1:3]} images")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def mean(a):
        return _gaussian_filter(a, window, sigma)

    mu_x, mu_y = mean(x), mean(y)
    var_x, var_y = mean(x * x) - mu_x**2, mean(y * y) - mu_y**2
    cov = mean(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    return float(np.mean(num / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))))


def paired_scores(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """A translation's outputs against their targets, both uint8 ``[N, H, W, C]``, on the
    [0, 1] scale: ``test_l1`` (mean absolute error), ``test_psnr`` (dB), ``test_ssim``."""
    x, y = _as_pairs(outputs, targets)
    x, y = x / 255.0, y / 255.0
    return {
        "test_l1": float(np.mean(np.abs(x - y))),
        "test_psnr": psnr(x, y),
        "test_ssim": ssim(x, y),
    }

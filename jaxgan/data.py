"""Datasets as host arrays. Synthetic distributions for the toy experiments.

Every loader returns ``{"x": array}`` (a dict, so labels can ride along later), float32 for the
synthetic sets; the experiment puts it on the device once.
"""

from __future__ import annotations

import numpy as np

MIXTURES = ("ring", "grid")


def gaussian_1d(num: int, *, mean: float, std: float, seed: int) -> dict[str, np.ndarray]:
    """``num`` samples of N(mean, std²), shaped ``[num, 1]``."""
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(mean, std, size=(num, 1)).astype(np.float32)}


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and component standard deviation of a 2-D benchmark mixture.

    PacGAN's protocol (Lin et al. 2018): ``ring`` = 8 modes on the unit circle, sigma 0.01;
    ``grid`` = 25 modes at {-4, -2, 0, 2, 4}², sigma 0.05.
    """
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
    if name == "grid":
        axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2), 0.05
    raise ValueError(f"unknown mixture {name!r}; choose one of {MIXTURES}")


def gaussian_mixture(name: str, num: int, *, seed: int) -> dict[str, np.ndarray]:
    """``num`` samples of the equal-weight mixture ``name`` (see :func:`mixture_modes`)."""
    modes, sigma = mixture_modes(name)
    rng = np.random.default_rng(seed)
    centres = modes[rng.integers(len(modes), size=num)]
    return {"x": (centres + sigma * rng.standard_normal((num, 2))).astype(np.float32)}

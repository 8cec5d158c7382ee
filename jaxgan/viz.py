"""Figures written into a run's workdir (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def histogram_overlay(real: np.ndarray, fake: np.ndarray, path: Path, *, title: str) -> None:
    """Overlaid density histograms of real and generated 1-D samples."""
    real, fake = np.ravel(real), np.ravel(fake)
    lo = min(real.min(), fake.min())
    hi = max(real.max(), fake.max())
    bins = np.linspace(lo, hi, 80)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(real, bins=bins, density=True, alpha=0.5, label="real")
    ax.hist(fake, bins=bins, density=True, alpha=0.5, label="generated")
    ax.set(title=title, xlabel="x", ylabel="density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scatter_modes(samples: np.ndarray, modes: np.ndarray, path: Path, *, title: str) -> None:
    """Generated 2-D samples over the mixture's mode centres."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, label="generated")
    ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="red", label="modes")
    ax.set(title=title, aspect="equal")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

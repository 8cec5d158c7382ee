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


def image_grid(images: np.ndarray, *, ncols: int = 8, pad: int = 2) -> np.ndarray:
    """Tiles uint8 images ``[N, H, W, C]`` into one ``[rows*(H+pad)+pad, ..., C]`` image."""
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_png(image: np.ndarray, path: Path, *, scale: int = 2) -> None:
    """Saves a uint8 ``[H, W, C]`` image, enlarged ``scale`` times (nearest neighbour)."""
    from PIL import Image

    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST).save(path)


def save_gif(frames: list[Path], path: Path, *, max_frames: int = 50, ms: int = 200) -> None:
    """An animated GIF of PNG ``frames``: at most ``max_frames`` evenly spaced ones, the last
    always included and held longer, shown at half the PNGs' size (they are saved enlarged)."""
    from PIL import Image

    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round())
    images = []
    for i in picks.astype(int):
        with Image.open(frames[i]) as frame:
            images.append(frame.resize((frame.width // 2, frame.height // 2), Image.NEAREST))
    durations = [ms] * (len(images) - 1) + [ms * 10]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)


def loss_curves(steps: np.ndarray, d_loss: np.ndarray, g_loss: np.ndarray, path: Path) -> None:
    """Generator and discriminator loss over training iterations."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, d_loss, label="D loss", lw=1)
    ax.plot(steps, g_loss, label="G loss", lw=1)
    ax.set(xlabel="iteration", ylabel="loss", title="Generator and discriminator loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def metric_curve(steps: np.ndarray, values: np.ndarray, name: str, path: Path) -> None:
    """One evaluation metric over training iterations (e.g. fid_mnist)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, values, marker="o", lw=1)
    ax.set(xlabel="iteration", ylabel=name, title=f"{name} over training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def real_vs_fake(real: np.ndarray, fake: np.ndarray, path: Path) -> None:
    """Two uint8 grids side by side: real images left, generated images right."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    for ax, grid, title in ((axes[0], real, "real"), (axes[1], fake, "generated")):
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

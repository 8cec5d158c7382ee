"""PyTorch reference: the well-known MNIST MLP GAN tutorial loop, for side-by-side benchmarks.

D 784→256→256→1 with LeakyReLU(0.2) and a sigmoid, G 64→256→256→784 with ReLU and tanh,
BCE (``nn.BCELoss`` on D's probabilities, G's loss with real labels: the non-saturating one),
Adam 2e-4 with default betas, batch 100 from an in-memory ``TensorDataset`` in a shuffled
``DataLoader``; each iteration one D step (real and fake batch) and one G step on fresh noise.
This is what jaxgan's ``--preset tutorial`` trains. PyTorch is a benchmark-only dependency
(``pip install torch==2.13.0`` here).

    python experiments/reference/mnist_mlp_gan.py --data-dir ../shared/data/mnist --epochs 200

trains, then scores 10,000 samples with jaxgan's evaluation (fid_mnist, ...) and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

LATENT = 64


def build() -> tuple[nn.Module, nn.Module]:
    generator = nn.Sequential(
        nn.Linear(LATENT, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 784), nn.Tanh(),
    )  # fmt: skip
    discriminator = nn.Sequential(
        nn.Linear(784, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1), nn.Sigmoid(),
    )  # fmt: skip
    return generator, discriminator


class Trainer:
    """The tutorial's alternating update; ``compile=True`` wraps the two steps in
    ``torch.compile``."""

    def __init__(
        self, seed: int = 0, compile: bool = False, batch_size: int = 100, device: str = "cpu"
    ):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.g, self.d = (m.to(self.device) for m in build())
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=2e-4)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=2e-4)
        self.bce = nn.BCELoss()
        self.ones = torch.ones(batch_size, 1, device=self.device)
        self.zeros = torch.zeros(batch_size, 1, device=self.device)
        self._d_step = torch.compile(self._d_step_eager) if compile else self._d_step_eager
        self._g_step = torch.compile(self._g_step_eager) if compile else self._g_step_eager

    def _d_step_eager(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        fake = self.g(z).detach()
        loss = self.bce(self.d(x), self.ones) + self.bce(self.d(fake), self.zeros)
        self.d_opt.zero_grad()
        loss.backward()
        return loss

    def _g_step_eager(self, z: torch.Tensor) -> torch.Tensor:
        loss = self.bce(self.d(self.g(z)), self.ones)
        self.g_opt.zero_grad()
        loss.backward()
        return loss

    def step(self, x: torch.Tensor) -> None:
        """One iteration on a real batch ``[B, 784]`` in [-1, 1] (moved to the trainer's
        device here, as the tutorial's loop does)."""
        x = x.to(self.device)
        self._d_step(x, torch.randn(len(x), LATENT, device=self.device))
        self.d_opt.step()
        self._g_step(torch.randn(len(x), LATENT, device=self.device))
        self.g_opt.step()


def loader(images: np.ndarray, batch_size: int = 100, seed: int = 0):
    """The tutorial's shuffled DataLoader over the images scaled to [-1, 1] (flattened)."""
    return shuffled_batches(images.reshape(len(images), -1), batch_size, seed)


def shuffled_batches(images: np.ndarray, batch_size: int, seed: int):
    """A shuffled DataLoader (whole batches only) over uint8 ``images`` scaled to [-1, 1]."""
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )


def train_epochs(trainer, batches, epochs: int) -> tuple[int, float]:
    """``trainer.step`` on every batch for ``epochs`` epochs; returns the steps and seconds."""
    start, steps = time.perf_counter(), 0
    for _ in range(epochs):
        for (x,) in batches:
            trainer.step(x)
            steps += 1
    return steps, time.perf_counter() - start


@torch.no_grad()
def sample_images(generator: nn.Module, num: int, seed: int) -> np.ndarray:
    """``num`` generated digits as uint8 ``[num, 28, 28, 1]``."""
    z = torch.randn(num, LATENT, generator=torch.Generator().manual_seed(seed))
    x = generator(z).numpy().reshape(num, 28, 28, 1)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def main() -> None:
    from jaxgan import data
    from jaxgan.evaluate import MNISTEvaluator, load_test_images

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = data.load_idx(args.data_dir, "train")["image"]
    trainer = Trainer(args.seed)
    steps, wall = train_epochs(trainer, loader(images, seed=args.seed), args.epochs)
    scores = MNISTEvaluator(load_test_images(args.data_dir))(
        sample_images(trainer.g.eval(), 10_000, args.seed)
    )
    print(json.dumps({"steps": steps, "train_wall_s": round(wall, 1), **scores}, indent=2))


if __name__ == "__main__":
    main()

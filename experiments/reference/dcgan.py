"""PyTorch reference: the PyTorch DCGAN tutorial's networks and training step, for benchmarks.

    python experiments/reference/dcgan.py --data-dir ../shared/data/mnist --width 16 --epochs 40

trains it on MNIST padded to 32×32 (the tutorial's shuffled DataLoader, batch 128) and scores
10,000 samples with jaxgan's ``fid_mnist`` (cropped back to 28×28), as
``python -m jaxgan.experiments.dcgan --dataset mnist --image-size 32`` is scored.

G: a transposed convolution of z (nz 100) to a 4×4 map of ngf·2^(L-1) channels, then 4×4
stride-2 transposed convolutions halving the channels, batch norm and ReLU after each but the
last, tanh out; D: 4×4 stride-2 convolutions doubling the channels from ndf, LeakyReLU(0.2),
batch norm on all but the first, a 4×4 convolution to one output and a sigmoid. No biases;
weights N(0, 0.02), batch-norm scales N(1, 0.02). At 64×64 (L = 4) these are the tutorial's
networks; at 32×32 the same rules with L = 3 (jaxgan's DCGAN follows the same rules, and the
benchmark checks that the parameter counts agree). The step is the tutorial's: BCE on D's
probabilities, Adam 2e-4 with β1 0.5; D on a real batch and on G's fakes (detached), then G
on the same fakes with real labels.
"""

from __future__ import annotations

import argparse
import functools
import json

import numpy as np
import torch
from torch import nn

NZ = 100


def _layers(resolution: int) -> int:
    if resolution not in (32, 64):
        raise ValueError(f"resolution must be 32 or 64, got {resolution}")
    return 3 if resolution == 32 else 4


def build(
    resolution: int = 64, channels: int = 3, ngf: int = 64, ndf: int = 64
) -> tuple[nn.Module, nn.Module]:
    """The tutorial's generator and discriminator at ``resolution``."""
    layers = _layers(resolution)
    features = ngf * 2 ** (layers - 1)
    g: list[nn.Module] = [nn.ConvTranspose2d(NZ, features, 4, 1, 0, bias=False)]
    for _ in range(layers):
        out = channels if features == ngf else features // 2
        g += [nn.BatchNorm2d(features), nn.ReLU(True)]
        g += [nn.ConvTranspose2d(features, out, 4, 2, 1, bias=False)]
        features = out
    d: list[nn.Module] = []
    for i in range(layers):
        d.append(
            nn.Conv2d(channels if i == 0 else ndf * 2 ** (i - 1), ndf * 2**i, 4, 2, 1, bias=False)
        )
        if i:
            d.append(nn.BatchNorm2d(ndf * 2**i))
        d.append(nn.LeakyReLU(0.2, inplace=True))
    d += [nn.Conv2d(ndf * 2 ** (layers - 1), 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    generator, discriminator = nn.Sequential(*g, nn.Tanh()), nn.Sequential(*d)
    for module in (generator, discriminator):
        module.apply(_init)
    return generator, discriminator


def _init(module: nn.Module) -> None:
    """The tutorial's ``weights_init``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


class Trainer:
    """The tutorial's training step; ``compile=True`` wraps the two updates in
    ``torch.compile``."""

    def __init__(
        self, resolution: int = 64, channels: int = 3, width: int = 64, batch_size: int = 128,
        seed: int = 0, compile: bool = False, device: str = "cpu",
    ):  # fmt: skip
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.g, self.d = (m.to(self.device) for m in build(resolution, channels, width, width))
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.bce = nn.BCELoss()
        self.ones = torch.ones(batch_size, device=self.device)
        self.zeros = torch.zeros(batch_size, device=self.device)
        # static shapes: inductor failed to compile D's backward when it recompiled them as
        # dynamic ("Cannot convert expression to float", torch 2.13.0)
        compiled = functools.partial(torch.compile, dynamic=False)
        self._generate = compiled(self.g) if compile else self.g
        self._d_step = compiled(self._d_step_eager) if compile else self._d_step_eager
        self._g_step = compiled(self._g_step_eager) if compile else self._g_step_eager

    def _d_step_eager(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = self.bce(self.d(x).view(-1), self.ones) + self.bce(self.d(fake).view(-1), self.zeros)
        self.d_opt.zero_grad()
        loss.backward()
        return loss

    def _g_step_eager(self, fake: torch.Tensor) -> torch.Tensor:
        loss = self.bce(self.d(fake).view(-1), self.ones)
        self.g_opt.zero_grad()
        loss.backward()
        return loss

    def step(
        self, x: torch.Tensor, z: torch.Tensor | None = None, z_g: torch.Tensor | None = None
    ) -> None:
        """One iteration on a real batch ``[B, C, H, W]`` in [-1, 1]: G's fakes once (of
        noise ``z``, drawn when None), D's update on them (detached), then G's update through
        them, as the tutorial does; or, given ``z_g``, through fakes of that noise (jaxgan's
        step draws G's own). Tensors are moved to the trainer's device, as the tutorial does."""
        x = x.to(self.device)
        z = torch.randn(len(x), NZ, 1, 1, device=self.device) if z is None else z.to(self.device)
        fake = self._generate(z)
        self._d_step(x, fake.detach())
        self.d_opt.step()
        self._g_step(fake if z_g is None else self._generate(z_g.to(self.device)))
        self.g_opt.step()


@torch.no_grad()
def sample(generator: nn.Module, z: torch.Tensor) -> np.ndarray:
    """G(z) ``[N, H, W, C]`` in eval mode (batch norm's running averages, as jaxgan samples),
    1,000 at a time."""
    generator.eval()
    device = next(generator.parameters()).device
    fakes = [generator(chunk.to(device)).cpu() for chunk in z.split(1000)]
    return torch.cat(fakes).numpy().transpose(0, 2, 3, 1)


def main() -> None:
    from mnist_mlp_gan import shuffled_batches, train_epochs  # the script's own directory

    from jaxgan import data
    from jaxgan.evaluate import MNISTEvaluator, as_mnist, load_test_images

    parser = argparse.ArgumentParser(description="the DCGAN tutorial on MNIST at 32x32")
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files")
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = parser.parse_args()
    images = data.pad_images(data.load_idx(args.data_dir, "train")["image"], 32)
    batches = shuffled_batches(images.transpose(0, 3, 1, 2), args.batch_size, args.seed)
    trainer = Trainer(32, 1, args.width, args.batch_size, args.seed, device=args.device)
    steps, wall = train_epochs(trainer, batches, args.epochs)
    z = torch.randn(10_000, NZ, 1, 1, generator=torch.Generator().manual_seed(args.seed))
    fake = data.to_uint8(sample(trainer.g, z))
    scores = MNISTEvaluator(load_test_images(args.data_dir))(as_mnist(fake))
    print(json.dumps({"steps": steps, "train_wall_s": round(wall, 1), **scores}, indent=2))


if __name__ == "__main__":
    main()

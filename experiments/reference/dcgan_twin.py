"""Twin DCGAN runs: jaxgan's ``train_step`` and the PyTorch tutorial's step from the same
initial weights, on the same real batches in the same order, with the same noise.

    python experiments/reference/dcgan_twin.py --data-dir ../shared/data/mnist \\
        --step jaxgan --init torch --seed 0

``--step drift`` instead trains both steps side by side from the same weights for
``--drift-steps`` and prints how far apart their kernels go, next to two PyTorch runs whose
weights differ by one part in 10⁷.

``--init`` draws the starting weights with PyTorch's ``weights_init`` (seed S) or jaxgan's
initialisers (seed S) and converts them for the other implementation; the data order and the
noise are always those of ``python -m jaxgan.experiments.dcgan --seed S`` (PyTorch draws G's
update noise fresh, as jaxgan does). Networks of ``--width`` 16 on MNIST padded to 32×32,
batch 64, 40 epochs, scored by ``fid_mnist`` on 10,000 samples: the side-by-side comparison's
setting. It tells the implementations' differences apart from the initial draw's: the run-to-run
spread of this small DCGAN is mostly its starting weights.
"""

from __future__ import annotations

import argparse
import json
from copy import deepcopy

import jax
import jax.numpy as jnp
import numpy as np
import torch
from dcgan import NZ, Trainer, sample  # the script's own directory

from jaxgan import data, generate
from jaxgan.epoch import epoch_order
from jaxgan.evaluate import MNISTEvaluator, as_mnist, load_test_images
from jaxgan.experiments import dcgan
from jaxgan.state import STEP_STREAM
from jaxgan.step import train_step
from jaxgan.trainer.config import create_state

# Sequential indices of the tutorial's layers at 32×32: G's transposed convolutions and their
# batch norms, D's convolutions and batch norms, in jaxgan's order of ConvTranspose_i,
# BatchNorm_i, Conv_i.
G_CONVS, G_NORMS, D_CONVS, D_NORMS = (0, 3, 6, 9), (1, 4, 7), (0, 2, 5, 8), (3, 6)


def g_kernel(weight: np.ndarray) -> np.ndarray:
    """A ``ConvTranspose2d`` weight ``[in, out, kh, kw]`` as jaxgan's kernel (flipped)."""
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1)[::-1, ::-1])


def g_weight(kernel: np.ndarray) -> np.ndarray:
    """The inverse of :func:`g_kernel`."""
    return np.ascontiguousarray(kernel[::-1, ::-1].transpose(2, 3, 0, 1))


def torch_to_jaxgan(g: torch.nn.Module, d: torch.nn.Module) -> tuple[dict, dict]:
    """The tutorial networks' weights as jaxgan's G and D parameters."""

    def norm(module):
        return {"scale": module.weight.numpy(), "bias": module.bias.numpy()}

    with torch.no_grad():
        gp = {f"ConvTranspose_{i}": {"kernel": g_kernel(g[c].weight.numpy())} for i, c in
              enumerate(G_CONVS)}  # fmt: skip
        gp |= {f"BatchNorm_{i}": norm(g[c]) for i, c in enumerate(G_NORMS)}
        dp = {f"Conv_{i}": {"kernel": d[c].weight.numpy().transpose(2, 3, 1, 0)} for i, c in
              enumerate(D_CONVS)}  # fmt: skip
        dp |= {f"BatchNorm_{i}": norm(d[c]) for i, c in enumerate(D_NORMS)}
    return jax.tree.map(jnp.asarray, gp), jax.tree.map(jnp.asarray, dp)


def jaxgan_to_torch(gp: dict, dp: dict, g: torch.nn.Module, d: torch.nn.Module) -> None:
    """Copies jaxgan's G and D parameters into the tutorial networks."""

    def put(param, value):
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

    with torch.no_grad():
        for i, c in enumerate(G_CONVS):
            put(g[c].weight, g_weight(np.asarray(gp[f"ConvTranspose_{i}"]["kernel"])))
        for i, c in enumerate(D_CONVS):
            put(d[c].weight, np.asarray(dp[f"Conv_{i}"]["kernel"]).transpose(3, 2, 0, 1))
        for net, norms, params in ((g, G_NORMS, gp), (d, D_NORMS, dp)):
            for i, c in enumerate(norms):
                put(net[c].weight, np.asarray(params[f"BatchNorm_{i}"]["scale"]))
                put(net[c].bias, np.asarray(params[f"BatchNorm_{i}"]["bias"]))


def kernel_drift(a: dict, b: dict) -> float:
    """The largest difference between two parameter sets' kernels, relative to the largest
    kernel value of ``a`` (batch-norm parameters start at 0 or 1 and move by ~lr, so relative
    differences there are rounding noise blown up)."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(jnp.abs(x - y).max() / jnp.abs(x).max()) for x, y in pairs if x.ndim == 4)


def report_drift(state, trainer: Trainer, batches, torch_batch, steps: int) -> None:
    """Trains jaxgan's step and PyTorch's from the same weights side by side, with a copy of
    the PyTorch trainer whose weights differ by one part in 10⁷ as the yardstick of how fast
    rounding differences grow; prints the kernels' drift (:func:`kernel_drift`) every few
    steps."""
    copy = deepcopy(trainer)
    with torch.no_grad():
        for p in (*copy.g.parameters(), *copy.d.parameters()):
            p.mul_(1 + 1e-7 * torch.randn_like(p))
    for step, x, z_d, z_g in batches:
        state, _ = train_step(state, {"x": jnp.asarray(x)})
        for t in (trainer, copy):
            t.step(torch_batch(x), z_d, z_g)
        if step < 3 or (step + 1) % 10 == 0:
            ref_g, ref_d = torch_to_jaxgan(trainer.g, trainer.d)
            copy_g, copy_d = torch_to_jaxgan(copy.g, copy.d)
            ours = kernel_drift(ref_g, state.g.params), kernel_drift(ref_d, state.d.params)
            yardstick = kernel_drift(ref_g, copy_g), kernel_drift(ref_d, copy_d)
            print(
                f"after step {step + 1}: jaxgan vs PyTorch G {ours[0]:.1e} D {ours[1]:.1e}; "
                f"PyTorch vs PyTorch·(1 + 1e-7 ε) G {yardstick[0]:.1e} D {yardstick[1]:.1e}",
                flush=True,
            )
        if step + 1 == steps:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files")
    parser.add_argument(
        "--step",
        choices=("jaxgan", "torch", "drift"),
        required=True,
        help="drift: both steps side by side for --drift-steps, printing how far apart they go",
    )
    parser.add_argument("--drift-steps", type=int, default=40)
    parser.add_argument("--init", choices=("jaxgan", "torch"), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    config = dcgan.Config(
        dataset="mnist", image_size=32, g_width=args.width, d_width=args.width, batch_size=64,
        seed=args.seed,
    )  # fmt: skip
    images = data.scale_images(data.pad_images(data.load_idx(args.data_dir, "train")["image"], 32))
    state, per_epoch = create_state(config, *dcgan.build_models(config), len(images))
    trainer = Trainer(32, 1, args.width, config.batch_size, args.seed)
    if args.init == "torch":
        gp, dp = torch_to_jaxgan(trainer.g, trainer.d)
        state = state.replace(
            g=state.g.replace(params=gp, opt_state=state.g.tx.init(gp)),
            d=state.d.replace(params=dp, opt_state=state.d.tx.init(dp)),
        )
    else:
        jaxgan_to_torch(state.g.params, state.d.params, trainer.g, trainer.d)
    key = jax.random.wrap_key_data(jax.random.key_data(state.key).copy())  # train_step donates

    @jax.jit
    def noise(step):
        """The latent vectors jaxgan's step ``step`` draws for D's and for G's update."""
        step_key = jax.random.fold_in(jax.random.fold_in(key, STEP_STREAM), step)
        d_key, g_key = jax.random.split(step_key)
        shape = (config.batch_size, NZ)
        return (jax.random.normal(jax.random.split(d_key, 4)[0], shape),
                jax.random.normal(jax.random.split(g_key, 3)[0], shape))  # fmt: skip

    def batches():
        """``(step, real batch, PyTorch's noise for D and for G)`` in jaxgan's order."""
        step = 0
        for epoch in range(args.epochs):
            order = epoch_order(key, epoch * per_epoch, len(images), config.batch_size, 1)
            for rows in np.asarray(order):
                z_d, z_g = (torch.from_numpy(np.array(z)).view(-1, NZ, 1, 1) for z in noise(step))
                yield step, images[rows[0]], z_d, z_g
                step += 1

    def torch_batch(x):
        return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    if args.step == "drift":
        report_drift(state, trainer, batches(), torch_batch, args.drift_steps)
        return
    for _, x, z_d, z_g in batches():
        if args.step == "jaxgan":
            state, _ = train_step(state, {"x": jnp.asarray(x)})
        else:
            trainer.step(torch_batch(x), z_d, z_g)
    z = np.random.default_rng(args.seed).standard_normal((10_000, NZ), np.float32)
    if args.step == "jaxgan":
        fake = generate.sample(state, z)
    else:
        fake = sample(trainer.g, torch.from_numpy(z).view(-1, NZ, 1, 1))
    scores = MNISTEvaluator(load_test_images(args.data_dir))(as_mnist(data.to_uint8(fake)))
    print(json.dumps({"step": args.step, "init": args.init, "seed": args.seed, **scores}))


if __name__ == "__main__":
    main()

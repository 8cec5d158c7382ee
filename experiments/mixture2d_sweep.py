"""Several seeds of the mixture2d experiment in one program (``jax.vmap`` over GANStates), with
mode statistics every few epochs: the tool for tuning the experiment's defaults.

Takes every option of ``python -m jaxgan.experiments.mixture2d`` plus ``--num-seeds`` and
``--eval-every``; seed ``s`` trains on the data and noise of ``--seed s`` (seeds ``seed`` to
``seed + num_seeds - 1``), so its numbers match single runs of the experiment up to
floating-point reassociation under vmap. Nothing is written to disk.

    python experiments/mixture2d_sweep.py --dataset grid --num-seeds 2 --eval-every 10
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import data, metrics
from jaxgan.experiments import mixture2d
from jaxgan.experiments.common import config_parser, init_state, steps_per_epoch
from jaxgan.train import evaluation_noise, generate_samples, train_epoch_body


def main() -> None:
    extra = config_parser(mixture2d.Config, "sweep", "")
    extra.add_argument("--num-seeds", type=int, default=2)
    extra.add_argument("--eval-every", type=int, default=10)
    args = vars(extra.parse_args())
    num_seeds, eval_every = args.pop("num_seeds"), args.pop("eval_every")
    base = mixture2d.Config(**args)
    base.validate()
    configs = [dataclasses.replace(base, seed=base.seed + i) for i in range(num_seeds)]

    modes, sigma = data.mixture_modes(base.dataset)
    stacked = {
        "x": np.stack(
            [data.gaussian_mixture(c.dataset, c.num_train, seed=c.seed)["x"] for c in configs]
        )
    }
    generator, discriminator = mixture2d.build_models(base)
    total = steps_per_epoch(base.num_train, base.batch_size, base.d_steps) * base.epochs
    keys = jax.vmap(jax.random.key)(jnp.array([c.seed for c in configs]))
    states = jax.vmap(lambda k: init_state(base, generator, discriminator, total, key=k))(keys)

    epoch = jax.jit(
        jax.vmap(lambda s, d: train_epoch_body(s, d, batch_size=base.batch_size)),
        donate_argnums=0,
    )
    sample = jax.jit(
        jax.vmap(lambda s: generate_samples(s, evaluation_noise(s, base.eval_samples)))
    )
    start = time.perf_counter()
    for e in range(1, base.epochs + 1):
        states, _ = epoch(states, stacked)
        if e % eval_every == 0 or e == base.epochs:
            stats = [metrics.mode_statistics(f, modes, sigma) for f in np.asarray(sample(states))]
            print(
                f"epoch {e} ({time.perf_counter() - start:.0f} s): "
                f"modes {[s['modes'] for s in stats]}, "
                f"high quality % {[round(100 * s['hq_fraction'], 1) for s in stats]}, "
                f"reverse KL {[round(s['reverse_kl'], 3) for s in stats]}",
                flush=True,
            )


if __name__ == "__main__":
    main()

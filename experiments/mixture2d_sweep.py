"""Several seeds of the mixture2d experiment in one program (``jax.vmap`` over GANStates), with
mode statistics every few epochs: the tool for tuning the experiment's defaults.

Takes every option of ``python -m jaxgan.experiments.mixture2d`` plus ``--num-seeds`` and
``--eval-every``; seed ``s`` trains on the data and noise of ``--seed s`` (seeds ``seed`` to
``seed + num_seeds - 1``), so its numbers match single runs of the experiment up to
floating-point reassociation under vmap. Nothing is written to disk.

    python experiments/mixture2d_sweep.py --dataset grid --num-seeds 2 --eval-every 10
"""

from __future__ import annotations

import time

from jaxgan.cli import config_parser
from jaxgan.experiments import mixture2d


def main() -> None:
    extra = config_parser(mixture2d.Config, "sweep", "")
    extra.add_argument("--num-seeds", type=int, default=2)
    extra.add_argument("--eval-every", type=int, default=10)
    args = vars(extra.parse_args())
    num_seeds, eval_every = args.pop("num_seeds"), args.pop("eval_every")
    base = mixture2d.Config(**args)
    base.validate()
    seeds = mixture2d.Seeds(base, num_seeds)
    start = time.perf_counter()
    for e in range(1, base.epochs + 1):
        seeds.train_epoch()
        if e % eval_every == 0 or e == base.epochs:
            stats = seeds.mode_statistics()
            print(
                f"epoch {e} ({time.perf_counter() - start:.0f} s): "
                f"modes {[s['modes'] for s in stats]}, "
                f"high quality % {[round(100 * s['hq_fraction'], 1) for s in stats]}, "
                f"reverse KL {[round(s['reverse_kl'], 3) for s in stats]}",
                flush=True,
            )


if __name__ == "__main__":
    main()

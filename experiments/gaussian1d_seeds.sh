#!/usr/bin/env bash
# The gaussian1d target check: the default run on seeds 0-4, one line of statistics per seed.
#   bash experiments/gaussian1d_seeds.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs/gaussian1d_seeds}
for seed in 0 1 2 3 4; do
  python -m jaxgan.experiments.gaussian1d --seed "$seed" --workdir "$runs/seed$seed" 2>/dev/null \
    | sed "s/^/seed $seed: /"
  grep -o '"wall_s": [0-9.]*' "$runs/seed$seed/summary.json"
done

#!/usr/bin/env bash
# Every shipped agent and embedding, reproduced by one sweep: sweeps/shipped.toml lists each run and its options
# (the 5 alm seeds, alm-done, the two word-init ablations, their trained and untrained E_L, the reference models,
# the baselines). Runs already done (same options, files unchanged) are skipped; a failed run is retried once,
# then reported while the others go on; results go to assets/, logs and summary.json to cache/sweeps/shipped/.
# The agents' runs record their E_L trajectories (record = true: core.dynamics.snapshot_steps, assets/trajectories/);
# recording does not change a run (tests/test_dynamics.py). After a retrain, re-ship what derives from the agents:
# `python -m core controls`, `python -m core report --ship` (then `report --check`) and `python -m core multiverse`.
#
#   bash scripts/train_shipped.sh                   # local Ray instance with all cores (2 lanes on 2 cores)
#   bash scripts/train_shipped.sh --address auto    # on a running Ray cluster (README: "Sweeps and clusters")
#   bash scripts/train_shipped.sh --dry-run         # what would run, what is done
# Extra options go to `python -m core sweep`. On our build machines Ray must start inside a loopback-only network
# namespace: sudo unshare -n bash -c 'ip link set lo up; bash scripts/train_shipped.sh'
# The shipped run was made from a clean git worktree of the commit recorded in each manifest, with
# ALVA_ASSETS_DIR and ALVA_CACHE_DIR pointing at the main checkout's assets/ and cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export RAY_USAGE_STATS_ENABLED=${RAY_USAGE_STATS_ENABLED:-0}
exec "$PY" -m core sweep sweeps/shipped.toml "$@"

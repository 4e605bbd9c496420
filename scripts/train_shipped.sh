#!/usr/bin/env bash
# The exact commands that produced the shipped agents (assets/agents/*.pt + .json) and their embeddings
# (assets/embeddings/{alm,untrained-alm,alm-done,alm-word-random,alm-word-identical}-s*.npz/.json), and the
# trajectories recorded during those runs (--record: E_L at core.dynamics.snapshot_steps, assets/trajectories/).
# Recording does not change a run (tests/test_dynamics.py); after a retrain, re-ship what derives from the
# agents: `python -m core controls` and `python -m core report --ship` (then `report --check`).
#
# Machine: 2 CPU cores shared with other jobs. Two training lanes run in parallel, one torch thread each
# (measured: under contention 2 x 1 thread gives more total throughput than 1 x 2 threads).
# Demos: 50,000 expert episodes (demo seed 0), generated once and cached (`python -m core demos`).
# Usage: bash scripts/train_shipped.sh            (logs in logs/; copied to assets/agents/<name>.log)
# The shipped run was made from a clean git worktree of the commit recorded in each manifest, with
# ALVA_ASSETS_DIR and ALVA_CACHE_DIR pointing at the main checkout's assets/ and cache/.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
COMMON="--threads 1 --steps 1500 --batch-size 256 --eval-every 250 --eval-episodes 2 --final-episodes 20 --no-progress --record"
mkdir -p logs

$PY -m core demos --n 50000 --workers 2
$PY -m core demos --n 50000 --workers 2 --done-action

# (order = priority: the 5 alm seeds first, then alm-done (given 2000 steps: done mode is harder), then the
#  word-init ablations with exactly the alm config except the word init)
lane_a() {
  for s in 0 2 4; do $PY -m core train --seed $s $COMMON > logs/alm-s$s.log 2>&1; done
  $PY -m core train --seed 0 --word-init identical $COMMON > logs/alm-word-identical-s0.log 2>&1
}
lane_b() {
  for s in 1 3; do $PY -m core train --seed $s $COMMON > logs/alm-s$s.log 2>&1; done
  $PY -m core train --seed 0 --done-action $COMMON --steps 2000 > logs/alm-done-s0.log 2>&1
  $PY -m core train --seed 0 --word-init random $COMMON > logs/alm-word-random-s0.log 2>&1
}
lane_a & lane_b & wait

# embeddings: trained E_L of every shipped agent, and the untrained (step-0) E_L of each alm seed
for ck in "${ALVA_ASSETS_DIR:-assets}"/agents/*.pt; do $PY -m core embed-agent --agent "$ck" --ship; done
for s in 0 1 2 3 4; do $PY -m core embed-agent --agent alm-s$s --ship --untrained; done
for f in logs/*.log; do cp "$f" "${ALVA_ASSETS_DIR:-assets}/agents/$(basename "$f")"; done

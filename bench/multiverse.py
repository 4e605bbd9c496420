"""Benchmark of the analysis multiverse (a plain script, not a test): ``python bench/multiverse.py``.

1. The shipped multiverse (``core.multiverse.compute`` on every shipped agent checkpoint and its untrained twin x
   every shipped layer sweep): P@k over every choice plus the split halves, from the loaded sweeps. Target:
   about 10^4 P@k evaluations at n = 108 in <= 2 min on 2 cores; the full run does ~2 x 10^6.
2. The peer: the straightforward way, one ``core.metrics.precision_at_k`` call per (pair, choice) on the
   preprocessed rows (both spaces ranked again for every evaluation), timed on a random sample of choices and
   extrapolated; same values (checked on the sample). The ratio is printed.

Wall-clock and CPU (process) time are both printed, with the load average: on a shared machine the wall time
mostly measures the other processes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import metrics as M  # noqa: E402
from core import multiverse as mv  # noqa: E402
from core.preprocessing import PREPROCESSINGS, preprocess  # noqa: E402


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=None, help="use only the first N shipped checkpoints")
    p.add_argument("--peer-sample", type=int, default=300, help="choices timed for the peer (default 300)")
    a = p.parse_args()
    from core.agent_layers import shipped_agents

    agents = shipped_agents()[: a.agents] if a.agents else None
    print(f"cores: {os.cpu_count()}; {_load()}")
    t, c = time.perf_counter(), time.process_time()
    agent_layers, ref_layers, twins, default, _ = mv.load_inputs(agents)
    print(f"load inputs (checkpoints -> agent layers, shipped sweeps): {time.perf_counter() - t:.1f} s wall, "
          f"{time.process_time() - c:.1f} s CPU")

    t, c = time.perf_counter(), time.process_time()
    res = mv.compute(agent_layers, ref_layers, twins=twins, ref_default_pooling=default)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    n_eval = res.n_evaluations
    print(f"\n1. multiverse: {len(agent_layers)} agents (checkpoints + untrained twins) x {len(ref_layers)} "
          f"references, {len(res.results)} choices + split halves = {n_eval} P@k evaluations at n <= 108")
    print(f"   {wall:.1f} s wall, {cpu:.1f} s CPU  ->  {1e4 * cpu / n_eval:.3f} s CPU per 10^4 evaluations "
          f"(target: 10^4 in <= 120 s)   [{_load()}]")
    print("   parts (wall): " + ", ".join(f"{k} {v:.1f}" for k, v in res.timings.items()))

    # 2. peer: one precision_at_k per (pair, choice), on a random sample of the full-set-table choices
    A_meta, A_X = mv._flatten(agent_layers)
    B_meta, B_X = mv._flatten(ref_layers)
    subsets = mv.item_subsets()
    rng = np.random.default_rng(0)
    sample = [(rng.integers(len(A_X)), rng.integers(len(B_X)), subsets[rng.integers(len(subsets))],
               PREPROCESSINGS[rng.integers(len(PREPROCESSINGS))]) for _ in range(a.peer_sample)]
    got, want, done = [], [], 0
    t, c = time.perf_counter(), time.process_time()
    for i, j, s, how in sample:
        try:
            want.append(M.precision_at_k(preprocess(A_X[i][s.items], how), preprocess(B_X[j][s.items], how), s.k))
        except M.MetricInputError:  # a degenerate space (left out of the multiverse too)
            want.append(np.nan)
        done += 1
    pw, pc = time.perf_counter() - t, time.process_time() - c
    for i, j, s, how in sample:
        got.append(mv.item_set_precision([A_X[i]], [B_X[j]], s, how)[0, 0])
    ok = np.array([(np.isnan(g) or np.isclose(g, w, atol=1e-12)) for g, w in zip(got, want) if not np.isnan(w)])
    per = pc / done
    print(f"\n2. peer (precision_at_k per evaluation): {done} sampled evaluations in {pw:.2f} s wall, {pc:.2f} s CPU "
          f"-> {per * 1e3:.2f} ms CPU each; all {n_eval} would take ~{per * n_eval / 60:.0f} min CPU")
    print(f"   same values on the sample: {ok.all()} ({ok.size} non-degenerate)")
    print(f"   ratio (peer / multiverse, CPU): {per * n_eval / cpu:.0f}x   [{_load()}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: expert demonstrations per second, and the projected time for 50,000 (target <= 10 min, 2 cores).

    python bench/demos.py [--n 5000] [--workers 1 2] [--grammar +sequence] [--target-n 50000]

``--grammar NAME`` benchmarks a preset of core.instructions.presets (issue 15: the largest, ``+sequence``, is
the one to project); an extended set is shuffled (seed 0) so the first n demos sample every form, and bot
failures are printed per form.

Generates uncached datasets (nothing is written to the cache) with each worker count and prints demos/s,
steps/s and the projection; the 1-worker run is the peer for the speed-up ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.demos import generate  # noqa: E402
from core.instructions import instruction_set, preset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--target-n", type=int, default=50_000)
    p.add_argument("--grammar", default="paper108", help="instruction-set preset (default paper108)")
    args = p.parse_args()
    g = preset(args.grammar)
    items = instruction_set(g)
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; grammar {args.grammar} "
          f"({len(items)} instructions)")
    forms = {t: g.parse(t).form for t in items}
    # a seeded shuffle, so that the first n episodes sample every form (demos cycle through the given order)
    order = [items[i] for i in np.random.default_rng(0).permutation(len(items))] if g.extended else items
    rates = {}
    for w in args.workers:
        t = time.perf_counter()
        d = generate(args.n, seed=0, workers=w, use_cache=False, progress=False, grammar=g, instructions=order)
        dt = time.perf_counter() - t
        per_form = Counter(forms[order[i]] for i in d.instruction_ids)
        fails = Counter(forms[order[iid]] for iid, _, _ in d.failures)
        print(f"  episodes per form {dict(per_form)}; bot failures per form (each retried with a new seed): "
              f"{dict(fails) or 'none'}")
        rates[w] = args.n / dt
        proj = args.target_n / rates[w] / 60
        print(f"workers={w}: {args.n} demos ({d.n_steps} steps, {len(d.failures)} bot failures) in {dt:.1f} s "
              f"-> {rates[w]:.0f} demos/s, {d.n_steps / dt:.0f} steps/s; projected {args.target_n} demos: "
              f"{proj:.1f} min (target <= 10 min: {'OK' if proj <= 10 else 'MISSED'})")
    if 1 in rates:
        for w, r in rates.items():
            if w != 1:
                print(f"speed-up workers={w} vs 1: {r / rates[1]:.2f}x")


if __name__ == "__main__":
    main()

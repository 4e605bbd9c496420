"""Benchmark: expert demonstrations per second, and the projected time for 50,000 (target <= 10 min, 2 cores).

    python bench/demos.py [--n 5000] [--workers 1 2]

Generates uncached datasets (nothing is written to the cache) with each worker count and prints demos/s,
steps/s and the projection; the 1-worker run is the peer for the speed-up ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.demos import generate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--target-n", type=int, default=50_000)
    args = p.parse_args()
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    rates = {}
    for w in args.workers:
        t = time.perf_counter()
        d = generate(args.n, seed=0, workers=w, use_cache=False, progress=False)
        dt = time.perf_counter() - t
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

"""Sweep engine speed: N tiny training runs sequentially in one process vs on local Ray, Ray's fixed costs, and
the same sweep on a two-node "cluster" on this machine (a plain script, not a test).

    .venv/bin/python bench/sweep.py                    # 4 runs, 2 Ray workers, then the two-node cluster
    .venv/bin/python bench/sweep.py --runs 4 --steps 300 --workers 2 --no-cluster

Ray must start inside a loopback-only network namespace on our machines (see core/sweep/cluster.py), so the
script re-runs itself under ``unshare -n`` (root) when it is not in one. Results go to a temporary cache and
assets dir (removed at the end); the demos are made once before anything is timed.

Figures printed (with the load average: the 2 cores are shared, so every figure scales with what is left):
1. wall time of the N runs sequentially in one process (``--in-process``) and on a local Ray instance with
   ``--workers`` CPUs, excluding and including Ray's start-up; their ratio (target with 2 workers on 2 cores:
   >= 1.6x the sequential throughput);
2. Ray's fixed costs: ``ray.init`` of a local instance, the first task (a worker process starting), and the
   round trip of an empty task once workers are warm;
3. the same sweep with ``--address auto`` on a head (``ray start --head --num-cpus 1``) and a second node
   (``--num-cpus 1``): the start-up of the two nodes, the sweep's wall time, and which node ran which run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def spec_text(runs: int, steps: int) -> str:
    base = (ROOT / "sweeps" / "tiny.toml").read_text().split("[[embed-agent]]")[0]
    seeds = ", ".join(str(s) for s in range(runs))
    return (base.replace('name = "tiny"', 'name = "bench"', 1).replace("steps = 30", f"steps = {steps}")
            .replace("grid.seed = [0, 1]", f"grid.seed = [{seeds}]"))


def runs_line(summary: dict) -> str:
    """Each run's wall and CPU seconds (CPU time of the process that ran it, during the run: what the run cost
    whatever the contention; a fresh Ray worker also imports torch in its first run)."""
    return "runs wall/CPU s: " + ", ".join(f"{x['time_s']:.1f}/{x['cpu_s']:.1f}" for x in summary["runs"])


def ray_fixed_costs(workers: int) -> tuple[float, float, float]:
    """(ray.init seconds, first task seconds, mean warm empty-task round trip seconds); leaves Ray running."""
    import ray

    t = time.perf_counter()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t

    @ray.remote(num_cpus=1)
    def noop(x):
        return x

    t = time.perf_counter()
    ray.get(noop.remote(0))
    first_s = time.perf_counter() - t
    ray.get([noop.remote(i) for i in range(workers * 2)])  # every worker warm
    t = time.perf_counter()
    for i in range(20):
        ray.get(noop.remote(i))
    return init_s, first_s, (time.perf_counter() - t) / 20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per tiny run (sweeps/tiny.toml: 30)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-cluster", action="store_true", help="skip the two-node cluster part")
    a = p.parse_args()
    from core.sweep.cluster import can_unshare, in_loopback_namespace, loopback_only

    if not loopback_only():
        if not can_unshare():
            print("Ray must start inside a loopback-only network namespace here; `unshare -n` needs root",
                  file=sys.stderr)
            return 2
        return subprocess.call(in_loopback_namespace([sys.executable, *sys.argv]),
                               env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    tmp = Path(tempfile.mkdtemp(prefix="alva-bench-sweep-"))
    os.environ["ALVA_CACHE_DIR"], os.environ["ALVA_ASSETS_DIR"] = str(tmp / "cache"), str(tmp / "assets")
    spec = tmp / "bench.toml"
    spec.write_text(spec_text(a.runs, a.steps))
    try:
        from core.sweep import load as load_spec, run_sweep
        from core.sweep.engine import demos_for

        sweep = load_spec(spec)
        t = time.perf_counter()
        demos_for(sweep.runs[0].options, progress=False)  # into the cache: not part of either timing
        print(f"demos for the bench (made once, cached): {time.perf_counter() - t:.1f} s")
        print(f"{a.runs} tiny training runs ({a.steps} steps, final evaluation 1 episode per instruction)\n")

        print(f"[{load()}]")
        seq = run_sweep(sweep, in_process=True, refresh=True, progress=False)
        t_seq = seq["wall_s"]
        print(f"sequential, one process:         {t_seq:7.1f} s   ({runs_line(seq)})")

        print(f"[{load()}]")
        import ray

        init_s, first_s, rtt_s = ray_fixed_costs(a.workers)
        par = run_sweep(sweep, refresh=True, progress=False)
        t_ray = par["wall_s"]
        ray.shutdown()
        print(f"local Ray, {a.workers} workers:            {t_ray:7.1f} s   ({runs_line(par)})")
        print(f"  ratio sequential / Ray:        {t_seq / t_ray:7.2f}x  (Ray already started; target >= 1.6x)")
        print(f"  ratio incl. Ray start-up:      {t_seq / (t_ray + init_s):7.2f}x")
        print(f"Ray fixed costs: ray.init {init_s:.1f} s; first task (worker start) {first_s:.2f} s; "
              f"warm empty task round trip {rtt_s * 1000:.1f} ms")
        print(f"[{load()}]\n")

        if not a.no_cluster:
            from core import store
            from core.sweep.cluster import LocalCluster

            with LocalCluster(cpus=(1, 1)) as c:
                print(f"two-node cluster (head --num-cpus 1 + node --num-cpus 1, pids {c.pids}): "
                      f"started in {c.start_s:.1f} s")
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "core", "sweep", str(spec), "--address", "auto",
                                    "--refresh", "--no-progress"], cwd=ROOT, env=c.env, capture_output=True,
                                   text=True)
                wall = time.perf_counter() - t
            if r.returncode != 0:
                print(r.stdout, r.stderr[-3000:])
                return 1
            s = store.read_json(tmp / "cache" / "sweeps" / "bench" / "summary.json")
            heads = {n["node_id"]: ("head" if n.get("head") else "node") for n in s["nodes"]}
            print(f"sweep --address auto: {wall:.1f} s (command incl. connecting), {s['wall_s']:.1f} s in the sweep")
            for x in s["runs"]:
                print(f"  {x['run']:<16} ran on {heads.get(x['node_id'], '?')} {x['node_id'][:8]} (pid {x['pid']}) "
                      f"in {x['time_s']:.1f} s wall, {x['cpu_s']:.1f} s CPU")
            print(f"  nodes used: {len({x['node_id'] for x in s['runs']})} of {len(s['nodes'])}; "
                  f"stopped by pid, processes left: {c.leftover_pids()}")
            print(f"[{load()}]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

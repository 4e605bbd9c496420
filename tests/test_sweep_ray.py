"""Sweeps on real Ray: a two-node cluster, the tiny spec on a local instance (== in-process, then skipped), a
failing run retried then reported.

Why this file re-runs itself: Ray listens on the machine's network address even when told 127.0.0.1, and our
machines may send traffic only to loopback or inside network namespaces we create. So every test that starts Ray
runs inside a loopback-only namespace (``unshare -n``, ``lo`` up: Ray falls back to 127.0.0.1 and no packet
leaves). Collected outside one, this module is a single test that runs this same file again under ``unshare -n``
and passes when the inner run passes; creating the namespace needs root, which CI (``make test``) has.
Kept few and tiny: Ray's start-up costs seconds.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.sweep.cluster import can_unshare, in_loopback_namespace, loopback_only

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (requirements-sweep.txt; `make test` installs it)")
TINY_TRAIN = (ROOT / "sweeps" / "tiny.toml").read_text().split("[[embed-agent]]")[0]

if not loopback_only():
    def test_ray_sweeps_in_a_loopback_only_network_namespace():
        if not can_unshare():
            pytest.skip("creating a network namespace (unshare -n) needs root; Ray must not start outside one here")
        cmd = [sys.executable, "-m", "pytest", __file__, "-q", "-rA", "-p", "no:cacheprovider", "--durations=5"]
        r = subprocess.run(in_loopback_namespace(cmd), cwd=ROOT, capture_output=True, text=True, timeout=1500,
                           env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        print(r.stdout[-8000:])
        assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-4000:]
        last = r.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"\d+ passed in .*", last), last  # every inner test ran and passed (none skipped)
else:
    def _sweep_env(tmp_path: Path) -> dict[str, str]:
        return {"ALVA_CACHE_DIR": str(tmp_path / "cache"), "ALVA_ASSETS_DIR": str(tmp_path / "assets")}

    def test_two_node_cluster_runs_the_sweep_on_both_nodes(tmp_path):
        from core import store
        from core.sweep.cluster import LocalCluster

        spec = tmp_path / "two.toml"
        spec.write_text(TINY_TRAIN.replace('name = "tiny"', 'name = "two"', 1))
        cluster = LocalCluster(cpus=(1, 1))
        with cluster:  # a head and a second node, each a `ray start --block` process of ours, 1 CPU each
            assert len(cluster.pids) == 2
            r = subprocess.run([sys.executable, "-m", "core", "sweep", str(spec), "--address", "auto",
                                "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                               env={**cluster.env, **_sweep_env(tmp_path)})
            assert r.returncode == 0, r.stdout + r.stderr[-4000:]
            procs = list(cluster.procs)
        assert all(p.poll() is not None for p in procs)  # stopped by their own pids (SIGTERM), not `ray stop`
        assert cluster.leftover_pids() == []
        summary = store.read_json(tmp_path / "cache" / "sweeps" / "two" / "summary.json")
        assert summary["backend"] == "ray" and len([n for n in summary["nodes"] if n["alive"]]) == 2
        runs = summary["runs"]
        assert [x["status"] for x in runs] == ["ok", "ok"]
        assert len({x["node_id"] for x in runs}) == 2, runs  # 1 CPU per node: the two runs ran on both nodes
        print({x["run"]: x["node_id"][:8] for x in runs})

    @pytest.fixture(scope="module")
    def local_ray():
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()

    def _files(d: Path) -> dict[str, Path]:
        return {str(p.relative_to(d)): p for p in sorted(d.rglob("*")) if p.is_file()}

    def test_tiny_sweep_on_ray_equals_in_process_and_is_skipped_once_done(local_ray, tmp_path, monkeypatch):
        import torch

        from core.store import read_embeddings
        from core.sweep import load, run_sweep

        results = {}
        for mode in ("in-process", "ray"):
            for k, v in _sweep_env(tmp_path / mode).items():
                monkeypatch.setenv(k, v)
            s = run_sweep(load("tiny"), in_process=mode == "in-process", progress=False)
            assert s["counts"]["ok"] == 6 and s["backend"] == mode, s["counts"]
            assert all((x["pid"] == os.getpid()) == (mode == "in-process") for x in s["runs"])  # where it ran
            results[mode] = tmp_path / mode / "cache" / "sweeps" / "tiny"
        a, b = _files(results["in-process"] / "embeddings"), _files(results["ray"] / "embeddings")
        assert sorted(a) == sorted(b) and len(a) == 8  # tiny-s0/s1 and untrained-tiny-s0/s1, .npz + .json
        for name in (p[:-4] for p in a if p.endswith(".npz")):
            Ea, _, _ = read_embeddings(name, results["in-process"] / "embeddings")
            Eb, _, mb = read_embeddings(name, results["ray"] / "embeddings")
            assert np.array_equal(Ea, Eb), name  # same seeds, same bits, wherever they ran
            assert mb["device"] == "cpu"
        for seed in (0, 1):
            pa, pb = (torch.load(r / "agents" / f"tiny-s{seed}.pt", weights_only=True)["state_dict"]
                      for r in (results["in-process"], results["ray"]))
            assert all(torch.equal(pa[k], pb[k]) for k in pa)
        # the second invocation: everything is done, nothing is submitted (Ray is not even asked)
        again = run_sweep(load("tiny"), progress=False)
        assert again["counts"]["skipped"] == 6 and again["backend"] is None
        # a result removed since: only its run runs again
        (results["ray"] / "embeddings" / "untrained-tiny-s1.npz").unlink()
        third = run_sweep(load("tiny"), progress=False)
        assert {x["run"]: x["status"] for x in third["runs"] if x["status"] != "skipped"} == {
            "embed-agent:untrained-tiny-s1": "ok"}

    def test_a_failing_run_is_retried_then_reported_while_the_others_finish(local_ray, tmp_path, monkeypatch):
        from core.sweep import format_table, parse, run_sweep
        from core.sweep.engine import log_path

        for k, v in _sweep_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        sweep = parse('name = "fail"\nretries = 1\n[[baselines]]\n[[train]]\nname = "broken"\n'
                      'vision = "resnet-hybrid"\nresnet_weights = "/nonexistent/resnet18.pth"\ndemos = 108\n'
                      'steps = 1\neval_every = 0\ndemo_workers = 1\n')
        s = run_sweep(sweep, progress=False)
        print(format_table(s))
        runs = {x["run"]: x for x in s["runs"]}
        bad = runs["train:broken-s0"]
        assert bad["status"] == "failed" and bad["attempts"] == 2 and "no such file" in bad["error"]
        log = Path(bad["log"]).read_text()
        assert log.count("FAILED RuntimeError") == 2 and "Traceback" in log
        ok = runs["baselines"]
        assert ok["status"] == "ok" and ok["attempts"] == 1 and len(ok["outputs"]) == 16
        assert all(Path(p).exists() for p in ok["outputs"]) and log_path(sweep, sweep.runs[0]).exists()
        assert s["counts"] == {"ok": 1, "skipped": 0, "failed": 1, "cancelled": 0}

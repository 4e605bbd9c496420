"""One sweep run, executed where the engine puts it (a Ray worker, or the driver's own process).

A run writes nothing where the driver's assets or cache live: workers on other machines share no disk. It
works in a temporary directory and RETURNS its results to the driver, which alone writes them:

    {"ok": True, "files": {relpath: bytes}, "embeddings": [(stem, float32 array, manifest)],
     "json": {relpath: object}, "info": {device, device_name, host, pid, node_id, success, cpu_s, ...},
     "log": text, "time_s": float}

``relpath`` is relative to the sweep's result root (``agents/alm-s0.pt``, ``trajectories/...``); embeddings are
written with :func:`core.store.save_embeddings` into ``<root>/embeddings``. A run that raises returns
``{"ok": False, "error": ..., "traceback": ..., "log": ...}`` (its log is kept); a worker that dies is reported by
Ray to the driver instead. Inputs come from the driver too: the demos for ``train`` (via Ray's object store),
the checkpoint's bytes for ``evaluate`` and ``embed-agent``.
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the run and restore them afterwards (a worker runs one task at a time)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _node_id() -> str | None:
    if "ray" not in sys.modules:
        return None
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _train(task: dict, demos, tmp: Path) -> dict:
    from ..train import TrainConfig, train

    cfg = TrainConfig(**task["options"], progress=False)
    with _environ(ALVA_ASSETS_DIR=str(tmp / "out")):  # the checkpoint (and a trajectory) land under tmp/out
        agent = train(cfg, command=task["command"], demos=demos, state_path=tmp / "state.pt")
    man = agent.manifest
    return {"files": _files_under(tmp / "out"),
            "info": {"success": man["success"]["overall"], "device": man["device"], "device_name": man["device_name"],
                     "training_time_s": man["training_time_s"]}}


def _checkpoint_file(task: dict, checkpoint: bytes, tmp: Path) -> Path:
    path = tmp / f"{task['options']['agent']}.pt"
    path.write_bytes(checkpoint)
    return path


def _evaluate(task: dict, checkpoint: bytes, tmp: Path) -> dict:
    import torch

    from .. import store
    from ..agent import load_agent
    from ..device import describe, resolve
    from ..train import evaluate, summarise

    o = task["options"]
    dev = resolve(o["device"])
    torch.set_num_threads(1)
    agent = load_agent(_checkpoint_file(task, checkpoint, tmp)).to(dev)
    table = evaluate(agent, episodes_per_instruction=o["episodes"], seed=o["seed"], progress=False)
    result = {"agent": o["agent"], "checkpoint_sha256": task["checkpoint_sha256"], "episodes_per_instruction":
              o["episodes"], "eval_seed": o["seed"], "success": summarise(table), **describe(dev),
              "command": task["command"], "git_commit": store.git_commit(), "date": store.now_iso(),
              "table": table.to_dict(orient="records")}
    rel = f"evaluations/{task['id'].split(':', 1)[1]}.json"
    return {"json": {rel: result}, "info": {"success": result["success"]["overall"], **describe(dev)}}


def _embed_agent(task: dict, checkpoint: bytes, tmp: Path) -> dict:
    from ..agent import agent_embeddings

    o = task["options"]
    stem, E, man = agent_embeddings(_checkpoint_file(task, checkpoint, tmp), untrained=o["untrained"],
                                    device=o["device"])
    return {"embeddings": [(stem, E, man)], "info": {k: man[k] for k in ("device", "device_name")}}


def _embed(task: dict) -> dict:
    from ..embedders.cli import output_name
    from ..embedders.compute import embed
    from ..embedders.registry import resolve

    o = task["options"]
    spec = resolve(o["model"])
    E, man = embed(spec, pooling=o["pooling"], layer=o["layer"], dtype=o["dtype"], batch_size=o["batch_size"],
                   exclude_special=o["exclude_special"], normalize=o["normalize"], use_cache=False, device=o["device"])
    out = output_name(spec, o["name"], o["normalize"], man)
    man = dict(man, model=out, sweep_command=task["command"]) if out != spec.name else dict(
        man, sweep_command=task["command"])
    return {"embeddings": [(out, E, man)], "info": {k: man[k] for k in ("device", "device_name")}}


def _baselines(task: dict) -> dict:
    from ..baselines import compute_all
    from ..device import describe

    return {"embeddings": [(stem, X, man) for stem, (X, man) in compute_all(None).items()],
            "info": describe("cpu")}


def execute(task: dict[str, Any], demos=None, checkpoint: bytes | None = None) -> dict[str, Any]:
    """Run one sweep run (see the module docstring). ``task``: kind, id, options (device resolved by the
    driver), command, git_commit, checkpoint_sha256 (evaluate / embed-agent)."""
    t0, c0 = time.perf_counter(), time.process_time()
    log = io.StringIO()
    info = {"host": socket.gethostname(), "pid": os.getpid(), "node_id": _node_id()}
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                _environ(ALVA_GIT_COMMIT=task["git_commit"]), tempfile.TemporaryDirectory(prefix="alva-run-") as d:
            tmp = Path(d)
            kind = task["kind"]
            if kind == "train":
                out = _train(task, demos, tmp)
            elif kind == "evaluate":
                out = _evaluate(task, checkpoint, tmp)
            elif kind == "embed-agent":
                out = _embed_agent(task, checkpoint, tmp)
            elif kind == "embed":
                out = _embed(task)
            elif kind == "baselines":
                out = _baselines(task)
            else:
                raise ValueError(f"unknown run kind {kind!r}")
    except Exception as e:  # reported to the driver, which retries or reports it; the log is kept
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                "log": log.getvalue(), "info": info, "time_s": time.perf_counter() - t0}
    out["info"] = {**info, **out.get("info", {}), "cpu_s": round(time.process_time() - c0, 2)}
    return {"ok": True, "files": {}, "embeddings": [], "json": {}, **out, "log": log.getvalue(),
            "time_s": time.perf_counter() - t0}

"""The sweep driver: skip what is done, run the rest as Ray tasks (or in this process), write what they return.

Conventions:

- **Where results go.** The result root is ``assets/`` for a spec with ``ship = true``, else
  ``<cache>/sweeps/<name>/``: checkpoints (+ manifest, training log) in ``agents/``, embeddings in
  ``embeddings/``, a recorded trajectory where ``train`` puts it. Evaluations, per-run logs (``logs/<run>.log``,
  every attempt) and ``summary.json`` always go to ``<cache>/sweeps/<name>/``. Only the driver writes them,
  atomically (tmp file + rename), with Ctrl-C held back while one run's results are written; so an interrupted
  sweep leaves no half-written asset, and its finished runs count as done.
- **Done.** A finished run is recorded in the store (``core.store``: stage ``sweep-<kind>``, params = the run's
  options without ``device``, the checkpoint's sha256 for runs that read one, and the result root) with the
  sha256 of each file it wrote. A later invocation skips it while those files are still there, unchanged.
  ``refresh`` reruns everything. The device is not in the key: a run done on any device is done (its manifest
  says where).
- **Phases.** ``train``, ``embed`` and ``baselines`` run first; ``evaluate`` and ``embed-agent`` then read the
  checkpoints (the sweep's own ``agents/`` first, then ``assets/agents``).
- **Failures.** A run that raises (or whose worker dies) is submitted again up to ``retries`` times, then
  reported with its error while the other runs go on.
- **Devices.** ``auto`` takes CUDA where the cluster (or this machine, in-process) has a GPU; a run on CUDA asks
  Ray for ``num_gpus=1``. ``cuda`` without a GPU is a :class:`core.device.DeviceError` before anything runs.
- **Ray** is imported only here, lazily. By default a local instance with the machine's cores is started
  (``workers`` caps it) and shut down at the end; ``address`` (``auto`` or ``HOST:PORT``) joins a running
  cluster; an instance already initialised in this process is used as it is. ``workers`` also caps the runs in
  flight.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import store
from ..device import DeviceError
from .spec import Run, Sweep

STATUSES = ("ok", "skipped", "failed", "cancelled")


def sweep_dir(sweep: Sweep) -> Path:
    """Summary, logs and evaluations of a sweep: ``<cache>/sweeps/<name>/``."""
    return store.cache_dir() / "sweeps" / sweep.name


def results_root(sweep: Sweep) -> Path:
    """Where checkpoints and embeddings go: ``assets/`` (``ship = true``) or the sweep's own directory."""
    return store.assets_dir() if sweep.ship else sweep_dir(sweep)


def log_path(sweep: Sweep, run: Run) -> Path:
    return sweep_dir(sweep) / "logs" / (re.sub(r"[^A-Za-z0-9._=,-]+", "_", run.id) + ".log")


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise KeyboardInterrupt: the block's writes
    finish together. Outside the main thread it does nothing (signals only reach the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt


@dataclass
class RunState:
    run: Run
    status: str = "todo"
    attempts: int = 0
    time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    params: dict[str, Any] | None = None  # the store params of its done-record (None: inputs missing)
    checkpoint: bytes | None = None

    def row(self, sweep: Sweep) -> dict[str, Any]:
        i = self.info
        return {"run": self.run.id, "kind": self.run.kind, "status": self.status, "attempts": self.attempts,
                "time_s": round(self.time_s, 2), "node_id": i.get("node_id"), "host": i.get("host"),
                "pid": i.get("pid"), "cpu_s": i.get("cpu_s"),
                "device": i.get("device"), "device_name": i.get("device_name"), "success": i.get("success"),
                "outputs": self.outputs, "log": str(log_path(sweep, self.run)), "error": self.error,
                "options": self.run.options}


# ---------------------------------------------------------------------------------------------- done records
def _agent_checkpoint(name: str, root: Path) -> Path:
    from ..agent import resolve

    own = root / "agents" / f"{name}.pt"
    return own if own.exists() else resolve(name)


def record_params(sweep: Sweep, state: RunState) -> dict[str, Any] | None:
    """The store params of a run's done-record, or None when its checkpoint does not exist (yet)."""
    run, root = state.run, results_root(sweep)
    from .spec import NEUTRAL_DEFAULTS

    opts = {k: v for k, v in run.options.items()
            if k != "device" and not (k in NEUTRAL_DEFAULTS and v == NEUTRAL_DEFAULTS[k])}
    params: dict[str, Any] = {"options": opts, "root": str(root.resolve())}
    if run.kind in ("evaluate", "embed-agent"):
        path = _agent_checkpoint(run.options["agent"], root)
        if not path.exists():
            return None
        state.checkpoint = path.read_bytes()
        params["checkpoint_sha256"] = hashlib.sha256(state.checkpoint).hexdigest()
    return params


def is_done(run: Run, params: dict[str, Any] | None) -> bool:
    if params is None:
        return False
    rec = store.lookup(f"sweep-{run.kind}", params, validate=lambda v: isinstance(v, dict) and "outputs" in v)
    if rec is None:
        return False
    return all(Path(p).exists() and store.sha256_file(p) == sha for p, sha in rec["outputs"].items())


# ---------------------------------------------------------------------------------------------- backends
class InProcess:
    """Runs each task in this process, one after another (the reference the Ray results are compared with)."""

    name = "in-process"

    def __init__(self) -> None:
        self.pending: deque = deque()

    def gpus(self) -> float:
        from ..device import cuda_available

        return 1.0 if cuda_available() else 0.0

    def put(self, obj):
        return obj

    def submit(self, state: RunState, task: dict, demos, num_cpus: float, num_gpus: float):
        self.pending.append((state, task, demos))
        return state

    def wait(self) -> tuple[RunState, Any]:
        from .tasks import execute

        state, task, demos = self.pending.popleft()
        return state, execute(task, demos, state.checkpoint)

    def cancel(self) -> list[RunState]:
        out = [s for s, _, _ in self.pending]
        self.pending.clear()
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def close(self) -> None:
        pass


class RayBackend:
    """Ray tasks on a local instance (started here) or on a running cluster (``address``)."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        from .tasks import execute

        self.ray, self.owned, self.address = ray, False, address
        t0 = time.perf_counter()
        if ray.is_initialized():
            if address:
                raise RuntimeError("Ray is already initialised in this process; call without an address to use it")
        elif address:
            ray.init(address=address, log_to_driver=False)
            self.owned = True
        else:  # "local": never join a cluster found in /tmp/ray or RAY_ADDRESS by accident
            ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False)
            self.owned = True
        self.start_s = time.perf_counter() - t0
        self.remote = ray.remote(execute)
        self.inflight: dict[Any, RunState] = {}

    def gpus(self) -> float:
        return float(self.ray.cluster_resources().get("GPU", 0.0))

    def put(self, obj):
        return self.ray.put(obj)

    def submit(self, state: RunState, task: dict, demos, num_cpus: float, num_gpus: float):
        ref = self.remote.options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0,
                                  name=state.run.id).remote(task, demos, state.checkpoint)
        self.inflight[ref] = state
        return ref

    def wait(self) -> tuple[RunState, Any]:
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1)
        state = self.inflight.pop(ready[0])
        try:
            return state, self.ray.get(ready[0])
        except Exception as e:  # the worker died, or Ray could not run the task
            return state, e

    def cancel(self) -> list[RunState]:
        for ref in self.inflight:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        out = list(self.inflight.values())
        self.inflight.clear()
        return out

    def describe(self) -> dict[str, Any]:
        nodes = [{"node_id": n["NodeID"], "address": n["NodeManagerAddress"], "alive": n["Alive"],
                  "cpus": n["Resources"].get("CPU"), "gpus": n["Resources"].get("GPU", 0),
                  "head": "node:__internal_head__" in n["Resources"]}
                 for n in self.ray.nodes()]
        return {"backend": self.name, "address": self.address or "local", "start_s": round(self.start_s, 2),
                "nodes": nodes}

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


# ---------------------------------------------------------------------------------------------- the driver
def _task_device(run: Run, gpus: float) -> str:
    """The concrete device of a run on a backend with ``gpus`` GPUs. Raises DeviceError for cuda without one."""
    opt = run.options.get("device", "cpu")
    if run.kind == "embed" and opt != "cuda":
        from ..embedders.registry import resolve

        if resolve(run.options["model"]).loader == "spacy":
            return "cpu"
    if opt == "cuda" and gpus <= 0:
        raise DeviceError(f"run {run.id} asks for device 'cuda', but there is no CUDA GPU here (Ray cluster "
                          "resources / torch.cuda.is_available()). Use --device cpu, or auto to take CUDA only "
                          "where it exists.")
    return "cuda" if opt == "cuda" or (opt == "auto" and gpus > 0) else "cpu"


def _demos_key(o: dict) -> tuple:
    return (o["demos"], o["demo_seed"], o["done_action"], tuple(o["verbs"]), o.get("grammar", ""))


def demos_for(o: dict, progress: bool):
    """The demos a train run's options ask for (:func:`core.demos.generate`, cached), made by the driver."""
    from ..demos import generate
    from ..train import TrainConfig

    cfg = TrainConfig(demos=o["demos"], demo_seed=o["demo_seed"], done_action=o["done_action"], verbs=o["verbs"],
                      grammar=o.get("grammar", ""))
    return generate(cfg.demos, seed=cfg.demo_seed, workers=o["demo_workers"], config=cfg.env_config(),
                    instructions=cfg.instructions(), progress=progress, grammar=cfg.grammar_obj())


def write_results(sweep: Sweep, state: RunState, result: dict) -> list[str]:
    """Write what a run returned (atomically, Ctrl-C held back) and record it as done. Returns the paths."""
    from ..instructions import instruction_set

    root, sdir = results_root(sweep), sweep_dir(sweep)
    with deferred_interrupt():
        paths = [store.write_bytes(root / rel, data) for rel, data in result["files"].items()]
        if state.run.kind == "train":  # the training log sits next to its checkpoint, as for the shipped agents
            stem = state.run.id.split(":", 1)[1]
            paths.append(store.write_bytes(root / "agents" / f"{stem}.log", result["log"].encode()))
        for rel, obj in result["json"].items():
            store.write_json(sdir / rel, obj)
            paths.append(sdir / rel)
        for stem, E, man in result["embeddings"]:
            npz = store.save_embeddings(stem, E, instruction_set(), man, directory=root / "embeddings")
            paths += [npz, npz.with_suffix(".json")]
        outputs = {str(p): store.sha256_file(p) for p in paths}
        if state.params is not None:
            store.put(f"sweep-{state.run.kind}", state.params,
                      {"run": state.run.id, "outputs": outputs, "date": store.now_iso()})
    return [str(p) for p in paths]


def _append_log(sweep: Sweep, state: RunState, header: str, text: str) -> None:
    path = log_path(sweep, state.run)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"===== {header}\n{text}{'' if text.endswith(chr(10)) or not text else chr(10)}")


def run_sweep(sweep: Sweep, *, workers: int | None = None, address: str | None = None,
              device: str | None = None, retries: int | None = None, in_process: bool = False,
              refresh: bool = False, progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Run a sweep; returns its summary (also written to ``<cache>/sweeps/<name>/summary.json``).

    ``device`` overrides every run's device option; ``retries`` the spec's. KeyboardInterrupt: the runs in
    flight are cancelled, the summary says so, and the interrupt is raised again."""
    from tqdm.auto import tqdm

    from ..device import check

    if device is not None:
        check(device)
        sweep = Sweep(**{**sweep.__dict__, "runs": [Run(r.kind, r.id, {**r.options, "device": device}, r.block)
                                                    if "device" in r.options else r for r in sweep.runs]})
    retries = sweep.retries if retries is None else retries
    command = command or f"python -m core sweep {sweep.path or sweep.name}"
    states = [RunState(r) for r in sweep.runs]
    started, t0 = store.now_iso(), time.perf_counter()
    backend = None
    bar = tqdm(total=len(states), desc=f"sweep {sweep.name}", unit="run", disable=not progress, file=sys.stderr)
    interrupted = aborted = False
    try:
        for phase in (0, 1):
            todo = []
            for s in (s for s in states if s.run.phase == phase):
                s.params = record_params(sweep, s)
                if not refresh and is_done(s.run, s.params):
                    s.status = "skipped"
                    bar.update(1)
                else:
                    todo.append(s)
            if not todo:
                continue
            if backend is None:
                backend = InProcess() if in_process else RayBackend(address, workers)
                gpus = backend.gpus()
                for s in states:  # every device is checked before anything runs
                    _task_device(s.run, gpus)
            _run_phase(sweep, backend, todo, retries, workers if not in_process else None, bar, command, progress,
                       gpus, states)
    except KeyboardInterrupt:
        interrupted = True
        for s in (backend.cancel() if backend is not None else []):
            s.status = "cancelled"
    except DeviceError:  # raised before anything ran: no summary over the previous one
        aborted = True
        raise
    finally:
        bar.close()
        if backend is not None and aborted:
            backend.close()
        for s in states:
            if s.status == "todo":
                s.status = "cancelled"
        summary = {"sweep": sweep.name, "spec": str(sweep.path) if sweep.path else None,
                   "spec_sha256": hashlib.sha256(sweep.text.encode()).hexdigest(), "command": command,
                   "started": started, "finished": store.now_iso(), "wall_s": round(time.perf_counter() - t0, 2),
                   "results_root": str(results_root(sweep)), "sweep_dir": str(sweep_dir(sweep)),
                   "interrupted": interrupted,
                   **(backend.describe() if backend is not None else {"backend": None}),
                   "counts": {k: sum(s.status == k for s in states) for k in STATUSES},
                   "runs": [s.row(sweep) for s in states]}
        if not aborted:
            store.write_json(sweep_dir(sweep) / "summary.json", summary)
        if backend is not None and not aborted:
            backend.close()
    if interrupted:
        raise KeyboardInterrupt
    return summary


def _run_phase(sweep: Sweep, backend, todo: list[RunState], retries: int, cap: int | None, bar, command: str,
               progress: bool, gpus: float, states: list[RunState]) -> None:
    demos_refs: dict[tuple, Any] = {}
    queue = deque(todo)
    inflight = 0
    git = store.git_commit()
    while queue or inflight:
        while queue and (cap is None or inflight < cap):
            s = queue.popleft()
            if s.run.kind in ("evaluate", "embed-agent") and s.checkpoint is None:
                s.status, s.error = "failed", (f"no checkpoint {s.run.options['agent']!r} in "
                                               f"{results_root(sweep) / 'agents'} or assets/agents (did its train run "
                                               "fail?)")
                _append_log(sweep, s, "not run", s.error + "\n")
                bar.update(1)
                continue
            dev = _task_device(s.run, gpus)
            demos = None
            if s.run.kind == "train":
                k = _demos_key(s.run.options)
                if k not in demos_refs:  # made (or read from the cache) here, once, and sent to the workers
                    demos_refs[k] = backend.put(demos_for(s.run.options, progress))
                demos = demos_refs[k]
            task = {"kind": s.run.kind, "id": s.run.id, "options": {**s.run.options, "device": dev}
                    if "device" in s.run.options else dict(s.run.options),
                    "command": f"{command} (run {s.run.id})", "git_commit": git,
                    "checkpoint_sha256": (s.params or {}).get("checkpoint_sha256")}
            cpus = float(s.run.options.get("threads", 1))
            backend.submit(s, task, demos, cpus, 1.0 if dev == "cuda" else 0.0)
            s.attempts += 1
            inflight += 1
        s, result = backend.wait()
        inflight -= 1
        if isinstance(result, BaseException):
            result = {"ok": False, "error": f"{type(result).__name__}: {result}", "traceback": "", "log": "",
                      "info": {}, "time_s": 0.0}
        s.time_s += result.get("time_s", 0.0)
        s.info = result.get("info", {})
        where = f"on {s.info.get('host')} pid {s.info.get('pid')} node {str(s.info.get('node_id'))[:12]}"
        if result["ok"]:
            _append_log(sweep, s, f"attempt {s.attempts} {where}: ok in {result['time_s']:.1f} s", result["log"])
            s.outputs = write_results(sweep, s, result)
            s.status, s.error = "ok", None
            bar.update(1)
        else:
            _append_log(sweep, s, f"attempt {s.attempts} {where}: FAILED {result['error']}",
                        result["log"] + result.get("traceback", ""))
            s.error = result["error"]
            if s.attempts <= retries:
                queue.append(s)
            else:
                s.status = "failed"
                bar.update(1)
        bar.set_postfix(ok=sum(x.status == "ok" for x in states), failed=sum(x.status == "failed" for x in states))


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table: one line per run."""
    head = ("run", "status", "tries", "time_s", "node", "device", "success", "results")
    rows = []
    for r in summary["runs"]:
        where = r["outputs"][0] if r["outputs"] else (r["error"] or "")
        rows.append((r["run"], r["status"], str(r["attempts"]), f"{r['time_s']:.1f}", (r["node_id"] or "-")[:8],
                     r["device"] or "-", "-" if r["success"] is None else f"{r['success']:.3f}", where))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths[:-1])) + "  " + row[-1]  # noqa: E731
    c = summary["counts"]
    return "\n".join([fmt(head), *map(fmt, rows),
                      f"{len(rows)} runs: {c['ok']} ok, {c['skipped']} skipped (done before), {c['failed']} failed, "
                      f"{c['cancelled']} cancelled; {summary['wall_s']:.1f} s",
                      f"results: {summary['results_root']}   summary and logs: {summary['sweep_dir']}"])

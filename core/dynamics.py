"""Alignment across learning: the agent's E_L recorded during training, and its alignment curves.

Read top to bottom:

1. :func:`snapshot_steps` -- the recording schedule: step 0, every 10 steps up to 200, then every 50, always
   including the final step. Training (``TrainConfig(record=True)``, CLI ``--record``) also records at its
   quick-eval points (``eval_every``; with the shipped options they are on the schedule already).
2. :class:`Trajectory` -- one recorded run: ``steps`` (int), ``embeddings`` (float32, steps x n x 128, rows in
   ``instructions`` order = ``instruction_set()`` order for the shipped agents; E_L read in eval mode, no grad,
   by :func:`core.agent.instruction_embeddings`, exactly as the shipped embeddings are), ``success`` (the quick
   success check of training -- ``eval_episodes`` greedy episodes per instruction on eval-seed 1 -- at the steps
   where it ran, **NaN everywhere else: never interpolated**), and the provenance ``manifest``.
3. Storage: ``assets/trajectories/<name>-s<seed>.npz`` + ``.json`` (stem from ``store.embedding_file_name``).
   The snapshots are stored in **float16**; the first and the last snapshot are stored a second time in float32,
   exactly, so ``embeddings[0]`` equals the shipped ``untrained-<name>-s<seed>`` embedding and ``embeddings[-1]``
   the shipped ``<name>-s<seed>`` embedding bit for bit. Rounding an agent's E_L to float16 moves P@15 against
   a shipped space by at most ~0.001 (one neighbour in ~800; measured on the shipped agents: README), which is why
   the endpoints -- the numbers other pages also show -- are kept exact.
4. :func:`trajectory_metrics` -- P@k, CKA and RSA (all from :mod:`core.metrics`) of every snapshot against every
   given space, cached in the store (key: the trajectory's and the spaces' array fingerprints and k).
   :func:`learning_curves` stacks them over the seeds of one agent, with the success column beside them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import metrics, store

DENSE_UNTIL, DENSE_EVERY, SPARSE_EVERY = 200, 10, 50
STORAGE_DTYPE = "float16 snapshots; first and last snapshot also stored exactly in float32"
METRIC_COLUMNS = ("step", "model", "p_at_k", "cka", "rsa")
TRAJECTORY_VERSION = 1


class TrajectoryError(ValueError):
    """A trajectory is missing (unknown name or seed), corrupt, or inconsistent."""


def snapshot_steps(total_steps: int) -> list[int]:
    """Recording schedule: 0, 10, ..., 200 (every 10), then every 50 (250, 300, ...), plus ``total_steps``."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps < 0:
        raise ValueError(f"total_steps must be an integer >= 0, got {total_steps!r}")
    total = int(total_steps)
    dense = range(0, min(total, DENSE_UNTIL) + 1, DENSE_EVERY)
    sparse = range(DENSE_UNTIL + SPARSE_EVERY, total + 1, SPARSE_EVERY)
    return sorted({*dense, *sparse, total})


@dataclass
class Trajectory:
    """E_L of one training run at its recorded steps (see the module docstring for the conventions)."""

    name: str
    seed: int
    steps: np.ndarray  # int64 (S,)
    embeddings: np.ndarray  # float32 (S, n, d)
    success: np.ndarray  # float64 (S,), NaN where no quick eval ran
    instructions: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Fingerprint of the recorded arrays (steps + embeddings): part of every cache key built on them."""
        from .report import fingerprint

        return fingerprint(self.embeddings) + "-" + fingerprint(self.steps.astype(np.float32))

    def at(self, step: int) -> np.ndarray:
        """E_L (n, d) at a recorded ``step``."""
        hit = np.flatnonzero(self.steps == step)
        if not len(hit):
            raise TrajectoryError(f"step {step} was not recorded for {self.stem}; recorded steps: "
                                  f"{self.steps.tolist()}")
        return self.embeddings[hit[0]]

    @property
    def stem(self) -> str:
        return store.embedding_file_name(self.name, self.seed)


# ------------------------------------------------------------------------------------------ storage
def trajectories_dir() -> Path:
    return store.assets_dir() / "trajectories"


def save_trajectory(name: str, seed: int, steps: Sequence[int], embeddings, success: Sequence[float],
                    instructions: Sequence[str], manifest: Mapping[str, Any],
                    directory: str | Path | None = None) -> Path:
    """Write ``<name>-s<seed>.npz`` + ``.json`` atomically (format: module docstring). Returns the .npz path."""
    from .instructions import instruction_set_hash

    E = np.asarray(embeddings, dtype=np.float32)
    steps_a, succ = np.asarray(steps, dtype=np.int64), np.asarray(success, dtype=np.float64)
    items = [str(s) for s in instructions]
    if E.ndim != 3 or E.shape[0] != len(steps_a) or E.shape[1] != len(items) or len(succ) != len(steps_a):
        raise TrajectoryError(f"inconsistent trajectory: embeddings {E.shape}, {len(steps_a)} steps, "
                              f"{len(succ)} success values, {len(items)} instructions")
    if len(steps_a) == 0 or (np.diff(steps_a) <= 0).any():
        raise TrajectoryError(f"steps must be non-empty and strictly increasing, got {steps_a.tolist()}")
    if not np.isfinite(E).all():
        raise TrajectoryError(f"trajectory {name}-s{seed} has NaN or inf embeddings")
    d = Path(directory) if directory is not None else trajectories_dir()
    d.mkdir(parents=True, exist_ok=True)
    stem = store.embedding_file_name(name, seed)
    man = {"date": store.now_iso(), "git_commit": store.git_commit(), **manifest, "name": name, "seed": int(seed),
           "format_version": TRAJECTORY_VERSION, "dtype": STORAGE_DTYPE, "steps": steps_a.tolist(),
           "success_steps": steps_a[np.isfinite(succ)].tolist(), "n_snapshots": int(len(steps_a)),
           "instruction_set_hash": instruction_set_hash(items), "n_items": int(E.shape[1]), "dim": int(E.shape[2])}
    tmp = d / f".{stem}.tmp.npz"
    np.savez_compressed(tmp, steps=steps_a, embeddings=E.astype(np.float16), endpoints=E[[0, -1]],
                        success=succ, instructions=np.array(items))
    tmp.replace(d / f"{stem}.npz")
    store.write_json(d / f"{stem}.json", man)
    return d / f"{stem}.npz"


def available(directory: str | Path | None = None) -> list[tuple[str, int]]:
    """The trajectories present (shipped): sorted (name, seed) pairs."""
    d = Path(directory) if directory is not None else trajectories_dir()
    out = []
    for p in d.glob("*.npz"):
        m = re.fullmatch(r"(.+)-s(\d+)", p.stem)
        if m and not p.name.startswith("."):
            out.append((m.group(1), int(m.group(2))))
    return sorted(out)


def load_trajectory(name: str, seed: int = 0, directory: str | Path | None = None) -> Trajectory:
    """The recorded trajectory of ``<name>-s<seed>`` (e.g. ``load_trajectory("alm", 0)``).

    Raises :class:`TrajectoryError` naming what is available for an unknown name or seed, and for a corrupt or
    inconsistent file.
    """
    d = Path(directory) if directory is not None else trajectories_dir()
    stem = store.embedding_file_name(name, seed)
    path = d / f"{stem}.npz"
    if not path.exists():
        have = available(d)
        seeds = [s for n, s in have if n == name]
        what = (f"seeds of {name!r}: {seeds}" if seeds else
                f"names: {sorted({n for n, _ in have})}" if have else "none")
        raise TrajectoryError(f"no trajectory {stem!r} in {d}; available {what}. Record one with "
                              f"`python -m core train --record` (scripts/train_shipped.sh has the shipped runs)")
    try:
        with np.load(path, allow_pickle=False) as z:
            steps, E16, ends = z["steps"].astype(np.int64), z["embeddings"], z["endpoints"]
            success, items = z["success"].astype(np.float64), [str(s) for s in z["instructions"]]
        manifest = store.read_json(path.with_suffix(".json"))
    except Exception as e:  # BadZipFile, KeyError, ValueError, EOFError, FileNotFoundError ...
        raise TrajectoryError(f"corrupt trajectory file {path}: {type(e).__name__}: {e}") from None
    S = len(steps)
    if E16.ndim != 3 or E16.shape[0] != S or E16.shape[1] != len(items) or ends.shape != (2, *E16.shape[1:]) \
            or success.shape != (S,) or S == 0 or (np.diff(steps) <= 0).any():
        raise TrajectoryError(f"corrupt trajectory file {path}: inconsistent arrays (embeddings {E16.shape}, "
                              f"endpoints {ends.shape}, {S} steps, {success.shape} success, {len(items)} items)")
    E = E16.astype(np.float32)
    E[0], E[-1] = ends[0], ends[-1]
    return Trajectory(name=name, seed=int(seed), steps=steps, embeddings=E, success=success, instructions=items,
                      manifest=manifest)


# ------------------------------------------------------------------------------------------ analysis
def trajectory_metrics(traj: Trajectory, spaces: Mapping[str, np.ndarray], k: int = 15) -> pd.DataFrame:
    """P@k, CKA and RSA of every snapshot against every space -> one row per (step, model).

    Columns ``step, model, p_at_k, cka, rsa``; conventions of :mod:`core.metrics` (cosine neighbours, self
    excluded; linear CKA, columns centred; RSA = Spearman of cosine-distance RDMs). ``spaces`` maps a name to an
    (n, dim) array whose rows are the trajectory's instructions in order. Cached in the store.
    """
    from .report import fingerprint

    n = traj.embeddings.shape[1]
    k = metrics.check_k(k, n)
    checked = {str(m): metrics.check_pair(traj.embeddings[-1], X)[1] for m, X in spaces.items()}
    params = {"v": TRAJECTORY_VERSION, "trajectory": traj.fingerprint(), "k": k,
              "spaces": {m: fingerprint(X) for m, X in checked.items()}}

    def compute() -> pd.DataFrame:
        rows = []
        for step, E in zip(traj.steps.tolist(), traj.embeddings):
            for m, X in checked.items():
                rows.append((int(step), m, metrics.precision_at_k(E, X, k), metrics.cka(E, X), metrics.rsa(E, X)))
        return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))

    return store.cached("trajectory_metrics", params, compute).copy()


def learning_curves(name: str, spaces: Mapping[str, np.ndarray], k: int = 15,
                    seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """:func:`trajectory_metrics` of every recorded seed of ``name`` (default: all available), stacked.

    Columns ``seed, step, model, p_at_k, cka, rsa, success`` (success: the quick check at that step, NaN where
    none ran).
    """
    seeds = list(seeds) if seeds is not None else [s for n, s in available() if n == name]
    if not seeds:
        raise TrajectoryError(f"no trajectories of {name!r}; available: {available()}")
    frames = []
    for s in seeds:
        t = load_trajectory(name, s)
        df = trajectory_metrics(t, spaces, k)
        df.insert(0, "seed", int(s))
        df["success"] = df.step.map(dict(zip(t.steps.tolist(), t.success.tolist())))
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------ CLI
def reference_spaces(names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Shipped spaces by name (seeded entries: their first seed; ``alm-s2``-style stems work too).
    Default: every space present (``core.embedders.available()``)."""
    from .embedders import available as present
    from .report import load_space

    return {n: load_space(n)[0] for n in (names if names else present())}


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m core dynamics", description="Alignment across learning: P@k, CKA "
                                "and RSA of each recorded E_L snapshot of an agent against shipped spaces.")
    p.add_argument("--name", default="alm", help="agent name (alm, alm-done, alm-word-random, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="", help="comma-separated spaces (default: every space present)")
    p.add_argument("-k", "--k", type=int, default=15)
    p.add_argument("--steps", default="", help="comma-separated recorded steps to print (default: all)")
    p.add_argument("--metric", choices=["p_at_k", "cka", "rsa"], default="p_at_k", help="metric of the table")
    p.add_argument("--csv", default=None, help="write the long table (every step, model and metric) here")
    p.add_argument("--list", action="store_true", help="list the trajectories present and exit")
    args = p.parse_args(argv[1:])
    if args.list:
        for name, seed in available():
            print(store.embedding_file_name(name, seed))
        return 0
    traj = load_trajectory(args.name, args.seed)
    spaces = reference_spaces([m.strip() for m in args.models.split(",") if m.strip()])
    df = trajectory_metrics(traj, spaces, args.k)
    if args.csv:
        df.to_csv(args.csv, index=False)
    table = df.pivot(index="step", columns="model", values=args.metric)[list(spaces)]
    table.insert(0, "success", pd.Series(traj.success, index=traj.steps))
    if args.steps:
        table = table.loc[[int(s) for s in args.steps.split(",")]]
    chance = metrics.chance_precision(len(traj.instructions), args.k)
    print(f"# {traj.stem}: {args.metric} (k = {args.k}) of E_L at each recorded step vs each space; success = quick "
          f"check of training (NaN: none ran at that step); chance P@k = {chance:.3f}")
    with pd.option_context("display.max_rows", 500, "display.width", 250, "display.max_columns", 50):
        print(table.round(3).to_string())
    return 0

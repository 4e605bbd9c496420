"""Cached loaders: every page reads data through these (never from disk on every rerun).

* large read-only arrays (embeddings, layouts, pair statistics, episodes): ``st.cache_resource`` -- one shared
  object per server, never mutated by a page;
* small frames (tables): ``st.cache_data``.

Every loader takes ``token``, a fingerprint of the asset/cache files (names + sizes + mtimes), so results are
recomputed when assets change on disk (e.g. a newly shipped model) without restarting the server.
The work is done in :mod:`core`; its diskcache store is shared with the command line.

A session's own uploaded embeddings (:mod:`ui.uploads`) are models too: pages pass :func:`session_token`, the
files' token plus a fingerprint of the session's uploads, so no cached result crosses between sessions whose
uploads differ. An upload's array is served from the session (never cached here), and what is computed from it
is kept in these in-memory caches only, never in the diskcache.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from core import metrics, report, store
from ui import uploads
from ui.state import main_seed


def _single_thread_blas() -> None:
    """The dashboard only does small matrix work (n = 108): BLAS threads add overhead and stall badly when the
    cores are shared (measured here: a 108 x 128 SVD took 0.7 s with the default threads under load, 1 ms with
    one). Limit BLAS to one thread for the whole server process."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing: keep the defaults
        pass


_single_thread_blas()


def _scan(d: Path, pattern: str) -> list[str]:
    try:
        return [f"{e.name}:{e.stat().st_size}:{e.stat().st_mtime_ns}"
                for e in sorted(os.scandir(d), key=lambda e: e.name)
                if e.is_file() and Path(e.name).match(pattern)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def token() -> str:
    """Fingerprint of the files the dashboard reads (cheap: a few directory scans)."""
    from core.embedders.files import search_dirs

    parts: list[str] = [str(store.assets_dir()), str(store.cache_dir())]
    for d in search_dirs():
        parts += _scan(d, "*.json")
    parts += _scan(report.report_dir(), "index.json")
    parts += _scan(store.assets_dir() / "agents", "*.json")
    parts += _scan(store.assets_dir() / "agents", "*.pt")
    for d in agent_dirs()[1:]:  # the held-out split and word-init agents (issue 16)
        parts += _scan(d, "*.json") + _scan(d, "*.pt")
    parts += _scan(store.assets_dir() / "generalisation", "manifest.json")
    sets = store.assets_dir() / "instruction_sets"  # issue 15: the larger instruction sets and their tables
    parts += _scan(sets, "*")
    try:
        for e in sorted(os.scandir(sets), key=lambda e: e.name):
            if e.is_dir():
                parts += [e.name] + _scan(Path(e.path) / "embeddings", "*.json")
    except (FileNotFoundError, NotADirectoryError):
        pass
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def session_token() -> str:
    """:func:`token` plus, when this session has uploaded embeddings, '+' and a fingerprint of them
    (:func:`ui.uploads.token_suffix`): the key every page passes to the loaders below."""
    return token() + uploads.token_suffix()


def _files(tok: str) -> str:
    """The files' part of a session token (what is shared by every session)."""
    return tok.split("+", 1)[0]


def _upload(tok: str, name: str):
    """This session's uploaded space ``name`` when ``tok`` is a token with uploads, else None."""
    return uploads.get(name) if "+" in tok else None


def _persist(tok: str, *names: str) -> bool:
    """False when a result involves an uploaded space: it is then never written to the diskcache."""
    return not any(_upload(tok, n) is not None for n in names)


# ------------------------------------------------------------------------------------------ tables
@st.cache_data(max_entries=8, show_spinner=False)
def inventory(tok: str) -> pd.DataFrame:
    return report.inventory()


@st.cache_data(max_entries=8, show_spinner=False)
def agent_success(tok: str) -> pd.DataFrame:
    return report.agent_success()


@st.cache_data(max_entries=8, show_spinner=False)
def agent_success_by(tok: str, group: str = "verb_object") -> pd.DataFrame:
    return report.agent_success_by(group)


@st.cache_data(max_entries=16, show_spinner="Computing P@15 with bootstrap CIs and permutation nulls…")
def headline(tok: str, reference: str, ref_seed: int | None, k: int) -> pd.DataFrame:
    """The Overview's table (:func:`core.report.headline_table`), with a row for each of the session's uploads."""
    extra = {n: u.embeddings for n, u in uploads.spaces().items()} if "+" in tok else None
    return report.headline_table(reference, ref_seed, k, extra=extra)


def context(tok: str) -> dict[str, Any]:
    """Asset-dependent choices and defaults for the cross-page state (plus this session's uploads, for a token
    that has them)."""
    ctx = _context(_files(tok))
    return uploads.extend_context(ctx) if "+" in tok else ctx


@st.cache_data(max_entries=8, show_spinner=False)
def _context(tok: str) -> dict[str, Any]:
    inv = report.inventory()
    present = inv[inv["present"]]
    known = list(inv["name"])
    agent_seeds = [s for s in report.seeds_of(report.REFERENCE) if s is not None]
    ckpt = sorted(int(p.stem.rsplit("-s", 1)[1])
                  for p in (store.assets_dir() / "agents").glob(f"{report.REFERENCE}-s*.pt")
                  if p.stem.rsplit("-s", 1)[1].isdigit())
    seeds = sorted(set(agent_seeds) | set(ckpt)) or [0]
    default_models = report.default_models(inv)
    agents = shipped_agents(tok)
    main = f"{report.REFERENCE}-s{seeds[0]}"
    from core.scaling import available_sets

    return {"sets": available_sets(),
            "checkpoints": list(agents), "default_checkpoint": main if main in agents else next(iter(agents), ""),
            "known_models": known, "present": list(present["name"]), "seeds": seeds, "checkpoint_seeds": ckpt,
            "default_seed": seeds[0], "default_models": default_models,
            "default_ref": report.REFERENCE if report.REFERENCE in list(present["name"]) else
            (list(present["name"]) or [report.REFERENCE])[0],
            "kinds": dict(zip(inv["name"], inv["kind"])), "families": dict(zip(inv["name"], inv["family"])),
            "commands": dict(zip(inv["name"], inv["compute_command"])),
            "install": dict(zip(inv["name"], inv["install"])),
            "seeded": {n: bool(s) for n, s in zip(inv["name"], inv["seeds"])},
            "seeds_of": {n: [s for s in report.seeds_of(n) if s is not None] for n in known}}


# ------------------------------------------------------------------------------------------ spaces
def _space(tok: str, name: str, seed: int | None) -> tuple[np.ndarray, dict]:
    """(array, manifest): this session's upload of that name (from the session), else the file's (cached)."""
    up = _upload(tok, name)
    if up is not None:
        return up.embeddings, up.manifest
    return _file_space(_files(tok), name, seed)


@st.cache_resource(max_entries=128, show_spinner=False)
def _file_space(tok: str, name: str, seed: int | None) -> tuple[np.ndarray, dict]:
    E, man = report.load_space(name, seed)
    E.setflags(write=False)
    return E, man


def space_seed(ctx: dict[str, Any], name: str, agent_seed: int) -> int | None:
    """The seed file used for ``name``: the agent seed for seeded entries that have it, else the first present."""
    return report.default_seed(name, agent_seed, ctx["seeds_of"].get(name, [])) if ctx["seeded"].get(name) else None


def space(tok: str, ctx: dict[str, Any], name: str, agent_seed: int) -> tuple[np.ndarray, dict, int | None]:
    """(array, manifest, seed used). Raises NotComputedError / UnknownModelError (not cached)."""
    s = space_seed(ctx, name, agent_seed)
    E, man = _space(tok, name, s)
    return E, man, s


def label(name: str, seed: int | None) -> str:
    return report.stem(name, seed)


@st.cache_resource(max_entries=128, show_spinner=False)
def _ranking(tok: str, name: str, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Every item's full neighbour ranking (n, n-1) and the cosine similarities in that order: computed once per
    space, so that a new k is a slice (a k slider move computes nothing)."""
    E = _space(tok, name, seed)[0]
    idx, sim = metrics.neighbours(E, E.shape[0] - 1, return_similarity=True)
    idx.setflags(write=False)
    sim.setflags(write=False)
    return idx, sim


def neighbours(tok: str, name: str, seed: int | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities), each (n, k): every item's k nearest neighbours, nearest first (self
    excluded, ties by index: :func:`core.metrics.neighbours`, of which the first k of the full ranking are)."""
    idx, sim = _ranking(tok, name, seed)
    k = metrics.check_k(k, idx.shape[0])
    return idx[:, :k], sim[:, :k]


@st.cache_resource(max_entries=256, show_spinner=False)
def _per_item_counts(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> np.ndarray:
    v = metrics.per_item_counts(_space(tok, a, sa)[0], _space(tok, b, sb)[0])
    v.setflags(write=False)
    return v


def per_item(tok: str, a: str, sa: int | None, b: str, sb: int | None, k: int) -> np.ndarray:
    """(n,) per-item P@k(i) of space a vs space b (:func:`core.metrics.per_item_precision`), read from the pair's
    intersection counts for every k (computed once per pair)."""
    counts = _per_item_counts(tok, a, sa, b, sb)
    k = metrics.check_k(k, counts.shape[0])
    return counts[:, k - 1] / k


@st.cache_resource(max_entries=256, show_spinner=False)
def curve(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> np.ndarray:
    v = metrics.precision_curve(_space(tok, a, sa)[0], _space(tok, b, sb)[0])
    v.setflags(write=False)
    return v


@st.cache_resource(max_entries=256, show_spinner=False)
def pair_stats(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> dict[str, Any]:
    """Curve + bootstrap CI + permutation null (shipped, or computed once and kept in the diskcache; with an
    upload: kept in memory only)."""
    out = report.pair_stats(_space(tok, a, sa)[0], _space(tok, b, sb)[0], persist=_persist(tok, a, b))
    _ready_memo()[("pair", tok, a, sa, b, sb)] = True
    return out


@st.cache_resource(show_spinner=False)
def _ready_memo() -> dict:
    """Artefacts known to be shipped or cached (server-wide; an artefact never becomes un-ready for a token).
    Results that involve an upload are marked here once computed into the in-memory caches."""
    return {}


def _ready(key: tuple, check: Callable[[], bool]) -> bool:
    """``check()`` until it says ready, then remembered under ``key`` (a not-ready answer is asked again: the
    artefact may have been computed since)."""
    memo = _ready_memo()
    if not memo.get(key):
        memo[key] = check()
    return memo[key]


def pair_stats_ready(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> bool:
    return _ready(("pair", tok, a, sa, b, sb), lambda: report.is_ready(
        "report.pair", report.pair_params(_space(tok, a, sa)[0], _space(tok, b, sb)[0])))


@st.cache_resource(max_entries=64, show_spinner=False)
def precision_matrix(tok: str, spaces: tuple[tuple[str, int | None], ...], k: int) -> pd.DataFrame:
    return metrics.precision_matrix({label(n, s): _space(tok, n, s)[0] for n, s in spaces}, k)


def procrustes_ready(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> bool:
    return _ready(("procrustes", tok, a, sa, b, sb), lambda: report.is_ready(
        "report.procrustes", report.procrustes_params(_space(tok, a, sa)[0], _space(tok, b, sb)[0])))


@st.cache_resource(max_entries=128, show_spinner=False)
def procrustes_stats(tok: str, a: str, sa: int | None, b: str, sb: int | None) -> dict[str, Any]:
    out = report.procrustes_stats(_space(tok, a, sa)[0], _space(tok, b, sb)[0], persist=_persist(tok, a, b))
    _ready_memo()[("procrustes", tok, a, sa, b, sb)] = True
    return out


@st.cache_resource(max_entries=128, show_spinner=False)
def layout(tok: str, name: str, seed: int | None) -> np.ndarray:
    xy = np.array(report.layout(_space(tok, name, seed)[0], persist=_persist(tok, name)), dtype=np.float64)
    xy.setflags(write=False)
    _ready_memo()[("layout", tok, name, seed)] = True
    return xy


def layout_ready(tok: str, name: str, seed: int | None) -> bool:
    return _ready(("layout", tok, name, seed), lambda: report.layout_is_ready(_space(tok, name, seed)[0]))


def _joint_spaces(tok: str, spaces: tuple[tuple[str, int | None], ...]) -> dict[str, np.ndarray]:
    return {label(m, s): _space(tok, m, s)[0] for m, s in spaces}


@st.cache_resource(max_entries=32, show_spinner=False)
def joint_layout(tok: str, spaces: tuple[tuple[str, int | None], ...], ref: str) -> dict[str, np.ndarray]:
    """(space name -> (n, 2)): the joint layout of ``spaces`` ((name, seed) pairs) around ``ref``
    (:func:`core.report.joint_layout`), shipped or cached."""
    seeds = dict(spaces)
    xy = report.joint_layout(_joint_spaces(tok, spaces), label(ref, seeds[ref]),
                             persist=_persist(tok, *(m for m, _ in spaces)))
    out = {m: xy[label(m, s)] for m, s in spaces}
    for v in out.values():
        v.setflags(write=False)
    _ready_memo()[("joint", tok, spaces, ref)] = True
    return out


def joint_ready(tok: str, spaces: tuple[tuple[str, int | None], ...], ref: str) -> bool:
    seeds = dict(spaces)
    return _ready(("joint", tok, spaces, ref), lambda: report.joint_is_ready(_joint_spaces(tok, spaces),
                                                                             label(ref, seeds[ref])))


@st.cache_data(max_entries=4, show_spinner=False)
def metadata() -> pd.DataFrame:
    from core.instructions import metadata as md

    return md()


# ------------------------------------------------------------------------------------------ agent episodes
def checkpoints() -> list[str]:
    """Shipped agent checkpoints (stems of assets/agents/*.pt)."""
    return sorted(p.stem for p in (store.assets_dir() / "agents").glob("*.pt"))


#: the groups of the Agent page's agent picker, in display order
AGENT_GROUPS = ("main agents", "variants", "held-out split agents", "LM word-init agents", "word-init controls")


def agent_dirs() -> list[Path]:
    """Where shipped checkpoints live, in search order (:func:`core.store.agent_dirs`, torch-free)."""
    return store.agent_dirs()


def agent_group(name: str, manifest: dict[str, Any]) -> str:
    """Which group of :data:`AGENT_GROUPS` a shipped checkpoint belongs to (from its name and training manifest)."""
    from core.word_init import LM_SOURCES

    init = (manifest.get("train_config") or {}).get("word_init") or "identity"
    if main_seed(name) is not None:
        return "main agents"
    if manifest.get("holdout"):
        if init in LM_SOURCES:
            return "LM word-init agents"
        return "held-out split agents" if init == "identity" else "word-init controls"
    return "variants"


def _lite(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the pages read from a training manifest (``core.agent.trained_on`` and the success per instruction),
    without the training history."""
    tc = manifest.get("train_config") or {}
    ho = manifest.get("holdout") or None
    return {"name": manifest.get("name"), "seed": manifest.get("seed"),
            "train_config": {k: tc.get(k) for k in ("word_init", "holdout", "verbs") if k in tc},
            "holdout": ({k: ho.get(k) for k in ("split", "instructions", "success_trained", "success_held_out")}
                        if ho else None),
            "word_init": ({k: (manifest.get("word_init") or {}).get(k) for k in ("model", "weights_sha256")}
                          if manifest.get("word_init") else None),
            "success": {k: (manifest.get("success") or {}).get(k) for k in
                        ("overall", "per_instruction", "episodes_per_instruction")}}


def _sort_key(item: tuple[str, dict[str, Any]]) -> tuple:
    name, info = item
    ms = main_seed(name)
    return AGENT_GROUPS.index(info["group"]), -1 if ms is None else ms, name


@st.cache_data(max_entries=8, show_spinner=False)
def shipped_agents(tok: str) -> dict[str, dict[str, Any]]:
    """{name: {"path", "dir", "group", "manifest"}} of every shipped checkpoint (the first directory of
    :func:`agent_dirs` wins a clash, as in ``core.agent.shipped_checkpoints``), ordered by :data:`AGENT_GROUPS`.
    ``manifest``: the .json beside the .pt, reduced by :func:`_lite` ({} when absent or unreadable)."""
    out: dict[str, dict[str, Any]] = {}
    for d in agent_dirs():
        for p in sorted(d.glob("*.pt")):
            if p.stem in out:
                continue
            try:
                man = _lite(store.read_json(p.with_suffix(".json")))
            except (OSError, ValueError):
                man = {}
            out[p.stem] = {"path": str(p), "dir": f"assets/{d.relative_to(store.assets_dir()).as_posix()}",
                           "group": agent_group(p.stem, man), "manifest": man}
    return dict(sorted(out.items(), key=_sort_key))


@st.cache_resource(max_entries=6, show_spinner=False)
def _agent(tok: str, name: str):
    import torch  # imported here, on first use, never at page import

    torch.set_num_threads(1)  # one small forward pass per step: threads only add contention
    from core.agent import load_agent

    return load_agent(name)


def episode(tok: str, agent_name: str, instruction: str, env_seed: int) -> dict[str, Any]:
    """:func:`_episode`, shared by every session whatever it uploaded (an episode depends on the files only)."""
    return _episode(_files(tok), agent_name, instruction, env_seed)


@st.cache_resource(max_entries=4, show_spinner=False)  # ~20 MB of frames per episode
def _episode(tok: str, agent_name: str, instruction: str, env_seed: int) -> dict[str, Any]:
    """One rollout of a shipped agent (:class:`core.rollout.Rollout`) with what the Agent page shows per step:
    ``room`` and ``pov`` frames (t = 0..T), ``probs`` (T, 7), ``actions``, and ``attention_views``: the agent's
    view at t with its attention at t drawn over it (t < T; mean over heads and words)."""
    from core import rollout as R

    ep = R.rollout(_agent(tok, agent_name), instruction, int(env_seed))
    att = ep.attention_mean  # (T, 7, 7)
    views = [R.attention_overlay(ep.frames_pov[t], att[t]) for t in range(len(att))]
    probs = ep.probs.astype(np.float64)
    for arr in (probs, att, *views):
        arr.setflags(write=False)
    return {"room": ep.frames_full, "pov": ep.frames_pov, "probs": probs, "actions": list(ep.actions),
            "attention": att, "attention_views": views, "success": ep.success, "length": ep.length,
            "env_seed": int(env_seed), "agent": agent_name, "instruction": ep.instruction}


# ------------------------------------------------------------------------------------------ instruction sets
# The larger presets of issue 15 (core.scaling): {model: [seed arrays]}, rows in the set's instruction order.
# ``paper108`` pages keep the loaders above; these serve every other shipped set.
@st.cache_resource(max_entries=3, show_spinner="Loading the instruction set's embeddings…")
def _set_spaces(tok: str, name: str) -> dict[str, list[np.ndarray]]:
    from core.scaling import spaces

    out = {}
    for m, arrays in spaces(name).items():
        out[m] = []
        for E in arrays:
            E = np.asarray(E)
            E.setflags(write=False)
            out[m].append(E)
    return out


def set_models(tok: str, name: str) -> dict[str, int]:
    """{model: number of seed arrays} of a shipped set, in :func:`core.scaling.spaces` order."""
    return {m: len(v) for m, v in _set_spaces(_files(tok), name).items()}


def set_space(tok: str, name: str, model: str, seed: int) -> np.ndarray:
    """One space of a set: ``model``'s array of seed position ``seed`` (clamped to the seeds present)."""
    arrays = _set_spaces(_files(tok), name)[model]
    return arrays[min(max(int(seed), 0), len(arrays) - 1)]


def set_seed(tok: str, name: str, model: str, seed: int) -> int | None:
    """The seed position used for ``model`` (None for a model with one array: references and baselines)."""
    n = set_models(tok, name).get(model, 0)
    return None if n <= 1 and model not in ("alm", "untrained-alm") else min(max(int(seed), 0), max(n - 1, 0))


def set_label(model: str, seed: int | None) -> str:
    return model if seed is None else f"{model}-s{seed}"


@st.cache_resource(max_entries=512, show_spinner=False)
def set_neighbours_of(tok: str, name: str, model: str, seed: int | None, i: int, k: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities), each (k,): item i's k nearest neighbours in that space, nearest first
    (:func:`core.metrics.neighbours_of`: row i of :func:`core.metrics.neighbours`, in O(n d))."""
    idx, sim = metrics.neighbours_of(set_space(tok, name, model, seed or 0), i, k, return_similarity=True)
    idx.setflags(write=False)
    sim.setflags(write=False)
    return idx, sim


@st.cache_resource(max_entries=256, show_spinner=False)
def set_per_item(tok: str, name: str, a: str, sa: int | None, b: str, sb: int | None, k: int) -> np.ndarray:
    """(n,) per-item P@k(i) of two spaces of a set (:func:`core.metrics.per_item_precision`; blocked partial
    selection from 1,024 items on)."""
    v = metrics.per_item_precision(set_space(tok, name, a, sa or 0), set_space(tok, name, b, sb or 0), k)
    v.setflags(write=False)
    _ready_memo()[("set_pk", tok, name, a, sa, b, sb, k)] = True
    return v


def set_per_item_ready(tok: str, name: str, a: str, sa: int | None, b: str, sb: int | None, k: int) -> bool:
    """Whether :func:`set_per_item` of these arguments is in memory already (nothing is persisted for sets)."""
    return bool(_ready_memo().get(("set_pk", tok, name, a, sa, b, sb, k)))


@st.cache_resource(max_entries=64, show_spinner=False)
def set_curve(tok: str, name: str, a: str, sa: int | None, b: str, sb: int | None) -> np.ndarray:
    """P@k for every k (:func:`core.metrics.precision_curve`; full rankings: for sets up to ``CURVE_MAX_N``)."""
    v = metrics.precision_curve(set_space(tok, name, a, sa or 0), set_space(tok, name, b, sb or 0))
    v.setflags(write=False)
    return v


#: the largest set whose P@k curve over every k is drawn (beyond it: P@k at the chosen k only)
CURVE_MAX_N = 1024


@st.cache_data(max_entries=4, show_spinner=False)
def set_metadata(name: str) -> pd.DataFrame:
    """:func:`core.instructions.metadata` of a set (factor columns of every instruction)."""
    from core.instructions import instruction_set, metadata as md, preset

    g = preset(name)
    return md(instruction_set(g), g)


@st.cache_data(max_entries=4, show_spinner=False)
def scaling_tables(tok: str) -> dict[str, Any]:
    """:func:`core.scaling.load` (raises :class:`core.scaling.NotShippedError`, not cached)."""
    from core.scaling import load

    return load()


def set_joint_ready(tok: str, name: str, spaces: tuple[tuple[str, int | None], ...], ref: str) -> bool:
    arrays = {set_label(m, s): set_space(tok, name, m, s or 0) for m, s in spaces}
    seeds = dict(spaces)
    return _ready(("set_joint", tok, name, spaces, ref),
                  lambda: report.joint_is_ready(arrays, set_label(ref, seeds[ref])))


@st.cache_resource(max_entries=8, show_spinner=False)
def set_joint_layout(tok: str, name: str, spaces: tuple[tuple[str, int | None], ...], ref: str
                     ) -> dict[str, np.ndarray]:
    """(label -> (n, 2)): the joint layout (:func:`core.report.joint_layout`, cached in the diskcache) of spaces of
    a set around ``ref``."""
    arrays = {set_label(m, s): set_space(tok, name, m, s or 0) for m, s in spaces}
    seeds = dict(spaces)
    out = report.joint_layout(arrays, set_label(ref, seeds[ref]))
    for v in out.values():
        v.setflags(write=False)
    _ready_memo()[("set_joint", tok, name, spaces, ref)] = True
    return out

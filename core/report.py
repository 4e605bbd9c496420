"""The numbers behind the dashboard's Overview, P@k and Procrustes pages, and the small artefacts that ship them.

Pure core (no streamlit). Every statistic is computed by :mod:`core.metrics`; this module only chooses the
pairs, the settings and where a result is kept:

1. ``assets/report/`` -- shipped artefacts written by ``python -m core.report --ship`` (a fresh clone renders
   without recomputing anything);
2. the shared diskcache store (``core.store.cached``) -- anything not shipped is computed once and kept.

An artefact is found by its cache key, and every key includes a fingerprint (sha256) of the embedding arrays
it was computed from, so a shipped artefact whose inputs changed is simply not used (it is recomputed and
cached instead). ``python -m core.report --check`` lists shipped entries that no longer match.

Settings (one place): reference = the trained agent ``alm`` (seed 0 unless chosen), k = 15, bootstrap =
1000 item resamples, permutation null = 1000 shuffles of the model's rows, statistics seed 0.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import metrics, store

REPORT_VERSION = 1
REFERENCE = "alm"
K = 15
N_BOOT = 1000
N_PERM = 1000
STAT_SEED = 0
UMAP_SEED = 0

#: P@15 between the agent and each family, as reported by Milano & Nolfi (arXiv 2601.22948).
#: paper_family (registry column) -> (low, high, text). Stand-in models show their family's range.
PAPER_P15: dict[str, tuple[float, float, str]] = {
    "LLaMA": (0.70, 0.73, "decoder-only LLMs and BLIP: 0.70-0.73"),
    "Qwen": (0.70, 0.73, "decoder-only LLMs and BLIP: 0.70-0.73"),
    "DeepSeek": (0.70, 0.73, "decoder-only LLMs and BLIP: 0.70-0.73"),
    "BLIP": (0.70, 0.73, "decoder-only LLMs and BLIP: 0.70-0.73"),
    "BERT": (0.30, 0.35, "BERT and CLIP: about 0.30-0.35"),
    "CLIP": (0.30, 0.35, "BERT and CLIP: about 0.30-0.35"),
}
PAPER_RANDOM = 0.13  #: the paper's random baseline at k = 15 (analytic chance here: 15/107 = 0.140)
PAPER_SUCCESS = (0.85, 0.95)  #: the paper's agent task success

#: how rows are grouped and drawn: real models vs reference rows (controls)
KIND_MODEL, KIND_AGENT, KIND_BASELINE = "model", "agent variant", "baseline"
BASELINE_WHY = ("Baselines are reference rows, not models: the instructions share words, so any text encoder "
                "sees the overlap (bag-of-words, TF-IDF, the grammatical factors), and the untrained agent shows "
                "what the architecture gives before any acting. A model's alignment with the agent says more than "
                "shared words only where it rises above these rows; random vectors show chance.")
UPLOADED_FAMILY = "uploaded"  #: family of a user's own embeddings (core.uploads; never in the registry)
FAMILY_ORDER = (UPLOADED_FAMILY, "decoder LM", "generative VLM", "contrastive VLM", "encoder LM", "static vectors",
                "agent", "baseline", "unknown")


# ------------------------------------------------------------------------------------------ spaces
def stem(name: str, seed: int | None) -> str:
    """The file stem / display id of one space: ``alm-s0``, ``bag-of-words``."""
    return store.embedding_file_name(name, seed)


def fingerprint(E: np.ndarray) -> str:
    a = np.ascontiguousarray(E, dtype=np.float32)
    return hashlib.sha256(a.tobytes() + str(a.shape).encode()).hexdigest()[:16]


def kind_of(name: str, family: str) -> str:
    if family == "baseline" or name.startswith("untrained-"):
        return KIND_BASELINE
    if family == "agent":
        return KIND_AGENT
    return KIND_MODEL


def seeds_of(name: str) -> list[int | None]:
    """Seeds present for a registry entry ([None] for an unseeded entry present, [] if absent)."""
    from .embedders import TABLE
    from .embedders.files import present_stems, seeds_present

    spec = TABLE.get(name)
    if spec is None:
        return [None] if name in present_stems() else []
    if spec.seeds:
        return list(seeds_present(spec))
    return [None] if name in present_stems() else []


def default_seed(name: str, preferred: int | None = None, seeds: list[int | None] | None = None) -> int | None:
    """``preferred`` if that seed file exists, else the first present seed (None for unseeded entries or when
    none is present). ``seeds``: the seeds present, when the caller already knows them (else looked up)."""
    seeds = seeds_of(name) if seeds is None else seeds
    if not seeds or seeds == [None]:
        return None
    return preferred if preferred in seeds else seeds[0]


def load_space(name: str, seed: int | None = None) -> tuple[np.ndarray, dict]:
    """(array, manifest) via :func:`core.embedders.load_embeddings` (raises NotComputedError/UnknownModelError)."""
    from .embedders import load_embeddings

    return load_embeddings(name, seed)


# ------------------------------------------------------------------------------------------ artefacts
def report_dir() -> Path:
    return store.assets_dir() / "report"


@lru_cache(maxsize=4)
def _load_shipped(index_path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    index = store.read_json(index_path)
    out: dict[str, dict[str, Any]] = {}
    npz = Path(index_path).with_name(index.get("arrays_file", "artefacts.npz"))
    arrays = {}
    if npz.exists():
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    for k, entry in index.get("entries", {}).items():
        value = dict(entry.get("scalars", {}))
        try:
            for field, aname in entry.get("arrays", {}).items():
                value[field] = arrays[aname]
        except KeyError:
            continue  # incomplete entry: ignore (recomputed on demand)
        out[k] = value
    return out


def shipped() -> dict[str, dict[str, Any]]:
    """Shipped artefacts: cache key -> result dict (empty when none are shipped)."""
    p = report_dir() / "index.json"
    try:
        return _load_shipped(str(p), p.stat().st_mtime_ns)
    except (FileNotFoundError, ValueError):
        return {}


_COLLECT: dict[str, dict[str, Any]] | None = None  # set while shipping: every result is also collected here


def _artefact(stage: str, params: dict[str, Any], compute: Callable[[], dict[str, Any]],
              persist: bool = True) -> dict[str, Any]:
    """A shipped result, else the diskcache's (computed and stored once); ``persist=False``: a shipped result,
    else computed and kept nowhere (results about a user's uploaded embeddings never reach the disk)."""
    k = store.key(stage, params)
    hit = shipped().get(k)  # also while shipping: an entry shipped under the same key has the same inputs
    if hit is None and not persist:
        return compute()
    value = hit if hit is not None else store.cached(stage, params, compute)
    if _COLLECT is not None:
        _COLLECT[k] = value
    return value


def is_shipped(stage: str, params: dict[str, Any]) -> bool:
    return store.key(stage, params) in shipped()


# ------------------------------------------------------------------------------------------ pair statistics
def pair_params(A: np.ndarray, B: np.ndarray, n_boot: int = N_BOOT, n_perm: int = N_PERM,
                seed: int = STAT_SEED) -> dict[str, Any]:
    return {"v": REPORT_VERSION, "a": fingerprint(A), "b": fingerprint(B), "n_boot": int(n_boot),
            "n_perm": int(n_perm), "seed": int(seed)}


def pair_stats(A: np.ndarray, B: np.ndarray, n_boot: int = N_BOOT, n_perm: int = N_PERM,
               seed: int = STAT_SEED, persist: bool = True) -> dict[str, Any]:
    """P@k for k = 1..n-1 between two spaces with its bootstrap CI and permutation null (arrays indexed k-1).

    Keys: ``curve``, ``boot_lo``, ``boot_hi`` (95% percentile bootstrap over items), ``null_lo``, ``null_hi``,
    ``null_mean`` (2.5/97.5 percentiles and mean of the permutation null), ``p`` (one-sided permutation
    p-value per k), ``chance`` (k/(n-1)), plus the settings.
    """
    def compute() -> dict[str, Any]:
        null = metrics.permutation_null(A, B, n_permutations=n_perm, seed=seed)
        boot = metrics.bootstrap_ci(A, B, k=None, n_boot=n_boot, seed=seed)
        n = A.shape[0]
        return {"curve": null.observed, "boot_lo": boot.lower, "boot_hi": boot.upper, "null_lo": null.lower,
                "null_hi": null.upper, "null_mean": null.mean, "p": null.p_values,
                "chance": metrics.chance_precision(n, np.arange(1, n)), "n": int(n), "n_boot": int(n_boot),
                "n_perm": int(n_perm), "seed": int(seed)}

    return _artefact("report.pair", pair_params(A, B, n_boot, n_perm, seed), compute, persist)


def procrustes_params(A: np.ndarray, B: np.ndarray, n_perm: int = N_PERM, seed: int = STAT_SEED) -> dict[str, Any]:
    return {"v": REPORT_VERSION, "a": fingerprint(A), "b": fingerprint(B), "n_perm": int(n_perm), "seed": int(seed)}


def procrustes_stats(A: np.ndarray, B: np.ndarray, n_perm: int = N_PERM, seed: int = STAT_SEED,
                     persist: bool = True) -> dict[str, Any]:
    """Full-space orthogonal Procrustes of B onto A (metrics.procrustes): disparity, permutation p, residuals."""
    def compute() -> dict[str, Any]:
        r = metrics.procrustes(A, B, n_permutations=n_perm, seed=seed)
        return {"disparity": float(r.disparity), "p_value": float(r.p_value), "residuals": r.residuals,
                "dim_used": int(r.dim_used), "pca": bool(r.pca), "n_perm": int(n_perm), "seed": int(seed)}

    return _artefact("report.procrustes", procrustes_params(A, B, n_perm, seed), compute, persist)


def is_ready(stage: str, params: dict[str, Any]) -> bool:
    """True when a result is shipped or already in the diskcache (no computation needed)."""
    if is_shipped(stage, params):
        return True
    try:
        return store.key(stage, params) in store.cache()
    except Exception:
        return False


def umap_params(seed: int = UMAP_SEED) -> dict[str, Any]:
    from . import projection

    defaults = getattr(projection, "UMAP_DEFAULTS", None) or getattr(projection, "DEFAULTS", None) or {}
    return {"seed": int(seed), **{k: v for k, v in dict(defaults).items() if isinstance(v, (int, float, str))}}


def layout_params(X: np.ndarray, seed: int = UMAP_SEED) -> dict[str, Any]:
    """The cache key parameters of a layout (stage ``report.umap``; value ``{"xy": (n, 2) array}``)."""
    return {"v": REPORT_VERSION, "x": fingerprint(X), **umap_params(seed)}


def layout(X: np.ndarray, seed: int = UMAP_SEED, persist: bool = True) -> np.ndarray:
    """2-D UMAP layout of one space (core.projection.umap_layout), shipped or cached (``persist=False``: never
    written to the diskcache). umap is imported only when the layout is neither shipped nor cached."""
    params = layout_params(X, seed)

    def compute() -> dict[str, Any]:
        from . import projection

        return {"xy": np.asarray(projection.umap_layout(X, seed=seed, cache=persist), dtype=np.float64)}

    return _artefact("report.umap", params, compute, persist)["xy"]


def layout_is_ready(X: np.ndarray, seed: int = UMAP_SEED) -> bool:
    """True when the layout is shipped or in the diskcache (so no UMAP fit / numba JIT is needed)."""
    return is_ready("report.umap", layout_params(X, seed))


#: the dashboard's joint layout (core.projection.joint_layout): every space Procrustes-aligned onto the reference
#: in full (no space reduced: the smaller ones zero-padded; each at unit norm, not shrunk by a poor fit), then one
#: UMAP (euclidean, the geometry Procrustes aligns) of all the aligned points
JOINT = {"dims": "max", "scale": "match", "metric": "euclidean"}


def joint_order(spaces: dict[str, np.ndarray], reference: str) -> list[str]:
    """The order in which spaces are stacked: the reference, then the others by fingerprint (then name), so that
    the same set of spaces gives the same layout whatever order they were picked in."""
    if reference not in spaces:
        raise KeyError(f"the reference {reference!r} is not among the spaces {list(spaces)}")
    return [reference, *sorted((m for m in spaces if m != reference), key=lambda m: (fingerprint(spaces[m]), m))]


def joint_params(spaces: dict[str, np.ndarray], reference: str, seed: int = UMAP_SEED) -> dict[str, Any]:
    """The cache key parameters of a joint layout (stage ``report.joint``; value ``{"xy": (N * n, 2)}``, the
    spaces stacked in :func:`joint_order`)."""
    order = joint_order(spaces, reference)
    return {"v": REPORT_VERSION, "spaces": [fingerprint(spaces[m]) for m in order], **umap_params(seed), **JOINT}


def joint_layout(spaces: dict[str, np.ndarray], reference: str, seed: int = UMAP_SEED,
                 persist: bool = True) -> dict[str, np.ndarray]:
    """name -> (n, 2): the joint layout of ``spaces`` (name -> array) around ``reference`` (:data:`JOINT`), shipped
    or cached (``persist=False``: never written to the diskcache). umap is imported only when the layout is
    neither shipped nor cached."""
    order = joint_order(spaces, reference)

    def compute() -> dict[str, Any]:
        from . import projection

        al = projection.joint_layout({m: spaces[m] for m in order}, reference, seed=seed, metric=JOINT["metric"],
                                     cache=False, dims=JOINT["dims"], scale=JOINT["scale"])
        return {"xy": np.vstack([al.layouts[m] for m in order]).astype(np.float64)}

    xy = _artefact("report.joint", joint_params(spaces, reference, seed), compute, persist)["xy"]
    n = spaces[reference].shape[0]
    return {m: xy[i * n:(i + 1) * n] for i, m in enumerate(order)}


def joint_is_ready(spaces: dict[str, np.ndarray], reference: str, seed: int = UMAP_SEED) -> bool:
    """True when the joint layout is shipped or in the diskcache (no UMAP fit needed)."""
    return is_ready("report.joint", joint_params(spaces, reference, seed))


# ------------------------------------------------------------------------------------------ tables
def paper_range(paper_family: str, name: str = "") -> tuple[float, float, str]:
    if name == "random":
        return PAPER_RANDOM, PAPER_RANDOM, f"random baseline: about {PAPER_RANDOM:.2f}"
    lo, hi, text = PAPER_P15.get(paper_family, (np.nan, np.nan, ""))
    return lo, hi, text


def default_models(inv: pd.DataFrame | None = None) -> list[str]:
    """The models every page starts with: the reference agent, then every language or vision-language model
    present (the baselines present when there is none)."""
    inv = inventory() if inv is None else inv
    present = inv[inv["present"]]
    models = [n for n, k in zip(present["name"], present["kind"]) if k == KIND_MODEL]
    if not models:
        models = [n for n, k in zip(present["name"], present["kind"]) if k == KIND_BASELINE]
    return ([REFERENCE] if REFERENCE in set(inv["name"]) else []) + [m for m in models if m != REFERENCE]


def inventory() -> pd.DataFrame:
    """The model table (core.embedders.registry) with the seeds present and a kind column."""
    from .embedders import registry

    reg = registry().copy()
    reg["kind"] = [kind_of(n, f) for n, f in zip(reg["name"], reg["family"])]
    reg["seeds_present"] = [", ".join(str(s) for s in seeds_of(n) if s is not None) for n in reg["name"]]
    return reg


def headline_table(reference: str = REFERENCE, ref_seed: int | None = None, k: int = K,
                   n_boot: int = N_BOOT, n_perm: int = N_PERM, seed: int = STAT_SEED,
                   extra: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per registry entry: P@k of the reference agent against it, with bootstrap CI, permutation p,
    the analytic chance level, the spread over the reference's seeds, and the paper's reported range.

    The main value compares ``reference`` seed ``ref_seed`` (default: first present) with the model's first
    present seed (for seeded baselines / the untrained agent: the same seed as the reference when present).
    ``seed_mean``/``seed_sd``/``seed_min``/``seed_max``: P@k of every reference seed against that same model
    file. ``null_low``/``null_high``: the 2.5/97.5 percentiles of the permutation null.
    Rows without embeddings have NaN values and ``present`` False (their ``compute_command`` says how).
    ``extra``: name -> array (rows in instruction order) of spaces outside the registry, e.g. a user's uploaded
    embeddings: one row each (family ``uploaded``, kind model), whose statistics are never written to disk.
    Raises NotComputedError when the reference itself has no embeddings.
    """
    ref_seed = default_seed(reference, ref_seed)
    R, _ = load_space(reference, ref_seed)
    n = R.shape[0]
    k = metrics.check_k(k, n)
    ref_seeds = {s: load_space(reference, s)[0] for s in seeds_of(reference)}

    def row_of(name: str, family: str, paper_family: str, kind: str, present: bool, compute_command: str,
               source: str) -> dict[str, Any]:
        lo, hi, text = paper_range(paper_family, name)
        return {"model": name, "family": family, "paper_family": paper_family, "kind": kind, "present": present,
                "seed": None, f"P@{k}": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_perm": np.nan,
                "null_low": np.nan, "null_high": np.nan, "chance": float(metrics.chance_precision(n, k)),
                "seed_mean": np.nan, "seed_sd": np.nan, "seed_min": np.nan, "seed_max": np.nan,
                "n_ref_seeds": len(ref_seeds), "paper_low": lo, "paper_high": hi, "paper": text,
                "compute_command": compute_command, "source": source}

    def against(B: np.ndarray, persist: bool = True) -> dict[str, Any]:
        st = pair_stats(R, B, n_boot=n_boot, n_perm=n_perm, seed=seed, persist=persist)
        vals = [metrics.precision_at_k(X, B, k) for X in ref_seeds.values()]
        return {f"P@{k}": float(st["curve"][k - 1]), "ci_low": float(st["boot_lo"][k - 1]),
                "ci_high": float(st["boot_hi"][k - 1]), "p_perm": float(st["p"][k - 1]),
                "null_low": float(st["null_lo"][k - 1]), "null_high": float(st["null_hi"][k - 1]),
                "seed_mean": float(np.mean(vals)), "seed_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan,
                "seed_min": float(np.min(vals)), "seed_max": float(np.max(vals))}

    rows = []
    for _, r in inventory().iterrows():
        name = r["name"]
        row = row_of(name, r["family"], r["paper_family"], r["kind"], bool(r["present"]), r["compute_command"],
                     r["source"])
        if name == reference:
            others = {s: X for s, X in ref_seeds.items() if s != ref_seed}
            if others:  # seed-to-seed agreement of the reference itself
                vals = [metrics.precision_at_k(R, X, k) for X in others.values()]
                row.update({f"P@{k}": float(np.mean(vals)), "seed_mean": float(np.mean(vals)),
                            "seed_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan,
                            "seed_min": float(np.min(vals)), "seed_max": float(np.max(vals)),
                            "seed": f"other seeds {', '.join(map(str, others))}",
                            "paper": "agent vs itself (other training seeds)"})
            rows.append(row)
            continue
        if not row["present"]:
            rows.append(row)
            continue
        s = default_seed(name, ref_seed)
        try:
            B, _ = load_space(name, s)
        except LookupError:
            row["present"] = False
            rows.append(row)
            continue
        row.update({"seed": s, **against(B)})
        rows.append(row)
    for name, B in (extra or {}).items():
        row = row_of(name, UPLOADED_FAMILY, UPLOADED_FAMILY, KIND_MODEL, True, "", "uploaded in this session")
        rows.append({**row, **against(np.asarray(B), persist=False)})
    df = pd.DataFrame(rows)
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    df["_o"] = df["family"].map(lambda f: order.get(f, len(order)))
    return df.sort_values(["_o", "present"], ascending=[True, False], kind="stable").drop(columns="_o") \
        .reset_index(drop=True)


def _agent_manifests() -> Iterable[tuple[Path, dict | None]]:
    """(path, manifest) of every shipped agent manifest (assets/agents/*.json), None for a corrupt one."""
    for p in sorted((store.assets_dir() / "agents").glob("*.json")):
        try:
            yield p, store.read_json(p)
        except ValueError:
            yield p, None


def agent_success() -> pd.DataFrame:
    """One row per shipped agent manifest (assets/agents/*.json, written by core.train): overall success and
    success per verb, the number of evaluation episodes, optimizer steps and the network config."""
    rows = []
    for p, man in _agent_manifests():
        if man is None:
            rows.append({"agent": p.stem, "success": np.nan, "note": "corrupt manifest"})
            continue
        succ = man.get("success") or {}
        overall = succ.get("overall") if isinstance(succ, dict) else succ
        row = {"agent": p.stem, "variant": man.get("name", p.stem.rsplit("-s", 1)[0]), "seed": man.get("seed"),
               "success": _as_float(overall)}
        if isinstance(succ, dict):
            for v, x in (succ.get("per_verb") or {}).items():
                row[f"success: {v}"] = _as_float(x)
            if "episodes" in succ:
                row["eval episodes"] = succ["episodes"]
        cfg = man.get("agent_config") or {}
        for key in ("word_init", "vision", "done_action"):
            if key in cfg:
                row[key.replace("_", " ")] = cfg[key]
        if "optimizer_steps" in man:
            row["optimizer steps"] = man["optimizer_steps"]
        rows.append(row)
    return pd.DataFrame(rows)


SUCCESS_GROUPS = ("verb_object", "verb", "object", "determiner", "instruction")


def agent_success_by(group: str = "verb_object") -> pd.DataFrame:
    """Long table of success per ``group`` of instructions (one of :data:`SUCCESS_GROUPS`) for every shipped agent
    manifest that records it (``success["per_<group>"]``, written by core.train's evaluation): columns agent,
    variant, seed, group, level, success, plus the overall success as level "overall"."""
    if group not in SUCCESS_GROUPS:
        raise ValueError(f"group must be one of {', '.join(SUCCESS_GROUPS)}; got {group!r}")
    rows = []
    for p, man in _agent_manifests():
        succ = (man or {}).get("success")
        per = succ.get(f"per_{group}") if isinstance(succ, dict) else None
        if not isinstance(per, dict):
            continue
        base = {"agent": p.stem, "variant": man.get("name", p.stem.rsplit("-s", 1)[0]), "seed": man.get("seed"),
                "group": group}
        rows.append({**base, "level": "overall", "success": _as_float(succ.get("overall"))})
        rows += [{**base, "level": str(lv), "success": _as_float(x)} for lv, x in per.items()]
    return pd.DataFrame(rows, columns=["agent", "variant", "seed", "group", "level", "success"])


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.nan


# ------------------------------------------------------------------------------------------ ship
def present_spaces() -> list[tuple[str, int | None]]:
    """Every (name, seed) with a file present: all seeds of every entry."""
    from .embedders import available

    return [(n, s) for n in available() for s in seeds_of(n)]


def ship(reference: str = REFERENCE, directory: str | os.PathLike | None = None, layouts: bool = True,
         log: Callable[[str], None] = print) -> Path:
    """Compute and write every artefact the dashboard reads at its default settings.

    * pair statistics (curve, bootstrap CI, permutation null) of every reference seed vs every other space
      present (default seeds) -- what the Overview and P@k pages show by default;
    * full-space Procrustes (disparity, permutation p, residuals) of every reference seed vs every space;
    * UMAP layouts of every space present (all seeds);
    * the joint layout of the Procrustes page's default selection (:func:`default_models`) around each reference
      seed.

    Artefacts already shipped under the same key (same inputs, same settings) are kept as they are.
    """
    global _COLLECT
    d = Path(directory) if directory is not None else report_dir()
    d.mkdir(parents=True, exist_ok=True)
    _COLLECT = {}
    try:
        ref_seeds = seeds_of(reference)
        if not ref_seeds:
            log(f"warning: the reference {reference!r} has no embeddings: shipping the UMAP layouts only")
        spaces = present_spaces()
        for rs in ref_seeds:
            R, _ = load_space(reference, rs)
            for name in dict.fromkeys(n for n, _ in spaces):
                if name == reference:
                    continue
                B, _ = load_space(name, default_seed(name, rs))
                pair_stats(R, B)
                procrustes_stats(R, B)
                log(f"pair {stem(reference, rs)} vs {stem(name, default_seed(name, rs))}")
            for rs2 in ref_seeds:
                if rs2 != rs:
                    procrustes_stats(R, load_space(reference, rs2)[0])
        if ref_seeds:
            headline_table(reference)
        if layouts:
            for name, s in spaces:
                layout(load_space(name, s)[0])
                log(f"umap {stem(name, s)}")
            present = set(n for n, _ in spaces)
            for rs in ref_seeds:  # the Procrustes page's default selection, for every reference seed
                chosen = {stem(m, default_seed(m, rs)): load_space(m, default_seed(m, rs))[0]
                          for m in [reference, *default_models()] if m in present}
                joint_layout(chosen, stem(reference, rs))
                log(f"joint umap around {stem(reference, rs)}: {', '.join(chosen)}")
        collected = _COLLECT
    finally:
        _COLLECT = None
    arrays: dict[str, np.ndarray] = {}
    entries: dict[str, Any] = {}
    for i, (k, value) in enumerate(sorted(collected.items())):
        e = {"arrays": {}, "scalars": {}}
        for field, v in value.items():
            if isinstance(v, np.ndarray):
                aname = f"e{i}_{field}"
                arrays[aname] = v
                e["arrays"][field] = aname
            else:
                e["scalars"][field] = v.item() if isinstance(v, np.generic) else v
        entries[k] = e
    tmp = d / ".artefacts.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, d / "artefacts.npz")
    store.write_json(d / "index.json", {
        "format": "alva-report", "version": REPORT_VERSION, "date": store.now_iso(),
        "git_commit": store.git_commit(), "command": "python -m core.report --ship",
        "settings": {"reference": reference, "k": K, "n_boot": N_BOOT, "n_perm": N_PERM, "stat_seed": STAT_SEED,
                     "umap_seed": UMAP_SEED},
        "spaces": {stem(n, s): fingerprint(load_space(n, s)[0]) for n, s in present_spaces()},
        "arrays_file": "artefacts.npz", "entries": entries})
    _load_shipped.cache_clear()
    log(f"wrote {len(entries)} artefacts to {d}")
    return d


def check() -> list[str]:
    """Spaces whose shipped fingerprint differs from the current file (their artefacts are stale)."""
    p = report_dir() / "index.json"
    if not p.exists():
        return ["no shipped report (run: python -m core.report --ship)"]
    index = store.read_json(p)
    stale = []
    for st, fp in index.get("spaces", {}).items():
        name, _, s = st.rpartition("-s")
        try:
            X = load_space(name, int(s))[0] if name and s.isdigit() else load_space(st)[0]
        except (LookupError, ValueError):
            stale.append(f"{st}: no longer present")
            continue
        if fingerprint(X) != fp:
            stale.append(f"{st}: embeddings changed since the report was shipped")
    for n, s in present_spaces():
        if stem(n, s) not in index.get("spaces", {}):
            stale.append(f"{stem(n, s)}: present but not in the shipped report")
    return stale


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--ship", action="store_true", help="compute and write assets/report/ (artefacts.npz, index.json)")
    p.add_argument("--no-layouts", action="store_true", help="skip the UMAP layouts when shipping")
    p.add_argument("--check", action="store_true", help="list shipped artefacts that no longer match the assets")
    p.add_argument("--reference", default=REFERENCE)
    p.add_argument("--k", type=int, default=K)
    p.add_argument("--grammar", default="paper108", metavar="PRESET",
                   help="instruction-set preset: the headline table of a larger set (core.scaling: the agent vs every "
                        "model on the common 108 and on the whole set, k scaled with n)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.grammar != "paper108":
        return _set_report(args.grammar, args.ship or args.check)
    if args.ship:
        ship(args.reference, layouts=not args.no_layouts)
        return 0
    if args.check:
        stale = check()
        print("\n".join(stale) if stale else "shipped report matches the assets")
        return 1 if stale else 0
    df = headline_table(args.reference, k=args.k)
    cols = ["model", "family", "present", "seed", f"P@{args.k}", "ci_low", "ci_high", "p_perm", "chance",
            "seed_mean", "seed_sd", "paper"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


def _set_report(grammar: str, misuse: bool) -> int:
    """``report --grammar NAME``: the set's headline table from its shipped embeddings (core.scaling.analyse)."""
    from . import scaling
    from .instructions import InstructionError

    if misuse:
        print("error: --ship/--check are for paper108's report; a larger set ships with `python -m core scaling "
              "--ship`", file=sys.stderr)
        return 2
    try:
        scaling.slug(grammar)
        if grammar not in scaling.available_sets():
            raise ValueError(f"no shipped embeddings for {grammar!r} (python -m core scaling --embed {grammar})")
        t = scaling.analyse([grammar])
    except (InstructionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(t["sets"].drop(columns="words").to_string(index=False))
        for view in ("common108", "whole"):
            df = t[view]
            if len(df):
                print(f"\n{view}: P@k of the agent (mean ± sd over seeds) against each model")
                print(df.groupby(["agent", "reference"]).precision.agg(["mean", "std", "count"]).round(3).to_string())
            else:
                print(f"\n{view}: no agent trained on {grammar} shipped yet (python -m core sweep "
                      "sweeps/instruction_sets.toml && python -m core scaling --ship)")
    return 0


def cli(argv: list[str]) -> int:
    """``python -m core report ...`` entry (core.cli convention: argv[0] is the stage name)."""
    return main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

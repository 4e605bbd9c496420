"""The analysis multiverse: how robust is an agent-model P@15 to the choices an analysis makes?

For every pair (agent, reference model) -- the shipped agent checkpoints and each one's untrained twin (the same
config and seed at initialisation) against every reference model whose layer sweep ships -- P@k is computed for
every combination of

* agent layer (:mod:`core.agent_layers`: words + positions, each encoder block, the last with the final norm)
  x agent pooling (mean = E_L at the last layer, first token, max);
* reference layer (:func:`core.embedders.load_layers`: every hidden state) x reference pooling (mean; last token
  for decoders; CLS for encoders);
* preprocessing (:mod:`core.preprocessing`: raw cosine, centred, z-scored, platonic-rep's outlier clamp), the same
  on both sides, fitted on the analysed items;
* instruction subset: all 108 (k = 15), and within each verb and each determiner (neighbours only among the
  subset) with k chance-matched (:func:`chance_matched_k`: 7 for "go to" (48 items) and for each determiner (54),
  5 for "pick up" (36), 3 for "open" (24)).

Every P@k is :func:`core.metrics.precision_from_sets` of :func:`core.metrics.neighbour_sets` (cosine, self
excluded, 10-decimal rounding, ties to the smaller index): each space is ranked once per preprocessing and item
set, and all pairs come from one matrix product. A space that a choice makes degenerate (all rows parallel, e.g.
the CLS token at layer 0 of an encoder, or all-zero rows after centring it) has no neighbours: its choices are
left out and counted.

Two single numbers per pair are reported beside the distribution:

* **last layer** (pre-registered): agent last layer + mean (E_L) vs the reference's last layer under its default
  pooling, raw cosine, all items, k = 15 -- the headline number of the other pages;
* **split half** (an honest version of platonic-rep's maximum over layer pairs): the items are split at random
  into two halves (``N_SPLITS`` = 10 splits, ``default_rng(SPLIT_SEED = 0)``); on one half the best choice is
  selected by P@k computed on that half alone (neighbours among its items, k chance-matched: 7 of 54), and that
  choice is scored on the other half alone; both directions of every split are averaged (20 held-out scores).
  The selection never reads the items it scores. ``split_half`` selects among the layer pairs (agent layer x
  reference layer at the default poolings, raw cosine); ``split_half_ref`` among the reference layers with the
  agent fixed at E_L (the question "which layer of the LM matches the agent's embedding?");
  ``split_half_any`` among every full-set choice (layers x poolings x preprocessing). ``split_half_last_layer``
  is the pre-registered choice scored by the same protocol (so all four are on one scale; its chance is
  ``half_chance`` = 7/53). Each comes with the most frequent selection over the folds (``*_choice``). The
  in-sample maximum is never reported.

Outputs (``python -m core multiverse``; ``assets/multiverse/``, with ``multiverse.json`` as manifest):
``results.parquet`` (:func:`load_results`), ``summary.csv`` (:func:`load_summary`) and ``organisation.csv``
(:func:`load_organisation`: what organises each space, section 2 of issue 13).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import metrics as M
from .instructions import instruction_set, metadata
from .preprocessing import PREPROCESSINGS, preprocess

K = 15                                  #: the headline k (chance 15/107 at n = 108)
SUBSET_FACTORS = ("verb", "determiner")  #: instruction subsets: within each level of these factors
N_SPLITS = 10                           #: random half splits of the split-half layer selection
SPLIT_SEED = 0                          #: numpy default_rng seed of the half splits


def chance_matched_k(n_items: int, k: int = K, n: int | None = None) -> int:
    """The k whose chance level k/(n_items-1) is closest to k/(n-1) of the full set (ties: the smaller k).

    With the 108 instructions and k = 15: 7 for 48 or 54 items, 5 for 36, 3 for 24.
    """
    n = len(instruction_set()) if n is None else int(n)
    if n_items < 2:
        raise M.MetricInputError(f"a set of {n_items} item(s) has no neighbours: P@k needs at least 2 items")
    target = M.chance_precision(n, k)
    ks = np.arange(1, n_items)
    return int(ks[np.argmin(np.abs(ks / (n_items - 1) - target))])


@dataclass(frozen=True)
class ItemSet:
    """A set of instructions analysed on its own (neighbours only among them) and the k used on it."""

    name: str             # "all", "verb=go to", "determiner=the", "half 3a" ...
    items: np.ndarray     # indices into instruction_set(), increasing
    k: int

    @property
    def n(self) -> int:
        return int(self.items.size)

    @property
    def chance(self) -> float:
        return float(M.chance_precision(self.n, self.k))


def check_item_set(s: ItemSet) -> ItemSet:
    """A set with fewer than k + 1 items cannot give k neighbours to each item: a clear error."""
    if s.n < s.k + 1:
        raise M.MetricInputError(f"instruction subset {s.name!r} has {s.n} items: P@{s.k} needs at least "
                                 f"k + 1 = {s.k + 1} items (every item needs k neighbours besides itself)")
    return s


def item_subsets(k: int = K, factors: Sequence[str] = SUBSET_FACTORS, subset_k: int | None = None,
                 instructions: Sequence[str] | None = None) -> list[ItemSet]:
    """"all" (k) and, for every level of each factor, the instructions with that level.

    The k of a subset is :func:`chance_matched_k` (chance as close as possible to k/(n-1)) unless ``subset_k``
    is given; a subset with fewer than k + 1 items raises :class:`core.metrics.MetricInputError`.
    """
    meta = metadata(instructions)
    n = len(meta)
    k = M.check_k(k, n)
    out = [check_item_set(ItemSet("all", np.arange(n), k))]
    for f in factors:
        if f not in meta.columns or f == "instruction":
            raise M.MetricInputError(f"unknown factor {f!r}; factors: {', '.join(c for c in meta.columns[1:])}")
        for level in dict.fromkeys(meta[f]):
            idx = np.flatnonzero(meta[f].to_numpy() == level)
            kk = chance_matched_k(idx.size, k, n) if subset_k is None else int(subset_k)
            out.append(check_item_set(ItemSet(f"{f}={level}", idx, kk)))
    return out


def split_halves(n: int, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` random splits of range(n) into two halves (sizes floor(n/2), ceil(n/2)), sorted indices."""
    if n < 4:
        raise M.MetricInputError(f"a split-half analysis needs at least 4 items, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_splits)):
        p = rng.permutation(n)
        out.append((np.sort(p[: n // 2]), np.sort(p[n // 2:])))
    return out


def half_item_sets(n: int, k: int = K, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED) -> list[ItemSet]:
    """The halves of :func:`split_halves` as item sets ("split 0 a", "split 0 b", ...) with chance-matched k."""
    out = []
    for i, (a, b) in enumerate(split_halves(n, n_splits, seed)):
        for tag, idx in (("a", a), ("b", b)):
            out.append(check_item_set(ItemSet(f"split {i} {tag}", idx, chance_matched_k(idx.size, k, n))))
    return out


def analysis_item_sets(k: int = K) -> list[ItemSet]:
    """Every item set the shipped multiverse ranks neighbours on: the full set, the subsets, the halves."""
    n = len(instruction_set())
    return item_subsets(k) + half_item_sets(n, k)


def same_neighbour_sets(E: np.ndarray, D: np.ndarray, item_sets: Sequence[ItemSet] | None = None,
                        preprocessings: Sequence[str] = PREPROCESSINGS) -> bool:
    """True if spaces E and D (same items) give identical k-NN sets on every item set x preprocessing (and are
    degenerate on the same ones): then every P@k the multiverse computes is the same with either."""
    for s in (analysis_item_sets() if item_sets is None else item_sets):
        for how in preprocessings:
            a, b = _sets(E, s, how), _sets(D, s, how)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                return False
    return True


# ------------------------------------------------------------------------------------------ P@k on item sets
def _sets(X: np.ndarray, s: ItemSet, how: str) -> np.ndarray | None:
    """k-NN membership of the preprocessed rows ``s.items`` of X, or None if the space is degenerate there."""
    Z = preprocess(np.asarray(X)[s.items], how)
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))[:, None]
    if not np.isfinite(norms).all():
        raise M.MetricInputError(f"a space has NaN or inf values on the items of {s.name!r}")
    if not (norms > 0).all():
        return None  # all-zero rows: cosine undefined
    U = Z / norms
    if np.abs(U - U[0]).max() <= 1e-12:
        return None  # every row parallel: no neighbour order
    return M.neighbour_sets(Z, s.k)


def item_set_precision(spaces_a: Sequence[np.ndarray], spaces_b: Sequence[np.ndarray], item_set: ItemSet,
                       preprocessing: str = "raw") -> np.ndarray:
    """(len(spaces_a), len(spaces_b)) P@k of every pair on ``item_set`` alone (neighbours among its items, its
    k), after ``preprocessing`` fitted on its items; NaN where a space is degenerate there.

    Reads only the rows ``item_set.items`` of each space.
    """
    check_item_set(item_set)
    n = item_set.n
    sa = [_sets(X, item_set, preprocessing) for X in spaces_a]
    sb = [_sets(X, item_set, preprocessing) for X in spaces_b]
    out = np.full((len(sa), len(sb)), np.nan)
    ia = [i for i, x in enumerate(sa) if x is not None]
    ib = [j for j, x in enumerate(sb) if x is not None]
    if ia and ib:
        empty = np.zeros((0, n, n), dtype=bool)
        P = M.precision_from_sets(np.stack([sa[i] for i in ia]) if ia else empty,
                                  np.stack([sb[j] for j in ib]) if ib else empty, item_set.k)
        out[np.ix_(ia, ib)] = P
    return out


# ------------------------------------------------------------------------------------------ split half
def choose(selection: np.ndarray, candidates: np.ndarray | None = None) -> int:
    """Index (into the flattened array) of the best candidate by ``selection`` (P@k on the selection half);
    NaN (degenerate) entries and non-candidates never win; ties go to the first in order."""
    v = np.asarray(selection, dtype=np.float64).ravel().copy()
    if candidates is not None:
        v[~np.asarray(candidates, dtype=bool).ravel()] = np.nan
    if np.isnan(v).all():
        raise M.MetricInputError("no valid candidate to select on this half")
    return int(np.nanargmax(v))


@dataclass(frozen=True)
class SplitHalfResult:
    """Split-half selection over candidate pairs (agent space i, reference space j)."""

    score: float                 # mean over folds of the held-out P@k of the choice selected on the other half
    preregistered: float         # mean over folds of the held-out P@k of the pre-registered pair
    fold_scores: tuple           # per fold (split, direction)
    chosen: tuple                # per fold: (i, j) selected
    k: int                       # k on a half (chance-matched)
    chance: float                # k / (n_half - 1), mean over halves
    n_splits: int
    seed: int


def split_half(spaces_a: Sequence[np.ndarray], spaces_b: Sequence[np.ndarray], k: int = K,
               n_splits: int = N_SPLITS, seed: int = SPLIT_SEED, preprocessing: str = "raw",
               preregistered: tuple[int, int] = (-1, -1)) -> SplitHalfResult:
    """Best pair of spaces chosen on one half of the items, scored on the other half (module docstring).

    Candidates: every (i, j) with i in ``spaces_a`` and j in ``spaces_b`` (e.g. the layers of two models).
    """
    n = np.shape(spaces_a[0])[0]
    halves = half_item_sets(n, k, n_splits, seed)
    P = [item_set_precision(spaces_a, spaces_b, h, preprocessing) for h in halves]
    fold_scores, chosen, pre = [], [], []
    pa, pb = preregistered[0] % len(spaces_a), preregistered[1] % len(spaces_b)
    for i in range(0, len(halves), 2):
        for sel, sco in ((i, i + 1), (i + 1, i)):
            c = choose(P[sel])
            chosen.append(tuple(int(x) for x in np.unravel_index(c, P[sel].shape)))
            fold_scores.append(float(P[sco].ravel()[c]))
            pre.append(float(P[sco][pa, pb]))
    return SplitHalfResult(score=float(np.nanmean(fold_scores)), preregistered=float(np.nanmean(pre)),
                           fold_scores=tuple(fold_scores), chosen=tuple(chosen), k=halves[0].k,
                           chance=float(np.mean([h.chance for h in halves])), n_splits=int(n_splits),
                           seed=int(seed))


# ------------------------------------------------------------------------------------------ the multiverse
AGENT_DEFAULT_POOLING = "mean"
RESULT_COLUMNS = {
    "agent": "agent name: a trained agent (alm, alm-word-random, ...) or its untrained twin (untrained-<agent>)",
    "seed": "agent seed",
    "trained": "False for an untrained twin (same config and seed at initialisation)",
    "reference": "reference model (registry name)",
    "agent_layer": "agent language-pathway layer (0 = words + positions, last = E_L's states)",
    "agent_n_layers": "number of agent layers",
    "agent_pooling": "mean (E_L at the last layer) | first | max",
    "ref_layer": "reference hidden state (0 = token embeddings, last = last_hidden_state)",
    "ref_n_layers": "number of reference layers",
    "ref_pooling": "mean | last (decoders) | cls (encoders)",
    "preprocessing": "raw | centred | zscore | clamp (both sides, fitted on the analysed items)",
    "subset": "all | verb=<verb> | determiner=<determiner>: neighbours only among these items",
    "n_items": "items in the subset",
    "k": "k of P@k on the subset (chance-matched to 15/107)",
    "hits": "sum over items of |N_agent^k(i) ∩ N_ref^k(i)| (integer; p_at_k = hits / (n_items k))",
    "p_at_k": "P@k (added by load_results)",
    "chance": "k / (n_items - 1) (added by load_results)",
    "preregistered": "the last-layer choice: agent last layer + mean, reference last layer + default pooling, raw, "
                     "all items, k = 15 (added by load_results)",
}
UNTRAINED_COLUMNS = ("last_layer", "split_half", "split_half_ref", "split_half_any", "median", "q05", "q95",
                     "n_choices")
SUMMARY_COLUMNS = {
    "agent": "agent name", "seed": "agent seed", "trained": "False for an untrained twin",
    "twin": "the untrained twin of a trained agent (empty for a twin)", "reference": "reference model",
    "last_layer": "P@15 of the pre-registered choice (all items, raw, last layers, default poolings)",
    "split_half": "held-out P@k of the layer pair selected on the other half (mean of 2 x n_splits folds)",
    "split_half_choice": "the most frequent selection over the folds, with its count",
    "split_half_ref": "the same with the agent fixed at E_L (last layer, mean), selecting the reference layer",
    "split_half_ref_choice": "its most frequent selection",
    "split_half_any": "the same, selecting among every full-set choice (layers x poolings x preprocessing)",
    "split_half_any_choice": "its most frequent selection",
    "split_half_last_layer": "the pre-registered choice scored by the same half protocol",
    "half_k": "k on a half (chance-matched)", "half_chance": "chance of the half protocol, k / (n_half - 1)",
    "median": "median P@k over every choice", "q05": "5th percentile", "q95": "95th percentile",
    "n_choices": "number of choices (degenerate ones left out)", "chance": "15/107, the full-set chance",
    "untrained_*": "the untrained twin's same figures (trained agents only)",
}


@dataclass
class MultiverseResult:
    results: pd.DataFrame            # long table (stored columns of RESULT_COLUMNS)
    summary: pd.DataFrame            # one row per (agent, seed, reference)
    organisation: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    n_evaluations: int = 0           # P@k values computed (full-set table + halves)


def _flatten(spaces: Mapping[Any, Mapping[str, np.ndarray]]) -> tuple[list[tuple[Any, int, str, int]], list]:
    meta, arrays = [], []
    for key, by_pool in spaces.items():
        for pooling, E in by_pool.items():
            E = np.asarray(E)
            if E.ndim != 3:
                raise M.MetricInputError(f"{key} {pooling}: a layer sweep must be (n_layers, n, d); got {E.shape}")
            for layer in range(E.shape[0]):
                meta.append((key, layer, pooling, E.shape[0]))
                arrays.append(E[layer])
    return meta, arrays


def compute(agent_layers: Mapping[tuple[str, int], Mapping[str, np.ndarray]],
            ref_layers: Mapping[str, Mapping[str, np.ndarray]], *, twins: Mapping[tuple[str, int],
            tuple[str, int]] | None = None, ref_default_pooling: Mapping[str, str] | None = None, k: int = K,
            n_splits: int = N_SPLITS, seed: int = SPLIT_SEED, subsets: Sequence[ItemSet] | None = None,
            preprocessings: Sequence[str] = PREPROCESSINGS,
            progress: Callable[[str], None] | None = None) -> MultiverseResult:
    """The multiverse of in-memory sweeps (no I/O; :func:`run` loads the shipped ones).

    ``agent_layers``: {(agent, seed): {pooling: (L, n, d)}} with ``mean`` present (the default);
    ``ref_layers``: {reference: {pooling: (L, n, d)}}; ``twins``: {(agent, seed): (twin agent, twin seed)} for
    the summary's ``untrained_*`` columns; ``ref_default_pooling``: {reference: pooling} (default ``mean``).
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    A_meta, A_X = _flatten(agent_layers)
    B_meta, B_X = _flatten(ref_layers)
    if not A_X or not B_X:
        raise M.MetricInputError("the multiverse needs at least one agent and one reference sweep")
    n = A_X[0].shape[0]
    if any(X.shape[0] != n for X in A_X + B_X):
        raise M.MetricInputError("every space must hold the same items (rows)")
    for key, by_pool in agent_layers.items():
        if AGENT_DEFAULT_POOLING not in by_pool:
            raise M.MetricInputError(f"agent {key}: the default pooling {AGENT_DEFAULT_POOLING!r} is missing")
    ref_default = {r: (ref_default_pooling or {}).get(r, "mean") for r in ref_layers}
    for r, pool in ref_default.items():
        if pool not in ref_layers[r]:
            raise M.MetricInputError(f"reference {r!r}: its default pooling {pool!r} is missing")
    subsets = item_subsets(k) if subsets is None else [check_item_set(x) for x in subsets]
    preps = list(preprocessings)
    nA, nB = len(A_X), len(B_X)

    # 1. every choice on every item set: one ranking per space x preprocessing x item set
    blocks = []
    for s in subsets:
        for pi, how in enumerate(preps):
            P = item_set_precision(A_X, B_X, s, how)
            blocks.append((s, pi, P))
        say(f"item set {s.name}: {nA} x {nB} pairs x {len(preps)} preprocessings")
    t1 = time.perf_counter()

    # 2. split halves
    halves = half_item_sets(n, k, n_splits, seed)
    H = np.stack([np.stack([item_set_precision(A_X, B_X, h, how) for how in preps]) for h in halves])
    say(f"split halves: {len(halves)} halves x {len(preps)} preprocessings")
    t2 = time.perf_counter()

    # 3. long table
    a_idx, b_idx = np.meshgrid(np.arange(nA), np.arange(nB), indexing="ij")
    a_idx, b_idx = a_idx.ravel(), b_idx.ravel()
    parts = []
    for s, pi, P in blocks:
        v = P.ravel()
        ok = ~np.isnan(v)
        parts.append(pd.DataFrame({"a": a_idx[ok], "b": b_idx[ok], "prep": pi, "subset": s.name,
                                   "n_items": s.n, "k": s.k, "hits": np.rint(v[ok] * s.n * s.k).astype(np.int32)}))
    long = pd.concat(parts, ignore_index=True)
    am = pd.DataFrame(A_meta, columns=["key", "agent_layer", "agent_pooling", "agent_n_layers"])
    bm = pd.DataFrame(B_meta, columns=["reference", "ref_layer", "ref_pooling", "ref_n_layers"])
    a_name = np.array([m[0][0] for m in A_meta], dtype=object)
    a_seed = np.array([m[0][1] for m in A_meta])
    res = pd.DataFrame({
        "agent": a_name[long["a"]], "seed": a_seed[long["a"]],
        "reference": bm["reference"].to_numpy()[long["b"]],
        "agent_layer": am["agent_layer"].to_numpy()[long["a"]],
        "agent_n_layers": am["agent_n_layers"].to_numpy()[long["a"]],
        "agent_pooling": am["agent_pooling"].to_numpy()[long["a"]],
        "ref_layer": bm["ref_layer"].to_numpy()[long["b"]],
        "ref_n_layers": bm["ref_n_layers"].to_numpy()[long["b"]],
        "ref_pooling": bm["ref_pooling"].to_numpy()[long["b"]],
        "preprocessing": np.asarray(preps, dtype=object)[long["prep"]],
        "subset": long["subset"].to_numpy(), "n_items": long["n_items"].to_numpy(),
        "k": long["k"].to_numpy(), "hits": long["hits"].to_numpy()})
    res.insert(2, "trained", ~np.char.startswith(a_name.astype(str), "untrained-")[long["a"]])
    res = _compact(res)

    # 4. summary per pair
    groups = list(agent_layers)
    full = next(i for i, x in enumerate(subsets) if x.name == "all")
    if "raw" not in preps:
        raise M.MetricInputError("the preprocessings must include 'raw' (the pre-registered choice)")
    raw = preps.index("raw")
    stats: dict[tuple, dict[str, Any]] = {}
    for g in groups:
        ga = np.array([i for i, m in enumerate(A_meta) if m[0] == g])
        a_last = max(i for i in ga if A_meta[i][2] == AGENT_DEFAULT_POOLING)  # last layer, mean
        a_mean = np.array([A_meta[i][2] == AGENT_DEFAULT_POOLING for i in ga])
        for r in ref_layers:
            rb = np.array([j for j, m in enumerate(B_meta) if m[0] == r])
            b_last = max(j for j in rb if B_meta[j][2] == ref_default[r])
            b_def = np.array([B_meta[j][2] == ref_default[r] for j in rb])
            vals = np.concatenate([P[np.ix_(ga, rb)].ravel() for _, _, P in blocks])
            vals = vals[~np.isnan(vals)]
            cube = H[:, :, ga][:, :, :, rb]  # (halves, preps, |ga|, |rb|)
            masks = {"": np.zeros(cube.shape[1:], dtype=bool), "_ref": np.zeros(cube.shape[1:], dtype=bool),
                     "_any": np.ones(cube.shape[1:], dtype=bool)}
            masks[""][raw] = a_mean[:, None] & b_def[None, :]
            masks["_ref"][raw] = (ga == a_last)[:, None] & b_def[None, :]
            pre = (raw, int(np.flatnonzero(ga == a_last)[0]), int(np.flatnonzero(rb == b_last)[0]))
            row: dict[str, Any] = {"last_layer": float(blocks[full * len(preps) + raw][2][a_last, b_last])}
            for tag, mask in masks.items():
                scores, picks = [], []
                for i in range(0, len(halves), 2):
                    for sel, sco in ((i, i + 1), (i + 1, i)):
                        c = choose(cube[sel], mask)
                        scores.append(cube[sco].ravel()[c])
                        pi, ai, bj = np.unravel_index(c, cube.shape[1:])
                        am_, bm_ = A_meta[ga[ai]], B_meta[rb[bj]]
                        picks.append(f"agent L{am_[1]} {am_[2]} / L{bm_[1]} {bm_[2]}"
                                     + (f" / {preps[pi]}" if tag == "_any" else ""))
                top = pd.Series(picks).value_counts()
                row[f"split_half{tag}"] = float(np.nanmean(scores))
                row[f"split_half{tag}_choice"] = f"{top.index[0]} ({top.iloc[0]}/{len(picks)})"
            row["split_half_last_layer"] = float(np.nanmean(
                [cube[sco][pre] for i in range(0, len(halves), 2) for sco in (i, i + 1)]))
            row.update(half_k=halves[0].k, half_chance=float(np.mean([h.chance for h in halves])),
                       median=float(np.median(vals)), q05=float(np.quantile(vals, 0.05)),
                       q95=float(np.quantile(vals, 0.95)), n_choices=int(vals.size),
                       chance=float(M.chance_precision(n, k)))
            stats[(g, r)] = row
    rows = []
    twins = dict(twins or {})
    for g in groups:
        for r in ref_layers:
            row = {"agent": g[0], "seed": g[1], "trained": not str(g[0]).startswith("untrained-"),
                   "twin": twins[g][0] if g in twins else "", "reference": r, **stats[(g, r)]}
            tw = stats.get((twins[g], r)) if g in twins else None
            for c in UNTRAINED_COLUMNS:
                row[f"untrained_{c}"] = tw[c] if tw else np.nan
            rows.append(row)
    summary = pd.DataFrame(rows)
    n_eval = int(sum((~np.isnan(P)).sum() for _, _, P in blocks) + (~np.isnan(H)).sum())
    left_out = nA * nB * len(subsets) * len(preps) - len(res)
    notes = [f"{left_out} choices left out as degenerate (a space with all rows parallel or all-zero rows after "
             "preprocessing)"] if left_out else []
    t3 = time.perf_counter()
    return MultiverseResult(results=res, summary=summary, notes=notes, n_evaluations=n_eval,
                            timings={"item_sets_s": t1 - t0, "halves_s": t2 - t1, "tables_s": t3 - t2,
                                     "total_s": t3 - t0})


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in ("agent", "reference", "agent_pooling", "ref_pooling", "preprocessing", "subset"):
        out[c] = pd.Categorical(out[c], categories=list(dict.fromkeys(out[c])))
    for c, t in (("seed", np.int16), ("agent_layer", np.int16), ("agent_n_layers", np.int16),
                 ("ref_layer", np.int16), ("ref_n_layers", np.int16), ("n_items", np.int16), ("k", np.int16),
                 ("hits", np.int32)):
        out[c] = out[c].astype(t)
    return out


# ------------------------------------------------------------------------------------------ loading the sweeps
class MultiverseError(ValueError):
    """The shipped inputs of the multiverse are missing or inconsistent."""


def _check_agent_against_shipped(name: str, seed: int, E_L: np.ndarray) -> str | None:
    """Compare a checkpoint's recomputed E_L with its shipped embedding file; None if there is no such file."""
    from .embedders import load_embeddings
    from .embedders.errors import EmbedderError

    try:
        S, _ = load_embeddings(name, seed)
    except EmbedderError:
        return None
    full = ItemSet("all", np.arange(S.shape[0]), K)
    diff = float(np.abs(S - E_L).max())
    if diff > 1e-5 or not np.array_equal(_sets(S, full, "raw"), _sets(E_L, full, "raw")):
        raise MultiverseError(
            f"the checkpoint of {name} seed {seed} does not reproduce its shipped embedding "
            f"assets/embeddings/{name}-s{seed}.npz (max |diff| {diff:.2g}, or other 15-NN sets): re-ship it with "
            f"`python -m core embed-agent --agent {name.removeprefix('untrained-')}-s{seed} --ship"
            f"{' --untrained' if name.startswith('untrained-') else ''}` first")
    return f"{name}-s{seed}: checkpoint E_L = shipped embedding (max |diff| {diff:.1e}, same 15-NN sets)"


def load_inputs(agents: Sequence[tuple[str, int]] | None = None, references: Sequence[str] | None = None,
                ) -> tuple[dict, dict, dict, dict, list[str]]:
    """(agent_layers, ref_layers, twins, ref_default_pooling, notes) from the shipped checkpoints and sweeps.

    ``agents``: (trained agent, seed) pairs (default: every shipped checkpoint); each gets its untrained twin.
    ``references``: models with a shipped layer sweep (default: every one present; absent ones are noted).
    Each agent's last layer under mean is checked against its shipped embedding (MultiverseError if they differ).
    """
    from .agent_layers import AGENT_POOLINGS, agent_checkpoint, load_agent_layers, shipped_agents
    from .embedders import load_layers
    from .embedders.errors import NotComputedError
    from .embedders.layers import SWEEP_MODELS, sweep_poolings
    from .embedders.registry import TABLE

    notes: list[str] = []
    agents = shipped_agents() if agents is None else [(str(a), s) for a, s in agents]
    if not agents:
        raise MultiverseError("no agent checkpoints in assets/agents (train one: python -m core train --seed 0)")
    for name, seed in agents:  # every input checked before anything heavy is loaded
        if name.startswith("untrained-"):
            raise MultiverseError(f"give trained agents ({name!r}): each one's untrained twin is added")
        agent_checkpoint(name, seed)
    for r in references or ():
        sweep_poolings(r)
    agent_layers, twins = {}, {}
    for name, seed in agents:
        for who in (name, f"untrained-{name}"):
            agent_layers[(who, seed)] = {p: load_agent_layers(who, seed, p) for p in AGENT_POOLINGS}
            msg = _check_agent_against_shipped(who, seed, agent_layers[(who, seed)]["mean"][-1])
            if msg:
                notes.append(msg)
        twins[(name, seed)] = (f"untrained-{name}", seed)
    ref_layers, default = {}, {}
    for r in (SWEEP_MODELS if references is None else references):
        pools = sweep_poolings(r)
        try:
            ref_layers[r] = {p: load_layers(r, p) for p in pools}
            default[r] = TABLE[r].default_pooling
        except NotComputedError as e:
            if references is not None:
                raise
            notes.append(f"reference {r} left out: {e}")
    if not ref_layers:
        raise MultiverseError("no layer sweep is present; compute them with: python -m core layers --model all --ship")
    return agent_layers, ref_layers, twins, default, notes


# ------------------------------------------------------------------------------------------ organisation
def organisation_table(agent_layers: Mapping | None = None, ref_layers: Mapping | None = None,
                       k: int = K) -> pd.DataFrame:
    """What organises each space (issue 13, section 2): :func:`core.controls.space_organisation` of every shipped
    embedding, every reference layer and every agent layer (degenerate layers left out).

    Columns: ``space`` (label), ``kind`` (embedding | reference layer | agent layer), ``model``, ``seed``,
    ``layer``, ``n_layers``, ``pooling`` and the columns of ``space_organisation`` (``factor, n_levels, eta2,
    eta2_null, loo_acc, loo_chance, share, share_chance, share_ratio``).
    """
    from .controls import space_organisation
    from .embedders import available, load_seeds

    full = ItemSet("all", np.arange(len(instruction_set())), k)
    parts = []

    def add(X, **key):
        if _sets(X, full, "raw") is None:
            return
        o = space_organisation(X, k)
        for c, v in reversed(list(key.items())):
            o.insert(0, c, v)
        parts.append(o)

    for m in available():
        for s, X in load_seeds(m).items():
            add(X, space=m if s is None else f"{m}-s{s}", kind="embedding", model=m,
                seed=-1 if s is None else s, layer=-1, n_layers=0, pooling="")
    for r, by_pool in (ref_layers or {}).items():
        for pool, E in by_pool.items():
            for layer in range(E.shape[0]):
                add(E[layer], space=f"{r} L{layer} {pool}", kind="reference layer", model=r, seed=-1, layer=layer,
                    n_layers=E.shape[0], pooling=pool)
    for (a, s), by_pool in (agent_layers or {}).items():
        for pool, E in by_pool.items():
            for layer in range(E.shape[0]):
                add(E[layer], space=f"{a}-s{s} L{layer} {pool}", kind="agent layer", model=a, seed=s,
                    layer=layer, n_layers=E.shape[0], pooling=pool)
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------ run, ship, load
def multiverse_dir() -> Path:
    from .store import assets_dir

    return assets_dir() / "multiverse"


def run(agents: Sequence[tuple[str, int]] | None = None, references: Sequence[str] | None = None, *,
        k: int = K, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED, out: str | Path | None = None,
        ship: bool = True, progress: Callable[[str], None] | None = None) -> MultiverseResult:
    """Load the shipped sweeps (:func:`load_inputs`), compute the multiverse (:func:`compute`) and the
    organisation table, and (``ship``) write them to ``out`` (default ``assets/multiverse``) with a manifest."""
    t0 = time.perf_counter()
    agent_layers, ref_layers, twins, default, notes = load_inputs(agents, references)
    t1 = time.perf_counter()
    res = compute(agent_layers, ref_layers, twins=twins, ref_default_pooling=default, k=k, n_splits=n_splits,
                  seed=seed, progress=progress)
    t2 = time.perf_counter()
    res.organisation = organisation_table(agent_layers, ref_layers, k)
    res.notes = notes + res.notes
    res.timings.update(load_s=t1 - t0, organisation_s=time.perf_counter() - t2)
    if ship:
        write(res, out, k=k, n_splits=n_splits, seed=seed, agents=list(twins), references=list(ref_layers))
    return res


def write(res: MultiverseResult, out: str | Path | None = None, **provenance) -> Path:
    """Write results.parquet, summary.csv, organisation.csv and multiverse.json (atomically, file by file)."""
    import os

    from .agent_layers import checkpoint_path
    from .controls import _write_csv
    from .embedders.layers import file_stem, layers_dir
    from .instructions import instruction_set_hash
    from .store import git_commit, now_iso, sha256_file, write_json

    d = Path(out) if out is not None else multiverse_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".results.tmp.parquet"
    res.results.to_parquet(tmp, index=False, compression="zstd")
    os.replace(tmp, d / "results.parquet")
    prov = [f"ALVA multiverse, {now_iso()}, git {git_commit()}; command: python -m core multiverse",
            "conventions: see core/multiverse.py and multiverse.json"]
    _write_csv(d / "summary.csv", res.summary,
               prov + [f"{c}: {v}" for c, v in SUMMARY_COLUMNS.items()] + [f"note: {x}" for x in res.notes])
    if res.organisation is not None:
        from .controls import FACTOR_CONVENTIONS, SHARE_CONVENTIONS

        _write_csv(d / "organisation.csv", res.organisation,
                   prov + [FACTOR_CONVENTIONS, SHARE_CONVENTIONS.format(k=provenance.get("k", K))])
    agents = provenance.get("agents", [])
    refs = provenance.get("references", [])
    inputs = {f"agents/{a}-s{s}.pt": sha256_file(checkpoint_path(f"{a}-s{s}")) for a, s in agents}
    for r in refs:
        for p in sorted(set(res.results.loc[res.results["reference"] == r, "ref_pooling"].astype(str))):
            f = layers_dir() / f"{file_stem(r, p)}.npz"
            inputs[f"layers/{f.name}"] = sha256_file(f)
    man = {"what": "P@k of every agent x reference pair over every analysis choice (layers, poolings, "
                   "preprocessing, instruction subsets), last-layer and split-half figures, and the factor "
                   "organisation of every space",
           "command": "python -m core multiverse", "date": now_iso(), "git_commit": git_commit(),
           "instruction_set_hash": instruction_set_hash(), "dtype": "results: integer hit counts (exact); "
           "summary and organisation: float64 written with 6 significant digits",
           "k": provenance.get("k", K), "n_splits": provenance.get("n_splits", N_SPLITS),
           "split_seed": provenance.get("seed", SPLIT_SEED), "inputs_sha256": inputs,
           "result_columns": RESULT_COLUMNS, "summary_columns": SUMMARY_COLUMNS,
           "conventions": {"neighbours": M.NEIGHBOUR_CONVENTIONS, "precision": M.PRECISION_CONVENTIONS,
                           "multiverse": __doc__.split("\n\n", 1)[1]},
           "n_rows": len(res.results), "n_evaluations": res.n_evaluations,
           "timings_s": {k_: round(v, 2) for k_, v in res.timings.items()}, "notes": res.notes,
           "files": {f.name: f.stat().st_size for f in sorted(d.glob("*.*")) if not f.name.startswith(".")}}
    write_json(d / "multiverse.json", man)
    return d


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; compute it with: python -m core multiverse")
    return pd.read_csv(path, comment="#")


def load_results(directory: str | Path | None = None) -> pd.DataFrame:
    """The long table: one row per (agent, seed, reference) pair x choice (degenerate choices left out).

    Columns (:data:`RESULT_COLUMNS` describes each): ``agent`` (alm, alm-word-random, ... or untrained-<agent>),
    ``seed``, ``trained``, ``reference``, ``agent_layer``, ``agent_n_layers``, ``agent_pooling`` (mean | first |
    max), ``ref_layer``, ``ref_n_layers``, ``ref_pooling`` (mean | last | cls), ``preprocessing`` (raw | centred |
    zscore | clamp), ``subset`` (all | verb=<verb> | determiner=<determiner>), ``n_items``, ``k``, ``hits``
    (sum over items of the neighbour-set intersections, an exact integer), and, added here, ``p_at_k`` =
    hits / (n_items k), ``chance`` = k / (n_items - 1) and ``preregistered`` (the last-layer choice).
    """
    path = (Path(directory) if directory is not None else multiverse_dir()) / "results.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; compute it with: python -m core multiverse")
    df = pd.read_parquet(path)
    df["p_at_k"] = df["hits"] / (df["n_items"].astype(np.float64) * df["k"])
    df["chance"] = df["k"] / (df["n_items"].astype(np.float64) - 1)
    from .embedders.registry import TABLE

    default = df["reference"].astype(str).map(lambda r: TABLE[r].default_pooling if r in TABLE else "mean")
    df["preregistered"] = ((df["agent_layer"] == df["agent_n_layers"] - 1)
                           & (df["agent_pooling"].astype(str) == AGENT_DEFAULT_POOLING)
                           & (df["ref_layer"] == df["ref_n_layers"] - 1)
                           & (df["ref_pooling"].astype(str) == default) & (df["preprocessing"] == "raw")
                           & (df["subset"] == "all"))
    return df


def load_summary(directory: str | Path | None = None) -> pd.DataFrame:
    """One row per (agent, seed, reference) pair; every agent checkpoint and every untrained twin has rows.

    Columns (:data:`SUMMARY_COLUMNS` describes each): ``agent, seed, trained, twin, reference, last_layer,
    split_half, split_half_choice, split_half_ref, split_half_ref_choice, split_half_any, split_half_any_choice,
    split_half_last_layer, half_k, half_chance, median, q05, q95, n_choices, chance`` and, for a trained agent,
    its untrained twin's ``untrained_last_layer, untrained_split_half, untrained_split_half_ref,
    untrained_split_half_any, untrained_median, untrained_q05, untrained_q95, untrained_n_choices`` (NaN on the
    twins' own rows). ``last_layer`` and the distribution are P@15 at n = 108 (subsets: chance-matched k); the
    ``split_half*`` figures are held-out P@7 on 54 items (chance ``half_chance`` = 7/53).
    """
    df = _read_csv((Path(directory) if directory is not None else multiverse_dir()) / "summary.csv")
    df["twin"] = df["twin"].fillna("")
    return df


def load_organisation(directory: str | Path | None = None) -> pd.DataFrame:
    """What organises each space: one row per space x factor (columns: :func:`organisation_table`)."""
    df = _read_csv((Path(directory) if directory is not None else multiverse_dir()) / "organisation.csv")
    df["pooling"] = df["pooling"].fillna("")
    return df


def cli(argv: Sequence[str] | None = None) -> int:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "multiverse":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="python -m core multiverse",
                                description="P@15 over every analysis choice for every agent x reference pair "
                                            "(see core/multiverse.py); writes assets/multiverse")
    p.add_argument("--agents", nargs="+", default=None,
                   help="trained checkpoints as NAME-sSEED (default: every one in assets/agents)")
    p.add_argument("--references", nargs="+", default=None, help="reference models (default: every sweep shipped)")
    p.add_argument("--k", type=int, default=K)
    p.add_argument("--n-splits", type=int, default=N_SPLITS)
    p.add_argument("--seed", type=int, default=SPLIT_SEED)
    p.add_argument("--out", type=Path, default=None, help="output directory (default assets/multiverse)")
    p.add_argument("--dry-run", action="store_true", help="compute and print, write nothing")
    a = p.parse_args(argv)
    agents = None
    if a.agents:
        agents = []
        for x in a.agents:
            name, sep, s = x.rpartition("-s")
            if not sep or not s.isdigit():
                print(f"error: agent {x!r} must be NAME-sSEED (e.g. alm-s0)", file=sys.stderr)
                return 2
            agents.append((name, int(s)))
    from .embedders.errors import EmbedderError
    try:
        res = run(agents, a.references, k=a.k, n_splits=a.n_splits, seed=a.seed, out=a.out, ship=not a.dry_run,
                  progress=lambda m: print(m, flush=True))
    except (MultiverseError, EmbedderError, M.MetricInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in res.notes:
        print(f"note: {note}")
    cols = ["agent", "seed", "reference", "last_layer", "split_half", "split_half_ref", "split_half_any",
            "split_half_last_layer", "median", "q05", "q95", "n_choices"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(res.summary[cols].round(3).to_string(index=False))
    t = res.timings
    print(f"\n{len(res.results)} choices, {res.n_evaluations} P@k evaluations; load {t['load_s']:.1f} s, "
          f"multiverse {t['total_s']:.1f} s, organisation {t['organisation_s']:.1f} s"
          + ("" if a.dry_run else f"; written to {a.out or multiverse_dir()}"))
    return 0

"""Controls: how much agent-LLM alignment exists without learning, and beyond lexical overlap?

Instructions share words, and every text encoder sees that; an agent whose word embeddings start one-hot sees it
too (an untrained identity-init agent reaches P@15 ~ 0.69 against bag-of-words, chance 0.14). The analyses here
put an alignment figure next to what word overlap alone, the grammar's factors, chance and an untrained agent give.

Every result carries its ``conventions`` string; the CLI writes them into the header of every table.
Conventions shared with :mod:`core.metrics` (reused, not re-implemented): cosine on raw rows, item itself
excluded, similarities/distances rounded to 10 decimals before ranking; RDM = ``1 - cos``; RSA = Spearman of the
upper triangles (average ranks).

Definitions
-----------
**Partial RSA** (:func:`partial_rsa`): the upper triangles (i < j) of the cosine-distance RDMs of A, B and of the
control RDM(s) C are rank-transformed (average ranks, entries rounded to 10 decimals); the ranks of A and of B
are each residualised on the ranks of C by least squares (with intercept); partial RSA = Pearson correlation of
the two residual vectors (= a partial Spearman correlation; with one control it equals
``(r_AB - r_AC r_BC) / sqrt((1 - r_AC^2)(1 - r_BC^2))``). If C explains the ranks of A or of B completely
(residual norm < 1e-8 of the standardised ranks), nothing is left to correlate: the value is reported as 0.0
with ``degenerate=True``.

**Lexical-free P@k** (:func:`lexical_free_precision`): for item i the candidate neighbours are
``C_i = {j != i : words(i) ∩ words(j) ⊆ ignored}`` (``words`` = the set of the instruction's words; ``ignored``
is empty by default, i.e. i and j share *no word at all*; ``ignore_determiner=True`` lets them share "the"/"a").
In each space the k nearest neighbours of i are taken *within C_i*; P@k(i) = |N_A ∩ N_B| / k, averaged over i.
Within C_i the bag-of-words and factor encodings are constant (cosine 0 with every candidate), so any agreement
above chance is structure beyond word overlap. Ties (equal rounded similarities at the k-th place) are resolved
by the *expected* overlap under uniformly random tie-breaking, independently in each space:
a candidate strictly closer than the k-th similarity gets weight 1, the t candidates tied at the k-th similarity
share the r remaining places with weight r/t each, and P@k(i) = sum_j w_A(j) w_B(j) / k (exact expectation;
it equals the index-tie-broken value whenever there are no ties). Chance = mean_i k / |C_i|, which is *not*
k/(n-1). For the default 108-set: |C_i| is 15, 20, 25 or 30 with a shared determiner counting as a shared
word (so k <= 14), and 30 to 60
with ``ignore_determiner=True``. Requires k < min_i |C_i|.

**Factor separation** (:func:`factor_separation`): for each factor (verb, determiner, colour, object)
(1) leave-one-out nearest-centroid accuracy: item i is assigned to the level whose centroid (mean of the
L2-normalised rows of that level, i itself left out) has the highest cosine similarity with x_i; chance = 1/L
(uniform guessing; L levels) and the majority share are reported, and an optional permutation null (labels
shuffled); (2) variance share eta^2 = between-level sum of squares / total sum of squares of the L2-normalised
rows (the cosine geometry); its null expectation for random labels is (L-1)/(n-1). Factors are not independent
in the grammar (objects depend on the verb), so shares of different factors do not add up.

**Trained vs untrained** (:func:`trained_vs_untrained`): difference = mean over trained seeds of metric(T_s, B)
minus mean over untrained seeds of metric(U_s, B), on all items; CI = percentile bootstrap over items (the same
resampled items for every space in a replicate, i.e. paired): for P@k and lexical-free P@k the per-item values
are fixed and reweighted (as :func:`core.metrics.bootstrap_ci`); for RSA and partial RSA the RDM entries of the
resampled items are used, dropping pairs of two copies of the same item; CKA and Procrustes are recomputed on the
resampled rows; their chance level depends on the number of distinct items, which resampling with replacement
lowers (duplicates), so for them the percentile interval is re-centred on the estimate (the spread of the
bootstrap, shifted by ``boot_shift`` = mean replicate - estimate, which is reported for every metric). The CI
reflects item sampling only, not seed sampling (the per-seed values are reported).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import metrics as M
from .instructions import DEFAULT_GRAMMAR, FACTORS, instruction_set

_DEGENERATE_TOL = 1e-8
_ROUND = M.DECIMALS

PARTIAL_RSA_CONVENTIONS = (
    "partial Spearman RSA: upper triangles (i<j) of cosine-distance RDMs (1 - cos), entries rounded to "
    f"{_ROUND} decimals, average ranks; ranks of A and B residualised on the control RDM ranks (least squares, "
    "intercept); Pearson of the residuals; reported as 0.0 (degenerate=True) if the control explains A or B "
    "entirely")
LEXFREE_CONVENTIONS = (
    "lexical-free P@k: for item i candidates C_i = items j != i sharing no word with i (determiners {ignored}); "
    "k nearest within C_i by cosine on raw rows (rounded to 10 decimals); P@k(i) = expected |N_A ∩ N_B| / k "
    "under uniformly random tie-breaking at the k-th place (= index tie-breaking when there are no ties); "
    "mean over i; chance = mean_i k/|C_i|")
FACTOR_CONVENTIONS = (
    "per factor: LOO nearest-centroid accuracy (rows L2-normalised, level centroids without the item, assign the "
    "level of highest cosine); chance = 1/L (uniform guess), majority = largest level share; eta^2 = between-level "
    "SS / total SS of the L2-normalised rows, null expectation (L-1)/(n-1)")
SHARE_CONVENTIONS = (
    "neighbour-factor share at k = {k}: per item, the share of its k nearest neighbours (cosine on raw rows, self "
    "excluded, ties to the smaller index) with the item's level of the factor, averaged over items; chance = mean "
    "over items of (#items with that level - 1)/(n - 1) (a uniformly random neighbour set); ratio = share/chance")
TVU_CONVENTIONS = (
    "difference = mean_s metric(trained_s, B) - mean_s metric(untrained_s, B) on all items; percentile "
    "bootstrap CI over items (paired: same resample for every space); P@k-type metrics: per-item values fixed "
    "and reweighted; RSA-type: RDM entries of resampled items, pairs of copies of one item dropped; CKA and "
    "Procrustes recomputed on resampled rows, percentile interval re-centred by boot_shift (mean replicate - "
    "estimate) because duplicates shift their chance level; CI reflects item sampling only")


# ------------------------------------------------------------------------------------------ helpers
def _upper(D: np.ndarray) -> np.ndarray:
    return D[np.triu_indices(D.shape[0], k=1)]


def _std_ranks(v: np.ndarray, what: str) -> np.ndarray:
    """Centred, unit-norm average ranks of a vector of distances (rounded as in core.metrics)."""
    from scipy.stats import rankdata

    r = rankdata(np.round(np.asarray(v, dtype=np.float64), _ROUND), method="average")
    r -= r.mean()
    nrm = np.linalg.norm(r)
    if not nrm > 0:
        raise M.MetricInputError(f"partial RSA is undefined: all pairwise distances are equal in {what}")
    return r / nrm


def _check_rdm(D, n: int, name: str = "control_rdm") -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.shape != (n, n):
        raise M.MetricInputError(f"{name} must be an ({n}, {n}) RDM (the same items as A and B); got {D.shape}. "
                                 f"For an embedding matrix X pass core.metrics.rdm(X).")
    if not np.isfinite(D).all():
        raise M.MetricInputError(f"{name} has NaN or inf entries")
    if not np.allclose(D, D.T, atol=1e-9):
        raise M.MetricInputError(f"{name} is not symmetric")
    return D


def _partial_from_ranks(ra: np.ndarray, rb: np.ndarray, rc: list[np.ndarray]) -> tuple[float, bool]:
    Z = np.column_stack([np.ones_like(ra), *rc])
    coef_a, *_ = np.linalg.lstsq(Z, ra, rcond=None)
    coef_b, *_ = np.linalg.lstsq(Z, rb, rcond=None)
    ea, eb = ra - Z @ coef_a, rb - Z @ coef_b
    na, nb = np.linalg.norm(ea), np.linalg.norm(eb)
    if na < _DEGENERATE_TOL or nb < _DEGENERATE_TOL:
        return 0.0, True
    return float(np.clip(ea @ eb / (na * nb), -1.0, 1.0)), False


# ------------------------------------------------------------------------------------------ partial RSA
@dataclass(frozen=True)
class PartialRSAResult:
    partial: float          # partial Spearman RSA of A and B controlling for the control RDM(s)
    rsa: float              # plain RSA(A, B) (core.metrics.rsa)
    r_a_control: tuple      # Spearman of A's RDM with each control RDM
    r_b_control: tuple
    n_pairs: int
    degenerate: bool
    conventions: str = PARTIAL_RSA_CONVENTIONS


def partial_rsa(A, B, control_rdm) -> PartialRSAResult:
    """Partial RSA of A and B controlling for ``control_rdm`` (an (n, n) RDM or a list of them).

    Build a control RDM from embeddings with :func:`core.metrics.rdm` (e.g. ``rdm(baselines.bag_of_words())``).
    """
    A, B = M.check_pair(A, B, min_rows=3)
    n = A.shape[0]
    controls = [control_rdm] if np.ndim(control_rdm) == 2 else list(control_rdm)
    if not controls:
        raise M.MetricInputError("partial_rsa needs at least one control RDM")
    rc = [_std_ranks(_upper(_check_rdm(D, n, f"control_rdm[{i}]")), f"control RDM {i}")
          for i, D in enumerate(controls)]
    ra, rb = _std_ranks(_upper(M.rdm(A)), "A"), _std_ranks(_upper(M.rdm(B)), "B")
    p, deg = _partial_from_ranks(ra, rb, rc)
    return PartialRSAResult(partial=p, rsa=float(np.clip(ra @ rb, -1, 1)),
                            r_a_control=tuple(float(ra @ c) for c in rc), r_b_control=tuple(float(rb @ c) for c in rc),
                            n_pairs=int(ra.size), degenerate=deg)


# ------------------------------------------------------------------------------------------ lexical-free P@k
def candidate_mask(instructions: Sequence[str] | None = None, ignore_determiner: bool = False) -> np.ndarray:
    """(n, n) bool: True where j is a candidate neighbour of i (j != i, no shared word except ignored ones)."""
    items = instruction_set() if instructions is None else [str(s) for s in instructions]
    ignored = set(DEFAULT_GRAMMAR.determiners) if ignore_determiner else set()
    words = [set(t.lower().split()) - ignored for t in items]
    n = len(items)
    mask = np.array([[i != j and not (words[i] & words[j]) for j in range(n)] for i in range(n)])
    return mask


def _rounded_cos(X: np.ndarray) -> np.ndarray:
    return np.round(M.cosine_similarity(X), _ROUND)


def _membership(S: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Expected k-NN membership weights (n, n) within the candidate mask under random tie-breaking."""
    Sm = np.where(mask, S, -np.inf)
    kth = -np.partition(-Sm, k - 1, axis=1)[:, k - 1]
    greater = (Sm > kth[:, None])
    equal = (Sm == kth[:, None]) & mask
    rem = k - greater.sum(axis=1)
    return greater + equal * (rem / equal.sum(axis=1))[:, None]


def _expected_overlap(SA: np.ndarray, SB: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    return (_membership(SA, mask, k) * _membership(SB, mask, k)).sum(axis=1) / k


@dataclass(frozen=True)
class LexicalFreeResult:
    precision: float            # mean over items
    chance: float               # mean_i k / |C_i|
    per_item: np.ndarray        # (n,) expected P@k(i)
    n_candidates: np.ndarray    # (n,) |C_i|
    k: int
    ignore_determiner: bool
    conventions: str = ""


def lexical_free_precision(A, B, k: int, instructions: Sequence[str] | None = None,
                           ignore_determiner: bool = False) -> LexicalFreeResult:
    """P@k with neighbours restricted to items sharing no word with the item (definition: module docstring)."""
    A, B = M.check_pair(A, B)
    mask = candidate_mask(instructions, ignore_determiner)
    if mask.shape[0] != A.shape[0]:
        raise M.MetricInputError(f"{mask.shape[0]} instructions for {A.shape[0]} rows")
    nc = mask.sum(axis=1)
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k < nc.min():
        raise M.MetricInputError(
            f"k must be an integer with 1 <= k < min |C_i| = {nc.min()} (the smallest candidate set; "
            f"ignore_determiner={ignore_determiner}); got {k!r}")
    per = _expected_overlap(_rounded_cos(A), _rounded_cos(B), mask, int(k))
    ign = "may be shared" if ignore_determiner else "count as shared words"
    return LexicalFreeResult(precision=float(per.mean()), chance=float((k / nc).mean()), per_item=per,
                             n_candidates=nc, k=int(k), ignore_determiner=ignore_determiner,
                             conventions=LEXFREE_CONVENTIONS.format(ignored=ign))


def tie_expected_precision(A, B, k: int, per_item: bool = False) -> float | np.ndarray:
    """P@k over all items (no restriction) with ties at the k-th place resolved by expectation.

    :func:`core.metrics.precision_at_k` breaks ties by the smaller item index. Discrete encodings
    (bag-of-words, tfidf, factors) have many exact ties: for bag-of-words about 19 items share the 15th
    similarity on average, so index tie-breaking moves P@15 by up to ~0.07. This value is the exact expectation
    of P@k under uniformly random tie-breaking, independently in each space (equal to metrics' value when
    neither space has ties at the k-th place). Note that a tied space compared with itself then scores below 1
    (two independent tie-breaks), so a discrete baseline's ceiling is below 1 under this convention.
    """
    A, B = M.check_pair(A, B)
    n = A.shape[0]
    k = M.check_k(k, n)
    per = _expected_overlap(_rounded_cos(A), _rounded_cos(B), ~np.eye(n, dtype=bool), k)
    return per if per_item else float(per.mean())


# ------------------------------------------------------------------------------------------ factors
def factor_separation(X, metadata: pd.DataFrame | None = None, factors: Sequence[str] = FACTORS,
                      n_perm: int = 0, seed: int = 0) -> pd.DataFrame:
    """One row per factor: LOO nearest-centroid accuracy (cosine) with chance levels, and variance share eta^2.

    ``metadata``: one row per item with a column per factor (default: ``instructions.metadata()``).
    ``n_perm > 0`` adds ``null_mean`` / ``null_p95`` of the accuracy with labels shuffled (seeded).
    """
    X = M.check_space(X)
    if metadata is None:
        from .instructions import metadata as _meta
        metadata = _meta()
    if len(metadata) != X.shape[0]:
        raise M.MetricInputError(f"metadata has {len(metadata)} rows for {X.shape[0]} items")
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    n = U.shape[0]
    rng = np.random.default_rng(seed)
    rows = []
    for f in factors:
        labels = np.asarray(metadata[f])
        levels, y = np.unique(labels, return_inverse=True)
        L = levels.size
        if L < 2:
            continue
        acc = _loo_centroid_acc(U, y, L)
        counts = np.bincount(y, minlength=L)
        mu = U.mean(axis=0)
        ss_tot = float(((U - mu) ** 2).sum())
        means = np.stack([U[y == c].mean(axis=0) for c in range(L)])
        ss_b = float((counts[:, None] * (means - mu) ** 2).sum())
        row = {"factor": f, "n_levels": int(L), "loo_centroid_acc": acc, "chance": 1.0 / L,
               "majority": float(counts.max() / n), "eta2": ss_b / ss_tot if ss_tot > 0 else float("nan"),
               "eta2_null": (L - 1) / (n - 1)}
        if n_perm > 0:
            null = np.array([_loo_centroid_acc(U, rng.permutation(y), L) for _ in range(int(n_perm))])
            row.update(null_mean=float(null.mean()), null_p95=float(np.percentile(null, 95)),
                       p_value=float((1 + (null >= acc).sum()) / (1 + n_perm)))
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["conventions"] = FACTOR_CONVENTIONS
    return df


def _factor_metadata(instructions: Sequence[str] | None, n: int) -> pd.DataFrame:
    from .instructions import metadata as _meta

    meta = _meta(instructions)
    if len(meta) != n:
        raise M.MetricInputError(f"{len(meta)} instructions for {n} rows: give the instructions of the rows, "
                                 "in order")
    return meta


def neighbour_factor_shares(X, k: int = 15, instructions: Sequence[str] | None = None,
                            factors: Sequence[str] = FACTORS, per_item: bool = False) -> pd.DataFrame:
    """What organises a space: per factor, the share of each item's k nearest neighbours with the item's level.

    Neighbours: :func:`core.metrics.neighbours` (cosine on raw rows, self excluded, ties to the smaller index).
    ``instructions``: the instruction of each row, in order (default: ``instruction_set()``).

    Returns one row per factor with columns ``factor`` (verb / determiner / colour / object), ``share`` (mean over
    items of the share of its k neighbours that have the same level), ``chance`` (the expected share for a
    uniformly random neighbour set: mean over items of (#items with the item's level - 1) / (n - 1)) and
    ``ratio`` = share / chance. A space organised only by one factor gives share 1 for it (when k is below the
    level size). With ``per_item=True``: one row per (item, factor) with ``instruction, factor, level, share,
    chance``.
    """
    X = M.check_space(X)
    n = X.shape[0]
    k = M.check_k(k, n)
    meta = _factor_metadata(instructions, n)
    idx = M.neighbours(X, k)
    rows, items = [], []
    for f in factors:
        levels, y = np.unique(np.asarray(meta[f]), return_inverse=True)
        share = (y[idx] == y[:, None]).mean(axis=1)
        chance = (np.bincount(y)[y] - 1) / (n - 1)
        if per_item:
            items.append(pd.DataFrame({"instruction": meta["instruction"].to_numpy(), "factor": f,
                                       "level": levels[y], "share": share, "chance": chance}))
        else:
            rows.append({"factor": f, "share": float(share.mean()), "chance": float(chance.mean()),
                         "ratio": float(share.mean() / chance.mean()) if chance.mean() > 0 else float("nan")})
    out = pd.concat(items, ignore_index=True) if per_item else pd.DataFrame(rows)
    out.attrs["conventions"] = SHARE_CONVENTIONS.format(k=k)
    return out


def space_organisation(X, k: int = 15, instructions: Sequence[str] | None = None,
                       factors: Sequence[str] = FACTORS) -> pd.DataFrame:
    """One row per factor combining :func:`factor_separation` and :func:`neighbour_factor_shares`.

    Columns: ``factor``, ``n_levels``, ``eta2`` (between-level share of variance of the L2-normalised rows) and
    ``eta2_null`` ((L-1)/(n-1)), ``loo_acc`` (LOO nearest-centroid accuracy, cosine) and ``loo_chance`` (1/L),
    ``share``, ``share_chance`` and ``share_ratio`` (neighbour-factor shares at this k).
    """
    X = M.check_space(X)
    meta = _factor_metadata(instructions, X.shape[0])
    fs = factor_separation(X, metadata=meta, factors=factors)
    sh = neighbour_factor_shares(X, k, instructions, factors)
    out = fs.rename(columns={"loo_centroid_acc": "loo_acc", "chance": "loo_chance"}).merge(
        sh.rename(columns={"chance": "share_chance", "ratio": "share_ratio"}), on="factor", how="left")
    out = out[["factor", "n_levels", "eta2", "eta2_null", "loo_acc", "loo_chance", "share", "share_chance",
               "share_ratio"]]
    out.attrs["conventions"] = FACTOR_CONVENTIONS + " | " + SHARE_CONVENTIONS.format(k=k)
    return out


def _loo_centroid_acc(U: np.ndarray, y: np.ndarray, L: int) -> float:
    onehot = np.eye(L)[y]                      # (n, L)
    sums = onehot.T @ U                        # (L, d)
    counts = onehot.sum(axis=0)                # (L,)
    # centroid of own level without the item; other levels' centroids unchanged
    dots = U @ sums.T                          # (n, L): x_i . S_c
    sq = (sums ** 2).sum(axis=1)               # |S_c|^2
    own = y
    self_dot = 1.0                             # x_i . x_i for unit rows
    num = dots.copy()
    num[np.arange(len(y)), own] -= self_dot
    nrm2 = np.broadcast_to(sq, dots.shape).copy()
    nrm2[np.arange(len(y)), own] = sq[own] - 2 * dots[np.arange(len(y)), own] + self_dot
    cnt = np.broadcast_to(counts, dots.shape).copy()
    cnt[np.arange(len(y)), own] -= 1
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = num / np.sqrt(np.maximum(nrm2, 0))  # cosine with the (scaled) centroid: scale-free
    cos[(cnt == 0) | ~(nrm2 > 1e-24)] = -np.inf
    return float((np.argmax(cos, axis=1) == y).mean())


# ------------------------------------------------------------------------------------------ trained vs untrained
METRICS = ("precision", "lexfree_precision", "rsa", "partial_rsa", "cka", "procrustes")
HIGHER_IS_MORE_ALIGNED = {"precision": True, "lexfree_precision": True, "rsa": True, "partial_rsa": True,
                          "cka": True, "procrustes": False}


@dataclass(frozen=True)
class DifferenceResult:
    metric: str
    difference: float             # mean(trained) - mean(untrained)
    ci_low: float
    ci_high: float
    boot_shift: float             # mean of the bootstrap replicates - difference (resampling artefact check)
    level: float
    trained: tuple                # per-seed values on all items
    untrained: tuple
    trained_mean: float
    untrained_mean: float
    n_boot: int
    seed: int
    higher_is_more_aligned: bool
    conventions: str = ""

    def as_row(self) -> dict[str, Any]:
        d = asdict(self)
        d["trained"] = " ".join(f"{v:.4f}" for v in self.trained)
        d["untrained"] = " ".join(f"{v:.4f}" for v in self.untrained)
        d.pop("conventions")
        return d


class _Space:
    """Precomputed per-space quantities for the bootstrap."""

    def __init__(self, X: np.ndarray):
        self.X = M.check_space(X)
        self.S = _rounded_cos(self.X)
        self.D = np.round(M.rdm(self.X), _ROUND)


def _rank_pairs(D: np.ndarray, idx: np.ndarray, iu: tuple, keep: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    v = D[idx[iu[0][keep]], idx[iu[1][keep]]]
    r = rankdata(v, method="average")
    r -= r.mean()
    nrm = np.linalg.norm(r)
    return r / nrm if nrm > 0 else r


def _per_item(metric: str, a: _Space, b: _Space, k: int, mask: np.ndarray | None) -> np.ndarray:
    if metric == "precision":
        return M.per_item_precision(a.X, b.X, k)
    return _expected_overlap(a.S, b.S, mask, k)


def trained_vs_untrained(trained_list: Sequence[np.ndarray], untrained_list: Sequence[np.ndarray], B,
                         metric: str = "precision", n_boot: int = 1000, seed: int = 0, *, k: int = 15,
                         control_rdm=None, instructions: Sequence[str] | None = None,
                         ignore_determiner: bool = False, level: float = 0.95) -> DifferenceResult:
    """Mean metric(trained_s, B) - mean metric(untrained_s, B), with a paired item-bootstrap CI.

    ``metric``: one of :data:`METRICS`. ``k``: for the P@k metrics (lexical-free: k < min |C_i|).
    ``control_rdm``: for ``partial_rsa`` (default: the bag-of-words RDM of ``instructions``).
    """
    if metric not in METRICS:
        raise M.MetricInputError(f"unknown metric {metric!r}; choose from {METRICS}")
    if not trained_list or not untrained_list:
        raise M.MetricInputError("need at least one trained and one untrained matrix")
    Bs = _Space(B)
    T = [_Space(X) for X in trained_list]
    U = [_Space(X) for X in untrained_list]
    n = Bs.X.shape[0]
    for s in T + U:
        M.check_pair(s.X, Bs.X)
    rng = np.random.default_rng(seed)
    idxs = rng.integers(0, n, size=(int(n_boot), n))
    conv = TVU_CONVENTIONS
    if metric in ("precision", "lexfree_precision"):
        mask = None
        if metric == "lexfree_precision":
            mask = candidate_mask(instructions, ignore_determiner)
            lexfree_precision = lexical_free_precision(T[0].X, Bs.X, k, instructions, ignore_determiner)  # checks k
            conv += "; " + lexfree_precision.conventions
        else:
            k = M.check_k(k, n)
            conv += "; " + M.PRECISION_CONVENTIONS
        pt = np.stack([_per_item(metric, s, Bs, k, mask) for s in T])  # (n_T, n)
        pu = np.stack([_per_item(metric, s, Bs, k, mask) for s in U])
        diff_items = pt.mean(axis=0) - pu.mean(axis=0)
        W = np.stack([np.bincount(ix, minlength=n) for ix in idxs]) / n
        boots = W @ diff_items
        tv, uv = pt.mean(axis=1), pu.mean(axis=1)
    elif metric in ("rsa", "partial_rsa"):
        iu = np.triu_indices(n, k=1)
        if metric == "partial_rsa":
            if control_rdm is None:
                from .baselines import bag_of_words
                control_rdm = M.rdm(bag_of_words(instructions))
            C = np.round(_check_rdm(control_rdm, n), _ROUND)
            conv += "; " + PARTIAL_RSA_CONVENTIONS
        else:
            conv += "; " + M.RSA_CONVENTIONS
        ident = np.arange(n)

        def stat(space: _Space, rb, rc_, idx, keep):
            ra = _rank_pairs(space.D, idx, iu, keep)
            if metric == "rsa":
                return float(ra @ rb)
            return _partial_from_ranks(ra, rb, [rc_])[0]

        def values(idx):
            keep = idx[iu[0]] != idx[iu[1]]
            rb = _rank_pairs(Bs.D, idx, iu, keep)
            rc_ = _rank_pairs(C, idx, iu, keep) if metric == "partial_rsa" else None
            return (np.array([stat(s, rb, rc_, idx, keep) for s in T]),
                    np.array([stat(s, rb, rc_, idx, keep) for s in U]))

        tv, uv = values(ident)
        boots = np.empty(int(n_boot))
        for b, idx in enumerate(idxs):
            t_, u_ = values(idx)
            boots[b] = t_.mean() - u_.mean()
    else:
        if metric == "cka":
            f = lambda A_, B_: M.cka(A_, B_)  # noqa: E731
            conv += "; " + M.CKA_CONVENTIONS
        else:
            f = lambda A_, B_: M.procrustes(A_, B_).disparity  # noqa: E731
            conv += "; " + M.PROCRUSTES_CONVENTIONS
        tv = np.array([f(s.X, Bs.X) for s in T])
        uv = np.array([f(s.X, Bs.X) for s in U])
        boots = np.empty(int(n_boot))
        for b, idx in enumerate(idxs):
            Bi = Bs.X[idx]
            boots[b] = np.mean([f(s.X[idx], Bi) for s in T]) - np.mean([f(s.X[idx], Bi) for s in U])
    a = (1 - level) / 2
    diff = float(tv.mean() - uv.mean())
    lo, hi = float(np.percentile(boots, 100 * a)), float(np.percentile(boots, 100 * (1 - a)))
    shift = float(boots.mean() - diff)
    if metric in ("cka", "procrustes"):  # chance level depends on the number of distinct items: re-centre
        lo, hi = lo - shift, hi - shift
        conv += ("; CKA/Procrustes: resampling with replacement duplicates items and shifts their chance level, so "
                 "the CI is the bootstrap spread re-centred on the estimate (percentiles of boot - boot_shift)")
    return DifferenceResult(metric=metric, difference=diff, ci_low=lo, ci_high=hi, boot_shift=shift, level=level,
                            trained=tuple(map(float, tv)), untrained=tuple(map(float, uv)),
                            trained_mean=float(tv.mean()), untrained_mean=float(uv.mean()), n_boot=int(n_boot),
                            seed=int(seed), higher_is_more_aligned=HIGHER_IS_MORE_ALIGNED[metric],
                            conventions=f"{conv}; {int(n_boot)} resamples, default_rng({seed}), level {level}")


# ------------------------------------------------------------------------------------------ control table
def _as_seed_list(v) -> list[np.ndarray]:
    if isinstance(v, Mapping):
        return [np.asarray(x) for x in v.values()]
    if isinstance(v, (list, tuple)):
        return [np.asarray(x) for x in v]
    return [np.asarray(v)]


def control_table(spaces: Mapping[str, Any], reference: str = "alm", k: int = 15, lexfree_k: int = 5,
                  control: str | np.ndarray = "bag-of-words", instructions: Sequence[str] | None = None,
                  ignore_determiner: bool = False) -> pd.DataFrame:
    """The dashboard's control table: every other space (models, agents, baselines) against ``reference``.

    ``spaces``: name -> array (n, d), or a list / dict of arrays (seeds / draws). For multi-seed spaces every
    (reference seed, model seed) pair is computed; the table shows the mean and the sample sd over pairs. A row
    ``"<reference> (seed vs seed)"`` compares the reference's own seeds with each other (its ceiling).
    ``control``: the control RDM for partial RSA: a space name (default ``bag-of-words``, computed exactly from
    ``instructions`` if absent from ``spaces``) or an (n, n) RDM.

    Columns: p_at_k (core.metrics.precision_at_k, ties by index), p_at_k_sd, p_at_k_ties_expected
    (:func:`tie_expected_precision`; differs from p_at_k only for spaces with exact ties), chance;
    lexfree_p (lexical-free
    P@lexfree_k), lexfree_chance; rsa; partial_rsa (controlling for the control RDM); rsa_with_control (RSA of
    the model with the control); cka; procrustes (disparity, lower = more aligned); n_pairs.
    """
    if reference not in spaces:
        raise KeyError(f"reference {reference!r} not among the spaces {list(spaces)}")
    refs = [_Space(X) for X in _as_seed_list(spaces[reference])]
    n = refs[0].X.shape[0]
    k = M.check_k(k, n)
    mask = candidate_mask(instructions, ignore_determiner)
    if isinstance(control, str):
        if control in spaces:
            C = M.rdm(_as_seed_list(spaces[control])[0])
        elif control == "bag-of-words":
            from .baselines import bag_of_words
            C = M.rdm(bag_of_words(instructions))
        else:
            raise KeyError(f"control {control!r} not among the spaces")
    else:
        C = np.asarray(control)
    rc = _std_ranks(_upper(_check_rdm(C, n)), "the control RDM")
    iu = np.triu_indices(n, k=1)
    full = ~np.eye(n, dtype=bool)

    def ranks(s: _Space):
        return _std_ranks(s.D[iu], "a space")

    for s in refs:
        s.r = ranks(s)

    def pair_stats(a: _Space, b: _Space) -> dict[str, float]:
        lf = _expected_overlap(a.S, b.S, mask, lexfree_k).mean()
        return {"p_at_k": M.precision_at_k(a.X, b.X, k),
                "p_at_k_ties_expected": float(_expected_overlap(a.S, b.S, full, k).mean()),
                "lexfree_p": float(lf), "rsa": float(a.r @ b.r),
                "partial_rsa": _partial_from_ranks(a.r, b.r, [rc])[0], "rsa_with_control": float(b.r @ rc),
                "cka": M.cka(a.X, b.X), "procrustes": M.procrustes(a.X, b.X).disparity}

    def summarise(name: str, stats: list[dict]) -> dict:
        df = pd.DataFrame(stats)
        row = {"model": name, "n_pairs": len(df)}
        for c in df.columns:
            row[c] = float(df[c].mean())
            if c in ("p_at_k", "lexfree_p", "partial_rsa"):
                row[c + "_sd"] = float(df[c].std(ddof=1)) if len(df) > 1 else float("nan")
        return row

    rows = []
    if len(refs) > 1:
        stats = [pair_stats(refs[i], refs[j]) for i in range(len(refs)) for j in range(len(refs)) if i < j]
        rows.append(summarise(f"{reference} (seed vs seed)", stats))
    for name, v in spaces.items():
        if name == reference:
            continue
        others = [_Space(X) for X in _as_seed_list(v)]
        for s in others:
            s.r = ranks(s)
        rows.append(summarise(name, [pair_stats(a, b) for a in refs for b in others]))
    nc = mask.sum(axis=1)
    out = pd.DataFrame(rows)
    out.insert(2, "chance", M.chance_precision(n, k))
    out["lexfree_chance"] = float((lexfree_k / nc).mean())
    cols = ["model", "n_pairs", "p_at_k", "p_at_k_sd", "p_at_k_ties_expected", "chance", "lexfree_p",
            "lexfree_p_sd", "lexfree_chance",
            "rsa", "partial_rsa", "partial_rsa_sd", "rsa_with_control", "cka", "procrustes"]
    out = out[[c for c in cols if c in out.columns]]
    out.attrs["conventions"] = (
        f"reference = {reference}; k = {k}; lexical-free k = {lexfree_k}; control RDM = "
        f"{control if isinstance(control, str) else 'given'}; mean (and sample sd) over all (reference seed, "
        f"model seed) pairs | P@k: {M.PRECISION_CONVENTIONS} | p_at_k_ties_expected: same but ties at the k-th "
        f"place resolved by expectation under random tie-breaking | "
        f"{LEXFREE_CONVENTIONS.format(ignored='may be shared' if ignore_determiner else 'count as shared words')}"
        f" | RSA: {M.RSA_CONVENTIONS} | {PARTIAL_RSA_CONVENTIONS} | CKA: {M.CKA_CONVENTIONS} | Procrustes: "
        f"{M.PROCRUSTES_CONVENTIONS}")
    return out


# ------------------------------------------------------------------------------------------ loading + CLI
def load_spaces(names: Sequence[str] | None = None) -> tuple[dict[str, list[np.ndarray]], dict[str, str], list[str]]:
    """Every model with shipped/cached embeddings (``core.embedders.available()``) -> list of seed arrays.

    Returns (spaces, families, notes); a model that cannot be read or whose rows are not the current
    instruction set in order is skipped with a note.
    """
    from .embedders import TABLE, available, load_seeds

    spaces, families, notes = {}, {}, []
    for name in (available() if names is None else names):
        try:
            seeds = load_seeds(name)
        except Exception as e:  # NotComputedError, corrupt file, ...
            notes.append(f"skipped {name}: {e}")
            continue
        order = sorted(seeds, key=lambda s: -1 if s is None else s)
        arrays = [np.asarray(seeds[s], dtype=np.float64) for s in order]
        if any(X.shape[0] != len(instruction_set()) for X in arrays):
            notes.append(f"skipped {name}: row count differs from the instruction set")
            continue
        spaces[name] = arrays
        spec = TABLE.get(name)
        families[name] = spec.family if spec is not None else "user-added"
        if spec is not None and spec.seeds and len(arrays) < len(spec.seeds):
            notes.append(f"{name}: {len(arrays)} of {len(spec.seeds)} seed files present "
                         f"(seeds {sorted(s for s in seeds)})")
    return spaces, families, notes


def _write_csv(path: Path, df: pd.DataFrame, header: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w") as f:
        for line in header:
            for part in str(line).split("\n"):
                f.write(f"# {part}\n")
        df.to_csv(f, index=False, float_format="%.6g")
    tmp.replace(path)


def _model_matrices(spaces: Mapping[str, list[np.ndarray]], k: int, lexfree_k: int, control_rdm: np.ndarray,
                    mask: np.ndarray) -> dict[str, pd.DataFrame]:
    """Model x model matrices (mean over seed pairs; diagonal = mean over distinct seeds, NaN for one seed)."""
    flat = {(m, i): X for m, arrs in spaces.items() for i, X in enumerate(arrs)}
    keys = list(flat)
    pm = M.pairwise_metrics({f"{m}#{i}": X for (m, i), X in flat.items()}, ks=(k,), debiased_cka=False)
    n = next(iter(flat.values())).shape[0]
    iu = np.triu_indices(n, k=1)
    S = {key: _rounded_cos(X) for key, X in flat.items()}
    R = {key: _std_ranks(np.round(M.rdm(X), _ROUND)[iu], str(key)) for key, X in flat.items()}
    rc = _std_ranks(_upper(control_rdm), "control")
    full = ~np.eye(n, dtype=bool)
    names = list(spaces)
    out = {name: pd.DataFrame(np.nan, index=names, columns=names) for name in
           (f"p@{k}", f"p@{k}_ties_expected", "rsa", "cka", "procrustes", f"lexfree_p@{lexfree_k}",
            "partial_rsa_bow")}
    acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            ka, kb = keys[a], keys[b]
            sa, sb = f"{ka[0]}#{ka[1]}", f"{kb[0]}#{kb[1]}"
            vals = {f"p@{k}": pm.precision[k].loc[sa, sb],
                    f"p@{k}_ties_expected": float(_expected_overlap(S[ka], S[kb], full, k).mean()),
                    "rsa": pm.rsa.loc[sa, sb], "cka": pm.cka.loc[sa, sb],
                    "procrustes": pm.procrustes.loc[sa, sb],
                    f"lexfree_p@{lexfree_k}": float(_expected_overlap(S[ka], S[kb], mask, lexfree_k).mean()),
                    "partial_rsa_bow": _partial_from_ranks(R[ka], R[kb], [rc])[0]}
            d = acc.setdefault((ka[0], kb[0]), {})
            for m_, v in vals.items():
                d.setdefault(m_, []).append(float(v))
    for (ma, mb), d in acc.items():
        for m_, v in d.items():
            out[m_].loc[ma, mb] = out[m_].loc[mb, ma] = float(np.mean(v))
    return out


def cli(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "controls":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="python -m core controls",
                                description="control analyses on every embedding present: tables against a "
                                            "reference, model x model matrices incl. baselines, alignment beyond "
                                            "lexical overlap, per-factor separation, trained vs untrained agent")
    p.add_argument("--out", type=Path, default=None, help="output directory (default assets/controls)")
    p.add_argument("--reference", nargs="+", default=["alm", "untrained-alm"],
                   help="reference spaces of the control tables (absent ones are skipped with a note)")
    p.add_argument("--k", type=int, default=15, help="k of P@k (default 15)")
    p.add_argument("--lexfree-k", type=int, default=5,
                   help="k of the lexical-free P@k (default 5; must be < the smallest candidate set, 15)")
    p.add_argument("--n-boot", type=int, default=500, help="bootstrap resamples for trained vs untrained (500)")
    p.add_argument("--tvu-metrics", nargs="+", default=[m for m in METRICS if m != "procrustes"],
                   choices=METRICS, help="metrics of the trained-vs-untrained table (procrustes is left out by "
                                         "default: ~130 ms per resample for 10 agents)")
    p.add_argument("--tvu-references", nargs="+", default=None,
                   help="reference models of the trained-vs-untrained table (default: every non-agent model)")
    p.add_argument("--n-perm", type=int, default=200, help="label permutations for the factor null (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="+", default=None, help="restrict to these model names")
    p.add_argument("--trained", default="alm")
    p.add_argument("--untrained", default="untrained-alm")
    p.add_argument("--no-matrices", action="store_true", help="skip the model x model matrices")
    a = p.parse_args(argv)
    from .baselines import bag_of_words
    from .store import assets_dir, git_commit, now_iso, write_json

    out = a.out or (assets_dir() / "controls")
    spaces, families, notes = load_spaces(a.models)
    if not spaces:
        print("no embeddings present; run python -m core baselines (and the embed stages) first", file=sys.stderr)
        return 1
    items = instruction_set()
    control = M.rdm(bag_of_words(items))
    mask = candidate_mask(items)
    prov = [f"ALVA controls, {now_iso()}, git {git_commit()}, n = {len(items)} instructions",
            "models: " + ", ".join(f"{m} [{families[m]}, {len(v)} file(s)]" for m, v in spaces.items())]
    prov += [f"note: {x}" for x in notes]
    summary: dict[str, Any] = {"provenance": prov, "notes": notes, "files": {}}
    for line in prov:
        print(line)

    for ref in a.reference:
        if ref not in spaces:
            msg = f"reference {ref!r} absent: control table skipped"
            print(msg)
            notes.append(msg)
            continue
        t = control_table(spaces, reference=ref, k=a.k, lexfree_k=a.lexfree_k, instructions=items)
        t.insert(1, "family", [families.get(m, families.get(ref, "")) if "(seed vs seed)" not in m else
                               families[ref] for m in t["model"]])
        path = out / f"control_table_{ref}.csv"
        _write_csv(path, t, prov + ["conventions: " + t.attrs["conventions"]])
        summary["files"][path.name] = t.attrs["conventions"]
        print(f"\n== {ref} vs every other space ({path})")
        print(t[["model", "p_at_k", "p_at_k_ties_expected", "lexfree_p", "rsa", "partial_rsa", "cka",
                 "procrustes"]].round(3)
              .to_string(index=False))

    if not a.no_matrices:
        mats = _model_matrices(spaces, a.k, a.lexfree_k, control, mask)
        conv = {f"p@{a.k}": M.PRECISION_CONVENTIONS,
                f"p@{a.k}_ties_expected": M.PRECISION_CONVENTIONS.replace(
                    "ties broken by smaller item index", "ties at the k-th place resolved by expectation under "
                    "uniformly random tie-breaking (core.controls.tie_expected_precision)"),
                "rsa": M.RSA_CONVENTIONS, "cka": M.CKA_CONVENTIONS,
                "procrustes": M.PROCRUSTES_CONVENTIONS,
                f"lexfree_p@{a.lexfree_k}": LEXFREE_CONVENTIONS.format(ignored="count as shared words"),
                "partial_rsa_bow": PARTIAL_RSA_CONVENTIONS + "; control = bag-of-words RDM"}
        for m_, df in mats.items():
            path = out / f"matrix_{m_.replace('@', '_at_')}.csv"
            _write_csv(path, df.reset_index(names="model"),
                       prov + [f"{m_}: {conv[m_]}",
                               "cells: mean over all pairs of seed files; diagonal: mean over distinct seeds of "
                               "one model (empty for a single file)"])
            summary["files"][path.name] = conv[m_]
        print(f"\nmodel x model matrices written to {out}/matrix_*.csv")

    rows = []
    for m, arrs in spaces.items():
        for i, X in enumerate(arrs):
            fs = factor_separation(X, n_perm=a.n_perm, seed=a.seed)
            fs.insert(0, "file", i)
            fs.insert(0, "model", m)
            rows.append(fs)
    fsep = pd.concat(rows, ignore_index=True)
    agg = fsep.groupby(["model", "factor"], sort=False).agg(
        n_files=("file", "size"), loo_centroid_acc=("loo_centroid_acc", "mean"),
        loo_centroid_acc_sd=("loo_centroid_acc", "std"), chance=("chance", "first"), majority=("majority", "first"),
        eta2=("eta2", "mean"), eta2_sd=("eta2", "std"), eta2_null=("eta2_null", "first"),
        **({"null_p95": ("null_p95", "mean")} if a.n_perm else {})).reset_index()
    path = out / "factor_separation.csv"
    fconv = FACTOR_CONVENTIONS + (f"; null_p95 = 95th percentile of accuracy with labels shuffled ({a.n_perm} "
                                  f"permutations, default_rng({a.seed})), mean over files" if a.n_perm else "")
    _write_csv(path, agg, prov + [fconv, "mean and sample sd over the model's seed files"])
    summary["files"][path.name] = fconv
    piv = agg.pivot(index="model", columns="factor", values="loo_centroid_acc")[list(FACTORS)]
    print(f"\n== LOO nearest-centroid accuracy per factor ({path}); chance 1/L: verb .33, det .5, colour .17, "
          f"object .25")
    print(piv.round(2).to_string())

    if a.trained in spaces and a.untrained in spaces:
        refs = [m for m in (a.tvu_references or spaces) if m in spaces and families.get(m) != "agent"]
        rows = []
        for ref in refs:
            for r_i, B in enumerate(spaces[ref][:1]):
                for metric in a.tvu_metrics:
                    kk = a.lexfree_k if metric == "lexfree_precision" else a.k
                    res = trained_vs_untrained(spaces[a.trained], spaces[a.untrained], B, metric,
                                               n_boot=a.n_boot, seed=a.seed, k=kk, control_rdm=control,
                                               instructions=items)
                    rows.append({"reference": ref, "reference_file": r_i, "k": kk if "precision" in metric else "",
                                 **res.as_row()})
        tvu = pd.DataFrame(rows)
        path = out / "trained_vs_untrained.csv"
        tconv = (f"trained = {a.trained} ({len(spaces[a.trained])} files), untrained = {a.untrained} "
                 f"({len(spaces[a.untrained])} files); reference = first file of each other model; "
                 + TVU_CONVENTIONS + f"; {a.n_boot} resamples, default_rng({a.seed}), 95% percentile CI; "
                 "procrustes: disparity, lower = more aligned; partial_rsa controls for the bag-of-words RDM; "
                 f"precision k = {a.k}, lexfree_precision k = {a.lexfree_k} (no shared word)")
        _write_csv(path, tvu, prov + [tconv])
        summary["files"][path.name] = tconv
        print(f"\n== trained - untrained ({path})")
        show = tvu[tvu.metric.isin(["precision", "partial_rsa", "lexfree_precision"])]
        print(show[["reference", "metric", "trained_mean", "untrained_mean", "difference", "ci_low", "ci_high"]]
              .round(3).to_string(index=False))
    else:
        msg = f"trained vs untrained skipped: {a.trained!r} or {a.untrained!r} absent"
        print(msg)
        notes.append(msg)
    write_json(out / "controls.json", summary)
    return 0

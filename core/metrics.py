"""Representational-alignment metrics between two embedding spaces of the same items.

Inputs are arrays ``A``, ``B`` of shape (n_items, dim) whose rows are the *same items in the same order*
(dims may differ). Every function is pure (no I/O, no global state) and validates its input: fewer than 2
rows, mismatched row counts, NaN/inf values, all-zero rows and bad ``k`` raise :class:`MetricInputError`
(a ``ValueError``) naming the offending rows.

Conventions (also in each result's ``conventions`` string and in the CLI's output headers)
--------------------------------------------------------------------------------------------
* **Neighbours** -- cosine similarity on the raw rows (no centring), computed in float64. Item i itself is
  excluded from its own neighbours. Similarities are rounded to 10 decimals (half up) before ranking, so
  values equal in exact arithmetic stay tied despite floating-point noise (e.g. after a rotation); ties are
  broken by the smaller item index. Hence every item has a total order of its n-1 other items.
* **P@k** -- ``P@k(i) = |N_A^k(i) ∩ N_B^k(i)| / k`` for the k nearest neighbours N^k; ``P@k`` is its mean
  over the n items; ``1 <= k <= n-1``. Symmetric in A, B. Chance level (random, independent neighbour sets):
  ``k / (n-1)`` exactly (0.140 at k=15, n=108).
* **Mutual-kNN Jaccard** -- ``J@k(i) = |N_A ∩ N_B| / |N_A ∪ N_B| = P@k(i) / (2 - P@k(i))`` exactly, per item;
  the reported value is the mean of the per-item J (which is *not* ``P/(2-P)`` of the mean P@k).
* **Permutation null** (P@k) -- item identities of B are shuffled (B -> B[perm], neighbours recomputed with
  the same tie rule); seeded ``numpy.random.default_rng(seed)``; 95% band = 2.5/97.5 percentiles (linear
  interpolation) per k; one-sided p-value ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
* **Bootstrap CI** (P@k) -- items resampled with replacement (neighbour sets are *not* recomputed, i.e. the
  CI is for the mean of the fixed per-item values); percentile interval; seeded.
* **Procrustes** -- as ``scipy.spatial.procrustes``: both spaces centred (column means removed) and scaled to
  unit Frobenius norm; B is rotated/reflected (orthogonal R) and isotropically scaled onto A;
  ``disparity = sum((A_std - B_aligned)**2) = 1 - (nuclear norm of A_std^T B_std)**2`` in [0, 1], symmetric.
  If the dims differ both spaces are first replaced by their top-p PCA scores, p = min(dim_A, dim_B)
  (reported, with the variance each keeps; lossless whenever p >= n-1). Per-item residual =
  ``||a_i - b_aligned_i||`` (Euclidean; the squares sum to the disparity). Permutation p-value:
  ``(1 + #{null disparity <= observed}) / (1 + n_permutations)`` with B's rows shuffled.
* **CKA** -- linear kernel on raw (unnormalised) features, columns centred:
  ``CKA = ||A_c^T B_c||_F^2 / (||A_c^T A_c||_F ||B_c^T B_c||_F)`` in [0, 1]. ``debiased=True`` uses the
  unbiased HSIC estimator (Song et al. 2012; as in Kornblith et al. 2019 / Nguyen et al. 2021), which can be
  slightly negative and needs n >= 4.
* **RSA** -- RDM = cosine distance ``1 - cos(x_i, x_j)``; Spearman correlation (average ranks for ties) of
  the upper triangles (i < j, n(n-1)/2 entries); RDM entries are rounded to 10 decimals before ranking.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

DECIMALS = 10  #: similarities / distances are rounded to this many decimals before ranking
_SCALE = 10.0 ** DECIMALS
_SENTINEL = 1 << 35  # > 2 * 10**10 + 1: the largest rounded distance; puts "self" last
_CHUNK_ELEMS = 1 << 23  # rows per chunk = _CHUNK_ELEMS // n (~8M elements ~ 64 MB per int64 array)
#: from this many items on, P@k at one k uses partial selection (no full sort per row); same result exactly
PARTIAL_MIN_N = 1024

NEIGHBOUR_CONVENTIONS = (
    "cosine similarity on raw rows (no centring), float64; item itself excluded; similarities rounded to "
    f"{DECIMALS} decimals, ties broken by smaller item index")
PRECISION_CONVENTIONS = (
    "P@k = mean over items i of |N_A^k(i) ∩ N_B^k(i)| / k; " + NEIGHBOUR_CONVENTIONS
    + "; chance = k/(n-1)")
PROCRUSTES_CONVENTIONS = (
    "orthogonal Procrustes as scipy.spatial.procrustes: both centred and scaled to unit Frobenius norm, B "
    "rotated/reflected + isotropically scaled onto A; disparity = sum of squared residuals = 1 - "
    "(nuclear norm of A^T B)^2, in [0, 1]; if dims differ both are reduced by PCA to p = min(dim_A, dim_B) "
    "first; residual_i = Euclidean ||a_i - b_aligned_i||")
CKA_CONVENTIONS = ("linear CKA on raw features, columns centred: ||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F)")
CKA_DEBIASED_CONVENTIONS = ("linear CKA with the unbiased HSIC estimator (Song et al. 2012), columns centred; "
                            "can be slightly negative")
RSA_CONVENTIONS = ("Spearman correlation (average ranks) of the upper triangles (i<j) of the cosine-distance "
                   f"RDMs 1 - cos(x_i, x_j), entries rounded to {DECIMALS} decimals")
JACCARD_CONVENTIONS = ("mutual-kNN Jaccard J@k = mean over i of |N_A ∩ N_B| / |N_A ∪ N_B| = P_i / (2 - P_i) "
                       "with P_i the per-item P@k; " + NEIGHBOUR_CONVENTIONS)


_BLAS_STATE = threading.local()


def _small_blas(f):
    """Run ``f`` with BLAS limited to one thread: these are many small matrix ops, for which BLAS threads
    only add overhead (and stall badly when cores are oversubscribed). No-op without threadpoolctl."""
    import functools

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        if getattr(_BLAS_STATE, "limited", False):
            return f(*args, **kwargs)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover
            return f(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            _BLAS_STATE.limited = True
            try:
                return f(*args, **kwargs)
            finally:
                _BLAS_STATE.limited = False

    return wrapper


class MetricInputError(ValueError):
    """Input that would make a metric silently meaningless (bad shape, NaN/inf, zero rows, bad k)."""


# ------------------------------------------------------------------------------------------ validation
def _rows_list(mask: np.ndarray, limit: int = 10) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(map(str, rows[:limit]))
    return f"[{shown}{', ...' if rows.size > limit else ''}] ({rows.size} row{'s' if rows.size != 1 else ''})"


def check_space(X, name: str = "X", min_rows: int = 2) -> np.ndarray:
    """Validate one embedding matrix and return it as a float64 (n, d) array.

    Raises MetricInputError for a non-2-D array, fewer than ``min_rows`` rows, NaN/inf, or all-zero rows.
    """
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MetricInputError(f"{name} is not a numeric array: {e}") from None
    if X.ndim != 2:
        raise MetricInputError(f"{name} must be a 2-D array (n_items, dim); got shape {X.shape}")
    if X.shape[0] < min_rows:
        raise MetricInputError(f"{name} has {X.shape[0]} rows; at least {min_rows} items are needed")
    if X.shape[1] < 1:
        raise MetricInputError(f"{name} has 0 columns")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise MetricInputError(f"{name} has NaN or inf values in rows {_rows_list(bad)}")
    zero = ~(X != 0).any(axis=1)
    if zero.any():
        raise MetricInputError(
            f"{name} has all-zero rows {_rows_list(zero)}: cosine similarity is undefined for a zero vector")
    if not (np.linalg.norm(X, axis=1) > 0).all():  # underflow of tiny rows
        raise MetricInputError(f"{name} has rows whose norm underflows to 0 "
                               f"{_rows_list(~(np.linalg.norm(X, axis=1) > 0))}")
    return X


def check_pair(A, B, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate two spaces of the same items (same number of rows, dims may differ)."""
    A = check_space(A, "A", min_rows)
    B = check_space(B, "B", min_rows)
    if A.shape[0] != B.shape[0]:
        raise MetricInputError(
            f"A and B must have the same number of rows (the same items in the same order): "
            f"A has {A.shape[0]}, B has {B.shape[0]}")
    return A, B


def check_k(k, n: int) -> int:
    """``k`` must be an integer with 1 <= k <= n-1 (the item itself is excluded from its neighbours)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise MetricInputError(f"k must be an integer, got {k!r}")
    k = int(k)
    if not 1 <= k <= n - 1:
        raise MetricInputError(
            f"k must satisfy 1 <= k <= n-1 = {n - 1} (n = {n} items; the item itself is excluded, so each "
            f"item has n-1 neighbours); got k = {k}")
    return k


def chance_precision(n: int, k: int | np.ndarray) -> float | np.ndarray:
    """Expected P@k for independent random neighbour sets: k/(n-1) (exact: hypergeometric mean / k)."""
    if n < 2:
        raise MetricInputError(f"n must be >= 2, got {n}")
    if np.ndim(k) == 0:
        return check_k(k, n) / (n - 1)
    k = np.asarray(k)
    if (k < 1).any() or (k > n - 1).any():
        raise MetricInputError(f"every k must satisfy 1 <= k <= n-1 = {n - 1}")
    return k / (n - 1)


# ------------------------------------------------------------------------------------------ neighbours
def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def cosine_similarity(X) -> np.ndarray:
    """(n, n) cosine similarity matrix (float64, diagonal 1, no centring)."""
    U = _unit(check_space(X))
    S = U @ U.T
    np.clip(S, -1.0, 1.0, out=S)
    np.fill_diagonal(S, 1.0)
    return S


def _index_bits(n: int) -> int:
    bits = max(1, int(n - 1).bit_length())
    if _SENTINEL.bit_length() + bits > 63:
        raise MetricInputError(f"n = {n} items is too many for the int64 ranking keys")
    return bits


class _Ranker:
    """Neighbour orders / ranks of one unit-normalised space, chunk by chunk, reusing buffers.

    Key of (row i, item j) = (similarity rounded to DECIMALS as an integer distance) << bits | j, so one
    int64 sort per row gives the order with ties broken by index; item i itself gets the largest key.
    Arrays returned by ``orders``/``ranks`` are views of internal buffers, valid until the next call.
    """

    def __init__(self, U: np.ndarray, chunk_rows: int):
        self.U, self.n = U, U.shape[0]
        self.bits = _index_bits(self.n)
        c = min(chunk_rows, self.n)
        self._S = np.empty((c, self.n))
        self._q = np.empty((c, self.n), dtype=np.int64)
        self._r: np.ndarray | None = None  # allocated by the first ``ranks`` call
        self._ar = np.arange(self.n, dtype=np.int64)
        self._tile: np.ndarray | None = None

    def keys(self, start: int, stop: int) -> np.ndarray:
        """(c, n) unsorted int64 keys of rows start:stop (unique per row; smaller = nearer, self largest)."""
        c = stop - start
        S, q = self._S[:c], self._q[:c]
        np.matmul(self.U[start:stop], self.U.T, out=S)  # float64 cosine similarities
        S *= -_SCALE
        S += _SCALE + 0.5  # (1 - s) * 1e10 + 0.5 >= 0.5 - tiny
        np.copyto(q, S, casting="unsafe")  # truncation = floor here: rounded distance (half up)
        rows = np.arange(c)
        q[rows, rows + start] = _SENTINEL
        q <<= self.bits
        q |= self._ar
        return q

    def orders(self, start: int, stop: int) -> np.ndarray:
        """(c, n) item indices of rows start:stop, nearest first, self last."""
        q = self.keys(start, stop)
        q.sort(axis=1)  # unique keys: (rounded distance, index) lexicographic
        q &= (1 << self.bits) - 1
        return q

    def topk(self, start: int, stop: int, k: int) -> np.ndarray:
        """(c, k) item indices of the k nearest neighbours of rows start:stop, in no particular order: the k
        smallest keys by partial selection (``np.partition``, O(n) per row). Keys are unique, so this is
        exactly the first k of ``orders`` as a set (same rounding and tie rule)."""
        q = self.keys(start, stop)
        part = np.partition(q, k - 1, axis=1)[:, :k]
        part &= (1 << self.bits) - 1
        return part

    def members(self, start: int, stop: int, k: int) -> np.ndarray:
        """(c, n) bool: the k nearest neighbours of rows start:stop (the first k of ``orders``; keys are unique,
        so the k smallest keys are exactly that set)."""
        q = self.keys(start, stop)
        kth = np.partition(q, k - 1, axis=1)[:, k - 1: k]
        return q <= kth

    def ranks(self, start: int, stop: int) -> np.ndarray:
        """(c, n) int64: rank[r, j] = 0-based position of j in row (start+r)'s order (self at n-1)."""
        c, n = stop - start, self.n
        q = self.orders(start, stop)
        q += (np.arange(c, dtype=np.int64) * n)[:, None]  # flat positions: faster than 2-D fancy indexing
        if self._tile is None or self._tile.size < c * n:
            self._tile = np.tile(self._ar, self._q.shape[0])
        if self._r is None:
            self._r = np.empty_like(self._q)
        r = self._r[:c]
        r.reshape(-1)[q.reshape(-1)] = self._tile[: c * n]
        return r


def _chunk_rows(n: int) -> int:
    return max(1, min(n, _CHUNK_ELEMS // max(n, 1)))


def _chunks(n: int, chunk_rows: int | None = None):
    step = chunk_rows or _chunk_rows(n)
    for s in range(0, n, step):
        yield s, min(n, s + step)


def _rank_matrix(X: np.ndarray) -> np.ndarray:
    """Full (n, n) rank matrix of a validated space (use for small n only)."""
    n = X.shape[0]
    rk = _Ranker(_unit(X), _chunk_rows(n))
    out = np.empty((n, n), dtype=np.int32)
    for s, e in _chunks(n):
        out[s:e] = rk.ranks(s, e)
    return out


def neighbours(X, k: int, return_similarity: bool = False):
    """Indices (n, k) of each item's k nearest neighbours, nearest first (conventions: module docstring).

    With ``return_similarity=True`` returns ``(indices, similarities)``, the latter the (unrounded) cosine
    similarities of those neighbours, shape (n, k).
    """
    X = check_space(X)
    n = X.shape[0]
    k = check_k(k, n)
    U = _unit(X)
    rk = _Ranker(U, _chunk_rows(n))
    idx = np.empty((n, k), dtype=np.int64)
    for s, e in _chunks(n):
        idx[s:e] = rk.orders(s, e)[:, :k]
    if not return_similarity:
        return idx
    sims = np.einsum("id,ikd->ik", U, U[idx])
    return idx, np.clip(sims, -1.0, 1.0)


def neighbours_of(X, i: int, k: int, return_similarity: bool = False):
    """Item ``i``'s k nearest neighbours, nearest first: exactly row ``i`` of :func:`neighbours` (same rounding and
    tie rule), from one row of similarities (O(n d)), so one item of a 10^4-item space costs milliseconds.

    Returns indices (k,), or ``(indices, similarities)`` with ``return_similarity=True``."""
    X = check_space(X)
    n = X.shape[0]
    k = check_k(k, n)
    if not 0 <= int(i) < n:
        raise MetricInputError(f"item {i} is out of range 0..{n - 1}")
    i = int(i)
    U = _unit(X)
    idx = _Ranker(U, 1).orders(i, i + 1)[0, :k].copy()
    if not return_similarity:
        return idx
    return idx, np.clip(U[idx] @ U[i], -1.0, 1.0)


def _max_ranks_chunks(A: np.ndarray, B: np.ndarray, chunk_rows: int | None = None):
    """Yield (start, stop, m) with m[r, j] = max(rank_A, rank_B) of item j for row start+r (int64)."""
    n = A.shape[0]
    c = chunk_rows or _chunk_rows(n)
    ra, rb = _Ranker(_unit(A), c), _Ranker(_unit(B), c)
    for s, e in _chunks(n, c):
        m = ra.ranks(s, e)
        np.maximum(m, rb.ranks(s, e), out=m)
        yield s, e, m  # a view of ra's buffer: valid until the next iteration


def _curve_from_counts(total: np.ndarray, n: int) -> np.ndarray:
    """total[k-1] = sum_i |N_A^k(i) ∩ N_B^k(i)|, k = 1..n-1 -> P@k curve."""
    ks = np.arange(1, n, dtype=np.float64)
    return total[: n - 1] / (n * ks)


def _total_counts(A: np.ndarray, B: np.ndarray, chunk_rows: int | None = None) -> np.ndarray:
    """Integer intersection counts summed over items, for k = 1..n-1 (length n-1)."""
    n = A.shape[0]
    hist = np.zeros(n, dtype=np.int64)
    for _, _, m in _max_ranks_chunks(A, B, chunk_rows):
        hist += np.bincount(m.ravel(), minlength=n)
    # |N_A^k ∩ N_B^k| = #{j : max(rank_A(j), rank_B(j)) <= k-1}; self has rank n-1 in both: never counted
    return np.cumsum(hist)[: n - 1]


def precision_curve(A, B, chunk_rows: int | None = None) -> np.ndarray:
    """P@k for every k = 1..n-1 at once: array of length n-1 (entry k-1 is P@k).

    Exact, from the two full neighbour rankings (one sort per row per space, chunked over rows: memory
    ~ 4 arrays of chunk_rows x n int64). Conventions: module docstring.
    """
    A, B = check_pair(A, B)
    return _curve_from_counts(_total_counts(A, B, chunk_rows), A.shape[0])


def per_item_counts(A, B) -> np.ndarray:
    """(n, n-1) integer matrix: entry [i, k-1] = |N_A^k(i) ∩ N_B^k(i)|. Memory n^2: use for small n."""
    A, B = check_pair(A, B)
    n = A.shape[0]
    out = np.empty((n, n - 1), dtype=np.int32)
    for s, e, m in _max_ranks_chunks(A, B):
        c = e - s
        h = np.bincount((m + (np.arange(c) * n)[:, None]).ravel(), minlength=c * n).reshape(c, n)
        out[s:e] = np.cumsum(h, axis=1)[:, : n - 1]
    return out


def _per_item_counts_partial(A: np.ndarray, B: np.ndarray, k: int, chunk_rows: int | None = None) -> np.ndarray:
    """(n,) int64 |N_A^k(i) ∩ N_B^k(i)| by blocked similarity and partial selection (validated A, B).

    Per block of rows: cosine similarities (float64 matmul), the same rounded keys as the full ranking, the k
    smallest keys per row (``_Ranker.topk``); the two index sets of a row have no repeats, so the repeats in
    their sorted concatenation are exactly the intersection. Memory ~ 2 (chunk_rows x n) float64/int64
    buffers per space; time ~ n^2 (d + const), no n^2 log n sort.
    """
    n = A.shape[0]
    c = chunk_rows or _chunk_rows(n)
    ra, rb = _Ranker(_unit(A), c), _Ranker(_unit(B), c)
    out = np.empty(n, dtype=np.int64)
    for s, e in _chunks(n, c):
        both = np.concatenate([ra.topk(s, e, k), rb.topk(s, e, k)], axis=1)
        both.sort(axis=1)
        out[s:e] = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return out


def per_item_precision(A, B, k: int) -> np.ndarray:
    """(n,) per-item P@k(i) = |N_A^k(i) ∩ N_B^k(i)| / k.

    For n >= PARTIAL_MIN_N the counts come from blocked similarity with partial selection
    (:func:`_per_item_counts_partial`), otherwise from the full rankings; both give exactly the same numbers.
    """
    A, B = check_pair(A, B)
    k = check_k(k, A.shape[0])
    if A.shape[0] >= PARTIAL_MIN_N:
        return _per_item_counts_partial(A, B, k) / k
    out = np.empty(A.shape[0])
    for s, e, m in _max_ranks_chunks(A, B):
        out[s:e] = (m < k).sum(axis=1) / k
    return out


def precision_at_k(A, B, k: int) -> float:
    """Mean over items of P@k(i) (conventions: module docstring)."""
    return float(per_item_precision(A, B, k).mean())


def mutual_knn_jaccard(A, B, k: int, per_item: bool = False) -> float | np.ndarray:
    """Mutual-kNN Jaccard: mean over i of |N_A ∩ N_B| / |N_A ∪ N_B|; exactly P_i / (2 - P_i) per item.

    Note: the mean of P_i/(2-P_i) is <= P/(2-P) of the mean P (Jensen); the per-item conversion is exact.
    """
    p = per_item_precision(A, B, k)
    j = p / (2.0 - p)
    return j if per_item else float(j.mean())


def neighbour_sets(X, k: int) -> np.ndarray:
    """(n, n) bool k-NN membership matrix: entry [i, j] is True iff j is one of the k nearest neighbours of i.

    The neighbours are exactly those of :func:`neighbours` (cosine on raw rows, self excluded, rounded
    similarities, ties to the smaller index); every row has k True entries and a False diagonal.
    """
    X = check_space(X)
    n = X.shape[0]
    k = check_k(k, n)
    rk = _Ranker(_unit(X), _chunk_rows(n))
    sets = np.empty((n, n), dtype=bool)
    for s, e in _chunks(n):
        sets[s:e] = rk.members(s, e, k)
    return sets


def _stack_sets(sets, k: int, name: str) -> np.ndarray:
    S = np.asarray(sets)
    if S.dtype != bool:
        raise MetricInputError(f"{name} must be boolean k-NN membership matrices (core.metrics.neighbour_sets)")
    if S.ndim == 2:
        S = S[None]
    if S.ndim != 3 or S.shape[1] != S.shape[2]:
        raise MetricInputError(f"{name} must have shape (n, n) or (m, n, n); got {S.shape}")
    k = check_k(k, S.shape[1])
    if S.shape[0] and not (S.sum(axis=2) == k).all():
        raise MetricInputError(f"{name}: every row must hold exactly k = {k} neighbours (sets computed at "
                               "another k?)")
    return S


def precision_from_sets(sets_a, sets_b, k: int) -> np.ndarray:
    """P@k of every pair of spaces from their precomputed k-NN membership matrices.

    ``sets_a`` (a, n, n) or (n, n) and ``sets_b`` (b, n, n) or (n, n), each from :func:`neighbour_sets` at this
    ``k`` -> (a, b) float64 array, entry = sum_i |N_A^k(i) ∩ N_B^k(i)| / (n k): the same number as
    :func:`precision_at_k` of the two spaces (conventions: module docstring). One neighbour ranking per space,
    then one matrix product for all pairs: the fast path for many pairs (a layer or analysis sweep).
    """
    A, B = _stack_sets(sets_a, k, "sets_a"), _stack_sets(sets_b, k, "sets_b")
    n = A.shape[1]
    if B.shape[1] != n:
        raise MetricInputError(f"sets_a are for {n} items, sets_b for {B.shape[1]}: the spaces must share items")
    ftype = np.float32 if n < (1 << 24) else np.float64  # integer counts stay exact
    # per item i: |N_A(i) ∩ N_B(i)| for every pair, one batched product (n, a, n) @ (n, n, b) -> (n, a, b)
    counts = np.matmul(A.transpose(1, 0, 2).astype(ftype), B.transpose(1, 2, 0).astype(ftype))
    per_item = np.rint(counts).transpose(1, 2, 0).astype(np.float64) / k  # (a, b, n), as per_item_precision
    return np.ascontiguousarray(per_item).mean(axis=-1)


def precision_cross(spaces_a: Sequence[np.ndarray], spaces_b: Sequence[np.ndarray], k: int) -> np.ndarray:
    """(len(spaces_a), len(spaces_b)) array of P@k between every space of ``spaces_a`` and every one of
    ``spaces_b`` (all with the same items in the same order): each space is ranked once."""
    sa = [neighbour_sets(X, k) for X in spaces_a]
    sb = [neighbour_sets(X, k) for X in spaces_b]
    if not sa or not sb:
        raise MetricInputError("precision_cross needs at least one space on each side")
    return precision_from_sets(np.stack(sa), np.stack(sb), k)


@_small_blas
def precision_matrix(spaces: Mapping[str, np.ndarray], k: int) -> pd.DataFrame:
    """N x N DataFrame of P@k between every pair of named spaces (symmetric, diagonal 1)."""
    names = list(spaces)
    X = {m: check_space(spaces[m], m) for m in names}
    n = _same_n(spaces)
    k = check_k(k, n)
    sets = np.stack([neighbour_sets(X[m], k) for m in names])
    M = precision_from_sets(sets, sets, k)
    np.fill_diagonal(M, 1.0)
    return pd.DataFrame(M, index=names, columns=names)


def _same_n(spaces: Mapping[str, np.ndarray]) -> int:
    ns = {m: np.shape(X)[0] for m, X in spaces.items()}
    if len(set(ns.values())) > 1:
        raise MetricInputError(f"all spaces must have the same number of rows (items); got {ns}")
    if not ns:
        raise MetricInputError("no spaces given")
    return next(iter(ns.values()))


# ------------------------------------------------------------------------------------------ null / CIs
@dataclass(frozen=True)
class PermutationNull:
    """Permutation null of the P@k curve (B's item identities shuffled). Arrays are indexed by k-1."""

    observed: np.ndarray        # (n-1,) observed P@k
    mean: np.ndarray            # (n-1,) null mean
    lower: np.ndarray           # (n-1,) 2.5th percentile of the null
    upper: np.ndarray           # (n-1,) 97.5th percentile
    null: np.ndarray            # (n_permutations, n-1) null P@k curves
    observed_counts: np.ndarray  # (n-1,) int: sum_i |N_A^k(i) ∩ N_B^k(i)|
    null_counts: np.ndarray      # (n_permutations, n-1) int
    n: int
    n_permutations: int
    seed: int
    conventions: str = field(default="")

    @property
    def ks(self) -> np.ndarray:
        return np.arange(1, self.n)

    @property
    def p_values(self) -> np.ndarray:
        """(n-1,) one-sided p = (1 + #{null >= observed}) / (1 + n_permutations) for every k."""
        ge = (self.null_counts >= self.observed_counts[None, :]).sum(axis=0)
        return (1.0 + ge) / (1.0 + self.n_permutations)

    def p_value(self, k: int) -> float:
        k = check_k(k, self.n)
        ge = int((self.null_counts[:, k - 1] >= self.observed_counts[k - 1]).sum())
        return (1.0 + ge) / (1.0 + self.n_permutations)

    def band(self, k: int) -> tuple[float, float]:
        k = check_k(k, self.n)
        return float(self.lower[k - 1]), float(self.upper[k - 1])


def _permuted_max_ranks(ranksA: np.ndarray, qB: np.ndarray, perms: np.ndarray, bits: int) -> np.ndarray:
    """(p, n, n) int32: for each perm of a batch, max(rank of j among i's neighbours in A, in B[perm])."""
    p, n = perms.shape
    # rounded-distance keys of B[perm]: qB[perm[i], perm[j]], then tie-break by the *new* index j
    keys = qB[perms[:, :, None], perms[:, None, :]]  # (p, n, n)
    keys <<= bits
    keys |= np.arange(n, dtype=np.int64)
    keys.sort(axis=2)
    keys &= (1 << bits) - 1
    ranks = np.empty((p, n, n), dtype=np.int32)
    np.put_along_axis(ranks, keys, np.broadcast_to(np.arange(n, dtype=np.int32), keys.shape), axis=2)
    np.maximum(ranks, ranksA[None], out=ranks)
    return ranks


def _permuted_total_counts(ranksA: np.ndarray, qB: np.ndarray, perms: np.ndarray, bits: int) -> np.ndarray:
    """Total intersection counts (len n-1) for B[perm] for each perm in a batch (p, n)."""
    p, n = perms.shape
    ranks = _permuted_max_ranks(ranksA, qB, perms, bits)
    off = (np.arange(p) * n)[:, None, None]
    h = np.bincount((ranks + off).ravel(), minlength=p * n).reshape(p, n)
    return np.cumsum(h, axis=1)[:, : n - 1]


def _rounded_distance_keys(X: np.ndarray) -> np.ndarray:
    U = _unit(X)
    S = U @ U.T
    S *= -_SCALE
    S += _SCALE + 0.5
    q = S.astype(np.int64)
    np.fill_diagonal(q, _SENTINEL)
    return q


@_small_blas
def permutation_null(A, B, n_permutations: int = 1000, seed: int = 0, batch: int | None = None
                     ) -> PermutationNull:
    """Permutation null of the P@k curve: B's rows shuffled ``n_permutations`` times (seeded).

    Memory ~ batch x n^2 x 12 bytes; intended for n up to a few thousand.
    """
    A, B = check_pair(A, B)
    n = A.shape[0]
    if n < 3:
        raise MetricInputError(f"a permutation null needs n >= 3 items, got {n}")
    if int(n_permutations) < 1:
        raise MetricInputError(f"n_permutations must be >= 1, got {n_permutations}")
    n_permutations = int(n_permutations)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(n_permutations)])
    bits = _index_bits(n)
    ranksA = _rank_matrix(A)
    qB = _rounded_distance_keys(B)
    obs = _total_counts(A, B)
    batch = batch or max(1, min(n_permutations, (1 << 22) // (n * n)))
    null = np.empty((n_permutations, n - 1), dtype=np.int64)
    for s in range(0, n_permutations, batch):
        null[s:s + batch] = _permuted_total_counts(ranksA, qB, perms[s:s + batch], bits)
    ks = np.arange(1, n, dtype=np.float64)
    nullp = null / (n * ks)
    return PermutationNull(
        observed=obs / (n * ks), mean=nullp.mean(axis=0),
        lower=np.percentile(nullp, 2.5, axis=0), upper=np.percentile(nullp, 97.5, axis=0),
        null=nullp, observed_counts=obs, null_counts=null, n=n, n_permutations=n_permutations, seed=int(seed),
        conventions=(f"permutation null: rows of B shuffled {n_permutations} times "
                     f"(numpy default_rng({seed})), neighbours recomputed; band = 2.5/97.5 percentiles; "
                     "p = (1 + #{null >= observed}) / (1 + n_permutations), one-sided; "
                     + PRECISION_CONVENTIONS))


@_small_blas
def permutation_null_items(A, B, k: int, mask=None, n_permutations: int = 1000, seed: int = 0,
                           batch: int | None = None) -> np.ndarray:
    """(n_permutations,) null of the mean per-item P@k over the items in ``mask`` (default all): B's rows shuffled
    as in :func:`permutation_null` (same permutations for the same seed, neighbours recomputed with the same tie
    rule), neighbours drawn from all n items. The observed value is ``per_item_precision(A, B, k)[mask].mean()``."""
    A, B = check_pair(A, B)
    n = A.shape[0]
    k = check_k(k, n)
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != (n,) or not mask.any():
        raise MetricInputError(f"mask must be a boolean array of {n} items selecting at least one")
    if int(n_permutations) < 1:
        raise MetricInputError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(int(n_permutations))])
    bits, ranksA, qB = _index_bits(n), _rank_matrix(A), _rounded_distance_keys(B)
    batch = batch or max(1, min(len(perms), (1 << 22) // (n * n)))
    out = np.empty(len(perms))
    for s in range(0, len(perms), batch):
        ranks = _permuted_max_ranks(ranksA, qB, perms[s:s + batch], bits)
        out[s:s + batch] = (ranks[:, mask] < k).sum(axis=2).mean(axis=1) / k
    return out


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap CI of P@k over items. Arrays are aligned with ``ks``."""

    ks: np.ndarray
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    n_boot: int
    seed: int
    conventions: str = field(default="")


def bootstrap_ci(A, B, k: int | Sequence[int] | None = None, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> BootstrapCI:
    """Bootstrap CI of P@k over items for one k, a list of k, or all k = 1..n-1 (``k=None``).

    Items are resampled with replacement (multinomial weights from ``default_rng(seed)``); per-item values
    are computed once on the full set (neighbourhoods are not recomputed); percentile interval.
    """
    A, B = check_pair(A, B)
    n = A.shape[0]
    if int(n_boot) < 1:
        raise MetricInputError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise MetricInputError(f"level must be in (0, 1), got {level}")
    ks = np.arange(1, n) if k is None else np.array([check_k(x, n) for x in np.atleast_1d(k)], dtype=int)
    rng = np.random.default_rng(seed)
    W = rng.multinomial(n, np.full(n, 1.0 / n), size=int(n_boot)).astype(np.float64)  # (n_boot, n) counts
    boots = np.zeros((int(n_boot), ks.size))  # integer-valued sums (exact in float64), divided at the end
    tot = np.zeros(ks.size)
    for s, e, m in _max_ranks_chunks(A, B):
        c = e - s
        h = np.bincount((m + (np.arange(c) * n)[:, None]).ravel(), minlength=c * n).reshape(c, n)
        cnt = np.cumsum(h, axis=1)[:, ks - 1].astype(np.float64)  # (c, |ks|) per-item |N_A ∩ N_B|
        boots += W[:, s:e] @ cnt
        tot += cnt.sum(axis=0)
    boots /= n * ks
    est = tot / (n * ks)
    a = (1 - level) / 2
    return BootstrapCI(ks=ks, estimate=est, lower=np.percentile(boots, 100 * a, axis=0),
                       upper=np.percentile(boots, 100 * (1 - a), axis=0), level=level, n_boot=int(n_boot),
                       seed=int(seed),
                       conventions=(f"percentile bootstrap over items ({n_boot} resamples, default_rng({seed})),"
                                    " per-item P@k fixed (neighbours not recomputed); " + PRECISION_CONVENTIONS))


# ------------------------------------------------------------------------------------------ Procrustes
@dataclass(frozen=True)
class ProcrustesResult:
    disparity: float
    residuals: np.ndarray        # (n,) ||a_i - b_aligned_i||; sum of squares == disparity
    a_standardised: np.ndarray   # (n, p) A centred, unit Frobenius norm (after PCA if dims differ)
    b_aligned: np.ndarray        # (n, p) B standardised, rotated/reflected and scaled onto A
    rotation: np.ndarray         # (p, p) R with b_aligned = scale * b_std @ R (orthogonal if p <= n)
    scale: float
    dim_a: int
    dim_b: int
    dim_used: int
    pca: bool
    variance_retained_a: float   # fraction of A's (centred) variance kept by the PCA (1.0 if no PCA)
    variance_retained_b: float
    p_value: float | None = None
    n_permutations: int = 0
    seed: int | None = None
    null_disparities: np.ndarray | None = None
    conventions: str = field(default=PROCRUSTES_CONVENTIONS)


@dataclass(frozen=True)
class _Standardised:
    """A centred, unit-Frobenius space as its thin SVD: X0 = scores @ Vt, scores = U * s (n x r)."""

    scores: np.ndarray
    s: np.ndarray
    Vt: np.ndarray
    dim: int


def _standardise(X: np.ndarray, name: str) -> _Standardised:
    Xc = X - X.mean(axis=0)
    norm = np.linalg.norm(Xc)
    if not norm > 0:
        raise MetricInputError(f"{name} has zero variance after centring (all rows identical)")
    U, s, Vt = np.linalg.svd(Xc / norm, full_matrices=False)
    return _Standardised(scores=U * s, s=s, Vt=Vt, dim=X.shape[1])


def _procrustes_core(SA: _Standardised, SB: _Standardised, n_permutations: int = 0, seed: int = 0,
                     full: bool = True) -> dict:
    """Procrustes of B onto A from their standardised SVDs (exact; works in r <= n dimensions)."""
    n = SA.scores.shape[0]
    pca = SA.dim != SB.dim
    if pca:  # top-p PCA scores, renormalised; output coordinates = principal axes (first p)
        p = min(SA.dim, SB.dim)
        At, Bt = SA.scores[:, :p], SB.scores[:, :p]
        va, vb = float((SA.s[:p] ** 2).sum()), float((SB.s[:p] ** 2).sum())  # total is 1
        At, Bt = At / np.sqrt(va), Bt / np.sqrt(vb)
        VaT, VbT = np.eye(At.shape[1], p), np.eye(Bt.shape[1], p)
    else:
        p = SA.dim
        At, Bt, va, vb, VaT, VbT = SA.scores, SB.scores, 1.0, 1.0, SA.Vt, SB.Vt
    Uc, sv, Vct = np.linalg.svd(At.T @ Bt)
    scale = float(sv.sum())
    W = Vct.T @ Uc.T  # (rb, ra): B's score space -> A's score space
    a_std = At @ VaT
    b_al = scale * ((Bt @ W) @ VaT)
    resid = a_std - b_al
    out = dict(disparity=float((resid ** 2).sum()), scale=scale, dim_used=p, pca=pca,
               variance_retained_a=min(1.0, va), variance_retained_b=min(1.0, vb), p_value=None, null=None)
    if full:
        # R = V_B^T W V_A: orthogonal when p <= n; otherwise exact on B's row space (a partial isometry)
        out.update(a_std=a_std, b_aligned=b_al, residuals=np.sqrt((resid ** 2).sum(axis=1)),
                   rotation=VbT.T @ W @ VaT)
    if n_permutations > 0:
        rng = np.random.default_rng(seed)
        perms = np.stack([rng.permutation(n) for _ in range(n_permutations)])
        null = _procrustes_stat(At, Bt, perms)
        obs = _procrustes_stat(At, Bt, np.arange(n)[None])[0]  # same computation as the null
        out.update(null=null, p_value=float((1 + (null <= obs).sum()) / (1 + n_permutations)))
    return out


@_small_blas
def procrustes(A, B, n_permutations: int = 0, seed: int = 0) -> ProcrustesResult:
    """Orthogonal Procrustes of B onto A (scipy.spatial.procrustes convention; see module docstring).

    When dims differ, coordinates (``a_standardised``, ``b_aligned``) are in the PCA axes of each space.
    ``n_permutations > 0`` adds a permutation p-value (B's rows shuffled, seeded).
    """
    A, B = check_pair(A, B)
    n_permutations = int(n_permutations)
    r = _procrustes_core(_standardise(A, "A"), _standardise(B, "B"), n_permutations, seed)
    return ProcrustesResult(
        disparity=r["disparity"], residuals=r["residuals"], a_standardised=r["a_std"],
        b_aligned=r["b_aligned"], rotation=r["rotation"], scale=r["scale"], dim_a=A.shape[1],
        dim_b=B.shape[1], dim_used=r["dim_used"], pca=r["pca"], variance_retained_a=r["variance_retained_a"],
        variance_retained_b=r["variance_retained_b"], p_value=r["p_value"], n_permutations=n_permutations,
        seed=int(seed) if n_permutations else None, null_disparities=r["null"],
        conventions=PROCRUSTES_CONVENTIONS + (
            f"; permutation p = (1 + #{{null disparity <= observed}}) / (1 + {n_permutations}), rows of B "
            f"shuffled (default_rng({seed}))" if n_permutations else ""))


def _procrustes_stat(At: np.ndarray, Bt: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Disparities 1 - ||At^T Bt[perm]||_*^2 for a batch of row permutations (At, Bt: standardised scores)."""
    n, ra = At.shape
    rb = Bt.shape[1]
    out = np.empty(perms.shape[0])
    step = max(1, (1 << 22) // (n * rb + 2 * ra * ra))
    for s in range(0, perms.shape[0], step):
        P = perms[s:s + step]
        p = P.shape[0]
        Bp = Bt[P].transpose(1, 0, 2).reshape(n, p * rb)  # one GEMM for the whole batch
        C = (At.T @ Bp).reshape(ra, p, rb).transpose(1, 0, 2)  # (p, ra, rb)
        ev = np.linalg.eigvalsh(C @ C.transpose(0, 2, 1))  # squared singular values
        out[s:s + step] = 1.0 - np.sqrt(np.clip(ev, 0.0, None)).sum(axis=1) ** 2
    return out


# ------------------------------------------------------------------------------------------ CKA / RSA
def _gram_centred(X: np.ndarray) -> np.ndarray:
    Xc = X - X.mean(axis=0)
    return Xc @ Xc.T


def _gram_debiased(X: np.ndarray) -> np.ndarray:
    """Gram matrix transformed so that <K~, L~>_F / (n(n-3)) is the unbiased HSIC estimator."""
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    n = K.shape[0]
    np.fill_diagonal(K, 0.0)
    means = K.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    K -= means[:, None]
    K -= means[None, :]
    np.fill_diagonal(K, 0.0)
    return K


def _cka_from_grams(K: np.ndarray, L: np.ndarray) -> float:
    num = float(np.vdot(K, L))
    den = float(np.linalg.norm(K) * np.linalg.norm(L))
    if not den > 0:
        raise MetricInputError("CKA is undefined: a space has zero variance after centring")
    return num / den


def cka(A, B, debiased: bool = False) -> float:
    """Linear CKA (columns centred, raw features). ``debiased=True``: unbiased HSIC estimator (n >= 4)."""
    A, B = check_pair(A, B, min_rows=4 if debiased else 2)
    if debiased:
        return _cka_from_grams(_gram_debiased(A), _gram_debiased(B))
    return min(1.0, max(0.0, _cka_from_grams(_gram_centred(A), _gram_centred(B))))


def rdm(X) -> np.ndarray:
    """(n, n) cosine-distance RDM ``1 - cos(x_i, x_j)``, diagonal 0, values in [0, 2]."""
    D = 1.0 - cosine_similarity(X)
    np.fill_diagonal(D, 0.0)
    return np.clip(D, 0.0, 2.0)


def _rdm_ranks(X: np.ndarray) -> np.ndarray:
    """Standardised average ranks of the rounded upper-triangle RDM entries (for Spearman as Pearson)."""
    from scipy.stats import rankdata

    D = rdm(X)
    iu = np.triu_indices(D.shape[0], k=1)
    r = rankdata(np.round(D[iu], DECIMALS), method="average")
    r -= r.mean()
    sd = np.linalg.norm(r)
    if not sd > 0:
        raise MetricInputError("RSA is undefined: all pairwise distances are equal in one space")
    return r / sd


def rsa(A, B) -> float:
    """Spearman correlation of the cosine-distance RDMs' upper triangles (see module docstring)."""
    A, B = check_pair(A, B, min_rows=3)
    return float(np.clip(np.dot(_rdm_ranks(A), _rdm_ranks(B)), -1.0, 1.0))


# ------------------------------------------------------------------------------------------ seeds
@dataclass(frozen=True)
class SeedSpread:
    metric: str
    values: np.ndarray  # one value per seed (in the order given)
    mean: float
    std: float          # sample standard deviation (ddof=1); nan for a single seed
    min: float
    max: float
    n_seeds: int
    conventions: str = ""


_METRICS: dict[str, tuple[Callable[..., float], str]] = {
    "precision": (lambda A, B, k: precision_at_k(A, B, k), PRECISION_CONVENTIONS),
    "jaccard": (lambda A, B, k: mutual_knn_jaccard(A, B, k), JACCARD_CONVENTIONS),
    "procrustes": (lambda A, B: procrustes(A, B).disparity, PROCRUSTES_CONVENTIONS),
    "cka": (lambda A, B, debiased=False: cka(A, B, debiased=debiased), CKA_CONVENTIONS),
    "rsa": (lambda A, B: rsa(A, B), RSA_CONVENTIONS),
}


@_small_blas
def seed_spread(arrays: Sequence[np.ndarray], B, metric: str | Callable[..., float] = "precision",
                **kwargs) -> SeedSpread:
    """Metric between each of several matrices of one model (e.g. seeds) and ``B``: values, mean, spread.

    ``metric``: "precision" (needs ``k=``), "jaccard" (``k=``), "procrustes" (disparity), "cka"
    (``debiased=``), "rsa", or a callable ``f(A, B, **kwargs) -> float``.
    """
    if len(arrays) < 1:
        raise MetricInputError("seed_spread needs at least one matrix")
    if callable(metric):
        f, name, conv = metric, getattr(metric, "__name__", "custom"), ""
    else:
        if metric not in _METRICS:
            raise MetricInputError(f"unknown metric {metric!r}; choose from {sorted(_METRICS)}")
        (f, conv), name = _METRICS[metric], metric
    vals = np.array([float(f(X, B, **kwargs)) for X in arrays])
    std = float(vals.std(ddof=1)) if vals.size > 1 else float("nan")
    return SeedSpread(metric=name, values=vals, mean=float(vals.mean()), std=std, min=float(vals.min()),
                      max=float(vals.max()), n_seeds=int(vals.size),
                      conventions=f"{conv}; spread = sample std (ddof=1) over {vals.size} matrices")


# ------------------------------------------------------------------------------------------ all pairs
@dataclass(frozen=True)
class PairwiseMetrics:
    """Every pairwise metric among named spaces; matrices are N x N DataFrames in the given order."""

    names: list[str]
    n: int
    curves: dict[tuple[str, str], np.ndarray]  # (a, b) with a before b -> P@k for k = 1..n-1
    precision: dict[int, pd.DataFrame]          # k -> P@k matrix
    procrustes: pd.DataFrame                    # disparity
    procrustes_dims: pd.DataFrame               # dimension used (PCA when dims differ)
    cka: pd.DataFrame
    cka_debiased: pd.DataFrame | None
    rsa: pd.DataFrame
    conventions: dict[str, str]


@_small_blas
def pairwise_metrics(spaces: Mapping[str, np.ndarray], ks: Sequence[int] = (1, 5, 10, 15),
                     debiased_cka: bool = True) -> PairwiseMetrics:
    """P@k curves (and matrices at ``ks``), Procrustes disparity, CKA, RSA for every pair of spaces.

    Per-space work (rankings, Gram matrices, RDM ranks) is done once per space; no permutation nulls.
    """
    names = list(spaces)
    n = _same_n(spaces)
    X = {m: check_space(spaces[m], m, min_rows=4 if debiased_cka else 3) for m in names}
    ks = [check_k(k, n) for k in ks]
    ranks = {m: _rank_matrix(X[m]) for m in names}
    grams = {m: _gram_centred(X[m]) for m in names}
    gdeb = {m: _gram_debiased(X[m]) for m in names} if debiased_cka else {}
    rr = {m: _rdm_ranks(X[m]) for m in names}
    st = {m: _standardise(X[m], m) for m in names}
    N = len(names)
    P = {k: np.eye(N) for k in ks}
    PR, PD, CK, CD, RS = (np.zeros((N, N)), np.zeros((N, N), dtype=int), np.eye(N), np.eye(N), np.eye(N))
    for a in range(N):
        PD[a, a] = X[names[a]].shape[1]
    curves = {}
    ksf = np.arange(1, n, dtype=np.float64)
    for a in range(N):
        for b in range(a + 1, N):
            ma, mb = names[a], names[b]
            h = np.bincount(np.maximum(ranks[ma], ranks[mb]).ravel(), minlength=n)
            curve = np.cumsum(h)[: n - 1] / (n * ksf)
            curves[(ma, mb)] = curve
            for k in ks:
                P[k][a, b] = P[k][b, a] = curve[k - 1]
            pr = _procrustes_core(st[ma], st[mb], full=False)
            PR[a, b] = PR[b, a] = pr["disparity"]
            PD[a, b] = PD[b, a] = pr["dim_used"]
            CK[a, b] = CK[b, a] = min(1.0, max(0.0, _cka_from_grams(grams[ma], grams[mb])))
            if debiased_cka:
                CD[a, b] = CD[b, a] = _cka_from_grams(gdeb[ma], gdeb[mb])
            RS[a, b] = RS[b, a] = float(np.clip(np.dot(rr[ma], rr[mb]), -1, 1))

    def df(M):
        return pd.DataFrame(M, index=names, columns=names)

    return PairwiseMetrics(
        names=names, n=n, curves=curves, precision={k: df(P[k]) for k in ks}, procrustes=df(PR),
        procrustes_dims=df(PD), cka=df(CK), cka_debiased=df(CD) if debiased_cka else None, rsa=df(RS),
        conventions={"precision": PRECISION_CONVENTIONS, "procrustes": PROCRUSTES_CONVENTIONS,
                     "cka": CKA_CONVENTIONS, "cka_debiased": CKA_DEBIASED_CONVENTIONS, "rsa": RSA_CONVENTIONS})


__all__ = [
    "DECIMALS", "MetricInputError", "check_space", "check_pair", "check_k", "chance_precision",
    "cosine_similarity", "neighbours", "precision_curve", "per_item_counts", "per_item_precision",
    "precision_at_k", "mutual_knn_jaccard", "neighbour_sets", "precision_from_sets", "precision_cross",
    "precision_matrix", "PermutationNull", "permutation_null",
    "BootstrapCI", "bootstrap_ci", "ProcrustesResult", "procrustes", "cka", "rdm", "rsa", "SeedSpread",
    "seed_spread", "PairwiseMetrics", "pairwise_metrics",
]

"""Issue 15: P@k at one k by blocked similarity + partial selection equals the full-ranking path exactly."""
from __future__ import annotations

import numpy as np
import pytest

from core import metrics as M


def _full_counts(A, B, k):
    """The existing path: full rankings, count of items with max(rank_A, rank_B) < k."""
    out = np.empty(A.shape[0], dtype=np.int64)
    for s, e, m in M._max_ranks_chunks(A, B):
        out[s:e] = (m < k).sum(axis=1)
    return out


def _tied_spaces(n=80, seed=0):
    """Spaces full of exact ties: duplicated integer rows, and a rotation of them (ties up to float noise)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-1, 2, size=(n, 4)).astype(np.float64)
    base[~base.any(axis=1), 0] = 1.0
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    return base, base @ Q


@pytest.mark.parametrize("chunk_rows", [1, 7, None])
def test_partial_equals_full_with_ties(chunk_rows):
    A, B = _tied_spaces()
    A2 = np.random.default_rng(1).standard_normal((80, 16))
    for X, Y in ((A, B), (A, A2), (B, A2)):
        X, Y = M.check_pair(X, Y)
        for k in (1, 2, 5, 15, 40, 79):
            got = M._per_item_counts_partial(X, Y, k, chunk_rows)
            assert np.array_equal(got, _full_counts(X, Y, k)), (k, chunk_rows)


def test_ties_really_occur_in_the_fixture():
    A, B = _tied_spaces()
    S = M.cosine_similarity(B)
    np.fill_diagonal(S, np.nan)
    rounded = np.round(S, 10)
    assert max(len(r) - len(np.unique(r[~np.isnan(r)])) for r in rounded) > 10  # many ties per row


def test_large_n_dispatch_uses_partial_and_matches(monkeypatch):
    rng = np.random.default_rng(2)
    n = M.PARTIAL_MIN_N + 40
    A = rng.integers(-2, 3, size=(n, 6)).astype(float) + 0.0
    A[~A.any(axis=1), 0] = 1.0
    B = A + 0.3 * rng.standard_normal((n, 6))
    calls = []
    real = M._per_item_counts_partial
    monkeypatch.setattr(M, "_per_item_counts_partial", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    fast = M.per_item_precision(A, B, 10)
    assert calls, "large n did not take the partial-selection path"
    monkeypatch.setattr(M, "PARTIAL_MIN_N", 10 ** 9)
    assert np.array_equal(fast, M.per_item_precision(A, B, 10))
    assert M.precision_at_k(A, B, 10) == float(fast.mean())


def test_per_item_null_equals_shuffling_b_and_recomputing():
    """metrics.permutation_null_items = the mean per-item P@k of B with its rows shuffled (same seeded perms),
    ties included (a bag-of-words-like space with many exact ties); its mean over all items = permutation_null."""
    from core.metrics import per_item_precision, permutation_null, permutation_null_items

    rng = np.random.default_rng(5)
    A = rng.normal(size=(30, 6))
    B = rng.integers(0, 2, size=(30, 5)).astype(float) + 0.0  # many tied distances
    B[B.sum(1) == 0, 0] = 1.0
    mask = np.zeros(30, bool)
    mask[[1, 4, 9, 20]] = True
    fast = permutation_null_items(A, B, 5, mask, n_permutations=40, seed=3)
    r = np.random.default_rng(3)
    slow = [per_item_precision(A, B[r.permutation(30)], 5)[mask].mean() for _ in range(40)]
    assert np.allclose(fast, slow)
    allitems = permutation_null_items(A, B, 5, None, n_permutations=40, seed=3)
    assert np.allclose(allitems, permutation_null(A, B, 40, seed=3).null[:, 4])

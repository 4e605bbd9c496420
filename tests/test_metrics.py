"""core.metrics and the ``python -m core metrics`` CLI: invariances, hand-worked values, nulls, bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.spatial
from scipy.stats import spearmanr

from core import metrics as M


def rng(seed=0):
    return np.random.default_rng(seed)


def random_orthogonal(d, seed=0):
    Q, R = np.linalg.qr(rng(seed).standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def brute_precision(A, B, k):
    """Reference implementation straight from the definition (sets, per item)."""
    def nbrs(X):
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        S = np.round(U @ U.T, M.DECIMALS)
        np.fill_diagonal(S, -np.inf)
        return [set(np.argsort(-S[i], kind="stable")[:k]) for i in range(len(X))]
    a, b = nbrs(A), nbrs(B)
    return np.mean([len(a[i] & b[i]) / k for i in range(len(A))])


@pytest.fixture(scope="module")
def X():
    return rng(1).standard_normal((60, 12))


# ------------------------------------------------------------------------------------------ P@k
def test_hand_worked_example():
    # 5 items on a circle (2-D): angles 0, 10, 30, 100, 180 degrees. Cosine similarity = cos(angle difference).
    deg = np.array([0, 10, 30, 100, 180])
    A = np.c_[np.cos(np.radians(deg)), np.sin(np.radians(deg))]
    # B: angles 0, 60, 20, 90, 200 (angular distances wrap: 200° is 160° from 0°). By hand, k=1:
    #   A: 0->1 (10°), 1->0 (10°), 2->1 (20°), 3->2 (70°), 4->3 (80°)
    #   B: 0->2 (20°), 1->3 (30°), 2->0 (20°), 3->1 (30°), 4->3 (110°)
    degb = np.array([0, 60, 20, 90, 200])
    B = np.c_[np.cos(np.radians(degb)), np.sin(np.radians(degb))]
    np.testing.assert_array_equal(M.neighbours(A, 1)[:, 0], [1, 0, 1, 2, 3])
    np.testing.assert_array_equal(M.neighbours(B, 1)[:, 0], [2, 3, 0, 1, 3])
    # agreements at k=1: only item 4 -> P@1 = 1/5
    assert M.precision_at_k(A, B, 1) == pytest.approx(1 / 5)
    np.testing.assert_allclose(M.per_item_precision(A, B, 1), [0, 0, 0, 0, 1])
    # k=2: A: 0:{1,2} 1:{0,2} 2:{1,0} 3:{2,4} (70°, 80°) 4:{3,2}
    #      B: 0:{2,1} 1:{3,2} 2:{0,1} 3:{1,2} 4:{3,1} (110°, 140°)
    #      overlaps 2, 1, 2, 1, 1 -> P@2 = 7/10
    assert M.precision_at_k(A, B, 2) == pytest.approx(7 / 10)
    assert M.precision_curve(A, B)[1] == pytest.approx(7 / 10)
    np.testing.assert_allclose(M.per_item_precision(A, B, 2), [1, 0.5, 1, 0.5, 0.5])
    # Jaccard per item = P/(2-P) = |∩|/|∪|: overlaps 2,1,2,1,1 of k=2 -> 1, 1/3, 1, 1/3, 1/3
    assert M.mutual_knn_jaccard(A, B, 2) == pytest.approx(np.mean([1, 1 / 3, 1, 1 / 3, 1 / 3]))
    # k = n-1: every other item is a neighbour in both spaces
    assert M.precision_at_k(A, B, 4) == 1.0


def test_ties_broken_by_index_and_survive_rotation():
    # one-hot-like factors: many exact cosine ties (0.5); ties must go to the smaller index, also after rotation
    F = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=float)
    nb = M.neighbours(F, 2)
    np.testing.assert_array_equal(nb[0], [1, 2])  # items 1, 2, 4 all at cos 0.5 from 0 -> 1, 2
    R = random_orthogonal(4, seed=3)
    np.testing.assert_array_equal(M.neighbours(F @ R * 7.3, 2), nb)
    assert M.precision_curve(F, F @ R).tolist() == [1.0] * 4


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_invariant_to_rotation_and_scale(X, seed):
    R = random_orthogonal(X.shape[1], seed)
    Y = X @ R * 3.7
    assert np.all(M.precision_curve(X, Y) == 1.0)
    assert M.precision_at_k(X, Y, 5) == 1.0
    # per-row positive scaling also leaves cosine neighbours unchanged
    assert M.precision_at_k(X, X * rng(seed).uniform(0.1, 10, (len(X), 1)), 7) == 1.0


def test_precision_of_shuffled_space_is_near_chance(X):
    n, k = len(X), 10
    vals = [M.precision_at_k(X, X[rng(s).permutation(n)], k) for s in range(30)]
    assert abs(np.mean(vals) - M.chance_precision(n, k)) < 0.03
    assert M.chance_precision(108, 15) == pytest.approx(15 / 107)
    assert round(M.chance_precision(108, 15), 3) == 0.140


def test_curve_matches_definition_and_matrix(X):
    Y = X + 0.7 * rng(5).standard_normal(X.shape)
    curve = M.precision_curve(X, Y)
    assert curve.shape == (len(X) - 1,)
    for k in (1, 3, 10, 33, 59):
        assert curve[k - 1] == pytest.approx(brute_precision(X, Y, k), abs=1e-12)
        assert M.precision_at_k(X, Y, k) == pytest.approx(curve[k - 1], abs=1e-12)
    # chunking does not change the result
    np.testing.assert_array_equal(M.precision_curve(X, Y, chunk_rows=7), curve)
    counts = M.per_item_counts(X, Y)
    np.testing.assert_allclose(counts.mean(axis=0) / np.arange(1, len(X)), curve)
    P = M.precision_matrix({"x": X, "y": Y, "z": X @ random_orthogonal(12)}, 5)
    assert list(P.index) == ["x", "y", "z"] and np.allclose(P.values, P.values.T)
    assert P.loc["x", "y"] == pytest.approx(curve[4]) and P.loc["x", "z"] == 1.0
    assert M.precision_at_k(X, Y, 5) == M.precision_at_k(Y, X, 5)


def test_neighbour_similarities(X):
    idx, sims = M.neighbours(X, 4, return_similarity=True)
    S = M.cosine_similarity(X)
    np.testing.assert_allclose(sims, np.take_along_axis(S, idx, axis=1))
    assert (np.diff(sims, axis=1) <= 1e-12).all()
    assert not (idx == np.arange(len(X))[:, None]).any()


# ------------------------------------------------------------------------------------------ null / CIs
def test_permutation_null_structured_vs_unrelated(X):
    Y = X + 0.3 * rng(2).standard_normal(X.shape)
    null = M.permutation_null(X, Y, n_permutations=1000, seed=0)
    assert null.null.shape == (1000, len(X) - 1)
    assert null.p_value(5) == pytest.approx(1 / 1001)  # nothing in the null reaches the observed value
    lo, hi = null.band(10)
    assert lo <= M.chance_precision(len(X), 10) <= hi
    assert abs(null.mean[9] - M.chance_precision(len(X), 10)) < 0.01
    Z = rng(9).standard_normal(X.shape)
    unrelated = M.permutation_null(X, Z, n_permutations=1000, seed=0)
    assert unrelated.p_value(5) > 0.05
    # p-values follow the stated formula, and the null is reproducible for a seed
    k = 7
    ge = (unrelated.null_counts[:, k - 1] >= unrelated.observed_counts[k - 1]).sum()
    assert unrelated.p_value(k) == (1 + ge) / 1001 == unrelated.p_values[k - 1]
    again = M.permutation_null(X, Z, n_permutations=1000, seed=0)
    np.testing.assert_array_equal(again.null_counts, unrelated.null_counts)


def test_permutation_null_recomputes_neighbours_exactly():
    A, B = rng(3).standard_normal((15, 4)), rng(4).standard_normal((15, 4))
    null = M.permutation_null(A, B, n_permutations=20, seed=11)
    r = np.random.default_rng(11)
    perms = [r.permutation(15) for _ in range(20)]
    np.testing.assert_allclose(null.null, [M.precision_curve(A, B[p]) for p in perms])


def test_bootstrap_ci(X):
    Y = X + 0.5 * rng(6).standard_normal(X.shape)
    ci = M.bootstrap_ci(X, Y, k=[5, 10], n_boot=500, seed=1)
    for j, k in enumerate((5, 10)):
        assert ci.lower[j] < M.precision_at_k(X, Y, k) < ci.upper[j]
        assert ci.estimate[j] == pytest.approx(M.precision_at_k(X, Y, k))
    full = M.bootstrap_ci(X, Y, None, n_boot=200, seed=1)
    assert full.ks.tolist() == list(range(1, len(X)))
    assert (full.lower <= full.upper).all()
    # a space against itself: every resample gives 1
    same = M.bootstrap_ci(X, X, 5, n_boot=50)
    assert same.lower[0] == same.upper[0] == 1.0


# ------------------------------------------------------------------------------------------ Procrustes
def test_procrustes_zero_for_similarity_transform(X):
    Y = 2.5 * X @ random_orthogonal(12, 4) + 3.0
    r = M.procrustes(X, Y)
    assert r.disparity == pytest.approx(0.0, abs=1e-12)
    assert np.abs(r.residuals).max() < 1e-6
    np.testing.assert_allclose(r.b_aligned, r.a_standardised, atol=1e-8)


def test_procrustes_equals_scipy(X):
    Y = X + rng(7).standard_normal(X.shape)
    m1, m2, d = scipy.spatial.procrustes(X, Y)
    r = M.procrustes(X, Y)
    assert r.disparity == pytest.approx(d, rel=1e-10)
    np.testing.assert_allclose(r.a_standardised, m1, atol=1e-10)
    np.testing.assert_allclose(r.b_aligned, m2, atol=1e-10)
    assert (r.residuals ** 2).sum() == pytest.approx(d)
    np.testing.assert_allclose(r.rotation @ r.rotation.T, np.eye(12), atol=1e-10)
    assert M.procrustes(Y, X).disparity == pytest.approx(d)  # symmetric


def test_procrustes_different_dims_uses_pca(X):
    Y = np.hstack([X @ random_orthogonal(12, 8), np.zeros((len(X), 5))]) + 1e-3 * rng(2).standard_normal((len(X), 17))
    r = M.procrustes(X, Y)
    assert r.pca and r.dim_used == 12 and (r.dim_a, r.dim_b) == (12, 17)
    assert r.variance_retained_a == pytest.approx(1.0) and 0.99 < r.variance_retained_b <= 1.0
    assert r.disparity < 1e-3
    # dims >= n-1: PCA is lossless, result equals zero padding of the smaller space
    A, B = rng(1).standard_normal((10, 12)), rng(2).standard_normal((10, 15))
    padded = scipy.spatial.procrustes(np.hstack([A, np.zeros((10, 3))]), B)[2]
    assert M.procrustes(A, B).disparity == pytest.approx(padded, rel=1e-10)


def test_procrustes_permutation_p_value(X):
    Y = X + 0.5 * rng(7).standard_normal(X.shape)
    r = M.procrustes(X, Y, n_permutations=200, seed=0)
    assert r.p_value == pytest.approx(1 / 201)
    u = M.procrustes(X, rng(8).standard_normal(X.shape), n_permutations=200, seed=0)
    assert u.p_value > 0.05
    assert u.null_disparities.shape == (200,)


# ------------------------------------------------------------------------------------------ CKA / RSA
def test_cka(X):
    Y = X + rng(3).standard_normal(X.shape)
    Z = rng(4).standard_normal((len(X), 7))
    assert M.cka(X, X) == pytest.approx(1.0)
    assert M.cka(X, 4 * X @ random_orthogonal(12) + 1) == pytest.approx(1.0)
    assert M.cka(X, Y) == pytest.approx(M.cka(Y, X))
    for B in (Y, Z):
        assert 0.0 <= M.cka(X, B) <= 1.0
    assert M.cka(X, Y) > M.cka(X, Z)
    # closed form ||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F) on centred features
    Ac, Zc = X - X.mean(0), Z - Z.mean(0)
    ref = np.linalg.norm(Ac.T @ Zc) ** 2 / (np.linalg.norm(Ac.T @ Ac) * np.linalg.norm(Zc.T @ Zc))
    assert M.cka(X, Z) == pytest.approx(ref)


def test_cka_debiased_matches_unbiased_hsic(X):
    Y = X + rng(3).standard_normal(X.shape)

    def hsic_u(K, L):  # Song et al. (2012), eq. 5
        n = K.shape[0]
        K, L = K.copy(), L.copy()
        np.fill_diagonal(K, 0)
        np.fill_diagonal(L, 0)
        one = np.ones(n)
        return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))

    K, L = X @ X.T, Y @ Y.T
    assert M.cka(X, Y, debiased=True) == pytest.approx(hsic_u(K, L) / np.sqrt(hsic_u(K, K) * hsic_u(L, L)))
    assert M.cka(X, X, debiased=True) == pytest.approx(1.0)


def test_rsa(X):
    Y = X + rng(3).standard_normal(X.shape)
    assert M.rsa(X, X) == pytest.approx(1.0)
    assert M.rsa(X, 2 * X @ random_orthogonal(12)) == pytest.approx(1.0)
    iu = np.triu_indices(len(X), 1)
    assert M.rsa(X, Y) == pytest.approx(spearmanr(M.rdm(X)[iu], M.rdm(Y)[iu])[0])
    D = M.rdm(X)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0) and D.min() >= 0


def test_seed_spread_and_pairwise(X):
    seeds = [X + 0.2 * rng(s).standard_normal(X.shape) for s in range(4)]
    sp = M.seed_spread(seeds, X, "precision", k=5)
    vals = [M.precision_at_k(S, X, 5) for S in seeds]
    assert sp.values.tolist() == vals and sp.mean == pytest.approx(np.mean(vals))
    assert sp.std == pytest.approx(np.std(vals, ddof=1)) and sp.n_seeds == 4
    assert M.seed_spread(seeds, X, "cka").mean == pytest.approx(np.mean([M.cka(S, X) for S in seeds]))
    spaces = {"a": X, "b": seeds[0], "c": rng(5).standard_normal((len(X), 20))}
    pw = M.pairwise_metrics(spaces, ks=(1, 5))
    assert pw.precision[5].loc["a", "b"] == pytest.approx(M.precision_at_k(X, seeds[0], 5))
    assert pw.procrustes.loc["a", "c"] == pytest.approx(M.procrustes(X, spaces["c"]).disparity)
    assert pw.cka.loc["b", "c"] == pytest.approx(M.cka(seeds[0], spaces["c"]))
    assert pw.cka_debiased.loc["a", "b"] == pytest.approx(M.cka(X, seeds[0], debiased=True))
    assert pw.rsa.loc["a", "c"] == pytest.approx(M.rsa(X, spaces["c"]))
    np.testing.assert_allclose(pw.curves[("a", "c")], M.precision_curve(X, spaces["c"]))


# ------------------------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors(X):
    with pytest.raises(M.MetricInputError, match=r"1 <= k <= n-1 = 59 .*got k = 60"):
        M.precision_at_k(X, X, 60)
    with pytest.raises(M.MetricInputError, match=r"1 <= k <= n-1"):
        M.precision_at_k(X, X, 0)
    with pytest.raises(M.MetricInputError, match="k must be an integer"):
        M.precision_at_k(X, X, 2.5)
    with pytest.raises(M.MetricInputError, match="same number of rows.*A has 60, B has 59"):
        M.precision_curve(X, X[:-1])
    bad = X.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(M.MetricInputError, match=r"NaN or inf values in rows \[3, 7\]"):
        M.cka(bad, X)
    bad = X.copy()
    bad[5] = np.inf
    with pytest.raises(M.MetricInputError, match=r"B has NaN or inf values in rows \[5\]"):
        M.rsa(X, bad)
    zero = X.copy()
    zero[4] = 0.0
    with pytest.raises(M.MetricInputError, match=r"all-zero rows \[4\].*cosine similarity is undefined"):
        M.precision_curve(zero, X)
    with pytest.raises(M.MetricInputError, match="zero vector"):
        M.procrustes(X, zero)
    with pytest.raises(M.MetricInputError, match="2-D array"):
        M.neighbours(X[0], 1)
    with pytest.raises(M.MetricInputError, match="at least 2 items"):
        M.precision_curve(X[:1], X[:1])
    with pytest.raises(M.MetricInputError, match="zero variance after centring"):
        M.procrustes(np.ones((5, 3)), X[:5])
    with pytest.raises(M.MetricInputError, match="same number of rows"):
        M.precision_matrix({"a": X, "b": X[:-2]}, 3)
    assert issubclass(M.MetricInputError, ValueError)


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def assets_with_embeddings(tmp_assets, tmp_path, monkeypatch):
    from core.instructions import instruction_set
    from core.store import save_embeddings

    monkeypatch.setenv("ALVA_CACHE_DIR", str(tmp_path / "cache"))  # no computed-here files from elsewhere
    items = instruction_set()
    n = len(items)
    base = rng(0).standard_normal((n, 16))
    man = {"family": "test", "source": "synthetic", "weights_sha256": "none", "pooling": "none", "layer": None,
           "dtype": "float32"}
    for s in range(3):  # the agent, 3 seeds
        save_embeddings(f"alm-s{s}", base + 0.3 * rng(10 + s).standard_normal((n, 16)), items,
                        {**man, "model": "alm"})
    save_embeddings("toy-lm", np.hstack([base, rng(1).standard_normal((n, 8))]), items, {**man, "model": "toy"})
    save_embeddings("noise", rng(2).standard_normal((n, 32)), items, {**man, "model": "noise"})
    return tmp_assets


def test_cli_end_to_end(assets_with_embeddings, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "out"
    rc = main(["metrics", "--out", str(out), "--permutations", "200", "--boot", "100", "--seed", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "P@k against 'alm'" in printed
    pk = pd.read_csv(out / "precision_at_k.csv", comment="#")
    assert set(pk.k) == {1, 5, 10, 15}
    head = (out / "precision_at_k.csv").read_text().splitlines()[:3]
    assert head[0].startswith("# ALVA metrics") and any("self" in h or "itself" in h for h in head)
    toy = pk[(pk.model_a == "alm") & (pk.model_b == "toy-lm") & (pk.k == 15)].iloc[0]
    noise = pk[(pk.model_a == "alm") & (pk.model_b == "noise") & (pk.k == 15)].iloc[0]
    assert toy.p_at_k > noise.p_at_k and toy.p_value == pytest.approx(1 / 201) and noise.p_value > 0.01
    assert toy.chance == pytest.approx(15 / 107)
    assert toy.ci_lo <= toy.p_at_k <= toy.ci_hi
    # the CLI's numbers are the library's numbers on the lowest seed
    from core.store import read_embeddings
    A = read_embeddings("alm-s0")[0]
    B = read_embeddings("toy-lm")[0]
    assert toy.p_at_k == pytest.approx(M.precision_at_k(A, B, 15), abs=1e-6)
    curve = pd.read_csv(out / "precision_curve.csv", comment="#")
    assert len(curve) == 3 * 107
    pro = pd.read_csv(out / "procrustes.csv", comment="#")
    row = pro[(pro.model_a == "alm") & (pro.model_b == "toy-lm")].iloc[0]
    assert row.disparity == pytest.approx(M.procrustes(A, B).disparity, rel=1e-5)
    assert row.dim_used == 16 and bool(row.pca)
    cka = pd.read_csv(out / "cka_matrix.csv", comment="#", index_col=0)
    assert cka.loc["alm", "toy-lm"] == pytest.approx(M.cka(A, B), rel=1e-5)
    seeds = pd.read_csv(out / "seeds.csv", comment="#")
    assert set(seeds.model) == {"alm"} and (seeds.n_seeds == 3).all()
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["parameters"]["reference"] == "alm" and meta["parameters"]["permutations"] == 200
    assert "itself excluded" in meta["conventions"]["precision"]


def test_cli_unknown_model_and_reference(assets_with_embeddings, tmp_path, capsys):
    from core.metrics_cli import cli

    assert cli(["metrics", "--models", "alm,nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Available:" in err and "toy-lm" in err and "alm" in err
    assert cli(["metrics", "--reference", "zzz", "--out", str(tmp_path / "o")]) == 2
    assert "unknown reference 'zzz'" in capsys.readouterr().err


def test_cli_file_fallback(assets_with_embeddings):
    from core.metrics_cli import _load_from_files

    spaces, manifests, source = _load_from_files(None)
    assert set(spaces) == {"alm", "toy-lm", "noise"} and list(spaces["alm"]) == [0, 1, 2]
    assert spaces["toy-lm"][None].shape == (108, 24)

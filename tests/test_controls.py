"""core.controls on synthetic matrices: partial RSA, lexical-free P@k, factor separation, trained vs untrained."""
import itertools

import numpy as np
import pandas as pd
import pytest

from core import baselines, controls, metrics, store
from core.instructions import instruction_set, metadata

N = 108


def rng(s):
    return np.random.default_rng(s)


def _shared(seed=0, noise=0.5, dim=32):
    r = rng(seed)
    Z = r.standard_normal((N, dim))
    return Z + noise * r.standard_normal((N, dim)), Z + noise * r.standard_normal((N, dim)), Z


# ------------------------------------------------------------------------------------------ partial RSA
def test_partial_rsa_equals_plain_rsa_with_unrelated_noise_control():
    A, B, _ = _shared(1)
    noise_rdm = metrics.rdm(rng(99).standard_normal((N, 16)))
    res = controls.partial_rsa(A, B, noise_rdm)
    assert res.rsa > 0.5
    assert np.isclose(res.rsa, metrics.rsa(A, B), atol=1e-12)
    assert abs(res.partial - res.rsa) < 0.02, (res.partial, res.rsa)
    assert not res.degenerate and res.n_pairs == N * (N - 1) // 2


def test_partial_rsa_drops_to_zero_when_the_control_is_the_model():
    A, B, _ = _shared(2)
    exact = controls.partial_rsa(A, B, metrics.rdm(B))
    assert exact.partial == 0.0 and exact.degenerate and exact.rsa > 0.5
    near = controls.partial_rsa(A, B, metrics.rdm(B + 1e-4 * rng(3).standard_normal(B.shape)))
    assert abs(near.partial) < 0.1 and not near.degenerate


def test_partial_rsa_single_control_matches_the_textbook_formula_and_keeps_extra_structure():
    r = rng(4)
    Z, W = r.standard_normal((N, 16)), r.standard_normal((N, 16))
    A = np.hstack([Z, W]) + 0.3 * r.standard_normal((N, 32))
    B = np.hstack([Z, W]) + 0.3 * r.standard_normal((N, 32))
    C = metrics.rdm(Z)
    res = controls.partial_rsa(A, B, C)
    ra, rb = res.r_a_control[0], res.r_b_control[0]
    textbook = (res.rsa - ra * rb) / np.sqrt((1 - ra ** 2) * (1 - rb ** 2))
    assert np.isclose(res.partial, textbook, atol=1e-10)
    assert res.partial > 0.3  # W is shared beyond the control
    # two identical controls give the same answer as one
    assert np.isclose(controls.partial_rsa(A, B, [C, C]).partial, res.partial, atol=1e-8)


def test_partial_rsa_validates_the_control():
    A, B, _ = _shared(5)
    with pytest.raises(ValueError, match=r"\(108, 108\) RDM"):
        controls.partial_rsa(A, B, A)
    with pytest.raises(ValueError, match="symmetric"):
        controls.partial_rsa(A, B, rng(0).random((N, N)))


# ------------------------------------------------------------------------------------------ lexical-free P@k
def test_candidate_sets_share_no_word_hand_checked():
    items = instruction_set()
    mask = controls.candidate_mask(items)
    i = items.index("go to the red ball")
    cands = [items[j] for j in np.flatnonzero(mask[i])]
    assert len(cands) == 20 and "pick up a blue key" in cands and "open a green door" in cands
    assert not any(set(c.split()) & set("go to the red ball".split()) for c in cands)
    assert sorted(set(mask.sum(1))) == [15, 20, 25, 30]
    assert mask.sum(1)[items.index("go to the red box")] == 15
    assert (mask == mask.T).all() and not mask.diagonal().any()
    loose = controls.candidate_mask(items, ignore_determiner=True)
    assert loose.sum(1)[i] == 40 and loose.sum(1).min() == 30 and loose.sum(1).max() == 60 and (loose >= mask).all()


def test_lexical_free_precision_identity_chance_and_bag_of_words():
    A = rng(6).standard_normal((N, 32))
    same = controls.lexical_free_precision(A, A * 2.0, 5)
    assert same.precision == 1.0
    nc = controls.candidate_mask().sum(1)
    assert np.isclose(same.chance, np.mean(5 / nc))
    # bag-of-words and factors are constant (cosine 0) inside every candidate set: exactly chance
    for X in (baselines.bag_of_words(), baselines.factors()):
        res = controls.lexical_free_precision(X, A, 5)
        assert np.isclose(res.precision, res.chance, atol=1e-12)
    # independent random spaces: near chance
    vals = [controls.lexical_free_precision(rng(s).standard_normal((N, 32)), rng(s + 50).standard_normal((N, 32)),
                                            5).precision for s in range(10)]
    assert abs(np.mean(vals) - same.chance) < 0.03
    with pytest.raises(ValueError, match="min"):
        controls.lexical_free_precision(A, A, 15)


def test_lexical_free_without_ties_equals_brute_force():
    A, B = rng(7).standard_normal((N, 8)), rng(8).standard_normal((N, 8))
    mask = controls.candidate_mask()
    SA, SB = metrics.cosine_similarity(A), metrics.cosine_similarity(B)
    per = []
    for i in range(N):
        c = np.flatnonzero(mask[i])
        na = set(c[np.argsort(-SA[i, c])[:4]])
        nb = set(c[np.argsort(-SB[i, c])[:4]])
        per.append(len(na & nb) / 4)
    assert np.isclose(controls.lexical_free_precision(A, B, 4).precision, np.mean(per))


def test_tie_aware_overlap_is_the_expectation_over_random_tie_breaking():
    # one row, 6 candidates; A has a 3-way tie at the boundary, B a 2-way tie
    SA = np.array([[0, .9, .5, .5, .5, .1, 0.]])
    SB = np.array([[0, .5, .5, .9, .2, .1, 0.]])
    mask = np.array([[False, True, True, True, True, True, False]])
    k = 2
    got = controls._expected_overlap(SA, SB, mask, k)[0]
    # brute force: every tie order equally likely
    tot, cnt = 0.0, 0
    for pa in itertools.permutations([2, 3, 4]):
        for pb in itertools.permutations([1, 2]):
            na = {1, pa[0]}
            nb = {3, pb[0]}
            tot += len(na & nb) / k
            cnt += 1
    assert np.isclose(got, tot / cnt)


# ------------------------------------------------------------------------------------------ factor separation
def test_factor_separation_on_a_colour_only_space():
    meta = metadata()
    X = pd.get_dummies(meta["colour"]).to_numpy(float)
    fs = controls.factor_separation(X, meta).set_index("factor")
    assert fs.loc["colour", "loo_centroid_acc"] == 1.0 and np.isclose(fs.loc["colour", "eta2"], 1.0)
    # colour is balanced within every level of the other factors: they explain exactly nothing
    for f in ("verb", "determiner", "object"):
        assert np.isclose(fs.loc[f, "eta2"], 0.0, atol=1e-12)
    assert fs.loc["colour", "chance"] == 1 / 6 and fs.loc["verb", "majority"] == 48 / 108
    assert np.isclose(fs.loc["colour", "eta2_null"], 5 / 107)


def test_factor_separation_factors_baseline_and_random():
    fs = controls.factor_separation(baselines.factors()).set_index("factor")
    assert (fs["loo_centroid_acc"] == 1.0).all()
    fr = controls.factor_separation(rng(9).standard_normal((N, 128)), n_perm=50).set_index("factor")
    assert (fr["loo_centroid_acc"] < fr["chance"] + 0.25).all()
    assert (fr["eta2"] < 0.15).all() and "null_p95" in fr


def test_loo_centroid_leaves_the_item_out():
    # every item alone in its level except two: with the item left in, accuracy would be perfect
    X = rng(10).standard_normal((6, 4))
    meta = pd.DataFrame({"f": ["a", "a", "b", "b", "c", "c"]})
    acc = controls._loo_centroid_acc(X / np.linalg.norm(X, axis=1, keepdims=True),
                                     np.array([0, 0, 1, 1, 2, 2]), 3)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    y = np.array([0, 0, 1, 1, 2, 2])
    hits = 0
    for i in range(6):
        keep = np.arange(6) != i
        cents = np.stack([U[keep & (y == c)].mean(0) for c in range(3)])
        cents /= np.linalg.norm(cents, axis=1, keepdims=True)
        hits += int(np.argmax(cents @ U[i]) == y[i])
    assert acc == hits / 6
    assert controls.factor_separation(X, meta, factors=["f"]).loc[0, "loo_centroid_acc"] == acc


# ------------------------------------------------------------------------------------------ trained vs untrained
@pytest.mark.parametrize("metric", controls.METRICS)
def test_trained_vs_untrained_detects_learning_and_is_zero_for_identical_lists(metric):
    r = rng(11)
    B = r.standard_normal((N, 24))
    trained = [B + 0.3 * r.standard_normal(B.shape) for _ in range(3)]
    untrained = [r.standard_normal((N, 24)) for _ in range(3)]
    k = 5 if metric == "lexfree_precision" else 15
    res = controls.trained_vs_untrained(trained, untrained, B, metric, n_boot=60, seed=0, k=k)
    if res.higher_is_more_aligned:
        assert res.ci_low > 0 and res.difference > 0
    else:
        assert res.ci_high < 0 and res.difference < 0
    assert res.ci_low <= res.difference <= res.ci_high
    assert len(res.trained) == 3 and np.isclose(res.difference, res.trained_mean - res.untrained_mean)
    same = controls.trained_vs_untrained(trained, trained, B, metric, n_boot=20, seed=0, k=k)
    assert same.difference == 0 and same.ci_low == 0 and same.ci_high == 0


def test_trained_vs_untrained_point_values_match_core_metrics():
    r = rng(12)
    B, T, U = (r.standard_normal((N, 16)) for _ in range(3))
    p = controls.trained_vs_untrained([T], [U], B, "precision", n_boot=10)
    assert np.isclose(p.trained[0], metrics.precision_at_k(T, B, 15))
    s = controls.trained_vs_untrained([T], [U], B, "rsa", n_boot=10)
    assert np.isclose(s.untrained[0], metrics.rsa(U, B))
    c = controls.trained_vs_untrained([T], [U], B, "cka", n_boot=10)
    assert np.isclose(c.trained[0], metrics.cka(T, B))
    with pytest.raises(ValueError, match="unknown metric"):
        controls.trained_vs_untrained([T], [U], B, "p@k")


# ------------------------------------------------------------------------------------------ table + CLI
def test_control_table_rows_and_columns():
    r = rng(13)
    Z = r.standard_normal((N, 16))
    spaces = {"alm": [Z + 0.2 * r.standard_normal(Z.shape) for _ in range(3)],
              "lm": Z + 0.5 * r.standard_normal(Z.shape),
              "bag-of-words": baselines.bag_of_words(),
              "random": {s: baselines.random_vectors(N, s) for s in range(2)}}
    t = controls.control_table(spaces, "alm").set_index("model")
    assert list(t.index) == ["alm (seed vs seed)", "bag-of-words", "lm", "random"] or \
        set(t.index) == {"alm (seed vs seed)", "lm", "bag-of-words", "random"}
    assert t.loc["alm (seed vs seed)", "n_pairs"] == 3 and t.loc["random", "n_pairs"] == 6
    assert t.loc["lm", "p_at_k"] > 0.3 and abs(t.loc["random", "p_at_k"] - 15 / 107) < 0.05
    assert np.isclose(t.loc["bag-of-words", "lexfree_p"], t.loc["bag-of-words", "lexfree_chance"])
    assert abs(t.loc["bag-of-words", "partial_rsa"]) < 1e-9  # the control itself
    assert np.isclose(t.loc["bag-of-words", "rsa_with_control"], 1.0)
    assert "conventions" in t.attrs and "k = 15" in t.attrs["conventions"]


def test_cli_writes_tables_with_convention_headers(tmp_assets):
    emb = tmp_assets / "embeddings"
    baselines.ship(emb)
    r = rng(14)
    Z = r.standard_normal((N, 16))
    man = {k: "synthetic" for k in store.MANIFEST_KEYS if k not in ("n_items", "dim", "instruction_set_hash")}
    for s in range(2):
        store.save_embeddings(f"alm-s{s}", Z + 0.3 * r.standard_normal(Z.shape), instruction_set(), man, emb)
        store.save_embeddings(f"untrained-alm-s{s}", baselines.bag_of_words() + 0.1 * r.standard_normal((N, 17)),
                              instruction_set(), man, emb)
    out = tmp_assets / "controls"
    assert controls.cli(["controls", "--out", str(out), "--n-boot", "20", "--n-perm", "0"]) == 0
    for name in ("control_table_alm.csv", "control_table_untrained-alm.csv", "factor_separation.csv",
                 "trained_vs_untrained.csv", "matrix_p_at_15.csv", "matrix_partial_rsa_bow.csv", "controls.json"):
        assert (out / name).exists(), name
    text = (out / "control_table_alm.csv").read_text()
    assert text.startswith("# ALVA controls") and "conventions:" in text
    t = pd.read_csv(out / "control_table_alm.csv", comment="#")
    assert {"bag-of-words", "tfidf", "factors", "random", "untrained-alm"} <= set(t.model)
    m = pd.read_csv(out / "matrix_p_at_15.csv", comment="#").set_index("model")
    assert {"bag-of-words", "factors", "random"} <= set(m.columns) and np.isnan(m.loc["factors", "factors"])
    tvu = pd.read_csv(out / "trained_vs_untrained.csv", comment="#")
    assert set(tvu.metric) == set(controls.METRICS) - {"procrustes"} and "bag-of-words" in set(tvu.reference)


def test_tie_expected_precision():
    A, B = rng(15).standard_normal((N, 8)), rng(16).standard_normal((N, 8))
    assert np.isclose(controls.tie_expected_precision(A, B, 15), metrics.precision_at_k(A, B, 15))
    bow, fac = baselines.bag_of_words(), baselines.factors()
    te = controls.tie_expected_precision(bow, fac, 15)
    assert abs(te - metrics.precision_at_k(bow, fac, 15)) > 0.02  # index tie-breaking matters here
    assert controls.tie_expected_precision(bow, bow, 15) < 1.0  # two independent tie-breaks of a tied space
    assert np.isclose(controls.tie_expected_precision(A, A, 15), 1.0)

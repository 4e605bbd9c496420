"""The analysis multiverse: batched P@k, item subsets, preprocessing, split-half selection, the shipped tables."""
import numpy as np
import pandas as pd
import pytest

from core import metrics
from core import multiverse as mv
from core.instructions import metadata
from core.preprocessing import PREPROCESSINGS, preprocess

N = 108


def rng(s):
    return np.random.default_rng(s)


def _tied(seed, n=N, d=6):
    X = rng(seed).integers(0, 3, (n, d)).astype(float)
    X[~X.any(axis=1), 0] = 1.0
    return X


# ------------------------------------------------------------------------------------------ batched P@k
@pytest.mark.parametrize("k", [1, 7, 15, 107])
def test_precision_from_sets_equals_precision_at_k(k):
    A = [rng(0).standard_normal((N, 16)), _tied(1), _tied(2, d=3)]
    B = [rng(3).standard_normal((N, 40)), _tied(4), A[0] + 0.3 * rng(5).standard_normal((N, 16))]
    P = metrics.precision_cross(A, B, k)
    want = np.array([[metrics.precision_at_k(a, b, k) for b in B] for a in A])
    np.testing.assert_array_equal(P, want)
    S = metrics.neighbour_sets(A[1], k)
    assert S.sum(axis=1).tolist() == [k] * N and not S.diagonal().any()
    np.testing.assert_array_equal(np.sort(np.flatnonzero(S[5])), np.sort(metrics.neighbours(A[1], k)[5]))


def test_precision_from_sets_rejects_sets_of_another_k():
    S = metrics.neighbour_sets(rng(0).standard_normal((20, 4)), 5)
    with pytest.raises(metrics.MetricInputError, match="exactly k = 6"):
        metrics.precision_from_sets(S, S, 6)
    with pytest.raises(metrics.MetricInputError, match="boolean"):
        metrics.precision_from_sets(S.astype(int), S, 5)


def test_precision_matrix_unchanged_by_the_batched_path():
    spaces = {"a": rng(0).standard_normal((N, 8)), "b": _tied(1), "c": rng(2).standard_normal((N, 30))}
    M = metrics.precision_matrix(spaces, 10)
    for x in spaces:
        for y in spaces:
            want = 1.0 if x == y else metrics.precision_at_k(spaces[x], spaces[y], 10)
            assert M.loc[x, y] == want


# ------------------------------------------------------------------------------------------ subsets, preprocessing
def test_item_subsets_and_chance_matched_k():
    subs = {s.name: s for s in mv.item_subsets()}
    assert subs["all"].k == 15 and subs["all"].n == 108
    assert (subs["verb=go to"].n, subs["verb=go to"].k) == (48, 7)
    assert (subs["verb=pick up"].n, subs["verb=pick up"].k) == (36, 5)
    assert (subs["verb=open"].n, subs["verb=open"].k) == (24, 3)
    assert (subs["determiner=the"].n, subs["determiner=the"].k) == (54, 7)
    meta = metadata()
    assert (meta.verb.to_numpy()[subs["verb=open"].items] == "open").all()
    for s in subs.values():  # chance as close as possible to 15/107
        others = [abs(kk / (s.n - 1) - 15 / 107) for kk in range(1, s.n)]
        assert abs(s.chance - 15 / 107) == min(others)


def test_a_subset_with_fewer_than_k_plus_one_items_is_an_error():
    with pytest.raises(metrics.MetricInputError, match=r"'verb=open' has 24 items: P@30 needs at least k \+ 1 = 31"):
        mv.item_subsets(subset_k=30)
    with pytest.raises(metrics.MetricInputError, match="has 5 items"):
        mv.check_item_set(mv.ItemSet("tiny", np.arange(5), 5))
    with pytest.raises(metrics.MetricInputError, match="unknown factor"):
        mv.item_subsets(factors=("size",))


def test_preprocessing_choices():
    X = rng(0).standard_normal((30, 12)) * np.arange(1, 13) + 5.0
    X[:, 3] = 2.0  # a constant dimension
    np.testing.assert_array_equal(preprocess(X, "raw"), X)
    C = preprocess(X, "centred")
    np.testing.assert_allclose(C.mean(0), 0, atol=1e-12)
    assert (C[:, 3] == 0).all()
    Z = preprocess(X, "zscore")
    sd = Z.std(0)
    np.testing.assert_allclose(np.delete(sd, 3), 1.0)
    assert (Z[:, 3] == 0).all()
    # platonic-rep: threshold = mean over rows of the row's 95% quantile of |x|; clip; L2
    Y = preprocess(X, "clamp")
    t = np.mean([np.quantile(np.abs(r), 0.95) for r in X])
    want = np.clip(X, -t, t)
    np.testing.assert_allclose(Y, want / np.linalg.norm(want, axis=1, keepdims=True))
    assert np.abs(X).max() > t and np.isclose(np.abs(Y * np.linalg.norm(want, axis=1, keepdims=True)).max(), t)
    with pytest.raises(metrics.MetricInputError, match="unknown preprocessing"):
        preprocess(X, "whiten")


def test_item_set_precision_reads_only_its_items_and_uses_core_metrics():
    A = [rng(0).standard_normal((N, 16)), _tied(1)]
    B = [rng(2).standard_normal((N, 24))]
    s = mv.item_subsets()[3]  # verb=open
    for how in PREPROCESSINGS:
        P = mv.item_set_precision(A, B, s, how)
        want = [[metrics.precision_at_k(preprocess(a[s.items], how), preprocess(b[s.items], how), s.k)
                 for b in B] for a in A]
        np.testing.assert_array_equal(P, want)
        poisoned = [a.copy() for a in A]
        for p in poisoned:
            p[np.setdiff1d(np.arange(N), s.items)] = np.nan
        np.testing.assert_array_equal(mv.item_set_precision(poisoned, B, s, how), P)


def test_degenerate_spaces_are_left_out():
    same = np.tile(rng(0).standard_normal(8), (N, 1))  # every row identical: no neighbour order
    P = mv.item_set_precision([same, rng(1).standard_normal((N, 8))], [rng(2).standard_normal((N, 8))],
                              mv.item_subsets()[0], "centred")
    assert np.isnan(P[0, 0]) and not np.isnan(P[1, 0])
    assert np.isnan(mv.item_set_precision([same], [same], mv.item_subsets()[0], "raw")).all()


# ------------------------------------------------------------------------------------------ split half
def test_split_half_selection_never_reads_the_items_it_scores():
    ref = rng(0).standard_normal((N, 32))
    layers = [rng(10 + i).standard_normal((N, 32)) for i in range(6)]
    layers[4] = ref + 0.8 * rng(1).standard_normal((N, 32))
    for sel, sco in mv.split_halves(N)[:3]:
        S = mv.ItemSet("sel", sel, mv.chance_matched_k(sel.size))
        clean = mv.item_set_precision(layers, [ref], S)
        poisoned = [x.copy() for x in layers]
        for x in poisoned:
            x[sco] = np.nan  # the scored half is unreadable: selection must still work and agree
        np.testing.assert_array_equal(mv.item_set_precision(poisoned, [ref], S), clean)
        assert mv.choose(clean) == 4
    halves = mv.split_halves(N)
    assert all(np.intersect1d(a, b).size == 0 and a.size + b.size == N for a, b in halves)


def test_split_half_differs_from_the_in_sample_maximum():
    """40 random 'layers' against a reference: the in-sample maximum is well above chance by selection alone;
    the held-out score of the selected layer is at chance."""
    ref = rng(0).standard_normal((N, 16))
    layers = [rng(100 + i).standard_normal((N, 16)) for i in range(40)]
    in_sample = metrics.precision_cross(layers, [ref], 15).max()
    res = mv.split_half(layers, [ref])
    assert in_sample > metrics.chance_precision(N, 15) + 0.015  # selection bias alone
    # the in-sample maximum under the same half protocol (select and score on the same half) vs split half
    same_half = np.mean([np.nanmax(mv.item_set_precision(layers, [ref], h)) for h in mv.half_item_sets(N)])
    assert same_half > res.chance + 0.03 and same_half > res.score + 0.03
    assert abs(res.score - res.chance) < 0.015
    assert len(res.fold_scores) == 20 and res.k == 7 and np.isclose(res.chance, 7 / 53)
    # with a real signal in one layer, the split half finds it in every fold
    layers[17] = ref + 0.5 * rng(1).standard_normal((N, 16))
    res = mv.split_half(layers, [ref])
    assert set(res.chosen) == {(17, 0)} and res.score > 0.5


# ------------------------------------------------------------------------------------------ compute (synthetic)
def _synthetic():
    ref = rng(0).standard_normal((N, 24))
    agent = {("ag", 0): {"mean": np.stack([rng(1).standard_normal((N, 8)), ref[:, :8] + rng(2).standard_normal(
        (N, 8)), ref[:, :8] + 0.3 * rng(3).standard_normal((N, 8))]), "max": rng(4).standard_normal((2, N, 8))},
        ("untrained-ag", 0): {"mean": rng(5).standard_normal((3, N, 8))}}
    refs = {"lm": {"mean": np.stack([rng(6).standard_normal((N, 24)), ref]),
                   "cls": np.stack([np.tile(ref[0], (N, 1)), ref + 0.1])}}  # cls layer 0: degenerate
    return agent, refs


def test_compute_on_synthetic_sweeps():
    agent, refs = _synthetic()
    res = mv.compute(agent, refs, twins={("ag", 0): ("untrained-ag", 0)})
    r, s = res.results, res.summary.set_index("agent")
    n_sets, n_preps = len(mv.item_subsets()), len(PREPROCESSINGS)
    total = (5 + 3) * 4 * n_sets * n_preps
    left_out = (5 + 3) * 1 * n_sets * n_preps  # the degenerate cls layer 0 with every agent space
    assert len(r) == total - left_out and str(left_out) in res.notes[0]
    assert set(r["subset"]) == {x.name for x in mv.item_subsets()} and set(r["preprocessing"]) == set(PREPROCESSINGS)
    # a row is P@k of the two spaces on that subset: recompute one with core.metrics
    sub = mv.item_subsets()[1]
    row = r[(r.agent == "ag") & (r.agent_layer == 1) & (r.agent_pooling == "mean") & (r.ref_layer == 1)
            & (r.ref_pooling == "mean") & (r.preprocessing == "zscore") & (r.subset == sub.name)].iloc[0]
    want = metrics.precision_at_k(preprocess(agent[("ag", 0)]["mean"][1][sub.items], "zscore"),
                                  preprocess(refs["lm"]["mean"][1][sub.items], "zscore"), sub.k)
    assert row["k"] == sub.k and row["hits"] == round(want * sub.n * sub.k)  # exact integer count
    assert np.isclose(row["hits"] / (row["n_items"] * row["k"]), want, rtol=0, atol=1e-12)
    # pre-registered: agent last layer (mean) vs the reference's last layer (default pooling), raw, all items
    assert s.loc["ag", "last_layer"] == metrics.precision_at_k(agent[("ag", 0)]["mean"][2], refs["lm"]["mean"][1], 15)
    assert s.loc["ag", "untrained_last_layer"] == s.loc["untrained-ag", "last_layer"]
    assert np.isnan(s.loc["untrained-ag", "untrained_last_layer"]) and s.loc["untrained-ag", "twin"] == ""
    # the summary's split half = the public split_half over the layer pairs at the default poolings, raw
    sh = mv.split_half(list(agent[("ag", 0)]["mean"]), list(refs["lm"]["mean"]))
    assert np.isclose(s.loc["ag", "split_half"], sh.score)
    assert np.isclose(s.loc["ag", "split_half_last_layer"], sh.preregistered)
    assert s.loc["ag", "split_half_choice"].startswith("agent L2 mean / L1 mean")
    vals = r[r.agent == "ag"]
    p = vals["hits"] / (vals["n_items"] * vals["k"])
    assert np.isclose(s.loc["ag", "median"], np.median(p)) and s.loc["ag", "n_choices"] == len(vals)
    assert s.loc["ag", "q05"] <= s.loc["ag", "median"] <= s.loc["ag", "q95"]


def test_compute_bad_input():
    agent, refs = _synthetic()
    with pytest.raises(metrics.MetricInputError, match="default pooling 'mean' is missing"):
        mv.compute({("x", 0): {"max": agent[("ag", 0)]["max"]}}, refs)
    with pytest.raises(metrics.MetricInputError, match="same items"):
        mv.compute({("x", 0): {"mean": agent[("ag", 0)]["mean"][:, :50]}}, refs)


def test_run_bad_agents_and_references(tmp_path):
    from core.embedders import BadOptionError, UnknownModelError

    with pytest.raises(BadOptionError, match="seed 7 of 'alm' is unknown"):
        mv.run([("alm", 7)], ship=False)
    with pytest.raises(UnknownModelError):
        mv.run([("robot", 0)], ship=False)
    with pytest.raises(mv.MultiverseError, match="trained agents"):
        mv.run([("untrained-alm", 0)], ship=False)
    with pytest.raises(UnknownModelError):
        mv.run([("alm", 0)], ["gpt-9"], ship=False)
    assert mv.cli(["multiverse", "--agents", "alm0"]) == 2


def test_cli_small_run_writes_tables_with_manifest(tmp_path, capsys):
    rc = mv.cli(["multiverse", "--agents", "alm-s0", "--references", "all-minilm-l6-v2", "--n-splits", "2",
                 "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "P@k evaluations" in out
    s = mv.load_summary(tmp_path)
    assert list(s["agent"]) == ["alm", "untrained-alm"] and set(s["reference"]) == {"all-minilm-l6-v2"}
    r = mv.load_results(tmp_path)
    assert r["preregistered"].sum() == 2
    from core.store import read_json

    man = read_json(tmp_path / "multiverse.json")
    assert man["n_splits"] == 2 and "agents/alm-s0.pt" in man["inputs_sha256"]
    assert {"results.parquet", "summary.csv", "organisation.csv"} <= set(man["files"])


# ------------------------------------------------------------------------------------------ shipped tables
def test_shipped_summary_has_the_documented_columns_and_the_headline_numbers():
    from core.embedders import load_embeddings

    s = mv.load_summary()
    for c in ["agent", "seed", "trained", "twin", "reference", "last_layer", "split_half", "split_half_ref",
              "split_half_any", "split_half_last_layer", "half_k", "half_chance", "median", "q05", "q95",
              "n_choices", "chance", "untrained_last_layer", "untrained_split_half", "untrained_median",
              "untrained_q05", "untrained_q95"]:
        assert c in s.columns, c
    assert set(s.columns) - {"untrained_" + c for c in mv.UNTRAINED_COLUMNS} == set(mv.SUMMARY_COLUMNS) - {
        "untrained_*"}
    assert not s.duplicated(["agent", "seed", "reference"]).any()
    assert {"alm", "untrained-alm"} <= set(s["agent"])
    assert set(s["reference"]) == {"smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2"}
    assert np.isclose(s["chance"], 15 / 107).all()
    for agent, ref in [("alm", "smollm2-135m"), ("alm", "gemma-3-270m"), ("untrained-alm", "all-minilm-l6-v2")]:
        row = s[(s.agent == agent) & (s.seed == 0) & (s.reference == ref)].iloc[0]
        A, _ = load_embeddings(agent, 0)
        B, _ = load_embeddings(ref)
        assert np.isclose(row["last_layer"], metrics.precision_at_k(A, B, 15), atol=1e-6), (agent, ref)
    row = s[(s.agent == "alm") & (s.seed == 0) & (s.reference == "smollm2-135m")].iloc[0]
    tw = s[(s.agent == "untrained-alm") & (s.seed == 0) & (s.reference == "smollm2-135m")].iloc[0]
    assert row["twin"] == "untrained-alm" and row["untrained_last_layer"] == tw["last_layer"]
    assert (s["q05"] <= s["median"]).all() and (s["median"] <= s["q95"]).all()


def test_shipped_results_agree_with_the_summary():
    r = mv.load_results()
    s = mv.load_summary()
    pre = r[r.preregistered & (r.seed == 0) & (r.agent == "alm")].set_index("reference")["p_at_k"]
    got = s[(s.agent == "alm") & (s.seed == 0)].set_index("reference")["last_layer"]
    np.testing.assert_allclose(pre.loc[got.index], got, atol=1e-6)
    one = r[(r.agent == "alm") & (r.seed == 0) & (r.reference == "gemma-3-270m")]
    row = s[(s.agent == "alm") & (s.seed == 0) & (s.reference == "gemma-3-270m")].iloc[0]
    assert len(one) == row["n_choices"] and np.isclose(one["p_at_k"].median(), row["median"], atol=1e-6)
    assert ((r["p_at_k"] >= 0) & (r["p_at_k"] <= 1)).all()
    assert pd.api.types.is_bool_dtype(r["trained"])

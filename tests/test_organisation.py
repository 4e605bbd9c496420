"""What organises a space (issue 13, section 2): neighbour-factor shares and the combined factor table."""
import numpy as np
import pytest

from core import controls, metrics
from core.instructions import FACTORS, instruction_set, metadata

N = 108
META = metadata()


def _one_hot(factor):
    levels, y = np.unique(META[factor], return_inverse=True)
    return np.eye(levels.size)[y]


def _exact_chance(factor):
    counts = META[factor].value_counts()
    return float((counts * (counts - 1)).sum() / (N * (N - 1)))


@pytest.mark.parametrize("factor", FACTORS)
def test_a_factor_only_space_gives_share_one_for_its_factor(factor):
    X = _one_hot(factor) + 1e-3 * np.random.default_rng(0).standard_normal((N, META[factor].nunique()))
    sh = controls.neighbour_factor_shares(X, k=15).set_index("factor")
    assert sh.loc[factor, "share"] == 1.0  # every level has >= 18 items > k + 1
    assert np.isclose(sh.loc[factor, "chance"], _exact_chance(factor))
    assert np.isclose(sh.loc[factor, "ratio"], 1.0 / _exact_chance(factor))
    others = [f for f in FACTORS if f != factor and not (factor == "object" and f == "verb")]
    assert all(sh.loc[f, "share"] < 0.9 for f in others), sh


def test_a_random_space_gives_the_chance_share():
    shares = np.mean([controls.neighbour_factor_shares(np.random.default_rng(s).standard_normal((N, 64)))
                      ["share"].to_numpy() for s in range(8)], axis=0)
    chance = np.array([_exact_chance(f) for f in FACTORS])
    np.testing.assert_allclose(shares, chance, atol=0.02)
    # the chance column is the exact expectation: mean over items of (#same level - 1)/(n - 1)
    df = controls.neighbour_factor_shares(np.random.default_rng(9).standard_normal((N, 8)))
    np.testing.assert_allclose(df["chance"], chance, rtol=0, atol=1e-12)


def test_per_item_shares_average_to_the_table_and_use_the_metrics_neighbours():
    X = np.random.default_rng(1).standard_normal((N, 16))
    per = controls.neighbour_factor_shares(X, k=10, per_item=True)
    assert list(per.columns) == ["instruction", "factor", "level", "share", "chance"] and len(per) == 4 * N
    agg = controls.neighbour_factor_shares(X, k=10).set_index("factor")
    for f, g in per.groupby("factor"):
        assert np.isclose(g["share"].mean(), agg.loc[f, "share"])
        assert list(g["instruction"]) == instruction_set()
    idx = metrics.neighbours(X, 10)
    y = META["colour"].to_numpy()
    col = per[per.factor == "colour"]["share"].to_numpy()
    np.testing.assert_allclose(col, (y[idx] == y[:, None]).mean(1))


def test_space_organisation_combines_factor_separation_and_shares():
    X = np.random.default_rng(2).standard_normal((N, 32)) + 2 * _one_hot("colour") @ np.random.default_rng(3)\
        .standard_normal((6, 32))
    org = controls.space_organisation(X, k=15).set_index("factor")
    fs = controls.factor_separation(X).set_index("factor")
    sh = controls.neighbour_factor_shares(X, 15).set_index("factor")
    np.testing.assert_allclose(org["eta2"], fs["eta2"])
    np.testing.assert_allclose(org["loo_acc"], fs["loo_centroid_acc"])
    np.testing.assert_allclose(org["share"], sh["share"])
    np.testing.assert_allclose(org["share_chance"], sh["chance"])
    assert org["share_ratio"].idxmax() == "colour" and org["eta2"].idxmax() == "colour"


def test_bad_input_is_a_clear_error():
    X = np.random.default_rng(4).standard_normal((N, 8))
    with pytest.raises(metrics.MetricInputError, match="instructions for 50 rows"):
        controls.neighbour_factor_shares(X[:50])
    with pytest.raises(metrics.MetricInputError, match="k must satisfy"):
        controls.neighbour_factor_shares(X, k=N)
    sub = instruction_set()[:30]
    assert len(controls.neighbour_factor_shares(X[:30], k=5, instructions=sub)) == 4


def test_shipped_organisation_table_matches_a_recomputation():
    from core.embedders import load_embeddings
    from core.multiverse import load_organisation

    org = load_organisation()
    cols = ["eta2", "loo_acc", "share", "share_chance", "share_ratio"]
    for space, (name, seed) in {"smollm2-135m": ("smollm2-135m", None), "alm-s0": ("alm", 0),
                                "untrained-alm-s0": ("untrained-alm", 0)}.items():
        X, _ = load_embeddings(name, seed)
        got = org[org.space == space].set_index("factor")[cols]
        want = controls.space_organisation(X, 15).set_index("factor")[cols]
        np.testing.assert_allclose(got.loc[list(FACTORS)], want.loc[list(FACTORS)], rtol=1e-5, atol=1e-6)
    kinds = set(org["kind"])
    assert kinds == {"embedding", "reference layer", "agent layer"}

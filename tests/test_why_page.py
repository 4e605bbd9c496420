"""AppTest of the "Why they align" page (pages/why.py) and of the Overview's line on what learning does.

Runs on the synthetic assets of tests/test_app.py plus, written here, test trajectories of alm seeds 0 and 1
(endpoints = the synthetic untrained and trained embeddings, linear in between; test data, not training runs)
and a test multiverse given to core.multiverse's loaders (smollm2-135m only, so that a pair without rows is seen).
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from test_app import INSTR, _clear_caches, _qp, _run, _stand_in_layouts, _texts, _vega, synthetic_dir  # noqa: F401

from core import dynamics, metrics
from core.embedders import load_embeddings

STEPS = [0, 10, 20, 50, 100, 150]
SUCCESS_AT = {50: 0.4, 150: 0.8}
N_CHOICES = 200


def _write_trajectories(d) -> None:
    for s in (0, 1):
        U, T = load_embeddings("untrained-alm", s)[0], load_embeddings("alm", s)[0]
        w = np.array(STEPS, dtype=float) / STEPS[-1]
        E = np.stack([(1 - a) * U + a * T for a in w])
        dynamics.save_trajectory("alm", s, STEPS, E, [SUCCESS_AT.get(t, np.nan) for t in STEPS], INSTR,
                                 {"what": "test trajectory (linear between the synthetic endpoints; tests only)"},
                                 directory=d / "trajectories")


def _fake_multiverse() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A long table and a summary in the documented columns (values drawn here; tests only)."""
    r = np.random.default_rng(3)
    rows, summ = [], []
    for s in (0, 1):
        vals = {}
        for agent, trained, centre in (("alm", True, 0.25), ("untrained-alm", False, 0.6)):
            v = np.clip(r.normal(centre, 0.08, N_CHOICES), 0, 1)
            vals[agent] = v
            rows.append(pd.DataFrame({"agent": agent, "seed": s, "trained": trained, "reference": "smollm2-135m",
                                      "p_at_k": v, "chance": 15 / 107, "preregistered": np.arange(N_CHOICES) == 0}))
        row = {"agent": "alm", "seed": s, "trained": True, "twin": "untrained-alm", "reference": "smollm2-135m",
               "chance": 15 / 107, "n_choices": N_CHOICES, "half_chance": 7 / 53}
        twin = {"agent": "untrained-alm", "seed": s, "trained": False, "twin": "", "reference": "smollm2-135m",
                "chance": 15 / 107, "n_choices": N_CHOICES, "half_chance": 7 / 53}
        for pre, v in (("", vals["alm"]), ("untrained_", vals["untrained-alm"])):
            figs = {"last_layer": float(v[0]), "split_half": float(np.median(v) + 0.05),
                    "split_half_last_layer": float(v[0] - 0.01), "median": float(np.median(v)),
                    "q05": float(np.quantile(v, 0.05)), "q95": float(np.quantile(v, 0.95))}
            row |= {pre + c: x for c, x in figs.items()}
            if pre:
                twin |= figs | {"split_half_choice": "agent L0 mean / L2 mean (9/20)"}
            else:
                row["split_half_choice"] = "agent L0 mean / L1 mean (15/20)"
        summ += [row, twin]
    return pd.concat(rows, ignore_index=True), pd.DataFrame(summ)


@pytest.fixture(scope="module")
def why_dir(synthetic_dir, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("alva-why-assets") / "assets"
    shutil.copytree(synthetic_dir, d)
    import os

    old = os.environ.get("ALVA_ASSETS_DIR")
    os.environ["ALVA_ASSETS_DIR"] = str(d)
    try:
        _write_trajectories(d)
    finally:
        os.environ.pop("ALVA_ASSETS_DIR") if old is None else os.environ.__setitem__("ALVA_ASSETS_DIR", old)
    return d


def _layouts():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _stand_in_layouts(load_embeddings)


@pytest.fixture
def why_env(why_dir, monkeypatch):
    from core import multiverse

    monkeypatch.setenv("ALVA_ASSETS_DIR", str(why_dir))
    results, summary = _fake_multiverse()
    monkeypatch.setattr(multiverse, "load_results", lambda directory=None: results.copy(), raising=False)
    monkeypatch.setattr(multiverse, "load_summary", lambda directory=None: summary.copy(), raising=False)
    _clear_caches()
    _layouts()
    yield {"dir": why_dir, "results": results, "summary": summary}
    _clear_caches()


@pytest.fixture
def bare_env(synthetic_dir, monkeypatch):  # noqa: F811
    """The synthetic assets: no trajectory, no multiverse."""
    from core import multiverse

    monkeypatch.setenv("ALVA_ASSETS_DIR", str(synthetic_dir))

    def missing(directory=None):
        raise FileNotFoundError("missing assets/multiverse/results.parquet; compute it with: python -m core multiverse")

    monkeypatch.setattr(multiverse, "load_results", missing, raising=False)
    monkeypatch.setattr(multiverse, "load_summary", missing, raising=False)
    _clear_caches()
    _layouts()
    yield synthetic_dir
    _clear_caches()


def _charts(at) -> dict[str, tuple[dict, pd.DataFrame]]:
    """Vega-Lite charts by their spec's description ("Learning curves: P@k", "Multiverse: alm-s0 vs ...", ...)."""
    return {spec.get("description", ""): (spec, df) for spec, df in _vega(at)}


def _chart(at, prefix: str) -> tuple[dict, pd.DataFrame]:
    hits = [v for k, v in _charts(at).items() if k.startswith(prefix)]
    assert len(hits) == 1, (prefix, list(_charts(at)))
    return hits[0]


def _curve(df: pd.DataFrame, model: str, seed: int) -> np.ndarray:
    c = df[(df["panel"] == "curve") & (df["model"] == model) & (df["seed"] == seed)].sort_values("step")
    assert c["step"].tolist() == STEPS
    return c["value"].to_numpy()


def _space(name, seed=None):
    return load_embeddings(name, seed)[0]


# ------------------------------------------------------------------------------------------ the page
def test_why_page_draws_the_data(why_env):
    at = _run("why", {"models": "alm,smollm2-135m,all-minilm-l6-v2"})
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Why they align"
    assert [t.label for t in at.tabs] == ["1. Alignment across learning", "2. What organises each space",
                                          "3. How robust is each number? The multiverse"]
    # only the open section is computed and sent (lazy tabs), and a folded table only once it is opened
    assert set(_charts(at)) == {"Learning curves: P@k", "Factor eta2 over training", "Success during training"}
    assert not [d for d in at.dataframe if "step" in d.value.columns]
    at.session_state["why_curves_fold"] = True
    at.run()
    charts = _charts(at)
    U0, T0, S = _space("untrained-alm", 0), _space("alm", 0), _space("smollm2-135m")
    # learning curves: P@15 of every snapshot; step 0 = the untrained agent, the last step = the shipped one
    spec, df = charts["Learning curves: P@k"]
    p = _curve(df, "smollm2-135m", 0)
    assert p[0] == pytest.approx(metrics.precision_at_k(U0, S, 15))
    assert p[-1] == pytest.approx(metrics.precision_at_k(T0, S, 15))
    assert set(df.loc[df["panel"] == "curve", "seed"]) == {0, 1}  # the seed spread
    band = df[(df["panel"] == "band") & (df["model"] == "smollm2-135m")].sort_values("step")
    both = np.vstack([_curve(df, "smollm2-135m", 0), _curve(df, "smollm2-135m", 1)])
    assert np.allclose(band["lo"], both.min(0)) and np.allclose(band["hi"], both.max(0))
    tab = next(d.value for d in at.dataframe if "step" in d.value.columns)  # the table under the curves
    assert tab["step"].tolist() == STEPS and np.allclose(tab["smollm2-135m"], p)
    assert any(b.label.startswith("Download the curves") for b in at.get("download_button"))
    assert df.loc[df["panel"] == "chance", "value"].tolist() == [pytest.approx(15 / 107)]  # the chance rule's row
    assert any(lay["mark"]["type"] == "rule" for lay in spec["layer"])
    # success: points only at the steps where the quick check ran (no interpolation)
    sspec, sdf = charts["Success during training"]
    assert {lay["mark"]["type"] for lay in sspec["layer"]} == {"point"}  # points, no line between them
    assert sorted(sdf.loc[sdf["seed"] == 0, "step"]) == sorted(SUCCESS_AT)
    assert dict(zip(sdf.loc[sdf["seed"] == 0, "step"], sdf.loc[sdf["seed"] == 0, "success"])) == SUCCESS_AT
    # the factor picture: eta2, LOO accuracy, neighbour shares for the agent, its untrained twin and each model
    at.session_state["section"] = "organisation"  # what the tab's click sets
    at.session_state["why_org_fold"] = True
    at.run()
    assert not at.exception and _qp(at, "section") == "organisation"
    charts = _charts(at)
    assert sum(k.startswith("Factor picture: ") for k in charts) == 3 and len(charts) == 3
    org = pd.concat([d for k, (_, d) in charts.items() if k.startswith("Factor picture: ")])
    assert set(org["space"]) == {"alm-s0", "untrained-alm-s0", "smollm2-135m", "all-minilm-l6-v2"}
    from core.controls import factor_separation, neighbour_factor_shares

    fs = factor_separation(T0).set_index("factor")
    eta = org[(org["space"] == "alm-s0") & (org["measure"].str.startswith("η²"))].set_index("factor")
    assert np.allclose(eta.loc[fs.index, "value"], fs["eta2"]) and np.allclose(eta.loc[fs.index, "chance"],
                                                                                fs["eta2_null"])
    otab = next(d.value for d in at.dataframe if "measure" in d.value.columns).set_index(["space", "measure"])
    assert np.allclose(otab.loc[("alm-s0", "η² (variance share)"), list(fs.index)].astype(float), fs["eta2"])
    sh = neighbour_factor_shares(S, 15).set_index("factor")
    got = org[(org["space"] == "smollm2-135m") & org["measure"].str.startswith("neighbour")].set_index("factor")
    assert np.allclose(got.loc[sh.index, "value"], sh["share"]) and np.allclose(got.loc[sh.index, "chance"],
                                                                                 sh["chance"])
    # the multiverse: one chart per pair with rows, the histogram of every choice (trained and untrained twin);
    # a link to the section opens it
    at = _run("why", {"models": "alm,smollm2-135m,all-minilm-l6-v2", "section": "multiverse"})
    assert not at.exception and at.session_state["section"] == "multiverse"
    charts = _charts(at)
    assert set(charts) == {"Multiverse: alm-s0 vs smollm2-135m"}
    mspec, hist = charts["Multiverse: alm-s0 vs smollm2-135m"]
    assert set(hist["agent"]) == {"alm-s0", "untrained-alm-s0"}
    assert np.allclose(hist.groupby("agent")["share"].sum(), 1) and set(hist["of"]) == {N_CHOICES}
    v = why_env["results"].query("agent == 'alm' and seed == 0")["p_at_k"].to_numpy()
    assert hist.loc[hist["agent"] == "alm-s0", "choices"].tolist() == np.histogram(v, np.linspace(0, 1, 51))[0].tolist()
    rules = next(lay for lay in mspec["layer"] if lay["mark"].get("type") == "rule" and "strokeDash" in lay["encoding"])
    row = why_env["summary"].query("seed == 0 and agent == 'alm'").iloc[0]
    assert any("agent L0 mean / L1 mean (15/20)" in m["about"] for m in rules["data"]["values"])
    assert {(m["agent"], m["dash"], round(m["value"], 9)) for m in rules["data"]["values"]} == {
        ("alm-s0", "last_layer", round(row["last_layer"], 9)), ("alm-s0", "split_half", round(row["split_half"], 9)),
        ("untrained-alm-s0", "last_layer", round(row["untrained_last_layer"], 9)),
        ("untrained-alm-s0", "split_half", round(row["untrained_split_half"], 9))}
    paper = next(lay for lay in mspec["layer"] if lay["mark"].get("type") == "rect" and "data" in lay)
    assert paper["data"]["values"][0]["lo"] == 0.70 and paper["data"]["values"][0]["hi"] == 0.73
    text = _texts(at)
    assert "No multiverse rows for alm-s0 vs all-minilm-l6-v2" in text
    # the summary: every number computed from the data
    u, t = metrics.precision_at_k(U0, S, 15), metrics.precision_at_k(T0, S, 15)
    assert f"reaches **{u:.2f}**; after 150 training steps, alm-s0 reaches **{t:.2f}**" in text
    assert f"by {abs(t - u):.2f}" in text and f"spans {row['q05']:.2f}–{row['q95']:.2f}" in text
    _valid_vega_lite(charts)


def _valid_vega_lite(charts) -> None:
    """Each spec passes the Vega-Lite schema (Altair's validation) and reads only fields its data has."""
    import json

    import altair as alt

    for name, (spec, df) in charts.items():
        alt.LayerChart.from_dict({**spec, "data": {"values": json.loads(df.head(5).to_json(orient="records"))}})
        fields = {lay["encoding"][c]["field"] for lay in spec["layer"] if "data" not in lay
                  for c in ("x", "y", "y2", "x2") if c in lay["encoding"]}
        assert fields <= set(df.columns), (name, fields - set(df.columns))


def test_deep_link_restores_the_selection_and_the_curve(why_env):
    params = {"instruction": INSTR[17], "k": "7", "models": "alm,smollm2-135m", "seed": "1", "metric": "rsa",
              "agent": "alm"}
    at = _run("why", params)
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert (ss["instruction"], ss["k"], ss["models"], ss["seed"], ss["metric"], ss["agent"]) == (
        INSTR[17], 7, ["alm", "smollm2-135m"], 1, "rsa", "alm")
    assert at.segmented_control(key="w_metric").value == "rsa"
    assert at.selectbox(key="w_instruction").value == INSTR[17]
    assert all(_qp(at, k) == v for k, v in params.items())  # mirrored in the address bar
    spec, df = _chart(at, "Learning curves: RSA")
    sel = df[(df["panel"] == "curve") & df["selected"].astype(bool)]
    assert set(sel["seed"]) == {1}
    U1, T1, S = _space("untrained-alm", 1), _space("alm", 1), _space("smollm2-135m")
    r = _curve(df, "smollm2-135m", 1)
    assert r[0] == pytest.approx(metrics.rsa(U1, S)) and r[-1] == pytest.approx(metrics.rsa(T1, S))
    assert "**alm-s1 vs smollm2-135m** (P@7" in _texts(at)
    # the selected instruction's own P@k over training
    at.segmented_control(key="w_metric").set_value("pk_instruction").run()
    assert _qp(at, "metric") == "pk_instruction"
    r = _curve(_chart(at, "Learning curves: P@k(i)")[1], "smollm2-135m", 1)
    assert r[0] == pytest.approx(metrics.per_item_precision(U1, S, 7)[17])
    assert r[-1] == pytest.approx(metrics.per_item_precision(T1, S, 7)[17])
    at.segmented_control(key="w_metric").set_value(None).run()  # cleared: back to P@k, not an error
    assert not at.exception and at.session_state["metric"] == "pk" and _qp(at, "metric") == "pk"
    at.segmented_control(key="w_metric").set_value("pk_instruction").run()
    before = {name: spec for name, (spec, _) in _charts(at).items()}
    at.slider(key="w_k").set_value(3).run()
    after = {name: spec for name, (spec, _) in _charts(at).items()}
    assert after == before  # a k move changes the charts' data only: the browser updates them in place
    r3 = _curve(_chart(at, "Learning curves: P@k(i)")[1], "smollm2-135m", 1)
    assert r3[-1] == pytest.approx(metrics.per_item_precision(T1, S, 3)[17]) and _qp(at, "k") == "3"


@pytest.mark.parametrize("params,needle,check", [
    ({"metric": "loss"}, "metric must be one of", lambda ss: ss["metric"] == "pk"),
    ({"section": "appendix"}, "section must be one of", lambda ss: ss["section"] == "learning"),
    ({"agent": "gpt-9"}, "unknown agent", lambda ss: ss["agent"] == "alm"),
    ({"seed": "77"}, "not shipped", lambda ss: ss["seed"] == 0),
    ({"k": "500"}, "1 <= k <= n-1 = 107", lambda ss: ss["k"] == 15),
    ({"models": "gpt-9,smollm2-135m"}, "Unknown model", lambda ss: ss["models"] == ["smollm2-135m"]),
])
def test_bad_link_gives_a_clear_message(why_env, params, needle, check):
    at = _run("why", params)
    assert not at.exception, [e.message for e in at.exception]
    assert needle in " ".join(w.value for w in at.warning).replace("\\", "")
    assert check(at.session_state)
    assert _chart(at, "Learning curves: ")  # the page still draws, on the valid selection


def test_missing_trajectory_and_multiverse_say_not_computed(bare_env):
    at = _run("why", {"models": "alm,smollm2-135m"})
    assert not at.exception, [e.message for e in at.exception]
    codes = [c.value for c in at.code]
    assert any("python -m core train" in c and "--record" in c for c in codes)
    charts = _charts(at)
    assert not [k for k in charts if k.startswith(("Learning curves", "Success"))]
    mv = _run("why", {"models": "alm,smollm2-135m", "section": "multiverse"})
    assert not mv.exception and "python -m core multiverse" in [c.value for c in mv.code]
    assert not [k for k in _charts(mv) if k.startswith("Multiverse")]
    text = _texts(at)
    assert "not computed" in text
    u = metrics.precision_at_k(_space("untrained-alm", 0), _space("smollm2-135m"), 15)
    assert f"reaches **{u:.2f}**; after training" in text  # the summary needs no trajectory


def test_corrupt_trajectory_is_reported(why_dir, tmp_path, monkeypatch):
    d = tmp_path / "assets"
    shutil.copytree(why_dir, d)
    (d / "trajectories" / "alm-s1.npz").write_bytes(b"not a zip file")
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(d))
    _clear_caches()
    _layouts()
    at = _run("why", {"models": "alm,smollm2-135m", "seed": "1"})
    assert not at.exception, [e.message for e in at.exception]
    assert "corrupt trajectory file" in " ".join(e.value for e in at.error)
    _clear_caches()


def test_overview_states_what_learning_does(why_env):
    at = _run()
    assert not at.exception
    text = _texts(at)
    S, M = _space("smollm2-135m"), _space("all-minilm-l6-v2")
    U0, T0 = _space("untrained-alm", 0), _space("alm", 0)
    for X, name in ((S, "smollm2-135m"), (M, "all-minilm-l6-v2")):
        u, t = metrics.precision_at_k(U0, X, 15), metrics.precision_at_k(T0, X, 15)
        assert f"{name} {u:.2f} → {t:.2f}" in text
    assert "What learning does" in text
    assert any("why" in link.proto.page for link in at.get("page_link"))


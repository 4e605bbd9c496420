"""The instruction set in the dashboard (issue 15): URL key ``set``, the set views of the pages, the Instruction sets
page. AppTest (in-process, no browser) on a small fixture: paper108 spaces plus a ``+location`` set (630 items) of
structured random embeddings, and hand-written scaling tables; one test renders the shipped ``+colourless``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import metrics, report, store
from core.instructions import instruction_set, preset

from apptest_helpers import clear_caches as _clear, query_param as _qp, run_page as _run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
P108 = instruction_set()
LOC = instruction_set(preset("+location"))
ON_LEFT = "pick up the red key on your left"








def _ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "code", "title", "header", "subheader"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    return "\n".join(parts)


def _vega(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """(spec, data) of every Vega-Lite chart."""
    import pyarrow as pa

    return [(json.loads(c.proto.spec), pa.ipc.open_stream(c.proto.data.data).read_all().to_pandas())
            for c in at.get("vega_lite_chart")]


def _space(items: list[str], dim: int, noise: float, seed: int) -> np.ndarray:
    """Rows structured by the instructions' words (so neighbours mean something), plus noise."""
    vocab = sorted({w for t in items for w in t.split()})
    F = np.array([[w in t.split() for w in vocab] for t in items], dtype=np.float64)
    r = np.random.default_rng(seed)
    return F @ r.normal(size=(len(vocab), dim)) + noise * r.normal(size=(len(items), dim)) + 0.01


def _man(name: str, fam: str) -> dict:
    return {"model": name, "family": fam, "source": "synthetic (tests only)", "weights_sha256": "n/a",
            "pooling": "test", "layer": "test", "dtype": "float32"}


def _write(d: Path, tables: bool) -> None:
    emb = d / "embeddings"
    for s in (0, 1):
        store.save_embeddings(f"alm-s{s}", _space(P108, 32, 0.3, 10 + s), P108, _man("alm", "agent"), emb)
        store.save_embeddings(f"untrained-alm-s{s}", _space(P108, 32, 2.0, 20 + s), P108,
                              _man("untrained-alm", "agent"), emb)
    store.save_embeddings("smollm2-135m", _space(P108, 24, 0.5, 11), P108, _man("smollm2-135m", "decoder LM"), emb)
    loc = d / "instruction_sets" / "location" / "embeddings"
    for s in (0, 1):
        store.save_embeddings(f"alm-location-s{s}", _space(LOC, 32, 0.4, 30 + s), LOC, _man("alm-location", "agent"),
                              loc, storage="float16")
        store.save_embeddings(f"untrained-alm-location-s{s}", _space(LOC, 32, 2.0, 40 + s), LOC,
                              _man("untrained-alm-location", "agent"), loc, storage="float16")
    store.save_embeddings("smollm2-135m", _space(LOC, 24, 0.5, 12), LOC, _man("smollm2-135m", "decoder LM"), loc,
                          storage="float16")
    store.save_embeddings("bag-of-words", _space(LOC, 16, 0.0, 13), LOC, _man("bag-of-words", "baseline"), loc)
    if not tables:
        return
    root = d / "instruction_sets"
    rows = []
    for view, k108, kw in (("common 108", 15, 15), ("whole set", 15, 88)):
        for name, n in (("paper108", 108), ("+location", 630)):
            for agent, base in (("alm", 0.6), ("untrained-alm", 0.3)):
                for ref, off in (("smollm2-135m", 0.0), ("bag-of-words", 0.1)):
                    rows.append({"view": view, "set": name, "n": n, "agent": agent, "reference": ref,
                                 "mean": base + off - (0.05 if n > 108 else 0), "sd": 0.02, "seeds": 2,
                                 "k": k108 if (view == "common 108" or n == 108) else kw})
    pd.DataFrame(rows).to_csv(root / "curve.csv", index=False)
    pd.DataFrame([{"set": "paper108", "n": 108, "vocabulary": 17, "words": "", "k_whole": 15, "chance_whole": 15 / 107,
                   "agents": 2},
                  {"set": "+location", "n": 630, "vocabulary": 24, "words": "", "k_whole": 88,
                   "chance_whole": 88 / 629, "agents": 2}]).to_csv(root / "sets.csv", index=False)
    pd.DataFrame([{"set": "+location", "run": f"alm-location-s{s}", "seed": s, "overall": 0.9 - s / 100,
                   "paper108_items": 0.95, "episodes_per_instruction": 5, "steps": 100} for s in (0, 1)]
                 ).to_csv(root / "success.csv", index=False)
    for f in ("common108", "whole"):
        pd.DataFrame([{"set": "+location", "n": 630, "agent": "alm", "seed": 0, "reference": "smollm2-135m",
                       "k": 15, "precision": 0.5}]).to_csv(root / f"{f}.csv", index=False)
    (root / "manifest.json").write_text(json.dumps({"what": "synthetic (tests only)"}))


@pytest.fixture(scope="session")
def sets_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("alva-sets-assets")
    _write(d, tables=True)
    return d


@pytest.fixture
def sets_assets(sets_dir, monkeypatch):
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(sets_dir))
    _clear()
    yield sets_dir
    _clear()


# ------------------------------------------------------------------------------------------ core helper
def test_neighbours_of_is_a_row_of_neighbours():
    r = np.random.default_rng(0)
    X = np.repeat(r.normal(size=(40, 5)), 2, axis=0)  # exact duplicates: ties broken by index
    idx, sim = metrics.neighbours(X, 9, return_similarity=True)
    for i in (0, 1, 17, 79):
        j, s = metrics.neighbours_of(X, i, 9, return_similarity=True)
        assert j.tolist() == idx[i].tolist()
        np.testing.assert_allclose(s, sim[i])
    with pytest.raises(ValueError):
        metrics.neighbours_of(X, 80, 3)


# ------------------------------------------------------------------------------------------ URL key
def test_set_key_round_trips_in_the_url(sets_assets):
    at = _run("neighbours", {"set": "+location", "instruction": ON_LEFT, "k": "40"})
    _ok(at)
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["set"] == "+location" and ss["instruction"] == ON_LEFT and ss["k"] == 40
    assert _qp(at, "set") == "+location" and _qp(at, "instruction") == ON_LEFT and _qp(at, "k") == "40"
    assert at.sidebar.selectbox(key="w_set").value == "+location"
    # the sidebar selector changes the set for every page, and the URL follows; the instruction (not in paper108)
    # and k (above 107) are brought into the set
    at.sidebar.selectbox(key="w_set").set_value("paper108").run()
    _ok(at)
    assert _qp(at, "set") == "paper108"
    assert at.session_state["instruction"] == P108[0] and at.session_state["k"] == 40
    at.sidebar.selectbox(key="w_set").set_value("+location").run()
    at.slider(key="w_set_k").set_value(300).run()
    at.sidebar.selectbox(key="w_set").set_value("paper108").run()
    assert at.session_state["k"] == 107 and _qp(at, "k") == "107"


@pytest.mark.parametrize("raw,want,needle", [
    ("+nonsense", "paper108", "instruction set must be one of the shipped sets: paper108, +location"),
    ("+sequence", "paper108", "instruction set must be one of"),  # a preset, but not shipped here
    ("<b>x</b>", "paper108", "Ignored"),
    (" location", "+location", None),  # '+' decoded as a space in a hand-typed link
    ("location", "+location", None),
])
def test_bad_set_value_falls_back_with_a_message(sets_assets, raw, want, needle):
    at = _run("neighbours", {"set": raw})
    _ok(at)
    assert at.session_state["set"] == want and _qp(at, "set") == want
    warnings = " ".join(w.value for w in at.warning).replace("\\", "")
    if needle is None:
        assert not warnings
    else:
        assert needle in warnings


def test_an_instruction_outside_the_set_is_refused(sets_assets):
    at = _run("neighbours", {"instruction": ON_LEFT})  # paper108 (the default) has no locations
    _ok(at)
    assert at.session_state["instruction"] == P108[0]
    assert "Ignored" in " ".join(w.value for w in at.warning)


# ------------------------------------------------------------------------------------------ pages on a set
def test_pages_render_on_shipped_colourless(monkeypatch):
    monkeypatch.delenv("ALVA_ASSETS_DIR", raising=False)
    _clear()
    from core.scaling import available_sets, spaces

    if "+colourless" not in available_sets():
        pytest.skip("+colourless is not shipped")
    sp = spaces("+colourless")
    for page in ("overview", "precision", "neighbours"):
        at = _run(page, {"set": "+colourless"}, timeout=300)
        _ok(at)
        assert at.session_state["set"] == "+colourless"
        assert "+colourless" in _texts(at)
    # the P@k page's table: P@k of each space against the reference, equal to core.metrics at that k
    at = _run("precision", {"set": "+colourless", "k": "9"}, timeout=300)
    tab = next(d.value for d in at.dataframe if "P@k" in d.value.columns)
    ref = tab["reference"].iloc[0]
    assert len(tab) >= 2 and (tab["k"] == 9).all()
    def arr(label: str):  # a space's label: its name, or <name>-s<seed> for the agents' seeds
        if label in sp:
            return sp[label][0]
        name, seed = label.rsplit("-s", 1)
        return sp[name][int(seed)]

    for _, row in tab.iterrows():
        want = metrics.precision_at_k(arr(ref), arr(row["model"]), 9)
        assert row["P@k"] == pytest.approx(want)
    _clear()


def test_neighbours_search_paging_and_lists_on_a_large_set(sets_assets):
    at = _run("neighbours", {"set": "+location", "k": "12", "models": "alm,smollm2-135m"})
    _ok(at)
    assert not at.get("plotly_chart") and not at.get("vega_lite_chart")  # no figure of 630 labels
    at.text_input(key="w_set_search").set_value("red key behind").run()
    _ok(at)
    hits = next(d.value for d in at.dataframe if "#" in d.value.columns)
    want = [i for i, t in enumerate(LOC) if all(w in t for w in ("red", "key", "behind"))]
    assert hits["#"].tolist() == want[:50] and len(want) > 0
    assert all("behind" in t for t in hits["instruction"])
    # paging over every instruction: 25 per page, page 3 shows items 50..74
    at.text_input(key="w_set_search").set_value("").run()
    at.selectbox(key="w_set_page_size").set_value(25).run()
    at.number_input(key="w_set_page").set_value(3).run()
    _ok(at)
    page = next(d.value for d in at.dataframe if "#" in d.value.columns)
    assert page["#"].tolist() == list(range(50, 75))
    # clicking a row selects that instruction; the neighbour lists follow (one column per model, k rows)
    at.session_state["set_search_+location__3_25"] = {"selection": {"rows": [4], "columns": [], "cells": []}}
    at.run()
    _ok(at)
    assert at.session_state["instruction"] == LOC[54]
    grid = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert len(grid) == 12 and {"alm-s0", "smollm2-135m"} <= set(grid.columns)
    from core.scaling import spaces

    sp = spaces("+location")
    for col, E in (("alm-s0", sp["alm"][0]), ("smollm2-135m", sp["smollm2-135m"][0])):
        want = [LOC[j] for j in metrics.neighbours(E, 12)[54]]
        got = [c.split(" · ")[0].removeprefix("✓ ") for c in grid[col]]
        assert got == want
    shared = set(metrics.neighbours(sp["alm"][0], 12)[54])
    marks = [c.startswith("✓ ") for c in grid["smollm2-135m"]]
    assert marks == [j in shared for j in metrics.neighbours(sp["smollm2-135m"][0], 12)[54]]
    assert _qp(at, "instruction") == LOC[54]


def test_overview_and_precision_on_a_large_set(sets_assets):
    from core.scaling import scaled_k, spaces

    sp = spaces("+location")
    at = _run("overview", {"set": "+location"})
    _ok(at)
    tab = next(d.value for d in at.dataframe if "P@k" in d.value.columns)
    k = scaled_k(630)
    assert set(tab["space"]) == {"untrained-alm-s0", "untrained-alm-s1", "smollm2-135m", "bag-of-words"}
    row = tab[tab["space"] == "smollm2-135m"].iloc[0]
    assert row["k"] == k and row["P@k"] == pytest.approx(metrics.precision_at_k(sp["alm"][0], sp["smollm2-135m"][0], k))
    at = _run("precision", {"set": "+location", "k": "20", "models": "smollm2-135m,bag-of-words,untrained-alm"})
    _ok(at)
    (cspec, curves), (_, at_k) = _vega(at)  # the curve over every k (630 <= CURVE_MAX_N), and P@k at k = 20
    got = curves[curves["space"] == "smollm2-135m"].sort_values("k")["P@k"].to_numpy()
    np.testing.assert_allclose(got, metrics.precision_curve(sp["alm"][0], sp["smollm2-135m"][0]))
    assert (at_k["k"] == 20).all() and len(at_k) == 4  # untrained-alm: both seeds
    assert set(at_k["space"]) == {"smollm2-135m", "bag-of-words", "untrained-alm-s0", "untrained-alm-s1"}


def test_procrustes_on_a_large_set_draws_points_without_labels(sets_assets, tmp_path, monkeypatch):
    from core.scaling import spaces

    monkeypatch.setenv("ALVA_CACHE_DIR", str(tmp_path / "cache"))  # a fresh diskcache: no layout cached yet

    sp = spaces("+location")
    arrays = {"alm-s0": sp["alm"][0], "smollm2-135m": sp["smollm2-135m"][0]}
    params = {"set": "+location", "models": "smollm2-135m", "instruction": ON_LEFT}
    at = _run("procrustes", params)
    _ok(at)
    # 630 x 2 points and no layout cached: the page asks before a UMAP fit of minutes
    assert not at.get("plotly_chart") and at.button(key="set_layout_button")
    assert any("1,260 points" in i.value for i in at.info)
    # once the layout is in the cache (a stand-in here: the first two columns) it is drawn at once
    order = report.joint_order(arrays, "alm-s0")
    xy = np.vstack([np.asarray(arrays[m], dtype=np.float64)[:, :2] for m in order])
    store.cached("report.joint", report.joint_params(arrays, "alm-s0"), lambda: {"xy": xy})
    _clear()
    at = _run("procrustes", params)
    _ok(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = spec["data"]
    assert all(t.get("mode") == "markers" and "text" not in t for t in traces)
    hover = [h for t in traces if t.get("hovertemplate", "").endswith("alm-s0</extra>") for h in t["hovertext"]]
    assert sorted(hover) == sorted(LOC)
    ringed = [t for t in traces if "selected" in t.get("hovertemplate", "")]
    assert len(ringed) == 2 and all(t["hovertext"] == [ON_LEFT] for t in ringed)


def test_paper108_pages_say_so_and_use_paper108(sets_assets):
    at = _run("generalisation", {"set": "+location", "instruction": ON_LEFT, "k": "300"})
    _ok(at)
    assert any("paper108 set only" in i.value for i in at.info)
    assert at.session_state["instruction"] == P108[0] and at.session_state["k"] == 107
    assert at.session_state["set"] == "+location"


# ------------------------------------------------------------------------------------------ Instruction sets page
def test_sets_page_curve_success_and_csv(sets_assets):
    at = _run("sets")
    _ok(at)
    curve = pd.read_csv(sets_assets / "instruction_sets" / "curve.csv")
    charts = _vega(at)
    assert len(charts) == 3  # common 108, whole set, success
    for (spec, plot), view in zip(charts[:2], ("common 108", "whole set")):
        want = curve[curve["view"] == view]
        assert spec["title"] == view and len(plot) == len(want)  # the untrained agent is shown by default
        np.testing.assert_allclose(np.sort(plot["mean"]), np.sort(want["mean"]))
        np.testing.assert_allclose(plot["hi"] - plot["lo"], 2 * plot["sd"])
        np.testing.assert_allclose(plot["chance"], plot["k"] / ((108 if view == "common 108" else plot["n"]) - 1))
    at.toggle(key="sets_untrained").set_value(False).run()
    assert set(_vega(at)[0][1]["agent"]) == {"alm"}
    names = [b.proto.label for b in at.get("download_button")]
    assert any("curve" in n for n in names) and any("success" in n for n in names)
    assert "0.90 on paper108 items" in _texts(at)


def test_sets_page_when_not_shipped_shows_the_command(tmp_path, monkeypatch):
    _write(tmp_path, tables=False)
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(tmp_path))
    _clear()
    at = _run("sets")
    _ok(at)
    assert at.info and "python -m core scaling --ship" in "\n".join(c.value for c in at.code)
    _clear()

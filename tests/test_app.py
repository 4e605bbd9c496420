"""AppTest suite of the dashboard (streamlit.testing.v1.AppTest: the real scripts, in-process, no browser).

Two asset sets:
* the shipped ``assets/`` (every page must render without an exception, whatever is shipped);
* a small synthetic assets dir written here (test-only embeddings with registry names, one untrained agent
  checkpoint, precomputed stand-in layouts), on which the behaviour is asserted exactly.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import report, store
from core.instructions import COLOURS, instruction_set

from apptest_helpers import clear_caches as _clear_caches, query_param as _qp, run_page as _run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
INSTR = instruction_set()
PAGES = ["overview", "agent", "neighbours", "precision", "procrustes", "why", "generalisation"]
SYN_MODELS = ["smollm2-135m", "all-minilm-l6-v2"]  # registry names, synthetic arrays (tests only)








def _specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _values(v) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array {"dtype": ..., "bdata": base64}."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        flat = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float)
        return flat.reshape([int(d) for d in str(v["shape"]).split(",")]) if "shape" in v else flat
    return np.array(v, dtype=float)


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "code", "title", "header", "subheader"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    return "\n".join(parts)


def _tables(at: AppTest, column: str) -> list:
    return [d.value for d in at.dataframe if column in d.value.columns]


# ------------------------------------------------------------------------------------------ synthetic assets
def _write_synthetic(d: Path) -> None:
    from core.baselines import bag_of_words, factors

    rng = np.random.default_rng(0)
    F = factors().astype(np.float64)  # (108, n_factor_levels) one-hot

    def space(w_scale, noise, dim, seed):
        r = np.random.default_rng(seed)
        W = r.normal(size=(F.shape[1], dim)) * w_scale
        return F @ W + noise * r.normal(size=(F.shape[0], dim)) + 0.01

    man = lambda name, fam: {"model": name, "family": fam, "source": "synthetic (tests only)",  # noqa: E731
                             "weights_sha256": "n/a", "pooling": "test", "layer": "test", "dtype": "float32"}
    emb = d / "embeddings"
    for s in (0, 1):
        store.save_embeddings(f"alm-s{s}", space(1.0, 0.3, 128, 10 + s), INSTR, man("alm", "agent"), emb)
        store.save_embeddings(f"untrained-alm-s{s}", space(1.0, 2.0, 128, 20 + s), INSTR,
                              man("untrained-alm", "agent"), emb)
    store.save_embeddings("smollm2-135m", space(1.0, 0.5, 64, 11), INSTR, man("smollm2-135m", "decoder LM"), emb)
    store.save_embeddings("all-minilm-l6-v2", space(1.0, 1.5, 32, 12), INSTR,
                          man("all-minilm-l6-v2", "encoder LM"), emb)
    store.save_embeddings("bag-of-words", bag_of_words(), INSTR, man("bag-of-words", "baseline"), emb)
    del rng
    # one (untrained) agent checkpoint so that the Agent page can play an episode
    from core.agent import AgentConfig, build_agent, save_checkpoint

    save_checkpoint(build_agent(AgentConfig(), 0), d / "agents" / "alm-s0.pt",
                    {"name": "alm", "seed": 0, "success": {"overall": 0.5, "per_verb_object": {
                        "go to ball": 0.25, "open door": 0.75}}, "note": "synthetic test agent"})


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("alva-app-assets")
    _write_synthetic(d)
    return d


@pytest.fixture
def synthetic(synthetic_dir, monkeypatch):
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(synthetic_dir))
    _clear_caches()
    # stand-in layouts (first two principal components) in the cache, so no UMAP fit runs in the tests
    from threadpoolctl import threadpool_limits

    from core.embedders import load_embeddings

    with threadpool_limits(limits=1, user_api="blas"):
        _stand_in_layouts(load_embeddings)
    yield synthetic_dir
    _clear_caches()


#: the joint layouts the tests draw: (reference, others); the first three are the Procrustes page's default
#: selections (both agent seeds, and after switching the reference)
JOINT_SELECTIONS = [(("alm", 0), [("smollm2-135m", None), ("all-minilm-l6-v2", None)]),
                    (("alm", 1), [("smollm2-135m", None), ("all-minilm-l6-v2", None)]),
                    (("smollm2-135m", None), [("alm", 0), ("all-minilm-l6-v2", None)]),
                    (("alm", 0), [("smollm2-135m", None), ("all-minilm-l6-v2", None), ("bag-of-words", None)])]


def _stand_in_layouts(load_embeddings):
    for name, seed in [("alm", 0), ("alm", 1), ("smollm2-135m", None), ("all-minilm-l6-v2", None),
                       ("bag-of-words", None), ("untrained-alm", 0), ("untrained-alm", 1)]:
        X = load_embeddings(name, seed)[0].astype(np.float64)
        Xc = X - X.mean(0)
        xy = np.linalg.svd(Xc, full_matrices=False)[0][:, :2]
        store.cached("report.umap", report.layout_params(X), lambda xy=xy: {"xy": xy})
    from core import projection

    for ref, others in JOINT_SELECTIONS:  # joint layouts: the first two principal components of the aligned stack
        spaces = {report.stem(n, s): load_embeddings(n, s)[0] for n, s in [ref, *others]}
        order = report.joint_order(spaces, report.stem(*ref))
        _, al, *_ = projection.align_spaces({m: spaces[m] for m in order}, order[0], dims=report.JOINT["dims"],
                                            scale=report.JOINT["scale"])
        Y = np.vstack([al[m] for m in order])
        Y = Y - Y.mean(0)
        xy = Y @ np.linalg.svd(Y, full_matrices=False)[2][:2].T
        store.cached("report.joint", report.joint_params(spaces, order[0]), lambda xy=xy: {"xy": xy})


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.delenv("ALVA_ASSETS_DIR", raising=False)
    _clear_caches()
    yield store.assets_dir()
    _clear_caches()


# ------------------------------------------------------------------------------------------ shipped assets
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_shipped_assets(shipped, page):
    at = _run(page, timeout=180)
    assert not at.exception, [e.message for e in at.exception]
    assert at.title and at.title[0].value


# ------------------------------------------------------------------------------------------ overview
def test_overview_headline_and_not_computed(synthetic):
    at = _run()
    assert not at.exception
    assert not _tables(at, "P@15") and not _tables(at, "success")  # folded under the figures: not sent until opened
    at.session_state["headline_fold"] = at.session_state["success_fold"] = True  # what opening them sets
    at.run()
    models = _tables(at, "P@15")
    assert models, "no headline table"
    df = models[0]
    assert set(SYN_MODELS) <= set(df["model"])
    row = df[df["model"] == "smollm2-135m"].iloc[0]
    assert 0 <= row["P@15"] <= 1 and row["chance"] == pytest.approx(15 / 107)
    assert row["paper (reported)"].startswith("decoder-only LLMs")
    text = _texts(at)
    assert "Not computed here" in text and "llama-3.2-1b" in text
    assert re.search(r"untrained\*\* agent \(`untrained-alm-s0`.*P@15 = \*\*0\.\d\d\*\* against bag-of-words", text)
    inv = _tables(at, "compute command")[0]
    llama = inv[inv["name"] == "llama-3.2-1b"].iloc[0]
    assert not llama["present"] and "python -m core embed --model llama-3.2-1b" in llama["compute command"]
    succ = _tables(at, "success")[0]
    assert succ["success"].iloc[0] == pytest.approx(0.5)
    spec, plot = next((s, p) for s, p in _vega(at) if "level" in p)  # success per verb-object form, one dot each
    assert dict(zip(plot["level"], plot["success"])) == {"overall": 0.5, "go to ball": 0.25, "open door": 0.75}
    assert (plot["agent"] == "alm-s0").all()


def test_overview_headline_figure_holds_the_tables_numbers(synthetic):
    """The headline figure: one mark per model present with the numbers of core.report.headline_table (point,
    CI, permutation band, agent-seed range, paper range), chance and the reference rows as rules."""
    at = _run()
    assert not at.exception
    (spec, plot), *_ = _vega(at)
    table = report.headline_table(report.REFERENCE, 0, 15)
    models = table[(table["kind"] == report.KIND_MODEL) & table["present"]].set_index("model")
    assert list(plot["model"]) == list(models.index) and set(SYN_MODELS) <= set(plot["model"])  # one row each
    point = next(lay for lay in spec["layer"] if lay["mark"]["type"] == "point")
    assert point["encoding"]["x"]["field"] == "p" and "data" not in point  # drawn from the chart's data
    plot = plot.set_index("model")
    for col, field in [("P@15", "p"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("null_low", "null_low"),
                       ("null_high", "null_high"), ("seed_min", "seed_min"), ("seed_max", "seed_max"),
                       ("paper_low", "paper_low"), ("paper_high", "paper_high"), ("p_perm", "p_perm")]:
        assert np.allclose(plot[field].astype(float), models[col].astype(float), equal_nan=True), col
    assert (plot["ci_low"] <= plot["p"]).all() and (plot["p"] <= plot["ci_high"]).all()
    assert (plot["seed_min"] < plot["seed_max"]).all()  # two agent seeds in the synthetic assets
    assert plot.loc["smollm2-135m", "paper_low"] == pytest.approx(0.70)  # a decoder LM: the paper's LLM range
    bands = {(lay["encoding"]["x"]["field"], lay["encoding"]["x2"]["field"]) for lay in spec["layer"]
             if "x2" in lay["encoding"]}
    assert {("ci_low", "ci_high"), ("seed_min", "seed_max"), ("null_low", "null_high"),
            ("paper_low", "paper_high")} <= bands
    chance = next(lay for lay in spec["layer"] if lay["encoding"]["x"]["field"] == "chance")
    assert [v["chance"] for v in chance["data"]["values"]] == [pytest.approx(15 / 107)]
    rules = next(lay for lay in spec["layer"] if lay.get("data") and "reference" in lay["data"]["values"][0])
    marks = {m["reference"]: m["p"] for m in rules["data"]["values"]}
    by_name = table.set_index("model")["P@15"]
    assert marks == {"untrained agent": pytest.approx(by_name["untrained-alm"]),
                     "bag-of-words": pytest.approx(by_name["bag-of-words"]),
                     "another agent seed": pytest.approx(by_name["alm"])}
    tips = {t["field"] for t in point["encoding"]["tooltip"]}
    assert {"p", "ci_low", "ci_high", "p_perm", "seed_mean", "paper"} <= tips  # hover shows the numbers
    assert any(b.label.startswith("Download the headline table") for b in at.get("download_button"))


# ------------------------------------------------------------------------------------------ neighbours
def _neighbour_grid(at):
    grids = _tables(at, "rank")
    return grids[0] if grids else None


def _neighbour_tables(at):
    """The neighbour grid (one column per model, cells "[✓ ]instruction · cosine") as one frame per model with
    columns neighbour, cosine, agent (✓ or "")."""
    grid = _neighbour_grid(at)
    if grid is None:
        return []
    out = []
    for col in grid.columns.drop("rank"):
        parsed = [re.fullmatch(r"(✓ )?(.+) · (-?\d\.\d{3})", c).groups() for c in grid[col]]
        out.append(pd.DataFrame({"neighbour": [p[1] for p in parsed], "cosine": [float(p[2]) for p in parsed],
                                 "agent": ["✓" if p[0] else "" for p in parsed]}, index=grid["rank"].to_numpy()))
        out[-1].attrs["model"] = col
    return out


def test_neighbours_respond_to_instruction_k_and_models(synthetic):
    at = _run("neighbours")
    assert not at.exception
    tabs = _neighbour_tables(at)
    assert len(tabs) == 3  # alm + the two present models (default selection)
    assert all(len(t) == 15 for t in tabs)
    first = tabs[1]["neighbour"].tolist()
    at.selectbox(key="w_instruction").set_value(INSTR[40]).run()
    assert at.session_state["instruction"] == INSTR[40] and _qp(at, "instruction") == INSTR[40]
    assert _neighbour_tables(at)[1]["neighbour"].tolist() != first
    assert INSTR[40] not in _neighbour_tables(at)[1]["neighbour"].tolist()  # self excluded
    at.slider(key="w_k").set_value(5).run()
    assert all(len(t) == 5 for t in _neighbour_tables(at)) and _qp(at, "k") == "5"
    at.multiselect(key="w_models").set_value(["alm", "bag-of-words"]).run()
    agent, bow = _neighbour_tables(at)
    assert (agent.attrs["model"], bow.attrs["model"]) == ("alm-s0", "bag-of-words") and _qp(at, "models") == \
        "alm,bag-of-words"
    # ✓ marks exactly the neighbours the agent shares; cosines are nearest first
    assert set(agent["agent"]) == {""}
    assert [a == "✓" for a in bow["agent"]] == [n in set(agent["neighbour"]) for n in bow["neighbour"]]
    assert bow["cosine"].is_monotonic_decreasing
    header = _neighbour_grid(at)
    assert list(header.columns) == ["rank", "alm-s0", "bag-of-words"] and list(header["rank"]) == [1, 2, 3, 4, 5]
    labels = {c: v.get("label") for c, v in json.loads(next(d for d in at.dataframe if "rank" in d.value.columns)
                                                    .proto.columns).items()}
    shared = sum(a == "✓" for a in bow["agent"])  # the header's P@k is the share of ✓ in the column
    assert labels["bag-of-words"] == f"bag-of-words · P@5 {shared / 5:.2f}" and labels["alm-s0"] == "alm-s0 (agent)"
    assert any(b.label.startswith("Download these neighbours") for b in at.get("download_button"))


def test_clicking_a_neighbour_selects_it(synthetic):
    at = _run("neighbours")
    click = {"selection": {"rows": [], "columns": [], "cells": [[2, "smollm2-135m"]]}}
    for _ in range(2):  # the same cell twice: the grid (one key for every instruction) shows the new neighbours
        target = _neighbour_tables(at)[1]["neighbour"].iloc[2]
        assert target != at.session_state["instruction"]
        at.session_state["nb_grid"] = click
        at.run()
        assert not at.exception
        assert at.session_state["instruction"] == target
        assert _qp(at, "instruction") == target
        assert not at.session_state["nb_grid"]["selection"]["cells"]  # cleared once acted on: no stale highlight


def test_neighbours_link_to_agent_page_and_disagreement_ranking(synthetic):
    at = _run("neighbours")
    links = at.get("page_link")
    assert links and "agent" in links[0].proto.page
    from urllib.parse import parse_qs

    q = parse_qs(links[0].proto.query_string)
    assert q["instruction"] == [at.session_state["instruction"]] and q["seed"] == ["0"]
    rank = _tables(at, "mean P@15")[0]
    assert len(rank) == 108 and rank["mean P@15"].is_monotonic_increasing
    key = "disagree_smollm2-135m_all-minilm-l6-v2"  # no instruction or k in the key: updated in place
    instr = at.session_state["instruction"]
    mine = int(np.flatnonzero(rank["instruction"] == instr)[0])
    at.session_state[key] = {"selection": {"rows": [mine], "columns": [], "cells": []}}  # its own row: no change
    at.run()
    assert at.session_state["instruction"] == instr
    assert not at.session_state[key]["selection"]["rows"]  # cleared once acted on
    at.slider(key="w_k").set_value(3).run()  # the ranking at k = 3 differs at that row: nothing selects it again
    assert _tables(at, "mean P@3")[0]["instruction"].iloc[mine] != instr
    assert at.session_state["instruction"] == instr
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # a click on the top row
    at.run()
    assert at.session_state["instruction"] == _tables(at, "mean P@3")[0]["instruction"].iloc[0] != instr


def test_neighbours_agreement_grid_holds_per_item_precision(synthetic):
    from core import metrics
    from core.embedders import load_embeddings

    at = _run("neighbours", {"k": "7"})
    assert not at.exception
    (spec, plot), = _vega(at)
    A = load_embeddings("alm", 0)[0]
    lms = [load_embeddings(m)[0] for m in SYN_MODELS]  # the language models among the default models
    want = np.mean([metrics.per_item_precision(A, B, 7) for B in lms], axis=0)
    assert list(plot["instruction"]) == INSTR and np.allclose(plot["p"], want)
    assert len(set(zip(plot["form"], plot["colour"]))) == 9 * 6  # one cell per verb-object form and colour
    assert spec["layer"][0]["encoding"]["color"]["aggregate"] == "mean"
    assert _vega(_run("neighbours"))[0][0] == spec and set(plot["k"]) == {7}  # k in the data: a k move sends data


def test_deep_link_opens_the_right_state(synthetic):
    params = {"instruction": INSTR[17], "k": "7", "models": "alm,smollm2-135m", "seed": "1"}
    at = _run("neighbours", params)
    assert not at.exception and not at.warning
    ss = at.session_state
    assert ss["instruction"] == INSTR[17] and ss["k"] == 7 and ss["models"] == ["alm", "smollm2-135m"]
    assert ss["seed"] == 1
    tabs = _neighbour_tables(at)
    assert len(tabs) == 2 and len(tabs[0]) == 7
    assert at.selectbox(key="w_instruction").value == INSTR[17]
    assert "alm-s1" in _texts(at)


@pytest.mark.parametrize("params,needle,check", [
    ({"instruction": "fly to the moon"}, "unknown word", lambda ss: ss["instruction"] == INSTR[0]),
    ({"instruction": "<script>alert(1)</script>"}, "Ignored", lambda ss: ss["instruction"] == INSTR[0]),
    ({"k": "500"}, "1 <= k <= n-1 = 107", lambda ss: ss["k"] == 15),
    ({"k": "abc"}, "whole number", lambda ss: ss["k"] == 15),
    ({"k": "0"}, "got k = 0", lambda ss: ss["k"] == 15),
    ({"models": "gpt-9,smollm2-135m"}, "Unknown model", lambda ss: ss["models"] == ["smollm2-135m"]),
    ({"models": "gpt-9"}, "Unknown model", lambda ss: "alm" in ss["models"]),
    ({"seed": "77"}, "not shipped", lambda ss: ss["seed"] == 0),
    ({"layout": "3d"}, "layout must be one of", lambda ss: ss["layout"] == "joint"),
    ({"colour_by": "mood"}, "colour_by must be one of", lambda ss: ss["colour_by"] == "verb"),
])
def test_hostile_query_parameters_fall_back_with_a_message(synthetic, params, needle, check):
    for page in ("neighbours", "precision"):
        at = _run(page, params)
        assert not at.exception, [e.message for e in at.exception]
        warnings = " ".join(w.value for w in at.warning).replace("\\", "")  # markdown escapes removed
        assert needle in warnings
        assert check(at.session_state)
        assert _neighbour_tables(at) if page == "neighbours" else (_specs(at) or _vega(at))


def test_model_without_embeddings_shows_guidance(synthetic):
    at = _run("neighbours", {"models": "alm,llama-3.2-1b"})
    assert not at.exception
    codes = [c.value for c in at.code]
    assert "python -m core embed --model llama-3.2-1b --ship" in codes
    assert "not computed" in _texts(at)
    at = _run("precision", {"models": "alm,clip-vit-b-32"})
    assert "python -m core embed --model clip-vit-b-32 --ship" in [c.value for c in at.code]


# ------------------------------------------------------------------------------------------ P@k
def _vega(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """(spec, data) of every Vega-Lite chart."""
    import pyarrow as pa

    return [(json.loads(c.proto.spec), pa.ipc.open_stream(c.proto.data.data).read_all().to_pandas())
            for c in at.get("vega_lite_chart")]


def _layer(spec: dict, mark: str, y: str) -> dict | None:
    for lay in spec["layer"]:
        m = lay["mark"] if isinstance(lay["mark"], str) else lay["mark"]["type"]
        if m == mark and lay["encoding"].get("y", {}).get("field") == y:
            return lay
    return None


def test_precision_curves_bands_heatmap(synthetic):
    at = _run("precision")
    assert not at.exception
    assert not at.get("plotly_chart")  # the P@k page draws with Vega-Lite only (no Plotly bundle to load)
    (curves, plot), (heat, cells) = _vega(at)
    pairs = list(dict.fromkeys(plot["pair"]))
    assert {"smollm2-135m", "all-minilm-l6-v2", "bag-of-words"} <= set(pairs)
    assert all((plot["pair"] == p).sum() == 107 for p in pairs)
    assert ((plot["p"] >= 0) & (plot["p"] <= 1)).all() and (plot["boot_lo"] <= plot["p"] + 1e-12).all()
    line = _layer(curves, "line", "p")
    dash_scale = line["encoding"]["strokeDash"]["scale"]
    dash = dict(zip(dash_scale["domain"], dash_scale["range"]))
    assert plot.loc[plot["pair"] == "bag-of-words", "kind"].iloc[0] == "baseline" and dash["baseline"] != [1, 0]
    assert dash["model"] == [1, 0]  # baselines drawn distinctly from models
    assert _layer(curves, "area", "null_lo") and _layer(curves, "area", "boot_lo")  # permutation band, bootstrap CI
    assert _layer(curves, "line", "seed_min") and _layer(curves, "line", "seed_max")  # across agent seeds
    chance = _layer(curves, "line", "chance")["data"]["values"]
    assert len(chance) == 107 and chance[14] == {"k": 15, "chance": pytest.approx(15 / 107)}
    tab = _tables(at, "P@k")[0]  # the table at k = 15 holds the curves' values at k = 15
    smol = tab[tab["model"] == "smollm2-135m"].iloc[0]
    assert smol["P@k"] == pytest.approx(plot[(plot["pair"] == "smollm2-135m") & (plot["k"] == 15)]["p"].iloc[0])
    assert "p_perm" in tab

    def matrix(cells):
        return cells.pivot(index="row", columns="column", values="p")

    at.slider(key="w_k").set_value(3).run()
    z15, z3 = matrix(cells), matrix(_vega(at)[1][1])
    n = len(set(cells["row"]))
    assert z15.shape == z3.shape == (n, n) and n == len(pairs) + 1
    assert np.allclose(np.diag(z3), 1) and np.allclose(z3, z3.T) and not np.allclose(z3, z15)
    (heat15, _), (heat3, cells3) = _vega(_run("precision"))[1], _vega(at)[1]
    assert heat3 == heat15 and set(cells3["k"]) == {3}  # k is in the data, not the spec: a k move sends data only
    at.toggle(key="p_perm").set_value(False).run()
    at.toggle(key="p_boot").set_value(False).run()
    assert not any(lay["mark"]["type"] == "area" for lay in _vega(at)[0][0]["layer"] if isinstance(lay["mark"], dict))
    assert any(b.label.startswith("Download all curves") for b in at.get("download_button"))


# ------------------------------------------------------------------------------------------ Procrustes UMAP
def test_procrustes_page_colour_selection_and_ref(synthetic):
    at = _run("procrustes", {"ref": "alm", "colour_by": "object"})
    assert not at.exception
    multiples = _specs(at)[0]
    legend = [t["name"] for t in multiples["data"] if t.get("showlegend")]
    assert set(legend) == {"ball", "box", "key", "door"}
    at.session_state["umap_sel"] = [5, 9]  # what a selection in any chart sets (selected_indices, on_select)
    at.run()
    assert not at.exception
    assert "Selected (2): " + INSTR[5] in _texts(at)
    panels = [t for t in _specs(at)[0]["data"] if t.get("x") and t.get("mode") == "markers" and not t.get("showlegend")]
    assert len(panels) == 3 and all(list(p["selectedpoints"]) == [5, 9] for p in panels)
    stats = _tables(at, "disparity")[0]
    assert set(stats["model"]) == {"smollm2-135m", "all-minilm-l6-v2"}
    assert ((stats["disparity"] >= 0) & (stats["disparity"] <= 1)).all()
    disp = _tables(at, "mean")
    assert disp and len(disp[-1]) == 108
    at.selectbox(key="w_ref_u").set_value("smollm2-135m").run()
    assert _qp(at, "ref") == "smollm2-135m"


def test_procrustes_joint_layout_pk_colour_and_top_movers(synthetic):
    """The page's default layout is the joint one (core.report.joint_layout); colouring by P@k shows each panel's
    per-item P@k with the reference; the overlay joins only the top movers' positions (or the selection's)."""
    from core import metrics
    from core.embedders import load_embeddings
    from ui import figures

    at = _run("procrustes", {"ref": "alm", "colour_by": "P@k", "k": "10"})
    assert not at.exception, [e.message for e in at.exception]
    assert _qp(at, "layout") == "joint" and "Joint layout" in _texts(at)
    names = ["alm-s0", "smollm2-135m", "all-minilm-l6-v2"]
    spaces = {n: load_embeddings(*(("alm", 0) if n == "alm-s0" else (n, None)))[0] for n in names}
    joint = report.joint_layout(spaces, "alm-s0")
    multiples, overlay = _specs(at)[:2]
    panels = [t for t in multiples["data"] if t.get("mode") == "markers"]
    assert [t["name"] for t in panels] == names
    pk = {n: metrics.per_item_precision(spaces["alm-s0"], spaces[n], 10) for n in names[1:]}
    pk["alm-s0"] = np.mean([pk[n] for n in names[1:]], axis=0)  # the reference's panel: mean of the others
    for t in panels:
        xy = np.c_[_values(t["x"]), _values(t["y"])]
        assert np.allclose(xy, joint[t["name"]])  # drawn where the joint layout puts each instruction
        assert np.allclose(_values(t["marker"]["color"]), pk[t["name"]]) and t["marker"]["coloraxis"] == "coloraxis"
    assert multiples["layout"]["coloraxis"]["cmin"] == 0 and multiples["layout"]["coloraxis"]["cmax"] == 1
    assert "P@10" in " ".join(a["text"] for a in multiples["layout"]["annotations"])
    # the overlay (alm-s0 vs smollm2-135m): lines only for the 15 instructions that moved most
    lines = next(t for t in overlay["data"] if t.get("mode") == "lines")
    lx, ly = _values(lines["x"]), _values(lines["y"])
    assert len(lx) == 3 * figures.TOP_MOVERS and np.isnan(lx[2::3]).all()
    moved = np.linalg.norm(joint["smollm2-135m"] - joint["alm-s0"], axis=1)
    drawn = [int(np.flatnonzero(np.all(joint["alm-s0"] == (x, y), axis=1))[0]) for x, y in zip(lx[0::3], ly[0::3])]
    ref_xy = joint["alm-s0"]
    D = np.linalg.norm(ref_xy[:, None] - ref_xy[None], axis=2)
    np.fill_diagonal(D, np.inf)
    relative = moved / np.sort(D, axis=1)[:, :5].mean(axis=1)  # projection.displacement_table's definition
    assert set(drawn) == set(np.argsort(-relative, kind="stable")[:figures.TOP_MOVERS])
    at.session_state["umap_sel"] = [5, 9]
    at.run()
    lines = next(t for t in _specs(at)[1]["data"] if t.get("mode") == "lines")
    assert len(_values(lines["x"])) == 6  # the selection's two instructions only
    at.segmented_control(key="w_layout").set_value("own").run()
    assert not at.exception and _qp(at, "layout") == "own"
    titles = [a["text"] for a in _specs(at)[0]["layout"]["annotations"]]
    assert "2-D layout disparity" in _tables(at, "disparity")[0] and len(titles) == 3


def test_selection_events_map_to_instruction_indices():
    from ui.figures import selected_indices

    event = {"selection": {"points": [{"customdata": {"0": 5}}, {"customdata": [9]}, {"customdata": 5},
                                      {"customdata": None}, {"customdata": "x"}, {"customdata": [500]}]}}
    assert selected_indices(event) == [5, 9]  # both shapes Plotly uses; junk and out-of-range dropped
    assert selected_indices({"selection": {"points": []}}) == []
    assert selected_indices(None) == [] and selected_indices({}) == []


def test_figures_are_valid_plotly_and_vega_lite(synthetic):
    """ui.figures writes Plotly JSON and Vega-Lite specs without validation (speed): each Plotly figure must
    already be in the form validation gives (valid properties, no legacy shorthands such as a string axis title),
    each Vega-Lite spec must pass the Vega-Lite schema (Altair's validation)."""
    import altair as alt
    import plotly.graph_objects as go
    import plotly.io as pio

    from ui import data, figures

    tok = data.token()
    spaces = (("alm", 0), ("smollm2-135m", None), ("all-minilm-l6-v2", None), ("bag-of-words", None))
    figs = [figures.umap_multiples(tok, spaces, "alm", "colour", ()),
            figures.umap_multiples(tok, spaces, "alm", "verb", (3, 50)),
            figures.umap_overlay(tok, spaces, "alm", "smollm2-135m", (3,)),
            figures.umap_multiples(tok, spaces, "alm", "P@k", (4,), "joint", 15),
            figures.umap_overlay(tok, spaces, "alm", "smollm2-135m", (), "joint")]
    for fig in figs:
        raw = json.loads(pio.to_json(fig, validate=False))
        assert raw == json.loads(pio.to_json(go.Figure(fig.to_dict()), validate=False))
    multiples = figs[0]
    hues = {t.name: t.marker.color for t in multiples.data if t.showlegend}  # legend: one entry per colour word
    assert set(hues) == set(COLOURS) and hues == {c: figures.COLOUR_WORD_HUES[c] for c in COLOURS}
    words = [next(w for w in i.split() if w in COLOURS) for i in INSTR]
    assert list(multiples.data[0].marker.color) == [hues[w] for w in words]  # each point in its colour's hue
    titles = [a["text"] for a in multiples.layout.annotations]
    assert titles[0] == "alm-s0 (reference)" and len(titles) == len(spaces)
    panels = [t for t in multiples.data if t.mode == "markers" and not t.showlegend]
    assert [(t.xaxis, t.yaxis) for t in panels] == [("x", "y"), ("x2", "y2"), ("x3", "y3"), ("x4", "y4")]
    assert multiples.layout.xaxis4.domain[0] == 0 and multiples.layout.yaxis4.domain[1] < 0.5  # 2nd row

    for flags in [(True, True, True), (False, False, False)]:
        spec, plot, _, _ = figures.precision_curves(tok, "alm", 0, ("smollm2-135m", "bag-of-words"), *flags)
        rows = json.loads(plot.head(5).to_json(orient="records"))
        alt.LayerChart.from_dict({**spec, "data": {"values": rows}})  # raises on a schema violation
        fields = {lay["encoding"][c]["field"] for lay in spec["layer"] if "data" not in lay
                  for c in ("x", "y", "y2") if c in lay["encoding"]}
        assert fields <= set(plot.columns)  # every field a layer reads is in the chart's data
    spec, cells, _ = figures.precision_heatmap(tok, spaces, 7)
    alt.LayerChart.from_dict({**spec, "data": {"values": json.loads(cells.head(3).to_json(orient="records"))}})
    assert len(cells) == len(spaces) ** 2
    for spec, plot in [figures.headline_figure(tok, "alm", 0, 15)[:2], figures.success_figure(tok)[:2],
                       figures.agreement_grid(tok, "alm", 0, spaces[1:3], 5)]:
        assert len(plot)
        alt.LayerChart.from_dict({**spec, "data": {"values": json.loads(plot.to_json(orient="records"))}})
        fields = {lay["encoding"][c]["field"] for lay in spec["layer"] if "data" not in lay
                  for c in ("x", "x2", "y") if "field" in lay["encoding"].get(c, {})}
        assert fields <= set(plot.columns)


def test_cached_neighbour_loaders_agree_with_core_metrics(synthetic):
    """ui.data keeps one full ranking per space and one count matrix per pair; any k is a slice of them."""
    from core import metrics
    from core.embedders import load_embeddings
    from ui import data

    tok = data.token()
    A, B = load_embeddings("alm", 0)[0], load_embeddings("smollm2-135m", None)[0]
    for k in (1, 7, 15, 107):
        idx, sim = data.neighbours(tok, "alm", 0, k)
        ref_idx, ref_sim = metrics.neighbours(A, k, return_similarity=True)
        assert np.array_equal(idx, ref_idx) and np.allclose(sim, ref_sim)
        assert np.allclose(data.per_item(tok, "alm", 0, "smollm2-135m", None, k),
                           metrics.per_item_precision(A, B, k))
    for bad in (0, 108):
        with pytest.raises(metrics.MetricInputError, match="k must satisfy"):
            data.neighbours(tok, "alm", 0, bad)
        with pytest.raises(metrics.MetricInputError, match="k must satisfy"):
            data.per_item(tok, "alm", 0, "smollm2-135m", None, bad)


# ------------------------------------------------------------------------------------------ agent
def test_agent_page_steps_plays_and_exports(synthetic):
    at = _run("agent", {"instruction": INSTR[3], "env": "2"}, timeout=180)
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["env"] == 2 and _qp(at, "env") == "2"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Outcome"] in ("success ✓", "failure ✕") and "steps" in metrics["Episode length"]
    assert len(at.image) == 2  # the frame and the attention drawn over the agent's view
    probs = _tables(at, "probability")[0]
    assert len(probs) == 7 and abs(probs["probability"].sum() - 1) < 1e-4  # a distribution over the 7 actions
    taken = probs.loc[probs["taken"] != "", "action"].tolist()
    assert taken == [probs["action"][probs["probability"].idxmax()]]  # greedy policy: the argmax is taken
    assert re.search(r"largest weight, [0-9.]+ at row [0-6], column [0-6]", _texts(at))
    assert at.session_state["step"] == 0
    at.button(key="a_next").click().run()
    assert at.session_state["step"] == 1 and _qp(at, "step") == "1"
    at.button(key="a_back").click().run()
    assert at.session_state["step"] == 0
    at.toggle(key="w_playing").set_value(True).run()
    at.run()  # AppTest does not tick run_every by itself: each run() is one tick
    assert at.session_state["step"] >= 1
    at.toggle(key="w_playing").set_value(False).run()
    assert any(b.label.startswith("Export this episode as a GIF") for b in at.get("download_button"))
    at.segmented_control(key="w_view").set_value("agent").run()
    assert not at.exception and _qp(at, "view") == "agent"


def test_pages_import_no_torch_or_umap(synthetic):
    """The hosted demo's memory budget: only the Agent page may import torch; no page imports umap when the
    layouts are shipped or cached (checked in a fresh process, since this one imported torch for the fixture)."""
    from apptest_helpers import heavy_imports

    heavy = heavy_imports(["overview", "neighbours", "precision", "procrustes"], synthetic)
    assert heavy == {p: [] for p in ("overview", "neighbours", "precision", "procrustes")}, heavy


def test_report_ship_is_reused_and_goes_stale(synthetic, tmp_path, monkeypatch):
    """core.report: shipped artefacts are read back without recomputation; changing an embedding file makes
    its artefacts stale (listed by check(), recomputed instead of read)."""
    import shutil

    d = tmp_path / "assets"
    shutil.copytree(synthetic, d)
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(d))
    report._load_shipped.cache_clear()
    out = report.ship(log=lambda _msg: None)
    index = json.loads((out / "index.json").read_text())
    kinds = [k.split(":")[0] for k in index["entries"]]
    assert kinds.count("report.umap") == 7 and kinds.count("report.pair") == 2 * 4
    assert kinds.count("report.procrustes") == 2 * 4 + 2
    assert kinds.count("report.joint") == 2  # the Procrustes page's default selection, per agent seed
    assert report.check() == []
    calls = []
    monkeypatch.setattr(store, "cached", lambda *a, **k: calls.append(a[0]) or (_ for _ in ()).throw(
        AssertionError(f"recomputed {a[0]}")))
    table = report.headline_table()
    assert not calls
    row = table[table["model"] == "smollm2-135m"].iloc[0]
    assert 0 < row["P@15"] <= 1 and row["p_perm"] == pytest.approx(1 / 1001)
    # change one model's embeddings: its artefacts no longer match
    from core.embedders import load_embeddings

    X, man = load_embeddings("smollm2-135m")
    store.save_embeddings("smollm2-135m", X[::-1].copy(), INSTR, man, d / "embeddings")
    assert any(s.startswith("smollm2-135m") for s in report.check())
    with pytest.raises(AssertionError, match="recomputed report.pair"):
        report.headline_table()


# ------------------------------------------------------------------------------------------ fragments
@pytest.mark.parametrize("page", ["agent", "neighbours", "precision", "procrustes", "why"])
def test_each_fragment_sits_in_a_container_the_full_run_owns(synthetic, monkeypatch, page):
    """ui.widgets.run_fragment: no element of a page's main area may be a fragment's own block. When a fragment
    rerun starts before a full run's messages are sent, Streamlit drops the fragment's unsent deltas, its block
    included; the browser then closes the gap and the block comes back over the page's next element."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    deltas: list[tuple[tuple[int, ...], str]] = []
    enqueue = ForwardMsgQueue.enqueue

    def recording(self, msg):
        if msg.WhichOneof("type") == "delta":
            deltas.append((tuple(msg.metadata.delta_path), msg.delta.fragment_id))
        return enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recording)
    at = _run(page)
    assert not at.exception
    in_fragments = [path for path, fragment in deltas if fragment and path[0] == 0]
    assert in_fragments, "the page runs no fragment"
    top_level_owner = {path: fragment for path, fragment in deltas if len(path) == 2 and path[0] == 0}
    assert not [p for p in in_fragments if top_level_owner.get(p[:2])]

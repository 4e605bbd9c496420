"""AppTest of the Generalisation page (pages/generalisation.py) and of the Agent page's any-agent / any-instruction
controls (issue 16, part 3).

Runs on the tiny generalisation fixture (tests/generalisation_fixture.py: two real tiny agents trained with split
colour-object held out, identity and random word init, shipped with core.generalisation.ship), whose assets dir
also links the repository's shipped embeddings and main agents (alm-s0 ...).
"""
from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from test_app import _clear_caches, _qp, _run, _texts, _vega

HELD = "alm-holdout-colour-object-s0"
RED_KEY = "pick up the red key"  # held out in split colour-object


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory):
    import generalisation_fixture

    root = tmp_path_factory.mktemp("alva-gen-page")
    generalisation_fixture.build(root)
    return root


@pytest.fixture
def gen(gen_root, monkeypatch):
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(gen_root / "assets"))
    _clear_caches()
    yield gen_root / "assets"
    _clear_caches()


def _all_texts(at) -> str:
    return _texts(at) + "\n" + "\n".join(str(e.value) for e in at.get("success"))


def _held_out_table(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "watch the held-out agent" in d.value.columns)


# ------------------------------------------------------------------------------------------ generalisation page
def test_generalisation_page_draws_its_figures_on_the_fixture(gen):
    import altair as alt

    from core import generalisation as G

    at = _run("generalisation")
    assert not at.exception, [e.message for e in at.exception]
    res = G.load()
    text = _texts(at)
    for line in G.statement(res, "smollm2-135m"):  # the plain statement, computed from the shipped tables
        assert line in text
    charts = _vega(at)
    assert len(charts) == 6
    (s_spec, s_plot), (o_spec, o_plot), (a_spec, a_plot), (n_spec, n_plot), (c_spec, c_plot), (i_spec, i_plot) = \
        charts
    # (a') outcomes of the held-out episodes: shares of the shipped counts, summing to 1 per split
    oc = res["held_out_outcomes"].query("word_init == 'identity'")
    assert o_plot.episodes.sum() == oc.episodes.sum() == 18 * 10
    assert o_plot.groupby("split").share.sum().tolist() == pytest.approx([1.0])
    assert set(o_plot.outcome) <= set(G.OUTCOMES)
    # (a) success: one dot per run and items, the runs table's numbers
    runs = res["runs"].set_index("run")
    held = s_plot[(s_plot.run == HELD) & (s_plot["items"].str.startswith("held-out"))]
    assert held.success.tolist() == pytest.approx([runs.loc[HELD, "success_held_out"]])
    assert set(s_plot.run) == {HELD}  # identity word init only: the random-init run is not a split agent
    # (b) alignment: per reference, held-out / trained / full-data, with the null band
    ha = res["heldout_alignment"].query("run == @HELD and reference == 'smollm2-135m'").iloc[0]
    got = a_plot[a_plot.reference == "smollm2-135m"].set_index("measure")["p"]
    assert got["held-out items"] == pytest.approx(ha.held_out) and got["trained items"] == pytest.approx(ha.trained)
    assert got["same items, full-data agents"] == pytest.approx(ha.held_out_full_data_agent)
    band = a_spec["layer"][0]["encoding"]
    assert (band["y"]["field"], band["y2"]["field"]) == ("null_mean", "null_hi")
    # (c) nearest trained: share of items sharing each factor vs chance
    nt = res["nearest_trained"].query("run == @HELD")
    row = n_plot[n_plot.factor == "colour"].iloc[0]
    assert row.share == pytest.approx(nt.shares_colour.mean()) and row.chance == pytest.approx(nt.chance_colour.mean())
    # (d) word inits: both inits' curves at the selected reference, and the summary
    assert set(c_plot.word_init) == {"identity", "random"} and set(c_plot.reference) == {"smollm2-135m"}
    assert set(i_plot.measure) >= {"final success", "initial P@k", "final P@k"}
    alt.Chart.from_dict({**o_spec, "data": {"values": json.loads(o_plot.to_json(orient="records"))}})
    for spec, plot in [(s_spec, s_plot), (a_spec, a_plot), (n_spec, n_plot), (c_spec, c_plot)]:
        alt.LayerChart.from_dict({**spec, "data": {"values": json.loads(plot.to_json(orient="records"))}})
    alt.HConcatChart.from_dict({**i_spec, "data": {"values": json.loads(i_plot.to_json(orient="records"))}})
    # a CSV under every figure, and the held-out instructions (every split) with links to the Agent page
    assert len(at.get("download_button")) >= 6
    items = _held_out_table(at)
    assert len(items) == 18 + 12 + 11
    ours = items[items.split == "colour-object"]
    assert (ours.agent == HELD).all() and ours["watch the held-out agent"].str.startswith("agent?").all()
    assert items[items.split == "verb-object"]["watch the held-out agent"].isna().all()  # no such agent shipped
    # another reference: the curves follow, and the URL keeps it
    at.selectbox(key="w_reference").set_value("all-minilm-l6-v2").run()
    assert not at.exception and _qp(at, "reference") == "all-minilm-l6-v2"
    assert set(_vega(at)[4][1].reference) == {"all-minilm-l6-v2"}


def test_generalisation_page_without_results_shows_the_command(tmp_assets):
    _clear_caches()
    at = _run("generalisation")
    assert not at.exception, [e.message for e in at.exception]
    assert at.info and "not shipped" in at.info[0].value
    assert any("python -m core generalisation --ship" in c.value for c in at.code)
    assert not at.get("vega_lite_chart")
    _clear_caches()


# ------------------------------------------------------------------------------------------ agent page
def test_agent_page_marks_a_held_out_instruction_never_trained_on(gen):
    from core.agent import shipped_checkpoints
    from ui import data

    at = _run("agent", {"checkpoint": HELD, "instruction": RED_KEY}, timeout=180)
    assert not at.exception, [e.message for e in at.exception]
    text = _all_texts(at)
    assert "never trained on this instruction (held out in split colour-object)" in text
    assert {m.label for m in at.metric} >= {"Outcome", "Episode length"}  # the episode ran
    assert _qp(at, "checkpoint") == HELD and _qp(at, "instruction") == RED_KEY
    # every shipped checkpoint is offered (the torch-free list agrees with core.agent's), grouped
    assert list(data.shipped_agents(data.token())) and set(data.shipped_agents(data.token())) == \
        set(shipped_checkpoints())
    options = at.selectbox(key="w_checkpoint").options
    assert any(o.startswith(f"held-out split agents · {HELD}") for o in options)
    assert any(o.startswith("word-init controls · alm-word-random-holdout-colour-object-s0") for o in options)
    assert any(o.startswith("main agents · alm-s0") for o in options) and any(o.startswith("variants · ")
                                                                               for o in options)
    # the full-data agent trained on it
    at.selectbox(key="w_checkpoint").set_value("alm-s0").run()
    assert not at.exception
    text = _all_texts(at)
    assert "alm-s0 trained on this instruction" in text and "never trained on" not in text
    assert _qp(at, "checkpoint") == "alm-s0" and _qp(at, "seed") == "0"
    # and the held-out agent on one of its trained instructions
    at.selectbox(key="w_checkpoint").set_value(HELD).run()
    at.text_input(key="w_typed").input("pick up the red ball").run()
    text = _all_texts(at)
    assert f"{HELD} trained on this instruction" in text and "never trained on" not in text


def test_a_bad_instruction_shows_the_parse_error_and_loses_nothing(gen):
    from core.instructions import InstructionError, index_of
    from ui.state import md_escape

    at = _run("agent", {"checkpoint": HELD, "instruction": "go to the red ball", "env": "3"}, timeout=180)
    assert not at.exception
    for bad, how in [("pick up the red door", "typed"), ("fly to the moon", "typed"),
                     ("open the red ball", "composed")]:
        with pytest.raises(InstructionError) as err:
            index_of(bad)
        if how == "typed":
            at.text_input(key="w_typed").input(bad).run()
        else:
            at.selectbox(key="w_verb").set_value("open").run()
        assert not at.exception
        shown = "\n".join(e.value for e in at.error)
        assert md_escape(str(err.value), 500) in shown, (bad, shown)
        # nothing lost: the instruction, agent, environment and the URL stay; the entry keeps what was typed
        ss = at.session_state
        assert (ss["instruction"], ss["checkpoint"], ss["env"]) == ("go to the red ball", HELD, 3)
        assert _qp(at, "instruction") == "go to the red ball" and _qp(at, "checkpoint") == HELD
        if how == "typed":
            assert at.text_input(key="w_typed").value == bad
        assert {m.label for m in at.metric} >= {"Outcome"}
    # composing a valid one takes it at once and clears the error
    at.selectbox(key="w_object").set_value("box").run()
    assert at.session_state["instruction"] == "open the red box" and not at.error
    assert _qp(at, "instruction") == "open the red box" and at.text_input(key="w_typed").value == "open the red box"
    # typing is normalised
    at.text_input(key="w_typed").input("  Pick Up THE red key ").run()
    assert at.session_state["instruction"] == RED_KEY and not at.error
    assert at.selectbox(key="w_verb").value == "pick up" and at.selectbox(key="w_object").value == "key"
    assert "never trained on this instruction (held out in split colour-object)" in _all_texts(at)


# ------------------------------------------------------------------------------------------ links
def test_links_round_trip(gen):
    at = _run("generalisation", {"split": "colour-object", "reference": "gemma-3-270m"})
    assert not at.exception and not at.warning
    assert (_qp(at, "split"), _qp(at, "reference")) == ("colour-object", "gemma-3-270m")
    assert at.session_state["reference"] == "gemma-3-270m"
    items = _held_out_table(at)
    i = int(items.index[items.instruction == RED_KEY][0])
    # the table's link opens the Agent page on that agent and instruction
    q = parse_qs(urlparse(items.loc[i, "watch the held-out agent"]).query)
    assert urlparse(items.loc[i, "watch the held-out agent"]).path == "agent"
    params = {k: v[0] for k, v in q.items()}
    assert params == {"checkpoint": HELD, "instruction": RED_KEY}
    ag = _run("agent", params, timeout=180)
    assert not ag.exception and not [w for w in ag.warning if "Ignored" in w.value]  # the link was valid
    assert (ag.session_state["checkpoint"], ag.session_state["instruction"]) == (HELD, RED_KEY)
    assert {k: _qp(ag, k) for k in params} == params
    # an older link arriving in that session (seed only): it means the main agent alm-sN, not the held-out agent
    for k in list(ag.query_params):
        del ag.query_params[k]
    ag.query_params["seed"], ag.query_params["instruction"] = "1", RED_KEY
    ag.run()
    assert ag.session_state["checkpoint"] == "alm-s1" and _qp(ag, "checkpoint") == "alm-s1"
    # selecting the row gives the same link as a page link
    at.session_state["g_items"] = {"selection": {"rows": [i], "columns": [], "cells": []}}
    at.run()
    links = at.get("page_link")
    assert links and all("agent" in ln.proto.page for ln in links)
    assert {k: v[0] for k, v in parse_qs(links[0].proto.query_string).items()} == params
    assert {k: v[0] for k, v in parse_qs(links[1].proto.query_string).items()} == \
        {"checkpoint": "alm-s0", "instruction": RED_KEY}
    # old links: seed=N alone means alm-sN; a main agent sets the shared seed
    old = _run("agent", {"seed": "1", "instruction": RED_KEY}, timeout=180)
    assert not old.exception and old.session_state["checkpoint"] == "alm-s1" and _qp(old, "checkpoint") == "alm-s1"
    main = _run("agent", {"checkpoint": "alm-s1"}, timeout=180)
    assert _qp(main, "seed") == "1" and main.session_state["seed"] == 1
    # bad values fall back with a message
    bad = _run("generalisation", {"split": "nonsense", "reference": "gpt-9"})
    assert not bad.exception and len(bad.warning) == 2
    assert (_qp(bad, "split"), _qp(bad, "reference")) == ("colour-object", "smollm2-135m")
    worse = _run("agent", {"checkpoint": "alm-s99"}, timeout=180)
    assert not worse.exception and "is not shipped" in worse.warning[0].value
    assert worse.session_state["checkpoint"] == "alm-s0"


def test_only_the_agent_page_may_import_torch(gen):
    """The Generalisation page stays light (no torch: core.agent is imported by the Agent page only)."""
    from apptest_helpers import heavy_imports

    heavy = heavy_imports(["generalisation"], gen, check="assert len(at.get('vega_lite_chart')) == 6")
    assert heavy == {"generalisation": []}, heavy

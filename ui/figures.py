"""Figures and tables of the dashboard, built once per input and cached (``st.cache_resource``).

Why cached here rather than built in the page: a figure whose JSON differs from the previous run is redrawn by
the browser. So a figure depends only on what it shows: the P@k curves do not depend on k (the heatmap and the
table at k do), and a slider move redraws only what changed.

Two chart libraries, each where it is cheaper or needed:

* **Vega-Lite** (``st.vega_lite_chart``) for the P@k curves and heatmap: its browser code is ~0.8 MB against
  Plotly's 4.7 MB, which every page load that shows a Plotly chart parses again (~0.25 s on a 2-core machine).
  (Streamlit draws these charts as SVG; its canvas renderer, ``usermeta.embedOptions.renderer``, measured no
  faster on the P@k page.) Specs are plain dicts (no Altair: its schema validation costs ~20 ms per build);
  tests/test_app.py validates them against the Vega-Lite schema.
* **Plotly** for the Procrustes UMAP panels: lasso selection of points and the toolbar's PNG export. Figures
  are written as plain Plotly JSON (:func:`_figure`): ``plotly.graph_objects`` validates every property as it is
  set, ~25 ms for a 6-panel figure against ~1 ms, which a visitor waits for on every cache miss (a new colouring,
  a new selection). tests/test_app.py checks that the output is what Plotly's validation would write.

Returned objects are shared by every session: never mutate them.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import streamlit as st

from core import metrics, projection, report
from ui import data
from ui.state import FACTORS, INSTRUCTIONS, N

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22",
           "#7f7f7f", "#393b79", "#637939"]
BASE_COLOURS = ["#555555", "#888888", "#aaaaaa", "#333333", "#999999", "#666666"]
Spaces = tuple[tuple[str, "int | None"], ...]  # (name, seed file used) per space


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A figure from plain Plotly JSON (every trace dict names its ``type``), without property validation."""
    return go.Figure(data=data, layout=layout, _validate=False)


def _scatter(**props: Any) -> dict[str, Any]:
    return {"type": "scatter", **props}


def _seed_curves(tok: str, ctx: dict[str, Any], ref: str, m: str) -> np.ndarray:
    """P@k curve of ``ref`` vs ``m`` for every seed of the reference (each against m's matching seed file)."""
    out = []
    for rs in ctx["seeds_of"].get(ref, []):
        ms = data.space_seed(ctx, m, rs)
        if data.pair_stats_ready(tok, ref, rs, m, ms):  # shipped with the pair statistics
            out.append(data.pair_stats(tok, ref, rs, m, ms)["curve"])
        else:  # ~15 ms each
            out.append(data.curve(tok, ref, rs, m, ms))
    return np.array(out)


#: line style (Vega-Lite strokeDash) per kind of space: models solid, agent variants dotted, baselines (reference
#: rows) dashed
KIND_DASH = {report.KIND_MODEL: [1, 0], report.KIND_AGENT: [2, 2], report.KIND_BASELINE: [6, 3]}
_Q, _N = "quantitative", "nominal"


@st.cache_resource(max_entries=32, show_spinner=False)
def precision_curves(tok: str, ref: str, agent_seed: int, others: tuple[str, ...], show_perm: bool,
                     show_boot: bool, show_seeds: bool) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, bytes]:
    """(Vega-Lite spec, its data, long table, the table as CSV) of P@k for k = 1..n-1 between ``ref`` and each of
    ``others``: ``st.vega_lite_chart(data, spec)``.

    Layers: per pair the permutation 95% band (grey) and bootstrap 95% CI (the pair's colour) when asked, the
    min/max over the reference's seeds (thin dotted, when asked and the reference has several seeds), the curve
    (dash by kind of space), and the analytic chance line. A legend click highlights a pair (shift-click: more).
    Pair statistics must be ready or computable (the page shows the spinner while they are computed)."""
    ctx = data.context(tok)
    ref_seed = data.space_seed(ctx, ref, agent_seed)
    ks = np.arange(1, N)
    chance = metrics.chance_precision(N, ks)
    frames, pairs, colours, ci, bi = [], [], [], 0, 0
    n_ref_seeds = len(ctx["seeds_of"].get(ref, []))
    seeds_drawn = show_seeds and n_ref_seeds > 1
    for m in others:
        s = data.space_seed(ctx, m, agent_seed)
        st_ = data.pair_stats(tok, ref, ref_seed, m, s)
        kind = ctx["kinds"].get(m)
        if kind == report.KIND_BASELINE:
            colour, bi = BASE_COLOURS[bi % len(BASE_COLOURS)], bi + 1
        else:
            colour, ci = PALETTE[ci % len(PALETTE)], ci + 1
        name = data.label(m, s)  # the reference is the same for every pair: the legend's title names it
        frame = pd.DataFrame({"reference": data.label(ref, ref_seed), "model": name, "kind": kind,
                              "k": ks, "P@k": st_["curve"], "chance": chance, "boot_lo": st_["boot_lo"],
                              "boot_hi": st_["boot_hi"], "null_lo": st_["null_lo"], "null_hi": st_["null_hi"],
                              "p_perm": st_["p"]})
        if seeds_drawn:
            spread = _seed_curves(tok, ctx, ref, m)
            frame["agent_seeds_min"], frame["agent_seeds_max"] = spread.min(axis=0), spread.max(axis=0)
            frame["agent_seeds_mean"] = spread.mean(axis=0)
        frames.append(frame)
        pairs.append(name)
        colours.append(colour)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    # the chart's data: the same table under short field names (a pair is named by its model)
    fields = {"model": "pair", "kind": "kind", "k": "k", "P@k": "p", "boot_lo": "boot_lo", "boot_hi": "boot_hi",
              "null_lo": "null_lo", "null_hi": "null_hi", "p_perm": "p_perm"}
    if seeds_drawn:
        fields |= {"agent_seeds_min": "seed_min", "agent_seeds_max": "seed_max"}
    plot = table.reindex(columns=list(fields)).rename(columns=fields)
    x = {"field": "k", "type": _Q, "title": "k", "scale": {"domain": [1, N - 1], "nice": False}}
    y = {"type": _Q, "title": "P@k", "scale": {"domain": [0, 1.02], "nice": False}}
    ref_label = data.label(ref, ref_seed)
    colour = {"field": "pair", "type": _N, "title": f"{ref_label} vs", "sort": pairs,
              "scale": {"domain": pairs, "range": colours},
              "legend": {"orient": "right", "labelLimit": 260, "symbolType": "stroke", "symbolOpacity": 1,
                         "symbolStrokeWidth": 3}}
    picked = {"param": "pick", "empty": True}
    layers: list[dict[str, Any]] = []
    if show_perm:
        layers.append({"mark": {"type": "area", "color": "#999999", "opacity": 0.18},
                       "encoding": {"x": x, "y": {**y, "field": "null_lo"}, "y2": {"field": "null_hi"},
                                    "detail": {"field": "pair", "type": _N}}})
    if show_boot:
        layers.append({"mark": {"type": "area"},
                       "encoding": {"x": x, "y": {**y, "field": "boot_lo"}, "y2": {"field": "boot_hi"},
                                    "color": colour,
                                    "opacity": {"condition": {**picked, "value": 0.22}, "value": 0.04}}})
    if seeds_drawn:
        for f in ("seed_min", "seed_max"):
            layers.append({"mark": {"type": "line", "strokeWidth": 0.8, "strokeDash": [2, 2]},
                           "encoding": {"x": x, "y": {**y, "field": f}, "color": colour,
                                        "opacity": {"condition": {**picked, "value": 1}, "value": 0.15}}})
    layers.append({"mark": {"type": "line", "strokeWidth": 2.2},
                   "params": [{"name": "pick", "select": {"type": "point", "fields": ["pair"]}, "bind": "legend"}],
                   "encoding": {"x": x, "y": {**y, "field": "p"}, "color": colour,
                                "strokeDash": {"field": "kind", "type": _N, "legend": None,
                                               "scale": {"domain": list(KIND_DASH),
                                                         "range": list(KIND_DASH.values())}},
                                "opacity": {"condition": {**picked, "value": 1}, "value": 0.2},
                                "tooltip": [{"field": "pair", "type": _N, "title": f"{ref_label} vs"},
                                            {"field": "k", "type": _Q},
                                            {"field": "p", "type": _Q, "title": "P@k", "format": ".3f"},
                                            {"field": "boot_lo", "type": _Q, "title": "CI low", "format": ".3f"},
                                            {"field": "boot_hi", "type": _Q, "title": "CI high", "format": ".3f"},
                                            {"field": "null_hi", "type": _Q, "title": "null 97.5%",
                                             "format": ".3f"},
                                            {"field": "p_perm", "type": _Q, "title": "permutation p",
                                             "format": ".4f"}]}})
    chance_rows = [{"k": int(k), "chance": float(c)} for k, c in zip(ks, chance)]  # one line, not one per pair
    layers.append({"data": {"values": chance_rows},
                   "mark": {"type": "line", "color": "black", "strokeDash": [1, 3], "strokeWidth": 1.5},
                   "encoding": {"x": x, "y": {**y, "field": "chance"},
                                "tooltip": [{"field": "k", "type": _Q},
                                            {"field": "chance", "type": _Q, "title": "chance k/(n−1)",
                                             "format": ".3f"}]}})
    spec = {"height": 480, "layer": layers}
    return spec, plot, table, table.to_csv(index=False).encode()


@st.cache_resource(max_entries=64, show_spinner=False)
def precision_heatmap(tok: str, spaces: Spaces, k: int) -> tuple[dict[str, Any], pd.DataFrame, bytes]:
    """(Vega-Lite spec, its data, matrix as CSV): P@k between every pair of ``spaces`` ((name, seed) pairs),
    each cell coloured (viridis, 0..1) and labelled with its value. The spec holds no k (k is a column of the
    data, shown on hover): a k move sends new data only, which the browser draws into the chart it has."""
    M = data.precision_matrix(tok, spaces, k)
    names = list(M.columns)
    long = pd.DataFrame({"row": np.repeat(names, len(names)), "column": np.tile(names, len(names)),
                         "p": M.to_numpy().ravel(), "k": k})
    axis = {"title": None, "labelLimit": 220}
    enc = {"x": {"field": "column", "type": _N, "sort": names,
                 "axis": {**axis, "orient": "top", "labelAngle": -35, "labelOverlap": False}},
           "y": {"field": "row", "type": _N, "sort": names, "axis": axis}}
    spec = {"height": 60 + 34 * len(names), "encoding": enc, "layer": [
        {"mark": "rect", "encoding": {"color": {"field": "p", "type": _Q, "title": "P@k",
                                                "scale": {"scheme": "viridis", "domain": [0, 1]}},
                                      "tooltip": [{"field": "row", "type": _N}, {"field": "column", "type": _N},
                                                  {"field": "k", "type": _Q},
                                                  {"field": "p", "type": _Q, "title": "P@k", "format": ".3f"}]}},
        {"mark": {"type": "text", "fontSize": 11},
         "encoding": {"text": {"field": "p", "type": _Q, "format": ".2f"},
                      "color": {"condition": {"test": "datum.p > 0.6", "value": "black"}, "value": "white"}}}]}
    return spec, long, M.to_csv().encode()


@st.cache_resource(max_entries=32, show_spinner=False)
def agreement_grid(tok: str, ref: str, ref_seed: int | None, models: Spaces, k: int
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    """(Vega-Lite spec, its data): per-item P@k between ``ref`` and each of ``models`` ((name, seed) pairs),
    averaged over the models, drawn as a grid of verb-object forms x colours (each cell: the mean over its
    instructions, i.e. the two determiners), values in the cells; one data row per instruction. The spec holds no
    k (a column of the data, shown on hover): a k move sends new data only."""
    md = data.metadata()
    per = np.mean([data.per_item(tok, ref, ref_seed, m, s, k) for m, s in models], axis=0)
    plot = pd.DataFrame({"instruction": INSTRUCTIONS, "form": md["verb"] + " … " + md["object"],
                         "colour": md["colour"], "determiner": md["determiner"], "p": per, "k": k})
    forms, colours = list(dict.fromkeys(plot["form"])), list(dict.fromkeys(plot["colour"]))
    mean_p = {"aggregate": "mean", "field": "p", "type": _Q}
    enc = {"x": {"field": "colour", "type": _N, "sort": colours, "title": None, "axis": {"orient": "top",
                                                                                           "labelAngle": 0}},
           "y": {"field": "form", "type": _N, "sort": forms, "title": None, "axis": {"labelLimit": 200}}}
    spec = {"height": 30 * len(forms), "encoding": enc, "layer": [
        {"mark": "rect", "encoding": {
            "color": {**mean_p, "title": "P@k", "scale": {"scheme": "viridis", "domain": [0, 1]}},
            "tooltip": [{"field": "form", "type": _N}, {"field": "colour", "type": _N},
                        {"aggregate": "max", "field": "k", "type": _Q, "title": "k"},
                        {**mean_p, "title": "mean P@k", "format": ".3f"},
                        {"aggregate": "count", "type": _Q, "title": "instructions"}]}},
        {"mark": {"type": "text", "fontSize": 11},
         "encoding": {"text": {**mean_p, "format": ".2f"},
                      "color": {"condition": {"test": "datum['mean_p'] > 0.6", "value": "black"},
                                "value": "white"}}}]}
    return spec, plot


# ------------------------------------------------------------------------------------------ Overview
#: the reference rows drawn as marks across the headline figure (registry name -> what it stands for); the
#: reference itself stands for its other seeds
HEADLINE_REFERENCES = {"untrained-alm": "untrained agent", "bag-of-words": "bag-of-words",
                       report.REFERENCE: "another agent seed"}
PAPER_COLOUR = "#f4a259"  #: what the paper reports, drawn as a band
#: the headline figure's legend: what each mark is, and its colour
HEADLINE_KEY = {"P@k (dot), 95% bootstrap CI (bar)": "#1f4e9c", "range over agent seeds": "#6b8fd6",
                "95% permutation band": "#b0b0b0", "paper's range for the family": PAPER_COLOUR,
                "chance k/(n−1)": "#000000", "untrained agent": "#8c564b", "bag-of-words": "#7f7f7f",
                "another agent seed": "#2ca02c"}


@st.cache_resource(max_entries=16, show_spinner=False)
def headline_figure(tok: str, ref: str, ref_seed: int | None, k: int) -> tuple[dict[str, Any], pd.DataFrame,
                                                                              list[dict[str, Any]]]:
    """(Vega-Lite spec, its data, the reference marks) of the Overview's headline: one row per model present
    (kind "model"), P@k against ``ref`` seed ``ref_seed`` as a point with its 95% bootstrap CI (thick bar), the
    min-max over the reference's seeds (thin bar below), the model's 95% permutation band (grey) and the paper's
    reported range for its family (orange band); the analytic chance level and the reference rows (untrained agent,
    bag-of-words, another seed of the reference: :data:`HEADLINE_REFERENCES`) as vertical rules across every row.

    Every number comes from :func:`core.report.headline_table` (``data.headline``), nothing is recomputed. The
    data has one row per model, in the table's order; the reference marks are the layer's inline values."""
    table = data.headline(tok, ref, ref_seed, k)
    pk = f"P@{k}"
    rows = table[(table["kind"] == report.KIND_MODEL) & table["present"]]
    plot = pd.DataFrame({"model": rows["model"], "family": rows["family"], "stands_for": rows["paper_family"],
                         "p": rows[pk], "ci_low": rows["ci_low"], "ci_high": rows["ci_high"],
                         "p_perm": rows["p_perm"], "null_low": rows["null_low"], "null_high": rows["null_high"],
                         "seed_min": rows["seed_min"], "seed_max": rows["seed_max"], "seed_mean": rows["seed_mean"],
                         "seed_sd": rows["seed_sd"], "paper_low": rows["paper_low"],
                         "paper_high": rows["paper_high"], "paper": rows["paper"]}).reset_index(drop=True)
    marks = []
    for name, what in HEADLINE_REFERENCES.items():
        r = table[(table["model"] == name) & table["present"]]
        if len(r) and np.isfinite(r[pk].iloc[0]):
            seed = r["seed"].iloc[0]
            src = f"{name}, {seed}" if isinstance(seed, str) else data.label(name, None if pd.isna(seed) else
                                                                               int(seed))
            marks.append({"reference": what, "source": src, "p": float(r[pk].iloc[0])})
    chance = float(table["chance"].iloc[0])
    order = list(plot["model"])
    x = {"type": _Q, "title": f"P@{k} with the agent ({data.label(ref, ref_seed)})",
         "scale": {"domain": [0, 1], "nice": False}}
    y = {"field": "model", "type": _N, "sort": order, "title": None, "axis": {"labelLimit": 220}}
    fmt = lambda f, t: {"field": f, "type": _Q, "title": t, "format": ".3f"}  # noqa: E731
    tooltip = [{"field": "model", "type": _N}, {"field": "family", "type": _N},
               {"field": "stands_for", "type": _N, "title": "stands in for"}, fmt("p", f"P@{k}"),
               fmt("ci_low", "95% CI low"), fmt("ci_high", "95% CI high"),
               {"field": "p_perm", "type": _Q, "title": "permutation p", "format": ".4f"},
               fmt("null_low", "null 2.5%"), fmt("null_high", "null 97.5%"), fmt("seed_mean", "agent seeds: mean"),
               fmt("seed_sd", "agent seeds: sd"), fmt("seed_min", "agent seeds: min"),
               fmt("seed_max", "agent seeds: max"), {"field": "paper", "type": _N, "title": "paper (reported)"}]
    keys = list(HEADLINE_KEY)
    keys[0] = f"P@{k} (dot), 95% bootstrap CI (bar)"
    legend = {"title": None, "orient": "bottom", "columns": 4, "symbolType": "stroke", "symbolStrokeWidth": 3,
              "symbolOpacity": 1,
              "labelLimit": 320}
    scale = {"domain": keys, "range": list(HEADLINE_KEY.values())}

    colour = {"field": "key", "type": _N, "scale": scale, "legend": legend}  # one legend explains every mark

    def keyed(i: int, *fields: str) -> list[dict[str, Any]]:
        """A layer's transforms: rows with every field valid, labelled with legend entry i."""
        valid = [{"filter": " && ".join(f"isValid(datum.{f})" for f in fields)}] if fields else []
        return [*valid, {"calculate": json.dumps(keys[i]), "as": "key"}]

    layers: list[dict[str, Any]] = [
        {"transform": keyed(3, "paper_low", "paper_high"), "mark": {"type": "bar", "opacity": 0.35},
         "encoding": {"y": y, "x": {**x, "field": "paper_low"}, "x2": {"field": "paper_high"}, "color": colour,
                      "tooltip": [{"field": "paper", "type": _N, "title": "paper (reported)"}]}},
        {"transform": keyed(2, "null_low", "null_high"), "mark": {"type": "bar", "opacity": 0.6,
                                                                  "height": {"band": 0.5}},
         "encoding": {"y": y, "x": {**x, "field": "null_low"}, "x2": {"field": "null_high"}, "color": colour,
                      "tooltip": tooltip}},
        {"data": {"values": [{"chance": chance, "key": keys[4]}]},
         "mark": {"type": "rule", "strokeDash": [1, 3], "strokeWidth": 1.5},
         "encoding": {"x": {**x, "field": "chance"}, "color": colour, "tooltip": [fmt("chance", "chance k/(n−1)")]}},
    ]
    if marks:
        layers.append({"data": {"values": marks}, "mark": {"type": "rule", "strokeDash": [6, 3], "strokeWidth": 2},
                       "encoding": {"x": {**x, "field": "p"}, "color": {**colour, "field": "reference"},
                                    "tooltip": [{"field": "reference", "type": _N},
                                                {"field": "source", "type": _N, "title": "row"},
                                                fmt("p", f"P@{k}")]}})
    layers += [
        {"transform": keyed(1, "seed_min", "seed_max"), "mark": {"type": "rule", "strokeWidth": 1.5, "yOffset": 9},
         "encoding": {"y": y, "x": {**x, "field": "seed_min"}, "x2": {"field": "seed_max"}, "color": colour,
                      "tooltip": tooltip}},
        {"transform": keyed(0, "ci_low", "ci_high"), "mark": {"type": "rule", "strokeWidth": 4},
         "encoding": {"y": y, "x": {**x, "field": "ci_low"}, "x2": {"field": "ci_high"}, "color": colour,
                      "tooltip": tooltip}},
        {"transform": keyed(0), "mark": {"type": "point", "filled": True, "size": 110, "opacity": 1},
         "encoding": {"y": y, "x": {**x, "field": "p"}, "color": colour, "tooltip": tooltip}},
    ]
    spec = {"height": 70 + 46 * max(1, len(plot)), "layer": layers}
    return spec, plot, marks


@st.cache_resource(max_entries=8, show_spinner=False)
def success_figure(tok: str, group: str = "verb_object") -> tuple[dict[str, Any], pd.DataFrame, bytes]:
    """(Vega-Lite spec, its data, the data as CSV): every shipped agent's task success, overall and per ``group``
    of instructions (:func:`core.report.agent_success_by`), one dot per agent (the seeds of a variant share its
    colour), with the paper's reported success range as a band. Empty data when no manifest records it."""
    long = data.agent_success_by(tok, group)
    plot = long[np.isfinite(long["success"].astype(float))].reset_index(drop=True)
    levels = ["overall", *sorted(set(plot["level"]) - {"overall"})]
    variants = list(dict.fromkeys([report.REFERENCE, *sorted(plot["variant"])])) if len(plot) else []
    variants = [v for v in variants if v in set(plot["variant"])]
    lo = float(min(report.PAPER_SUCCESS[0], plot["success"].min() if len(plot) else 1.0))
    x = {"type": _Q, "title": "success (fraction of evaluation episodes)", "axis": {"format": ".0%"},
         "scale": {"domain": [max(0.0, np.floor(lo * 20) / 20 - 0.05), 1.0], "nice": False}}
    y = {"field": "level", "type": _N, "sort": levels, "title": None}
    colour = {"field": "variant", "type": _N, "title": "agent", "sort": variants,
              "scale": {"domain": variants, "range": PALETTE[:len(variants)] or PALETTE[:1]},
              "legend": {"orient": "right"}}
    paper = {"lo": report.PAPER_SUCCESS[0], "hi": report.PAPER_SUCCESS[1], "what": "the paper's reported range"}
    spec = {"height": 40 + 28 * len(levels), "layer": [
        {"data": {"values": [paper]}, "mark": {"type": "rect", "color": PAPER_COLOUR, "opacity": 0.3},
         "encoding": {"x": {**x, "field": "lo"}, "x2": {"field": "hi"},
                      "tooltip": [{"field": "what", "type": _N, "title": "band"},
                                  {"field": "lo", "type": _Q, "format": ".2f"},
                                  {"field": "hi", "type": _Q, "format": ".2f"}]}},
        {"mark": {"type": "point", "filled": True, "size": 60, "opacity": 0.85},
         "encoding": {"x": {**x, "field": "success"}, "y": y, "color": colour,
                      "yOffset": {"field": "variant", "type": _N, "sort": variants},
                      "tooltip": [{"field": "agent", "type": _N}, {"field": "level", "type": _N, "title": group},
                                  {"field": "success", "type": _Q, "format": ".3f"}]}}]}
    return spec, plot, plot.to_csv(index=False).encode()


# ------------------------------------------------------------------------------------------ Procrustes UMAP
OVERLAY_COLOURS = ("#1f4e9c", "#e8710a")  # reference, other model
FACTOR_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
#: colouring by the colour factor draws each colour word in its own hue (minigrid's, darkened where pure green or
#: yellow would not read on white), so "red" is never drawn blue
COLOUR_WORD_HUES = {"red": "#e41a1c", "green": "#2ca02c", "blue": "#1f4eb4", "purple": "#7027c3",
                    "yellow": "#d4a500", "grey": "#808080"}


@st.cache_resource(max_entries=32, show_spinner=False)
def umap_alignment(tok: str, spaces: Spaces, ref: str) -> tuple[projection.AlignedLayouts, dict[str, np.ndarray]]:
    """(every space's UMAP layout aligned to ``ref``'s, the raw layouts), keyed by space name: least-squares
    rotation/reflection, scaled to the reference layout's size (``scale="match"``: with the least-squares scale,
    layouts that share little structure shrink towards a point and the overlay shows nothing). The layouts must
    be ready or computable (the page shows the spinner while they are computed)."""
    raw = {m: data.layout(tok, m, s) for m, s in spaces}
    return projection.align_layouts(raw, reference=ref, scale="match"), raw


#: the Procrustes page's layouts: the joint layout (default), or each space's own UMAP aligned in 2-D
LAYOUTS = {"joint": "joint: full-space Procrustes, then one UMAP", "own": "each space's own UMAP"}
#: Plotly's "Viridis" as its validation writes it (the figures here are not validated when built)
VIRIDIS = plotly.colors.get_colorscale("Viridis")
PK = "P@k"  #: colouring by per-item P@k with the reference (the other colourings are the factors)
TOP_MOVERS = 15  #: the overlay's lines join the positions of the top movers when nothing is selected


@st.cache_resource(max_entries=32, show_spinner=False)
def umap_joint(tok: str, spaces: Spaces, ref: str) -> projection.AlignedLayouts:
    """Every space's position in the joint layout around ``ref`` (:func:`core.report.joint_layout`: full-space
    Procrustes onto the reference, then one UMAP of the stacked aligned spaces). It must be ready or computable
    (the page shows the spinner while it is computed)."""
    layouts = data.joint_layout(tok, spaces, ref)
    return projection.AlignedLayouts(reference=ref, method="joint", layouts=layouts, rotation={}, scale={},
                                     disparity={}, conventions=projection.JOINT_CONVENTIONS)


def aligned(tok: str, spaces: Spaces, ref: str, method: str) -> projection.AlignedLayouts:
    """The layouts a Procrustes figure draws: ``method`` "joint" (:func:`umap_joint`) or "own"
    (:func:`umap_alignment`)."""
    if method not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {method!r}")
    return umap_joint(tok, spaces, ref) if method == "joint" else umap_alignment(tok, spaces, ref)[0]


def panel_precision(tok: str, spaces: Spaces, ref: str, k: int) -> dict[str, np.ndarray]:
    """Space name -> (n,) per-item P@k with the reference (:func:`ui.data.per_item`); the reference's own entry
    is the mean over the other spaces (all ones when it is alone): where on its map the others keep its
    neighbourhoods."""
    seeds = dict(spaces)
    out = {m: data.per_item(tok, ref, seeds[ref], m, s, k) for m, s in spaces if m != ref}
    out[ref] = np.mean(list(out.values()), axis=0) if out else np.ones(N)
    return out


def _factor_colours(colour_by: str) -> tuple[list[str], dict[str, str]]:
    md = data.metadata()
    levels = list(dict.fromkeys(md[colour_by]))
    if colour_by == "colour":
        cmap = {lv: COLOUR_WORD_HUES[lv] for lv in levels}
    else:
        cmap = {lv: FACTOR_PALETTE[i % len(FACTOR_PALETTE)] for i, lv in enumerate(levels)}
    return [cmap[v] for v in md[colour_by]], cmap


def _points(xy: np.ndarray, name: str, colours: list[str] | str | np.ndarray, sel: tuple[int, ...], size: int = 7,
            hover: str = "", **marker: Any) -> dict[str, Any]:
    """One space's 108 instructions; hover = the instruction (then ``hover``, a Plotly hover template);
    customdata = its index (for selections)."""
    tr = _scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, text=INSTRUCTIONS, customdata=np.arange(N),
                  hovertemplate="%{text}" + hover + "<extra>" + name + "</extra>",
                  marker=dict(color=colours, size=size, **marker))
    if sel:
        tr.update(selectedpoints=list(sel), unselected=dict(marker=dict(opacity=0.15)))
    return tr


#: UMAP axes have no units: no ticks, grid or zero line
_BARE_AXIS = dict(showticklabels=False, zeroline=False, showgrid=False)


def _axis_suffix(j: int) -> str:
    """Plotly's name suffix of panel j's axes (row-major): x/y for the first panel, then x2/y2, x3/y3, ..."""
    return "" if j == 0 else str(j + 1)


def _grid(rows: int, cols: int, titles: list[str], hspace: float, vspace: float) -> dict[str, Any]:
    """Layout of a rows x cols grid of panels (what ``plotly.subplots.make_subplots`` writes, without its
    validation): panel j (row-major) uses axes x{j+1}/y{j+1}; its title is an annotation above it."""
    w, h = (1 - hspace * (cols - 1)) / cols, (1 - vspace * (rows - 1)) / rows
    layout: dict[str, Any] = {"annotations": []}
    for j, title in enumerate(titles):
        r, c = divmod(j, cols)
        x0, y1 = c * (w + hspace), 1 - r * (h + vspace)
        x = [round(min(max(v, 0.0), 1.0), 9) for v in (x0, x0 + w)]  # no 1.0000000000000002
        y = [round(min(max(v, 0.0), 1.0), 9) for v in (y1 - h, y1)]
        ax = _axis_suffix(j)
        layout[f"xaxis{ax}"] = dict(domain=x, anchor=f"y{ax}", **_BARE_AXIS)
        layout[f"yaxis{ax}"] = dict(domain=y, anchor=f"x{ax}", **_BARE_AXIS)
        layout["annotations"].append(dict(text=title, x=(x[0] + x[1]) / 2, y=y[1], xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))
    return layout


def selected_indices(event: Any) -> list[int]:
    """Instruction indices of the points selected in a UMAP chart's selection event (a point's customdata is
    its instruction index; Plotly reports it as a list or as {"0": index}). [] when nothing usable is selected."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    out = set()
    for p in points:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        elif isinstance(cd, dict):
            cd = cd.get("0", next(iter(cd.values()), None))
        try:
            i = int(cd)
        except (TypeError, ValueError):
            continue
        if 0 <= i < N:
            out.add(i)
    return sorted(out)


@st.cache_resource(max_entries=64, show_spinner=False)
def umap_multiples(tok: str, spaces: Spaces, ref: str, colour_by: str, sel: tuple[int, ...], method: str = "own",
                   k: int = 15) -> go.Figure:
    """Small multiples: one panel per space (``method``: the joint layout or each space's own, see
    :func:`aligned`), points coloured by the factor ``colour_by`` or, for :data:`PK`, by per-item P@k with the
    reference (:func:`panel_precision`, one colour scale 0..1 for every panel); the instructions in ``sel``
    highlighted in every panel."""
    al = aligned(tok, spaces, ref, method)
    cols = min(3, len(spaces))
    rows = int(np.ceil(len(spaces) / cols))
    by_pk = colour_by == PK
    if by_pk:
        pk = panel_precision(tok, spaces, ref, k)
        others = len(spaces) - 1
        titles = [data.label(m, s) + (f" (reference; mean of {others})" if m == ref and others > 1 else
                                      " (reference)" if m == ref else f" · P@{k} {pk[m].mean():.2f}")
                  for m, s in spaces]
    else:
        colours, cmap = _factor_colours(colour_by)
        titles = [data.label(m, s) + (" (reference)" if m == ref else
                                      f" · 2-D disparity {al.disparity[m]:.2f}" if method == "own" else "")
                  for m, s in spaces]
    traces = []
    for j, (m, s) in enumerate(spaces):
        ax = _axis_suffix(j)
        if by_pk:
            tr = _points(al.layouts[m], data.label(m, s), pk[m], sel, hover=f"<br>P@{k} %{{marker.color:.2f}}",
                         coloraxis="coloraxis")
        else:
            tr = _points(al.layouts[m], data.label(m, s), colours, sel)
        traces.append(tr | dict(xaxis=f"x{ax}", yaxis=f"y{ax}", showlegend=False))
    layout = _grid(rows, cols, titles, hspace=0.03, vspace=0.08)
    layout.update(height=330 * rows, margin=dict(l=5, r=5, t=40, b=5), dragmode="lasso", clickmode="event+select")
    if by_pk:
        layout["coloraxis"] = dict(colorscale=VIRIDIS, cmin=0, cmax=1, colorbar=dict(
            title=dict(text=f"P@{k}", side="right"), thickness=12, len=min(1.0, 330 / layout["height"] + 0.1)))
    else:
        for lv, c in cmap.items():  # legend only
            traces.append(_scatter(x=[None], y=[None], mode="markers", name=str(lv), marker=dict(color=c, size=9),
                                   legendgroup=str(lv), showlegend=True, hoverinfo="skip"))
        layout["legend"] = dict(title=dict(text=colour_by), orientation="h", y=-0.02)
    return _figure(traces, layout)


def top_movers(al: projection.AlignedLayouts, other: str, n: int = TOP_MOVERS) -> list[int]:
    """The ``n`` instructions that moved most between the reference and ``other`` in the aligned layouts
    (relative displacement, :func:`core.projection.displacement_table`), largest first."""
    pair = projection.AlignedLayouts(reference=al.reference, method=al.method,
                                     layouts={al.reference: al.layouts[al.reference], other: al.layouts[other]},
                                     rotation={}, scale={}, disparity={})
    return [int(i) for i in projection.displacement_table(pair)["item"][:n]]


@st.cache_resource(max_entries=64, show_spinner=False)
def umap_overlay(tok: str, spaces: Spaces, ref: str, other: str, sel: tuple[int, ...], method: str = "own"
                 ) -> go.Figure:
    """``ref``'s and ``other``'s layouts (``method``, see :func:`aligned`) in one panel, one colour per model,
    a grey line joining the two positions of each selected instruction or, without a selection, of the
    :data:`TOP_MOVERS` instructions that moved most. Not coloured by a factor: here the question is
    how far each instruction moved, and a new colouring need not redraw it."""
    al = aligned(tok, spaces, ref, method)
    seeds = dict(spaces)
    A, B = al.layouts[ref], al.layouts[other]
    idx = list(sel) if sel else top_movers(al, other)
    lx, ly = np.full(3 * len(idx), np.nan), np.full(3 * len(idx), np.nan)
    lx[0::3], lx[1::3] = A[idx, 0], B[idx, 0]
    ly[0::3], ly[1::3] = A[idx, 1], B[idx, 1]
    what = "selected" if sel else f"top {len(idx)} movers"
    traces = [_scatter(x=lx, y=ly, mode="lines", line=dict(color="#888888", width=1.2), hoverinfo="skip",
                       name=f"same instruction ({what})"),
              _points(A, data.label(ref, seeds[ref]), OVERLAY_COLOURS[0], sel, size=8, symbol="circle"),
              _points(B, data.label(other, seeds[other]), OVERLAY_COLOURS[1], sel, size=8, symbol="x")]
    return _figure(traces, dict(height=520, margin=dict(l=5, r=5, t=10, b=5), legend=dict(orientation="h"),
                                xaxis=_BARE_AXIS, yaxis=_BARE_AXIS))


@st.cache_resource(max_entries=32, show_spinner=False)
def umap_tables(tok: str, spaces: Spaces, ref: str, k: int = 5, method: str = "own"
                ) -> tuple[pd.DataFrame, list[str], bytes, bytes]:
    """(displacement table: one row per instruction, one column per aligned space plus their mean, largest
    first; its space columns; the table as CSV; every space's coordinates in the ``method`` layouts, and for
    "own" also before the 2-D alignment, as CSV)."""
    al = aligned(tok, spaces, ref, method)
    raw = umap_alignment(tok, spaces, ref)[1] if method == "own" else {}
    seeds = dict(spaces)
    md = data.metadata()
    disp = projection.displacement_table(al, k=k)
    disp["model"] = disp["model"].map(lambda m: data.label(m, seeds[m]))
    wide = disp.pivot(index="item", columns="model", values="relative_displacement")
    dt = pd.DataFrame({"instruction": INSTRUCTIONS})
    for c in wide.columns:
        dt[c] = wide[c].reindex(range(N)).to_numpy()
    cols = list(wide.columns)
    dt["mean"] = dt[cols].mean(axis=1)
    for f in FACTORS:
        dt[f] = md[f]
    dt = dt.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    coords = pd.concat([pd.DataFrame({"instruction": INSTRUCTIONS, "space": data.label(m, s),
                                      "reference": data.label(ref, seeds[ref]), "layout": method,
                                      "x_aligned": al.layouts[m][:, 0], "y_aligned": al.layouts[m][:, 1],
                                      **({"x_umap": raw[m][:, 0], "y_umap": raw[m][:, 1]} if raw else {}),
                                      **{f: md[f] for f in FACTORS}})
                        for m, s in spaces], ignore_index=True)
    return dt, cols, dt.to_csv(index=False).encode(), coords.to_csv(index=False).encode()

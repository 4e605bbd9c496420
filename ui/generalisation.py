"""Loader and figures of the Generalisation page (issue 16): held-out splits and language-initialised words.

The analysis is :mod:`core.generalisation` (shipped tables in ``assets/generalisation/``, read by
``core.generalisation.load``); here it is held per server (``st.cache_data``) and drawn as plain Vega-Lite specs,
as :mod:`ui.figures` does. Each builder returns ``(spec, plot data, table)``: the page draws the spec over the
plot data and puts the table, with a CSV download, under the figure. Never mutate what a loader returns.
"""
from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st

from core import generalisation as G
from ui import data

_Q, _N = "quantitative", "nominal"
ITEMS = ("trained items", "held-out items (zero-shot)")
MEASURES = ("held-out items", "trained items", "same items, full-data agents")
FACTORS = ("colour", "object", "verb")
SPLIT_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
INIT_COLOURS = {"identity": "#333333", "random": "#999999", "smollm2": "#d62728", "minilm": "#1f77b4",
                "spacy": "#2ca02c"}
HEIGHT = 300


def token() -> str:
    """Fingerprint of the shipped generalisation files (names, sizes, mtimes)."""
    d = G.results_dir()
    return hashlib.sha256("|".join([str(d), *data._scan(d, "*.csv"), *data._scan(d, "manifest.json")]).encode()
                          ).hexdigest()[:16]


@st.cache_data(max_entries=4, show_spinner="Reading the generalisation results…")
def results(gtok: str) -> dict[str, Any]:
    """``core.generalisation.load()`` (raises ``core.generalisation.NotShippedError``, which is not cached)."""
    return G.load()


def references(res: dict[str, Any]) -> list[str]:
    """The reference language models of the shipped tables, in :data:`core.generalisation.REFERENCES` order."""
    have = set(res["alignment_curves"].get("reference", pd.Series(dtype=str))) | set(
        res["heldout_alignment"].get("reference", pd.Series(dtype=str)))
    return [r for r in G.REFERENCES if r in have]


def _identity_splits(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs.word_init == "identity") & (runs.split != "none")]


def _y(title: str, domain: list[float] | None = None) -> dict[str, Any]:
    y = {"type": _Q, "title": title}
    if domain is not None:
        y["scale"] = {"domain": domain}
    return y


def _same_y(spec: dict[str, Any], title: str, domain: list[float] | None = None) -> dict[str, Any]:
    """Every layer's y axis the same title (and scale): Vega-Lite otherwise titles a shared axis "Mean of ..." of
    each layer's field and takes the data's extent where one layer has no explicit domain."""
    for lay in spec["layer"]:
        y = lay["encoding"].get("y")
        if y is not None:
            y["title"] = title
            if domain is not None:
                y["scale"] = {"domain": domain}
    return spec


def _legend() -> dict[str, Any]:
    return {"orient": "top", "direction": "horizontal", "title": None, "labelLimit": 260}


# ------------------------------------------------------------------------------------------ (a) success
def success_figure(res: dict[str, Any]) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Zero-shot success on held-out vs trained items per split: one dot per seed, a tick at the mean."""
    runs = _identity_splits(res["runs"])
    plot = pd.concat([pd.DataFrame({"split": runs.split, "seed": runs.seed, "run": runs.run, "items": it,
                                    "success": runs[col]})
                      for it, col in zip(ITEMS, ("success_trained", "success_held_out"))], ignore_index=True)
    splits = list(dict.fromkeys(runs.split))
    x = {"field": "split", "type": _N, "title": "held-out split", "sort": splits, "axis": {"labelAngle": 0}}
    colour = {"field": "items", "type": _N, "scale": {"domain": list(ITEMS), "range": ["#7f7f7f", "#d62728"]},
              "legend": _legend()}
    tip = [{"field": "split"}, {"field": "run"}, {"field": "items"},
           {"field": "success", "type": _Q, "format": ".3f"}]
    spec = {"height": HEIGHT, "layer": [
        {"mark": {"type": "point", "filled": True, "size": 70, "opacity": 0.8},
         "encoding": {"x": x, "xOffset": {"field": "items", "sort": list(ITEMS)}, "y": _y("success", [0, 1]),
                      "color": colour, "tooltip": tip}},
        {"mark": {"type": "tick", "thickness": 3, "size": 26},
         "encoding": {"x": x, "xOffset": {"field": "items", "sort": list(ITEMS)},
                      "y": {"aggregate": "mean", "field": "success", "type": _Q},
                      "color": colour, "tooltip": [{"field": "split"}, {"field": "items"},
                                                   {"aggregate": "mean", "field": "success", "format": ".3f",
                                                    "title": "mean over seeds"}]}}]}
    _same_y(spec, "success", [0, 1])
    table = runs[["split", "seed", "run", "n_held_out", "success_trained", "success_held_out", "success"]]
    return spec, plot, table.reset_index(drop=True)


def outcomes_figure(res: dict[str, Any]) -> tuple[dict | None, pd.DataFrame, pd.DataFrame]:
    """What the agents end up doing on held-out instructions (identity init): per split, the share of episodes by
    the object they end with (core.generalisation.OUTCOMES), successes and failures apart."""
    from core.generalisation import OUTCOMES

    o = res.get("held_out_outcomes")
    if o is None or not len(o):
        return None, pd.DataFrame(), pd.DataFrame()
    o = o[o.word_init == "identity"]
    g = o.groupby(["split", "success", "outcome"], sort=False).episodes.sum().reset_index()
    g["share"] = g.episodes / g.groupby("split").episodes.transform("sum")
    g["episode"] = np.where(g.success.astype(bool), "success", "failure")
    splits = list(dict.fromkeys(g.split))
    spec = {"height": 40 * max(1, len(splits)) + 40, "mark": {"type": "bar"},
            "encoding": {"y": {"field": "split", "type": _N, "sort": splits, "title": "held-out split"},
                         "x": {"field": "share", "type": _Q, "stack": "zero", "title": "share of held-out episodes",
                               "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
                         "color": {"field": "outcome", "type": _N, "sort": list(OUTCOMES),
                                   "scale": {"domain": list(OUTCOMES),
                                             "range": ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#c7c7c7"]},
                                   "legend": _legend()},
                         "opacity": {"field": "episode", "type": _N, "scale": {"domain": ["success", "failure"],
                                                                               "range": [1.0, 0.55]},
                                     "legend": _legend()},
                         "order": {"field": "episode", "sort": "descending"},
                         "tooltip": [{"field": "split"}, {"field": "episode"}, {"field": "outcome"},
                                     {"field": "episodes", "type": _Q},
                                     {"field": "share", "type": _Q, "format": ".1%"}]}}
    return spec, g, o.reset_index(drop=True)


# ------------------------------------------------------------------------------------------ (b) alignment
def alignment_figure(res: dict[str, Any], split: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """P@k of the held-out items vs the trained items vs the same items in the full-data agents, per reference
    model (full 108, neighbours from all items), one dot per seed; grey: the permutation null from its mean to
    its 97.5th percentile (mean over seeds)."""
    ha = res["heldout_alignment"]
    ha = ha[(ha.word_init == "identity") & (ha.split == split)]
    cols = {"held-out items": "held_out", "trained items": "trained",
            "same items, full-data agents": "held_out_full_data_agent"}
    measures = [m for m in MEASURES if cols[m] in ha]
    plot = pd.concat([pd.DataFrame({"reference": ha.reference, "seed": ha.seed, "run": ha.run, "measure": m,
                                    "p": ha[cols[m]], "null_mean": ha.null_mean, "null_hi": ha.null_hi,
                                    "p_value": ha.p}) for m in measures], ignore_index=True)
    plot = plot.dropna(subset=["p"])
    order = list(dict.fromkeys([r for r in G.REFERENCES if r in set(ha.reference)] + list(ha.reference)))
    x = {"field": "reference", "type": _N, "title": None, "sort": order, "axis": {"labelAngle": -30}}
    colour = {"field": "measure", "type": _N, "legend": _legend(),
              "scale": {"domain": list(MEASURES), "range": ["#d62728", "#7f7f7f", "#1f77b4"]}}
    k = int(ha.k.iloc[0]) if len(ha) else G.K
    spec = {"height": HEIGHT, "layer": [
        {"mark": {"type": "bar", "color": "#bbbbbb", "opacity": 0.45},
         "encoding": {"x": x, "y": {"aggregate": "mean", "field": "null_mean", "type": _Q},
                      "y2": {"aggregate": "mean", "field": "null_hi"},
                      "tooltip": [{"field": "reference"},
                                  {"aggregate": "mean", "field": "null_mean", "format": ".3f", "title": "null mean"},
                                  {"aggregate": "mean", "field": "null_hi", "format": ".3f",
                                   "title": "null 97.5th percentile"}]}},
        {"mark": {"type": "point", "filled": True, "size": 60, "opacity": 0.85},
         "encoding": {"x": x, "xOffset": {"field": "measure", "sort": measures}, "color": colour,
                      "y": _y(f"P@{k} with the reference", [0, 1]),
                      "tooltip": [{"field": "reference"}, {"field": "run"}, {"field": "measure"},
                                  {"field": "p", "type": _Q, "format": ".3f", "title": f"P@{k}"},
                                  {"field": "p_value", "type": _Q, "format": ".4f",
                                   "title": "p (held-out vs null)"}]}},
        {"mark": {"type": "tick", "thickness": 2, "size": 18},
         "encoding": {"x": x, "xOffset": {"field": "measure", "sort": measures}, "color": colour,
                      "y": {"aggregate": "mean", "field": "p", "type": _Q}}}]}
    _same_y(spec, f"P@{k} with the reference", [0, 1])
    table = ha.drop(columns=["split", "word_init"]).reset_index(drop=True)
    return spec, plot, table


# ------------------------------------------------------------------------------------------ (c) nearest
def nearest_figure(res: dict[str, Any]) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Share of held-out items whose nearest trained instruction (in the agent's E_L) shares the colour / the
    object / the verb, per split (bar: mean over seeds; dots: seeds), against chance (black tick: the share of
    trained items that share the factor)."""
    nt = res["nearest_trained"]
    if not len(nt):
        return {}, pd.DataFrame(), pd.DataFrame()
    nt = nt[nt.word_init == "identity"]
    rows = []
    for (split, seed, run), g in nt.groupby(["split", "seed", "run"], sort=False):
        for f in FACTORS:
            rows.append({"split": split, "seed": seed, "run": run, "factor": f, "n_held_out": len(g),
                         "share": float(g[f"shares_{f}"].astype(bool).mean()),
                         "chance": float(g[f"chance_{f}"].mean())})
    plot = pd.DataFrame(rows)
    splits = list(dict.fromkeys(plot.split))
    x = {"field": "factor", "type": _N, "title": "shared factor", "sort": list(FACTORS), "axis": {"labelAngle": 0}}
    off = {"field": "split", "sort": splits}
    colour = {"field": "split", "type": _N, "legend": _legend(), "sort": splits,
              "scale": {"domain": splits, "range": SPLIT_COLOURS[: len(splits)]}}
    spec = {"height": HEIGHT, "layer": [
        {"mark": {"type": "bar", "opacity": 0.45},
         "encoding": {"x": x, "xOffset": off, "color": colour,
                      "y": {"aggregate": "mean", "field": "share", "type": _Q,
                            "title": "share of held-out items", "scale": {"domain": [0, 1]}},
                      "tooltip": [{"field": "split"}, {"field": "factor"},
                                  {"aggregate": "mean", "field": "share", "format": ".3f", "title": "mean share"},
                                  {"aggregate": "mean", "field": "chance", "format": ".3f", "title": "chance"}]}},
        {"mark": {"type": "point", "filled": True, "size": 45},
         "encoding": {"x": x, "xOffset": off, "color": colour, "y": {"field": "share", "type": _Q},
                      "tooltip": [{"field": "run"}, {"field": "factor"},
                                  {"field": "share", "type": _Q, "format": ".3f"}]}},
        {"mark": {"type": "tick", "color": "black", "thickness": 2, "size": 16},
         "encoding": {"x": x, "xOffset": off, "y": {"aggregate": "mean", "field": "chance", "type": _Q},
                      "tooltip": [{"field": "split"}, {"field": "factor"},
                                  {"aggregate": "mean", "field": "chance", "format": ".3f", "title": "chance"}]}}]}
    _same_y(spec, "share of held-out items", [0, 1])
    table = nt.drop(columns=["word_init"]).reset_index(drop=True)
    return spec, plot, table


# ------------------------------------------------------------------------------------------ (d) word inits
def _init_runs(res: dict[str, Any]) -> pd.DataFrame:
    runs = res["runs"]
    return runs[runs.split == G.INIT_SPLIT]


def _init_order(inits) -> list[str]:
    have = list(dict.fromkeys(inits))
    return [i for i in G.INIT_ORDER if i in have] + [i for i in have if i not in G.INIT_ORDER]


def _init_colour(inits: list[str]) -> dict[str, Any]:
    return {"field": "word_init", "type": _N, "title": "word init", "legend": _legend(), "sort": inits,
            "scale": {"domain": inits, "range": [INIT_COLOURS.get(i, "#8c564b") for i in inits]}}


def curves_figure(res: dict[str, Any], reference: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Alignment (P@k with ``reference``) across training steps per word init: thin lines the seeds, thick the
    mean over seeds."""
    runs = _init_runs(res)
    cur = res["alignment_curves"]
    plot = cur[cur.reference == reference].merge(runs[["run", "word_init", "seed"]], on="run")
    inits = _init_order(plot.word_init)
    x = {"field": "step", "type": _Q, "title": "training step"}
    colour = _init_colour(inits)
    spec = {"height": HEIGHT, "layer": [
        {"mark": {"type": "line", "strokeWidth": 1, "opacity": 0.35},
         "encoding": {"x": x, "y": {"field": "precision", "type": _Q}, "color": colour, "detail": {"field": "run"},
                      "tooltip": [{"field": "run"}, {"field": "step"},
                                  {"field": "precision", "type": _Q, "format": ".3f", "title": f"P@{G.K}"}]}},
        {"mark": {"type": "line", "strokeWidth": 3, "point": True},
         "encoding": {"x": x, "color": colour,
                      "y": {"aggregate": "mean", "field": "precision", "type": _Q,
                            "title": f"P@{G.K} with {reference}"},
                      "tooltip": [{"field": "word_init"}, {"field": "step"},
                                  {"aggregate": "mean", "field": "precision", "format": ".3f",
                                   "title": "mean over seeds"}]}}]}
    _same_y(spec, f"P@{G.K} with {reference}")
    return spec, plot.reset_index(drop=True), plot[["run", "word_init", "seed", "step", "reference", "precision"]]


def init_table(res: dict[str, Any], reference: str) -> pd.DataFrame:
    """Per word-init run: final success, steps to 0.90, held-out success, initial and final P@k with
    ``reference`` and the retained fraction (final / initial)."""
    runs = _init_runs(res)
    ia = res["init_alignment"]
    ia = ia[ia.reference == reference][["run", "initial", "final", "retained"]]
    out = runs[["run", "word_init", "seed", "success", "steps_to_090", "success_held_out", "success_trained",
                "word_init_source", "word_init_weights_sha256"]].merge(ia, on="run", how="left")
    out.insert(5, "reference", reference)
    order = {i: n for n, i in enumerate(_init_order(out.word_init))}
    return out.sort_values(["word_init", "seed"], key=lambda s: s.map(order) if s.name == "word_init" else s
                           ).reset_index(drop=True)


def init_figure(table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Per word init, from :func:`init_table`: final success and held-out success (left), initial -> final
    alignment (right); dots the seeds, ticks the means."""
    inits = _init_order(table.word_init)
    colour = _init_colour(inits)
    long = pd.concat([pd.DataFrame({"run": table.run, "word_init": table.word_init, "seed": table.seed,
                                    "panel": panel, "measure": m, "value": table[col]})
                      for panel, m, col in (("success", "final success", "success"),
                                            ("success", "held-out success", "success_held_out"),
                                            ("alignment", "initial P@k", "initial"),
                                            ("alignment", "final P@k", "final"))], ignore_index=True)
    long = long.dropna(subset=["value"])
    x = {"field": "word_init", "type": _N, "title": None, "sort": inits, "axis": {"labelAngle": 0}}

    def panel(name: str, measures: list[str], title: str) -> dict[str, Any]:
        off = {"field": "measure", "sort": measures}
        shape = {"field": "measure", "type": _N, "sort": measures, "legend": _legend(),
                 "scale": {"domain": measures, "range": ["circle", "triangle-up"]}}
        return {"transform": [{"filter": {"field": "panel", "equal": name}}], "width": 300, "height": 220,
                "layer": [
                    {"mark": {"type": "point", "filled": True, "size": 60, "opacity": 0.8},
                     "encoding": {"x": x, "xOffset": off, "color": colour, "shape": shape,
                                  "y": _y(title, [0, 1]),
                                  "tooltip": [{"field": "run"}, {"field": "measure"},
                                              {"field": "value", "type": _Q, "format": ".3f"}]}},
                    {"mark": {"type": "tick", "thickness": 2, "size": 16},
                     "encoding": {"x": x, "xOffset": off, "color": colour,
                                  "y": {"aggregate": "mean", "field": "value", "type": _Q}}}],
                "_title": title}

    panels = [panel("success", ["final success", "held-out success"], "success"),
              panel("alignment", ["initial P@k", "final P@k"], f"P@{G.K} with the reference")]
    for p in panels:
        _same_y(p, p.pop("_title"), [0, 1])
    spec = {"hconcat": panels,
            "resolve": {"scale": {"color": "shared", "shape": "independent"}}}
    return spec, long


# ------------------------------------------------------------------------------------------ held-out items
def agent_link(checkpoint: str, instruction: str) -> dict[str, str]:
    """The Agent page's URL parameters that open ``checkpoint`` on ``instruction``."""
    return {"checkpoint": checkpoint, "instruction": instruction}


def held_out_table(res: dict[str, Any], shipped: list[str]) -> pd.DataFrame:
    """One row per held-out instruction of each split: zero-shot success (mean over the split's seeds), the
    nearest trained instruction (seed 0, or the first seed) with its cosine, and links that open the Agent page on
    the split's seed-0 agent (when its checkpoint is shipped) and on the full-data agent alm-s0."""
    from core.splits import splits

    runs = _identity_splits(res["runs"])
    pi = res["per_instruction"].merge(runs[["run", "split"]], on="run")
    nt = res["nearest_trained"]
    nt = nt[nt.word_init == "identity"] if len(nt) else nt
    rows = []
    for split, items in splits().items():
        g = runs[runs.split == split]
        agent = next((r for r in sorted(g.run, key=lambda r: int(r.rsplit("-s", 1)[1])) if r in shipped), None)
        first = nt[(nt.split == split)] if len(nt) else nt
        if len(first):
            first = first[first.seed == first.seed.min()]
        for t in items:
            s = pi[(pi.split == split) & (pi.instruction == t)].success
            near = first[first.instruction == t] if len(first) else first
            rows.append({
                "split": split, "instruction": t, "seeds": int(len(s)),
                "zero-shot success": float(s.mean()) if len(s) else np.nan,
                "nearest trained": near.nearest_trained.iloc[0] if len(near) else "",
                "cosine": float(near.cosine.iloc[0]) if len(near) else np.nan,
                "agent": agent or "",
                "watch the held-out agent": f"agent?{urlencode(agent_link(agent, t))}" if agent else None,
                "watch alm-s0": f"agent?{urlencode(agent_link('alm-s0', t))}" if "alm-s0" in shipped else None})
    return pd.DataFrame(rows)

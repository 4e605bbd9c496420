"""Cached loaders and figures of the "Why they align" page, and the Overview's line on what learning does.

The work is done in :mod:`core.why`, :mod:`core.dynamics`, :mod:`core.controls` and :mod:`core.multiverse`
(kept in the shared store); here the results are held per server (``st.cache_resource``: never mutate them) and
drawn as Vega-Lite specs (plain dicts, as :mod:`ui.figures`). Every loader takes ``tok`` (the app's fingerprint
of the embedding files, :func:`ui.data.token`) and/or ``xtok`` (:func:`token`: ``tok`` plus the trajectory and
multiverse files), so a newly shipped trajectory or multiverse is picked up without a restart.

A *space* is ``(name, seed, step)``: a shipped embedding (``step`` None, read by :func:`ui.data.space`) or the
snapshot at ``step`` of the recorded trajectory of agent ``name`` seed ``seed``.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import metrics, report
from core import why as W
from ui import data, figures
from ui.state import FACTORS, INSTRUCTIONS, N

Space = tuple[str, "int | None", "int | None"]
_Q, _N = "quantitative", "nominal"
AXIS_EXTENT = 48  #: fixed y-axis width (px), so that charts stacked on one step axis line up
#: (chart heights below are whole charts: Streamlit fits the legend, the axes and the title inside them)
MULTIVERSE_BINS = np.linspace(0.0, 1.0, 51)  #: histogram bins of P@k over analysis choices (width 0.02)
#: every legend above its chart: charts stacked on one step axis then have plots of the same width
TOP_LEGEND = {"orient": "top", "direction": "horizontal", "labelLimit": 260, "symbolType": "stroke",
              "symbolOpacity": 1, "symbolStrokeWidth": 3}
#: the multiverse summary's figures that the answer states (core.multiverse.SUMMARY_COLUMNS)
MULTIVERSE_FIGURES = ("n_choices", "q05", "q95", "median", "last_layer", "split_half", "split_half_choice",
                      "split_half_last_layer", "half_chance", "untrained_q05", "untrained_q95", "untrained_median")
#: the y-axis titles do not name k: a spec that does not change with k is updated in place by the browser (only
#: its data changes), not redrawn from scratch
METRIC_TITLES = {"pk": "P@k", "cka": "CKA (linear)", "rsa": "RSA (Spearman)", "pk_instruction": "P@k(i)"}
SHARE_MEASURE = "neighbour share"
#: every chart of this page is drawn on a canvas, without per-mark ARIA labels: its charts hold ~2,000 marks, which
#: as SVG cost ~18,000 DOM attribute writes (measured in Chromium with all ten on one page, before the sections
#: became tabs: reload settled 1.13 s as SVG, 1.05 s as canvas without ARIA). The chart's ``description`` stays its
#: accessible name, and every number stays in the table and the CSV under it.
DRAWING = {"usermeta": {"embedOptions": {"renderer": "canvas"}}, "config": {"mark": {"aria": False}}}


def token(tok: str) -> str:
    """``tok`` plus a fingerprint of the trajectory and multiverse files (names, sizes, mtimes)."""
    from core import dynamics, multiverse

    parts = [tok, *data._scan(dynamics.trajectories_dir(), "*.json"),
             *data._scan(multiverse.multiverse_dir(), "*.*")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def untrained_name(agent: str) -> str:
    return f"untrained-{agent}"


def record_command(agent: str, seed: int) -> str:
    """The command that records a trajectory of ``agent`` seed ``seed``: the shipped run's own command (from its
    training manifest) with ``--record``, else the generic one."""
    try:
        cmd = str(_training_manifest(agent, seed).get("command") or "")
    except (OSError, ValueError):
        cmd = ""
    if not cmd:
        return f"python -m core train --seed {seed} --record   # shipped runs: bash scripts/train_shipped.sh"
    return cmd if "--record" in cmd else f"{cmd} --record"


def _training_manifest(agent: str, seed: int) -> dict[str, Any]:
    """``assets/agents/<agent>-s<seed>.json`` (written by ``python -m core train``), {} when absent."""
    from core import store

    p = store.assets_dir() / "agents" / f"{store.embedding_file_name(agent, seed)}.json"
    return store.read_json(p) if p.exists() else {}


# ------------------------------------------------------------------------------------------ trajectories
@st.cache_data(max_entries=8, show_spinner=False)
def trajectory_seeds(xtok: str, agent: str) -> list[int]:
    """Seeds of ``agent`` with a recorded trajectory."""
    from core import dynamics

    return [s for n, s in dynamics.available() if n == agent]


@st.cache_resource(max_entries=32, show_spinner=False)
def trajectory(xtok: str, agent: str, seed: int):
    """:func:`core.dynamics.load_trajectory` (raises TrajectoryError, not cached), checked against the 108."""
    from core import dynamics

    t = dynamics.load_trajectory(agent, seed)
    if t.instructions != INSTRUCTIONS:
        raise dynamics.TrajectoryError(f"trajectory {t.stem} was recorded on another instruction set "
                                       f"({len(t.instructions)} instructions); the dashboard shows the 108")
    for a in (t.embeddings, t.steps, t.success):
        a.setflags(write=False)
    return t


def space_array(tok: str, xtok: str, sp: Space) -> np.ndarray:
    name, seed, step = sp
    if step is None:
        return data._space(tok, name, seed)[0]
    return trajectory(xtok, name, seed).at(step)


def space_label(sp: Space) -> str:
    name, seed, step = sp
    stem = data.label(name, seed)
    if step is None:
        return stem
    return f"{untrained_name(stem)} (step 0)" if step == 0 else f"{stem} step {step}"


@st.cache_resource(max_entries=512, show_spinner=False)
def counts(tok: str, xtok: str, agent: str, seed: int, model: str, model_seed: int | None) -> np.ndarray:
    """:func:`core.why.trajectory_counts` of the trajectory against a shipped space (cached in the store)."""
    c = W.trajectory_counts(trajectory(xtok, agent, seed), data._space(tok, model, model_seed)[0])
    c.setflags(write=False)
    return c


@st.cache_resource(max_entries=256, show_spinner=False)
def metrics_over_steps(tok: str, xtok: str, agent: str, seed: int, model: str, model_seed: int | None) -> pd.DataFrame:
    """:func:`core.dynamics.trajectory_metrics` (P@15, CKA, RSA per snapshot) against one shipped space."""
    from core import dynamics

    X = data._space(tok, model, model_seed)[0]
    return dynamics.trajectory_metrics(trajectory(xtok, agent, seed), {model: X}, report.K)


@st.cache_resource(max_entries=32, show_spinner=False)
def separation_over_steps(xtok: str, agent: str, seed: int) -> pd.DataFrame:
    return W.trajectory_factor_separation(trajectory(xtok, agent, seed))


# ------------------------------------------------------------------------------------------ organisation
@st.cache_resource(max_entries=128, show_spinner=False)
def separation(tok: str, xtok: str, sp: Space) -> pd.DataFrame:
    """:func:`core.controls.factor_separation` of one space (η², LOO accuracy; independent of k), one row per
    factor in ``FACTORS`` order."""
    from core.controls import factor_separation

    fs = factor_separation(space_array(tok, xtok, sp))
    return fs.set_index("factor").loc[list(FACTORS)].reset_index()  # rows in FACTORS order


@st.cache_resource(max_entries=128, show_spinner=False)
def organised_by(tok: str, xtok: str, sp: Space) -> list[tuple[str, float]]:
    """:func:`core.why.organised_by` of one space (independent of k)."""
    return W.organised_by(separation(tok, xtok, sp))


@st.cache_resource(max_entries=128, show_spinner=False)
def share_counts(tok: str, xtok: str, sp: Space) -> tuple[np.ndarray, np.ndarray]:
    """:func:`core.why.factor_share_counts` of one space, factors in ``ui.state.FACTORS`` order: the neighbour-factor
    shares of every item at every k (a new k is a slice)."""
    c, chance = W.factor_share_counts(space_array(tok, xtok, sp), factors=FACTORS)
    c.setflags(write=False)
    return c, chance


def shares(tok: str, xtok: str, sp: Space, k: int, item: int | None = None) -> pd.DataFrame:
    """Per factor (``FACTORS`` order): ``share`` of the k nearest neighbours with the item's level and its
    ``chance``, the mean over items (= :func:`core.controls.neighbour_factor_shares`), or for one ``item``."""
    c, chance = share_counts(tok, xtok, sp)
    k = metrics.check_k(k, c.shape[1])
    share = c[:, :, k - 1] / k
    if item is None:
        return pd.DataFrame({"factor": FACTORS, "share": share.mean(axis=1), "chance": chance.mean(axis=1)})
    return pd.DataFrame({"factor": FACTORS, "share": share[:, item], "chance": chance[:, item]})


@st.cache_resource(max_entries=64, show_spinner=False)
def organisation_table(tok: str, xtok: str, spaces: tuple[Space, ...], k: int) -> pd.DataFrame:
    """One row per (space, factor, measure): η², LOO accuracy and the neighbour share at k (``SHARE_MEASURE``),
    each with its chance."""
    parts = []
    for sp in spaces:
        fs = separation(tok, xtok, sp)
        sh = shares(tok, xtok, sp, k)
        parts.append(pd.DataFrame({
            "space": space_label(sp), "factor": np.tile(FACTORS, 3),
            "measure": np.repeat(["η² (variance share)", "LOO accuracy", SHARE_MEASURE], len(FACTORS)),
            "value": np.concatenate([fs["eta2"], fs["loo_centroid_acc"], sh["share"]]),
            "chance": np.concatenate([fs["eta2_null"], fs["chance"], sh["chance"]])}))
    return pd.concat(parts, ignore_index=True)


def _colours(ctx: dict[str, Any], names: list[str]) -> list[str]:
    out, ci, bi = [], 0, 0
    for m in names:
        if ctx["kinds"].get(m) == report.KIND_BASELINE:
            out.append(figures.BASE_COLOURS[bi % len(figures.BASE_COLOURS)])
            bi += 1
        else:
            out.append(figures.PALETTE[ci % len(figures.PALETTE)])
            ci += 1
    return out


@st.cache_resource(max_entries=64, show_spinner=False)
def organisation_figures(tok: str, xtok: str, spaces: tuple[Space, ...], k: int
                         ) -> tuple[list[tuple[str, dict[str, Any], pd.DataFrame]], pd.DataFrame, bytes]:
    """([(measure, Vega-Lite spec, its data)] one grouped bar chart per measure, the table (one row per space and
    measure, one column per factor and its chance), the long table as CSV).

    Bars: one group per space (its profile: which factors organise it), one bar per factor in the factor's colour;
    black tick on each bar: that measure's chance level (η²: (L-1)/(n-1); LOO: 1/L; share: the expected share of a
    random neighbour set)."""
    table = organisation_table(tok, xtok, spaces, k)
    labels = [space_label(sp) for sp in spaces]
    colour = {"field": "factor", "type": _N, "sort": list(FACTORS),
              "scale": {"domain": list(FACTORS), "range": list(figures.FACTOR_PALETTE[:len(FACTORS)])},
              "legend": {**TOP_LEGEND, "title": None, "symbolType": "square"}}
    x = {"field": "space", "type": _N, "sort": labels, "title": None,
         "axis": {"labelAngle": -30, "labelLimit": 160, "labelOverlap": False}}
    offset = {"field": "factor", "type": _N, "sort": list(FACTORS)}
    out = []
    for measure in dict.fromkeys(table["measure"]):
        part = table[table["measure"] == measure].reset_index(drop=True)
        y = {"type": _Q, "title": None, "scale": {"domain": [0, 1]}}
        tip = [{"field": "space", "type": _N}, {"field": "factor", "type": _N},
               {"field": "value", "type": _Q, "title": measure, "format": ".3f"},
               {"field": "chance", "type": _Q, "title": "chance", "format": ".3f"}]
        spec = {**DRAWING, "description": f"Factor picture: {measure}", "title": measure, "height": 360, "layer": [
            {"mark": {"type": "bar"}, "encoding": {"x": x, "xOffset": offset, "y": {**y, "field": "value"},
                                                   "color": colour, "tooltip": tip}},
            {"mark": {"type": "tick", "color": "black", "thickness": 2},
             "encoding": {"x": x, "xOffset": offset, "y": {**y, "field": "chance"}, "tooltip": tip}}]}
        out.append((measure, spec, part))
    wide = table.pivot_table(index=["space", "measure"], columns="factor", values=["value", "chance"], sort=False)
    wide.columns = [f if v == "value" else f"{f} (chance)" for v, f in wide.columns]
    wide = wide[[c for f in FACTORS for c in (f, f"{f} (chance)")]].reset_index()
    csv = table.assign(k=np.where(table["measure"] == SHARE_MEASURE, k, np.nan)).to_csv(index=False).encode()
    return out, wide, csv


# ------------------------------------------------------------------------------------------ learning curves
def _step_axis(max_step: int) -> dict[str, Any]:
    return {"field": "step", "type": _Q, "title": "training step", "scale": {"domain": [0, max_step], "nice": False}}


def _y(title: str, domain: list[float] | None = None) -> dict[str, Any]:
    y: dict[str, Any] = {"type": _Q, "title": title, "axis": {"minExtent": AXIS_EXTENT, "maxExtent": AXIS_EXTENT}}
    if domain is not None:
        y["scale"] = {"domain": domain, "nice": False}
    return y


@st.cache_resource(max_entries=32, show_spinner=False)
def curve_inputs(tok: str, xtok: str, agent: str, models: tuple[tuple[str, int | None], ...], what: str
                 ) -> list[tuple[str, str, int, np.ndarray, np.ndarray]]:
    """Per (model, recorded seed of ``agent``): (model, its file's label, seed, steps, values): ``what`` =
    ``counts`` (:func:`counts`: P@k of any k is a slice), or ``cka`` / ``rsa`` (:func:`metrics_over_steps`). A
    seeded model uses the file of the matching agent seed. One cached call for what a k move reads."""
    ctx = data.context(tok)
    out = []
    for m, _ in models:
        for s in trajectory_seeds(xtok, agent):
            ms = data.space_seed(ctx, m, s)
            v = counts(tok, xtok, agent, s, m, ms) if what == "counts" else \
                metrics_over_steps(tok, xtok, agent, s, m, ms)[what].to_numpy()
            out.append((m, data.label(m, ms), s, trajectory(xtok, agent, s).steps, v))
    return out


@st.cache_resource(max_entries=64, show_spinner=False)
def learning_figure(tok: str, xtok: str, agent: str, seed: int, models: tuple[tuple[str, int | None], ...],
                    k: int, metric: str, item: int) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, bytes]:
    """(Vega-Lite spec, its data, the selected seed's values (one row per step, one column per model), the CSV of
    every seed's values): ``metric`` of every snapshot of every recorded seed of
    ``agent`` against each of ``models`` ((name, seed file) per model; a seeded model uses the file of the
    matching agent seed), over training steps.

    ``metric``: ``pk`` (P@k, mean over the 108), ``pk_instruction`` (P@k(i) of instruction ``item``), ``cka``,
    ``rsa`` (k-independent; :func:`core.dynamics.trajectory_metrics`). The selected ``seed`` is drawn bold with its
    points; the other seeds thin, and their min-max band shaded. P@k draws chance k/(n-1)."""
    ctx = data.context(tok)
    title = METRIC_TITLES[metric]
    if metric in ("pk", "pk_instruction"):  # slices of the counts (a new k or instruction computes nothing else)
        parts = [(m, mf, s, steps, W.precision_over_steps(c, k, item if metric == "pk_instruction" else None))
                 for m, mf, s, steps, c in curve_inputs(tok, xtok, agent, models, "counts")]
    else:
        parts = curve_inputs(tok, xtok, agent, models, metric)
    sizes = [len(p[3]) for p in parts]
    each = lambda j: np.repeat([p[j] for p in parts], sizes)  # noqa: E731  (one value per part, per step)
    table = pd.DataFrame({"model": each(0), "model_file": each(1), "agent": np.repeat(
        [data.label(agent, p[2]) for p in parts], sizes), "seed": each(2), "metric": title,
        "k": k if metric.startswith("pk") else np.nan,
        "step": np.concatenate([p[3] for p in parts]) if parts else [],
        "value": np.concatenate([p[4] for p in parts]) if parts else [],
        "selected": np.repeat([p[2] == seed for p in parts], sizes).astype(bool)})
    band = table.groupby(["model", "step"], sort=False)["value"].agg(["min", "max"]).reset_index()
    chance = pd.DataFrame({"panel": ["chance"], "value": [float(metrics.chance_precision(N, k))]})
    plot = pd.concat([table[["model", "seed", "step", "value", "selected"]].assign(panel="curve"),
                      band.rename(columns={"min": "lo", "max": "hi"}).assign(panel="band"),
                      *([chance] if metric.startswith("pk") else [])], ignore_index=True)
    names = [m for m, _ in models]
    max_step = int(table["step"].max()) if len(table) else 1
    x = _step_axis(max_step)
    domain = [0, 1.02] if metric != "rsa" else None
    y = _y(title, domain)
    colour = {"field": "model", "type": _N, "sort": names, "scale": {"domain": names, "range": _colours(ctx, names)},
              "legend": {**TOP_LEGEND, "title": f"{data.label(agent, seed)} vs"}}
    tip = [{"field": "model", "type": _N}, {"field": "seed", "type": _Q, "title": "agent seed"},
           {"field": "step", "type": _Q}, {"field": "value", "type": _Q, "title": title, "format": ".3f"}]
    layers: list[dict[str, Any]] = []
    if len({p[2] for p in parts}) > 1:
        layers += [{"transform": [{"filter": "datum.panel === 'band'"}], "mark": {"type": "area", "opacity": 0.13},
                    "encoding": {"x": x, "y": {**y, "field": "lo"}, "y2": {"field": "hi"}, "color": colour}},
                   {"transform": [{"filter": "datum.panel === 'curve' && !datum.selected"}],
                    "mark": {"type": "line", "strokeWidth": 0.8, "opacity": 0.45},
                    "encoding": {"x": x, "y": {**y, "field": "value"}, "color": colour,
                                 "detail": {"field": "seed", "type": _N}, "tooltip": tip}}]
    layers.append({"transform": [{"filter": "datum.panel === 'curve' && datum.selected"}],
                   "mark": {"type": "line", "strokeWidth": 2.4, "point": {"size": 28}},
                   "encoding": {"x": x, "y": {**y, "field": "value"}, "color": colour, "tooltip": tip}})
    if metric.startswith("pk"):  # chance k/(n-1): a row of the data, so that the spec does not change with k
        layers.append({"transform": [{"filter": "datum.panel === 'chance'"}],
                       "mark": {"type": "rule", "color": "black", "strokeDash": [1, 3], "strokeWidth": 1.5},
                       "encoding": {"y": {**y, "field": "value"},
                                    "tooltip": [{"field": "value", "type": _Q, "title": "chance k/(n−1)",
                                                 "format": ".3f"}]}})
    spec = {**DRAWING, "description": f"Learning curves: {title}", "height": 440, "layer": layers}
    sel = table[table["selected"]]
    wide = sel.pivot_table(index="step", columns="model_file", values="value", sort=False).reset_index()
    wide.columns.name = None
    return spec, plot, wide, table.to_csv(index=False).encode()


@st.cache_resource(max_entries=32, show_spinner=False)
def success_figure(xtok: str, agent: str, seed: int, max_step: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """(spec, data): the quick success check of every recorded seed at the steps where it ran (points only: no
    value is drawn, or interpolated, between them); the selected seed filled."""
    rows = []
    for s in trajectory_seeds(xtok, agent):
        t = trajectory(xtok, agent, s)
        ok = np.isfinite(t.success)
        rows.append(pd.DataFrame({"agent": data.label(agent, s), "seed": s, "step": t.steps[ok],
                                  "success": t.success[ok], "selected": s == seed}))
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["agent", "seed", "step", "success", "selected"])
    enc = {"x": _step_axis(max_step), "y": {**_y("success", [0, 1.02]), "field": "success"},
           "tooltip": [{"field": "agent", "type": _N}, {"field": "step", "type": _Q},
                       {"field": "success", "type": _Q, "format": ".3f"}]}
    spec = {**DRAWING, "description": "Success during training", "height": 190, "layer": [
        {"transform": [{"filter": "!datum.selected"}], "mark": {"type": "point", "size": 50, "color": "#999999"},
         "encoding": enc},
        {"transform": [{"filter": "datum.selected"}],
         "mark": {"type": "point", "size": 70, "filled": True, "color": "#1f4e9c"}, "encoding": enc}]}
    return spec, df


@st.cache_resource(max_entries=32, show_spinner=False)
def factors_over_steps_figure(xtok: str, agent: str, seed: int, max_step: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """(spec, data): η² of each factor at every snapshot of the selected seed (what organises the agent as it
    learns), with each factor's null (L-1)/(n-1) as a dotted rule."""
    df = separation_over_steps(xtok, agent, seed)
    pal = {f: figures.FACTOR_PALETTE[i] for i, f in enumerate(FACTORS)}
    colour = {"field": "factor", "type": _N, "sort": list(FACTORS),
              "scale": {"domain": list(FACTORS), "range": [pal[f] for f in FACTORS]},
              "legend": {**TOP_LEGEND, "title": "factor", "symbolType": "circle"}}
    y = _y("η² (variance share)", [0, 1])
    nulls = df.groupby("factor", sort=False)["eta2_null"].first().reset_index().to_dict("records")
    spec = {**DRAWING, "description": "Factor eta2 over training", "height": 300, "layer": [
        {"mark": {"type": "line", "strokeWidth": 2, "point": {"size": 16}},
         "encoding": {"x": _step_axis(max_step), "y": {**y, "field": "eta2"}, "color": colour,
                      "tooltip": [{"field": "factor", "type": _N}, {"field": "step", "type": _Q},
                                  {"field": "eta2", "type": _Q, "title": "η²", "format": ".3f"},
                                  {"field": "loo_acc", "type": _Q, "title": "LOO accuracy", "format": ".3f"}]}},
        {"data": {"values": nulls}, "mark": {"type": "rule", "strokeDash": [1, 3]},
         "encoding": {"y": {**y, "field": "eta2_null"}, "color": colour,
                      "tooltip": [{"field": "factor", "type": _N},
                                  {"field": "eta2_null", "type": _Q, "title": "η² null", "format": ".3f"}]}}]}
    return spec, df


# ------------------------------------------------------------------------------------------ multiverse
@st.cache_resource(max_entries=2, show_spinner="Reading the analysis multiverse…")
def multiverse(xtok: str) -> dict[str, Any]:
    """The shipped multiverse (:func:`core.multiverse.load_results`, :func:`~core.multiverse.load_summary`):
    ``values`` (P@k per choice), ``groups`` ((agent, seed, reference) -> row indices), ``summary``. Raises
    FileNotFoundError (with the command) when it is not computed."""
    from core import multiverse as MV

    res = MV.load_results()
    summary = MV.load_summary()
    rows = {(str(r["agent"]), int(r["seed"]), str(r["reference"])): r for r in summary.to_dict("records")}
    values = res["p_at_k"].to_numpy(dtype=np.float64)
    values.setflags(write=False)
    keys = res[["agent", "seed", "reference"]].astype({"agent": str, "seed": int, "reference": str})
    groups = {k: v for k, v in keys.groupby(["agent", "seed", "reference"], sort=False).indices.items()}
    return {"values": values, "groups": groups, "rows": rows, "references": sorted(set(keys["reference"]))}


def multiverse_row(mv: dict[str, Any], agent: str, seed: int, model: str) -> dict[str, Any] | None:
    """The summary row of (agent, seed, reference model) (:data:`core.multiverse.SUMMARY_COLUMNS`), or None."""
    return mv["rows"].get((agent, int(seed), model))


@st.cache_resource(max_entries=64, show_spinner=False)
def multiverse_figure(tok: str, xtok: str, agent: str, seed: int, model: str
                      ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]] | None:
    """(Vega-Lite spec, histogram data, summary row) of one (agent seed, model) pair: the share of analysis
    choices per P@k bin (width 0.02) for the trained agent and its untrained twin (same choices), the
    pre-registered last-layer values (solid rules), the split-half values (dashed), the paper's range (green
    band) and chance (dotted). None when the multiverse has no row for the pair."""
    mv = multiverse(xtok)
    row = multiverse_row(mv, agent, seed, model)
    if row is None:
        return None
    twin = str(row.get("twin") or untrained_name(agent))
    series = [(data.label(agent, seed), agent), (untrained_name(data.label(agent, seed)), twin)]
    hist = []
    for lab, name in series:
        idx = mv["groups"].get((name, seed, model))
        if idx is None or not len(idx):
            continue
        v = mv["values"][idx]
        c, _ = np.histogram(v, MULTIVERSE_BINS)
        hist.append(pd.DataFrame({"agent": lab, "lo": MULTIVERSE_BINS[:-1], "hi": MULTIVERSE_BINS[1:],
                                  "share": c / len(v), "choices": c, "of": len(v)}))
    hist_df = pd.concat(hist, ignore_index=True)
    labels = [lab for lab, _ in series]
    colour = {"field": "agent", "type": _N, "sort": labels, "scale": {"domain": labels,
                                                                      "range": ["#1f4e9c", "#e8710a"]},
              "legend": {"orient": "top", "title": None, "labelLimit": 260}}
    x = {"type": _Q, "title": f"P@k over analysis choices (vs {model})", "scale": {"domain": [0, 1], "nice": False}}
    marks = []
    for lab, name in series:
        r = row if name == agent else multiverse_row(mv, name, seed, model)
        for what in ("last_layer", "split_half"):
            v = (r or {}).get(what, np.nan)
            if v is None or not np.isfinite(float(v)):
                continue
            if what == "last_layer":
                about = "all 108 instructions, k = 15"
            else:
                about = (f"chosen on one half: {r.get('split_half_choice', '')}; scored on the other (chance "
                         f"{float(r.get('half_chance', np.nan)):.3f}); the last layers score "
                         f"{float(r.get('split_half_last_layer', np.nan)):.3f} the same way")
            marks.append({"agent": lab, "what": "last layer (pre-registered)" if what == "last_layer" else
                          "split-half best layer pair (held out)", "value": float(v), "dash": what, "about": about})
    paper = _paper(tok, model)
    layers: list[dict[str, Any]] = []
    if np.isfinite(paper[0]):
        layers.append({"data": {"values": [{"lo": paper[0], "hi": paper[1], "text": paper[2]}]},
                       "mark": {"type": "rect", "color": "#2ca02c", "opacity": 0.18},
                       "encoding": {"x": {**x, "field": "lo"}, "x2": {"field": "hi"},
                                    "tooltip": [{"field": "text", "type": _N, "title": "paper (reported)"}]}})
    layers.append({"mark": {"type": "rect", "opacity": 0.55},
                   "encoding": {"x": {**x, "field": "lo"}, "x2": {"field": "hi"},
                                "y": {"field": "share", "type": _Q, "title": "share of choices", "stack": None},
                                "color": colour,
                                "tooltip": [{"field": "agent", "type": _N},
                                            {"field": "lo", "type": _Q, "title": "P@k from", "format": ".2f"},
                                            {"field": "hi", "type": _Q, "title": "to", "format": ".2f"},
                                            {"field": "choices", "type": _Q}, {"field": "of", "type": _Q}]}})
    if marks:
        layers.append({"data": {"values": marks}, "mark": {"type": "rule", "strokeWidth": 2.5},
                       "encoding": {"x": {**x, "field": "value"}, "color": colour,
                                    "strokeDash": {"field": "dash", "type": _N, "legend": None,
                                                   "scale": {"domain": ["last_layer", "split_half"],
                                                             "range": [[1, 0], [5, 3]]}},
                                    "tooltip": [{"field": "agent", "type": _N}, {"field": "what", "type": _N},
                                                {"field": "value", "type": _Q, "title": "P@k", "format": ".3f"},
                                                {"field": "about", "type": _N, "title": "how"}]}})
    chance = float(row.get("chance", metrics.chance_precision(N, report.K)))
    layers.append({"data": {"values": [{"chance": chance}]},
                   "mark": {"type": "rule", "color": "black", "strokeDash": [1, 3], "strokeWidth": 1.5},
                   "encoding": {"x": {**x, "field": "chance"},
                                "tooltip": [{"field": "chance", "type": _Q, "title": "chance 15/107",
                                             "format": ".3f"}]}})
    return ({**DRAWING, "description": f"Multiverse: {series[0][0]} vs {model}", "height": 280, "layer": layers},
            hist_df, row)


@st.cache_data(max_entries=64, show_spinner=False)
def _paper_family(tok: str, model: str) -> str:
    inv = data.inventory(tok)
    fam = inv.loc[inv["name"] == model, "paper_family"]
    return str(fam.iloc[0]) if len(fam) else ""


def _paper(tok: str, model: str) -> tuple[float, float, str]:
    """The paper's reported P@15 range for ``model``'s family and its text (NaN when the paper has none)."""
    return report.paper_range(_paper_family(tok, model), model)


# ------------------------------------------------------------------------------------------ the answer
def untrained_space(tok: str, xtok: str, agent: str, a_seed: int) -> Space | None:
    """The untrained twin of ``agent`` seed ``a_seed``: its shipped embedding (``untrained-<agent>-s<seed>``) when
    present, else step 0 of the recorded trajectory (the same array: core.dynamics), else None."""
    ctx = data.context(tok)
    untrained = untrained_name(agent)
    if untrained in ctx["present"] and data.space_seed(ctx, untrained, a_seed) == a_seed:
        return untrained, a_seed, None
    from core.dynamics import TrajectoryError

    if a_seed in trajectory_seeds(xtok, agent):
        try:
            trajectory(xtok, agent, a_seed)
            return agent, a_seed, 0
        except TrajectoryError:  # corrupt: said where the trajectory itself is drawn
            return None
    return None


@st.cache_resource(max_entries=128, show_spinner=False)
def _pair_inputs(tok: str, xtok: str, agent: str, seed: int, model: str) -> dict[str, Any]:
    """What :func:`pair_answer` needs that does not depend on k: the P@k curves (every k) of the trained and the
    untrained agent against the model, the counts over training steps of the selected seed, the organising factors,
    the paper's range and the multiverse row."""
    ctx = data.context(tok)
    a_seed = data.space_seed(ctx, agent, seed)
    ms = data.space_seed(ctx, model, seed)
    out: dict[str, Any] = {"a_seed": a_seed, "ms": ms, "trained": data.curve(tok, agent, a_seed, model, ms),
                           "untrained": None, "steps": None, "counts": None, "organisation": {}, "multiverse": {},
                           "paper": (*_paper(tok, model)[:2], _paper_family(tok, model))}
    if a_seed in trajectory_seeds(xtok, agent):
        out["steps"] = trajectory(xtok, agent, a_seed).steps
        out["counts"] = counts(tok, xtok, agent, a_seed, model, ms)
    u = untrained_space(tok, xtok, agent, a_seed)
    if u is not None and u[2] is None:
        out["untrained"] = data.curve(tok, u[0], u[1], model, ms)
    labels = {"agent": data.label(agent, a_seed), "model": data.label(model, ms)}
    labels["untrained"] = untrained_name(labels["agent"])
    out["labels"] = labels
    for lab, sp in ((labels["agent"], (agent, a_seed, None)), (labels["untrained"], u), (labels["model"],
                                                                                        (model, ms, None))):
        if sp is not None:
            out["organisation"][lab] = organised_by(tok, xtok, sp)
    try:
        row = multiverse_row(multiverse(xtok), agent, a_seed, model)
    except FileNotFoundError:
        row = None
    if row is not None:
        out["multiverse"] = {c: row[c] if c.endswith("_choice") else float(row[c]) for c in MULTIVERSE_FIGURES
                             if c in row and row[c] is not None}
    return out


def pair_answer(tok: str, xtok: str, agent: str, seed: int, model: str, k: int) -> W.PairAnswer:
    """The figures of :class:`core.why.PairAnswer` for one pair at k (slices of :func:`_pair_inputs`)."""
    d = _pair_inputs(tok, xtok, agent, seed, model)
    k = metrics.check_k(k, N)
    lab = d["labels"]
    ans = W.PairAnswer(agent=lab["agent"], untrained=lab["untrained"], model=lab["model"], k=k,
                       chance=float(metrics.chance_precision(N, k)), trained_p=float(d["trained"][k - 1]),
                       paper=d["paper"], organisation=d["organisation"], multiverse=d["multiverse"])
    if d["counts"] is not None:
        p = W.precision_over_steps(d["counts"], k)
        j = int(np.argmax(p))
        ans.final_step, ans.peak_p, ans.peak_step = int(d["steps"][-1]), float(p[j]), int(d["steps"][j])
    if d["untrained"] is not None:
        ans.untrained_p = float(d["untrained"][k - 1])
    elif d["counts"] is not None and lab["untrained"] in d["organisation"]:  # the untrained twin = step 0
        ans.untrained_p = float(W.precision_over_steps(d["counts"], k)[0])
    return ans


def overview_line(tok: str, ctx: dict[str, Any], ref_seed: int) -> None:
    """The Overview's line on what learning does: P@15 of the untrained agent and of the trained agent against each
    language model (computed from the shipped embeddings), and a link to the "Why they align" page."""
    agent, untrained = report.REFERENCE, untrained_name(report.REFERENCE)
    models = [m for m in ctx["present"] if ctx["kinds"].get(m) == report.KIND_MODEL]
    if untrained not in ctx["present"] or agent not in ctx["present"] or not models:
        return
    K = report.K
    us = data.space_seed(ctx, untrained, ref_seed)
    before = [float(data.curve(tok, untrained, us, m, data.space_seed(ctx, m, ref_seed))[K - 1]) for m in models]
    after = [float(data.curve(tok, agent, ref_seed, m, data.space_seed(ctx, m, ref_seed))[K - 1]) for m in models]
    line = W.learning_effect(before, after, models, K)
    if not line:
        return
    st.markdown(f"**What learning does** (`{untrained}-s{us}`, zero training steps → `{agent}-s{ref_seed}`): {line}")
    st.page_link("pages/why.py", label="Why they align: alignment across learning, what organises each space, "
                 "and how robust each number is", icon=":material/psychology_alt:",
                 query_params={"seed": str(ref_seed)})

"""The pages' views of the larger instruction sets (issue 15: ``+colourless``, ``+location``, ...).

A page calls the view for the selected set when it is not ``paper108`` (whose views stay as they were). Spaces come
from :func:`core.scaling.spaces` through :mod:`ui.data`; P@k and neighbours from :mod:`core.metrics`. Built to stay
usable at 10^4 instructions: one item's neighbours are one row of similarities, P@k at one k uses blocked partial
selection, the P@k curve over every k is drawn only up to :data:`ui.data.CURVE_MAX_N` items, the instruction list is
searched and paged, and no figure draws instruction labels (hover shows them).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import metrics
from ui import data, state, widgets

AGENT, UNTRAINED = "alm", "untrained-alm"
#: above this many items, P@k for pairs not yet in memory waits for a click (seconds per pair at 10^4 items)
ASK_ABOVE_N = 2000
#: joint layouts of more points than this (items x spaces) wait for a click (UMAP takes minutes at 10^4 x 3)
LAYOUT_ASK_ABOVE = 1000
PAGE_SIZES = (25, 50, 100, 250)
SEARCH, PAGE, PAGE_SIZE = "w_set_search", "w_set_page", "w_set_page_size"


# ------------------------------------------------------------------------------------------ shared
def current() -> tuple[str, tuple[str, ...]]:
    name = state.current_set()
    return name, state.set_items(name)


def models_of(tok: str, name: str) -> list[str]:
    return list(data.set_models(tok, name))


def default_reference(tok: str, name: str) -> str:
    ms = models_of(tok, name)
    return AGENT if AGENT in ms else ms[0]


def describe(tok: str, name: str) -> None:
    """One caption: what the set is and what is shipped for it."""
    from core.instructions import preset

    ms = data.set_models(tok, name)
    n, g = len(state.set_items(name)), preset(name)
    agents = ms.get(AGENT, 0)
    st.caption(f"Instruction set **{state.md_escape(name)}**: {n:,} instructions over a {len(g.vocabulary)}-word "
               f"vocabulary (the first 108 are paper108's). Shipped spaces: {', '.join(ms)}"
               + (f"; {agents} trained agent seed{'s' if agents != 1 else ''}." if agents else
                  "; no trained agent yet, so the reference is a language model.")
               + " Pick the set in the sidebar.")
    if name != "paper108":
        from core.scaling import REFERENCES

        missing = [m for m in REFERENCES if m not in ms]
        if missing:
            st.caption(f"Not computed for this set: {', '.join(missing)} (no embeddings shipped). Compute them with "
                       f"`python -m core scaling --embed {name} --models {' '.join(missing)}`.")


def pick_reference(tok: str, name: str, key: str, where=st) -> str:
    ms = models_of(tok, name)
    cur = st.session_state.get("ref")
    if cur not in ms:
        st.session_state["ref"] = default_reference(tok, name)
    where.selectbox("Reference", ms, help="Every P@k on this page compares this space with one model.",
                    **state.bind(key, "ref"))
    return st.session_state["ref"]


def pick_models(tok: str, ctx: dict[str, Any], name: str, key: str = "w_set_models", where=st) -> list[str]:
    ms = models_of(tok, name)
    chosen = [m for m in st.session_state["models"] if m in ms]
    if not chosen:
        chosen = [m for m in ms if m != UNTRAINED]
    st.session_state["models"] = chosen
    where.multiselect("Models", ms, help="The spaces shipped for this set (core.scaling.spaces).",
                      format_func=lambda m: f"{m} · {ctx['families'].get(m, '')}", **state.bind(key, "models"))
    return st.session_state["models"]


def pick_seed(tok: str, name: str, where=st, key: str = "w_set_seed") -> int:
    n = max(data.set_models(tok, name).get(AGENT, 0), data.set_models(tok, name).get(UNTRAINED, 0), 1)
    seed = min(int(st.session_state["seed"]), n - 1)
    if n > 1:
        st.session_state[key] = seed
        where.selectbox("Agent seed", list(range(n)), key=key, format_func=lambda s: f"seed {s}",
                        on_change=lambda: state.select("seed", st.session_state[key]),
                        help="Which of the set's agent seeds (alm and untrained-alm).")
        seed = int(st.session_state[key])
    return seed


def k_slider(n: int, where=st, key: str = "w_set_k", label: str = "k (neighbours)") -> int:
    from core.scaling import scaled_k

    if int(st.session_state["k"]) > n - 1:
        st.session_state["k"] = n - 1
    where.slider(label, 1, n - 1, help=f"1 ≤ k ≤ n − 1 = {n - 1}. core.scaling compares whole sets at k scaled with "
                                       f"n: {scaled_k(n)} here (15 at n = 108).", **state.bind(key, "k"))
    return int(st.session_state["k"])


def _labelled(tok: str, name: str, models: list[str], seed: int) -> list[tuple[str, int | None]]:
    return [(m, data.set_seed(tok, name, m, seed)) for m in models]


# ------------------------------------------------------------------------------------------ P@k at one k
def _gate(key: str, n: int, missing: int, what: str) -> bool:
    """True when the work may run now: small sets always; large ones after a click (remembered)."""
    if not missing or n <= ASK_ABOVE_N or st.session_state.get(key):
        return True
    st.info(f"{what}: {missing} pair{'s' if missing != 1 else ''} of {n:,} instructions, a few seconds each "
            "(blocked similarity with partial selection; kept in memory afterwards).", icon=":material/timer:")
    if st.button("Compute", key=f"{key}_button"):
        st.session_state[key] = True
        return True
    return False


def pk_table(tok: str, ctx: dict[str, Any], name: str, ref: str, seed: int, models: list[str], k: int,
             key: str) -> pd.DataFrame | None:
    """P@k of every seed of every model against the reference (its seed ``seed``), or None while waiting for a
    click. Columns: reference, model, seed, space, family, k, P@k, chance."""
    n = len(state.set_items(name))
    sref = data.set_seed(tok, name, ref, seed)
    pairs = []
    for m in models:
        if m == ref:
            continue
        count = data.set_models(tok, name)[m]
        for s in (range(count) if data.set_seed(tok, name, m, 0) is not None else [None]):
            pairs.append((m, s))
    missing = [p for p in pairs if not data.set_per_item_ready(tok, name, ref, sref, *p, k)]
    if not _gate(f"{key}_go_{name}_{ref}_{sref}_{k}", n, len(missing), f"P@{k} against {ref}"):
        return None
    rows = []
    with st.spinner(f"P@{k} for {len(missing)} pair(s) of {n:,} instructions…") if missing else _null():
        for m, s in pairs:
            rows.append({"reference": data.set_label(ref, sref), "model": m, "seed": s,
                         "space": data.set_label(m, s), "family": ctx["families"].get(m, ""), "k": k,
                         "P@k": float(data.set_per_item(tok, name, ref, sref, m, s, k).mean()),
                         "chance": metrics.chance_precision(n, k)})
    return pd.DataFrame(rows, columns=["reference", "model", "seed", "space", "family", "k", "P@k", "chance"])


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def pk_figure(table: pd.DataFrame, k: int) -> dict[str, Any]:
    """Vega-Lite: one dot per space (seeds of a model share its row), chance as a dotted rule; hover for values."""
    return {"height": {"step": 26},
            "layer": [
                {"mark": {"type": "point", "filled": True, "size": 80},
                 "encoding": {"y": {"field": "model", "type": "nominal", "sort": None, "title": None},
                              "x": {"field": "P@k", "type": "quantitative", "scale": {"domain": [0, 1]},
                                    "title": f"P@{k} against {table['reference'].iloc[0]}"},
                              "color": {"field": "family", "type": "nominal"},
                              "tooltip": [{"field": "space"}, {"field": "reference"},
                                          {"field": "P@k", "format": ".4f"}, {"field": "chance", "format": ".4f"},
                                          {"field": "k"}]}},
                {"mark": {"type": "rule", "strokeDash": [2, 2], "color": "black"},
                 "encoding": {"x": {"aggregate": "max", "field": "chance", "type": "quantitative"},
                              "tooltip": [{"aggregate": "max", "field": "chance", "format": ".4f",
                                           "title": "chance k/(n-1)"}]}}]}


def show_pk(tok: str, ctx: dict[str, Any], name: str, ref: str, seed: int, models: list[str], k: int,
            key: str) -> pd.DataFrame | None:
    table = pk_table(tok, ctx, name, ref, seed, models, k, key)
    if table is None:
        return None
    if not len(table):
        st.info("Pick at least one model besides the reference.")
        return table
    st.vega_lite_chart(table, pk_figure(table, k), key=f"{key}_figure", width="stretch")
    n = len(state.set_items(name))
    st.caption(f"P@{k} of each space against {table['reference'].iloc[0]} over the {n:,} instructions of {name} "
               f"(core.metrics: {metrics.PRECISION_CONVENTIONS}). Dotted: chance k/(n−1) = "
               f"{metrics.chance_precision(n, k):.4f}. Hover a dot for its value; the CSV holds them all.")
    st.dataframe(table, hide_index=True, key=f"{key}_table",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("P@k", "chance")})
    st.download_button("Download P@k (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"alva_{name.lstrip('+')}_p{k}.csv", mime="text/csv", on_click="ignore",
                       key=f"{key}_csv")
    return table


# ------------------------------------------------------------------------------------------ pages
def overview(tok: str, ctx: dict[str, Any]) -> None:
    """The Overview of a larger set: what it holds, and P@k (k scaled with n) of every space against the agent."""
    from core.instructions import preset
    from core.scaling import scaled_k

    name, its = current()
    n = len(its)
    st.header(f"The {name} instruction set")
    describe(tok, name)
    ms = data.set_models(tok, name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("instructions", f"{n:,}")
    c2.metric("vocabulary", len(preset(name).vocabulary))
    c3.metric("spaces", len(ms))
    c4.metric("agent seeds", ms.get(AGENT, 0))
    md = data.set_metadata(name)
    form = md.apply(lambda r: " ".join(v for v in (r["verb"], r.get("connective", ""), r.get("location", "") and
                                                   "location") if v), axis=1)
    counts = form.value_counts().rename_axis("form").reset_index(name="instructions")
    with (fold := widgets.folded("Instructions per form (CSV: every instruction with its factors)", "set_forms_fold")):
        if fold.open:
            st.dataframe(counts, hide_index=True, key="set_forms")
            st.download_button("Download the instructions (CSV)", md.to_csv(index=False).encode(),
                               file_name=f"alva_{name.lstrip('+')}_instructions.csv", mime="text/csv",
                               on_click="ignore", key="set_instructions_csv")
    k = scaled_k(n)
    ref = default_reference(tok, name)
    st.subheader(f"P@{k} of every space against {ref}")
    st.caption(f"k = {k}: 15 scaled with the set's size as in core.scaling (k/(n−1) ≈ 0.14). The P@k page compares "
               "any reference at any k; the Instruction sets page has alignment against set size.")
    show_pk(tok, ctx, name, ref, int(st.session_state["seed"]), [m for m in ms if m != ref], k, "set_overview")
    st.page_link("pages/sets.py", label="Alignment as the instruction set grows (Instruction sets page)",
                 icon=":material/stacked_line_chart:")


def precision(tok: str, ctx: dict[str, Any]) -> None:
    """The P@k page of a larger set: curves over k (sets up to CURVE_MAX_N items) and P@k at the chosen k."""
    name, its = current()
    n = len(its)
    describe(tok, name)
    c1, c2 = st.columns(2)
    with c1:
        ref = pick_reference(tok, name, "w_set_ref_p")
    with c2:
        seed = pick_seed(tok, name)
    models = pick_models(tok, ctx, name)
    k = k_slider(n, label="k for the table")
    others = [(m, s) for m, s in _labelled(tok, name, models, seed) if m != ref]
    sref = data.set_seed(tok, name, ref, seed)
    st.subheader("P@k over k")
    if n > data.CURVE_MAX_N:
        st.info(f"The curve over every k needs every item's full neighbour ranking: drawn for sets up to "
                f"{data.CURVE_MAX_N:,} instructions. {name} has {n:,}: P@k at the chosen k is below.")
    elif others:
        rows = []
        for m, s in others:
            c = data.set_curve(tok, name, ref, sref, m, s)
            rows.append(pd.DataFrame({"reference": data.set_label(ref, sref), "space": data.set_label(m, s),
                                      "k": np.arange(1, n), "P@k": c}))
        curves = pd.concat(rows, ignore_index=True)
        curves["chance"] = metrics.chance_precision(n, curves["k"].to_numpy())
        spec = {"layer": [
            {"mark": {"type": "line"},
             "encoding": {"x": {"field": "k", "type": "quantitative"},
                          "y": {"field": "P@k", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "color": {"field": "space", "type": "nominal"},
                          "tooltip": [{"field": "space"}, {"field": "k"}, {"field": "P@k", "format": ".4f"},
                                      {"field": "chance", "format": ".4f"}]}},
            {"mark": {"type": "line", "strokeDash": [2, 2], "color": "black"},
             "encoding": {"x": {"field": "k", "type": "quantitative"},
                          "y": {"field": "chance", "type": "quantitative"}}}]}
        st.vega_lite_chart(curves, spec, key="set_pk_curves", width="stretch")
        st.caption(f"P@k of each space against {data.set_label(ref, sref)} for every k (core.metrics.precision_curve); "
                   "black dotted: chance k/(n−1). Hover a curve for its values.")
        st.download_button("Download the curves (CSV)", curves.to_csv(index=False).encode(),
                           file_name=f"alva_{name.lstrip('+')}_precision_curves.csv", mime="text/csv",
                           on_click="ignore", key="set_curves_csv")
    st.subheader(f"At k = {k}")
    show_pk(tok, ctx, name, ref, seed, [m for m, _ in others], k, "set_precision")


def _matches(its: tuple[str, ...], query: str) -> np.ndarray:
    """Indices of the instructions containing every word of ``query`` (case-insensitive), in set order."""
    words = query.lower().split()
    if not words:
        return np.arange(len(its))
    return np.array([i for i, t in enumerate(its) if all(w in t for w in words)], dtype=np.int64)


def search_and_page(its: tuple[str, ...], name: str) -> None:
    """A search box over the set's instructions and one page of the matches: clicking a row selects it."""
    ss = st.session_state
    c1, c2, c3 = st.columns([4, 1, 1])
    c1.text_input(f"Search the {len(its):,} instructions", key=SEARCH, placeholder="e.g. red key behind",
                  help="Every word must appear in the instruction (case-insensitive).")
    ss.setdefault(PAGE_SIZE, PAGE_SIZES[1])
    c2.selectbox("Per page", PAGE_SIZES, key=PAGE_SIZE)
    hits = _matches(its, ss.get(SEARCH, ""))
    size = int(ss[PAGE_SIZE])
    pages = max(1, -(-len(hits) // size))
    if int(ss.get(PAGE, 1)) > pages:
        ss[PAGE] = pages
    c3.number_input(f"Page (of {pages:,})", 1, pages, key=PAGE)
    page = int(ss.get(PAGE, 1))
    rows = hits[(page - 1) * size: page * size]
    st.caption(f"{len(hits):,} match{'es' if len(hits) != 1 else ''}; showing {len(rows)} (page {page} of "
               f"{pages:,}). Click a row to select that instruction.")
    if not len(rows):
        return
    md = data.set_metadata(name)
    show = md.iloc[rows].reset_index(drop=True)
    show.insert(0, "#", rows)
    show = show.loc[:, [c for c in show.columns if c == "#" or show[c].astype(str).str.len().any()]]
    ev = st.dataframe(show, hide_index=True, on_select="rerun", selection_mode="single-row", height=260,
                      key=f"set_search_{name}_{ss.get(SEARCH, '')}_{page}_{size}")
    sel = ev["selection"]["rows"] if ev else []
    if sel and its[int(rows[sel[0]])] != ss["instruction"]:
        state.select("instruction", its[int(rows[sel[0]])])
        state.rerun()


def neighbours(tok: str, ctx: dict[str, Any]) -> None:
    """The Neighbours page of a larger set: search and paging to pick an instruction, then its k nearest
    instructions in every chosen space (one row of similarities per space)."""
    name, its = current()
    n = len(its)
    describe(tok, name)
    search_and_page(its, name)
    instr = st.session_state["instruction"]
    i = state.index(instr, name)
    st.markdown(f"**Selected instruction:** {state.md_escape(instr, 200)} (#{i} of {n:,})")
    c1, c2 = st.columns([3, 1])
    with c1:
        k = k_slider(n)
    with c2:
        seed = pick_seed(tok, name)
    models = pick_models(tok, ctx, name)
    avail = models_of(tok, name)
    ref = AGENT if AGENT in avail else None
    shown: dict[str, list[str]] = {}
    grid = pd.DataFrame({"rank": np.arange(1, k + 1)})
    config: dict = {"rank": st.column_config.NumberColumn("#", width=32, pinned=True)}
    long = []
    if ref is not None:
        sref = data.set_seed(tok, name, ref, seed)
        agent_set = set(data.set_neighbours_of(tok, name, ref, sref, i, k)[0].tolist())
    for m, s in _labelled(tok, name, models, seed):
        col = data.set_label(m, s)
        idx, sim = data.set_neighbours_of(tok, name, m, s, i, k)
        is_ref = ref is not None and m == ref and s == sref
        shared = [ref is not None and not is_ref and int(j) in agent_set for j in idx]
        shown[col] = [its[j] for j in idx]
        grid[col] = [f"{'✓ ' if sh else ''}{its[j]} · {c:.3f}" for j, c, sh in zip(idx, sim, shared)]
        fam = ctx["families"].get(m, "")
        if ref is None:
            header, about = col, fam
        elif is_ref:
            header, about = f"{col} (agent)", f"{fam}: the agent itself, the reference of ✓."
        else:
            header = f"{col} · {sum(shared)}/{k} ✓"
            about = (f"{fam}. {sum(shared)} of its {k} nearest instructions are also among the agent's (✓): this "
                     f"instruction's P@{k} is {sum(shared) / k:.2f}.")
        config[col] = st.column_config.TextColumn(header, help=about, width=260)
        long += [{"set": name, "instruction": instr, "model": col, "rank": r + 1, "neighbour": its[j],
                  "cosine": float(c), "shared_with_agent": sh if ref is not None and not is_ref else None}
                 for r, (j, c, sh) in enumerate(zip(idx, sim, shared))]
    if not shown:
        st.info("Pick at least one model above.")
        return
    if ref is None:
        st.caption("No trained agent is shipped for this set yet: the lists are not compared (no ✓).")
    widgets.neighbour_grid(grid, shown, config, f"set_nb_grid_{name}", k)
    st.caption("Each space's k nearest instructions by cosine similarity (the number after it), nearest first, the "
               "instruction itself excluded, ties by instruction order (core.metrics.neighbours_of). ✓: also among "
               "the agent's k nearest. Click a cell to select that neighbour.")
    st.download_button("Download these neighbours (CSV)", pd.DataFrame(long).to_csv(index=False).encode(),
                       file_name=f"alva_{name.lstrip('+')}_neighbours_k{k}.csv", mime="text/csv",
                       on_click="ignore", key="set_nb_csv")


#: the factor columns of core.instructions.metadata that a layout can be coloured by
FACTOR_COLUMNS = ("verb", "colour", "object", "determiner", "location", "connective")


@st.cache_resource(max_entries=32, show_spinner=False)
def _disparity(tok: str, name: str, a: str, sa: int | None, b: str, sb: int | None) -> float:
    return float(metrics.procrustes(data.set_space(tok, name, a, sa or 0), data.set_space(tok, name, b, sb or 0))
                 .disparity)


def layout_figure(xy: dict[str, np.ndarray], labels: list[str], its: tuple[str, ...], colour: pd.Series,
                  selected: int):
    """Plotly small multiples of a joint layout: WebGL markers only (never text labels, whatever n), hover gives
    the instruction; the selected instruction is ringed in every panel."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(labels), subplot_titles=labels, horizontal_spacing=0.03)
    cats = list(dict.fromkeys(colour.fillna("").replace("", "(none)")))
    palette = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
               "#bab0ac")
    col = colour.fillna("").replace("", "(none)").to_numpy()
    hover = np.array(its, dtype=object)
    for p, lab in enumerate(labels, start=1):
        pts = xy[lab]
        for c_i, cat in enumerate(cats):
            rows = np.flatnonzero(col == cat)
            fig.add_trace(go.Scattergl(x=pts[rows, 0], y=pts[rows, 1], mode="markers", name=str(cat),
                                       legendgroup=str(cat), showlegend=p == 1, customdata=rows,
                                       hovertext=hover[rows], hovertemplate="%{hovertext}<extra>" + lab + "</extra>",
                                       marker={"size": 5 if len(its) > 1000 else 7, "opacity": 0.75,
                                               "color": palette[c_i % len(palette)]}), row=1, col=p)
        fig.add_trace(go.Scattergl(x=[pts[selected, 0]], y=[pts[selected, 1]], mode="markers", showlegend=False,
                                   hovertext=[its[selected]], hovertemplate="%{hovertext}<extra>selected</extra>",
                                   marker={"size": 16, "color": "rgba(0,0,0,0)",
                                           "line": {"color": "black", "width": 2}}), row=1, col=p)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"itemsizing": "constant"})
    return fig


def procrustes(tok: str, ctx: dict[str, Any]) -> None:
    """The Procrustes page of a larger set: the joint layout (core.report.joint_layout) without text labels."""
    name, its = current()
    n = len(its)
    describe(tok, name)
    c1, c2, c3 = st.columns([2, 1, 2])
    with c1:
        ref = pick_reference(tok, name, "w_set_ref_u")
    with c2:
        seed = pick_seed(tok, name)
    md = data.set_metadata(name)
    factors = [f for f in FACTOR_COLUMNS if f in md and md[f].nunique() > 1]
    with c3:
        if st.session_state.get("colour_by") not in factors:
            st.session_state["colour_by"] = factors[0]
        st.segmented_control("Colour by", factors, **state.bind("w_set_colour_by", "colour_by"))
        if st.session_state.get("colour_by") not in factors:
            state.select("colour_by", factors[0])
    models = pick_models(tok, ctx, name)
    spaces = tuple(dict.fromkeys([(ref, data.set_seed(tok, name, ref, seed)),
                                  *[(m, s) for m, s in _labelled(tok, name, models, seed) if m != ref]]))
    labels = [data.set_label(m, s) for m, s in spaces]
    st.caption("Joint layout: every space Procrustes-aligned onto the reference on its full embeddings, then all "
               "points laid out by one UMAP (core.report.joint_layout), so an instruction sits in comparable places "
               "in every panel. Points only: hover a point for its instruction; the ringed point is the selected "
               "instruction (pick it on the Neighbours page).")
    ready = data.set_joint_ready(tok, name, spaces, ref)
    points = n * len(spaces)
    go_key = f"set_layout_go_{name}_{spaces}"
    if not ready and points > LAYOUT_ASK_ABOVE and not st.session_state.get(go_key):
        st.info(f"The joint layout of {len(spaces)} space{'s' if len(spaces) != 1 else ''} × {n:,} instructions "
                f"({points:,} points) is not cached yet: one UMAP fit, minutes at this size (kept in the cache "
                "afterwards).", icon=":material/timer:")
        if st.button("Compute the joint layout", key="set_layout_button"):
            st.session_state[go_key] = True
            st.rerun()
    else:
        with st.spinner(f"Joint layout of {points:,} points (UMAP; cached afterwards)…") if not ready else _null():
            xy = data.set_joint_layout(tok, name, spaces, ref)
        i = state.index(st.session_state["instruction"], name)
        st.plotly_chart(layout_figure(xy, labels, its, md[st.session_state["colour_by"]], i),
                        key="set_layout", width="stretch")
        coords = pd.concat([pd.DataFrame({"space": lab, "instruction": list(its), "x": xy[lab][:, 0],
                                          "y": xy[lab][:, 1]}) for lab in labels], ignore_index=True)
        st.download_button("Download the layout coordinates (CSV)", coords.to_csv(index=False).encode(),
                           file_name=f"alva_{name.lstrip('+')}_joint_layout.csv", mime="text/csv",
                           on_click="ignore", key="set_layout_csv")
    st.subheader("Disparity (full embeddings)")
    rows = [{"reference": labels[0], "space": data.set_label(m, s),
             "disparity": _disparity(tok, name, ref, spaces[0][1], m, s)} for m, s in spaces[1:]]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="set_disparity",
                     column_config={"disparity": st.column_config.NumberColumn(format="%.4f")})
        st.caption(f"{metrics.PROCRUSTES_CONVENTIONS}. No permutation test at this size (the paper108 page has one).")


# ------------------------------------------------------------------------------------------ the scaling curve
def scaling_curve(tables: dict[str, Any], view: str, agents: tuple[str, ...]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Vega-Lite spec + data: alignment (mean ± sd over seeds) against the set's size, one line per reference
    model, for one view (``common 108`` / ``whole set``); the untrained agent dashed; chance dotted."""
    c = tables["curve"]
    plot = c[(c["view"] == view) & c["agent"].isin(agents)].copy()
    plot["lo"] = plot["mean"] - plot["sd"].fillna(0)
    plot["hi"] = plot["mean"] + plot["sd"].fillna(0)
    from core.scaling import N_COMMON

    items = N_COMMON if view == "common 108" else plot["n"]  # the common view ranks the 108 items of every set
    plot["chance"] = plot["k"] / (items - 1)
    enc_x = {"field": "n", "type": "quantitative", "scale": {"type": "log"}, "title": "instructions in the set (log)"}
    tip = [{"field": "set"}, {"field": "n"}, {"field": "agent"}, {"field": "reference"},
           {"field": "mean", "format": ".4f"}, {"field": "sd", "format": ".4f"}, {"field": "seeds"}, {"field": "k"},
           {"field": "chance", "format": ".4f"}]
    spec = {"title": view, "layer": [
        {"mark": {"type": "line", "point": True},
         "encoding": {"x": enc_x, "y": {"field": "mean", "type": "quantitative", "scale": {"domain": [0, 1]},
                                        "title": "P@k, mean ± sd over agent seeds"},
                      "color": {"field": "reference", "type": "nominal"},
                      "strokeDash": {"field": "agent", "type": "nominal", "title": "agent"},
                      "detail": {"field": "agent"}, "tooltip": tip}},
        {"mark": {"type": "rule"},
         "encoding": {"x": enc_x, "y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"},
                      "color": {"field": "reference", "type": "nominal"}, "tooltip": tip}},
        {"mark": {"type": "line", "strokeDash": [2, 2], "color": "black"},
         "encoding": {"x": enc_x, "y": {"aggregate": "mean", "field": "chance", "type": "quantitative"}}}]}
    return spec, plot

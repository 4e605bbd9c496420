"""Procrustes UMAP: every model's 2-D UMAP layout Procrustes-aligned to a reference model's layout."""
from contextlib import nullcontext

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core import metrics, projection, report
from ui import data, state
from ui.state import FACTORS, INSTRUCTIONS, N
from ui.widgets import finish, models_picker, not_computed, seed_picker, setup

tok, ctx = setup(("ref", "colour_by"))
st.title("Procrustes UMAP")
st.caption(f"Each space is laid out in 2-D by UMAP (cosine metric, seed {report.UMAP_SEED}); every layout is then "
           "translated, rotated/reflected and scaled (least-squares similarity transform) onto the reference's layout, so the same "
           "instruction sits in comparable places. The layouts are for looking; the disparity and p-value in the "
           "table are computed on the full embeddings.")

present = ctx["present"]
if not present:
    st.info("No embeddings are present in `assets/`.")
    st.stop()
if st.session_state["ref"] not in present:
    st.session_state["ref"] = ctx["default_ref"] if ctx["default_ref"] in present else present[0]
c1, c2, c3 = st.columns([2, 1, 2])
with c1:
    st.selectbox("Reference", present, format_func=lambda n: f"{n} · {ctx['families'].get(n, '')}",
                 **state.bind("w_ref_u", "ref"))
with c2:
    agent_seed = seed_picker(ctx)
with c3:
    st.segmented_control("Colour by", FACTORS, **state.bind("w_colour_by", "colour_by"))
    if st.session_state["colour_by"] not in FACTORS:  # segmented control can be cleared
        state.select("colour_by", "verb")
models = models_picker(ctx)
ref = st.session_state["ref"]
colour_by = st.session_state["colour_by"]
for m in models:
    if m not in present:
        not_computed(ctx, m)
names = list(dict.fromkeys([ref, *[m for m in models if m in present]]))
spaces = [(m, data.space_seed(ctx, m, agent_seed)) for m in names]

need = [data.label(m, s) for m, s in spaces if not data.layout_ready(tok, m, s)]
with st.spinner(f"Computing UMAP layouts for {', '.join(need)} (the first fit in a server process compiles UMAP "
                "with numba, about 10 s; cached afterwards)…") if need else nullcontext():
    raw = {m: data.layout(tok, m, s) for m, s in spaces}

al = projection.align_layouts({m: raw[m] for m, _ in spaces}, reference=ref)
aligned, disp2d = al.layouts, al.disparity
ref_std = aligned[ref]

md = data.metadata()
levels = list(dict.fromkeys(md[colour_by]))
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
cmap = {lv: PALETTE[i % len(PALETTE)] for i, lv in enumerate(levels)}
colours = [cmap[v] for v in md[colour_by]]
sel = [i for i in st.session_state.get("umap_sel", []) if 0 <= i < N]
hover = [f"{t}" for t in INSTRUCTIONS]


def _custom(p):
    cd = p.get("customdata")
    if isinstance(cd, (list, tuple)):
        return cd[0] if cd else None
    if isinstance(cd, dict):
        return cd.get("0", next(iter(cd.values()), None))
    return cd


def _selected(event):
    try:
        pts = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    out = []
    for p in pts:
        v = _custom(p)
        if v is not None:
            try:
                out.append(int(v))
            except (TypeError, ValueError):
                pass
    return sorted(set(out))


def scatter(xy, name, size=7):
    return go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, text=hover, customdata=np.arange(N),
                      hovertemplate="%{text}<extra>" + name + "</extra>", showlegend=False,
                      marker=dict(color=colours, size=size, line=dict(width=0.5, color="white")),
                      selectedpoints=sel if sel else None,
                      unselected=dict(marker=dict(opacity=0.15)) if sel else None)


# ------------------------------------------------------------------------------------ small multiples
st.subheader("Small multiples")
cols = min(3, len(spaces))
rows_n = int(np.ceil(len(spaces) / cols))
titles = [f"{data.label(m, s)}" + (" (reference)" if m == ref else f" · 2-D disparity {disp2d[m]:.2f}")
          for m, s in spaces]
fig = make_subplots(rows=rows_n, cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.08)
for j, (m, s) in enumerate(spaces):
    fig.add_trace(scatter(aligned[m], data.label(m, s)), row=j // cols + 1, col=j % cols + 1)
for lv in levels:  # legend only
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(lv), marker=dict(color=cmap[lv], size=9),
                             legendgroup=str(lv), showlegend=True, hoverinfo="skip"))
fig.update_xaxes(showticklabels=False, zeroline=False)
fig.update_yaxes(showticklabels=False, zeroline=False, scaleanchor=None)
fig.update_layout(height=330 * rows_n, margin=dict(l=5, r=5, t=40, b=5), dragmode="lasso",
                  legend=dict(title=colour_by, orientation="h", y=-0.02), clickmode="event+select")
ev = st.plotly_chart(fig, key="umap_multiples", on_select="rerun", selection_mode=("points", "box", "lasso"))
new = _selected(ev)
if new is not None and new and new != sel:
    state.select("umap_sel", new)
    st.rerun()
b1, b2 = st.columns([1, 4])
if sel:
    if b1.button("Clear selection", key="umap_clear"):
        state.select("umap_sel", [])
        st.rerun()
    b2.caption(f"Selected ({len(sel)}): " + "; ".join(INSTRUCTIONS[i] for i in sel[:12]) +
               (" …" if len(sel) > 12 else ""))
else:
    b2.caption("Click, box- or lasso-select points in any panel: the same instructions are highlighted in every "
               "panel and in the overlay. PNG: use the camera button of the chart's toolbar (top right).")

# ------------------------------------------------------------------------------------ overlay
st.subheader("Overlay of two layouts")
other_opts = [m for m, _ in spaces if m != ref]
if other_opts:
    st.session_state.setdefault("overlay_model", other_opts[0])
    if st.session_state["overlay_model"] not in other_opts:
        st.session_state["overlay_model"] = other_opts[0]
    st.selectbox("Compare the reference with", other_opts, **state.bind("w_overlay", "overlay_model"))
    om = st.session_state["overlay_model"]
    os_ = data.space_seed(ctx, om, agent_seed)
    A, B = aligned[ref], aligned[om]
    idx = sel if sel else list(range(N))
    lx = np.full(3 * len(idx), np.nan)
    ly = np.full(3 * len(idx), np.nan)
    lx[0::3], lx[1::3] = A[idx, 0], B[idx, 0]
    ly[0::3], ly[1::3] = A[idx, 1], B[idx, 1]
    ov = go.Figure()
    ov.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color="#bbbbbb", width=1), hoverinfo="skip",
                            name="same instruction"))
    ov.add_trace(go.Scatter(x=A[:, 0], y=A[:, 1], mode="markers", name=data.label(ref, data.space_seed(ctx, ref, agent_seed)),
                            text=hover, customdata=np.arange(N), hovertemplate="%{text}<extra>reference</extra>",
                            marker=dict(color=colours, size=8, symbol="circle"),
                            selectedpoints=sel if sel else None, unselected=dict(marker=dict(opacity=0.15)) if sel else None))
    ov.add_trace(go.Scatter(x=B[:, 0], y=B[:, 1], mode="markers", name=data.label(om, os_), text=hover,
                            customdata=np.arange(N), hovertemplate="%{text}<extra>" + om + "</extra>",
                            marker=dict(color=colours, size=8, symbol="x"),
                            selectedpoints=sel if sel else None, unselected=dict(marker=dict(opacity=0.15)) if sel else None))
    ov.update_xaxes(showticklabels=False)
    ov.update_yaxes(showticklabels=False)
    ov.update_layout(height=520, margin=dict(l=5, r=5, t=10, b=5), legend=dict(orientation="h"))
    ev2 = st.plotly_chart(ov, key="umap_overlay", on_select="rerun", selection_mode=("points", "box", "lasso"))
    new2 = _selected(ev2)
    if new2 is not None and new2 and new2 != sel:
        state.select("umap_sel", new2)
        st.rerun()
    st.caption("● reference, ✕ the other model; grey lines join each instruction's two positions"
               + (" (selected instructions only)." if sel else "."))
else:
    st.info("Pick at least one model besides the reference to overlay.")

# ------------------------------------------------------------------------------------ statistics
st.subheader("Disparity (full embeddings)")
rows = []
ref_seed = data.space_seed(ctx, ref, agent_seed)
need = [data.label(m, s) for m, s in spaces if m != ref and not data.procrustes_ready(tok, ref, ref_seed, m, s)]
with st.spinner(f"Procrustes permutation tests ({report.N_PERM} shuffles) for {', '.join(need)}; cached "
                "afterwards…") if need else nullcontext():
    stats = {m: data.procrustes_stats(tok, ref, ref_seed, m, s) for m, s in spaces if m != ref}
for m, s in spaces:
    if m == ref:
        continue
    pr = stats[m]
    rows.append({"model": data.label(m, s), "family": ctx["families"].get(m), "disparity": pr["disparity"],
                 "permutation p": pr["p_value"], "dims used": pr["dim_used"], "PCA first": pr["pca"],
                 "2-D layout disparity": disp2d[m]})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="umap_stats",
                 column_config={"disparity": st.column_config.NumberColumn(format="%.3f"),
                                "permutation p": st.column_config.NumberColumn(format="%.4f"),
                                "2-D layout disparity": st.column_config.NumberColumn(format="%.3f")})
    st.caption(f"{metrics.PROCRUSTES_CONVENTIONS}. Permutation p: (1 + #null disparity ≤ observed)/(1 + "
               f"{report.N_PERM}), the model's rows shuffled. 0 = identical up to rotation and scale, 1 = "
               "nothing in common. The 2-D layout disparity is the same quantity on the UMAP layouts (display only).")

# ------------------------------------------------------------------------------------ displacement
st.subheader("Which instructions moved most")
if other_opts:
    K = 5
    disp = projection.displacement_table(al, k=K)
    disp["model"] = disp["model"].map(lambda m: data.label(m, data.space_seed(ctx, m, agent_seed)))
    wide = disp.pivot(index="item", columns="model", values="relative_displacement")
    dt = pd.DataFrame({"instruction": INSTRUCTIONS})
    for c in wide.columns:
        dt[c] = wide[c].reindex(range(N)).to_numpy()
    disp_cols = list(wide.columns)
    dt["mean"] = dt[disp_cols].mean(axis=1)
    for f in FACTORS:
        dt[f] = md[f]
    dt = dt.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    st.caption(f"Relative displacement of each instruction: the distance between its position in the reference "
               f"layout and in each model's aligned layout, divided by its mean distance to its {K} nearest "
               "neighbours in the reference layout -- i.e. how many neighbour spacings it moved "
               f"({projection.DISPLACEMENT_CONVENTIONS}). Largest mean first.")
    st.dataframe(dt, hide_index=True, key="umap_disp", height=360,
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in [*disp_cols, "mean"]})
    coords = pd.concat([pd.DataFrame({"instruction": INSTRUCTIONS, "space": data.label(m, s),
                                      "reference": data.label(ref, ref_seed), "x_aligned": aligned[m][:, 0],
                                      "y_aligned": aligned[m][:, 1], "x_umap": raw[m][:, 0], "y_umap": raw[m][:, 1],
                                      **{f: md[f] for f in FACTORS}}) for m, s in spaces], ignore_index=True)
    c1, c2 = st.columns(2)
    c1.download_button("Download aligned coordinates (CSV)", coords.to_csv(index=False).encode(),
                       file_name=f"alva_umap_aligned_to_{ref}.csv", mime="text/csv", on_click="ignore")
    c2.download_button("Download displacement table (CSV)", dt.to_csv(index=False).encode(),
                       file_name=f"alva_umap_displacement_{ref}.csv", mime="text/csv", on_click="ignore")
    st.caption("PNG export: the camera icon in each chart's toolbar saves the chart as a PNG (kaleido, which "
               "would export from the server, is not installed).")
finish()

"""P@k: curves over k with chance, permutation band, bootstrap CI and agent-seed spread; N x N heatmap; CSV."""
from contextlib import nullcontext

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import metrics, report
from core.embedders import EmbedderError
from ui import data, state
from ui.state import N
from ui.widgets import finish, KIND_STYLE, k_slider, models_picker, not_computed, seed_picker, setup

tok, ctx = setup(("ref",))
st.title("P@k")
st.caption("P@k between a reference space and each model, for every k from 1 to 107: the fraction of each "
           "instruction's k nearest neighbours the two spaces share, averaged over the 108 instructions.")

present = ctx["present"]
if st.session_state["ref"] not in present and present:
    st.session_state["ref"] = ctx["default_ref"] if ctx["default_ref"] in present else present[0]
c1, c2, c3 = st.columns([2, 1, 2])
with c1:
    if present:
        st.selectbox("Reference", present, format_func=lambda n: f"{n} · {ctx['families'].get(n, '')}",
                     help="Every curve compares this space with one model.", **state.bind("w_ref_p", "ref"))
with c2:
    agent_seed = seed_picker(ctx)
with c3:
    k = k_slider("k for the heatmap and the table")
models = models_picker(ctx)
t1, t2, t3, t4 = st.columns(4)
show_base = t1.toggle("Reference rows (baselines)", value=True, key="p_base",
                      help="Add every baseline present as a dashed curve.")
show_perm = t2.toggle("Permutation 95% band", value=True, key="p_perm")
show_boot = t3.toggle("Bootstrap 95% CI", value=True, key="p_boot")
show_seeds = t4.toggle("Spread over agent seeds", value=True, key="p_seeds")
if show_base:
    st.caption("Baselines are drawn dashed: " + report.BASELINE_WHY)

ref = st.session_state["ref"]
if not present:
    st.info("No embeddings are present in `assets/`.")
    st.stop()
ref_seed = data.space_seed(ctx, ref, agent_seed)
others = [m for m in models if m != ref]
if show_base:
    others += [m for m in present if ctx["kinds"].get(m) == report.KIND_BASELINE and m not in others and m != ref]
missing = [m for m in others if m not in present]
for m in missing:
    not_computed(ctx, m)
others = [m for m in others if m in present]

need = [m for m in others if not data.pair_stats_ready(tok, ref, ref_seed, m, data.space_seed(ctx, m, agent_seed))]
stats = {}
with st.spinner(f"Computing permutation nulls and bootstrap CIs for {len(need)} pair(s) "
                f"({report.N_PERM} permutations each; kept in the cache afterwards)…") if need else nullcontext():
    for m in others:
        stats[m] = data.pair_stats(tok, ref, ref_seed, m, data.space_seed(ctx, m, agent_seed))

ks = np.arange(1, N)
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22",
           "#7f7f7f", "#393b79", "#637939"]
BASE_COLOURS = ["#555555", "#888888", "#aaaaaa", "#333333", "#999999", "#666666"]
fig = go.Figure()
fig.add_trace(go.Scatter(x=ks, y=metrics.chance_precision(N, ks), name="chance k/(n−1)", mode="lines",
                         line=dict(color="black", dash="dot", width=1.5)))
rows = []
ref_seeds = ctx["seeds_of"].get(ref, [])
ci, bi = 0, 0


def band(x, lo, hi, colour, group, name, opacity):
    fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", fillcolor=colour,
                             opacity=opacity, line=dict(width=0), hoverinfo="skip", legendgroup=group,
                             showlegend=False, name=name))


for m in others:
    s = data.space_seed(ctx, m, agent_seed)
    st_ = stats[m]
    kind = ctx["kinds"].get(m)
    if kind == report.KIND_BASELINE:
        colour = BASE_COLOURS[bi % len(BASE_COLOURS)]
        bi += 1
    else:
        colour = PALETTE[ci % len(PALETTE)]
        ci += 1
    name = f"{data.label(ref, ref_seed)} vs {data.label(m, s)}"
    if show_perm:
        band(ks, st_["null_lo"], st_["null_hi"], "#999999", name, "permutation band", 0.18)
    if show_boot:
        band(ks, st_["boot_lo"], st_["boot_hi"], colour, name, "bootstrap CI", 0.22)
    spread = None
    if show_seeds and len(ref_seeds) > 1 and m != ref:
        curves = np.array([  # shipped with the pair statistics when available, else computed (~15 ms each)
            data.pair_stats(tok, ref, rs, m, data.space_seed(ctx, m, rs))["curve"]
            if data.pair_stats_ready(tok, ref, rs, m, data.space_seed(ctx, m, rs))
            else data.curve(tok, ref, rs, m, data.space_seed(ctx, m, rs)) for rs in ref_seeds])
        spread = curves
        fig.add_trace(go.Scatter(x=ks, y=curves.min(axis=0), mode="lines", line=dict(color=colour, width=0.8,
                                 dash="dot"), legendgroup=name, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ks, y=curves.max(axis=0), mode="lines", line=dict(color=colour, width=0.8,
                                 dash="dot"), legendgroup=name, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=ks, y=st_["curve"], name=name, mode="lines", legendgroup=name,
                             line=dict(color=colour, dash=KIND_STYLE.get(kind, "solid"), width=2.2),
                             hovertemplate="k=%{x}<br>P@k=%{y:.3f}<extra>" + name + "</extra>"))
    for j, kk in enumerate(ks):
        row = {"reference": data.label(ref, ref_seed), "model": data.label(m, s), "kind": kind, "k": int(kk),
               "P@k": st_["curve"][j], "chance": kk / (N - 1), "boot_lo": st_["boot_lo"][j],
               "boot_hi": st_["boot_hi"][j], "null_lo": st_["null_lo"][j], "null_hi": st_["null_hi"][j],
               "p_perm": st_["p"][j]}
        if spread is not None:
            row.update({"agent_seeds_min": spread[:, j].min(), "agent_seeds_max": spread[:, j].max(),
                        "agent_seeds_mean": spread[:, j].mean()})
        rows.append(row)

fig.add_vline(x=k, line=dict(color="#bbbbbb", width=1))
fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="k", yaxis_title="P@k",
                  yaxis_range=[0, 1.02], legend=dict(font=dict(size=11)), hovermode="closest")
st.plotly_chart(fig, key="pk_curves")
st.caption("Solid = models, dotted = agent variants, dashed = baselines (reference rows); black dotted = analytic "
           "chance k/(n−1). Grey band: 95% permutation band (model's instruction labels shuffled "
           f"{report.N_PERM}×). Coloured band: 95% bootstrap CI over instructions ({report.N_BOOT} resamples). "
           f"Thin dotted lines: min and max over the {len(ref_seeds)} seeds of the reference (each against the "
           "model file of the matching seed where there is one). Click a legend entry to hide a pair.")

table = pd.DataFrame(rows)
if len(table):
    at_k = table[table["k"] == k].drop(columns=["k"]).reset_index(drop=True)
    st.subheader(f"At k = {k}")
    st.dataframe(at_k, hide_index=True, key="pk_table",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in at_k.columns
                                if c not in ("reference", "model", "kind", "p_perm")} |
                 {"p_perm": st.column_config.NumberColumn(format="%.4f")})
    st.download_button("Download all curves (CSV)", table.to_csv(index=False).encode(),
                       file_name="alva_precision_curves.csv", mime="text/csv", on_click="ignore")

# ------------------------------------------------------------------------------------ heatmap
st.subheader(f"P@{k} between every pair")
names = list(dict.fromkeys([ref, *others]))
spaces = tuple((m, data.space_seed(ctx, m, agent_seed)) for m in names)
if len(spaces) >= 2:
    M = data.precision_matrix(tok, spaces, k)
    hm = go.Figure(go.Heatmap(z=M.values, x=list(M.columns), y=list(M.index), zmin=0, zmax=1,
                              colorscale="Viridis", text=np.round(M.values, 2), texttemplate="%{text}",
                              hovertemplate="%{y} vs %{x}: P@k=%{z:.3f}<extra></extra>"))
    hm.update_layout(height=120 + 38 * len(spaces), margin=dict(l=10, r=10, t=10, b=10),
                     yaxis=dict(autorange="reversed"))
    st.plotly_chart(hm, key="pk_heatmap")
    st.caption(f"Chance at k = {k}: {k / (N - 1):.3f}. Diagonal = 1 by definition.")
    st.download_button("Download the matrix (CSV)", M.to_csv().encode(), file_name=f"alva_precision_matrix_k{k}.csv",
                       mime="text/csv", on_click="ignore")
else:
    st.info("Pick at least one model besides the reference.")

# ------------------------------------------------------------------------------------ conventions
with st.expander("Conventions (how every number on this page is computed)", expanded=False):
    st.markdown(f"- **Neighbours / P@k:** {metrics.PRECISION_CONVENTIONS}.\n"
                f"- **Permutation band and p:** the model's rows (instruction labels) are shuffled "
                f"{report.N_PERM} times (numpy `default_rng({report.STAT_SEED})`), neighbours recomputed; band = "
                f"2.5/97.5 percentiles per k; p = (1 + #null ≥ observed) / (1 + {report.N_PERM}), one-sided.\n"
                f"- **Bootstrap CI:** instructions resampled with replacement {report.N_BOOT} times "
                f"(`default_rng({report.STAT_SEED})`), per-instruction P@k fixed, percentile interval.\n"
                "- **Seeds:** seeded baselines (random draws, untrained agent) use the seed matching the agent seed.\n"
                "- **Pooling and layer per model** (from each embedding file's manifest):")
    man_rows = []
    for m, s in spaces:
        try:
            man = data.space(tok, ctx, m, agent_seed)[1]
        except (EmbedderError, LookupError):
            continue
        man_rows.append({"space": data.label(m, s), "family": man.get("family"), "pooling": man.get("pooling"),
                         "layer": man.get("layer"), "dim": man.get("dim"), "dtype": man.get("dtype"),
                         "source": man.get("source"), "date": man.get("date")})
    st.dataframe(pd.DataFrame(man_rows), hide_index=True, key="pk_manifests")
finish()

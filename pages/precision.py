"""P@k: curves over k with chance, permutation band, bootstrap CI and agent-seed spread; N x N heatmap; CSV."""
from contextlib import nullcontext

import pandas as pd
import streamlit as st

from core import metrics, report
from core.embedders import EmbedderError
from ui import data, figures, sets, state
from ui.state import N
from ui.widgets import finish, folded, k_slider, models_picker, not_computed, run_fragment, seed_picker, setup

tok, ctx = setup(("ref",))
st.title("P@k")
if state.current_set() != state.DEFAULT_SET:  # a larger instruction set (issue 15): its own view
    sets.precision(tok, ctx)
    finish()
    st.stop()
st.caption("P@k between a reference space and each model, for every k from 1 to 107: the fraction of each "
           "instruction's k nearest neighbours the two spaces share, averaged over the 108 instructions.")

present = ctx["present"]
if st.session_state["ref"] not in present and present:
    st.session_state["ref"] = ctx["default_ref"] if ctx["default_ref"] in present else present[0]
c1, c2 = st.columns(2)
with c1:
    if present:
        st.selectbox("Reference", present, format_func=lambda n: f"{n} · {ctx['families'].get(n, '')}",
                     help="Every curve compares this space with one model.", **state.bind("w_ref_p", "ref"))
with c2:
    agent_seed = seed_picker(ctx)
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
    finish()
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
with st.spinner(f"Computing permutation nulls and bootstrap CIs for {len(need)} pair(s) "
                f"({report.N_PERM} permutations each; kept in the cache afterwards)…") if need else nullcontext():
    for m in need:
        data.pair_stats(tok, ref, ref_seed, m, data.space_seed(ctx, m, agent_seed))
spec, plot, table, table_csv = figures.precision_curves(tok, ref, agent_seed, tuple(others), show_perm, show_boot,
                                                        show_seeds)
st.vega_lite_chart(plot, spec, key="pk_curves", width="stretch")
st.caption("Solid = models, dotted = agent variants, dashed = baselines (reference rows); black dotted = analytic "
           "chance k/(n−1). Grey: each pair's 95% permutation band (the model's instruction labels shuffled "
           f"{report.N_PERM}×). Coloured band: 95% bootstrap CI over instructions ({report.N_BOOT} resamples). "
           f"Thin dotted lines: min and max over the {len(ctx['seeds_of'].get(ref, []))} seeds of the reference "
           "(each against the model file of the matching seed where there is one). Hover a curve for its values; "
           "click a legend entry to highlight that pair (shift-click for several, double-click to reset).")

names = list(dict.fromkeys([ref, *others]))
spaces = tuple((m, data.space_seed(ctx, m, agent_seed)) for m in names)


@st.fragment
def at_k() -> None:
    """What depends on k, rerun on its own when k moves (the curves above do not depend on k)."""
    k = k_slider("k for the table and the heatmap")
    if len(table):
        rows_k = table[table["k"] == k].drop(columns=["k"]).reset_index(drop=True)
        st.subheader(f"At k = {k}")
        st.dataframe(rows_k, hide_index=True, key="pk_table",
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in rows_k.columns
                                    if c not in ("reference", "model", "kind", "p_perm")} |
                     {"p_perm": st.column_config.NumberColumn(format="%.4f")})
        st.download_button("Download all curves (CSV)", table_csv, file_name="alva_precision_curves.csv",
                           mime="text/csv", on_click="ignore")

    # ------------------------------------------------------------------------------------ heatmap
    st.subheader(f"P@{k} between every pair")
    if len(spaces) >= 2:
        hm, cells, matrix_csv = figures.precision_heatmap(tok, spaces, k)
        st.vega_lite_chart(cells, hm, key="pk_heatmap", width="stretch")
        st.caption(f"Rows and columns: the spaces compared (symmetric). Chance at k = {k}: "
                   f"{metrics.chance_precision(N, k):.3f}. Diagonal = 1 by definition. Full precision: hover a "
                   "cell, or the CSV below.")
        st.download_button("Download the matrix (CSV)", matrix_csv, file_name=f"alva_precision_matrix_k{k}.csv",
                           mime="text/csv", on_click="ignore")
    else:
        st.info("Pick at least one model besides the reference.")
    finish()


run_fragment(at_k)

# ------------------------------------------------------------------------------------ conventions
with (fold := folded("Conventions (how every number on this page is computed)", "pk_conventions_fold")):
    if fold.open:
        st.markdown(f"- **Neighbours / P@k:** {metrics.PRECISION_CONVENTIONS}.\n"
                    f"- **Permutation band and p:** the model's rows (instruction labels) are shuffled "
                    f"{report.N_PERM} times (numpy `default_rng({report.STAT_SEED})`), neighbours recomputed; band = "
                    f"2.5/97.5 percentiles per k; p = (1 + #null ≥ observed) / (1 + {report.N_PERM}), one-sided.\n"
                    f"- **Bootstrap CI:** instructions resampled with replacement {report.N_BOOT} times "
                    f"(`default_rng({report.STAT_SEED})`), per-instruction P@k fixed, percentile interval.\n"
                    "- **Seeds:** seeded baselines (random draws, untrained agent) use the seed matching the agent "
                    "seed.\n"
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

"""Instruction sets: alignment as the instruction set grows (issue 15; core.scaling), with success per set."""
import streamlit as st

from core.scaling import NotShippedError
from ui import data, sets
from ui.widgets import finish, folded, setup

tok, ctx = setup()
st.title("Instruction sets")
st.caption("Does the agent's alignment with language models survive a richer language? Agents trained on each "
           "preset of the BabyAI grammar (paper108 → +colourless → +location → +putnext), compared with reference "
           "models that embed every instruction of the set. **Common 108**: P@15 on the 108 paper108 "
           "instructions only (does richer training change how the same instructions align?). **Whole set**: P@k "
           "over all n instructions, k scaled with n (k/(n−1) ≈ 0.14), with a permutation null. The untrained "
           "agent and bag-of-words are references too (word overlap alone).")
try:
    tables = data.scaling_tables(tok)
except NotShippedError as e:
    st.info(f"The instruction-set results are not shipped here ({e}). Compute them (after the sweep and the "
            "reference embeddings) with:", icon=":material/info:")
    st.code("python -m core sweep sweeps/instruction_sets.toml\npython -m core scaling --embed +colourless "
            "+location +putnext\npython -m core scaling --ship", language="bash")
    finish()
    st.stop()

st.subheader("The sets")
st.dataframe(tables["sets"], hide_index=True, key="sets_table",
             column_config={"chance_whole": st.column_config.NumberColumn(format="%.4f")})

st.subheader("Alignment against the set's size")
show_untrained = st.toggle("Also the untrained agent (dashed)", value=True, key="sets_untrained",
                           help="The same network with its initial weights: how much of the alignment needs no "
                                "training at all.")
agents = ("alm", "untrained-alm") if show_untrained else ("alm",)
c1, c2 = st.columns(2)
for where, view in ((c1, "common 108"), (c2, "whole set")):
    spec, plot = sets.scaling_curve(tables, view, agents)
    with where:
        if len(plot):
            st.vega_lite_chart(plot, spec, key=f"sets_curve_{view.replace(' ', '_')}", width="stretch")
        else:
            st.info(f"No {view} rows shipped.")
st.caption("One line per reference model (the trained agent solid, the untrained agent dashed); points: mean over "
           "agent seeds, bars: ± sd; black dotted: chance k/(n−1). The reference `untrained-alm` is the agent's "
           "own untrained network. Hover a point for its numbers; the CSVs below hold every seed.")
c = tables["curve"]
st.download_button("Download the curve (CSV: view, set, n, agent, reference, mean, sd, seeds, k)",
                   c.to_csv(index=False).encode(), file_name="alva_instruction_sets_curve.csv", mime="text/csv",
                   on_click="ignore", key="sets_curve_csv")
with (fold := folded("Per seed: whole-set P@k with the permutation null, and common-108 P@15", "sets_seed_fold")):
    if fold.open:
        st.dataframe(tables["whole"], hide_index=True, key="sets_whole")
        st.download_button("Download whole-set P@k (CSV)", tables["whole"].to_csv(index=False).encode(),
                           file_name="alva_instruction_sets_whole.csv", mime="text/csv", on_click="ignore",
                           key="sets_whole_csv")
        st.dataframe(tables["common108"], hide_index=True, key="sets_common")
        st.download_button("Download common-108 P@15 (CSV)", tables["common108"].to_csv(index=False).encode(),
                           file_name="alva_instruction_sets_common108.csv", mime="text/csv", on_click="ignore",
                           key="sets_common_csv")

st.subheader("Agent success per set")
succ = tables["success"]
if not len(succ):
    st.info("No agent manifests shipped for the instruction sets.")
else:
    long = succ.melt(id_vars=["set", "run", "seed"], value_vars=["overall", "paper108_items"], var_name="measure",
                     value_name="success").dropna(subset=["success"])
    spec = {"mark": {"type": "point", "filled": True, "size": 70},
            "encoding": {"x": {"field": "set", "type": "nominal", "sort": list(tables["sets"]["set"]), "title": None},
                         "xOffset": {"field": "measure"},
                         "y": {"field": "success", "type": "quantitative", "scale": {"domain": [0, 1]}},
                         "color": {"field": "measure", "type": "nominal"},
                         "tooltip": [{"field": "run"}, {"field": "set"}, {"field": "measure"},
                                     {"field": "success", "format": ".3f"}]}}
    st.vega_lite_chart(long, spec, key="sets_success_figure", width="stretch")
    st.caption("One dot per agent run: success overall and on the 108 paper108 instructions (held-out environment "
               "seeds). The bars of the issue: 0.90 on paper108 items, 0.85 overall on each larger set.")
    st.dataframe(succ, hide_index=True, key="sets_success")
    st.download_button("Download success per run and form (CSV)", succ.to_csv(index=False).encode(),
                       file_name="alva_instruction_sets_success.csv", mime="text/csv", on_click="ignore",
                       key="sets_success_csv")
with (fold := folded("Provenance (manifest)", "sets_manifest_fold")):
    if fold.open:
        st.json(tables["manifest"], expanded=False)
finish()

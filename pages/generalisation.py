"""Generalisation: do agents trained without some instructions execute them, and where do those instructions land
in the agent's space? And do word vectors initialised from a language model change learning and alignment?
(issue 16; the analysis is core.generalisation, shipped in assets/generalisation/.)

URL: ``split`` (the split of the per-split alignment figure), ``reference`` (the reference language model of the
statement and the word-init figures)."""
import re

import pandas as pd
import streamlit as st

from core import generalisation as G
from ui import data, state
from ui import generalisation as V
from ui.widgets import finish, folded, paper108_only, setup

tok, ctx = setup(("split", "reference"))
st.title("Generalisation")
paper108_only("The held-out splits and their agents")
st.caption("Agents trained with a set of instructions **held out** (their demos dropped; the agent still knows "
           "every word) run the held-out instructions zero-shot; agents whose **word vectors start from a language "
           "model** are compared with the identity and random starts. Every figure's numbers are in the table under "
           "it (CSV download), and each held-out instruction opens on the Agent page.")

try:
    res = V.results(V.token())
except G.NotShippedError as e:
    cmd = re.search(r"`([^`]+)`", str(e))
    st.info(f"The generalisation results are not shipped here yet ({state.md_escape(str(e).split(';')[0], 300)}). "
            "Train the agents and ship the results with:", icon=":material/info:")
    st.code(cmd.group(1) if cmd else "python -m core sweep sweeps/generalisation.toml && "
            "python -m core generalisation --ship", language="bash")
    finish()
    st.stop()

ss = st.session_state
refs = V.references(res)
if ss["reference"] not in refs and refs:
    ss["reference"] = refs[0]
splits_shipped = [s for s in state.SPLITS if s in set(res["runs"].split)]
if ss["split"] not in splits_shipped and splits_shipped:
    ss["split"] = splits_shipped[0]


def csv_table(df: pd.DataFrame, name: str, key: str, label: str = "the table", **kwargs) -> None:
    """A table and its CSV download, under a figure."""
    with (fold := folded(f"Numbers: {label} ({len(df)} rows)", f"{key}_fold")):
        if fold.open:
            st.dataframe(df, hide_index=True, key=key, **kwargs)
    st.download_button(f"Download {label} (CSV)", df.to_csv(index=False).encode(), file_name=f"alva_{name}.csv",
                       mime="text/csv", on_click="ignore", key=f"dl_{key}")


c1, c2 = st.columns([2, 3])
with c1:
    if refs:
        st.selectbox("Reference language model", refs, help="The model whose P@15 the statement and the word-init "
                     "figures use (the per-split figure shows them all).", **state.bind("w_reference", "reference"))
ref = ss["reference"]

# ---------------------------------------------------------------------------------------------------- the answer
st.subheader("The result, plainly")
for line in G.statement(res, reference=ref) if ref else []:
    st.markdown(f"- {line}")
summary = G.split_summary(res)
if len(summary):
    st.dataframe(summary, hide_index=True, key="g_summary")
m = res["manifest"]
st.caption(f"From `assets/generalisation/` ({len(m.get('runs', []))} runs; P@{m.get('k', G.K)}, "
           f"{m.get('n_permutations', G.N_PERMUTATIONS)} permutations; made by `{m.get('command', '')}` at commit "
           f"{str(m.get('git_commit') or '')[:8]}). Conventions: see `core/generalisation.py`.")

# ---------------------------------------------------------------------------------------------------- (a)
st.subheader("Zero-shot success: held-out vs trained instructions")
spec, plot, table = V.success_figure(res)
st.vega_lite_chart(plot, spec, key="g_success", width="stretch")
st.caption("One dot per seed (identity word init), the tick the mean over seeds. Success: each agent's final "
           "evaluation (its manifest's episodes per instruction, on evaluation seeds disjoint from the demos); "
           "trained / held-out = successes over the episodes of those instructions.")
csv_table(table, "generalisation_success", "g_success_table", "success per run")

spec, plot, table = V.outcomes_figure(res)
if spec:
    st.markdown("**What the agent does on a held-out instruction**")
    st.vega_lite_chart(plot, spec, key="g_outcomes", width="stretch")
    st.caption("Every held-out instruction run again (10 episodes each, evaluation seed 2, identity init, every "
               "seed), and the object each episode ends with: the one the agent carries, else the one in front of "
               "it (core.env.end_object). Target = the instruction's colour and object; 'nothing' = no object "
               "(e.g. wandering until the 64-step limit; an opened box also leaves nothing in front). Solid: "
               "successful episodes; faded: failures.")
    csv_table(table, "generalisation_outcomes", "g_outcomes_table", "held-out outcomes")

# ---------------------------------------------------------------------------------------------------- (b)
st.subheader("Where the held-out instructions land: P@15 with each reference model")
st.segmented_control("Split", splits_shipped, help="The held-out split whose agents are shown.",
                     **state.bind("w_split", "split"))
split = ss["split"]
spec, plot, table = V.alignment_figure(res, split)
st.vega_lite_chart(plot, spec, key="g_alignment", width="stretch")
st.caption("Per-item P@15 of the agent's E_L with each reference, averaged over the held-out items (red), the "
           "trained items (grey), and the same held-out items in the full-data agents alm-s* (blue); neighbours are "
           "drawn from all 108 items. One dot per seed, ticks the means. Grey bar: the permutation null (the "
           "reference's item labels shuffled), from its mean to its 97.5th percentile. The table also has P@k among "
           "the held-out items only (`among_held_out`, k scaled to their number, `k_among`) and its null.")
csv_table(table, f"generalisation_alignment_{split}", "g_alignment_table", "held-out alignment")

# ---------------------------------------------------------------------------------------------------- (c)
st.subheader("The nearest trained instruction: what it shares")
spec, plot, table = V.nearest_figure(res)
if spec:
    st.vega_lite_chart(plot, spec, key="g_nearest", width="stretch")
    st.caption("For each held-out instruction, its nearest trained instruction in the agent's E_L (cosine). Bars: "
               "the share of held-out items whose nearest trained one has the same colour / object / verb (mean over "
               "seeds; dots the seeds). Black ticks: chance, the share of trained items that have the same factor.")
    csv_table(table, "generalisation_nearest_trained", "g_nearest_table", "nearest trained instructions")

# ---------------------------------------------------------------------------------------------------- (d)
st.subheader("Word embeddings initialised from a language model")
spec, plot, table = V.curves_figure(res, ref)
if len(plot):
    st.vega_lite_chart(plot, spec, key="g_curves", width="stretch")
    st.caption(f"P@15 of the agent's E_L with {ref} across training, per word init (all trained on split "
               f"{G.INIT_SPLIT}; identity is that split's group): thin lines the seeds, thick the mean. Step 0 is the "
               "untrained agent: an LM init starts with the LM's word geometry.")
    csv_table(table, f"generalisation_alignment_curves_{ref}", "g_curves_table", "alignment curves")
itable = V.init_table(res, ref)
if len(itable):
    spec, plot = V.init_figure(itable)
    st.vega_lite_chart(plot, spec, key="g_inits")
    st.caption("Left: final success (all 108 instructions) and zero-shot success on the held-out items of "
               f"{G.INIT_SPLIT}. Right: P@15 with {ref} at step 0 and after training; `retained` in the table is "
               "final / initial. Steps to 0.90 (table): the first quick check at or above 0.90 success, coarse by "
               "construction (the quick checks' grid); empty: never.")
    csv_table(itable, f"generalisation_word_inits_{ref}", "g_inits_table", "word-init runs")

# ---------------------------------------------------------------------------------------------------- items
st.subheader("Held-out instructions: watch an agent try one")
items = V.held_out_table(res, ctx["checkpoints"])
st.caption("Each held-out instruction, its zero-shot success (mean over the split's seeds) and its nearest trained "
           "instruction (seed 0). The links open the Agent page on the split's agent, which never trained on the "
           "instruction, or on the full-data agent alm-s0; or select a row.")
ev = st.dataframe(items, hide_index=True, key="g_items", on_select="rerun", selection_mode="single-row",
                  column_config={
                      "zero-shot success": st.column_config.NumberColumn(format="%.2f"),
                      "cosine": st.column_config.NumberColumn(format="%.3f"),
                      "watch the held-out agent": st.column_config.LinkColumn(display_text="open ▸"),
                      "watch alm-s0": st.column_config.LinkColumn(display_text="open ▸")})
rows = ev["selection"]["rows"] if ev is not None else []
if rows:
    row = items.iloc[rows[0]]
    if row["agent"]:
        st.page_link("pages/agent.py",
                     label=f"Watch {row['agent']} (never trained on it) try “{row['instruction']}”",
                     icon=":material/smart_toy:", query_params=V.agent_link(row["agent"], row["instruction"]))
    if "alm-s0" in ctx["checkpoints"]:
        st.page_link("pages/agent.py", label=f"Watch alm-s0 (trained on it) do “{row['instruction']}”",
                     icon=":material/smart_toy:", query_params=V.agent_link("alm-s0", row["instruction"]))
st.download_button("Download the held-out instructions (CSV)", items.to_csv(index=False).encode(),
                   file_name="alva_generalisation_held_out.csv", mime="text/csv", on_click="ignore")
finish()

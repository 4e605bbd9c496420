"""Neighbours: the k nearest instructions of the selected instruction in each model, against the agent's."""
import numpy as np
import pandas as pd
import streamlit as st

from core import report
from core.embedders import EmbedderError
from ui import data, state
from ui.state import INSTRUCTIONS
from ui.widgets import finish, instruction_picker, k_slider, models_picker, not_computed, seed_picker, setup

tok, ctx = setup()
st.title("Neighbours")
st.caption("For the selected instruction, each model's k nearest instructions by cosine similarity of its "
           "embeddings, nearest first (the instruction itself excluded; ties broken by instruction order). ✓ marks a "
           "neighbour "
           "that the agent shares. Click a row to make that neighbour the selected instruction.")

@st.fragment
def neighbours() -> None:
    """The whole page below the title: every control here changes most of what is shown, so the page reruns as
    one fragment (app.py's navigation and sidebar are not redrawn; the sidebar summary is refreshed by finish)."""
    c1, c2, c3 = st.columns([3, 2, 1])
    with c1:
        instr = instruction_picker()
    with c2:
        k = k_slider()
    with c3:
        agent_seed = seed_picker(ctx)
    models = models_picker(ctx)
    i = INSTRUCTIONS.index(instr)
    ref = report.REFERENCE
    st.page_link("pages/agent.py", label=f"Watch the agent act on “{instr}” (Agent page)", icon="🤖",
                 query_params={"instruction": instr, "seed": str(agent_seed)})


    def load(name):
        try:
            E, man, s = data.space(tok, ctx, name, agent_seed)
            return s
        except (EmbedderError, LookupError) as e:
            return e


    ref_seed = load(ref)
    have_ref = not isinstance(ref_seed, Exception)
    if not have_ref:
        st.warning(f"The agent ({ref}) has no embeddings here, so neighbours cannot be compared with it.")
        not_computed(ctx, ref, ref_seed)
    else:
        ref_idx, _ = data.neighbours(tok, ref, ref_seed, k)
        agent_set = set(ref_idx[i].tolist())

    if not models:
        st.info("Pick at least one model above.")

    PER_ROW = 3
    for row_start in range(0, len(models), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, name in zip(cols, models[row_start:row_start + PER_ROW]):
            with col:
                s = load(name)
                st.markdown(f"**{data.label(name, None if isinstance(s, Exception) else s)}**  \n"
                            f"<small>{ctx['families'].get(name, '')}</small>", unsafe_allow_html=True)
                if isinstance(s, Exception):
                    not_computed(ctx, name, s)
                    continue
                idx, sim = data.neighbours(tok, name, s, k)
                df = pd.DataFrame({"neighbour": [INSTRUCTIONS[j] for j in idx[i]], "cosine": sim[i]})  # nearest first
                if have_ref:
                    df["agent"] = ["✓" if j in agent_set else "" for j in idx[i]]
                    if not (name == ref and s == ref_seed):
                        p = data.per_item(tok, ref, ref_seed, name, s, k)[i]
                        st.metric(f"P@{k} vs agent (this instruction)", f"{p:.2f}",
                                  help=f"shared neighbours / k = {int(round(p * k))}/{k}")
                    else:
                        st.metric(f"P@{k} vs agent (this instruction)", "—", help="This column is the agent itself.")
                ev = st.dataframe(df, hide_index=True, key=f"nb_{name}_{i}", on_select="rerun",
                                  selection_mode="single-row", height=min(35 * (k + 1) + 3, 560),
                                  column_config={"cosine": st.column_config.NumberColumn(format="%.3f", width=54),
                                                 "neighbour": st.column_config.TextColumn(width=165),
                                                 "agent": st.column_config.TextColumn(width=46)})
                rows = ev["selection"]["rows"] if ev else []
                if rows:
                    state.select("instruction", INSTRUCTIONS[int(idx[i][rows[0]])])
                    state.rerun()

    # ------------------------------------------------------------------------------------ disagreement
    st.header("Where the agent and the language models disagree")
    lms = [m for m in models if ctx["kinds"].get(m) == report.KIND_MODEL and m in ctx["present"]]
    if not lms:
        lms = [m for m in ctx["present"] if ctx["kinds"].get(m) == report.KIND_MODEL]
    if not have_ref:
        st.info("Needs the agent's embeddings.")
    elif not lms:
        st.info("No language or vision-language model has embeddings here yet (baselines are not language models), "
                "so there is no disagreement ranking. The Overview page lists the commands that compute them.")
    else:
        st.caption(f"Each instruction's P@{k} between the agent ({ref}-s{ref_seed}) and each language model "
                   f"({', '.join(lms)}), and their mean; lowest mean first = the instructions whose neighbourhoods "
                   "differ most between acting and language. Click a row to select that instruction.")
        cols = {m: data.per_item(tok, ref, ref_seed, m, data.space_seed(ctx, m, agent_seed), k) for m in lms}
        md = data.metadata()
        rank = pd.DataFrame({"instruction": INSTRUCTIONS, f"mean P@{k}": np.mean(list(cols.values()), axis=0),
                             **{m: v for m, v in cols.items()}, "verb": md["verb"], "colour": md["colour"],
                             "object": md["object"], "determiner": md["determiner"]})
        rank = rank.sort_values(f"mean P@{k}", kind="stable").reset_index(drop=True)
        ev = st.dataframe(rank, hide_index=True, key=f"disagree_{i}_{k}_{'_'.join(lms)}", on_select="rerun",
                          selection_mode="single-row", height=400,
                          column_config={c: st.column_config.NumberColumn(format="%.2f")
                                         for c in [f"mean P@{k}", *lms]})
        rows = ev["selection"]["rows"] if ev else []
        if rows and rank["instruction"][rows[0]] != instr:
            state.select("instruction", rank["instruction"][rows[0]])
            state.rerun()
        st.download_button("Download this ranking (CSV)", rank.to_csv(index=False).encode(),
                           file_name=f"alva_disagreement_p{k}.csv", mime="text/csv", on_click="ignore")
    finish()


neighbours()

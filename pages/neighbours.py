"""Neighbours: the k nearest instructions of the selected instruction in each model, against the agent's."""
import numpy as np
import pandas as pd
import streamlit as st

from core import report
from core.embedders import EmbedderError
from ui import data, figures, sets, state
from ui.state import INSTRUCTIONS
from ui.widgets import (finish, instruction_picker, k_slider, models_picker, neighbour_grid, not_computed,
                        run_fragment, seed_picker, selectable_table, selection_done, setup)

tok, ctx = setup()
st.title("Neighbours")
if state.current_set() != state.DEFAULT_SET:  # a larger instruction set (issue 15): its own view
    sets.neighbours(tok, ctx)
    finish()
    st.stop()
st.caption("For the selected instruction, each model's k nearest instructions by cosine similarity of its "
           "embeddings (the number after the instruction), nearest first (the instruction itself excluded; ties "
           "broken by instruction order); one column per model. ✓ marks a neighbour that the agent shares; a "
           "column's header gives that model's P@k against the agent for this instruction. Click a cell to make "
           "that neighbour the selected instruction.")


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
    st.page_link("pages/agent.py", label=f"Watch the agent act on “{instr}” (Agent page)",
                 icon=":material/smart_toy:", query_params={"instruction": instr, "seed": str(agent_seed)})

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

    # one grid, one column per model: a single table draws far faster in the browser than one per model
    shown: dict[str, list[str]] = {}  # grid column -> its neighbours, nearest first
    grid = pd.DataFrame({"rank": np.arange(1, k + 1)})
    config: dict = {"rank": st.column_config.NumberColumn("#", width=32, pinned=True)}
    long, missing = [], []
    for name in models:
        s = load(name)
        if isinstance(s, Exception):
            missing.append((name, s))
            continue
        col = data.label(name, s)
        idx, sim = data.neighbours(tok, name, s, k)
        is_ref = have_ref and name == ref and s == ref_seed
        shared = [have_ref and not is_ref and j in agent_set for j in idx[i]]
        shown[col] = [INSTRUCTIONS[j] for j in idx[i]]
        grid[col] = [f"{'✓ ' if sh else ''}{INSTRUCTIONS[j]} · {c:.3f}" for j, c, sh in zip(idx[i], sim[i], shared)]
        fam = ctx["families"].get(name, "")
        if not have_ref:
            header, about = col, fam
        elif is_ref:
            header, about = f"{col} (agent)", f"{fam}: the agent itself, the reference of ✓ and P@{k}."
        else:
            p = data.per_item(tok, ref, ref_seed, name, s, k)[i]
            header = f"{col} · P@{k} {p:.2f}"
            about = (f"{fam}. P@{k} vs the agent for this instruction: {int(round(p * k))} of its {k} nearest "
                     f"instructions are also among the agent's (✓).")
        config[col] = st.column_config.TextColumn(header, help=about, width=235)
        long += [{"instruction": instr, "model": col, "rank": r + 1, "neighbour": INSTRUCTIONS[j], "cosine": c,
                  "shared_with_agent": sh if not is_ref else None}
                 for r, (j, c, sh) in enumerate(zip(idx[i], sim[i], shared))]
    if shown:
        neighbour_grid(grid, shown, config, "nb_grid", k)
        st.download_button("Download these neighbours (CSV)", pd.DataFrame(long).to_csv(index=False).encode(),
                           file_name=f"alva_neighbours_k{k}.csv", mime="text/csv", on_click="ignore")
    for name, err in missing:
        not_computed(ctx, name, err)

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
        lm_spaces = tuple((m, data.space_seed(ctx, m, agent_seed)) for m in lms)
        grid_spec, grid_data = figures.agreement_grid(tok, ref, ref_seed, lm_spaces, k)
        st.vega_lite_chart(grid_data, grid_spec, key="nb_agreement", width="stretch")
        st.caption(f"The same numbers by instruction family: each cell is the mean P@{k} over its two instructions "
                   "(determiner *the* / *a*) and the language models above; dark = the agent's and the language "
                   "models' neighbourhoods differ. Hover a cell for its value; the table below lists every "
                   "instruction.")
        cols = {m: data.per_item(tok, ref, ref_seed, m, s, k) for m, s in lm_spaces}
        md = data.metadata()
        rank = pd.DataFrame({"instruction": INSTRUCTIONS, f"mean P@{k}": np.mean(list(cols.values()), axis=0),
                             **{m: v for m, v in cols.items()}, "verb": md["verb"], "colour": md["colour"],
                             "object": md["object"], "determiner": md["determiner"]})
        rank = rank.sort_values(f"mean P@{k}", kind="stable").reset_index(drop=True)
        # keyed without the instruction or k: a change of either updates this table in place
        key = f"disagree_{'_'.join(lms)}"
        rows = selectable_table(rank, key, "single-row", height=400,
                                column_config={c: st.column_config.NumberColumn(format="%.2f")
                                               for c in [f"mean P@{k}", *lms]}).get("rows", [])
        if rows:
            state.select("instruction", rank["instruction"][rows[0]])
            selection_done(key)
        st.download_button("Download this ranking (CSV)", rank.to_csv(index=False).encode(),
                           file_name=f"alva_disagreement_p{k}.csv", mime="text/csv", on_click="ignore")
    finish()


run_fragment(neighbours)

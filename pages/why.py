"""Why they align: alignment across learning, what organises each space, and how robust each number is."""
from contextlib import nullcontext
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from core import metrics, report
from core import why as W
from core.dynamics import TrajectoryError
from core.embedders import EmbedderError
from ui import data, state
from ui import why as V
from ui.state import CURVE_METRICS, INSTRUCTIONS, N
from ui.widgets import (finish, folded, instruction_picker, k_slider, models_picker, not_computed, paper108_only,
                        run_fragment, seed_picker, setup)

tok, ctx = setup(("metric", "agent", "section"))
st.title("Why they align")
paper108_only("The learning dynamics, layers and factor analyses")
st.caption("Why does the agent align with a language model as much as it does, and no more? Three kinds of evidence "
           "for the selected agent and models: how alignment changes while the agent learns to act, which "
           "grammatical factors organise each space (two spaces organised by different factors cannot share "
           "neighbourhoods), and how much each number moves with the choices an analysis makes.")

SECTIONS = dict(zip(state.WHY_SECTIONS, ("1. Alignment across learning", "2. What organises each space",
                                          "3. How robust is each number? The multiverse")))  # id -> tab label
CURVE_LABELS = {"pk": "P@k", "cka": "CKA", "rsa": "RSA", "pk_instruction": "P@k of the selected instruction"}


def selection() -> tuple[str, int, tuple[tuple[str, int | None], ...]]:
    """(agent, the agent's seed file, ((model, its seed file), ...)) of the shared selection: the models present
    other than the agent (a seeded model uses the file of the agent seed)."""
    ss = st.session_state
    agent, seed = ss["agent"], ss["seed"]
    pairs = tuple((m, data.space_seed(ctx, m, seed)) for m in ss["models"] if m != agent and m in ctx["present"])
    return agent, data.space_seed(ctx, agent, seed), pairs


@st.fragment
def why_page() -> None:
    """The controls, the answer and the open section: one fragment, as on the Neighbours page (a control moved
    reruns this, not the page). Only the open tab's section is computed and sent (Streamlit's lazy tabs)."""
    xtok = V.token(tok)
    agents = state.agents(ctx)
    if not agents:
        st.info("No trained agent has embeddings in `assets/` yet.")
        not_computed(ctx, report.REFERENCE)
        finish()
        return
    if st.session_state["agent"] not in agents:
        st.session_state["agent"] = state.default_agent(ctx)
    c1, c2, c3, c4 = st.columns([2, 1, 2, 3])
    with c1:
        st.selectbox("Agent", agents, format_func=lambda n: f"{n} · {ctx['families'].get(n, '')}",
                     help="Which trained agent variant (alm = the paper's agent).", **state.bind("w_agent", "agent"))
    with c2:
        seed = seed_picker(ctx)
    with c3:
        k = k_slider()
    with c4:
        instr = instruction_picker()
    models = models_picker(ctx)
    agent, a_seed, pairs = selection()
    if a_seed != seed:
        st.caption(f"{agent} is shipped for seed{'s' if len(ctx['seeds_of'].get(agent, [])) > 1 else ''} "
                   f"{', '.join(map(str, ctx['seeds_of'].get(agent, [])))} only: showing {data.label(agent, a_seed)}.")
    item = INSTRUCTIONS.index(instr)
    for m in [m for m in models if m != agent and m not in ctx["present"]]:
        not_computed(ctx, m)
    if not pairs:
        st.info("Pick at least one model besides the agent.")
    traj_seeds = V.trajectory_seeds(xtok, agent)
    has_traj = a_seed in traj_seeds

    # ------------------------------------------------------------------------------------ the answer
    need = len(traj_seeds) * len(pairs)
    with st.spinner(f"Computing alignment over training ({len(traj_seeds)} recorded seed(s) × {len(pairs)} model(s); "
                    "kept in the cache afterwards)…") if need else nullcontext():
        answers = []
        for m, _ in pairs:
            try:
                answers.append(V.pair_answer(tok, xtok, agent, seed, m, k))
            except (TrajectoryError, EmbedderError, LookupError, ValueError) as e:
                st.error(f"{data.label(agent, a_seed)} vs {m}: {e}")
    if answers:
        st.subheader("The answer, from the data")
        box = st.container(border=True)
        box.markdown(f"{W.agent_text(answers[0])} {W.brief_header(answers[0])}\n"
                     + "\n".join(f"- {W.answer_brief(a)}" for a in answers))
        with box.expander("The answer in full (what each number is)"):
            st.markdown("\n".join(f"- {W.answer_text(a, with_agent=False)}" for a in answers))
        st.caption("Every number above is computed on this page from the shipped files: P@k of the untrained and "
                   "the trained agent from their embeddings; the highest value along the way from the recorded "
                   "trajectory; the organising factors from η² (a factor counts when its η² is above its null and "
                   f"at least {W.ORGANISED_SHARE:.0%} of the largest); the spread over analysis choices from the "
                   "precomputed multiverse (P@15).")

    state.select("w_section", SECTIONS[st.session_state["section"]])
    tabs = st.tabs(list(SECTIONS.values()), key="w_section", on_change=_pick_section)
    with tabs[0]:
        if tabs[0].open:
            learning_section(xtok, agent, a_seed, pairs, k, instr, item, traj_seeds, has_traj)
    with tabs[1]:
        if tabs[1].open:
            organisation_section(xtok, agent, a_seed, pairs, k, instr, item)
    with tabs[2]:
        if tabs[2].open:
            multiverse_section(xtok, agent, a_seed, pairs)
    finish()


def _pick_section() -> None:
    label = st.session_state["w_section"]
    state.select("section", next((s for s, lab in SECTIONS.items() if lab == label), state.WHY_SECTIONS[0]))


def learning_section(xtok: str, agent: str, a_seed: int, pairs, k: int, instr: str, item: int,
                     traj_seeds: list[int], has_traj: bool) -> None:
    """1. Alignment across learning: the curves of every recorded seed against each model, what organises the
    agent as it learns, and its task success, on one step axis."""
    if not traj_seeds:
        st.info(f"No training trajectory of `{agent}` is shipped (`assets/trajectories/`): not computed. Record one "
                "(the same training run, with E_L read at every snapshot step) with:")
        st.code(V.record_command(agent, a_seed), language="bash")
        return
    if not has_traj:
        st.warning(f"No trajectory of {data.label(agent, a_seed)} is shipped (recorded seeds: "
                   f"{', '.join(map(str, traj_seeds))}); the curves show those seeds. Record it with:")
        st.code(V.record_command(agent, a_seed), language="bash")
    try:
        max_step = int(max(V.trajectory(xtok, agent, s).steps[-1] for s in traj_seeds))
    except (TrajectoryError, ValueError) as e:
        st.error(str(e))
        return
    run_fragment(partial(learning_curves, xtok, agent, a_seed, pairs, k, instr, item, traj_seeds))
    if has_traj:
        fspec, fdata = V.factors_over_steps_figure(xtok, agent, a_seed, max_step)
        st.vega_lite_chart(fdata, fspec, key="why_factors_steps", width="stretch")
        st.caption(f"What organises {data.label(agent, a_seed)} as it learns: η² of each factor (the share of "
                   "the variance of the L2-normalised embeddings explained by the factor's levels) at every "
                   "recorded step; dotted: each factor's null (L−1)/(n−1).")
    sspec, sdata = V.success_figure(xtok, agent, a_seed, max_step)
    st.vega_lite_chart(sdata, sspec, key="why_success", width="stretch")
    st.caption("Task success of the quick check run during training (greedy episodes on held-out environment "
               "seeds), only at the steps where it ran: there is no success value between them, and none "
               f"is drawn. Filled: {data.label(agent, a_seed)}; hollow: the other seeds.")


@st.fragment
def learning_curves(xtok: str, agent: str, a_seed: int, pairs, k: int, instr: str, item: int,
                    traj_seeds: list[int]) -> None:
    """The curve picker and the learning curves with their table and CSV: a fragment inside the page's fragment,
    so a new curve reruns only this (the controls, the answer and the other charts do not depend on it)."""
    st.segmented_control("Curve", CURVE_METRICS, format_func=CURVE_LABELS.get,
                         help="P@k: mean over the 108 instructions; P@k of the selected instruction: that "
                              "instruction's share of common neighbours; CKA (linear) and RSA (Spearman) do "
                              "not depend on k.", **state.bind("w_metric", "metric"))
    if st.session_state["metric"] not in CURVE_METRICS:  # a segmented control can be cleared
        state.select("metric", CURVE_METRICS[0])
    metric = st.session_state["metric"]
    if not pairs:
        finish()
        return
    slow = metric in ("cka", "rsa")  # dynamics.trajectory_metrics: P@15, CKA and RSA of every snapshot, once
    try:
        busy = (f"Computing P@15, CKA and RSA of every snapshot of {len(traj_seeds)} seed(s) against "
                f"{len(pairs)} model(s) (once: kept in the cache afterwards)…")
        with st.spinner(busy) if slow else nullcontext():
            spec, plot, table, csv = V.learning_figure(tok, xtok, agent, a_seed, pairs, k, metric,
                                                       item if metric == "pk_instruction" else -1)
    except (TrajectoryError, EmbedderError, LookupError, ValueError) as e:
        st.error(str(e))
        finish()
        return
    st.vega_lite_chart(plot, spec, key="why_curves", width="stretch")
    what = {"pk": f"P@{k} (mean over the 108 instructions)",
            "pk_instruction": f"P@{k} of “{instr}” alone (its share of common neighbours)",
            "cka": "linear CKA (columns centred)", "rsa": "RSA (Spearman correlation of cosine-distance "
            "RDMs)"}[metric]
    st.caption(f"{what} between the agent's instruction embeddings E_L at every recorded training step and "
               f"each model, one colour per model. Bold with points: {data.label(agent, a_seed)}; thin lines "
               f"and the shaded band: the other recorded seeds ({', '.join(map(str, traj_seeds))}), min to "
               "max. Step 0 is the untrained agent, the last step the shipped one. "
               + ("Dotted: chance k/(n−1). " if metric.startswith("pk") else "")
               + "Hover for the values; the table and the CSV below hold them.")
    with (fold := folded(f"Table: {data.label(agent, a_seed)} at each recorded step", "why_curves_fold")):
        if fold.open:
            st.dataframe(table, hide_index=True, key="why_curves_table",
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in table.columns if c != "step"})
    st.download_button("Download the curves of every seed (CSV)", csv,
                       file_name=f"alva_learning_{agent}_{metric}_k{k}.csv", mime="text/csv", on_click="ignore")
    finish()


def organisation_section(xtok: str, agent: str, a_seed: int, pairs, k: int, instr: str, item: int) -> None:
    """2. What organises each space: η², LOO accuracy and neighbour shares per factor, for the agent, its untrained
    twin and each model."""
    u = V.untrained_space(tok, xtok, agent, a_seed)
    spaces = [(agent, a_seed, None), *([u] if u is not None else []), *((m, ms, None) for m, ms in pairs)]
    figs, otable, ocsv = V.organisation_figures(tok, xtok, tuple(spaces), k)
    for col, (measure, spec, part) in zip(st.columns(len(figs)), figs):
        with col:
            st.vega_lite_chart(part, spec, key=f"why_org_{measure}", width="stretch")
    st.caption(f"One group of bars per space, one bar per grammatical factor: **η²**, the share of the "
               "variance of the L2-normalised embeddings explained by the factor's levels; **LOO accuracy**, "
               "leave-one-out nearest-centroid classification of the factor (cosine); **neighbour share**, the "
               f"share of each instruction's {k} nearest neighbours with the same level. Black ticks: chance "
               "((L−1)/(n−1), 1/L, the share of a random neighbour set). Two spaces organised by different factors "
               "cannot share neighbourhoods.")
    line = []
    for sp in spaces:
        mine = V.shares(tok, xtok, sp, k, item)
        line.append(f"{V.space_label(sp)}: " + ", ".join(f"{f} {int(round(s * k))}/{k}" for f, s in
                                                         zip(mine["factor"], mine["share"])))
    st.markdown(f"**“{instr}”**: of its {k} nearest neighbours, how many share its level of each factor — "
                + "; ".join(line) + ".")
    with (fold := folded("Table of the factor picture", "why_org_fold")):
        if fold.open:
            st.dataframe(otable, hide_index=True, key="why_org_table",
                         column_config={c: st.column_config.NumberColumn(format="%.3f") for c in otable.columns
                                        if c not in ("space", "measure")})
    st.download_button("Download the factor picture (CSV)", ocsv, file_name=f"alva_factors_k{k}.csv",
                       mime="text/csv", on_click="ignore")


def multiverse_section(xtok: str, agent: str, a_seed: int, pairs) -> None:
    """3. How robust is each number: the spread of P@15 over every analysis choice, one chart per pair
    (precomputed; it does not depend on k, the instruction or the curve)."""
    try:
        mv = V.multiverse(xtok)
    except FileNotFoundError:
        mv = None
        st.info("The analysis multiverse is not computed here (`assets/multiverse/` is missing). Compute and ship it "
                "with:")
        st.code("python -m core multiverse", language="bash")
    if mv is not None and pairs:
        shown, rows, absent = [], [], []
        for m, _ in pairs:
            fig = V.multiverse_figure(tok, xtok, agent, a_seed, m)
            (shown if fig is not None else absent).append((m, fig))
        cols = st.columns(2) if len(shown) > 1 else [st.container()]
        for j, (m, (spec, hist, row)) in enumerate(shown):
            with cols[j % len(cols)]:
                st.markdown(f"**{data.label(agent, a_seed)} vs {m}**")
                st.vega_lite_chart(hist, spec, key=f"why_mv_{m}", width="stretch")
            rows.append(row)
        if shown:
            st.caption("For each pair: the share of analysis choices (agent layer and pooling, model layer and "
                       "pooling, preprocessing, instruction subset with its chance-matched k) per P@k bin, for the "
                       "trained agent (blue) and its untrained twin (orange) over the same choices. Solid rules: "
                       "the pre-registered last layers; dashed: the best layer pair chosen on half of the "
                       "instructions and scored on the other half (never the in-sample maximum). Green band: the "
                       "paper's reported range for the model's family; dotted: chance 15/107. Precomputed at "
                       "k = 15 (`python -m core multiverse`); the k above does not apply here.")
            summ = pd.DataFrame(rows)
            with (fold := folded("Table of the multiverse summary", "why_mv_fold")):
                if fold.open:
                    st.dataframe(summ, hide_index=True, key="why_mv_table")
            st.download_button("Download the multiverse summary (CSV)", summ.to_csv(index=False).encode(),
                               file_name=f"alva_multiverse_{agent}-s{a_seed}.csv", mime="text/csv", on_click="ignore")
        if absent:
            st.caption(f"No multiverse rows for {data.label(agent, a_seed)} vs {', '.join(m for m, _ in absent)} "
                       f"(the multiverse covers the models with a layer sweep: {', '.join(mv['references'])}).")


def conventions() -> None:
    """The page's conventions, outside the fragment (they do not change with the selection)."""
    with st.expander("Conventions", expanded=False):
        st.markdown(f"- **P@k:** {metrics.PRECISION_CONVENTIONS}.\n"
                    "- **Trajectories:** E_L read in eval mode at steps 0, 10, …, 200, then every 50, and the last "
                    "step (`core.dynamics`); snapshots stored in float16, the first and last exactly.\n"
                    "- **Seeded models** (random draws, the untrained agent) use the file of the matching agent "
                    "seed.\n- **Factors:** `core.controls.factor_separation` and `neighbour_factor_shares`.\n"
                    "- **Multiverse:** `core.multiverse` (its module docstring lists every choice).")


run_fragment(why_page)
conventions()
finish()

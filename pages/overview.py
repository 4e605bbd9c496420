"""Overview: the question, the model inventory, agent success, and the headline P@15 table."""
import numpy as np
import pandas as pd
import streamlit as st

from core import metrics, report
from core.embedders import NotComputedError
from ui import data, figures, sets, state, why
from ui.widgets import finish, folded, setup

tok, ctx = setup()
st.title("Overview")
if state.current_set() != state.DEFAULT_SET:  # a larger instruction set (issue 15): its own view
    sets.overview(tok, ctx)
    finish()
    st.stop()
st.markdown(
    "**What the study asks.** A behavioural-cloning agent learns to execute 108 BabyAI instructions "
    "(*go to the red ball*, *pick up a blue key*, *open the yellow door*). Its 128-d instruction embeddings are "
    "shaped only by acting. Do they organise the instructions the way language models do? Alignment is measured "
    "by **P@k**: for each instruction, the fraction of its k nearest neighbours (cosine similarity, the "
    "instruction itself excluded) that two spaces share, averaged over the 108 instructions. Milano & Nolfi "
    "(arXiv 2601.22948) report P@15 of 0.70–0.73 between the agent and decoder-only LLMs / BLIP, about "
    "0.30–0.35 for CLIP / BERT, and a random baseline near 0.13.")

K = report.K
ref = report.REFERENCE
ref_seeds = [s for s in report.seeds_of(ref) if s is not None]

# ------------------------------------------------------------------------------------ headline
st.header(f"Headline: P@{K} of the agent against every model")
if not ref_seeds:
    st.info(f"The agent's embeddings (`{ref}-s<seed>`) are not in `assets/` yet, so there is no headline table. "
            f"Compute them with:")
    st.code(ctx["commands"].get(ref, "python -m core train"), language="bash")
    table = None
else:
    ref_seed = ref_seeds[0]
    table = data.headline(tok, ref, ref_seed, K)
    st.caption(
        f"Reference: the trained agent **{ref}-s{ref_seed}** (agent seed {ref_seed}). P@{K}: cosine neighbours, self "
        f"excluded. **95% CI**: percentile bootstrap over the 108 instructions ({report.N_BOOT} resamples, "
        f"neighbour sets fixed). **p**: one-sided permutation test ({report.N_PERM} shuffles of the model's "
        f"instruction labels; the smallest possible p is {1 / (report.N_PERM + 1):.4f}). **Chance**: k/(n−1) = "
        f"{metrics.chance_precision(108, K):.3f}. **Across agent seeds**: mean ± sd of P@{K} of each of the "
        f"{len(ref_seeds)} agent seeds against the same model file. Seeded baselines (random, untrained agent) "
        f"use the draw/seed matching the agent seed. Statistics seed {report.STAT_SEED}.")

    def fmt(df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({
            "model": df["model"], "family": df["family"], "stands in for": df["paper_family"],
            f"P@{K}": df[f"P@{K}"],
            "95% CI": [f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) else "" for a, b in zip(df["ci_low"], df["ci_high"])],
            "permutation p": df["p_perm"],
            "null 97.5%": df["null_high"], "chance": df["chance"],
            "across agent seeds": [f"{m:.3f} ± {s:.3f}" if np.isfinite(m) and np.isfinite(s) else
                                   (f"{m:.3f}" if np.isfinite(m) else "") for m, s in
                                   zip(df["seed_mean"], df["seed_sd"])],
            "paper (reported)": df["paper"],
        })
        return out

    spec, plot, marks = figures.headline_figure(tok, ref, ref_seed, K)
    if len(plot):
        st.vega_lite_chart(plot, spec, key="headline_figure", width="stretch")
        refs = "; ".join(f"{m['reference']}: `{m['source']}`, {m['p']:.2f}" for m in marks)
        st.caption(f"One row per model: P@{K} with the agent, its 95% bootstrap CI and the range over the "
                   f"{len(ref_seeds)} agent seeds (the thin bar below). Grey: the model's 95% permutation band "
                   f"(shuffled instruction labels); dotted: chance k/(n−1) = {metrics.chance_precision(108, K):.3f}. "
                   f"Orange: the P@{K} the paper reports for the family the model stands in for (none for "
                   f"families it did not test). Dashed rules, the reference rows{' (' + refs + ')' if refs else ''}. "
                   "Hover a mark for its numbers; the tables below and the CSV hold them all.")
    num = {f"P@{K}": st.column_config.NumberColumn(format="%.3f"),
           "permutation p": st.column_config.NumberColumn(format="%.4f"),
           "null 97.5%": st.column_config.NumberColumn(format="%.3f"),
           "chance": st.column_config.NumberColumn(format="%.3f")}
    st.download_button("Download the headline table (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"alva_headline_p{K}.csv", mime="text/csv", on_click="ignore")
    present = set(ctx["present"])
    if {"untrained-alm", "bag-of-words"} <= present:
        us = data.space_seed(ctx, "untrained-alm", ref_seed)
        u_bow = data.curve(tok, "untrained-alm", us, "bag-of-words", None)[K - 1]
        a_bow = data.curve(tok, ref, ref_seed, "bag-of-words", None)[K - 1]
        st.markdown(f"Measured here: the **untrained** agent (`untrained-alm-s{us}`, zero training steps) "
                    f"reaches P@{K} = **{u_bow:.2f}** against bag-of-words; the trained agent "
                    f"`{ref}-s{ref_seed}` reaches {a_bow:.2f}. Word overlap alone organises the "
                    f"instructions that much.")
    models = table[(table["kind"] == report.KIND_MODEL) & table["present"]]
    if len(models):
        why.overview_line(tok, ctx, ref_seed)
    else:
        st.info("No language or vision-language model has embeddings in `assets/` yet (see the inventory below "
                "for the commands that compute them).")
    with (fold := folded(f"The headline as tables: P@{K}, CI, p, permutation null, agent seeds and the paper's "
                         "range for models, agent variants and reference rows", "headline_fold",
                         expanded=not len(plot))):
        if fold.open:
            if len(models):
                st.subheader("Language and vision-language models")
                st.dataframe(fmt(models), hide_index=True, column_config=num, key="headline_models")
            agents = table[(table["kind"] == report.KIND_AGENT) & table["present"]]
            if len(agents):
                st.subheader("Agent variants")
                st.caption(f"The `{ref}` row compares agent seed {ref_seed} with the other agent seeds (seed-to-seed "
                           "agreement: an upper reference for what any model could reach).")
                st.dataframe(fmt(agents), hide_index=True, column_config=num, key="headline_agents")
            base = table[(table["kind"] == report.KIND_BASELINE) & table["present"]]
            if len(base):
                st.subheader("Reference rows (baselines, not models)")
                st.caption(report.BASELINE_WHY)
                st.dataframe(fmt(base), hide_index=True, column_config=num, key="headline_baselines")
    missing = table[~table["present"]]
    if len(missing):
        st.caption(f"Not computed here (no embeddings shipped): {', '.join(missing['model'])} — see the inventory "
                   "below for the command that computes each.")

# ------------------------------------------------------------------------------------ agent success
st.header("Agent task success")
succ = data.agent_success(tok)
if succ.empty:
    st.info("No agent manifests in `assets/agents/*.json` yet. Train and ship agents with "
            "`python -m core train --variant alm --seeds 0 1 2 3 4`.")
else:
    ok = succ[succ["variant"] == report.REFERENCE]["success"].dropna() if "variant" in succ else succ["success"]
    if len(ok):
        c1, c2, c3 = st.columns(3)
        c1.metric(f"{report.REFERENCE} success (mean over {len(ok)} seed{'s' if len(ok) > 1 else ''})",
                  f"{ok.mean():.1%}")
        c2.metric("range over seeds", f"{ok.min():.1%} – {ok.max():.1%}")
        c3.metric("paper", f"{report.PAPER_SUCCESS[0]:.0%} – {report.PAPER_SUCCESS[1]:.0%}")
    st.caption("From the shipped agent manifests (`assets/agents/*.json`, written by `python -m core train`): the "
               "fraction of evaluation episodes (greedy policy; environment seeds disjoint from the training "
               "demonstrations) in which the agent succeeded, overall and per verb.")
    spec, plot, csv = figures.success_figure(tok, "verb_object")
    if len(plot):
        st.vega_lite_chart(plot, spec, key="success_figure", width="stretch")
        st.caption("Success overall and per verb-object form (each form covers its 12 instructions: 6 colours × 2 "
                   "determiners), one dot per agent; the seeds of a variant share its colour. Orange band: the "
                   "paper's reported success. Hover a dot for its value.")
        st.download_button("Download success per form (CSV)", csv, file_name="alva_agent_success.csv",
                           mime="text/csv", on_click="ignore")
    cfg = {c: st.column_config.NumberColumn(format="%.3f") for c in succ.columns if c.startswith("success")}
    with (fold := folded("Success per agent as a table (overall, per verb, episodes, steps, config)",
                         "success_fold", expanded=not len(plot))):
        if fold.open:
            st.dataframe(succ, hide_index=True, column_config=cfg, key="success_table")

# ------------------------------------------------------------------------------------ inventory
st.header("Model inventory")
inv = data.inventory(tok)
st.caption("Every model, agent and baseline the dashboard knows. *Present* = embeddings are shipped in "
           "`assets/embeddings` (or computed into the local cache). Models that are not present show the exact "
           "command that computes them; most paper models need hub access that this installation does not have, "
           "so offline stand-ins from the same families are shipped instead.")
show = inv[["name", "family", "kind", "paper_family", "present", "seeds_present", "source", "default_pooling",
            "default_layer", "offline_available", "compute_command", "notes"]].rename(columns={
                "paper_family": "paper family", "seeds_present": "seeds present", "default_pooling": "pooling",
                "default_layer": "layer", "offline_available": "offline", "compute_command": "compute command"})
st.dataframe(show, hide_index=True, key="inventory_table")
with (fold := folded("Provenance of a shipped embedding file (manifest)", "manifest_fold")):
    if fold.open:
        present = [n for n in ctx["present"]]
        if present:
            pick = st.selectbox("Model", present, key="w_manifest_model")
            seed = data.space_seed(ctx, pick, st.session_state["seed"])
            try:
                st.json(data._space(tok, pick, seed)[1], expanded=False)
            except (NotComputedError, LookupError, ValueError) as e:
                st.error(str(e))
        else:
            st.write("No embeddings present.")
finish()

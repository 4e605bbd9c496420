"""Agent: watch any shipped agent act on any instruction of the grammar, step by step, with its action
probabilities and its language-to-vision attention over the 7x7 view, and whether the agent ever trained on that
instruction (the held-out split agents of the generalisation study never saw some of them).

URL: ``checkpoint`` (the agent, e.g. ``alm-holdout-colour-object-s0``; a link with only ``seed=N`` means
``alm-sN``), ``instruction``, ``env``, ``view``, ``step``."""
import io
import re

import numpy as np
import pandas as pd
import streamlit as st

from core.env import ACTION_NAMES, episode_seed
from ui import data, state
from ui.widgets import finish, instruction_entry, paper108_only, run_fragment, setup, trained_marker

tok, ctx = setup(("env", "view", "step", "checkpoint"))
st.title("Agent")
paper108_only("The shipped agents and their episodes")

agents = data.shipped_agents(tok)
if not agents:
    st.info("No agent checkpoint is shipped in `assets/agents/` yet, so there is nothing to play. Train and ship "
            "the agents with:")
    st.code("python -m core train --variant alm --seeds 0 1 2 3 4", language="bash")
    finish()
    st.stop()
ss = st.session_state
if ss["checkpoint"] not in agents:
    ss["checkpoint"] = ctx["default_checkpoint"] if ctx["default_checkpoint"] in agents else next(iter(agents))
main = state.main_seed(ss["checkpoint"])
if main is not None and main != ss["seed"] and f"alm-s{ss['seed']}" in agents:
    ss["checkpoint"] = f"alm-s{ss['seed']}"  # a main agent follows the seed shared by every page


def _agent_label(name: str) -> str:
    info = agents[name]
    man = info["manifest"]
    extra = ""
    if man.get("holdout"):
        ho = man["holdout"]
        extra = f" — {len(ho.get('instructions') or [])} instructions held out ({ho['split']})"
    init = (man.get("train_config") or {}).get("word_init")
    if init and init != "identity":
        extra = f" — words initialised: {init}{extra}"
    return f"{info['group']} · {name}{extra}"


def _follow_seed() -> None:
    s = state.main_seed(ss["checkpoint"])
    if s is not None and s in ctx["seeds"]:
        ss["seed"] = s


c1, c3, c4 = st.columns([4, 1, 2])
with c1:
    st.selectbox("Agent", list(agents), format_func=_agent_label,
                 help="Any shipped agent: the main agents (alm-s*, the paper's recipe), the variants, and the agents "
                      "of the generalisation study, trained with a split of instructions held out (their demos "
                      "dropped) or with word vectors initialised from a language model.",
                 **state.bind("w_checkpoint", "checkpoint", after=_follow_seed))
with c3:
    st.number_input("Environment seed", 0, 99_999, step=1, **state.bind("w_env", "env"),
                    help="Episode index in the 'show' split: a room layout never used for training or evaluation.")
with c4:
    st.segmented_control("View", state.VIEWS,
                         format_func=lambda v: {"room": "Whole room", "agent": "Agent's 7×7 view"}[v],
                         help="The room as seen from above, or what the agent sees (its 7×7 egocentric window).",
                         **state.bind("w_view", "view"))
    if st.session_state["view"] not in state.VIEWS:
        state.select("view", "room")
instr = instruction_entry()

agent_name = ss["checkpoint"]
info = agents[agent_name]
man = info["manifest"]
was_trained, why_not = trained_marker(man, instr)
per_instr = (man.get("success") or {}).get("per_instruction") or {}
eps = (man.get("success") or {}).get("episodes_per_instruction")
if was_trained:
    st.success(f"**{agent_name} trained on this instruction**: its training demos included “{instr}”.",
               icon=":material/school:")
else:
    st.warning(f"**{agent_name} never trained on this instruction ({why_not})**: no demo of “{instr}” was in its "
               "training data, although it knows every word. What follows is zero-shot.",
               icon=":material/new_releases:")
if instr in per_instr:
    over = f" over {eps} episode{'s' if eps != 1 else ''}" if eps else ""
    st.caption(f"Its final evaluation on “{instr}”: success {per_instr[instr]:.2f}{over} (held-out evaluation "
               f"seeds; from its training manifest {info['dir']}/{agent_name}.json).")

env_index = int(st.session_state["env"])
env_seed = episode_seed("show", 0, env_index)
with st.spinner(f"Running {agent_name} on “{instr}” (environment seed {env_seed}); cached afterwards…"):
    try:
        ep = data.episode(tok, agent_name, instr, env_seed)
    except Exception as e:  # a missing/corrupt checkpoint or an unfinished rollout module
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        st.error(f"Could not run {agent_name}: {type(e).__name__}: {msg[:500]}{' …' if len(msg) > 500 else ''}")
        finish()
        st.stop()

frames = ep["room"] if st.session_state["view"] == "room" else (ep["pov"] or ep["room"])
T = len(ep["actions"])
n_frames = max(1, len(frames))
last = n_frames - 1
if not 0 <= st.session_state["step"] <= last:
    state.select("step", min(max(0, int(st.session_state["step"])), last))
st.session_state.setdefault("playing", False)

m1, m2, m3 = st.columns(3)
m1.metric("Outcome", "success ✓" if ep["success"] else "failure ✕")
m2.metric("Episode length", f"{ep['length']} steps")
m3.metric("Episode", f"#{env_index}", help=f"minigrid reset seed {env_seed} = core.env.episode_seed('show', 0, "
                                             f"{env_index}): a layout never used in training or evaluation")

st.toggle("▶ Play", **state.bind("w_playing", "playing"),
          help="Plays about two steps a second; pause to step or scrub.")
playing = bool(st.session_state["playing"])


def _step(delta=None, to=None):
    s = st.session_state["step"] if to is None else to
    if delta is not None:
        s += delta
    st.session_state["step"] = int(min(max(0, s), last))


def probs_table(t: int) -> pd.DataFrame:
    """The action distribution at step t, in ACTION_NAMES order, the action taken marked."""
    p = ep["probs"][t]
    return pd.DataFrame({"action": list(ACTION_NAMES)[: len(p)], "probability": p,
                         "taken": ["◀ taken" if n == ep["actions"][t] else "" for n in list(ACTION_NAMES)[: len(p)]]})


@st.fragment(run_every=0.5 if playing else None)
def player():
    if playing:
        if st.session_state["step"] >= last:
            state.select("playing", False)
            st.rerun()
        _step(+1)
    b = st.columns([1, 1, 1, 1, 6])
    b[0].button("|◀", key="a_first", on_click=_step, kwargs={"to": 0}, disabled=playing, help="first step")
    b[1].button("◀", key="a_back", on_click=_step, args=(-1,), disabled=playing, help="one step back")
    b[2].button("▶", key="a_next", on_click=_step, args=(+1,), disabled=playing, help="one step forward")
    b[3].button("▶|", key="a_last", on_click=_step, kwargs={"to": last}, disabled=playing, help="last step")
    if last > 0:
        b[4].slider("Step", 0, last, disabled=playing, **state.bind("w_step", "step"))
    t = int(st.session_state["step"])
    left, mid, right = st.columns([4, 3, 3])
    with left:
        cap = f"step {t} of {T}"
        if t < T:
            cap += f" · next action: **{ep['actions'][t]}**"
        else:
            cap += " · episode over: " + ("success" if ep["success"] else "failure")
        st.markdown(cap)
        if frames:
            st.image(frames[min(t, len(frames) - 1)], width="stretch")
    with mid:
        st.markdown("**Action probabilities**")
        if t < T:
            st.dataframe(probs_table(t), hide_index=True, key="a_probs",
                         column_config={"probability": st.column_config.ProgressColumn(
                             "probability", min_value=0.0, max_value=1.0, format="%.3f")})
        else:
            st.caption("No decision at the final frame.")
    with right:
        st.markdown("**Attention: language → vision**")
        if t < len(ep["attention_views"]):
            A = ep["attention"][t]
            r, c = np.unravel_index(int(np.argmax(A)), A.shape)
            st.image(ep["attention_views"][t], width="stretch")
            st.caption(f"The agent's 7×7 view (it stands at row 6, column 3, looking up; rows and columns "
                       f"counted from 0 at the top left) with the last cross-attention block's weights drawn over "
                       f"it, mean over heads and words. Black → pale yellow = 0 → the step's largest weight, "
                       f"{A.max():.3f} at row {r}, column {c}; uniform attention would be {1 / A.size:.3f} per cell.")
        else:
            st.caption("No attention at the final frame.")
    finish()  # keep the step in the URL during fragment reruns too


run_fragment(player)


def make_gif() -> bytes:
    from PIL import Image

    imgs = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=300, loop=0)
    return buf.getvalue()


if frames:
    st.download_button("Export this episode as a GIF", make_gif,
                       file_name=f"alva_{agent_name}_{instr.replace(' ', '_')}_env{env_index}_"
                                 f"{st.session_state['view']}.gif", mime="image/gif", on_click="ignore")
st.caption(f"Agent `{agent_name}` ({info['dir']}/{agent_name}.pt) acting greedily on “{instr}”. The attention map "
           "is drawn over the agent's egocentric 7×7 view (the agent is at the bottom centre, looking up).")
finish()

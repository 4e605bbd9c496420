"""Widgets shared by several pages (all bound to the cross-page state in :mod:`ui.state`)."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from core import report
from ui import data, state
from ui.state import INSTRUCTIONS, N


def setup(page_keys: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """Start of every page: load the asset context, apply the URL (deep link) to the shared state, show what
    was wrong with it, and write the state back to the URL. Done in the page rather than only in app.py, so
    that it also holds where a page script runs on its own (AppTest runs ``pages/*.py`` directly)."""
    _leave_legacy_pages_mode()
    tok = data.session_token()
    ctx = data.context(tok)
    state.init(ctx)
    state.apply_query(ctx)
    for msg in state.pop_warnings():
        st.warning(msg, icon=":material/warning:")
    st.session_state["_page_keys"] = list(page_keys)
    state.write_query(list(page_keys))
    return tok, ctx


def _leave_legacy_pages_mode() -> None:
    """Make a deep link work on a freshly started server.

    Streamlit treats an app with a ``pages/`` folder as a legacy (v1) multipage app until some session has run
    ``st.navigation``: a first visitor arriving on ``/neighbours?...`` would get ``pages/neighbours.py`` run on
    its own (no app.py: no page config, no navigation, wrong sidebar). Here the page notices that mode, switches
    it off (what ``st.navigation`` itself does) and reruns, so app.py runs and routes to this page with the same
    URL. (Pinned streamlit 1.67.0; a no-op if the attribute ever disappears.)"""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


_SUMMARY = "_summary_slot"


def summary_slot() -> None:
    """Reserve the sidebar's place for the summary of the shared selection (app.py, before the page runs)."""
    st.session_state[_SUMMARY] = st.sidebar.empty()


def finish() -> None:
    """End of every page and of every fragment run: write the (possibly updated) state to the URL and refresh
    the sidebar's summary of it (a fragment may write to that slot although it lies outside the fragment)."""
    state.write_query(st.session_state.get("_page_keys", []))
    slot = st.session_state.get(_SUMMARY)
    if slot is None:  # a page run on its own (AppTest of pages/*.py): no sidebar summary
        return
    ss = st.session_state
    with slot.container():
        st.caption("Selection shared by every page (and kept in the address bar: copy it to share this view)")
        st.markdown(f"**Instruction set:** {ss.get('set', state.DEFAULT_SET)}  \n"
                    f"**Instruction:** {ss['instruction']}  \n**k:** {ss['k']} · **agent seed:** {ss['seed']}  \n"
                    f"**Models:** {', '.join(ss['models']) or '—'}")


def run_fragment(fragment: Callable[[], None]) -> None:
    """Call a page's ``st.fragment`` inside a container that the full run owns (not the fragment).

    Works around a Streamlit 1.67 race. When a fragment rerun (a click inside it, or its ``run_every`` tick) is
    requested while a full run's messages are still queued, the new fragment run clears that fragment's unsent
    deltas from the queue, its own block included. The browser then ends the full run without the block, drops
    the old one as stale and closes the gap, so the block comes back one place too early: over the page's next
    element (the agent page lost its GIF button this way when Pause met the last playback tick). Inside a
    container of its own, the gap opens and closes in that container and nothing else on the page moves."""
    with st.container():
        fragment()


def model_label(ctx: dict[str, Any], name: str) -> str:
    fam = ctx["families"].get(name, "")
    tag = "" if name in ctx["present"] else " — not computed"
    kind = ctx["kinds"].get(name)
    ref = " (reference row)" if kind == report.KIND_BASELINE else ""
    return f"{name} · {fam}{ref}{tag}"


_NO_SELECTION = {"selection": {"rows": [], "columns": [], "cells": []}}


def selectable_table(data, key: str, mode: str, **kwargs) -> dict[str, list]:
    """A table whose selection (a click) acts once: ``st.dataframe(..., on_select="rerun")`` under a key that stays
    the same when what it shows changes, so a new instruction or k updates it in place (a new key mounts a new grid
    in the browser, ~0.1 s). Returns the selection (``rows``, ``columns``, ``cells``). The caller acts on a
    non-empty one and then calls :func:`selection_done`: the selection is cleared before the table is drawn in the
    next run, so no highlighted cell outlives the click, and a kept one never acts again (after a k move it would
    point at another instruction)."""
    if st.session_state.pop(f"_clear_{key}", False):  # before the widget exists: the only time it may be set
        st.session_state[key] = _NO_SELECTION
    ev = st.dataframe(data, hide_index=True, key=key, on_select="rerun", selection_mode=mode, **kwargs)
    return dict(ev["selection"]) if ev else {}


def selection_done(key: str) -> None:
    """After acting on the selection of :func:`selectable_table` ``key``: clear it, and rerun with what it chose."""
    st.session_state[f"_clear_{key}"] = True
    state.rerun()


def neighbour_grid(grid, shown: dict[str, list[str]], config: dict, key: str, k: int) -> None:
    """The neighbours grid (one column per model, nearest first); clicking a cell selects that neighbour as the
    instruction (``shown``: grid column -> its neighbours' instruction texts). ``key``: the same for every
    instruction and k (:func:`selectable_table`)."""
    cells = selectable_table(grid, key, "single-cell", column_config=config,
                             height=min(35 * (k + 1) + 3, 560)).get("cells", [])
    if cells:
        row, col = cells[0]
        if col in shown and 0 <= int(row) < len(shown[col]):
            state.select("instruction", shown[col][int(row)])
        selection_done(key)


def set_picker(ctx: dict[str, Any], where=st, key: str = "w_set") -> str:
    """The instruction set of every page (URL key ``set``): the shipped presets (:func:`core.scaling.available_sets`).
    A change keeps the shared instruction and k valid for the new set (:func:`ui.state.fit_to_set`)."""
    sets = ctx.get("sets") or [state.DEFAULT_SET]
    if st.session_state.get("set") not in sets:
        st.session_state["set"] = state.DEFAULT_SET
    where.selectbox("Instruction set", sets, format_func=lambda n: f"{n} · {len(state.set_items(n)):,} instructions",
                    help="The presets of the BabyAI grammar with shipped embeddings (core.instructions.presets; "
                         "paper108: the paper's 108 instructions, the first 108 of every larger set). Agent, Why "
                         "and Generalisation stay on paper108.", **state.bind(key, "set", after=state.fit_to_set))
    return st.session_state["set"]


def paper108_only(what: str) -> None:
    """One line on the pages that exist for paper108 only, when another set is selected; the shared instruction
    and k are brought into paper108 (an instruction outside it becomes the first of the 108)."""
    name = state.current_set()
    if name == state.DEFAULT_SET:
        return
    ss = st.session_state
    if ss["instruction"] not in set(INSTRUCTIONS):
        ss["instruction"] = INSTRUCTIONS[0]
    ss["k"] = min(int(ss["k"]), N - 1)
    st.info(f"{what} exist for the paper108 set only: this page shows paper108 (the sidebar's set is "
            f"{state.md_escape(name)}).", icon=":material/info:")


def instruction_picker(label: str = "Instruction", where=st, key: str = "w_instruction") -> str:
    where.selectbox(label, INSTRUCTIONS, help="Type to search the 108 instructions.",
                    **state.bind(key, "instruction"))
    return st.session_state["instruction"]


def models_picker(ctx: dict[str, Any], label: str = "Models", where=st, key: str = "w_models") -> list[str]:
    options = ctx["known_models"]
    st.session_state["models"] = [m for m in st.session_state["models"] if m in options]
    where.multiselect(label, options, format_func=lambda n: model_label(ctx, n),
                      help="Models without embeddings are listed too: picking one shows the command that "
                           "computes them.", **state.bind(key, "models"))
    return st.session_state["models"]


def k_slider(label: str = "k (neighbours)", where=st, key: str = "w_k") -> int:
    where.slider(label, 1, N - 1, help=f"Number of nearest neighbours (cosine similarity, the instruction "
                                       f"itself excluded); 1 ≤ k ≤ {N - 1}.", **state.bind(key, "k"))
    return int(st.session_state["k"])


def seed_picker(ctx: dict[str, Any], label: str = "Agent seed", where=st, key: str = "w_seed",
                seeds: list[int] | None = None) -> int:
    seeds = seeds or ctx["seeds"]
    if st.session_state["seed"] not in seeds:
        st.session_state["seed"] = seeds[0]
    where.selectbox(label, seeds, format_func=lambda s: f"{report.REFERENCE}-s{s}",
                    help="Which training seed of the agent.", **state.bind(key, "seed"))
    return int(st.session_state["seed"])


def not_computed(ctx: dict[str, Any], name: str, error: Exception | None = None, where=st) -> None:
    """The guidance shown for a model without embeddings: the exact command that computes them."""
    cmd = ctx["commands"].get(name) or f"python -m core embed --model {name} --ship"
    install = ctx["install"].get(name) or ""
    box = where.container(border=True)
    box.markdown(f"**{state.md_escape(name)}** — not computed: no embeddings are shipped or cached here.")
    box.caption("Compute (and ship) them with:")
    box.code(cmd, language="bash")
    if install:
        box.caption(f"Needs: {install}")
    if error is not None and str(error) and "not computed" not in str(error):
        box.caption(str(error))


# ------------------------------------------------------------------------------------------ any instruction
_ENTRY_SYNCED = "_entry_synced"  #: the instruction the entry widgets were last filled from
ENTRY_ERROR = "_entry_error"  #: (what was entered, the InstructionError message) while the entry is not valid
PARTS = (("w_verb", "Verb", "verb"), ("w_det", "Determiner", "determiner"), ("w_colour", "Colour", "colour"),
         ("w_object", "Object", "object"))
TYPED = "w_typed"


def _enter(text: str) -> None:
    """Make ``text`` the shared instruction if the grammar reads it; else keep the instruction and remember the
    documented parse error (``core.instructions.InstructionError``) to show it."""
    from core.instructions import InstructionError, index_of

    try:
        i = index_of(str(text))
    except InstructionError as e:
        st.session_state[ENTRY_ERROR] = (str(text), str(e))
        return
    st.session_state.pop(ENTRY_ERROR, None)
    st.session_state["instruction"] = INSTRUCTIONS[i]


def _typed() -> None:
    _enter(st.session_state[TYPED])


def _composed() -> None:
    _enter(" ".join(st.session_state[k] for k, _, _ in PARTS))


def instruction_entry() -> str:
    """Any instruction the vocabulary can express: composed from the grammar's parts (verb / determiner / colour /
    object) or typed. A valid entry becomes the shared instruction (URL key ``instruction``) at once; an invalid one
    shows the parser's message and changes nothing (the entry stays as typed, for correcting). Returns the shared
    instruction."""
    from core.instructions import DEFAULT_GRAMMAR, parse

    ss = st.session_state
    instr = ss["instruction"]
    keys = [k for k, _, _ in PARTS] + [TYPED]
    if ss.get(_ENTRY_SYNCED) != instr or any(k not in ss for k in keys):  # the instruction changed elsewhere
        parts = parse(instr)
        for k, _, f in PARTS:
            ss[k] = parts[f]
        ss[TYPED] = instr
        ss[_ENTRY_SYNCED] = instr
        ss.pop(ENTRY_ERROR, None)
    g = DEFAULT_GRAMMAR
    options = {"verb": g.verbs, "determiner": g.determiners, "colour": g.colours, "object": g.objects}
    cols = st.columns([2, 2, 2, 2, 5])
    for c, (k, label, f) in zip(cols, PARTS):
        c.selectbox(label, options[f], key=k, on_change=_composed,
                    help=f"The {f} of the instruction ({', '.join(options[f])})." +
                         (" 'pick up' cannot take a door; 'open' takes a door or a box." if f == "object" else ""))
    cols[4].text_input("…or type it", key=TYPED, on_change=_typed, placeholder="e.g. pick up the red key",
                       help="VERB DETERMINER COLOUR OBJECT from the 17-word vocabulary; checked as you press Enter.")
    err = ss.get(ENTRY_ERROR)
    if err is not None:
        st.error(f"**Not an instruction of the grammar:** {state.md_escape(err[1], 500)}  \n"
                 f"Still showing “{instr}”.", icon=":material/error:")
    return instr


def trained_marker(manifest: dict[str, Any], instruction: str) -> tuple[bool, str]:
    """(whether the agent of this training manifest trained on ``instruction``: ``core.agent.trained_on``, and if
    not, why: "held out in split colour-object", or its training verbs)."""
    from core.agent import trained_on  # torch: only the Agent page calls this

    if trained_on(manifest, instruction):
        return True, ""
    ho = manifest.get("holdout") or {}
    if instruction in set(ho.get("instructions") or ()):
        return False, f"held out in split {ho.get('split')}"
    verbs = (manifest.get("train_config") or {}).get("verbs") or ()
    return False, f"it trained on the verbs {', '.join(verbs)} only"


def folded(label: str, key: str, expanded: bool = False, where=st):
    """A folded section whose content is computed and sent only while it is open (Streamlit's lazy expander:
    ``on_change="rerun"``; draw its content under ``if section.open:``). Opening it reruns the page (or its
    fragment) with the content. A table in a closed plain expander is still sent and mounted by the browser: the
    three folded tables of the Why page cost ~0.3 s of the browser's main thread on every page load (measured with
    Chromium's long-animation-frame entries: 719 ms with them, 395 ms without)."""
    return where.expander(label, expanded=expanded, key=key, on_change="rerun")

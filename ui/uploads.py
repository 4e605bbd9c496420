"""Your own embeddings in the dashboard: uploaded in the sidebar, a model on every page, for this session only.

An uploaded space (:class:`core.uploads.UploadedSpace`, read and validated by :mod:`core.uploads`) is kept in
``st.session_state`` only: never in a module-level or server-wide cache, never on disk. How it reaches the pages:

* :func:`token_suffix` is a fingerprint of the session's uploads (names and contents). ``ui.data.session_token``
  appends it to the files' token, so every cache keyed by the token tells sessions with different uploads apart
  (two sessions with the same name but different vectors never share a result; sessions without uploads share
  everything, as before);
* :func:`extend_context` lists the uploads as present models in this session's context (``ui.data.context``);
* ``ui.data`` serves an upload's array from the session and computes the statistics that involve it without
  writing them to the diskcache (``persist=False`` in :mod:`core.report`).
"""
from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from core import report
from core.uploads import FORMATS, MAX_UPLOAD_MB, UploadedSpace, UploadError, read_upload
from ui.state import md_escape

KEY = "_uploads"  #: session state: name -> UploadedSpace, in upload order
_MSG = "_uploads_msg"  #: session state: (kind, text) of the last add/remove, shown once (when the fold is open)
FOLD = "upload_fold"  #: session state: whether the sidebar's uploader is open


def spaces() -> dict[str, UploadedSpace]:
    """This session's uploaded spaces (name -> space)."""
    return st.session_state.get(KEY, {})


def get(name: str) -> UploadedSpace | None:
    return spaces().get(name)


def add(data: bytes, filename: str, name: str) -> UploadedSpace:
    """Validate a file (:func:`core.uploads.read_upload`), keep it in this session and select it in the shared
    model list. Raises UploadError (nothing changed) when the file or the name is refused."""
    up = read_upload(data, filename, name, taken=spaces())
    st.session_state[KEY] = {**spaces(), up.name: up}
    models = list(st.session_state.get("models", []))
    if up.name not in models:
        st.session_state["models"] = models + [up.name]
    return up


def remove(name: str) -> None:
    """Forget an uploaded space (and unselect it everywhere)."""
    st.session_state[KEY] = {n: u for n, u in spaces().items() if n != name}
    if "models" in st.session_state:
        st.session_state["models"] = [m for m in st.session_state["models"] if m != name]
    st.session_state[_MSG] = ("info", f"Removed {name}.")


def token_suffix() -> str:
    """'' without uploads, else '+' and a fingerprint of every upload's name and content."""
    ups = spaces()
    if not ups:
        return ""
    blob = "|".join(f"{n}:{u.fingerprint}" for n, u in ups.items())
    return "+" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def extend_context(ctx: dict[str, Any]) -> dict[str, Any]:
    """A copy of the asset context (``ui.data.context``) with this session's uploads as present models."""
    names = [n for n in spaces() if n not in ctx["known_models"]]
    if not names:
        return ctx
    out = dict(ctx)
    out["known_models"] = [*ctx["known_models"], *names]
    out["present"] = [*ctx["present"], *names]
    for key, value in (("kinds", report.KIND_MODEL), ("families", report.UPLOADED_FAMILY), ("commands", ""),
                       ("install", ""), ("seeded", False), ("seeds_of", [])):
        out[key] = {**ctx[key], **{n: value for n in names}}
    out["uploads"] = names
    return out


# ------------------------------------------------------------------------------------------ sidebar
def _on_add() -> None:
    f = st.session_state.get("w_upload_file")
    name = st.session_state.get("w_upload_name", "")
    if f is None:
        st.session_state[_MSG] = ("error", "Choose a file to upload first.")
        return
    try:
        up = add(f.getvalue(), f.name, name)
    except UploadError as e:
        st.session_state[_MSG] = ("error", f"Not added: {e}")
        return
    n, d = up.embeddings.shape
    st.session_state[_MSG] = ("success", f"Added {up.name} ({n} × {d}, {up.manifest['rows']}): it is now a model "
                                         "on every page of this session.")


def sidebar() -> None:
    """The uploader (a name and a file), the list of this session's uploads with a remove button each, and the
    outcome of the last add. app.py draws it in the sidebar of every page."""
    from ui.widgets import folded  # here: ui.widgets imports ui.data, which imports this module

    msg = st.session_state.get(_MSG)
    ups = spaces()
    # folded: the form and its file uploader are sent only while open (in a closed plain expander they were mounted
    # on every page load: ~50-70 ms of every reload, measured with a multipage peer of this sidebar)
    # (always the same ``expanded``: it is part of the fold's identity, a change would reset it)
    with (fold := folded("Your own embeddings", FOLD, where=st.sidebar)):
        if not fold.open:
            return
        st.session_state.pop(_MSG, None)
        st.caption(f"A {', '.join(FORMATS)} file of at most {MAX_UPLOAD_MB} MB: one row per instruction, in the "
                   "order of `python -m core instructions`, or with a column `instruction` to align the rows by. "
                   "It becomes a model on every page, for this session only: it is kept in memory, never written "
                   "to disk, and gone when the tab is closed. Tables and figures that show it can be downloaded "
                   "(CSV buttons).")
        with st.form("upload_form", clear_on_submit=True, border=False):
            st.text_input("Name", key="w_upload_name", max_chars=40, placeholder="my-model",
                          help="Lowercase letters, digits, '.', '_' or '-'; not the name of a shipped model.")
            st.file_uploader("Embeddings file", type=[e.lstrip(".") for e in FORMATS], key="w_upload_file",
                             max_upload_size=MAX_UPLOAD_MB)
            st.form_submit_button("Add", on_click=_on_add)
        if msg is not None:
            getattr(st, msg[0])(md_escape(msg[1], 600))
        for name, up in ups.items():
            c1, c2 = st.columns([3, 2], vertical_alignment="center")
            n, d = up.embeddings.shape
            c1.markdown(f"**{md_escape(name)}** · {n} × {d}  \n{md_escape(up.manifest['file'], 40)}")
            c2.button("Remove", key=f"w_upload_remove_{name}", on_click=remove, args=(name,),
                      help=f"Remove {name} from every page")

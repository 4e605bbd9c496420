"""ALVA dashboard entrypoint: ``streamlit run app.py`` (from the repository root).

Declares the pages (st.navigation over ``pages/``), the page config, and the cross-page state (selected
instruction, models, k, agent seed) kept in session state and mirrored in the URL query parameters, so every
view is a shareable deep link. Pages are thin: they call :mod:`core` through the cached loaders of :mod:`ui`.
"""
import os
import sys
import time

import streamlit as st

_T_START = time.perf_counter()
#: every icon renders offline: the favicon is a local SVG (sent inline as a data: URL; a ``:material/...:``
#: favicon would be fetched from fonts.gstatic.com, an emoji one needs a colour-emoji system font), and the page
#: icons are Material Symbols, whose font Streamlit bundles and serves from this server
st.set_page_config(page_title="ALVA — Alignment among Language, Vision and Action",
                   page_icon=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui", "favicon.svg"),
                   layout="wide", initial_sidebar_state="expanded")

from ui import data, process, state, uploads  # noqa: E402  (after set_page_config)
from ui.widgets import set_picker, summary_slot  # noqa: E402

tok = data.session_token()  # the files' token, plus this session's own uploaded embeddings (ui.uploads)
ctx = data.context(tok)
state.init(ctx)
state.apply_query(ctx)  # the URL (deep link) -> shared state; pages repeat it (ui.widgets.setup: a no-op here) and
#                         show what was invalid in the link, then write the state back (ui.widgets.finish)

PAGES = {
    "overview": st.Page("pages/overview.py", title="Overview", icon=":material/explore:", default=True),
    "agent": st.Page("pages/agent.py", title="Agent", icon=":material/smart_toy:", url_path="agent"),
    "neighbours": st.Page("pages/neighbours.py", title="Neighbours", icon=":material/travel_explore:",
                          url_path="neighbours"),
    "precision": st.Page("pages/precision.py", title="P@k", icon=":material/show_chart:", url_path="precision"),
    "procrustes": st.Page("pages/procrustes.py", title="Procrustes UMAP", icon=":material/scatter_plot:",
                          url_path="procrustes"),
    "why": st.Page("pages/why.py", title="Why they align", icon=":material/psychology_alt:", url_path="why"),
    "generalisation": st.Page("pages/generalisation.py", title="Generalisation", icon=":material/call_split:",
                              url_path="generalisation"),
    "sets": st.Page("pages/sets.py", title="Instruction sets", icon=":material/stacked_line_chart:",
                    url_path="sets"),
}
pg = st.navigation(list(PAGES.values()))
set_picker(ctx, where=st.sidebar)  # the instruction set of every page (URL key ``set``)
summary_slot()  # the sidebar's summary of the shared selection; filled at the end of every page and fragment run
uploads.sidebar()  # your own embeddings: a model on every page, for this session only
st.sidebar.caption("ALVA reproduces Milano & Nolfi, *Alignment among Language, Vision and Action "
                   "Representations* (arXiv 2601.22948). Everything shown is computed from the files in `assets/`.")

_t0 = time.perf_counter()
pg.run()
process.freeze_long_lived()  # after a run that imported torch/umap: keeps full GC passes out of interactions
if os.environ.get("ALVA_TIMING"):  # bench/app.py reads these lines: server-side script time of a full run
    _t1 = time.perf_counter()
    print(f"[alva-timing] {pg.url_path or 'overview'} {_t1 - _t0:.4f} {_t1 - _T_START:.4f}", file=sys.stderr,
          flush=True)

"""The same-elements floor of bench/app.py and bench/load.py: an ALVA page's elements, in a multipage app shaped
like ALVA's.

Eight pages (``st.navigation``, Material icons, the first at ``/``, the others at ``/p1`` .. ``/p7``, titled
``Page 0`` .. ``Page 7``), each the body of bench/peer_app.py: a slider, then the page's element counts
(bench/peer_elements.py). The counts come from the query (``vega=N&selectbox=N&...``; bench/app.py) or, for the
pages a visitor reaches with the sidebar's links (which drop the query), from the environment: ``PEER_PAGES``, a
JSON object {page index: {kind: N}} (bench/load.py). The sidebar, under the navigation, draws the counts prefixed
``side_``. A page at a sub-path pays what an ALVA page there pays before its first run: Streamlit's client first
probes the sub-path for the server, then ``/`` after a back-off (streamlit/streamlit#7074). What an ALVA page costs
beyond this floor is its own work: more data, longer texts, a longer script.
"""
import json
import os

import streamlit as st
from peer_elements import counts_from, draw

st.set_page_config(page_title="peer", layout="wide", initial_sidebar_state="expanded")
LAYOUT: dict[str, dict[str, int]] = json.loads(os.environ.get("PEER_PAGES", "{}"))
ICONS = ["explore", "smart_toy", "travel_explore", "show_chart", "scatter_plot", "psychology_alt", "call_split",
         "stacked_line_chart"]


def counts(index: int, prefix: str = "") -> dict[str, int]:
    """This page's counts: its ``PEER_PAGES`` entry, overridden by the query's."""
    return counts_from({**LAYOUT.get(str(index), {}), **st.query_params.to_dict()}, prefix)


def page_body(index: int):
    def body() -> None:
        k = st.slider("k", 1, 50, 10)
        st.write(f"k = {k}")
        draw(counts(index), k)

    body.__name__ = f"page{index}"
    return body


pages = [st.Page(page_body(i), title=f"Page {i}", icon=f":material/{icon}:", url_path=f"p{i}", default=not i)
         for i, icon in enumerate(ICONS)]
page = st.navigation(pages)
with st.sidebar:
    draw(counts(next((i for i, p in enumerate(pages) if p is page), 0), "side_"), 10, tag="side_")
page.run()

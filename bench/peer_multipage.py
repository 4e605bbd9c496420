"""The same-elements floor of bench/app.py: an ALVA page's elements, in a multipage app shaped like ALVA's.

Eight pages (``st.navigation``, Material icons, the first at ``/``, the others at ``/p1`` .. ``/p7``), each the
body of bench/peer_app.py: a slider, then the page's element counts from the query (``vega=N&selectbox=N&...``,
bench/peer_elements.py). The sidebar, under the navigation, draws the counts prefixed ``side_``. A page at a
sub-path pays what an ALVA page there pays before its first run: Streamlit's client first probes the sub-path for
the server, then ``/`` after a back-off (streamlit/streamlit#7074). What an ALVA page costs beyond this floor is its
own work: more data, longer texts, a longer script.
"""
import streamlit as st
from peer_elements import counts_from, draw

st.set_page_config(page_title="peer", layout="wide", initial_sidebar_state="expanded")


def body() -> None:
    k = st.slider("k", 1, 50, 10)
    st.write(f"k = {k}")
    draw(counts_from(st.query_params), k)


ICONS = ["explore", "smart_toy", "travel_explore", "show_chart", "scatter_plot", "psychology_alt", "call_split",
         "stacked_line_chart"]
pages = [st.Page(body, title=f"Page {i}", icon=f":material/{icon}:", url_path=f"p{i}", default=not i)
         for i, icon in enumerate(ICONS)]
page = st.navigation(pages)
with st.sidebar:
    draw(counts_from(st.query_params, "side_"), 10, tag="side_")
page.run()

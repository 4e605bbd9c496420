"""What the peers of bench/app.py draw: N small elements of each kind, every one depending on a slider's ``k``.

:data:`KINDS` maps a query-parameter name to the ``data-testid`` that bench/app.py counts in an ALVA page and to
how a peer draws one such element. Blocks (tabs, expanders, columns) are drawn empty-handed: the elements a page
shows inside them are counted and drawn on their own. Everything is tiny (three-point charts, 20-row tables,
one-line texts), so a peer loaded with a page's counts costs what Streamlit costs to show that many elements of
those kinds, whatever they show.
"""
from __future__ import annotations

import numpy as np
import streamlit as st


def _vega(key: str, i: int, k: int) -> None:
    st.vega_lite_chart({"x": list(range(10)), "y": [(j * k) % 7 for j in range(10)]},
                       {"mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"},
                                                     "y": {"field": "y", "type": "quantitative"}}}, key=key)


def _plotly(key: str, i: int, k: int) -> None:
    import plotly.graph_objects as go

    st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[k, 2, 3 + i])), key=key)


def _table(key: str, i: int, k: int) -> None:
    st.dataframe({"instruction": [f"item {j}" for j in range(20)], "value": [j * k / 50 for j in range(20)]},
                 key=key)


def _image(key: str, i: int, k: int) -> None:
    st.image(np.full((64, 64, 3), (k * 5 + i * 40) % 256, dtype=np.uint8))


def _tabs(key: str, i: int, k: int) -> None:
    st.tabs([f"tab {k}", "two", "three"])


#: query name -> (data-testid counted in a page, draw one (widget key, index, k))
KINDS = {
    "vega": ("stVegaLiteChart", _vega),
    "plotly": ("stPlotlyChart", _plotly),
    "table": ("stDataFrame", _table),
    "image": ("stImage", _image),
    "heading": ("stHeading", lambda key, i, k: st.subheader(f"Heading {i}: {k}")),
    "markdown": ("stMarkdown", lambda key, i, k: st.markdown(f"Some *markdown* {i}, k = {k}.")),
    "metric": ("stMetric", lambda key, i, k: st.metric(f"metric {i}", f"{k / 50:.3f}")),
    "alert": ("stAlert", lambda key, i, k: st.info(f"Note {i}: k = {k}")),
    "link": ("stPageLink", lambda key, i, k: st.page_link("https://example.org", label=f"link {i} ({k})")),
    "slider": ("stSlider", lambda key, i, k: st.slider(f"slider {i}", 1, 50, 10, key=key)),
    "selectbox": ("stSelectbox", lambda key, i, k: st.selectbox(f"select {i}", ["a", "b", "c"], key=key)),
    "multiselect": ("stMultiSelect", lambda key, i, k: st.multiselect(f"multi {i}", ["a", "b", "c"], ["a", "b"],
                                                                     key=key)),
    "toggle": ("stCheckbox", lambda key, i, k: st.toggle(f"toggle {i}", True, key=key)),
    "buttons": ("stButtonGroup", lambda key, i, k: st.segmented_control(f"segments {i}", ["a", "b", "c"],
                                                                      default="a", key=key)),
    "button": ("stButton", lambda key, i, k: st.button(f"button {i}", key=key)),
    "download": ("stDownloadButton", lambda key, i, k: st.download_button(f"download {i}", f"k,{k}\n",
                                                                          f"d{i}.csv", on_click="ignore", key=key)),
    "text": ("stTextInput", lambda key, i, k: st.text_input(f"text {i}", key=key)),
    "number": ("stNumberInput", lambda key, i, k: st.number_input(f"number {i}", value=0, key=key)),
    "tabs": ("stTabs", _tabs),
    "expander": ("stExpander", lambda key, i, k: st.expander(f"expander {i}")),
    "columns": ("stColumn", lambda key, i, k: st.columns(1)),
}


def counts_from(params, prefix: str = "") -> dict[str, int]:
    """{kind: N} from query parameters (``prefix + kind``); a missing or bad value is 0."""
    out = {}
    for name in KINDS:
        try:
            out[name] = max(0, int(params.get(prefix + name, "0")))
        except ValueError:
            out[name] = 0
    return out


def draw(counts: dict[str, int], k: int, tag: str = "") -> None:
    """N elements of each kind, in :data:`KINDS` order, each depending on ``k`` (widget keys start with ``tag``:
    the sidebar's and the page's never clash)."""
    for name, (_, one) in KINDS.items():
        for i in range(counts.get(name, 0)):
            one(f"{tag}{name}{i}", i, k)

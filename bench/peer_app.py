"""The peer of bench/app.py: the smallest Streamlit app with the same kinds of elements as an ALVA page.

It measures the framework's own floor on this machine (websocket round trip, script run, React render), run in
the same bench with the same browser, so every ALVA figure can be read against it. Query parameters (counts, see
bench/peer_elements.py): e.g. ``plotly=N`` adds N three-point Plotly charts (the cost of loading and drawing
Plotly itself), ``vega=N`` N small Vega-Lite line charts, ``table=N`` N 20-row dataframes, ``image=N`` N 64x64
images. Every element depends on the slider's k, so moving it redraws them all. bench/peer_multipage.py is the
same body as a page of a multipage app, with a sidebar: the floor bench/app.py measures each ALVA page against.
"""
import streamlit as st
from peer_elements import counts_from, draw

st.set_page_config(page_title="peer", layout="wide")
k = st.slider("k", 1, 50, 10)
st.write(f"k = {k}")
draw(counts_from(st.query_params), k)

"""The peer of bench/app.py: the smallest Streamlit app with the same kinds of elements as an ALVA page.

It measures the framework's own floor on this machine (websocket round trip, script run, React render), run in
the same bench with the same browser, so every ALVA figure can be read against it. Query parameters (counts):
``plotly=N`` adds N three-point Plotly charts (the cost of loading and drawing Plotly itself), ``vega=N`` N
small Vega-Lite line charts, ``table=N`` N 20-row dataframes, ``image=N`` N 64x64 images. Every element
depends on the slider's k, so moving it redraws them all. ``bench/app.py`` loads the peer with each ALVA page's
own element counts: the floor of drawing that many figures, whatever they show.
"""
import numpy as np
import streamlit as st

st.set_page_config(page_title="peer", layout="wide")


def count(name: str) -> int:
    try:
        return max(0, int(st.query_params.get(name, "0")))
    except ValueError:
        return 0


k = st.slider("k", 1, 50, 10)
st.write(f"k = {k}")
for i in range(count("table")):
    st.dataframe({"instruction": [f"item {j}" for j in range(20)], "value": [j * k / 50 for j in range(20)]},
                 key=f"table{i}")
for i in range(count("vega")):
    st.vega_lite_chart({"x": list(range(10)), "y": [(j * k) % 7 for j in range(10)]},
                       {"mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"},
                                                     "y": {"field": "y", "type": "quantitative"}}}, key=f"vega{i}")
if count("plotly"):
    import plotly.graph_objects as go

    for i in range(count("plotly")):
        st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[k, 2, 3 + i])), key=f"plotly{i}")
for i in range(count("image")):
    st.image(np.full((64, 64, 3), (k * 5 + i * 40) % 256, dtype=np.uint8))

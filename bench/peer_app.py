"""The peer of bench/app.py: the smallest Streamlit app with the same kinds of elements as an ALVA page.

It measures the framework's own floor on this machine (websocket round trip, script run, React render), run in
the same bench with the same browser, so every ALVA figure can be read against it. ``?plotly=1`` adds one
three-point Plotly chart (the cost of loading and drawing Plotly itself); ``?table=1`` adds a 20-row dataframe.
"""
import streamlit as st

st.set_page_config(page_title="peer", layout="wide")
k = st.slider("k", 1, 50, 10)
st.write(f"k = {k}")
if st.query_params.get("table") == "1":
    st.dataframe({"instruction": [f"item {i}" for i in range(20)], "value": [i * k / 50 for i in range(20)]})
if st.query_params.get("plotly") == "1":
    import plotly.graph_objects as go

    st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[k, 2, 3])))

"""Streamlit-side helpers of the dashboard (cached loaders, cross-page state, shared widgets).

``core`` never imports this package (nor streamlit); pages import it.
"""

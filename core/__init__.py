"""ALVA core: instruction set, environments, demonstrations, agent, embedders, metrics, projections.

Never imports streamlit. Heavy libraries (torch, transformers, open_clip, umap) are imported lazily inside
the functions that need them, so ``import core.<module>`` stays cheap for the dashboard.
"""
__version__ = "0.1.0"

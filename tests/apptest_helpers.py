"""Shared AppTest helpers (tests/test_app.py, tests/test_sets_page.py): clear the app's caches, run a page with
link parameters, read a link parameter back."""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from core import report

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    report._load_shipped.cache_clear()


def run_page(page: str | None = None, params: dict | None = None, timeout: float = 120) -> AppTest:
    """The app on ``page`` (a file stem of pages/) with ``params`` as its link parameters, after one run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    if page and page != "overview":  # url_path == file stem, so the page is found before the first run
        at.switch_page(f"pages/{page}.py")
    return at.run()


def query_param(at: AppTest, key: str):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v

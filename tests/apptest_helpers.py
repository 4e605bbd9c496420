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


HEAVY = ("torch", "umap", "numba", "transformers", "open_clip")


def heavy_imports(pages: list[str], assets_dir, check: str = "") -> dict[str, list[str]]:
    """Run each page once in a fresh Python process (AppTest on the assets in ``assets_dir``) and return, per page,
    the heavy modules (:data:`HEAVY`) imported by then. ``check``: Python run after each page's run, with ``at``
    bound (e.g. an assertion on what it drew). Raises AssertionError with the child's output if it fails."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys\nfrom streamlit.testing.v1 import AppTest\nout = {}\n"
            f"for page in {list(pages)!r}:\n"
            f"    at = AppTest.from_file({APP!r}, default_timeout=120)\n"
            "    if page != 'overview': at.switch_page(f'pages/{page}.py')\n"
            "    at.run()\n"
            "    assert not at.exception, (page, [e.message for e in at.exception])\n"
            + "".join(f"    {line}\n" for line in check.splitlines() if line.strip()) +
            f"    out[page] = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print('HEAVY=' + json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(APP).parent, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "ALVA_ASSETS_DIR": str(assets_dir)})
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return json.loads(r.stdout.rsplit("HEAVY=", 1)[1])

"""Shared test setup: every test session gets its own diskcache dir, never the repo's cache/."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The session's own cache dir (unless the caller chose one): removed at the end of the session, because it
# holds the dequantised SmolLM2 weights (~0.6 GB) and leaking one per run filled the disk CI shares.
_OWN_CACHE_DIR = None
if "ALVA_CACHE_DIR" not in os.environ:
    _OWN_CACHE_DIR = tempfile.mkdtemp(prefix="alva-test-cache-")
    os.environ["ALVA_CACHE_DIR"] = _OWN_CACHE_DIR
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long real training/embedding runs (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "e2e: real-browser tests (need /usr/bin/chromium)")
    config.addinivalue_line("markers", "weights: needs real pretrained weights from an installed package")


def pytest_unconfigure(config):
    if _OWN_CACHE_DIR is not None:
        shutil.rmtree(_OWN_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def tmp_assets(tmp_path, monkeypatch):
    """An empty assets dir for tests that write assets."""
    d = tmp_path / "assets"
    d.mkdir()
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(d))
    return d

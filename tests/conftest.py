"""Shared test setup: every test session gets its own diskcache dir, never the repo's cache/."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ALVA_CACHE_DIR", tempfile.mkdtemp(prefix="alva-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long real training/embedding runs (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "e2e: real-browser tests (need /usr/bin/chromium)")
    config.addinivalue_line("markers", "weights: needs real pretrained weights from an installed package")


@pytest.fixture
def tmp_assets(tmp_path, monkeypatch):
    """An empty assets dir for tests that write assets."""
    d = tmp_path / "assets"
    d.mkdir()
    monkeypatch.setenv("ALVA_ASSETS_DIR", str(d))
    return d

"""Real browser: a visitor uploads their own embeddings through the sidebar's file chooser and sees them on the P@k
page; another visitor (another browser context, same server) does not. Fixtures: tests/test_e2e.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_e2e import ARGS, CHROMIUM, app_url, browser, query, wait_for_app_run  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e]
if not Path(CHROMIUM).exists():
    pytestmark.append(pytest.mark.skip(reason=f"{CHROMIUM} not found (apt-get install -y chromium)"))
try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover
    pytestmark.append(pytest.mark.skip(reason="the playwright python package is not installed"))


def _visitor(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    return ctx, ctx.new_page()


def test_an_upload_through_the_file_chooser_is_a_model_on_the_pk_page_of_that_visitor_only(app_url, browser,
                                                                                         tmp_path):
    path = tmp_path / "my-vectors.npy"
    np.save(path, np.random.default_rng(0).normal(size=(108, 32)).astype(np.float32))
    ctx, page = _visitor(browser)
    try:
        page.goto(f"{app_url}/precision")
        wait_for_app_run(page)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("Your own embeddings").click()
        sidebar.get_by_label("Name", exact=True).and_(page.get_by_test_id("stTextInputField")).fill("my-emb")
        with page.expect_file_chooser() as chooser:
            sidebar.get_by_test_id("stFileUploaderDropzone").get_by_role("button", name="Upload", exact=True).click()
        chooser.value.set_files(path)
        expect(sidebar.get_by_text("my-vectors.npy")).to_be_visible()  # the file reached the server
        sidebar.get_by_role("button", name="Add", exact=True).click()  # the form's submit button
        expect(sidebar.get_by_text("Added my-emb")).to_be_visible(timeout=60_000)
        wait_for_app_run(page)
        chart = page.get_by_test_id("stVegaLiteChart").first
        expect(chart).to_contain_text("my-emb", timeout=60_000)  # a curve of its own, named in the legend
        assert "my-emb" in query(page)["models"].split(",")
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
    finally:
        ctx.close()
    other, page = _visitor(browser)
    try:
        page.goto(f"{app_url}/precision?models=alm,my-emb")
        wait_for_app_run(page)
        expect(page.get_by_test_id("stAlert").filter(has_text="Unknown model in the link ignored: my-emb")) \
            .to_be_visible()
        expect(page.get_by_test_id("stVegaLiteChart").first).not_to_contain_text("my-emb")
    finally:
        other.close()

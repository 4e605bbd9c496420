"""Offline glyphs, in a real browser: every page renders its icons with nothing fetched from the network.

The browser context lets requests to the app's own loopback server (and data:/blob: URLs) through and aborts and
records every other one. Each page must then (1) have attempted no such request, (2) draw every Material Symbols
icon (page icons in the navigation, alert icons, expander arrows) as one glyph of the bundled font that the app
server serves (an icon whose name the font lacks, or whose font did not load, is drawn as its name in letters,
several times wider than high), (3) show no character that only a colour-emoji font can draw (the build machines
and many servers have none, and such a character is an empty box), and (4) carry the app's own SVG favicon.

Walks every page of the navigation. Shares the server and browser fixtures of tests/test_e2e.py (a server of its own for this module).
"""
from __future__ import annotations

import base64
import re
from urllib.parse import quote_plus, unquote, urlparse

import pytest

from test_e2e import app_url, browser, pytestmark, wait_for_app_run  # noqa: F401  (fixtures, skip marks)

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover  (skipped by pytestmark)
    expect = None

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: besides every page of the navigation: a link that shows alerts (with their icons)
HOSTILE = f"neighbours?k=500&instruction={quote_plus('fly to the moon')}"

#: per visible Material icon: its text (the icon name), font family, and drawn width and height
ICONS_JS = """() => Array.from(document.querySelectorAll(
        "[data-testid='stIconMaterial'], [data-testid='stAlertDynamicIcon']"))
    .filter(e => e.offsetParent !== null)
    .map(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                return {name: e.textContent, family: s.fontFamily, w: r.width, h: r.height}; })"""
FONT_LOADED_JS = """() => Array.from(document.fonts)
    .some(f => f.family.replace(/"/g, '') === 'Material Symbols Rounded' && f.status === 'loaded')"""
#: characters drawn only by a colour-emoji font: emoji presentation by default, or forced by VS16 (U+FE0F)
EMOJI_JS = r"""() => Array.from(new Set(document.body.innerText.match(/\p{Emoji_Presentation}|\uFE0F/gu) || []))"""


def test_pages_render_icons_and_symbols_without_network(app_url, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800}, service_workers="block")
    attempted: list[str] = []
    served: list[str] = []

    def gate(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOOPBACK:
            served.append(url)
            route.continue_()
        else:
            attempted.append(url)
            route.abort("internetdisconnected")

    ctx.route("**/*", gate)
    page = ctx.new_page()
    try:
        page.goto(app_url)
        wait_for_app_run(page)
        links = page.locator("[data-testid='stSidebarNav'] a")
        expect(links.first).to_be_visible(timeout=60_000)
        pages = [(urlparse(a.get_attribute("href")).path.lstrip("/"),  # (path, title: the text after the icon)
                  a.inner_text().strip().splitlines()[-1]) for a in links.all()]
        assert len(pages) >= 5, pages
        for path, title in [*pages, (HOSTILE, "Neighbours")]:
            page.goto(f"{app_url}/{path}")
            wait_for_app_run(page)
            expect(page.locator("h1").first).to_have_text(title, timeout=60_000)
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            nav = page.locator("[data-testid='stSidebarNav'] [data-testid='stIconMaterial']")
            expect(nav).to_have_count(len(pages))  # one icon per page
            page.wait_for_function(FONT_LOADED_JS, timeout=30_000)
            icons = page.evaluate(ICONS_JS)
            assert len(icons) >= len(pages), icons
            for icon in icons:
                assert "Material Symbols" in icon["family"], (path, icon)
                assert 0 < icon["w"] <= 1.3 * icon["h"], (path, icon)  # one glyph, not the name in letters
            if path == HOSTILE:
                assert page.locator("[data-testid='stAlertDynamicIcon']").count() >= 2
            assert page.evaluate(EMOJI_JS) == [], (path, page.evaluate(EMOJI_JS))
            assert attempted == [], f"{path or 'overview'}: requests beyond the app's server: {attempted}"
        fonts = [u for u in served if "MaterialSymbols" in u]
        assert fonts and all(urlparse(u).hostname in LOOPBACK for u in fonts)  # the bundled font, from the app
        icon = page.evaluate("() => document.querySelector(\"link[rel~='icon']\").href")
        assert icon.startswith("data:image/svg+xml"), icon[:80]
        head, _, body = icon.partition(",")
        svg = base64.b64decode(body).decode() if head.endswith(";base64") else unquote(body)
        assert "<title>ALVA</title>" in svg  # ui/favicon.svg, not an emoji drawn as text
    finally:
        ctx.close()
    assert not re.search(r"gstatic|googleapis", " ".join(served))

"""Real-browser end-to-end tests: ``streamlit run app.py`` on a free localhost port, driven by Debian's Chromium
through Python Playwright (never ``playwright install``). Runs on the shipped ``assets/``.

Skipped with a reason when /usr/bin/chromium or the playwright package is absent (``.ci/run`` -> ``make test``
apt-installs chromium when root).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlparse

import pytest

from core.instructions import instruction_set

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.e2e]
if not Path(CHROMIUM).exists():
    pytestmark.append(pytest.mark.skip(reason=f"{CHROMIUM} not found (apt-get install -y chromium; `make test` "
                                              "does it when run as root)"))
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    pytestmark.append(pytest.mark.skip(reason="the playwright python package is not installed"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    env = {**os.environ}
    env.pop("ALVA_ASSETS_DIR", None)  # the shipped assets (ALVA_E2E_ASSETS=dir runs them on another assets dir)
    if os.environ.get("ALVA_E2E_ASSETS"):
        env["ALVA_ASSETS_DIR"] = os.environ["ALVA_E2E_ASSETS"]
    log = open(os.path.join(env.get("ALVA_CACHE_DIR", "/tmp"), f"streamlit-e2e-{port}.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
                             "--server.address=127.0.0.1", f"--server.port={port}",
                             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.1)
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early, see {log.name}")
        else:
            raise RuntimeError("streamlit did not become healthy in 60 s")
        yield url
    finally:
        proc.terminate()  # by handle, never by name
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", *ARGS])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def wait_for_app_run(page, timeout=90_000):
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(state="attached",
                                                                                          timeout=timeout)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                       timeout=timeout)


def wait_for_charts_drawn(page, count: int, timeout=90_000) -> None:
    """Wait until the page shows ``count`` Plotly charts, each drawn, visible and as wide as its element.

    Script state alone does not say that: Streamlit mounts an ``st.plotly_chart`` only when Plotly's 4.7 MB bundle
    has loaded and parsed, which took 20 to 60 s after the script had finished on this 2-core machine under load,
    and the charts of one page do not always mount together (7.5 s apart once, the lower chart first). Until then
    ``.first`` may be another chart than the one meant, and a chart that mounts later above another one moves it:
    a mouse gesture aimed at a point measured before lands where the point no longer is, and selects nothing."""
    page.wait_for_function("""(n) => {
        const charts = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
        return charts.length === n && charts.every((c) => {
            const gd = c.querySelector('.js-plotly-plot'), svg = c.querySelector('svg.main-svg');
            return gd && svg && c.querySelector('.scatterlayer path.point') !== null
                && getComputedStyle(gd).visibility === 'visible'
                && Math.abs(svg.getBoundingClientRect().width - c.getBoundingClientRect().width) < 1;
        });
    }""", arg=count, timeout=timeout)


def click_until(page, button, shown, timeout=5_000) -> None:
    """Click ``button`` and wait until ``shown`` is visible; click once more if nothing happened. In headless
    Chromium about 1 in 30 clicks on a button inside an ``st.fragment`` starts no rerun (Streamlit 1.67; measured
    by bench/app.py, which reports them): the test is about what a click does, not about that."""
    button.click()
    try:
        expect(shown).to_be_visible(timeout=timeout)
    except AssertionError:
        button.click()
        expect(shown).to_be_visible(timeout=30_000)


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_deep_link_is_the_first_request_of_a_fresh_server(app_url, page):
    """Must stay the first test of this module (the server is fresh): a `pages/` folder makes Streamlit start in
    legacy multipage mode until st.navigation runs; the app must still route a deep link through app.py."""
    page.goto(f"{app_url}/neighbours?k=7&instruction={quote_plus('open the blue door')}")
    wait_for_app_run(page)
    expect(page.locator("h1").first).to_have_text("Neighbours")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link", name="Procrustes UMAP", exact=True)).to_be_visible()  # st.navigation titles
    expect(nav.get_by_role("link", name="app", exact=True)).to_have_count(0)  # not the legacy file list
    expect(page.get_by_test_id("stSidebar")).to_contain_text("open the blue door")
    assert query(page)["k"] == "7" and query(page)["instruction"] == "open the blue door"


@pytest.mark.parametrize("path,title", [("", "Overview"), ("agent", "Agent"), ("neighbours", "Neighbours"),
                                        ("precision", "P@k"), ("procrustes", "Procrustes UMAP"),
                                        ("why", "Why they align")])
def test_each_page_loads_without_exception(app_url, page, path, title):
    page.goto(f"{app_url}/{path}")
    wait_for_app_run(page)
    expect(page.locator("h1").first).to_have_text(title, timeout=30_000)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    assert query(page).get("k") == "15"  # the state is mirrored in the URL


def test_hostile_deep_link_shows_a_message(app_url, page):
    page.goto(f"{app_url}/neighbours?k=500&instruction=fly+to+the+moon")
    wait_for_app_run(page)
    alerts = page.locator("[data-testid='stAlert']")
    expect(alerts.filter(has_text="got k = 500").first).to_be_visible()
    expect(alerts.filter(has_text="unknown word").first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    assert query(page)["k"] == "15" and query(page)["instruction"] == "go to the red ball"


def test_click_a_neighbour_changes_the_selection(app_url, page):
    page.goto(f"{app_url}/neighbours?instruction={quote_plus('go to the red ball')}&k=5&models=bag-of-words")
    wait_for_app_run(page)
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(state="visible")
    box = grid.bounding_box()
    # glide-data-grid: header row 35 px, rows 35 px; columns: rank (32 px), then one per model (235 px)
    x, y = box["x"] + 32 + 120, box["y"] + 35 + 35 * 1 + 17  # the model's second neighbour
    sidebar = page.locator("[data-testid='stSidebar']")
    old = "go to the red ball"
    for _ in range(2):  # the same cell twice: the grid keeps its key, and each click acts on what it shows now
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_function("(old) => new URLSearchParams(location.search).get('instruction') !== old", arg=old,
                               timeout=30_000)
        wait_for_app_run(page)
        new = query(page)["instruction"]
        assert new != old
        expect(sidebar).to_contain_text(new)
        old = new
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_agent_steps_plays_and_exports_a_gif(app_url, page, tmp_path):
    page.goto(f"{app_url}/agent?instruction={quote_plus('pick up the blue key')}&env=1")
    wait_for_app_run(page)
    expect(page.locator("h1").first).to_have_text("Agent")
    if page.get_by_text("No agent checkpoint is shipped").count():
        pytest.skip("no agent checkpoint in assets/agents")
    first = page.get_by_text(re.compile(r"step 0 of \d+"))
    expect(first).to_be_visible(timeout=60_000)
    n = min(3, int(re.search(r"of (\d+)", first.inner_text()).group(1)))
    for t in range(1, n + 1):
        click_until(page, page.get_by_role("button", name="▶", exact=True),
                    page.get_by_text(re.compile(rf"step {t} of \d+")))
        wait_for_app_run(page)
    assert query(page)["step"] == str(n)
    page.get_by_text("▶ Play", exact=True).click()
    page.wait_for_timeout(2500)
    page.get_by_text("▶ Play", exact=True).click()
    wait_for_app_run(page)
    txt = page.get_by_text(re.compile(r"step \d+ of \d+")).first.inner_text()
    step, total = map(int, re.search(r"step (\d+) of (\d+)", txt).groups())
    assert step > 3 or step == total  # playing advanced (or the episode ended)
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name=re.compile("Export this episode as a GIF")).click()
    path = tmp_path / "episode.gif"
    dl.value.save_as(path)
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_points_lassoed_in_one_umap_panel_are_selected_everywhere(app_url, page):
    page.goto(f"{app_url}/procrustes")
    wait_for_app_run(page)
    expect(page.locator("h1").first).to_have_text("Procrustes UMAP")
    charts = page.locator("[data-testid='stPlotlyChart']")
    wait_for_charts_drawn(page, 2)  # the small multiples, then the overlay; both final (see the helper)
    point = charts.first.locator(".scatterlayer path.point").nth(7)  # an instruction in the first panel
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 12, y - 12)  # lasso (the charts' drag mode) a small square around it
    page.mouse.down()
    for dx, dy in ((12, -12), (12, 12), (-12, 12), (-12, -12)):
        page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"Selected \(\d+\): "))
    expect(caption).to_be_visible(timeout=30_000)
    n, names = re.match(r"Selected \((\d+)\): (.*)", caption.inner_text()).groups()
    assert 1 <= int(n) < 108 and names.split("; ")[0] in instruction_set()
    # the selection is drawn in every panel and in the overlay: the other points are dimmed
    for chart in (charts.first, charts.nth(1)):
        expect(chart.locator(".scatterlayer path.point[style*='opacity: 0.15']").first).to_be_attached()
    page.get_by_role("button", name="Clear selection").click()
    expect(caption).to_have_count(0, timeout=30_000)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_why_page_deep_link_and_bad_link(app_url, page):
    """The "Why they align" page restores a deep link (shared selection and its own parameters) and names what
    was wrong with a bad one."""
    instr = "pick up a blue key"
    page.goto(f"{app_url}/why?instruction={quote_plus(instr)}&k=9&models=alm,smollm2-135m&seed=1&metric=cka")
    wait_for_app_run(page)
    expect(page.locator("h1").first).to_have_text("Why they align", timeout=30_000)
    expect(page.get_by_text("The answer, from the data")).to_be_visible(timeout=120_000)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    q = query(page)
    assert (q["instruction"], q["k"], q["models"], q["seed"], q["metric"]) == (instr, "9", "alm,smollm2-135m", "1",
                                                                                "cka")
    expect(page.get_by_test_id("stSidebar")).to_contain_text(instr)
    expect(page.get_by_text("alm-s1 vs smollm2-135m").first).to_be_visible()  # the summary is about seed 1, k 9
    expect(page.get_by_text("P@9 against each model (chance").first).to_be_visible()
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()  # the factor picture at least
    page.goto(f"{app_url}/why?k=0&seed=99&models=gpt-9,smollm2-135m&metric=loss&agent=robot")
    wait_for_app_run(page)
    alerts = page.locator("[data-testid='stAlert']")
    for needle in ("got k = 0", "seed 99 is not shipped", "Unknown model", "metric must be one of", "unknown agent"):
        expect(alerts.filter(has_text=needle).first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    q = query(page)
    assert (q["k"], q["seed"], q["models"], q["metric"], q["agent"]) == ("15", "0", "smollm2-135m", "pk", "alm")


def test_why_page_multiverse_follows_a_new_seed(app_url, page):
    """The sections are tabs computed only when open: a click on the multiverse's tab draws it and puts it in the
    address bar; a new seed (a control of the page's fragment) redraws it for that seed."""
    page.goto(f"{app_url}/why?models=alm,smollm2-135m&seed=0")
    wait_for_app_run(page)
    heading = page.locator("[data-testid='stMarkdown']")
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=120_000)  # section 1
    expect(heading.filter(has_text=re.compile(r"^alm-s0 vs smollm2-135m$"))).to_have_count(0)  # not computed yet
    page.get_by_role("tab", name="3. How robust is each number? The multiverse").click()
    wait_for_app_run(page)
    if page.get_by_text("The analysis multiverse is not computed here").count():
        pytest.skip("no multiverse in assets/multiverse")
    expect(heading.filter(has_text=re.compile(r"^alm-s0 vs smollm2-135m$"))).to_have_count(1, timeout=120_000)
    assert query(page)["section"] == "multiverse"
    box = page.get_by_role("combobox", name=re.compile("Agent seed"))
    box.click()
    page.get_by_role("option", name="alm-s1", exact=True).click()
    expect(heading.filter(has_text=re.compile(r"^alm-s1 vs smollm2-135m$"))).to_have_count(1, timeout=120_000)
    expect(heading.filter(has_text=re.compile(r"^alm-s0 vs smollm2-135m$"))).to_have_count(0)
    wait_for_app_run(page)
    assert query(page)["seed"] == "1"
    expect(page.locator("[data-testid='stException']")).to_have_count(0)

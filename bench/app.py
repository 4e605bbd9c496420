"""Benchmark of the dashboard: page render and widget interaction times with a warm server, and server memory.

    python bench/app.py [--rounds 5] [--json bench/out/app.json]

Starts ``streamlit run app.py`` (shipped assets, this machine's cache), drives Debian's Chromium with Playwright
(``/usr/bin/chromium``), and measures in the browser, on the page's own clock. Every figure has two ends:

* **done**: the app's script run has finished in the browser (``data-test-script-state`` observed going
  ``running`` -> ``notRunning``, every delta applied) and, for page loads, no element is stale;
* **settled**: the time of the last change on screen, once nothing changed for ``QUIET_MS``: any DOM mutation
  outside a ``<canvas>`` (the data grid's hidden accessibility table lives inside its canvas and is not drawn),
  anywhere on the page, and any drawing call on a 2-D canvas that is in the viewport (the data grid draws its
  cells on a canvas; a grid below the fold that redraws while the page above it grows is not seen).
  Plotly draws after the run's last message arrives, so this is the end a visitor sees.

Measured:

* **page render**: from navigation start; first visit (cold: imports, cached loaders filled) and reloads
  (median and max of ``--rounds``); target: reload <= 1 s;
* **interaction**: from the input event of a widget change (the last keydown or click before the rerun started,
  recorded in the page; Playwright's locating and typing are not counted); target <= 0.3 s (an uncached agent
  rollout may take longer: it is listed separately). Each interaction starts from an idle page (settled);
* **in-app navigation**: a click on the sidebar link (same session, the way a visitor moves between pages);
* **server-side script time** of every full run (app.py + page, from app.py's first line to the end of the
  page), printed by app.py when ``ALVA_TIMING=1``: median and max over all runs, first (cold) runs included;
* **resident memory** (VmRSS, VmHWM from /proc) of the server process after visiting every page; target <= 1 GB;
* **the peer** (bench/peer_app.py, the smallest Streamlit app), measured the same way in the same run with the same
  browser: the framework's floor on this machine; every ALVA figure is also printed as a ratio to it;
* **the same-elements floor**: bench/peer_multipage.py, a multipage app shaped like ALVA's (eight pages in the
  navigation, a sidebar), loaded with each ALVA page's own count of every kind of element (counted in the browser
  after the reloads: charts, tables, images, texts, headings, widgets by kind, tabs, expanders, columns; the
  sidebar's too; bench/peer_elements.py) at a path of the same depth (``/`` for the Overview, ``/p1`` for the
  others, so it pays the same base-path probe, streamlit#7074), reloaded and its slider moved (every element
  redrawn). Its counts are checked against the page's and any difference is printed. What a page costs beyond it
  is ALVA's own work (more data in its charts, longer texts, a longer script); what the floor costs is the price of
  showing that many elements with Streamlit in this browser on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_elements import KINDS  # noqa: E402  (bench/ is not a package)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
PAGES = [("overview", ""), ("agent", "agent"), ("neighbours", "neighbours"), ("P@k", "precision"),
         ("procrustes", "procrustes"), ("why", "why")]
#: pages reloaded (and floored) but not navigated to: the other sections of the Why page (its tabs, one per link)
SECTION_RELOADS = [("why §2", "why?section=organisation"), ("why §3", "why?section=multiverse")]
#: installed in every page before its scripts run: records, on the page's clock (0 = navigation start), the user's
#: input events, the app's script-state changes, the arrival of every websocket message from the server and every
#: DOM mutation that can change what is on screen (mutations inside a <canvas> are the data grid's hidden
#: accessibility table: not drawn, not counted).
RECORDER = """(() => {
  window.__inputs = []; window.__runs = []; window.__dom = []; window.__ws = [];
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      if (window.__wsCreated === undefined) window.__wsCreated = performance.now();  // the page's first socket
      this.addEventListener('message', () => window.__ws.push(performance.now()));
    }
  };
  for (const type of ['keydown', 'click'])
    document.addEventListener(type, () => window.__inputs.push(performance.now()), {capture: true});
  let watched = null;  // the app element whose script state is observed (re-attached if React replaces it)
  const watchApp = () => {
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app === watched) return;
    watched = app;
    new MutationObserver(() => window.__runs.push([app.getAttribute('data-test-script-state'), performance.now()]))
      .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  new MutationObserver((records) => {
    const t = performance.now();
    if (records.some(r => { const n = r.target.nodeType === 1 ? r.target : r.target.parentElement;
                            return !(n && n.closest && n.closest('canvas')); }))
      window.__dom.push(t);
    watchApp();
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  // drawing on a 2D canvas (the data grid, a canvas-rendered chart) changes the screen without a DOM mutation:
  // a drawing call on a canvas that is in the viewport counts as a change (recorded at most once per ms)
  const proto = CanvasRenderingContext2D.prototype, seen = new WeakMap();  // canvas -> [time, in viewport]
  const inView = (canvas, t) => {
    const s = seen.get(canvas);
    if (s && t - s[0] < 1) return s[1];
    const r = canvas.getBoundingClientRect();
    const v = r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth && r.width > 0;
    seen.set(canvas, [t, v]);
    return v;
  };
  for (const name of ['fill', 'stroke', 'fillRect', 'strokeRect', 'clearRect', 'fillText', 'strokeText',
                      'drawImage', 'putImageData']) {
    const draw = proto[name];
    proto[name] = function (...args) {
      const t = performance.now(), d = window.__dom;
      if ((!d.length || t - d[d.length - 1] >= 1) && this.canvas.isConnected && inView(this.canvas, t)) d.push(t);
      return draw.apply(this, args);
    };
  }
})();"""
QUIET_MS = 300  # the screen counts as settled when nothing on it changed for this long


_TIMING = re.compile(r"\[alva-timing\] (\S+) ([0-9.]+) ([0-9.]+)")


def timing_records(log_text: str) -> list[tuple[str, float]]:
    """(page, s from app.py's first line to the end of the page) of every full run in a server log (app.py's
    ``[alva-timing]`` lines with ``ALVA_TIMING=1``). Matched anywhere in a line: two sessions printing at once can
    share one."""
    return [(m.group(1), float(m.group(3))) for m in _TIMING.finditer(log_text)]


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def wait_idle(page, timeout=120_000):
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(state="attached",
                                                                                          timeout=timeout)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                       timeout=timeout)
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"]').length === 0",
                           timeout=timeout)


QUIET_TIMEOUT_MS = 10_000  # how long a screen may keep changing before wait_quiet gives up (bench/load.py: longer)


def wait_quiet(page, since: float, timeout_ms: float | None = None) -> float:
    """Wait until no recorded DOM mutation for QUIET_MS; return the time of the last one after ``since``
    (page clock, ms)."""
    page.wait_for_function(
        """q => { const d = window.__dom; const last = d.length ? d[d.length - 1] : 0;
                  return performance.now() - last >= q; }""", arg=QUIET_MS,
        timeout=QUIET_TIMEOUT_MS if timeout_ms is None else timeout_ms)
    return page.evaluate("s => Math.max(s, ...window.__dom.filter(t => t >= s))", since)


def visit(page, url) -> tuple[float, float]:
    """(done, settled) in s from the navigation start: the page's last script run finished with nothing stale,
    and the last change on screen."""
    page.goto(url)
    page.wait_for_timeout(50)
    wait_idle(page)
    done = page.evaluate("() => Math.max(0, ...window.__runs.filter(([s]) => s === 'notRunning').map(([, t]) => t))")
    return done / 1000, max(done, wait_quiet(page, 0)) / 1000


def socket_created(page) -> float:
    """When the page created its websocket (s from navigation start). Streamlit's client first probes the server at
    the page's own path (``/why/_stcore/health``, a 404 for every page but the main one) and retries at ``/``
    after a 100 ms back-off (streamlit/streamlit#7074), so a reload of a sub-page connects later than one of
    ``/``: measured here so that the cost is seen, not guessed."""
    return page.evaluate("() => window.__wsCreated ?? NaN") / 1000


LOST_INPUTS: list[str] = []  # inputs the page received that started no rerun (see interact)
START_WAIT_S = 2.0
RETRIES = 4  # an input that started no rerun is repeated up to this many times


def interact(page, action, timeout=120.0, name: str = "") -> tuple[float, float] | None:
    """(s until the rerun finished, s until the screen settled), from the user's input event (the last keydown or
    click before the rerun started, recorded in the page). Playwright's own round trips before the event
    (locating, scrolling, typing a search text) are not counted.

    An input after which the page shows no running script within START_WAIT_S is recorded in LOST_INPUTS
    (reported, not hidden) and the action is repeated (up to RETRIES times; None if every attempt is lost); the
    time is then measured from the repeated input. (Streamlit 1.67's slider drops some keyboard changes itself:
    react-aria reports the change's end with the value from before the key, equal to the committed one, so no
    rerun is sent; bench/peer_app.py shows the same.) A run too short to be shown as running (the browser
    renders its start and end together: seen for in-app navigation, ~60 ms) counts as started when a server
    message and a change on screen follow the input; it is done at the last server message before the screen
    settles."""
    # a run shows as 'running' in the page; a run so short that the browser renders its start and its end
    # together never does, but its messages arrive and the screen changes
    started = """t0 => window.__runs.some(([s, t]) => s === 'running' && t >= t0) ||
                        (window.__ws.some(t => t >= t0) && window.__dom.some(t => t >= t0))"""
    for attempt in range(1 + RETRIES):
        t0 = page.evaluate("() => performance.now()")
        action()
        try:
            page.wait_for_function(started, arg=t0, timeout=START_WAIT_S * 1000)
            break
        except Exception:
            LOST_INPUTS.append(f"{name or 'interaction'} on {page.url.split('?')[0]}")
    else:
        return None  # every attempt lost: this round is not measured (the lost inputs are reported)
    try:
        page.wait_for_function(
            """t0 => { const r = window.__runs;
                       const i = r.findIndex(([s, t]) => s === 'running' && t >= t0);
                       if (i < 0) return r.length > 0 && r[r.length - 1][0] === 'notRunning';  // never shown running
                       return r.slice(i).some(([s]) => s === 'notRunning'); }""",
            arg=t0, timeout=timeout * 1000)
    except Exception as e:
        seen = page.evaluate("() => [location.href, window.__runs.slice(-4), window.__inputs.slice(-3)]")
        raise RuntimeError(f"no rerun finished after the action (t0 = {t0:.0f} ms); page state: {seen}") from e
    settled = wait_quiet(page, t0)
    runs, inputs, ws = page.evaluate("() => [window.__runs, window.__inputs, window.__ws]")
    i = next((j for j, (s, t) in enumerate(runs) if s == "running" and t >= t0), None)
    done = None if i is None else next((t for s, t in runs[i:] if s == "notRunning"), None)
    if done is not None:
        start = max((t for t in inputs if t <= runs[i][1]), default=t0)
    else:  # never shown running (or a second run started after the first ended unseen): the run ended with the
        #    last message that reached the page before it settled
        start = max((t for t in inputs if t >= t0), default=t0)
        done = max(t for t in ws if t >= t0)
    return (done - start) / 1000, (max(settled, done) - start) / 1000


def settle(page):
    """Let the page become idle (script finished, nothing stale, screen unchanged for QUIET_MS)."""
    wait_idle(page)
    wait_quiet(page, 0)


def summary(pairs: list[tuple[float, float] | None]) -> dict[str, float]:
    pairs = [p for p in pairs if p is not None]  # rounds whose input was lost every time
    if not pairs:  # every round's input was lost: nothing to time (printed as such, never as 0)
        return {"done_median": float("nan"), "done_max": float("nan"), "settled_median": float("nan"),
                "settled_max": float("nan"), "n": 0}
    done, settled = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"done_median": statistics.median(done), "done_max": max(done),
            "settled_median": statistics.median(settled), "settled_max": max(settled), "n": len(pairs)}


def fmt(sm: dict[str, float]) -> str:
    return (f"{sm['done_median']:.3f} ({sm['done_max']:.3f}) / {sm['settled_median']:.3f} "
            f"({sm['settled_max']:.3f})")


def serve(script: str, env: dict[str, str]) -> tuple[subprocess.Popen, str, object]:
    """Start ``streamlit run script`` (from the repository root, so with its .streamlit/config.toml) on a free
    localhost port; return (process, url, log file)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(f"/tmp/alva-bench-streamlit-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.headless=true",
                             "--server.address=127.0.0.1", f"--server.port={port}",
                             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    return proc, f"http://127.0.0.1:{port}", log


def wait_healthy(url: str) -> float:
    t = time.perf_counter()
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                return time.perf_counter() - t
        except OSError:
            time.sleep(0.05)


#: what bench/peer_multipage.py draws of its own on every page (a slider and the line under it): not asked of it again
PEER_BODY = {"slider": 1, "markdown": 1}
#: the element counted in each element container: its first descendant with one of these test ids (a chart sits
#: inside a full-screen frame; a widget's label is not an element of its own)
_COUNT_JS = """kinds => { const out = {}; const sel = Object.values(kinds).map(t => `[data-testid="${t}"]`).join(',');
  const kindOf = Object.fromEntries(Object.entries(kinds).map(([k, t]) => [t, k]));
  const blocks = new Set(['stTabs', 'stExpander', 'stColumn']);
  for (const [prefix, root] of [['', '[data-testid=stMain]'], ['side_', '[data-testid=stSidebarUserContent]']]) {
    const r = document.querySelector(root); if (!r) continue;
    const count = t => { const k = prefix + kindOf[t]; out[k] = (out[k] || 0) + 1; };
    r.querySelectorAll('[data-testid=stElementContainer]').forEach(e => {
      const tid = e.querySelector(sel)?.getAttribute('data-testid');
      if (tid && !blocks.has(tid)) count(tid); });
    r.querySelectorAll([...blocks].map(t => `[data-testid="${t}"]`).join(','))
      .forEach(e => count(e.getAttribute('data-testid')));
  }
  return out; }"""


def count_elements(page) -> dict[str, int]:
    """How many elements of each kind of bench/peer_elements.py the page shows in its main area (``kind``) and in
    its sidebar under the navigation (``side_kind``): charts, tables, images, texts, widgets, tabs, expanders,
    columns."""
    return page.evaluate(_COUNT_JS, {k: t for k, (t, _) in KINDS.items()})


def floor_counts(counts: dict[str, int]) -> dict[str, int]:
    """What to ask of bench/peer_multipage.py for a page with these counts: less the slider and line it always
    draws."""
    ask = {k: v - PEER_BODY.get(k, 0) for k, v in counts.items()}
    return {k: v for k, v in sorted(ask.items()) if v > 0}


def peer_query(counts: dict[str, int]) -> str:
    """The query that asks bench/peer_multipage.py for a page with these counts (:func:`floor_counts`)."""
    return "?" + "&".join(f"{k}={v}" for k, v in floor_counts(counts).items())


def measure_peer(browser, rounds: int, like: dict[str, tuple[str, dict[str, int]]] | None = None
                 ) -> tuple[dict, dict[str, float], dict[str, dict[str, tuple[int, int]]]]:
    """The framework's floor, measured the same way: bench/peer_app.py reloaded bare, with a 20-row table and with
    one tiny Plotly chart, and its slider moved on the bare page. ``like``: {ALVA page: (its path, its element
    counts)}: the same-elements floor, bench/peer_multipage.py reloaded with those counts at a path of the same
    depth (``/`` for the main page, ``/p1`` for the others), and its slider moved there (every element redrawn).
    Returns (those summaries, when each reloaded page created its websocket: :func:`socket_created`, and per
    ALVA page every kind of element whose count on the floor differs from the page's: {kind: (page, floor)})."""
    out: dict = {}
    sockets: dict[str, float] = {}  # s from navigation
    differs: dict[str, dict[str, tuple[int, int]]] = {}

    def slider_rounds(page, what: str) -> dict[str, float]:
        """The peer's slider moved ``rounds`` times on the page as it is, settling in between."""
        settle(page)
        slider = page.get_by_role("slider").first
        times = []
        for _ in range(rounds):
            times.append(interact(page, lambda: slider.press("ArrowRight"), name=what))
            settle(page)
        return summary(times)

    def on_peer(script: str, work) -> None:
        proc, url, log = serve(script, {})
        try:
            wait_healthy(url)
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            context.add_init_script(RECORDER)
            work(context.new_page(), url)
            context.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()

    def bare(page, url: str) -> None:
        for name, query in (("bare", ""), ("table", "?table=1"), ("plotly", "?plotly=1")):
            visit(page, url + "/" + query)  # first visit: imports, Plotly's bundle into the browser cache
            out[f"reload {name}"] = summary([visit(page, url + "/" + query) for _ in range(rounds)])
            sockets[name] = socket_created(page)
        visit(page, url + "/")
        out["slider"] = slider_rounds(page, "peer slider")

    def same_elements(page, url: str) -> None:
        for name, (path, counts) in (like or {}).items():
            target = f"{url}/{'p1' if path.split('?')[0] else ''}{peer_query(counts)}"
            visit(page, target)
            out[f"reload like {name}"] = summary([visit(page, target) for _ in range(rounds)])
            sockets[f"like {name}"] = socket_created(page)
            got = count_elements(page)  # the floor checked against the page it stands for
            differs[name] = {k: (counts.get(k, 0), got.get(k, 0)) for k in sorted({*counts, *got})
                             if counts.get(k, 0) != got.get(k, 0)}
            out[f"slider like {name}"] = slider_rounds(page, f"peer slider like {name}")

    on_peer("bench/peer_app.py", bare)
    if like:
        on_peer("bench/peer_multipage.py", same_elements)
    return out, sockets, differs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=str(REPO / "bench" / "out" / "app.json"))
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"bench/app.py: {CHROMIUM} not found (apt-get install -y chromium); nothing measured")
        return 0
    from playwright.sync_api import sync_playwright

    proc, url, log = serve("app.py", {"ALVA_TIMING": "1"})
    res: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}}
    try:
        res["server_healthy_s"] = wait_healthy(url)
        res["rss_idle_mb"] = rss_mb(proc.pid)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", *ARGS])
            context = b.new_context(viewport={"width": 1400, "height": 1600})
            context.add_init_script(RECORDER)
            page = context.new_page()
            cold, warm = {}, {}
            for name, path in PAGES:
                cold[name] = visit(page, f"{url}/{path}")
            elements, sockets = {}, {}
            for name, path in PAGES + SECTION_RELOADS:
                runs, sockets[name] = [], []
                for _ in range(args.rounds):
                    runs.append(visit(page, f"{url}/{path}"))
                    sockets[name].append(socket_created(page))
                warm[name] = summary(runs)
                settle(page)
                elements[name] = count_elements(page)
            res["page_first_visit_s"], res["page_reload_s"], res["page_elements"] = cold, warm, elements
            res["page_socket_created_s"] = {k: statistics.median(v) for k, v in sockets.items()}
            nav = {}
            titles = {"overview": "Overview", "agent": "Agent", "neighbours": "Neighbours", "P@k": "P@k",
                      "procrustes": "Procrustes UMAP", "why": "Why they align"}
            page.goto(f"{url}/")
            settle(page)
            for name, _ in PAGES[1:] + PAGES[:1]:
                times = []
                for r in range(args.rounds):
                    if r:  # go elsewhere first
                        page.get_by_role("link", name=titles["overview" if name != "overview" else "P@k"]).click()
                        settle(page)
                    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=titles[name], exact=True)
                    times.append(interact(page, link.click, name=f"navigation to {name}"))
                    settle(page)
                nav[name] = summary(times)
            res["page_in_app_navigation_s"] = nav
            res["rss_after_pages_mb"] = rss_mb(proc.pid)

            inter: dict[str, list[tuple[float, float]]] = {}

            def measure(name, actions):
                """Time each action (one per round), letting the page settle in between."""
                inter[name] = []
                for act in actions:
                    inter[name].append(interact(page, act, name=name))
                    settle(page)

            instr = quote_plus("go to the red ball")
            # neighbours: k slider (keyboard), instruction (selectbox: typed, then Enter is the timed event)
            page.goto(f"{url}/neighbours?instruction={instr}&k=10")
            settle(page)
            slider = page.get_by_role("slider").first
            measure("neighbours: k slider", [lambda: slider.press("ArrowRight")] * args.rounds)
            targets = ["pick up the green key", "open the blue door", "go to a grey box", "pick up a purple ball",
                       "open the red door", "go to the yellow key"]

            def pick(target):
                box = page.get_by_test_id("stMain").get_by_role("combobox").first  # the page's, not the sidebar's
                box.click()
                box.fill(target)
                return lambda: page.keyboard.press("Enter")

            inter["neighbours: instruction"] = []
            for target in (targets * args.rounds)[: args.rounds]:
                enter = pick(target)
                inter["neighbours: instruction"].append(interact(page, enter))
                settle(page)
            # P@k: k slider (heatmap + table)
            page.goto(f"{url}/precision?k=15")
            settle(page)
            sl = page.get_by_role("slider").first
            measure("P@k: k slider", [lambda: sl.press("ArrowRight")] * args.rounds)
            # Procrustes: colour by
            page.goto(f"{url}/procrustes")
            settle(page)
            factors = (["object", "colour", "determiner", "verb"] * args.rounds)[: args.rounds]
            measure("procrustes: colour by",
                    [lambda f=f: page.get_by_role("radio", name=f, exact=True).first.click() for f in factors])
            # Why they align: k slider (learning curves, factor picture, summary), the curve's metric (segmented)
            page.goto(f"{url}/why?k=15&metric=pk")
            settle(page)
            ws = page.get_by_role("slider").first
            measure("why: k slider", [lambda: ws.press("ArrowRight")] * args.rounds)
            if page.get_by_role("radio", name="CKA", exact=True).count():  # only with trajectories shipped
                curves = (["CKA", "RSA", "P@k of the selected instruction", "P@k"] * args.rounds)[: args.rounds]
                measure("why: curve metric",
                        [lambda c=c: page.get_by_role("radio", name=c, exact=True).first.click() for c in curves])
            else:
                print("why: no trajectories in assets/trajectories: the curve-metric interaction is not measured")
            sections = (["2. What organises each space", "3. How robust is each number? The multiverse",
                         "1. Alignment across learning"] * args.rounds)[: args.rounds]
            measure("why: section tab", [lambda t=t: page.get_by_role("tab", name=t, exact=True).click()
                                         for t in sections])
            # Agent: step button (fragment rerun) on a cached episode; and a new (uncached) rollout
            page.goto(f"{url}/agent?instruction={instr}&env=0")
            settle(page)
            if page.get_by_role("button", name="▶", exact=True).count():
                step = page.get_by_role("button", name="▶", exact=True)
                measure("agent: step", [step.click] * args.rounds)
                env_box = page.get_by_label("Environment seed", exact=True).and_(
                    page.get_by_test_id("stNumberInputField"))
                env_box.fill("7")
                res["agent_uncached_rollout_s"] = interact(page, lambda: env_box.press("Enter"))
                settle(page)
                env_box.fill("0")
                res["agent_cached_rollout_s"] = interact(page, lambda: env_box.press("Enter"))
                settle(page)
            res["interaction_s"] = {k: summary(v) for k, v in inter.items()}
            for name, path in PAGES:  # every page once more, then memory
                visit(page, f"{url}/{path}")
            res["rss_after_all_mb"] = rss_mb(proc.pid)
            paths = dict(PAGES + SECTION_RELOADS)
            res["peer_s"], res["peer_socket_created_s"], res["floor_differs"] = measure_peer(
                b, args.rounds, like={name: (paths[name], counts) for name, counts in elements.items()})
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    timing: dict[str, list[float]] = {}
    for page_name, total in timing_records(Path(log.name).read_text()):
        timing.setdefault(page_name, []).append(total)
    names = {"overview": "overview", "agent": "agent", "neighbours": "neighbours", "precision": "P@k",
             "procrustes": "procrustes", "why": "why"}
    res["server_script_s"] = {names.get(k, k): {"median": statistics.median(v), "max": max(v), "runs": len(v)}
                              for k, v in timing.items()}
    print(f"machine: {res['machine']}")
    print(f"server healthy after {res['server_healthy_s']:.2f} s; idle RSS {res['rss_idle_mb']}")
    print("Seconds. 'done' = the app's script finished in the browser; 'settled' = nothing on screen changed for "
          f"{QUIET_MS} ms after it (time of the last change). Medians over {args.rounds} rounds, max in brackets.")
    print(f"{'page':<12} {'first load':>11} {'reload done/settled':>26} {'in-app nav done/settled':>30} "
          f"{'server median/max':>18}")
    for name, _ in PAGES:
        sv = res["server_script_s"].get(name, {})
        fd, fs = res["page_first_visit_s"][name]
        print(f"{name:<12} {fs:>10.2f}s {fmt(res['page_reload_s'][name]):>26} "
              f"{fmt(res['page_in_app_navigation_s'][name]):>30} "
              f"{sv.get('median', float('nan')):>9.3f}/{sv.get('max', float('nan')):.3f}")
    for k, v in res["interaction_s"].items():
        print(f"interaction {k:<26} {fmt(v)}")
    for name, _ in SECTION_RELOADS:
        print(f"reload {name:<26} {fmt(res['page_reload_s'][name])}")
    print("websocket created after a reload (s from navigation; a page other than the main one first probes its own "
          "path, streamlit#7074): " + ", ".join(f"{k} {v:.3f}" for k, v in res["page_socket_created_s"].items()))
    for k in ("agent_uncached_rollout_s", "agent_cached_rollout_s"):
        if res.get(k):
            print(f"{k:<38} done {res[k][0]:.2f} s, settled {res[k][1]:.2f} s")
    peer = res["peer_s"]
    print("peer (bench/peer_app.py: the smallest Streamlit app, same browser, same run), done/settled:")
    for k, v in peer.items():
        print(f"  {k:<20} {fmt(v)}")
    print("  websocket created after a reload (s from navigation): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["peer_socket_created_s"].items()))
    floor_i, floor_r = peer["slider"]["settled_median"], peer["reload plotly"]["settled_median"]
    print("ratio ALVA / peer (settled medians): interactions over the peer slider, reloads over the peer page with "
          "one Plotly chart")
    for k, v in res["interaction_s"].items():
        print(f"  interaction {k:<26} {v['settled_median'] / floor_i:.2f}x")
    for name, _ in PAGES + SECTION_RELOADS:
        print(f"  reload {name:<31} {res['page_reload_s'][name]['settled_median'] / floor_r:.2f}x")
    print("the same-elements floor: bench/peer_multipage.py, a multipage app with the page's own count of every "
          "kind of element (charts, tables, texts, widgets, tabs, expanders, columns; its sidebar's too) at a path of "
          "the same depth, reloaded and its slider moved (every element redrawn); ALVA / that floor, settled "
          "medians (the query asked of the floor in brackets):")
    page_of = {"neighbours": "neighbours", "P@k": "P@k", "procrustes": "procrustes", "why": "why", "agent": "agent"}
    for name, _ in PAGES + SECTION_RELOADS:
        f = peer.get(f"reload like {name}")
        if f:
            ratio = res["page_reload_s"][name]["settled_median"] / f["settled_median"]
            print(f"  reload {name:<12} floor {f['settled_median']:.3f} s -> {ratio:.2f}x   "
                  f"({peer_query(res['page_elements'][name])})")
            if res["floor_differs"].get(name):  # e.g. the floor's own slider, on a page without one
                print(f"  {'':<19} counts that differ on the floor, {{kind: (page, floor)}}: "
                      f"{res['floor_differs'][name]}")
    for k, v in res["interaction_s"].items():
        f = peer.get(f"slider like {page_of.get(k.split(':')[0], '')}")
        if f:
            print(f"  interaction {k:<26} floor {f['settled_median']:.3f} s -> "
                  f"{v['settled_median'] / f['settled_median']:.2f}x")
    print(f"RSS after every page: {res['rss_after_pages_mb']}; after interactions: {res['rss_after_all_mb']}")
    res["lost_inputs"] = LOST_INPUTS
    print(f"inputs that started no rerun within {START_WAIT_S:.0f} s (repeated): {len(LOST_INPUTS)}"
          + (f" ({'; '.join(LOST_INPUTS)})" if LOST_INPUTS else ""))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

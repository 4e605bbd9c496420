"""Load benchmark: many visitors at once on one dashboard server.

    python bench/load.py [--visitors 10] [--seconds 120] [--no-peer] [--json bench/out/load.json]

Starts ``streamlit run app.py`` on 127.0.0.1 (a free port; the shipped assets, this machine's cache) and one
headless Chromium (``/usr/bin/chromium``) whose DevTools endpoint listens on 127.0.0.1 only; nothing leaves the
loopback. Each visitor is a thread with its own Playwright connection to that one browser (Playwright's sync API
belongs to the thread that made it) and its own browser context, hence its own cookies and its own Streamlit
session. Each visitor opens the app once; then, until ``--seconds`` have passed, it walks every page in turn with
the sidebar's links (each visitor starts on a different page) and moves that page's controls: Neighbours k slider
and instruction, P@k k slider, Procrustes colouring, the Agent's step button; the Overview has none. The server
is warmed first by one visit of every page (not counted), as a running deployment would be, and the visitors
arrive ``--arrival`` seconds apart.

The visitors' browsers share this machine's CPUs with the server (on a real deployment they would not), so the
browser side is kept light: Playwright checks its wait conditions every 100 ms instead of on every animation
frame of each page (what it notices is unchanged: every time is read from the page's own recorders), visitors
move between pages in the app rather than reloading it (no new parse of the app's JavaScript per page), and a page
load, or a screen that keeps changing after a rerun, may take up to 120 s before it counts as an error (its time
is reported either way).

Measured with bench/app.py's recorders and helpers (the same ``visit``/``interact``/``settle`` code, imported):

* **interaction time**: from the visitor's input event (a control, or a sidebar link) to the end of the rerun in
  the browser ("done") and to the last change on screen ("settled"); p50 and p95 over every interaction of every
  visitor, and per kind; target p95 <= 1 s;
* **first page loads** (navigation start to done / settled), p50 and p95, for reference;
* **errors** (target 0): an exception shown on a page, a step that failed or timed out, a traceback in the
  server's log; inputs that started no rerun are reported apart (bench/app.py retries them);
* **the server's peak resident memory** (VmHWM from /proc; target <= 1.5 GB), and its RSS sampled every 0.5 s;
* the server-side script time of every full run (app.py's ``[alva-timing]`` lines): what the server itself spent,
  apart from the browsers';
* the load average before and after (the figures depend on what else the machine runs).

**The peer under the same load** (skip with ``--no-peer``): the same number of visitors, the same browser, the
same time, on bench/peer_app.py (``?plotly=1&table=1``: the smallest Streamlit app with a slider, a table and a
Plotly chart), each moving its slider step after step. It is the framework's floor for this many visitors on this
machine (websocket, script run, React render, and the browsers' own share of the CPUs); ALVA's p50/p95 are
printed as ratios to it.

**The same-elements floor under the same load** (after the peer; needs the warm-up, where each ALVA page's
elements are counted with bench/app.py's ``count_elements``): bench/peer_multipage.py, a multipage app whose pages
are drawn with those counts (``PEER_PAGES``), walked by the same number of visitors in the same order with the
sidebar's links, each page's slider moved as many times as the ALVA visitor moves that page's controls
(:data:`FLOOR_WALK`). What ALVA's tail costs beyond it is its own work; what the floor costs is Streamlit showing
that many elements to that many visitors on this machine. Printed as ratios, overall and for sidebar navigation.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from urllib.parse import quote_plus

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_app", REPO / "bench" / "app.py")
bench_app = importlib.util.module_from_spec(_spec)  # bench/app.py's recorders and helpers (not the dashboard's app.py)
_spec.loader.exec_module(bench_app)
# Under this load a page's figures may take longer than bench/app.py's 10 s to stop changing (each new browser
# context parses Plotly's 4.7 MB bundle before its first Plotly chart mounts): the time is measured, up to the
# page-load limit below, and counted in the percentiles; only beyond it is it an error.
bench_app.QUIET_TIMEOUT_MS = 120_000

TARGET_P95_S, TARGET_RSS_MB = 1.0, 1536
POLL_MS = 100  # how often Playwright evaluates bench/app.py's wait conditions in a page
NAVIGATION_TIMEOUT_MS = 120_000
INSTRUCTIONS = ["pick up the green key", "open the blue door", "go to a grey box", "pick up a purple ball",
                "open the red door", "go to the yellow key"]
FACTORS = ["object", "colour", "determiner", "verb"]
NAVIGATION = "navigation to"  #: how a sidebar link's interaction is named (then the page's name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_browser() -> tuple[subprocess.Popen, str, str]:
    """One headless Chromium with its DevTools endpoint on 127.0.0.1; (process, endpoint URL, profile dir)."""
    port, profile = _free_port(), tempfile.mkdtemp(prefix="alva-load-chromium-")
    proc = subprocess.Popen([bench_app.CHROMIUM, "--headless=new", f"--remote-debugging-port={port}",
                             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}", *bench_app.ARGS,
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/json/version", timeout=1).read()
            return proc, url, profile
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chromium's DevTools endpoint did not come up in 30 s")


class Visitor(threading.Thread):
    """One visitor: its own Playwright and browser context; opens the app once, then until ``deadline`` moves
    from page to page with the sidebar's links (as a visitor does; no reload) and moves each page's controls."""

    def __init__(self, i: int, cdp: str, url: str, start: float, deadline: float):
        super().__init__(name=f"visitor-{i}", daemon=True)
        self.i, self.cdp, self.url, self.start_at, self.deadline = i, cdp, url, start, deadline
        self.rng = random.Random(i)
        self.interactions: list[tuple[str, float, float]] = []  # (what, done s, settled s)
        self.loads: list[tuple[str, float, float]] = []
        self.errors: list[str] = []
        self.steps = 0

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        time.sleep(max(0.0, self.start_at - time.monotonic()))
        try:
            with sync_playwright() as p:
                page = new_page(p, self.cdp)
                walk = self.walk()
                j, opened = self.i, False
                while time.monotonic() < self.deadline:
                    step = walk[j % len(walk)] if opened else self.open
                    j += opened
                    try:
                        step(page)
                        opened = True
                        if page.locator("[data-testid='stException']").count():
                            self.errors.append(f"{step.__name__}: exception shown on {page.url}")
                    except Exception as e:  # a timeout or a failed step is an error the visitor saw
                        first = (str(e).splitlines() or [""])[0][:200]
                        self.errors.append(f"{step.__name__}: {type(e).__name__}: {first}")
                    self.steps += 1
                page.context.close()
        except Exception:
            self.errors.append("visitor crashed: " + traceback.format_exc(limit=3))

    # ------------------------------------------------------------------ what a visitor does on each page
    def walk(self) -> list:
        """The steps a visitor takes in turn after opening the app (it starts at step ``i``)."""
        return [self.neighbours, self.precision, self.procrustes, self.agent, self.overview]

    def open(self, page) -> None:
        """Open the app (the Overview) in a fresh tab: a page load."""
        self.loads.append(("first visit", *bench_app.visit(page, self.url + "/")))
        bench_app.settle(page)

    def _interact(self, page, what: str, action) -> None:
        if time.monotonic() >= self.deadline:
            return
        t = bench_app.interact(page, action, name=what)
        if t is not None:
            self.interactions.append((what, *t))
        bench_app.settle(page)

    def _go(self, page, title: str, name: str) -> None:
        """Follow the sidebar's link ``title``; timed as ``navigation to {name}`` (the ALVA page's name, which
        the floor's visitors use too)."""
        link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)
        self._interact(page, f"{NAVIGATION} {name}", link.click)

    def overview(self, page) -> None:
        self._go(page, "Overview", "overview")

    def neighbours(self, page) -> None:
        self._go(page, "Neighbours", "neighbours")
        slider = page.get_by_role("slider").first
        for key in ("ArrowRight", "ArrowLeft"):
            self._interact(page, "neighbours: k slider", lambda key=key: slider.press(key))
        box = page.get_by_test_id("stMain").get_by_role("combobox").first  # the page's, not the sidebar's (set)
        box.click()
        box.fill(self.rng.choice(INSTRUCTIONS))
        self._interact(page, "neighbours: instruction", lambda: page.keyboard.press("Enter"))

    def precision(self, page) -> None:
        self._go(page, "P@k", "P@k")
        slider = page.get_by_role("slider").first
        for key in ("ArrowRight", "ArrowLeft"):
            self._interact(page, "P@k: k slider", lambda key=key: slider.press(key))

    def procrustes(self, page) -> None:
        self._go(page, "Procrustes UMAP", "procrustes")
        for f in self.rng.sample(FACTORS, 2):
            self._interact(page, "procrustes: colour by",
                           lambda f=f: page.get_by_role("radio", name=f, exact=True).first.click())

    def agent(self, page) -> None:
        self._go(page, "Agent", "agent")
        step = page.get_by_role("button", name="▶", exact=True)
        if step.count():
            for _ in range(2):
                self._interact(page, "agent: step", step.click)


class PeerVisitor(Visitor):
    """A visitor of bench/peer_app.py (``?plotly=1&table=1``): opens it once, then moves its slider until the
    deadline (the same loop, timing and error recording as :class:`Visitor`)."""

    def walk(self) -> list:
        return [self.slider]

    def open(self, page) -> None:
        self.loads.append(("first visit", *bench_app.visit(page, self.url + "/?plotly=1&table=1")))
        bench_app.settle(page)

    def slider(self, page) -> None:
        slider = page.get_by_role("slider").first
        for key in ("ArrowRight", "ArrowLeft"):
            self._interact(page, "peer: slider", lambda key=key: slider.press(key))


#: the floor's walk (bench/peer_multipage.py): the ALVA pages a visitor walks, in the same order, and how many of
#: its controls the visitor moves on each (moved on the floor as its slider)
FLOOR_WALK = [("neighbours", 3), ("P@k", 2), ("procrustes", 2), ("agent", 2), ("overview", 0)]
#: ALVA page -> the floor page drawn with its element counts (``Page {i}``: its place in bench/app.py's PAGES)
FLOOR_PAGE = {name: i for i, (name, _) in enumerate(bench_app.PAGES)}


class FloorVisitor(Visitor):
    """A visitor of the same-elements floor (bench/peer_multipage.py, each page drawn with the element counts of
    the ALVA page it stands for): the same walk with the sidebar's links, and on each page its slider moved as
    many times as the ALVA visitor moves that page's controls (:data:`FLOOR_WALK`)."""

    def walk(self) -> list:
        def step(name: str, moves: int):
            def go(page) -> None:
                self._go(page, f"Page {FLOOR_PAGE[name]}", name)
                slider = page.get_by_role("slider").first
                for m in range(moves):
                    key = ("ArrowRight", "ArrowLeft")[m % 2]
                    self._interact(page, f"floor: {name} slider", lambda key=key: slider.press(key))

            go.__name__ = name
            return go

        return [step(*s) for s in FLOOR_WALK]


def new_page(playwright, cdp: str):
    """A page in a new browser context of the browser at ``cdp``, with bench/app.py's recorders installed and
    its wait conditions polled every POLL_MS (``page.wait_for_function`` is what bench/app.py's helpers call)."""
    context = playwright.chromium.connect_over_cdp(cdp).new_context(viewport={"width": 1400, "height": 1600})
    context.add_init_script(bench_app.RECORDER)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    wait = page.wait_for_function
    page.wait_for_function = lambda expression, **kw: wait(expression, **{"polling": POLL_MS, **kw})
    return page


def warm_up(cdp: str, url: str) -> tuple[list[str], dict[str, dict[str, int]]]:
    """One visit of every page, until its script run ended (imports, cached loaders, the agent's rollout) and its
    screen settled: not measured. Returns what went wrong (a page that did not finish, which the visitors then meet
    cold) and each page's element counts (bench/app.py's ``count_elements``: what the floor draws)."""
    from playwright.sync_api import sync_playwright

    problems, counts = [], {}
    with sync_playwright() as p:
        page = new_page(p, cdp)
        for name, path in bench_app.PAGES:  # the Agent page's default episode is the one the visitors step through
            try:
                page.goto(f"{url}/{path}")
                bench_app.settle(page)
                counts[name] = bench_app.count_elements(page)
            except Exception as e:
                problems.append(f"/{path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        page.context.close()
    return problems, counts


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if not a.size:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


def run_load(script: str, visitor: type, args, warm: bool, env: dict[str, str] | None = None) -> dict:
    """Serve ``script`` (with ``env``), let ``args.visitors`` visitors of class ``visitor`` at it for
    ``args.seconds``; the measured figures (see the module docstring)."""
    res: dict = {"app": script, "load_avg_before": os.getloadavg()}
    server, url, log = bench_app.serve(script, {"ALVA_TIMING": "1", **(env or {})})
    browser, cdp, profile = None, "", ""
    visitors: list[Visitor] = []
    log_mark = 0
    samples: list[float] = []
    stop = threading.Event()
    lost_before = len(bench_app.LOST_INPUTS)

    def sample_rss() -> None:
        while not stop.is_set():
            try:
                samples.append(bench_app.rss_mb(server.pid)["VmRSS"])
            except (OSError, KeyError):
                pass
            stop.wait(0.5)

    try:
        res["server_healthy_s"] = bench_app.wait_healthy(url)
        browser, cdp, profile = start_browser()
        if warm:
            t = time.perf_counter()
            res["warm_up_problems"], res["page_elements"] = warm_up(cdp, url)
            res["warm_up_s"] = time.perf_counter() - t
        res["rss_before_mb"] = bench_app.rss_mb(server.pid)
        log_mark = Path(log.name).stat().st_size  # the visitors' part of the server's log starts here
        threading.Thread(target=sample_rss, daemon=True).start()
        t0 = time.perf_counter()
        t1 = time.monotonic()
        visitors = [visitor(i, cdp, url, t1 + i * args.arrival, t1 + args.seconds) for i in range(args.visitors)]
        for v in visitors:
            v.start()
        for v in visitors:
            v.join(args.seconds + 600)
            if v.is_alive():
                v.errors.append("did not finish its last step within 600 s of the end")
        res["wall_s"] = time.perf_counter() - t0
        res["rss_after_mb"] = bench_app.rss_mb(server.pid)
    finally:
        stop.set()
        server.terminate()  # by handle, never by name
        server.wait(timeout=15)
        log.close()
        if browser is not None:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
            shutil.rmtree(profile, ignore_errors=True)
    res["load_avg_after"] = os.getloadavg()
    raw_log = Path(log.name).read_bytes()
    server_log = raw_log.decode(errors="replace")
    tracebacks = server_log.count("Traceback (most recent call last)")
    errors = [f"{v.name}: {e}" for v in visitors for e in v.errors]
    n_errors = len(errors) + tracebacks
    errors += [f"server log: {tracebacks} traceback(s), see {log.name}"] if tracebacks else []
    script_s = [total for _, total in bench_app.timing_records(raw_log[log_mark:].decode(errors="replace"))]
    inter = [x for v in visitors for x in v.interactions]
    loads = [x for v in visitors for x in v.loads]
    res.update({
        "errors": errors, "n_errors": n_errors,
        "lost_inputs": list(bench_app.LOST_INPUTS[lost_before:]), "steps": sum(v.steps for v in visitors),
        "n_interactions": len(inter), "n_page_loads": len(loads),
        "interaction_done_s": percentiles([d for _, d, _ in inter]),
        "interaction_settled_s": percentiles([s for _, _, s in inter]),
        "interaction_settled_by_kind_s": {k: percentiles([s for w, _, s in inter if w == k])
                                          for k in sorted(dict.fromkeys(w for w, _, _ in inter))},
        "interaction_settled_s_navigation": percentiles([s for w, _, s in inter if w.startswith(NAVIGATION)]),
        "page_load_done_s": percentiles([d for _, d, _ in loads]),
        "page_load_settled_s": percentiles([s for _, _, s in loads]),
        "server_script_s": percentiles(script_s),
        "rss_peak_mb": max([res.get("rss_after_mb", {}).get("VmHWM", 0.0), *samples]),
        "rss_sampled_max_mb": max(samples, default=float("nan")),
    })
    return res


def report(res: dict, args, label: str) -> None:
    lb, la = res["load_avg_before"], res["load_avg_after"]
    print(f"{label}: {args.visitors} concurrent visitors (browser contexts, one Chromium, one server on "
          f"127.0.0.1) for {args.seconds:.0f} s; {os.cpu_count()} CPUs; load average before "
          f"{lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}")
    if res.get("warm_up_problems"):
        print(f"warm-up ({res['warm_up_s']:.0f} s) did not finish: {'; '.join(res['warm_up_problems'])}")
    print(f"steps (page visits with their interactions): {res['steps']}; interactions: {res['n_interactions']}; "
          f"page loads: {res['n_page_loads']}")
    ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
    print(f"errors: {res['n_errors']} (target 0) {ok(res['n_errors'] == 0)}")
    for e in res["errors"][:20]:
        print(f"  {e}")
    ds, ss = res["interaction_done_s"], res["interaction_settled_s"]
    print(f"interaction time, done:    p50 {ds['p50']:.3f} s, p95 {ds['p95']:.3f} s, max {ds['max']:.3f} s")
    print(f"interaction time, settled: p50 {ss['p50']:.3f} s, p95 {ss['p95']:.3f} s, max {ss['max']:.3f} s "
          f"(target p95 <= {TARGET_P95_S:.1f} s) {ok(ss['p95'] <= TARGET_P95_S)}")
    for k, v in [*res["interaction_settled_by_kind_s"].items(),
                 ("(every navigation)", res["interaction_settled_s_navigation"])]:
        print(f"  {k:<26} n {v['n']:>4}  p50 {v['p50']:.3f} s  p95 {v['p95']:.3f} s")
    pl, ps = res["page_load_done_s"], res["page_load_settled_s"]
    print(f"first page loads: done p50 {pl['p50']:.2f} s, p95 {pl['p95']:.2f} s; settled p50 {ps['p50']:.2f} s, "
          f"p95 {ps['p95']:.2f} s")
    sv = res["server_script_s"]
    print(f"server-side script time of the {sv['n']} full runs: p50 {sv['p50']:.3f} s, p95 {sv['p95']:.3f} s")
    print(f"server peak RSS: {res['rss_peak_mb']:.0f} MB (target <= {TARGET_RSS_MB} MB) "
          f"{ok(res['rss_peak_mb'] <= TARGET_RSS_MB)}; before the visitors "
          f"{res.get('rss_before_mb', {}).get('VmRSS', 0):.0f} MB")
    print(f"inputs that started no rerun within {bench_app.START_WAIT_S:.0f} s (repeated, not errors): "
          f"{len(res['lost_inputs'])}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, default=10, help="concurrent visitors (browser contexts)")
    ap.add_argument("--seconds", type=float, default=120, help="how long the visitors keep going")
    ap.add_argument("--arrival", type=float, default=1.0, help="seconds between two visitors' arrivals")
    ap.add_argument("--no-warmup", action="store_true", help="measure from a cold server")
    ap.add_argument("--no-peer", action="store_true", help="skip the peer app under the same load")
    ap.add_argument("--json", default=str(REPO / "bench" / "out" / "load.json"))
    args = ap.parse_args()
    if not Path(bench_app.CHROMIUM).exists():
        print(f"bench/load.py: {bench_app.CHROMIUM} not found (apt-get install -y chromium); nothing measured")
        return 0
    res: dict = {"visitors": args.visitors, "seconds": args.seconds, "cpus": os.cpu_count()}
    res.update(run_load("app.py", Visitor, args, warm=not args.no_warmup))
    report(res, args, "ALVA (app.py)")
    if not args.no_peer:
        peer = run_load("bench/peer_app.py", PeerVisitor, args, warm=False)
        res["peer"] = peer
        print()
        report(peer, args, "peer (bench/peer_app.py?plotly=1&table=1, its slider)")
        a, b = res["interaction_settled_s"], peer["interaction_settled_s"]
        res["ratio_to_peer"] = {q: a[q] / b[q] for q in ("p50", "p95")}
        print(f"\nratio ALVA / peer under the same load, interaction settled: p50 {a['p50'] / b['p50']:.2f}x, "
              f"p95 {a['p95'] / b['p95']:.2f}x (the peer's p95 is this machine's floor for {args.visitors} "
              f"visitors: {b['p95']:.3f} s)")
        if res.get("page_elements"):  # counted in the warm-up
            layout = {str(FLOOR_PAGE[n]): bench_app.floor_counts(c) for n, c in res["page_elements"].items()}
            floor = run_load("bench/peer_multipage.py", FloorVisitor, args, warm=False,
                             env={"PEER_PAGES": json.dumps(layout)})
            res["floor"] = floor
            print()
            report(floor, args, "same-elements floor (bench/peer_multipage.py, each page with its ALVA page's "
                                "element counts, the same walk, its slider moved for each control)")
            f = floor["interaction_settled_s"]
            nav, fnav = (r["interaction_settled_s_navigation"] for r in (res, floor))
            res["ratio_to_floor"] = {q: a[q] / f[q] for q in ("p50", "p95")}
            print(f"\nratio ALVA / same-elements floor under the same load, interaction settled: p50 "
                  f"{a['p50'] / f['p50']:.2f}x, p95 {a['p95'] / f['p95']:.2f}x; sidebar navigation: p50 "
                  f"{nav['p50'] / fnav['p50']:.2f}x, p95 {nav['p95'] / fnav['p95']:.2f}x; by destination:")
            for kind, v in res["interaction_settled_by_kind_s"].items():
                fv = floor["interaction_settled_by_kind_s"].get(kind)
                if fv:
                    print(f"  {kind:<26} ALVA p50 {v['p50']:.2f} / p95 {v['p95']:.2f} s, floor p50 {fv['p50']:.2f} / "
                          f"p95 {fv['p95']:.2f} s: {v['p50'] / fv['p50']:.2f}x / {v['p95'] / fv['p95']:.2f}x")
        else:
            print("\nno same-elements floor under load: the pages' elements are counted in the warm-up "
                  "(--no-warmup skips both)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

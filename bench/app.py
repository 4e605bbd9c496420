"""Benchmark of the dashboard: page render and widget interaction times with a warm server, and server memory.

    python bench/app.py [--rounds 3] [--port 0] [--json bench/out/app.json]

Starts ``streamlit run app.py`` (shipped assets, this machine's cache), drives Debian's Chromium with Playwright
(``/usr/bin/chromium``), and measures in the browser:

* **page render**: navigation to a page's URL until the app is CONNECTED, its script has finished
  (``data-test-script-state="notRunning"``) and no element is stale; first visit (cold: imports, cached loaders
  filled) and warm visits (median of ``--rounds``); targets: warm <= 1 s;
* **interaction**: a widget change until the rerun it triggers has finished (script state observed going
  ``running`` -> ``notRunning`` by a MutationObserver); target <= 0.3 s (an uncached agent rollout may take
  longer: it is listed separately);
* **in-app navigation**: a click on the sidebar link until the page's script has finished (same session, the
  way a visitor moves between pages);
* **server-side script time** of every full run (app.py + page, from app.py's first line to the end of the
  page), printed by app.py when ``ALVA_TIMING=1``:
  median and max over all runs of the benchmark, first (cold) runs included in the max;
* **resident memory** (VmRSS, VmHWM from /proc) of the server process after visiting every page; target <= 1 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote_plus

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
PAGES = [("overview", ""), ("agent", "agent"), ("neighbours", "neighbours"), ("P@k", "precision"),
         ("procrustes", "procrustes")]
OBSERVER = """() => {
  window.__runs = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__runs.push([app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


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


def visit(page, url) -> float:
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_timeout(50)
    wait_idle(page)
    return time.perf_counter() - t


def interact(page, action, timeout=120.0) -> float:
    """Seconds from the action until the rerun it triggered finished (browser clock, one in-browser wait)."""
    page.evaluate(OBSERVER)
    t0 = page.evaluate("() => performance.now()")
    action()
    page.wait_for_function(
        """t0 => { const r = window.__runs || [];
                   const i = r.findIndex(([s, t]) => s === 'running' && t >= t0);
                   return i >= 0 && r.slice(i).some(([s]) => s === 'notRunning'); }""",
        arg=t0, timeout=timeout * 1000)
    runs = page.evaluate("() => window.__runs")
    i = next(j for j, (s, t) in enumerate(runs) if s == "running" and t >= t0)
    done = next(t for s, t in runs[i:] if s == "notRunning")
    return (done - t0) / 1000


def settle(page):
    page.wait_for_timeout(150)
    wait_idle(page)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=str(REPO / "bench" / "out" / "app.json"))
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"bench/app.py: {CHROMIUM} not found (apt-get install -y chromium); nothing measured")
        return 0
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(f"/tmp/alva-bench-streamlit-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
                             "--server.address=127.0.0.1", f"--server.port={port}",
                             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ALVA_TIMING": "1"})
    url = f"http://127.0.0.1:{port}"
    res: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}}
    try:
        t = time.perf_counter()
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.05)
        res["server_healthy_s"] = time.perf_counter() - t
        res["rss_idle_mb"] = rss_mb(proc.pid)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", *ARGS])
            page = b.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            cold, warm = {}, {}
            for name, path in PAGES:
                cold[name] = visit(page, f"{url}/{path}")
            for name, path in PAGES:
                warm[name] = statistics.median(visit(page, f"{url}/{path}") for _ in range(args.rounds))
            res["page_first_visit_s"], res["page_warm_s"] = cold, warm
            nav = {}
            titles = {"overview": "Overview", "agent": "Agent", "neighbours": "Neighbours", "P@k": "P@k",
                      "procrustes": "Procrustes UMAP"}
            page.goto(f"{url}/")
            settle(page)
            for name, _ in PAGES[1:] + PAGES[:1]:
                times = []
                for r in range(args.rounds):
                    if r:  # go elsewhere first
                        page.get_by_role("link", name=titles["overview" if name != "overview" else "P@k"]).click()
                        settle(page)
                    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=titles[name], exact=True)
                    times.append(interact(page, link.click))
                    settle(page)
                nav[name] = statistics.median(times)
            res["page_in_app_navigation_s"] = nav
            res["rss_after_pages_mb"] = rss_mb(proc.pid)

            inter = {}
            instr = quote_plus("go to the red ball")
            # neighbours: k slider (keyboard), instruction (selectbox)
            page.goto(f"{url}/neighbours?instruction={instr}&k=10")
            settle(page)
            slider = page.get_by_role("slider").first
            slider.focus()
            times = []
            for _ in range(args.rounds):
                times.append(interact(page, lambda: slider.press("ArrowRight")))
                settle(page)
            inter["neighbours: k slider"] = statistics.median(times)
            times = []
            for target in ("pick up the green key", "open the blue door", "go to a grey box")[: args.rounds]:
                def pick(target=target):
                    box = page.get_by_role("combobox").first
                    box.click()
                    box.fill(target)
                    page.keyboard.press("Enter")
                times.append(interact(page, pick))
                settle(page)
            inter["neighbours: instruction"] = statistics.median(times)
            # P@k: k slider (heatmap + table)
            page.goto(f"{url}/precision?k=15")
            settle(page)
            sl = page.get_by_role("slider").first
            sl.focus()
            times = []
            for _ in range(args.rounds):
                times.append(interact(page, lambda: sl.press("ArrowRight")))
                settle(page)
            inter["P@k: k slider"] = statistics.median(times)
            # Procrustes: colour by
            page.goto(f"{url}/procrustes")
            settle(page)
            times = []
            for f in ("object", "colour", "verb")[: args.rounds]:
                times.append(interact(page, lambda f=f: page.get_by_role("radio", name=f, exact=True).first.click()))
                settle(page)
            inter["procrustes: colour by"] = statistics.median(times)
            # Agent: step button (fragment rerun) on a cached episode; and a new (uncached) rollout
            page.goto(f"{url}/agent?instruction={instr}&env=0")
            settle(page)
            if page.get_by_role("button", name="▶", exact=True).count():
                times = []
                for _ in range(args.rounds):
                    times.append(interact(page, lambda: page.get_by_role("button", name="▶", exact=True).click()))
                    settle(page)
                inter["agent: step"] = statistics.median(times)
                env_box = page.get_by_label("Environment seed", exact=True).and_(page.get_by_test_id("stNumberInputField"))
                res["agent_uncached_rollout_s"] = interact(page, lambda: (env_box.fill("7"), env_box.press("Enter")))
                settle(page)
                res["agent_cached_rollout_s"] = interact(page, lambda: (env_box.fill("0"), env_box.press("Enter")))
                settle(page)
            res["interaction_s"] = inter
            for name, path in PAGES:  # every page once more, then memory
                visit(page, f"{url}/{path}")
            res["rss_after_all_mb"] = rss_mb(proc.pid)
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    timing: dict[str, list[float]] = {}
    for line in Path(log.name).read_text().splitlines():
        if line.startswith("[alva-timing]"):
            _, page_name, secs, total = line.split()
            timing.setdefault(page_name, []).append(float(total))
    names = {"overview": "overview", "agent": "agent", "neighbours": "neighbours", "precision": "P@k",
             "procrustes": "procrustes"}
    res["server_script_s"] = {names.get(k, k): {"median": statistics.median(v), "max": max(v), "runs": len(v)}
                              for k, v in timing.items()}
    print(f"machine: {res['machine']}")
    print(f"server healthy after {res['server_healthy_s']:.2f} s; idle RSS {res['rss_idle_mb']}")
    print(f"{'page':<12} {'first load':>11} {'reload':>8} {'in-app nav':>11} {'server median':>14} {'server max':>11}")
    for name, _ in PAGES:
        sv = res["server_script_s"].get(name, {})
        print(f"{name:<12} {res['page_first_visit_s'][name]:>10.2f}s {res['page_warm_s'][name]:>7.2f}s "
              f"{res['page_in_app_navigation_s'][name]:>10.2f}s {sv.get('median', float('nan')):>13.3f}s "
              f"{sv.get('max', float('nan')):>10.3f}s")
    for k, v in res["interaction_s"].items():
        print(f"interaction {k:<28} {v:.3f} s")
    for k in ("agent_uncached_rollout_s", "agent_cached_rollout_s"):
        if k in res:
            print(f"{k:<40} {res[k]:.2f} s")
    print(f"RSS after every page: {res['rss_after_pages_mb']}; after interactions: {res['rss_after_all_mb']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

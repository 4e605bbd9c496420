"""Training speed of the ALM on this machine (a plain script, not a test).

    .venv/bin/python bench/train.py                      # samples/s of the shipped config (+ shipped runs' figures)
    .venv/bin/python bench/train.py --full --seed 0      # a real training run: wall time to reach 0.90 success
    .venv/bin/python bench/train.py --resnet             # resnet-hybrid throughput (random-init weights)
    .venv/bin/python bench/train.py --record-overhead 300 --skip-symbolic   # cost of --record (trajectories)

Figures printed:
1. forward+backward+AdamW samples/s for the shipped config (symbolic vision, batch 256) at 1 and 2 torch threads,
   measured over ``--steps`` optimiser steps after 5 warm-up steps; the machine's load average is printed next to
   it because the 2 cores are often shared (the numbers scale with what is left of them);
2. from the shipped manifests (assets/agents/alm-s*.json): the training time and samples/s of each shipped run and
   the training time at which its quick success check (2 episodes per instruction, eval-seed 1) first reached
   0.90 -- these were measured while the run happened, under whatever load the machine had then;
3. with ``--full``: trains the shipped config from scratch (``python -m core train`` with the shipped options
   and its checkpoint written under bench/out/) and reports the same figure for this machine now;
4. with ``--record-overhead N``: the shipped config (1 thread, the cached 50k demos, no quick evals) trained for N
   steps without and with ``record`` (E_L snapshots at core.dynamics.snapshot_steps), alternating, ``--repeats``
   times each; prints the training time of each (best of the repeats: the least disturbed by other jobs) and the
   ratio (target <= 1.05). The first 200 steps hold a snapshot every 10 steps, later ones every 50, so a short run
   is denser in snapshots than a shipped run: the figure is an upper bound. Also the cost of one snapshot and the
   estimate for a shipped 1500-step run (47 snapshots) from it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def samples_per_s(threads: int, batch: int, steps: int, vision: str = "symbolic") -> float:
    import torch
    import torch.nn.functional as F

    from core.agent import AgentConfig, build_agent
    from core.demos import generate
    from core.train import demo_tensors

    torch.set_num_threads(threads)
    data = demo_tensors(generate(2000 if vision == "symbolic" else 200, progress=False))
    cfg = AgentConfig(vision=vision, resnet_weights="random") if vision != "symbolic" else AgentConfig()
    agent = build_agent(cfg, 0).train()
    opt = torch.optim.AdamW(agent.parameters(), 1e-3)
    n = len(data["actions"])
    g = torch.Generator().manual_seed(0)
    for i in range(steps + 5):
        if i == 5:
            t = time.perf_counter()
        idx = torch.randint(0, n, (batch,), generator=g)
        loss = F.cross_entropy(agent(data["instr"][idx], data["images"][idx], data["directions"][idx],
                                     data["prev_actions"][idx]), data["actions"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def resnet_short_run(minutes: float, episodes: int, batch: int = 16, threads: int = 1) -> None:
    """Train resnet-hybrid (random-init weights: no ImageNet weights on this machine) for a time box with the
    shipped optimiser settings, then evaluate on ``episodes`` held-out episodes (1 per instruction, spread over
    the set) next to a uniform random policy on the same episodes."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from core.agent import AgentConfig, build_agent
    from core.demos import generate
    from core.env import ACTION_NAMES, episode_seed, make_env
    from core.instructions import instruction_set
    from core.train import demo_tensors, run_episodes

    torch.set_num_threads(threads)
    data = demo_tensors(generate(50_000, progress=False))
    agent = build_agent(AgentConfig(vision="resnet-hybrid", resnet_weights="random"), 0).train()
    opt = torch.optim.AdamW(agent.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    n, steps, t0 = len(data["actions"]), 0, time.perf_counter()
    while time.perf_counter() - t0 < minutes * 60:
        idx = torch.randint(0, n, (batch,), generator=g)
        logits = agent(data["instr"][idx], data["images"][idx], data["directions"][idx], data["prev_actions"][idx])
        loss = F.cross_entropy(logits, data["actions"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps % 10 == 0:
            print(f"  resnet-hybrid step {steps}: loss {loss.item():.3f}", flush=True)
    dt = time.perf_counter() - t0
    items = instruction_set()
    jobs = [(items[(i * 108) // episodes], episode_seed("eval", 0, i)) for i in range(episodes)]
    t1 = time.perf_counter()
    ok, _ = run_episodes(agent.eval(), jobs)
    t_eval = time.perf_counter() - t1
    rng = np.random.default_rng(0)
    rand = []
    for text, seed in jobs:
        env = make_env(text, seed)
        while True:
            _, _, term, trunc, info = env.step(int(rng.integers(0, len(ACTION_NAMES) - 1)))
            if term or trunc:
                rand.append(info["success"])
                break
    print(f"resnet-hybrid short run: {steps} steps x {batch} in {dt:.0f} s ({steps * batch / dt:.1f} samples/s, "
          f"{threads} threads), last loss {loss.item():.3f}; success {ok.mean():.3f} on {episodes} held-out "
          f"episodes (evaluation took {t_eval:.0f} s); uniform random policy on the same episodes "
          f"{np.mean(rand):.3f}")


def record_overhead(steps: int, repeats: int) -> None:
    """Training time of the shipped config for ``steps`` steps without / with ``record`` (see the docstring)."""
    import torch

    from core.agent import build_agent, instruction_embeddings
    from core.dynamics import snapshot_steps
    from core.train import TrainConfig, train

    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        for record in (False, True):
            out = ROOT / "bench" / "out" / f"overhead-{'record' if record else 'plain'}-s0.pt"
            agent = train(TrainConfig(seed=0, steps=steps, threads=1, eval_every=0, final_episodes=1,
                                      progress=False, out=str(out), record=record),
                          command="bench/train.py --record-overhead")
            times[record].append(agent.manifest["training_time_s"])
            print(f"  repeat {r + 1}: record={record}: {steps} steps in {times[record][-1]:.1f} s "
                  f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    plain, rec = min(times[False]), min(times[True])
    n_snap = len(snapshot_steps(steps))
    torch.set_num_threads(1)
    net = build_agent(TrainConfig().agent_config(), 0)
    t = time.perf_counter()
    for _ in range(20):
        instruction_embeddings(net, net.config.instructions)
    per_snap = (time.perf_counter() - t) / 20
    shipped = len(snapshot_steps(1500))
    print(f"record overhead, shipped config, {steps} steps ({n_snap} snapshots), best of {repeats}: "
          f"{plain:.1f} s without, {rec:.1f} s with recording -> ratio {rec / plain:.3f} (target <= 1.05); "
          f"one snapshot (108 x 128 E_L) {per_snap * 1e3:.1f} ms; a shipped 1500-step run: {shipped} snapshots "
          f"= {shipped * per_snap:.1f} s vs ~{plain / steps * 1500:.0f} s of training "
          f"({shipped * per_snap / (plain / steps * 1500):.2%}); load average {os.getloadavg()[0]:.2f}")


def shipped_figures() -> None:
    from core import store

    rows = sorted((store.assets_dir() / "agents").glob("*.json"))
    if not rows:
        print("no shipped agent manifests in assets/agents/")
        return
    print(f"{'agent':<24}{'steps':>7}{'train s':>9}{'samples/s':>11}{'to 0.90 (s)':>13}{'success':>9}")
    for p in rows:
        m = json.loads(p.read_text())
        first = next((h for h in m.get("history", []) if h["quick_success"] >= 0.90), None)
        reach = f"{first['train_time_s']:.0f}" if first else "never"
        print(f"{p.stem:<24}{m['optimizer_steps']:>7}{m['training_time_s']:>9.0f}{m['samples_per_s']:>11.0f}"
              f"{reach:>13}{m['success']['overall']:>9.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="timed optimiser steps per throughput figure")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--full", action="store_true", help="train the shipped config and time it to 0.90")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resnet", action="store_true", help="also measure resnet-hybrid (batch 16)")
    p.add_argument("--resnet-minutes", type=float, default=0,
                   help="> 0: a time-boxed resnet-hybrid training run, then its success on a few episodes")
    p.add_argument("--resnet-episodes", type=int, default=27)
    p.add_argument("--skip-symbolic", action="store_true")
    p.add_argument("--record-overhead", type=int, default=0, metavar="N",
                   help="> 0: training time of N steps without / with --record (needs the cached 50k demos)")
    p.add_argument("--repeats", type=int, default=2, help="--record-overhead: runs of each, alternating")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for threads in () if args.skip_symbolic else (1, 2):
        sps = samples_per_s(threads, args.batch, args.steps)
        print(f"symbolic, batch {args.batch}, {threads} thread(s): {sps:,.0f} samples/s "
              f"(load average now {os.getloadavg()[0]:.2f})")
    if args.resnet:
        for threads in (1, 2):
            sps = samples_per_s(threads, 16, max(3, args.steps // 10), vision="resnet-hybrid")
            print(f"resnet-hybrid (224x224 RGB, random-init weights), batch 16, {threads} thread(s): "
                  f"{sps:,.1f} samples/s")
    if args.resnet_minutes > 0:
        resnet_short_run(args.resnet_minutes, args.resnet_episodes)
    if args.record_overhead > 0:
        record_overhead(args.record_overhead, args.repeats)
    print("\nshipped runs (measured while they trained):")
    shipped_figures()
    if args.full:
        from core.train import TrainConfig, train

        out = ROOT / "bench" / "out" / f"alm-s{args.seed}.pt"
        t = time.perf_counter()
        agent = train(TrainConfig(seed=args.seed, threads=1, eval_every=250, out=str(out)),
                      command="bench/train.py --full")
        wall = time.perf_counter() - t
        m = agent.manifest
        first = next((h for h in m["history"] if h["quick_success"] >= 0.90), None)
        print(f"\nfull run: {m['optimizer_steps']} steps, training {m['training_time_s']:.0f} s "
              f"({m['samples_per_s']:.0f} samples/s), wall {wall:.0f} s incl. demos and final evaluation; "
              f"quick success first >= 0.90 at " + (f"{first['train_time_s']:.0f} s of training (step "
                                                    f"{first['step']})" if first else "never")
              + f"; final success {m['success']['overall']:.3f} ({m['success']['episodes']} episodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Compositional generalisation (held-out splits) and language-initialised word embeddings: the analysis.

The agents come from ``sweeps/generalisation.toml`` (``python -m core sweep sweeps/generalisation.toml``): the
shipped alm recipe (1,500 steps of 256 on the same 50,000 demos, E_L recorded), with

- **splits** (:mod:`core.splits`): identity init, each split held out, 3 seeds; the held-out instructions' demos
  are dropped, the agent still embeds and executes them;
- **word inits** (:mod:`core.word_init`): random, smollm2, minilm, spacy, 3 seeds each, all trained on split
  ``colour-object`` (so held-out success on that split is measured on the same agents); identity is the splits'
  ``colour-object`` group.

:func:`ship` reads the sweep's results (checkpoints, manifests, trajectories) and writes the compact files the
dashboard reads (``assets/generalisation/``); :func:`load` reads them back. Conventions (every table):

- E_L: the agent's instruction embedding (``core.agent.POOLING``, ``core.agent.LAYER``), final = the float32
  checkpoint after the last step, initial = step 0 of the recorded trajectory (exact float32, the untrained agent).
- P@k: ``core.metrics.per_item_precision`` (cosine, self excluded, ties by index), k = :data:`K` on the full 108;
  "held-out" and "trained" are means of the per-item values over those items; the null shuffles the reference
  model's item identities (:data:`N_PERMUTATIONS`, seed 0) and takes the same mean; p is one-sided.
  Among held-out items only: P@k_h on the held-out rows alone, k_h = :func:`scaled_k` (the full set's k scaled by
  the number of items), with ``core.metrics.permutation_null``.
- Success: the manifest's final evaluation (20 episodes per instruction, env seeds ``episode_seed('eval', 0, i)``,
  disjoint from the demos); trained / held-out = successes over episodes of those instructions.
- Steps to 0.90: the first quick check (every 250 steps; 2 episodes per *trained* instruction, eval-seed 1) at or
  above 0.90; coarse by construction (250-step grid).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import store
from .instructions import instruction_set, metadata

SWEEP = "generalisation"
K = 15
N_PERMUTATIONS = 1000
SUCCESS_BAR = 0.90
REFERENCES: tuple[str, ...] = ("smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2",
                               "spacy-en-core-web-md", "bag-of-words")
INIT_SPLIT = "colour-object"  # the split every word-init group trains on
INIT_ORDER = ("identity", "random", "smollm2", "minilm", "spacy")
FILES = ("runs.csv", "per_instruction.csv", "heldout_alignment.csv", "nearest_trained.csv", "init_alignment.csv",
         "alignment_curves.csv", "held_out_outcomes.csv")
OUTCOME_EPISODES, OUTCOME_SEED = 10, 2  # per held-out instruction; eval seed 2 (not the final evaluation's 0)
OUTCOMES = ("target", "same object, other colour", "same colour, other object", "other object", "nothing")


# ---------------------------------------------------------------------------------------------- locations
def results_dir() -> Path:
    """The shipped files: ``assets/generalisation/``."""
    return store.assets_dir() / "generalisation"


def sweep_results_dir() -> Path:
    """Where the sweep writes its agents: ``<cache>/sweeps/generalisation/``."""
    return store.cache_dir() / "sweeps" / SWEEP


def scaled_k(n_items: int, n: int | None = None, k: int = K) -> int:
    """k for a subset of ``n_items``: ``k`` scaled by (n_items - 1) / (n - 1), at least 1."""
    n = len(instruction_set()) if n is None else n
    return max(1, int(round(k * (n_items - 1) / (n - 1))))


# ---------------------------------------------------------------------------------------------- pure parts
def steps_to(history: Sequence[dict[str, Any]], bar: float = SUCCESS_BAR) -> int | None:
    """The first quick-check step whose success is >= ``bar`` (None if never)."""
    for h in history:
        if h.get("quick_success", 0.0) >= bar:
            return int(h["step"])
    return None


def run_row(manifest: dict[str, Any]) -> dict[str, Any]:
    """One row per trained agent: what it is (split, init, seed) and its success."""
    cfg = manifest["train_config"]
    ho = manifest.get("holdout") or {}
    s = manifest["success"]
    return {"run": store.embedding_file_name(manifest["name"], manifest["seed"]), "name": manifest["name"],
            "seed": int(manifest["seed"]), "split": cfg.get("holdout") or "none", "word_init": cfg["word_init"],
            "success": s["overall"], "success_trained": ho.get("success_trained", s["overall"]),
            "success_held_out": ho.get("success_held_out", np.nan), "n_held_out": len(ho.get("instructions", [])),
            "steps_to_090": steps_to(manifest["history"]), "steps": manifest["optimizer_steps"],
            "training_time_s": manifest.get("training_time_s"), "git_commit": manifest.get("git_commit"),
            "word_init_source": (manifest.get("word_init") or {}).get("model"),
            "word_init_weights_sha256": (manifest.get("word_init") or {}).get("weights_sha256")}


def masked_precision(A, B, mask: np.ndarray, k: int = K, n_permutations: int = N_PERMUTATIONS,
                     seed: int = 0) -> dict[str, float]:
    """Mean per-item P@k over the items in ``mask`` (neighbours drawn from all items), and its null: B's item
    identities shuffled (``n_permutations``, ``seed``), same mean. Returns {observed, null_mean, null_lo, null_hi,
    p} (p one-sided, (1 + #{null >= observed}) / (1 + n_permutations); NaN without permutations)."""
    from .metrics import per_item_precision, permutation_null_items

    A, B, mask = np.asarray(A), np.asarray(B), np.asarray(mask, bool)
    obs = float(per_item_precision(A, B, k)[mask].mean())
    if n_permutations == 0:
        return {"observed": obs, "null_mean": np.nan, "null_lo": np.nan, "null_hi": np.nan, "p": np.nan}
    null = permutation_null_items(A, B, k, mask, n_permutations, seed)
    return {"observed": obs, "null_mean": float(null.mean()), "null_lo": float(np.quantile(null, 0.025)),
            "null_hi": float(np.quantile(null, 0.975)),
            "p": float((1 + (null >= obs - 1e-12).sum()) / (1 + n_permutations))}


def nearest_trained(E, held_mask: np.ndarray, instructions: Sequence[str] | None = None) -> pd.DataFrame:
    """For each held-out item: its nearest *trained* instruction in ``E`` (cosine) and which factors they share.
    Also the chance rate of sharing each factor (the fraction of trained items that share it)."""
    from .metrics import cosine_similarity

    items = list(instruction_set() if instructions is None else instructions)
    meta = metadata(items)
    held_mask = np.asarray(held_mask, bool)
    S = cosine_similarity(np.asarray(E, dtype=np.float64))
    trained = np.flatnonzero(~held_mask)
    rows = []
    for i in np.flatnonzero(held_mask):
        j = trained[int(np.argmax(S[i, trained]))]  # ties: the first trained item in set order
        row = {"instruction": items[i], "nearest_trained": items[j], "cosine": float(S[i, j])}
        for f in ("verb", "determiner", "colour", "object"):
            row[f"shares_{f}"] = bool(meta[f][i] == meta[f][j])
            row[f"chance_{f}"] = float((meta[f].to_numpy()[trained] == meta[f][i]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def outcome_category(target: dict[str, str], end: tuple[str, str] | None) -> str:
    """Which object an episode ended with (:func:`core.env.end_object`) relative to the instruction's target:
    one of :data:`OUTCOMES`. ("open" ends with the box gone or the door open in front: a success shows as
    ``target`` for doors and ``nothing`` for boxes.)"""
    if end is None:
        return "nothing"
    typ, col = end
    if typ == target["object"]:
        return "target" if col == target["colour"] else "same object, other colour"
    return "same colour, other object" if col == target["colour"] else "other object"


def held_out_outcomes(agent, instructions: Sequence[str], episodes: int = OUTCOME_EPISODES,
                      seed: int = OUTCOME_SEED) -> pd.DataFrame:
    """Run ``agent`` greedily on ``instructions`` (``episodes`` each, env seeds ``episode_seed('eval', seed, i)``)
    and say which object each episode ended with: one row per episode (instruction, success, end_type,
    end_colour, outcome)."""
    from .env import episode_seed
    from .train import run_episodes

    items = list(instructions)
    jobs = [(items[e % len(items)], episode_seed("eval", seed, e)) for e in range(len(items) * episodes)]
    ends: list = []
    ok, _ = run_episodes(agent, jobs, outcomes=ends)
    meta = {r.instruction: {"colour": r.colour, "object": r.object} for r in metadata(items).itertuples()}
    return pd.DataFrame({"instruction": [j[0] for j in jobs], "success": ok,
                         "end_type": [e[0] if e else "" for e in ends], "end_colour": [e[1] if e else "" for e in ends],
                         "outcome": [outcome_category(meta[j[0]], e) for j, e in zip(jobs, ends)]})


# ---------------------------------------------------------------------------------------------- building
def _reference_spaces() -> tuple[dict[str, list[np.ndarray]], list[str]]:
    from .controls import load_spaces

    spaces, _, notes = load_spaces([*REFERENCES, "alm", "untrained-alm"])
    return spaces, notes


def _trajectory(source: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, E_L snapshots (T, n, d) float32) of a run's recorded trajectory."""
    from .dynamics import load_trajectory

    tr = load_trajectory(stem.rsplit("-s", 1)[0], int(stem.rsplit("-s", 1)[1]), directory=source / "trajectories")
    return np.asarray(tr.steps), np.asarray(tr.embeddings, dtype=np.float32)


def analyse(runs: dict[str, dict[str, Any]], finals: dict[str, np.ndarray], trajectories: dict[str, tuple],
            refs: dict[str, list[np.ndarray]], n_permutations: int = N_PERMUTATIONS,
            curve_every: int = 1) -> dict[str, pd.DataFrame]:
    """Every table from the runs' manifests (``runs``: stem -> manifest), final E_L (stem -> (n, d)),
    trajectories (stem -> (steps, (T, n, d))) and the reference spaces (name -> seed arrays)."""
    from .metrics import permutation_null, per_item_precision, precision_at_k
    from .splits import get_split

    items = instruction_set()
    meta = metadata(items)
    run_rows, per_instr, held_rows, nearest_rows, init_rows, curve_rows = [], [], [], [], [], []
    ref_names = [r for r in REFERENCES if r in refs]
    for stem, man in sorted(runs.items()):
        row = run_row(man)
        run_rows.append(row)
        pi = man["success"]["per_instruction"]
        held = set((man.get("holdout") or {}).get("instructions", []))
        per_instr += [{"run": stem, "instruction": t, "success": pi[t], "held_out": t in held} for t in items]
        E = finals[stem]
        steps, snaps = trajectories[stem]
        # alignment at the start and end, per reference model (full 108)
        for ref in ref_names:
            B = refs[ref][0]
            init_rows.append({"run": stem, "reference": ref, "initial": precision_at_k(snaps[0], B, K),
                              "final": precision_at_k(E, B, K)})
            for t in range(0, len(steps), curve_every):
                curve_rows.append({"run": stem, "step": int(steps[t]), "reference": ref,
                                   "precision": precision_at_k(snaps[t], B, K)})
        if not held:
            continue
        mask = np.array([t in held for t in items])
        split = get_split(row["split"])
        assert set(split.held_out) == held, f"{stem}: manifest held-out list differs from core.splits"
        k_h = scaled_k(int(mask.sum()))
        others = {**{r: refs[r][0] for r in ref_names}, "untrained (same seed)": snaps[0]}
        if "untrained-alm" in refs:
            others["untrained-alm"] = refs["untrained-alm"][min(row["seed"], len(refs["untrained-alm"]) - 1)]
        for ref, B in others.items():
            h = masked_precision(E, B, mask, K, n_permutations)
            per = per_item_precision(E, B, K)
            among = permutation_null(E[mask], B[mask], n_permutations=n_permutations, seed=0)
            full = {}
            if "alm" in refs and row["seed"] < len(refs["alm"]):  # the same items in the full-data agent
                full = {"held_out_full_data_agent": float(per_item_precision(refs["alm"][row["seed"]], B, K)[mask].mean())}
            held_rows.append({"run": stem, "split": row["split"], "word_init": row["word_init"], "seed": row["seed"],
                              "reference": ref, "k": K, "held_out": h["observed"], "trained": float(per[~mask].mean()),
                              **full, "null_mean": h["null_mean"], "null_hi": h["null_hi"], "p": h["p"],
                              "k_among": k_h, "among_held_out": float(among.observed[k_h - 1]),
                              "among_null_mean": float(among.mean[k_h - 1]), "among_p": among.p_value(k_h),
                              "among_chance": k_h / (int(mask.sum()) - 1)})
        nt = nearest_trained(E, mask, items)
        nt.insert(0, "run", stem)
        nt.insert(1, "split", row["split"])
        nt.insert(2, "word_init", row["word_init"])
        nt.insert(3, "seed", row["seed"])
        nearest_rows.append(nt)
    runs_df = pd.DataFrame(run_rows).sort_values(["split", "word_init", "seed"]).reset_index(drop=True)
    init = pd.DataFrame(init_rows)
    if len(init):
        init["retained"] = init["final"] / init["initial"]
    return {"runs": runs_df, "per_instruction": pd.DataFrame(per_instr),
            "heldout_alignment": pd.DataFrame(held_rows),
            "nearest_trained": pd.concat(nearest_rows, ignore_index=True) if nearest_rows else pd.DataFrame(),
            "init_alignment": init, "alignment_curves": pd.DataFrame(curve_rows)}


# ---------------------------------------------------------------------------------------------- shipping
def _half_checkpoint(src: Path, dest: Path) -> None:
    """Copy an agent checkpoint with its floating-point tensors in float16 (for running it in the dashboard; the
    shipped E_L comes from the float32 original, whose sha256 the manifest keeps)."""
    import torch

    blob = torch.load(src, map_location="cpu", weights_only=True)
    blob["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    blob["manifest"] = {**blob["manifest"], "checkpoint_dtype": "float16",
                        "float32_checkpoint_sha256": store.sha256_file(src),
                        "note": "float16 copy for running the agent; E_L files come from the float32 checkpoint"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    torch.save(blob, tmp)
    tmp.replace(dest)
    store.write_json(dest.with_suffix(".json"), blob["manifest"])


def ship(source: str | Path | None = None, dest: str | Path | None = None, checkpoint_seeds: Sequence[int] = (0,),
         n_permutations: int = N_PERMUTATIONS, progress: bool = True) -> Path:
    """Read the sweep's agents (``source``, default :func:`sweep_results_dir`) and write the shipped files to
    ``dest`` (default :func:`results_dir`): per run its manifest (runs/), initial and final E_L (embeddings/), a
    float16 checkpoint for ``checkpoint_seeds`` (agents/), and the analysis tables (:data:`FILES`) with
    ``manifest.json``. Everything is written to a temporary directory first, then swapped in."""
    from tqdm.auto import tqdm

    source = Path(source) if source is not None else sweep_results_dir()
    dest = Path(dest) if dest is not None else results_dir()
    mans = sorted((source / "agents").glob("*.json"))
    if not mans:
        raise FileNotFoundError(f"no agent manifests in {source / 'agents'}; run "
                                "`python -m core sweep sweeps/generalisation.toml` first")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    runs, finals, trajs = {}, {}, {}
    for p in tqdm(mans, desc="read runs", disable=not progress):
        stem, man = p.stem, store.read_json(p)
        steps, snaps = _trajectory(source, stem)
        runs[stem], finals[stem], trajs[stem] = man, snaps[-1], (steps, snaps)
        store.write_json(tmp / "runs" / f"{stem}.json", man)
        buf = tmp / "embeddings" / f"{stem}.npz"
        buf.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(buf, initial=snaps[0], final=snaps[-1], instructions=np.array(instruction_set()))
        if int(man["seed"]) in checkpoint_seeds:
            _half_checkpoint(p.with_suffix(".pt"), tmp / "agents" / f"{stem}.pt")
    refs, notes = _reference_spaces()
    tables = analyse(runs, finals, trajs, refs, n_permutations=n_permutations)
    from .agent import load_agent

    outs = []
    for stem, man in tqdm(sorted(runs.items()), desc="held-out outcomes", disable=not progress):
        held = (man.get("holdout") or {}).get("instructions") or []
        if held:
            o = held_out_outcomes(load_agent(source / "agents" / f"{stem}.pt"), held)
            g = o.groupby(["instruction", "success", "outcome"], sort=False).size().rename("episodes").reset_index()
            cfg = man["train_config"]
            g.insert(0, "run", stem)
            g.insert(1, "split", cfg.get("holdout"))
            g.insert(2, "word_init", cfg["word_init"])
            g.insert(3, "seed", int(man["seed"]))
            outs.append(g)
    tables["held_out_outcomes"] = pd.concat(outs, ignore_index=True) if outs else pd.DataFrame(
        columns=["run", "split", "word_init", "seed", "instruction", "success", "outcome", "episodes"])
    for name, df in tables.items():
        df.to_csv(tmp / f"{name}.csv", index=False, float_format="%.6g")
    ref_prov = {}
    for r in REFERENCES:
        mp = store.assets_dir() / "embeddings" / f"{r}.json"
        if mp.exists():
            m = store.read_json(mp)
            ref_prov[r] = {k: m.get(k) for k in ("weights_sha256", "pooling", "layer", "source") if k in m}
    spec = Path(__file__).resolve().parents[1] / "sweeps" / f"{SWEEP}.toml"
    store.write_json(tmp / "manifest.json", {
        "what": "issue 16: held-out splits and LM word inits (core.generalisation)",
        "command": "python -m core sweep sweeps/generalisation.toml && python -m core generalisation --ship",
        "sweep_spec_sha256": store.sha256_file(spec) if spec.exists() else None,
        "runs": sorted(runs), "k": K, "n_permutations": n_permutations, "success_bar": SUCCESS_BAR,
        "references": ref_prov, "notes": notes, "conventions": __doc__.split("Conventions (every table):")[1].strip(),
        "git_commit": store.git_commit(), "date": store.now_iso(),
        "checkpoints": "float16 copies of seed(s) " + ", ".join(map(str, checkpoint_seeds))})
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old)
    else:
        tmp.rename(dest)
    return dest


class NotShippedError(FileNotFoundError):
    """The generalisation results are not in assets/generalisation/ (or a file there is missing / corrupt)."""


def load(directory: str | Path | None = None) -> dict[str, Any]:
    """The shipped tables ({name: DataFrame} for :data:`FILES`) and ``manifest``; :class:`NotShippedError` with the
    command that makes them when absent or unreadable."""
    d = Path(directory) if directory is not None else results_dir()
    how = "python -m core sweep sweeps/generalisation.toml && python -m core generalisation --ship"
    if not (d / "manifest.json").exists():
        raise NotShippedError(f"no generalisation results in {d}; compute them with `{how}`")
    out: dict[str, Any] = {}
    try:
        out["manifest"] = store.read_json(d / "manifest.json")
        for f in FILES:
            out[f.removesuffix(".csv")] = pd.read_csv(d / f)
    except Exception as e:
        raise NotShippedError(f"unreadable generalisation results in {d} ({type(e).__name__}: {e}); recompute "
                              f"them with `{how}`") from None
    return out


def initial_final(directory: str | Path | None = None, run: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(initial, final) E_L (n, 128) float32 of a shipped run (``alm-holdout-colour-object-s0`` ...)."""
    d = Path(directory) if directory is not None else results_dir()
    p = d / "embeddings" / f"{run}.npz"
    if not p.exists():
        have = sorted(q.stem for q in (d / "embeddings").glob("*.npz"))
        raise NotShippedError(f"no shipped E_L for run {run!r}; runs: {have or 'none'}")
    with np.load(p, allow_pickle=False) as z:
        return z["initial"].astype(np.float32), z["final"].astype(np.float32)


# ---------------------------------------------------------------------------------------------- summaries
def _mean_sd(x: pd.Series) -> str:
    x = x.dropna()
    return f"{x.mean():.3f} ± {x.std(ddof=1):.3f}" if len(x) > 1 else (f"{x.mean():.3f}" if len(x) else "–")


def split_summary(res: dict[str, Any]) -> pd.DataFrame:
    """Per split (identity init): success on trained / held-out items and held-out vs trained P@k per reference,
    mean ± sd over seeds (strings for display; the numbers are in the tables)."""
    runs = res["runs"]
    runs = runs[(runs.word_init == "identity") & (runs.split != "none")]
    rows = []
    for split, g in runs.groupby("split", sort=False):
        rows.append({"split": split, "seeds": len(g), "held-out items": int(g.n_held_out.iloc[0]),
                     "success (trained)": _mean_sd(g.success_trained),
                     "success (held-out, zero-shot)": _mean_sd(g.success_held_out)})
    return pd.DataFrame(rows)


def statement(res: dict[str, Any], reference: str = "smollm2-135m") -> list[str]:
    """The result in plain sentences, from the shipped tables (every number computed here, nothing typed in)."""
    runs, ha = res["runs"], res["heldout_alignment"]
    lines = []
    ident = runs[(runs.word_init == "identity") & (runs.split != "none")]
    for split, g in ident.groupby("split", sort=False):
        h = ha[(ha.split == split) & (ha.word_init == "identity") & (ha.reference == reference)]
        full = f"; the same items in the full-data agents {h.held_out_full_data_agent.mean():.3f}" \
            if "held_out_full_data_agent" in h and h.held_out_full_data_agent.notna().any() else ""
        lines.append(
            f"{split} ({int(g.n_held_out.iloc[0])} held out, {len(g)} seeds): zero-shot success "
            f"{g.success_held_out.mean():.3f} vs {g.success_trained.mean():.3f} on trained items; P@{K} with "
            f"{reference}: held-out items {h.held_out.mean():.3f} vs trained items {h.trained.mean():.3f}{full} "
            f"(null {h.null_mean.mean():.3f}).")
    return lines


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core generalisation",
                                description="Held-out splits and LM word inits: ship the results and print them.")
    p.add_argument("--ship", action="store_true", help="read the sweep's agents and write assets/generalisation/")
    p.add_argument("--source", default=None, help="the sweep's results dir (default <cache>/sweeps/generalisation)")
    p.add_argument("--permutations", type=int, default=N_PERMUTATIONS)
    p.add_argument("--reference", default="smollm2-135m", help="the reference model of the printed statement")
    args = p.parse_args(argv[1:])
    try:
        if args.ship:
            print(f"wrote {ship(args.source, n_permutations=args.permutations)}", file=sys.stderr)
        res = load()
    except (NotShippedError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(split_summary(res).to_string(index=False))
    print()
    for line in statement(res, args.reference):
        print(line)
    return 0

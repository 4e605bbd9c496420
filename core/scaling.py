"""Alignment as the instruction set grows: the presets of :func:`core.instructions.presets`.

Agents come from ``sweeps/instruction_sets.toml`` (3 seeds per preset; ``paper108`` is the shipped ``alm``).
:func:`embed_references` embeds every instruction of a preset with the offline reference models
(:data:`REFERENCES`, real weights, the registry's default pooling and layer) and the baselines
(:data:`BASELINES`: bag-of-words over the preset's vocabulary, factors extended with location, second object,
second verb and connective); :func:`ship` adds the agents' E_L (trained and untrained, every instruction of the
set), copies their manifests and computes the tables. Everything lands in ``assets/instruction_sets/<slug>/``
(``embeddings/``, ``agents/``) and ``assets/instruction_sets/*.csv`` + ``manifest.json``; ``paper108`` reads the
shipped ``assets/embeddings`` (nothing is duplicated).

Conventions (every table):

- P@k: ``core.metrics`` per-item P@k (cosine, self excluded, ties by index), mean over items.
- **Common 108**: the agent's and the reference's rows of the 108 ``paper108`` instructions (a prefix of every
  preset), k = :data:`K`: does training on a richer language change how the *same* instructions align?
- **Whole set**: all n instructions of the preset, k = :func:`scaled_k` (k scaled by (n - 1) / 107, so that
  k / (n - 1) stays ~0.14), with ``core.metrics.permutation_null`` (the reference's rows shuffled, neighbours
  recomputed; :func:`null_permutations` shuffles, fewer for large n, where the null is tight), chance k / (n - 1).
- Success: each run's final evaluation (``final_episodes`` per instruction, eval seeds disjoint from the demos);
  ``paper108 items`` = the 108 common instructions only.
- Embedding files of the larger presets are stored in float16 (``storage_dtype`` in their manifest).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import store
from .instructions import instruction_set, preset

SWEEP = "instruction_sets"
SETS: tuple[str, ...] = ("paper108", "+colourless", "+location", "+putnext", "+sequence")
REFERENCES: tuple[str, ...] = ("smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2",
                               "spacy-en-core-web-md")
BASELINES: tuple[str, ...] = ("bag-of-words", "factors")
K = 15
N_COMMON = 108
FILES = ("sets.csv", "success.csv", "common108.csv", "whole.csv", "curve.csv")


def slug(name: str) -> str:
    """``+location`` -> ``location`` (directory and model-name suffix)."""
    preset(name)  # InstructionError naming the presets for an unknown one
    return name.lstrip("+")


def root_dir() -> Path:
    return store.assets_dir() / "instruction_sets"


def set_dir(name: str) -> Path:
    """Where a preset's files live (``paper108``: the shipped ``assets/`` itself)."""
    return store.assets_dir() if name == "paper108" else root_dir() / slug(name)


def sweep_results_dir() -> Path:
    return store.cache_dir() / "sweeps" / SWEEP


def memory_for(name: str) -> str:
    """The memory an agent on preset ``name`` gets: ``gru`` where the set has sequences (which part is done is
    not in the view), none otherwise (the paper's step-wise agent)."""
    return "gru" if preset(name).connectives else ""


def agent_name(name: str) -> str:
    """The agent model name trained on a preset: ``alm`` (paper108), ``alm-location``, ``alm-gru-sequence``
    (core.train.default_name, with :func:`memory_for`)."""
    from .train import default_name

    return default_name(grammar="" if name == "paper108" else name, memory=memory_for(name))


def scaled_k(n: int, k: int = K, n_ref: int = N_COMMON) -> int:
    """k for a set of n items: ``k`` scaled by (n - 1) / (n_ref - 1), at least 1 (15 at n = 108)."""
    return max(1, int(round(k * (n - 1) / (n_ref - 1))))


def null_permutations(n: int) -> int:
    """Permutations for the whole-set null: 1,000 up to 200 items, 200 up to 1,000, 20 beyond (the null of a mean
    over n items narrows like 1 / sqrt(n); the bands stay visible at these counts)."""
    return 1000 if n <= 200 else 200 if n <= 1000 else 20


# ---------------------------------------------------------------------------------------------- embedding
def embed_references(name: str, models: Sequence[str] = REFERENCES, progress: bool = True) -> list[Path]:
    """Embed every instruction of preset ``name`` with ``models`` (real weights; MissingWeightsError names the
    install command) and the baselines; writes ``<set_dir>/embeddings/<model>.npz`` (float16) + manifests."""
    from . import baselines
    from .embedders.compute import embed

    if name == "paper108":
        raise ValueError("paper108's embeddings are the shipped assets/embeddings (python -m core embed)")
    g = preset(name)
    items = instruction_set(g)
    out_dir = set_dir(name) / "embeddings"
    written = []
    for m in models:
        E, man = embed(m, items, progress=progress)
        man = {**man, "instruction_set": name, "command": f"python -m core scaling --embed {name}"}
        written.append(store.save_embeddings(m, E, items, man, out_dir, storage="float16"))
    for b in BASELINES:
        E = baselines.bag_of_words(items, g) if b == "bag-of-words" else baselines.factors(items, g)
        man = {"model": b, "family": "baseline", "source": "core.baselines", "weights_sha256": "none",
               "pooling": "n/a", "layer": "n/a", "dtype": "float32", "instruction_set": name,
               "definition": baselines.DEFINITIONS[b] + ("; extended grammar: + location, second object, second "
                                                         "verb, connective blocks" if b == "factors" else ""),
               "columns": (baselines.vocabulary(g) if b == "bag-of-words" else baselines.factor_feature_names(g))}
        written.append(store.save_embeddings(b, E, items, man, out_dir))
    return written


def _agent_embeddings(name: str, source: Path) -> dict[str, Any]:
    """E_L (trained from the checkpoint, untrained from the same config and seed) of every instruction of the
    preset, for each of its runs in the sweep's results; {stem: (trained, untrained, manifest)}."""
    from .agent import build_agent, instruction_embeddings, load_agent

    out = {}
    for p in sorted((source / "agents").glob(f"{agent_name(name)}-s*.pt")):
        agent = load_agent(p)
        items = list(agent.config.instructions)
        untrained = build_agent(agent.config, int(agent.manifest["seed"]))
        out[p.stem] = (instruction_embeddings(agent, items), instruction_embeddings(untrained, items),
                       agent.manifest)
    return out


# ---------------------------------------------------------------------------------------------- analysis
def available_sets() -> list[str]:
    """The presets with shipped embeddings, smallest first (``paper108`` always)."""
    return ["paper108"] + [n for n in SETS[1:] if (set_dir(n) / "embeddings").is_dir()
                           and any((set_dir(n) / "embeddings").glob("*.npz"))]


def spaces(name: str) -> dict[str, list[np.ndarray]]:
    """{model: [seed arrays]} of a shipped preset: references, baselines, ``alm`` and ``untrained-alm`` (seeds in
    order), rows in the preset's instruction order (``instruction_set(preset(name))``)."""
    return _load_set(name)


def _load_set(name: str) -> dict[str, list[np.ndarray]]:
    """{model: [seed arrays]} of a preset: references, baselines, ``alm``, ``untrained-alm`` (rows in set order)."""
    spaces: dict[str, list[np.ndarray]] = {}
    if name == "paper108":
        from .controls import load_spaces

        sp, _, _ = load_spaces([*REFERENCES, *BASELINES, "alm", "untrained-alm"])
        return {k: [np.asarray(x) for x in v[:3]] if k in ("alm", "untrained-alm") else v for k, v in sp.items()}
    d = set_dir(name) / "embeddings"
    items = instruction_set(preset(name))
    for m in (*REFERENCES, *BASELINES):
        if (d / f"{m}.npz").exists():
            E, its, _ = store.read_embeddings(m, d)
            if its != items:
                raise ValueError(f"{d / m}.npz rows are not {name}'s instructions in order")
            spaces[m] = [E]
    for kind, prefix in (("alm", ""), ("untrained-alm", "untrained-")):
        seeds = sorted(d.glob(f"{prefix}{agent_name(name)}-s*.npz"))
        if seeds:
            spaces[kind] = [store.read_embeddings(p.stem, d)[0] for p in seeds]
    return spaces


def bot_failures(name: str, n_demos: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """The expert's failures while making a preset's training demos (the cached dataset the agents used), per
    form: {"episodes", "failures", "per_form": {form: failures}}; None values when the demos are not cached."""
    from .demos import cache_params
    from .env import EnvConfig

    g = preset(name)
    items = instruction_set(g)
    d = store.lookup("demos", cache_params(n_demos, seed, EnvConfig(), items, g))
    if d is None:
        return {"episodes": None, "failures": None, "per_form": {}}
    forms: dict[str, int] = {}
    for instr_id, _, _ in d["failures"]:
        f = g.parse(items[instr_id]).form if name != "paper108" else "paper108"
        forms[f] = forms.get(f, 0) + 1
    return {"episodes": len(d["instruction_ids"]), "failures": len(d["failures"]), "per_form": forms}


def _agent_manifests(name: str) -> list[Path]:
    """The shipped manifests of the preset's agents, in seed-file order (``paper108``: assets/agents/alm-s*)."""
    d = store.assets_dir() / "agents" if name == "paper108" else set_dir(name) / "agents"
    return sorted(d.glob(f"{agent_name(name)}-s*.json"))


def _demo_count(name: str, default: int = 50_000) -> int:
    """The demo count the preset's agents trained on (their manifests' ``train_config.demos``; ``default`` when
    none is shipped)."""
    for p in _agent_manifests(name):
        return int(store.read_json(p)["train_config"]["demos"])
    return default


def analyse(sets: Sequence[str] = SETS, progress: bool = False, permutations: int | None = None
            ) -> dict[str, pd.DataFrame]:
    """The tables (:data:`FILES`) from the shipped embeddings of ``sets`` (``permutations``: the whole-set null's
    shuffles; default :func:`null_permutations` of each set's size)."""
    from .metrics import permutation_null, precision_at_k

    set_rows, common, whole, success = [], [], [], []
    for name in sets:
        g = preset(name)
        n = len(instruction_set(g))
        spaces = _load_set(name)
        bf = bot_failures(name, _demo_count(name))
        set_rows.append({"set": name, "n": n, "vocabulary": len(g.vocabulary), "words": " ".join(g.vocabulary),
                         "k_whole": scaled_k(n), "chance_whole": scaled_k(n) / (n - 1),
                         "agents": len(spaces.get("alm", [])), "demo_episodes": bf["episodes"],
                         "bot_failures": bf["failures"],
                         "bot_failures_per_form": " ".join(f"{k}:{v}" for k, v in sorted(bf["per_form"].items())),
                         # reference models without embeddings of this set: not computed (`scaling --embed`)
                         "references_not_computed": " ".join(m for m in REFERENCES if m not in spaces)})
        refs = [m for m in (*REFERENCES, *BASELINES) if m in spaces]
        for kind in ("alm", "untrained-alm"):
            for seed, A in enumerate(spaces.get(kind, [])):
                for ref in refs + (["untrained-alm"] if kind == "alm" and "untrained-alm" in spaces else []):
                    B = spaces[ref][min(seed, len(spaces[ref]) - 1)] if ref == "untrained-alm" else spaces[ref][0]
                    common.append({"set": name, "n": n, "agent": kind, "seed": seed, "reference": ref, "k": K,
                                   "precision": precision_at_k(A[:N_COMMON], B[:N_COMMON], K)})
                    k, n_perm = scaled_k(n), null_permutations(n) if permutations is None else permutations
                    nul = permutation_null(A, B, n_perm, seed=0)
                    whole.append({"set": name, "n": n, "agent": kind, "seed": seed, "reference": ref, "k": k,
                                  "precision": float(nul.observed[k - 1]), "null_mean": float(nul.mean[k - 1]),
                                  "null_hi": float(nul.upper[k - 1]), "p": nul.p_value(k), "permutations": n_perm,
                                  "chance": k / (n - 1)})
        if progress:
            print(f"analysed {name}", file=sys.stderr)
    common_df, whole_df = pd.DataFrame(common), pd.DataFrame(whole)
    curve = []
    for view, df in (("common 108", common_df), ("whole set", whole_df)):
        if not len(df):
            continue
        for (name, agent, ref), gr in df.groupby(["set", "agent", "reference"], sort=False):
            curve.append({"view": view, "set": name, "n": int(gr.n.iloc[0]), "agent": agent, "reference": ref,
                          "mean": gr.precision.mean(), "sd": gr.precision.std(ddof=1) if len(gr) > 1 else np.nan,
                          "seeds": len(gr), "k": int(gr.k.iloc[0])})
    return {"sets": pd.DataFrame(set_rows), "common108": common_df, "whole": whole_df, "curve": pd.DataFrame(curve),
            "success": _success_table(sets)}


def _success_table(sets: Sequence[str]) -> pd.DataFrame:
    rows = []
    for name in sets:
        for p in _agent_manifests(name):
            m = store.read_json(p)
            s = m["success"]
            pi = s["per_instruction"]
            common = [pi[t] for t in instruction_set()[:N_COMMON] if t in pi]
            row = {"set": name, "run": p.stem, "seed": m["seed"], "overall": s["overall"],
                   "paper108_items": float(np.mean(common)) if common else np.nan,
                   "episodes_per_instruction": s.get("episodes_per_instruction"), "steps": m["optimizer_steps"]}
            for form, v in (s.get("per_form") or {"paper108": s["overall"]}).items():
                row[f"form:{form}"] = v
            rows.append(row)
    return pd.DataFrame(rows)


def ship(sets: Sequence[str] = SETS, source: str | Path | None = None, progress: bool = True,
         permutations: int | None = None) -> Path:
    """Write the agents' E_L and manifests of every trained preset (from the sweep's ``source``), then the tables."""
    source = Path(source) if source is not None else sweep_results_dir()
    for name in sets:
        if name == "paper108":
            continue
        runs = _agent_embeddings(name, source)
        d = set_dir(name)
        for stem, (E, U, man) in runs.items():
            seed = int(man["seed"])
            items = instruction_set(preset(name))
            base = {"family": "agent", "source": man["command"], "pooling": "see core.agent.POOLING",
                    "layer": "see core.agent.LAYER", "dtype": "float32", "instruction_set": name,
                    "checkpoint_sha256": store.sha256_file(source / "agents" / f"{stem}.pt")}
            store.save_embeddings(stem, E, items, {**base, "model": agent_name(name), "weights_sha256":
                                                   base["checkpoint_sha256"]}, d / "embeddings", storage="float16")
            store.save_embeddings(f"untrained-{stem}", U, items, {**base, "model": f"untrained-{agent_name(name)}",
                                                                  "weights_sha256": "init (torch.manual_seed(seed))"},
                                  d / "embeddings", storage="float16")
            store.write_json(d / "agents" / f"{stem}.json", man)
            if progress:
                print(f"shipped {stem} (seed {seed})", file=sys.stderr)
    tables = analyse(sets, progress, permutations)
    root_dir().mkdir(parents=True, exist_ok=True)
    for f, df in tables.items():
        df.to_csv(root_dir() / f"{f}.csv", index=False, float_format="%.6g")
    store.write_json(root_dir() / "manifest.json", {
        "what": "issue 15: alignment as the instruction set grows (core.scaling)",
        "command": "python -m core sweep sweeps/instruction_sets.toml && python -m core scaling --embed ... "
                   "&& python -m core scaling --ship", "sets": list(sets), "k": K,
        "conventions": __doc__.split("Conventions (every table):")[1].strip(),
        "git_commit": store.git_commit(), "date": store.now_iso()})
    return root_dir()


class NotShippedError(FileNotFoundError):
    """assets/instruction_sets/ holds no tables (or an unreadable one)."""


def load() -> dict[str, Any]:
    """The shipped tables ({stem: DataFrame} of :data:`FILES`) and ``manifest``."""
    d = root_dir()
    how = "python -m core scaling --ship"
    if not (d / "manifest.json").exists():
        raise NotShippedError(f"no instruction-set results in {d}; compute them with `{how}`")
    try:
        out: dict[str, Any] = {"manifest": store.read_json(d / "manifest.json")}
        for f in FILES:
            out[f.removesuffix(".csv")] = pd.read_csv(d / f)
    except Exception as e:
        raise NotShippedError(f"unreadable instruction-set results in {d} ({type(e).__name__}: {e}); `{how}`") from None
    return out


def cli(argv: list[str]) -> int:
    from .embedders.errors import EmbedderError
    from .instructions import InstructionError

    p = argparse.ArgumentParser(prog="python -m core scaling", description="Alignment as the instruction set grows.")
    p.add_argument("--embed", nargs="*", metavar="PRESET", default=None,
                   help="embed every instruction of these presets with the reference models and baselines")
    p.add_argument("--models", nargs="*", default=list(REFERENCES), metavar="MODEL",
                   help="--embed: these reference models only (default: all of %(default)s); the baselines always")
    p.add_argument("--ship", action="store_true", help="ship the sweep's agents' E_L and write the tables")
    p.add_argument("--sets", nargs="*", default=list(SETS), help="presets to analyse (default: %(default)s)")
    args = p.parse_args(argv[1:])
    try:
        unknown = sorted(set(args.models) - set(REFERENCES))
        if args.embed and unknown:
            raise ValueError(f"unknown reference model(s) {unknown}; choose from {list(REFERENCES)}")
        for name in args.embed or []:
            for path in embed_references(name, args.models):
                print(f"wrote {path}", file=sys.stderr)
        if args.ship:
            ship(args.sets)
        res = load()
    except (NotShippedError, InstructionError, ValueError, EmbedderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(res["sets"].to_string(index=False))
        c = res["curve"]
        print(c[c.agent == "alm"].pivot_table(index=["view", "reference"], columns="n", values="mean").round(3))
    return 0

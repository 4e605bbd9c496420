"""``python -m core metrics``: P@k, Procrustes, CKA and RSA tables for the embeddings present.

Writes CSV files (each with a ``#`` header stating the conventions and parameters; read them with
``pandas.read_csv(path, comment="#")``) and one ``metrics.json`` holding everything plus provenance.
Models with several seeds (e.g. the agent ``alm-s0..s4``): the pairwise tables use the lowest seed present,
and ``seeds.csv`` gives the mean and spread of every metric over that model's seeds (against the other
model's lowest seed). Permutation nulls, p-values and bootstrap CIs are computed for the pairs that involve
the reference (``--all-pairs-nulls`` for every pair).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import metrics as M
from .store import read_json

DEFAULT_KS = (1, 5, 10, 15)


class CLIError(Exception):
    """A user error with a message for stderr (exit status 2)."""


# ------------------------------------------------------------------------------------------ loading
def _seed_key(seed) -> int:
    return -1 if seed is None else int(seed)


def _load_with_embedders(models: list[str] | None):
    """name -> {seed: array}, name -> manifest, via core.embedders (rows in instruction_set() order)."""
    import core.embedders as E  # lazy: another module; may be absent in old checkouts

    avail = list(E.available())
    names = _select(models, avail)
    spaces, manifests = {}, {}
    for name in names:
        try:
            seeds = dict(E.load_seeds(name))
        except E.EmbedderError:  # a user-added file outside the registry: one matrix
            seeds = {None: E.load_embeddings(name)[0]}
        order = sorted(seeds, key=_seed_key)
        manifests[name] = dict(E.load_embeddings(name, seed=order[0])[1] if order[0] is not None
                               else E.load_embeddings(name)[1])
        spaces[name] = {s: np.asarray(seeds[s], dtype=np.float32) for s in order}
    return spaces, manifests, "core.embedders (shipped assets/embeddings, then cache/embeddings)"


def _load_from_files(models: list[str] | None, directory: Path | None = None):
    """Fallback without core.embedders: every ``*.npz`` in ``core.store.embeddings_dir()``; stems
    ``<name>-s<seed>`` are grouped as seeds of ``<name>``; rows are put in instruction_set() order."""
    from .instructions import instruction_set
    from .store import embeddings_dir, read_embeddings

    d = Path(directory) if directory is not None else embeddings_dir()
    groups: dict[str, dict[Any, str]] = {}
    for p in sorted(d.glob("*.npz")) if d.is_dir() else []:
        if p.name.startswith("."):
            continue
        m = re.match(r"^(.*)-s(\d+)$", p.stem)
        name, seed = (m.group(1), int(m.group(2))) if m else (p.stem, None)
        groups.setdefault(name, {})[seed] = p.stem
    names = _select(models, list(groups))
    target = instruction_set()
    spaces, manifests = {}, {}
    for name in names:
        spaces[name] = {}
        for seed in sorted(groups[name], key=_seed_key):
            E, items, man = read_embeddings(groups[name][seed], d)
            if items != target:
                pos = {t: i for i, t in enumerate(items)}
                if not all(t in pos for t in target):
                    raise CLIError(f"{d / groups[name][seed]}.npz holds another instruction set; recompute it")
                E = E[[pos[t] for t in target]]
            spaces[name][seed] = E
            manifests.setdefault(name, dict(man))
    return spaces, manifests, f"files in {d}"


def _select(models: list[str] | None, avail: list[str]) -> list[str]:
    if not avail:
        raise CLIError("no embeddings present: compute some first (python -m core embed --help, "
                       "python -m core baselines --help, python -m core embed-agent --help)")
    if models is None:
        return avail
    unknown = [m for m in models if m not in avail]
    if unknown:
        raise CLIError(f"unknown or absent model(s): {', '.join(unknown)}. Available: {', '.join(avail)}")
    return list(dict.fromkeys(models))


def read_added(specs: list[str]) -> dict:
    """name -> :class:`core.uploads.UploadedSpace` for each ``--add NAME=PATH`` (validated; CLIError if not)."""
    from .uploads import UploadError, parse_add, read_path

    out: dict = {}
    for spec in specs:
        try:
            name, path = parse_add(spec)
            out[name] = read_path(path, name, taken=out)
        except UploadError as e:
            raise CLIError(f"--add {spec}: {e}") from None
    return out


def load_set_spaces(grammar: str, models: list[str] | None = None):
    """Like :func:`load_spaces`, for a larger instruction-set preset's shipped files (core.scaling)."""
    from . import scaling
    from .instructions import InstructionError, preset

    try:
        preset(grammar)  # InstructionError naming the presets for an unknown one
        if grammar not in scaling.available_sets():
            raise CLIError(f"no shipped embeddings for instruction set {grammar!r}; shipped sets: "
                           f"{', '.join(scaling.available_sets())} (python -m core scaling --embed {grammar})")
        found = scaling.spaces(grammar)
    except InstructionError as e:
        raise CLIError(str(e)) from None
    names = _select(models, list(found))
    spaces = {n: {(None if len(found[n]) == 1 and n not in ("alm", "untrained-alm") else s): a
                  for s, a in enumerate(found[n])} for n in names}
    d = scaling.set_dir(grammar) / "embeddings"
    manifests = {}
    for n in names:
        stem = n if n not in ("alm", "untrained-alm") else f"{'untrained-' if n != 'alm' else ''}" \
            f"{scaling.agent_name(grammar)}-s0"
        manifests[n] = read_json(d / f"{stem}.json") if (d / f"{stem}.json").exists() else {}
    return spaces, manifests, f"shipped {grammar} files in {d}"


def load_spaces(models: list[str] | None = None):
    """(spaces: name -> {seed: array}, manifests, source description). Uses core.embedders when importable,
    else reads every ``*.npz`` of ``core.store.embeddings_dir()``."""
    try:
        import core.embedders  # noqa: F401
    except ImportError:
        return _load_from_files(models)
    return _load_with_embedders(models)


# ------------------------------------------------------------------------------------------ writing
def _write_csv(df: pd.DataFrame, path: Path, header: list[str], index: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w") as f:
        for line in header:
            f.write(f"# {line}\n")
        df.to_csv(f, index=index, float_format="%.6g")
    tmp.replace(path)


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in df.to_dict(orient="records")]


def compute_tables(spaces: dict[str, dict[Any, np.ndarray]], reference: str, ks=DEFAULT_KS,
                   n_permutations: int = 1000, n_boot: int = 1000, seed: int = 0, all_pairs_nulls: bool = False
                   ) -> dict[str, Any]:
    """Every table of the CLI as DataFrames (pure; no I/O)."""
    names = list(spaces)
    primary = {m: spaces[m][next(iter(spaces[m]))] for m in names}
    n = M._same_n(primary)
    ks = [M.check_k(k, n) for k in ks]
    pw = M.pairwise_metrics(primary, ks=ks, debiased_cka=n >= 4)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if b == reference:
                a, b = b, a
            pairs.append((a, b))
    pk_rows, curve_rows, pro_rows = [], [], []
    ksa = np.arange(1, n)
    for a, b in pairs:
        curve = pw.curves.get((a, b), pw.curves.get((b, a)))
        with_nulls = (all_pairs_nulls or reference in (a, b)) and n >= 3
        null = (M.permutation_null(primary[a], primary[b], n_permutations, seed)
                if with_nulls and n_permutations else None)
        boot = M.bootstrap_ci(primary[a], primary[b], ks, n_boot, seed) if with_nulls and n_boot else None
        pr = M.procrustes(primary[a], primary[b], n_permutations if with_nulls else 0, seed)
        for j, k in enumerate(ks):
            row = {"model_a": a, "model_b": b, "k": k, "p_at_k": curve[k - 1], "chance": k / (n - 1),
                   "jaccard": M.mutual_knn_jaccard(primary[a], primary[b], k),
                   "null_mean": np.nan, "null_lo": np.nan, "null_hi": np.nan, "p_value": np.nan,
                   "ci_lo": np.nan, "ci_hi": np.nan}
            if null is not None:
                row.update(null_mean=null.mean[k - 1], null_lo=null.lower[k - 1], null_hi=null.upper[k - 1],
                           p_value=null.p_value(k))
            if boot is not None:
                row.update(ci_lo=boot.lower[j], ci_hi=boot.upper[j])
            pk_rows.append(row)
        curve_rows.append(pd.DataFrame({"model_a": a, "model_b": b, "k": ksa, "p_at_k": curve,
                                        "chance": ksa / (n - 1)}))
        pro_rows.append({"model_a": a, "model_b": b, "disparity": pr.disparity, "p_value": pr.p_value,
                         "n_permutations": pr.n_permutations, "dim_a": pr.dim_a, "dim_b": pr.dim_b,
                         "dim_used": pr.dim_used, "pca": pr.pca, "variance_retained_a": pr.variance_retained_a,
                         "variance_retained_b": pr.variance_retained_b, "cka": pw.cka.loc[a, b],
                         "cka_debiased": pw.cka_debiased.loc[a, b] if pw.cka_debiased is not None else np.nan,
                         "rsa": pw.rsa.loc[a, b]})
    seed_rows = []
    for m in names:
        if len(spaces[m]) < 2:
            continue
        mats = list(spaces[m].values())
        for other in names:
            if other == m:
                continue
            B = primary[other]
            specs = [(f"p_at_{k}", "precision", {"k": k}) for k in ks] + [
                ("procrustes", "procrustes", {}), ("cka", "cka", {}), ("rsa", "rsa", {})]
            for label, metric, kw in specs:
                s = M.seed_spread(mats, B, metric, **kw)
                seed_rows.append({"model": m, "seeds": ",".join(str(x) for x in spaces[m]), "other": other,
                                  "metric": label, "mean": s.mean, "std": s.std, "min": s.min, "max": s.max,
                                  "n_seeds": s.n_seeds})
    return {"pairwise": pw, "precision": pd.DataFrame(pk_rows),
            "curve": pd.concat(curve_rows, ignore_index=True) if curve_rows else pd.DataFrame(),
            "procrustes": pd.DataFrame(pro_rows), "seeds": pd.DataFrame(seed_rows), "n": n, "ks": ks}


def cli(argv: list[str]) -> int:
    from .store import cache_dir, git_commit, now_iso, write_json

    p = argparse.ArgumentParser(
        prog="python -m core metrics", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="output directory (default: <cache_dir>/metrics)")
    p.add_argument("--models", default=None, help="comma-separated model names (default: every model present)")
    p.add_argument("--reference", default=None,
                   help="reference model: nulls/CIs for its pairs (default: the agent 'alm' if present, else the "
                        "first model)")
    p.add_argument("--permutations", type=int, default=1000, help="permutations for the nulls (0: none)")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the P@k CIs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations and bootstrap")
    p.add_argument("--k", default=",".join(map(str, DEFAULT_KS)), help="k values of the P@k table")
    p.add_argument("--all-pairs-nulls", action="store_true", help="nulls and CIs for every pair (slower)")
    p.add_argument("--grammar", default="paper108", metavar="PRESET",
                   help="instruction-set preset whose shipped embeddings to compare (core.scaling.available_sets(); "
                        "default paper108)")
    p.add_argument("--add", action="append", default=[], metavar="NAME=PATH",
                   help="add your own embeddings (.npy, .npz, .csv or .parquet; rows in instruction order or with "
                        "an 'instruction' column) as model NAME; repeatable; read only, never copied to assets/ "
                        "(core.uploads)")
    args = p.parse_args(argv[1:])
    try:
        if args.permutations < 0 or args.boot < 0:
            raise CLIError("--permutations and --boot must be >= 0")
        try:
            ks = [int(x) for x in args.k.split(",") if x.strip()]
        except ValueError:
            raise CLIError(f"--k must be comma-separated integers, got {args.k!r}") from None
        models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
        if args.grammar != "paper108" and args.add:
            raise CLIError("--add compares uploads on paper108's 108 instructions; use it without --grammar")
        added = read_added(args.add)
        if args.grammar != "paper108":
            spaces, manifests, source = load_set_spaces(args.grammar, models)
        else:
            spaces, manifests, source = load_spaces(None if models is None else [m for m in models if m not in added])
        for name, up in added.items():
            spaces[name], manifests[name] = {None: up.embeddings}, up.manifest
        if added:
            source += "; added with --add: " + ", ".join(f"{n} ({up.manifest['file']})" for n, up in added.items())
        names = list(spaces)
        if len(names) < 2:
            raise CLIError(f"need at least two models to compare; present: {', '.join(names) or 'none'}")
        reference = args.reference or ("alm" if "alm" in names else names[0])
        if reference not in names:
            raise CLIError(f"unknown reference {reference!r}. Available: {', '.join(names)}")
        names = [reference] + [m for m in names if m != reference]
        spaces = {m: spaces[m] for m in names}
        tables = compute_tables(spaces, reference, ks, args.permutations, args.boot, args.seed,
                                args.all_pairs_nulls)
    except (CLIError, M.MetricInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except LookupError as e:  # NotComputedError and friends: the message says how to compute
        print(f"error: {e}", file=sys.stderr)
        return 2

    from .instructions import instruction_set, instruction_set_hash, preset

    items = instruction_set(preset(args.grammar))
    out = args.out if args.out is not None else cache_dir() / "metrics" / (
        "" if args.grammar == "paper108" else args.grammar.lstrip("+"))
    n, pw = tables["n"], tables["pairwise"]
    params = {"models": names, "reference": reference, "seeds": {m: [s for s in spaces[m]] for m in names},
              "n_items": n, "ks": tables["ks"], "permutations": args.permutations, "bootstrap": args.boot,
              "seed": args.seed, "all_pairs_nulls": args.all_pairs_nulls, "source": source,
              "instruction_set": args.grammar, "instruction_set_hash": instruction_set_hash(items),
              "git_commit": git_commit(), "date": now_iso()}
    nulls_for = "every pair" if args.all_pairs_nulls else f"pairs with the reference {reference!r}"
    common = [f"ALVA metrics, {now_iso()}, commit {params['git_commit']}; n = {n} items; models: "
              f"{', '.join(names)}; pairwise tables use each model's lowest seed"]
    conv_pk = [M.PRECISION_CONVENTIONS,
               "jaccard = " + M.JACCARD_CONVENTIONS.split(";")[0],
               f"null_* / p_value: permutation null ({args.permutations} permutations of B's rows, seed "
               f"{args.seed}), band 2.5-97.5%, p = (1 + #{{null >= obs}})/(1 + n_perm); {nulls_for}, else empty",
               f"ci_*: 95% percentile bootstrap over items ({args.boot} resamples, seed {args.seed}), per-item "
               f"values fixed; {nulls_for}"]
    conv_pr = [M.PROCRUSTES_CONVENTIONS,
               f"p_value: (1 + #{{null disparity <= obs}})/(1 + n_perm), rows of B permuted; {nulls_for}",
               "cka: " + M.CKA_CONVENTIONS, "cka_debiased: " + M.CKA_DEBIASED_CONVENTIONS, "rsa: " + M.RSA_CONVENTIONS]
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(tables["precision"], out / "precision_at_k.csv", common + conv_pk)
    _write_csv(tables["curve"], out / "precision_curve.csv", common + [M.PRECISION_CONVENTIONS])
    for k, df in pw.precision.items():
        _write_csv(df, out / f"precision_at_{k}_matrix.csv", common + [f"P@{k} matrix; " + M.PRECISION_CONVENTIONS],
                   index=True)
    _write_csv(tables["procrustes"], out / "procrustes.csv", common + conv_pr)
    _write_csv(pw.procrustes, out / "procrustes_matrix.csv", common + ["disparity; " + M.PROCRUSTES_CONVENTIONS],
               index=True)
    _write_csv(pw.cka, out / "cka_matrix.csv", common + [M.CKA_CONVENTIONS], index=True)
    if pw.cka_debiased is not None:
        _write_csv(pw.cka_debiased, out / "cka_debiased_matrix.csv", common + [M.CKA_DEBIASED_CONVENTIONS],
                   index=True)
    _write_csv(pw.rsa, out / "rsa_matrix.csv", common + [M.RSA_CONVENTIONS], index=True)
    if len(tables["seeds"]):
        _write_csv(tables["seeds"], out / "seeds.csv", common + [
            "metric of each seed of `model` against the lowest seed of `other`; std = sample sd (ddof=1)"])
    conventions = {**pw.conventions, "jaccard": M.JACCARD_CONVENTIONS, "null": conv_pk[2], "bootstrap": conv_pk[3],
                   "procrustes_p": conv_pr[1], "seeds": "pairwise tables use each model's lowest seed; seeds.csv: "
                   "metric of each seed against the other model's lowest seed, mean and sample sd"}
    write_json(out / "metrics.json", {
        "conventions": conventions, "parameters": params,
        "manifests": {m: {k: manifests[m].get(k) for k in ("file", "family", "source", "weights_sha256", "pooling",
                                                           "layer", "dtype", "dim", "git_commit", "loaded_from")
                          if k in manifests[m]} for m in names},
        "precision_at_k": _records(tables["precision"]), "procrustes": _records(tables["procrustes"]),
        "precision_curve": {f"{a}|{b}": [float(x) for x in c] for (a, b), c in pw.curves.items()},
        "matrices": {"procrustes": pw.procrustes.to_dict(), "cka": pw.cka.to_dict(), "rsa": pw.rsa.to_dict(),
                     **({"cka_debiased": pw.cka_debiased.to_dict()} if pw.cka_debiased is not None else {}),
                     **{f"precision_at_{k}": df.to_dict() for k, df in pw.precision.items()}},
        "seeds": _records(tables["seeds"]),
    })
    ref_rows = tables["precision"][tables["precision"].model_a == reference]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"P@k against {reference!r} (n = {n}; chance = k/(n-1)):")
        print(ref_rows[["model_b", "k", "p_at_k", "chance", "p_value", "ci_lo", "ci_hi"]].to_string(
            index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\nwrote {out}/ (precision_at_k.csv, precision_curve.csv, procrustes.csv, *_matrix.csv, "
          f"{'seeds.csv, ' if len(tables['seeds']) else ''}metrics.json)")
    return 0

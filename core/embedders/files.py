"""Reading embeddings that exist: shipped (``assets/embeddings``) first, then computed-here
(``<cache_dir>/embeddings``, written by ``python -m core embed`` without ``--ship``). Both hold the one format of
``core.store.save_embeddings``. Cheap: numpy + json, no model libraries.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import BadOptionError, NotComputedError
from .registry import TABLE, ModelSpec


def search_dirs() -> list[Path]:
    from ..store import cache_dir, embeddings_dir

    return [embeddings_dir(), cache_dir() / "embeddings"]


def find(stem: str) -> Path | None:
    """The first directory holding ``<stem>.npz`` and ``<stem>.json``, or None."""
    for d in search_dirs():
        if (d / f"{stem}.npz").is_file() and (d / f"{stem}.json").is_file():
            return d
    return None


def present_stems() -> list[str]:
    out: list[str] = []
    for d in search_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.npz")):
                if not p.name.startswith(".") and (d / f"{p.stem}.json").is_file() and p.stem not in out:
                    out.append(p.stem)
    return out


def seeds_present(spec: ModelSpec, stems: list[str] | None = None) -> list[int]:
    stems = present_stems() if stems is None else stems
    pat = re.compile(rf"^{re.escape(spec.name)}-s(\d+)$")
    return sorted({int(m.group(1)) for s in stems if (m := pat.match(s))})


def owner(stem: str) -> str | None:
    """The registry name a file stem belongs to (``alm-s3`` -> ``alm``), or None."""
    if stem in TABLE and not TABLE[stem].seeds:
        return stem
    m = re.match(r"^(.*)-s(\d+)$", stem)
    if m and m.group(1) in TABLE and TABLE[m.group(1)].seeds:
        return m.group(1)
    return None


def _read(stem: str, d: Path, compute_command: str):
    """Read a file and return rows in ``instruction_set()`` order; a file for another set is NotComputed."""
    import numpy as np

    from ..instructions import instruction_set, instruction_set_hash
    from ..store import read_embeddings

    E, items, man = read_embeddings(stem, d)
    target = instruction_set()
    if items != target:
        pos = {t: i for i, t in enumerate(items)}
        if len(pos) != len(items) or not all(t in pos for t in target):
            raise NotComputedError(
                f"{d / stem}.npz was computed for another instruction set (hash "
                f"{man.get('instruction_set_hash', instruction_set_hash(items))}, current "
                f"{instruction_set_hash(target)}); recompute with: {compute_command}")
        E = E[np.array([pos[t] for t in target])]
    man = dict(man)
    man.setdefault("file", f"{stem}.npz")
    man["loaded_from"] = "assets" if d == search_dirs()[0] else "cache"
    return np.ascontiguousarray(E, dtype=np.float32), man


def load_embeddings(name: str, seed: int | None = None):
    """(array (n, d) float32 in ``instruction_set()`` order, manifest) of a model, agent or baseline.

    For seeded entries ``seed=None`` means the first seed present. Unknown names raise UnknownModelError;
    known but absent ones NotComputedError (its message has the exact command that computes them).
    A name outside the registry whose file exists (a user-added model, or a seed file like ``alm-s2``) is read too.
    """
    spec = TABLE.get(name)
    if spec is None:
        if seed is None and (d := find(name)) is not None:
            return _read(name, d, f"python -m core embed ... --name {name}")
        from .registry import resolve

        resolve(name)  # raises UnknownModelError with the known names (or accepts KIND:ID)
        raise NotComputedError(f"{name!r} has no embeddings here; compute them with: "
                               f"python -m core embed --{name.partition(':')[0]} {name.partition(':')[2]} "
                               f"--name NAME --ship")
    if spec.seeds:
        if seed is None:
            present = seeds_present(spec)
            if not present:
                raise NotComputedError(_not_computed_msg(spec, f"{spec.name}-s<seed>"))
            seed = present[0]
        from ..store import embedding_file_name

        stem = embedding_file_name(spec.name, seed)
    else:
        if seed is not None:
            raise BadOptionError(f"{name!r} has no seeds (one file {name}.npz); call with seed=None")
        stem = name
    d = find(stem)
    if d is None:
        raise NotComputedError(_not_computed_msg(spec, stem))
    return _read(stem, d, spec.compute_command)


def _not_computed_msg(spec: ModelSpec, stem: str) -> str:
    where = " or ".join(str(d) for d in search_dirs())
    msg = f"{spec.name!r} is not computed: no {stem}.npz in {where}. Compute it with: {spec.compute_command}"
    if spec.computed_here and not spec.offline_available:
        msg += f" (needs {spec.install})"
    elif spec.computed_here:
        msg += f" (weights: {spec.install})"
    return msg


def load_seeds(name: str) -> dict[int, "object"]:
    """seed -> array for every seed file present; an unseeded entry gives ``{None: array}``."""
    spec = TABLE.get(name)
    if spec is None:
        from .registry import resolve

        resolve(name)
        raise NotComputedError(f"{name!r} has no embeddings here")
    if not spec.seeds:
        return {None: load_embeddings(name)[0]}
    seeds = seeds_present(spec)
    if not seeds:
        raise NotComputedError(_not_computed_msg(spec, f"{spec.name}-s<seed>"))
    return {s: load_embeddings(name, s)[0] for s in seeds}


def available() -> list[str]:
    """Names (registry order, then user-added files) with at least one embedding file present."""
    stems = present_stems()
    out = [n for n, s in TABLE.items() if (seeds_present(s, stems) if s.seeds else n in stems)]
    out += [s for s in stems if owner(s) is None and s not in out]
    return out

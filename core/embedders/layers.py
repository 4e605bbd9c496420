"""Layer sweeps: every hidden state of a reference model, pooled, for the 108 instructions.

Public names: :func:`load_layers`, :func:`layer_sweeps`, :func:`sweep_poolings`, :data:`SWEEP_MODELS`.
Command line: ``python -m core layers --model all --ship`` (needs the offline weight packages).

Definition (one with the shipped default embeddings)
---------------------------------------------------
``load_layers(name, pooling)[l]`` is ``core.embedders.embed(name, pooling=pooling, layer="all")[l]``: the
pooled ``hidden_states[l]`` of the base model (l = 0: token embeddings; l >= 1: output of block l). For the
shipped decoders (transformers 5) ``hidden_states[-1]`` is the final-norm output, i.e. ``last_hidden_state``;
for the encoders there is no final norm. Poolings: ``mean`` over real tokens (special tokens included, as the
shipped defaults), ``last`` (last real token; decoders) or ``cls`` (first token; encoders). The sentence encoders
follow their sentence-transformers pipeline under their own pooling (``mean``): **every layer** is then
L2-normalised, as the shipped default is; under ``cls`` nothing is normalised. Hence the last layer under the
default pooling ``mean`` is the shipped default embedding ``assets/embeddings/<name>.npz`` (tested).

Storage (``assets/layers/<name>-<pooling>.npz`` + ``.json`` manifest)
---------------------------------------------------------------------
float16 was measured first: it changed the 15-NN sets (raw cosine, all 108 items) of 58 of the 140 layer spaces
and some k-NN set the multiverse uses in 131 of them (near-ties: cosine gaps from 1e-9 to 3e-5), so P@k would not
be unchanged. Each layer is therefore stored as the float32
layer mean (``offset``, per dimension) plus the residual in per-dimension fixed point: 16 bits (``q`` int16,
step ``scale`` = max |residual| / 32767), refined to 24 bits (``lo`` uint8, step scale/256) or kept in float32
(``exact``) when a coarser code would change any k-NN set that the multiverse uses (every preprocessing x
every analysis item set with its k, :func:`core.multiverse.analysis_item_sets`). So every P@k that ALVA computes
from a stored layer equals the one from the float32 layer, for any partner space. The manifest lists the layers
of each code. :func:`load_layers` decodes to float32.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadOptionError, NotComputedError
from .registry import TABLE, resolve

#: the reference models whose every layer ships (real offline weights)
SWEEP_MODELS: tuple[str, ...] = ("smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2")
#: loader -> the poolings a sweep covers (mean for all; last token for decoders; CLS for encoders)
SWEEP_POOLINGS: dict[str, tuple[str, ...]] = {"gguf": ("mean", "last"), "hf-causal": ("mean", "last"),
                                              "sentence": ("mean", "cls"), "hf-encoder": ("mean", "cls")}
LAYER_CONVENTIONS = (
    "layer l = pooled hidden_states[l] of the base model (0 = token embeddings, l = output of block l; the last "
    "= last_hidden_state, after the final norm where the architecture has one); mean = mean over real tokens "
    "(special tokens included), last = last real token, cls = first token; sentence encoders under mean: every "
    "layer L2-normalised (their sentence-transformers pipeline), as the shipped default embedding")
_Q16 = 32767


# ------------------------------------------------------------------------------------------ names and files
def layers_dir() -> Path:
    from ..store import assets_dir

    return assets_dir() / "layers"


def file_stem(name: str, pooling: str) -> str:
    """``<name>-<pooling>``: the file stem of one sweep under ``assets/layers/``."""
    return f"{name}-{pooling}"


def sweep_poolings(name: str) -> tuple[str, ...]:
    """The poolings a layer sweep of ``name`` covers. Unknown model -> UnknownModelError; a model without
    layers (agents, baselines, static vectors, vision-language towers) -> BadOptionError."""
    spec = resolve(name)
    if spec.loader not in SWEEP_POOLINGS:
        agent = " (an agent: its language pathway's layers are core.agent_layers.load_agent_layers)" \
            if spec.family == "agent" else ""
        raise BadOptionError(f"{spec.name!r} ({spec.family}) has no layer sweep{agent}; layer sweeps exist for "
                             f"{', '.join(SWEEP_MODELS)}")
    return SWEEP_POOLINGS[spec.loader]


def _check_pooling(name: str, pooling: str) -> str:
    allowed = sweep_poolings(name)
    if pooling not in allowed:
        raise BadOptionError(f"pooling {pooling!r} is not swept for {name!r}; choose one of {', '.join(allowed)}")
    return pooling


def sweep_command(name: str, pooling: str | None = None) -> str:
    p = f" --pooling {pooling}" if pooling else ""
    return f"python -m core layers --model {name}{p} --ship"


# ------------------------------------------------------------------------------------------ encode / decode
def _decode(arrs: dict[str, np.ndarray]) -> np.ndarray:
    """float32 (L, n, d) from the stored arrays (module docstring: offset + fixed-point residual | float32)."""
    q, scale, offset = arrs["q"], arrs["scale"].astype(np.float64), arrs["offset"].astype(np.float64)
    X = q.astype(np.float64) * scale[:, None, :]
    for j, l in enumerate(arrs["lo_layers"]):
        X[l] = (q[l].astype(np.float64) * 256.0 + arrs["lo"][j]) * (scale[l] / 256.0)
    X += offset[:, None, :]
    out = X.astype(np.float32)
    for j, l in enumerate(arrs["exact_layers"]):
        out[l] = arrs["exact"][j]
    return out


def _code(R: np.ndarray, scale: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Fixed-point code of residuals R (n, d): 16 bits -> (q int16, None); 24 bits -> (hi int16, lo uint8)."""
    if bits == 16:
        return np.rint(R / scale).astype(np.int16), None
    Q = np.rint(R / (scale / 256.0)).astype(np.int64)
    hi, lo = np.divmod(Q, 256)
    return hi.astype(np.int16), lo.astype(np.uint8)


def encode_layers(E: np.ndarray, item_sets=None, preprocessings=None) -> tuple[dict[str, np.ndarray], dict]:
    """Encode a float32 sweep (L, n, d) for storage, choosing per layer the coarsest code (16-bit, 24-bit,
    float32) whose decoded layer has exactly the float32 layer's k-NN sets (module docstring).
    Returns (arrays for the npz, storage report for the manifest)."""
    from ..multiverse import analysis_item_sets, same_neighbour_sets
    from ..preprocessing import PREPROCESSINGS

    E = np.asarray(E, dtype=np.float32)
    item_sets = analysis_item_sets() if item_sets is None else item_sets
    preprocessings = PREPROCESSINGS if preprocessings is None else preprocessings
    L, n, d = E.shape
    offset = E.astype(np.float64).mean(axis=1).astype(np.float32)
    R = E.astype(np.float64) - offset[:, None, :].astype(np.float64)
    scale = (np.abs(R).max(axis=1) / _Q16).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.zeros((L, n, d), dtype=np.int16)
    lo, lo_layers, exact, exact_layers, codes, max_err = [], [], [], [], [], []
    for l in range(L):
        s = scale[l].astype(np.float64)
        chosen = None
        for bits in (16, 24):
            hi, low = _code(R[l], s, bits)
            trial = {"q": hi[None], "scale": scale[l:l + 1], "offset": offset[l:l + 1],
                     "lo_layers": np.array([0] if low is not None else [], dtype=np.int64),
                     "lo": (low[None] if low is not None else np.zeros((0, n, d), np.uint8)),
                     "exact_layers": np.zeros(0, np.int64), "exact": np.zeros((0, n, d), np.float32)}
            D = _decode(trial)[0]
            if same_neighbour_sets(E[l], D, item_sets, preprocessings):
                chosen = bits
                q[l] = hi
                if low is not None:
                    lo.append(low)
                    lo_layers.append(l)
                max_err.append(float(np.abs(D - E[l]).max()))
                break
        if chosen is None:
            exact.append(E[l])
            exact_layers.append(l)
            max_err.append(0.0)
            chosen = 32
        codes.append(chosen)
    arrays = {"q": q, "scale": scale, "offset": offset,
              "lo_layers": np.array(lo_layers, dtype=np.int64),
              "lo": np.stack(lo) if lo else np.zeros((0, n, d), np.uint8),
              "exact_layers": np.array(exact_layers, dtype=np.int64),
              "exact": np.stack(exact) if exact else np.zeros((0, n, d), np.float32)}
    report = {"scheme": "float32 layer mean (offset) + per-dimension fixed-point residual: 16-bit (int16, step "
                        "max|residual|/32767), 24-bit (int16 + uint8, step/256) or float32, the coarsest whose "
                        "k-NN sets equal the float32 layer's on every analysis item set x preprocessing",
              "layers_16bit": [l for l, c in enumerate(codes) if c == 16],
              "layers_24bit": [l for l, c in enumerate(codes) if c == 24],
              "layers_float32": [l for l, c in enumerate(codes) if c == 32],
              "max_abs_error_per_layer": max_err,
              "checked": {"item_sets": [f"{s.name} (n={s.n}, k={s.k})" for s in item_sets],
                          "preprocessings": list(preprocessings)}}
    return arrays, report


# ------------------------------------------------------------------------------------------ reading
def _read(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrs = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError ...
        raise ValueError(f"corrupt layer-sweep file {path}: {e}") from None
    need = {"q", "scale", "offset", "lo", "lo_layers", "exact", "exact_layers", "instructions"}
    if not need <= set(arrs):
        raise ValueError(f"corrupt layer-sweep file {path}: missing {sorted(need - set(arrs))}")
    return _decode(arrs), [str(s) for s in arrs["instructions"]]


def load_layers(name: str, pooling: str = "mean", layer: int | None = None) -> np.ndarray:
    """Every layer of a reference model: float32 (n_layers, 108, d) in ``instruction_set()`` order.

    ``pooling``: ``mean`` (default; every model), ``last`` (decoders) or ``cls`` (encoders). ``layer`` (an int,
    negative counts from the end) returns that layer only, (108, d). Definition and storage: module docstring;
    the last layer under ``mean`` equals the shipped default embedding. Errors: unknown model
    (UnknownModelError), a model without layers, an unsupported pooling or a layer out of range
    (BadOptionError), a sweep not computed here (NotComputedError naming the command).
    """
    from ..instructions import instruction_set

    spec = resolve(name)
    _check_pooling(spec.name, pooling)
    path = layers_dir() / f"{file_stem(spec.name, pooling)}.npz"
    if not path.is_file():
        raise NotComputedError(f"no layer sweep of {spec.name!r} under {pooling!r} pooling ({path} is missing); "
                               f"compute it with: {sweep_command(spec.name, pooling)} (weights: {spec.install})")
    E, items = _read(path)
    target = instruction_set()
    if items != target:
        pos = {t: i for i, t in enumerate(items)}
        if len(pos) != len(items) or not all(t in pos for t in target):
            raise NotComputedError(f"{path} was computed for another instruction set; recompute it with: "
                                   f"{sweep_command(spec.name, pooling)}")
        E = E[:, [pos[t] for t in target]]
    if layer is None:
        return np.ascontiguousarray(E)
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
        raise BadOptionError(f"layer must be an integer, got {layer!r}")
    L = E.shape[0]
    if not -L <= int(layer) < L:
        raise BadOptionError(f"layer {layer} out of range: {spec.name!r} has {L} layers (0..{L - 1}; "
                             f"0 = token embeddings, {L - 1} = last)")
    return np.ascontiguousarray(E[int(layer)])


def read_manifest(name: str, pooling: str = "mean") -> dict[str, Any]:
    from ..store import read_json

    return read_json(layers_dir() / f"{file_stem(name, pooling)}.json")


def layer_sweeps():
    """One row per (model, pooling) a sweep covers: ``name, pooling, present, n_layers, n_items, dim, default``
    (``True`` for the default pooling), ``storage`` (layers per code), ``bytes`` (file size), ``file``,
    ``compute_command``. Reads manifests only (no arrays)."""
    import pandas as pd

    from ..store import read_json

    rows = []
    for name in SWEEP_MODELS:
        spec = TABLE[name]
        for pooling in sweep_poolings(name):
            stem = file_stem(name, pooling)
            path, man_path = layers_dir() / f"{stem}.npz", layers_dir() / f"{stem}.json"
            row = {"name": name, "pooling": pooling, "present": path.is_file() and man_path.is_file(),
                   "n_layers": None, "n_items": None, "dim": None, "default": pooling == spec.default_pooling,
                   "storage": "", "bytes": path.stat().st_size if path.is_file() else 0,
                   "file": f"layers/{stem}.npz", "compute_command": sweep_command(name, pooling)}
            if row["present"]:
                try:
                    man = read_json(man_path)
                except ValueError:
                    man = {}
                st = man.get("storage", {})
                row.update(n_layers=man.get("n_layers"), n_items=man.get("n_items"), dim=man.get("dim"),
                           storage=(f"{len(st.get('layers_16bit', []))} x 16-bit, "
                                    f"{len(st.get('layers_24bit', []))} x 24-bit, "
                                    f"{len(st.get('layers_float32', []))} x float32"))
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ computing + shipping
def compute_layers(name: str, pooling: str = "mean", progress: bool = False) -> tuple[np.ndarray, dict]:
    """(float32 (n_layers, 108, d), embed manifest) with the real weights, through ``embed(..., layer="all")``
    (cached in the diskcache). Raises MissingWeightsError when the weights are not installed."""
    from .compute import embed

    spec = resolve(name)
    _check_pooling(spec.name, pooling)
    E, man = embed(spec, pooling=pooling, layer="all", progress=progress)
    return np.asarray(E, dtype=np.float32), man


def ship_layers(name: str, pooling: str = "mean", directory: str | Path | None = None,
                progress: bool = False) -> Path:
    """Compute a sweep and write ``<directory>/<name>-<pooling>.npz`` + ``.json`` (default ``assets/layers``).

    The manifest records the weights' provenance (from the embed manifest), the storage code of each layer, and
    for the default pooling the largest difference between the last layer and the shipped default embedding.
    """
    import os

    from ..instructions import instruction_set, instruction_set_hash
    from ..store import git_commit, now_iso, write_json
    from .files import load_embeddings

    spec = resolve(name)
    E, eman = compute_layers(spec.name, pooling, progress)
    arrays, report = encode_layers(E)
    D = _decode(arrays)
    items = instruction_set()
    man = {"what": f"every hidden state of {spec.name} pooled by {pooling} over the {len(items)} instructions",
           "model": spec.name, "family": spec.family, "pooling": pooling, "normalize": eman.get("normalize"),
           "layer": "all", "layer_conventions": LAYER_CONVENTIONS, "n_layers": int(E.shape[0]),
           "n_items": int(E.shape[1]), "dim": int(E.shape[2]), "dtype": "float32 when loaded (stored: see storage)",
           "storage": report, "command": sweep_command(spec.name, pooling),
           "source": spec.source, "source_package": eman.get("source_package"),
           "source_version": eman.get("source_version"), "weights_sha256": eman.get("weights_sha256"),
           "embed_cache_key": eman.get("cache_key"), "versions": eman.get("versions"),
           "embedder_version": eman.get("embedder_version"), "date": now_iso(), "git_commit": git_commit(),
           "instruction_set_hash": instruction_set_hash(items)}
    if pooling == spec.default_pooling:
        try:
            S, smeta = load_embeddings(spec.name)
            man["default_vs_shipped"] = {
                "shipped_file": f"embeddings/{spec.name}.npz", "shipped_weights_sha256": smeta.get("weights_sha256"),
                "max_abs_diff_computed": float(np.abs(E[-1] - S).max()),
                "max_abs_diff_stored": float(np.abs(D[-1] - S).max())}
        except NotComputedError:
            man["default_vs_shipped"] = None
    d = Path(directory) if directory is not None else layers_dir()
    d.mkdir(parents=True, exist_ok=True)
    stem = file_stem(spec.name, pooling)
    tmp = d / f".{stem}.tmp.npz"
    np.savez_compressed(tmp, instructions=np.array(items), **arrays)
    os.replace(tmp, d / f"{stem}.npz")
    write_json(d / f"{stem}.json", man)
    return d / f"{stem}.npz"


def cli(argv: list[str]) -> int:
    import argparse

    from .errors import EmbedderError, MissingWeightsError

    args = list(argv[1:] if argv and argv[0] == "layers" else argv)
    p = argparse.ArgumentParser(prog="python -m core layers",
                                description="layer sweeps of the reference models: every hidden state, pooled, "
                                            "stored compactly in assets/layers (see core.embedders.layers)")
    p.add_argument("--model", default="all", help=f"registry name or 'all' ({', '.join(SWEEP_MODELS)})")
    p.add_argument("--pooling", default="all", help="mean | last | cls | all (the model's swept poolings)")
    p.add_argument("--ship", action="store_true", help="write assets/layers/<name>-<pooling>.npz/.json")
    p.add_argument("--list", action="store_true", help="list the sweeps and what is present")
    a = p.parse_args(args)
    if a.list or not a.ship:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_colwidth", 60):
            print(layer_sweeps().drop(columns=["file"]).to_string(index=False))
        if not a.ship and not a.list:
            print("\n(nothing computed: add --ship to compute and write the sweeps)")
        return 0
    names = list(SWEEP_MODELS) if a.model == "all" else [a.model]
    failed = 0
    for name in names:
        try:
            pools = sweep_poolings(name) if a.pooling == "all" else (_check_pooling(name, a.pooling),)
            for pooling in pools:
                path = ship_layers(name, pooling)
                man = read_manifest(name, pooling)
                st = man["storage"]
                print(f"{path}: {man['n_layers']} layers x {man['n_items']} x {man['dim']}; "
                      f"{len(st['layers_16bit'])} x 16-bit, {len(st['layers_24bit'])} x 24-bit, "
                      f"{len(st['layers_float32'])} x float32; {path.stat().st_size / 1e6:.2f} MB", flush=True)
        except MissingWeightsError as e:
            print(f"skipped {name}: {e}", file=sys.stderr)
            failed += a.model != "all"
        except EmbedderError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 1 if failed else 0

"""Computing embeddings: option checks, weight resolution, the diskcache entry, the manifest.

Cache key (``core.store.cached``, stage ``embed``): model name, loader, model id, weights sha256, revision,
pooling, layer, dtype, batch size, exclude_special, normalize, instruction-set hash, torch/transformers/... versions
and :data:`EMBEDDER_VERSION`, plus the device when it is not the CPU (results on CUDA differ in the last bits).
Devices (``core.device``): ``auto`` takes CUDA when available; spaCy vectors are CPU only. Weights are resolved
(and hashed) before the key is built; a model whose weights are missing raises :class:`MissingWeightsError` before
anything is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .errors import BadOptionError
from .registry import DTYPES, POOLINGS, ModelSpec, resolve

#: bump when the extraction code changes results (it is part of every cache key)
EMBEDDER_VERSION = 2
DEFAULT_BATCH_SIZE = 32


def check_options(spec: ModelSpec, pooling=None, layer=None, dtype=None, batch_size=None) -> dict[str, Any]:
    """Fill defaults and validate options without loading anything. Raises BadOptionError."""
    if not spec.computed_here:
        raise BadOptionError(f"{spec.name!r} ({spec.family}) is not computed by core.embedders; it is produced by "
                             f"`{spec.compute_command}`. Read it with core.embedders.load_embeddings({spec.name!r})")
    allowed = POOLINGS[spec.loader]
    pooling = pooling or spec.default_pooling or allowed[0]
    if pooling not in allowed:
        raise BadOptionError(f"pooling {pooling!r} is not available for {spec.name!r} ({spec.family}); "
                             f"choose one of {', '.join(allowed)}")
    if spec.loader == "spacy":
        if layer not in (None, "last", "none"):
            raise BadOptionError(f"{spec.name!r} is a static-vector model: it has no layers")
        layer = None
    else:
        layer = spec.default_layer if layer is None else layer
        if isinstance(layer, str) and layer not in ("last", "all"):
            try:
                layer = int(layer)
            except ValueError:
                raise BadOptionError(f"layer {layer!r}: use 'last', 'all' or an integer index") from None
    dtype = dtype or "float32"
    if dtype not in DTYPES:
        raise BadOptionError(f"dtype {dtype!r} not in {DTYPES}")
    if spec.loader == "spacy" and dtype != "float32":
        raise BadOptionError("spaCy vectors are float32 only")
    batch_size = int(batch_size or DEFAULT_BATCH_SIZE)
    if batch_size < 1:
        raise BadOptionError(f"batch size must be >= 1, got {batch_size}")
    return {"pooling": pooling, "layer": layer, "dtype": dtype, "batch_size": batch_size}


def resolve_weights(spec: ModelSpec):
    """Locate (download if allowed) and hash a model's weights. Raises MissingWeightsError."""
    if spec.loader in ("hf-causal", "hf-encoder"):
        from .hf import resolve_hf
        return resolve_hf(spec.name, spec.model_id, spec.revision, spec.install)
    if spec.loader == "gguf":
        from .gguf import resolve_gguf
        return resolve_gguf(spec)
    if spec.loader == "sentence":
        from .sentence import resolve_sentence
        return resolve_sentence(spec)
    if spec.loader == "open-clip":
        from .clip import resolve_clip
        return resolve_clip(spec)
    if spec.loader == "blip":
        from .blip import resolve_blip
        return resolve_blip(spec)
    if spec.loader == "spacy":
        from .spacy_vectors import resolve_spacy
        return resolve_spacy(spec)
    raise BadOptionError(f"{spec.name!r}: loader {spec.loader!r} computes nothing here")


def _versions(spec: ModelSpec) -> dict[str, str]:
    from ._common import lib_versions

    libs = {"hf-causal": ("torch", "transformers", "tokenizers"), "hf-encoder": ("torch", "transformers", "tokenizers"),
            "gguf": ("torch", "transformers", "tokenizers", "gguf"), "sentence": ("torch", "transformers", "tokenizers"),
            "blip": ("torch", "transformers", "tokenizers"), "open-clip": ("torch", "open_clip_torch"),
            "spacy": ("spacy", "numpy")}[spec.loader]
    return lib_versions(*libs)


def _run(spec: ModelSpec, resolved, texts: list[str], opts: dict, progress: bool, timings: dict, device: str = "cpu"):
    """Load the model and embed ``texts`` -> float32 array; fills timings (load_s, embed_s)."""
    import time

    import numpy as np

    desc = f"embed {spec.name}"
    t0 = time.perf_counter()
    if spec.loader == "spacy":
        from .spacy_vectors import embed_spacy, load_spacy
        nlp = load_spacy(resolved)
        timings["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        E = embed_spacy(nlp, texts, progress=progress, desc=desc)
    elif spec.loader == "open-clip":
        from .clip import embed_clip, load_clip
        tok, model = load_clip(resolved, opts["dtype"])
        model = model.to(device)
        timings["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        E = embed_clip(tok, model, texts, pooling=opts["pooling"], layer=opts["layer"],
                       batch_size=opts["batch_size"], progress=progress, desc=desc)
    elif spec.loader == "blip":
        from .blip import embed_blip, load_blip
        tok, model = load_blip(resolved, opts["dtype"])
        model = model.to(device)
        timings["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        E = embed_blip(tok, model, texts, pooling=opts["pooling"], layer=opts["layer"],
                       batch_size=opts["batch_size"], exclude_special=opts["exclude_special"], progress=progress,
                       desc=desc)
    else:
        from .hf import embed_tokens, load_hf
        if spec.loader == "gguf":
            from .gguf import materialise
            materialise(resolved)
        tok, model = load_hf(resolved, opts["dtype"])
        model = model.to(device)
        timings["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        E = embed_tokens(tok, model, texts, pooling=opts["pooling"], layer=opts["layer"],
                         batch_size=opts["batch_size"], exclude_special=opts["exclude_special"], progress=progress,
                         desc=desc)
        resolved.info.setdefault("architecture", getattr(model.config, "model_type", None))
        resolved.info.setdefault("n_layers", getattr(model.config, "num_hidden_layers", None))
    if opts["normalize"]:
        n = np.linalg.norm(E, axis=-1, keepdims=True)
        E = E / np.maximum(n, 1e-12)
    timings["embed_s"] = time.perf_counter() - t1
    E = np.ascontiguousarray(E, dtype=np.float32)
    if not np.isfinite(E).all():
        raise FloatingPointError(f"{spec.name}: embeddings contain NaN/inf (dtype {opts['dtype']})")
    return E


def embed(name_or_spec: "str | ModelSpec", instructions: Sequence[str] | None = None, *, pooling: str | None = None,
          layer: "str | int | None" = None, dtype: str | None = None, batch_size: int | None = None,
          exclude_special: bool = False, normalize: bool | None = None, progress: bool = False,
          use_cache: bool = True, refresh: bool = False, device: str = "auto"):
    """Compute the embeddings of ``instructions`` (default: the instruction set) with a model.

    ``name_or_spec``: a registry name, a ModelSpec, or ``KIND:ID`` (``hf-causal:``, ``hf-encoder:``, ``open-clip:``,
    ``blip:``, ``gguf:``). Returns ``(array float32 (n, d) — or (n_layers+1, n, d) for layer='all', manifest)``.
    ``normalize`` (L2 after pooling) defaults to the model's own pipeline (True for the sentence-transformers
    models, False otherwise). Results are cached under an explicit key (see module doc). ``device``:
    ``auto|cpu|cuda`` (:mod:`core.device`; ``cuda`` without CUDA raises DeviceError).
    """
    from ..device import check as check_device, describe, resolve as resolve_device
    from ..instructions import instruction_set, instruction_set_hash
    from ..store import cached, key

    spec = resolve(name_or_spec)
    opts = check_options(spec, pooling, layer, dtype, batch_size)
    opts["exclude_special"] = bool(exclude_special)
    if exclude_special and spec.loader in ("spacy", "open-clip"):
        raise BadOptionError(f"exclude_special is not available for {spec.loader} models")
    if exclude_special and opts["pooling"] in ("cls", "model"):
        raise BadOptionError(f"exclude_special has no effect with pooling {opts['pooling']!r}")
    if spec.loader == "spacy" and check_device(device) == "cuda":
        raise BadOptionError(f"{spec.name!r}: spaCy static vectors are computed on the CPU only; use --device cpu")
    dev = "cpu" if spec.loader == "spacy" else resolve_device(device)
    texts = [str(t) for t in (instruction_set() if instructions is None else instructions)]
    if not texts:
        raise BadOptionError("no instructions to embed")
    resolved = resolve_weights(spec)  # MissingWeightsError here: nothing computed, nothing cached
    st_cfg = resolved.info.get("sentence_transformers")
    if normalize is None:
        normalize = bool(st_cfg["normalize"]) if st_cfg and opts["pooling"] == st_cfg["pooling"] else False
    opts["normalize"] = bool(normalize)
    versions = _versions(spec)
    params = {"model": spec.name, "loader": spec.loader, "model_id": spec.model_id,
              "weights_sha256": resolved.weights_sha256, "revision": resolved.revision, **opts,
              "instruction_set_hash": instruction_set_hash(texts), "versions": versions,
              "embedder_version": EMBEDDER_VERSION, **({"device": dev} if dev != "cpu" else {})}
    timings: dict[str, float] = {}

    def compute():
        from ..store import git_commit, now_iso

        E = _run(spec, resolved, texts, opts, progress, timings, dev)
        layer_s = "n/a" if opts["layer"] is None else str(opts["layer"])
        man = {"model": spec.name, "family": spec.family, "paper_family": spec.paper_family,
               "source": spec.source, "model_id": spec.model_id, "loader": spec.loader,
               "source_package": resolved.source_package, "source_version": resolved.source_version,
               "revision": resolved.revision, "weights_sha256": resolved.weights_sha256,
               "weights_files": [Path(f).name for f in resolved.weights_files],
               "pooling": opts["pooling"], "layer": layer_s, "dtype": opts["dtype"],
               "batch_size": opts["batch_size"], "exclude_special": opts["exclude_special"],
               "normalize": opts["normalize"], "shape": list(E.shape), "versions": versions,
               "embedder_version": EMBEDDER_VERSION, "date": now_iso(), "git_commit": git_commit(),
               "instruction_set_hash": instruction_set_hash(texts), "n_items": int(E.shape[-2]),
               "dim": int(E.shape[-1]), "compute_command": spec.compute_command, "notes": spec.notes,
               "timing_s": {k: round(v, 3) for k, v in timings.items()}, "cache_key": key("embed", params),
               **describe(dev),
               **{k: v for k, v in resolved.info.items() if k not in ("gguf_path", "converted_dir")}}
        return E, man

    if not use_cache:
        return compute()
    return cached("embed", params, compute, refresh=refresh)

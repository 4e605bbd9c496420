"""Reference-model embeddings of the instruction set: one registry, one extraction path, one file format.

Public names (importing this package imports no torch/transformers/open_clip; they load inside functions):

* :func:`registry` -> pandas DataFrame, one row per model / agent / baseline (plus user-added files present)
* :func:`load_embeddings` (name, seed=None) -> (array (n, d) float32 in ``instruction_set()`` order, manifest)
* :func:`load_seeds` (name) -> {seed: array}
* :func:`available` -> names with embeddings present (shipped or computed here)
* :func:`embed` (name, instructions=None, **options) -> (array, manifest): computes (cached)
* :func:`load_layers` (name, pooling="mean") -> float32 (n_layers, n, d): every hidden state of a reference model
  (shipped in ``assets/layers``); :func:`layer_sweeps` -> DataFrame of the sweeps (``core.embedders.layers``)
* errors: :class:`UnknownModelError`, :class:`NotComputedError`, :class:`MissingWeightsError`,
  :class:`BadOptionError` (all subclasses of :class:`EmbedderError`)

Command line: ``python -m core embed --help``.
"""
from __future__ import annotations

from .compute import embed
from .errors import BadOptionError, EmbedderError, MissingWeightsError, NotComputedError, UnknownModelError
from .files import available, load_embeddings, load_seeds
from .layers import layer_sweeps, load_layers
from .registry import FAMILIES, POOLINGS, TABLE, ModelSpec

__all__ = ["registry", "load_embeddings", "load_seeds", "available", "embed", "load_layers", "layer_sweeps",
           "ModelSpec", "TABLE", "FAMILIES", "POOLINGS", "EmbedderError", "UnknownModelError", "NotComputedError",
           "MissingWeightsError", "BadOptionError"]

COLUMNS = ["name", "family", "paper_family", "source", "loader", "model_id", "default_pooling", "default_layer",
           "seeds", "offline_available", "present", "compute_command", "install", "notes"]


def registry():
    """The model table as a DataFrame (fast: no model library is imported; ``present`` is a file check).

    Rows: every registry entry, then any embedding file present whose stem belongs to no entry (a model added
    on the command line), described from its manifest.
    """
    import pandas as pd

    from .files import owner, present_stems, search_dirs, seeds_present
    from ..store import read_json

    stems = present_stems()
    rows = []
    for s in TABLE.values():
        r = s.as_row()
        r["present"] = bool(seeds_present(s, stems)) if s.seeds else s.name in stems
        rows.append(r)
    for stem in stems:
        if owner(stem) is not None:
            continue
        man = {}
        for d in search_dirs():
            if (d / f"{stem}.json").is_file():
                try:
                    man = read_json(d / f"{stem}.json")
                except ValueError:
                    man = {}
                break
        rows.append({"name": stem, "family": man.get("family", "unknown"),
                     "paper_family": man.get("paper_family", "user-added"), "source": man.get("source", ""),
                     "loader": man.get("loader", "files"), "model_id": man.get("model_id"),
                     "default_pooling": man.get("pooling"), "default_layer": man.get("layer"), "seeds": None,
                     "offline_available": False, "present": True,
                     "compute_command": man.get("compute_command", ""), "install": "",
                     "notes": "file present, not in the registry (user-added or seed file)"})
    return pd.DataFrame(rows)[COLUMNS]

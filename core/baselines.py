"""Control "models": exact, weight-free encodings of the instructions, shipped like any other embedding file.

Why they exist: every text encoder sees that instructions share words, and an agent whose word embeddings are
one-hot at initialisation sees it too (``docs``: an untrained identity-init agent reaches P@15 ~ 0.69 against
bag-of-words, trained agents 0.45-0.54). An agent-LLM alignment figure only means something next to these rows.

Encodings (rows in the order of ``instructions``; the default is the whole 108-instruction set):

``bag-of-words``  raw word counts over ``Grammar.vocabulary`` (17 words, vocabulary order). A two-word verb
                  ("go to", "pick up") contributes one count to each of its words, so it weighs twice as much as
                  "open" in the cosine geometry. No normalisation (cosine metrics normalise anyway).
``tfidf``         the counts above times idf(w) = ln((1 + n) / (1 + df(w))) + 1 (n = number of instructions,
                  df = number containing w; scikit-learn's ``smooth_idf=True`` default), rows then L2-normalised.
``factors``       one-hot of the four grammatical factors, concatenated in the order verb (3), determiner (2),
                  colour (6), object (4) = 15 dims; each factor weighs the same (cosine = shared factors / 4).
``random``        i.i.d. N(0, 1) vectors, 128 dims (the agent's width), ``numpy.random.default_rng(seed)
                  .standard_normal((n, 128))``; draws seeds 0-4 are shipped as ``random-s0`` .. ``random-s4``.

``python -m core baselines`` writes the files to ``assets/embeddings`` (``--out DIR`` elsewhere). These encodings
are exact and cost nothing, so there is no separate cache: ``--ship`` is accepted for symmetry with
``python -m core embed`` and changes nothing. ``--check`` recomputes and compares with the shipped files.
The untrained-agent rows (``untrained-alm-s*``) are produced by the agent stage, not here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .instructions import DEFAULT_GRAMMAR, FACTORS, Grammar, instruction_set, parse, words

#: the shipped baseline names (random is shipped once per seed as random-s<seed>)
NAMES: tuple[str, ...] = ("bag-of-words", "tfidf", "factors", "random")
RANDOM_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
RANDOM_DIM = 128

DEFINITIONS: dict[str, str] = {
    "bag-of-words": "raw word counts over the grammar vocabulary (vocabulary order); two-word verbs count each "
                    "word; no normalisation",
    "tfidf": "word counts x idf, idf(w) = ln((1+n)/(1+df(w))) + 1 (sklearn smooth_idf default), rows L2-normalised",
    "factors": "one-hot of verb, determiner, colour, object, concatenated in that order; each factor weighs the same",
    "random": f"i.i.d. N(0,1), numpy.random.default_rng(seed).standard_normal((n_items, {RANDOM_DIM}))",
}


def _items(instructions: Sequence[str] | None, grammar: Grammar) -> list[str]:
    return instruction_set(grammar) if instructions is None else [str(s) for s in instructions]


def vocabulary(grammar: Grammar = DEFAULT_GRAMMAR) -> list[str]:
    """Column names of :func:`bag_of_words` / :func:`tfidf` (the grammar's vocabulary, its order)."""
    return list(grammar.vocabulary)


def bag_of_words(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> np.ndarray:
    """(n_items, |vocabulary|) raw word counts. Every instruction must parse under ``grammar``."""
    items = _items(instructions, grammar)
    vocab = vocabulary(grammar)
    col = {w: j for j, w in enumerate(vocab)}
    X = np.zeros((len(items), len(vocab)), dtype=np.float32)
    for i, text in enumerate(items):
        grammar.parse(text)  # unknown words / bad grammar raise InstructionError naming the word
        for w in words(text):
            X[i, col[w]] += 1
    return X


def idf(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> np.ndarray:
    """Smoothed inverse document frequency per vocabulary word: ln((1 + n) / (1 + df)) + 1."""
    counts = bag_of_words(instructions, grammar)
    n = counts.shape[0]
    df = (counts > 0).sum(axis=0)
    return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float64)


def tfidf(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> np.ndarray:
    """(n_items, |vocabulary|) TF-IDF: raw counts x smoothed idf, rows L2-normalised."""
    counts = bag_of_words(instructions, grammar).astype(np.float64)
    X = counts * idf(instructions, grammar)[None, :]
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def factor_levels(grammar: Grammar = DEFAULT_GRAMMAR) -> dict[str, tuple[str, ...]]:
    """The levels of each factor, in grammar order (the column blocks of :func:`factors`). An extended grammar
    adds location, the second object's determiner / colour / object (put-next, a sequence's second clause), the
    second verb and the connective; an absent part (no colour, no location ...) is all zeros in its block."""
    from .instructions import CONNECTIVES, LOCATIONS, PUT_VERB

    verbs = tuple(grammar.verbs) + ((PUT_VERB,) if grammar.put_next else ())
    levels = {"verb": verbs, "determiner": tuple(grammar.determiners), "colour": tuple(grammar.colours),
              "object": tuple(grammar.objects)}
    if not grammar.extended:
        return levels
    levels["location"] = tuple(lc for lc in LOCATIONS if lc in grammar.locations)
    levels["connective"] = tuple(c for c in CONNECTIVES if c in grammar.connectives)
    levels["verb2"] = tuple(grammar.verbs) if grammar.connectives else ()
    two = grammar.put_next or bool(grammar.connectives)
    levels["determiner2"] = tuple(grammar.determiners) if two else ()
    levels["colour2"] = tuple(grammar.colours) if two else ()
    levels["object2"] = tuple(grammar.objects) if two else ()
    return {f: lv for f, lv in levels.items() if lv}


def factor_feature_names(grammar: Grammar = DEFAULT_GRAMMAR) -> list[str]:
    """Column names of :func:`factors`: ``factor=level``."""
    return [f"{f}={lvl}" for f, lvls in factor_levels(grammar).items() for lvl in lvls]


def factors(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> np.ndarray:
    """(n_items, sum of levels) one-hot of verb, determiner, colour, object (15 dims for the default grammar)."""
    items = _items(instructions, grammar)
    levels = factor_levels(grammar)
    assert tuple(levels)[:4] == FACTORS
    offsets, off = {}, 0
    for f, lvls in levels.items():
        offsets[f] = off
        off += len(lvls)
    X = np.zeros((len(items), off), dtype=np.float32)
    for i, text in enumerate(items):
        meta = parse(text, grammar)
        for f, lvls in levels.items():
            if meta.get(f, ""):  # an absent part (colourless, no location, no second clause) stays all zeros
                X[i, offsets[f] + lvls.index(meta[f])] = 1.0
    return X


def random_vectors(n_items: int = 108, seed: int = 0, dim: int = RANDOM_DIM) -> np.ndarray:
    """(n_items, dim) i.i.d. standard normal vectors from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(int(seed)).standard_normal((int(n_items), int(dim))).astype(np.float32)


def encode(name: str, instructions: Sequence[str] | None = None, seed: int | None = None,
           grammar: Grammar = DEFAULT_GRAMMAR) -> np.ndarray:
    """Any baseline by name (``random`` needs a seed)."""
    if name == "bag-of-words":
        return bag_of_words(instructions, grammar)
    if name == "tfidf":
        return tfidf(instructions, grammar)
    if name == "factors":
        return factors(instructions, grammar)
    if name == "random":
        if seed is None:
            raise ValueError("the 'random' baseline needs a seed (shipped draws: 0-4)")
        return random_vectors(len(_items(instructions, grammar)), seed)
    raise ValueError(f"unknown baseline {name!r}; baselines are {NAMES}")


def manifest(name: str, seed: int | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> dict:
    """The provenance manifest of a baseline file (``save_embeddings`` adds date, commit, set hash, shape)."""
    features = {"bag-of-words": vocabulary(grammar), "tfidf": vocabulary(grammar),
                "factors": factor_feature_names(grammar)}.get(name)
    man = {"model": name, "family": "baseline", "source": "this repo: core.baselines",
           "weights_sha256": "n/a (no weights)", "pooling": "n/a", "layer": "n/a", "dtype": "float32",
           "definition": DEFINITIONS[name], "command": "python -m core baselines"}
    if features is not None:
        man["feature_names"] = features
    if name == "random":
        man["seed"] = int(seed)
        man["notes"] = "chance-level control; P@k of any space against it should be ~ k/(n-1)"
    return man


def compute_all(instructions: Sequence[str] | None = None,
                grammar: Grammar = DEFAULT_GRAMMAR) -> dict[str, tuple[np.ndarray, dict]]:
    """file stem -> (array, manifest) for every shipped baseline file."""
    from .store import embedding_file_name

    out = {}
    for name in NAMES:
        seeds = RANDOM_SEEDS if name == "random" else (None,)
        for s in seeds:
            out[embedding_file_name(name, s)] = (encode(name, instructions, s, grammar), manifest(name, s, grammar))
    return out


def ship(directory: str | Path | None = None, instructions: Sequence[str] | None = None) -> list[Path]:
    """Write every baseline file (``<stem>.npz`` + ``<stem>.json``) to ``directory`` (default assets/embeddings)."""
    from .store import save_embeddings

    items = _items(instructions, DEFAULT_GRAMMAR)
    return [save_embeddings(stem, X, items, man, directory=directory)
            for stem, (X, man) in compute_all(items).items()]


def check(directory: str | Path | None = None) -> list[str]:
    """Problems found comparing the shipped files with a fresh computation (empty list = all good)."""
    from .store import read_embeddings

    problems = []
    for stem, (X, _) in compute_all().items():
        try:
            E, items, man = read_embeddings(stem, directory)
        except (FileNotFoundError, ValueError) as e:
            problems.append(f"{stem}: {e}")
            continue
        if items != instruction_set():
            problems.append(f"{stem}: instruction list differs from the current instruction set")
        elif E.shape != X.shape or not np.array_equal(E, X):
            problems.append(f"{stem}: values differ from core.baselines' computation")
        if man.get("family") != "baseline":
            problems.append(f"{stem}: manifest family is {man.get('family')!r}, expected 'baseline'")
    return problems


def cli(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "baselines":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="python -m core baselines",
                                description="write the control embeddings (bag-of-words, tfidf, factors, "
                                            "random-s0..s4) as embedding files with manifests")
    p.add_argument("--ship", action="store_true",
                   help="write to assets/embeddings (the default anyway: baselines are exact and not cached)")
    p.add_argument("--out", type=Path, default=None, help="write to this directory instead of assets/embeddings")
    p.add_argument("--check", action="store_true", help="only compare the shipped files with a recomputation")
    a = p.parse_args(argv)
    if a.check:
        problems = check(a.out)
        for msg in problems:
            print(f"MISMATCH {msg}", file=sys.stderr)
        print("baselines: all shipped files match" if not problems else f"baselines: {len(problems)} problem(s)")
        return 1 if problems else 0
    for path in ship(a.out):
        X = np.load(path)["embeddings"]
        print(f"wrote {path}  ({X.shape[0]} x {X.shape[1]})")
    print("untrained-alm-s* files come from the agent stage (python -m core embed-agent), not from here")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli())

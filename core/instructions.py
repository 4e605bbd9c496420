"""The closed instruction set: vocabulary, grammar, the ordered list, parsing.

This module is the single place where the vocabulary and the grammar live. Everything downstream
(environments, agent tokeniser, embedders, metrics, dashboard) reads them from here and keys its caches
on :func:`instruction_set_hash`.

Reconstruction note: the paper (Milano & Nolfi, arXiv 2601.22948) uses 108 instructions from a closed
vocabulary but does not publish the list. Ours is

    determiner {the, a} x colour {red, green, blue, purple, yellow, grey} x 9 verb-object forms
    (go to {ball, box, key, door}, pick up {ball, box, key}, open {door, box})  ->  108 instructions, 17 words.

A grammar is data (:class:`Grammar`); a user can build a subset (``DEFAULT_GRAMMAR.subset(verbs=["go to"])``)
or a different grammar without touching other modules.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import pandas as pd

VERBS: tuple[str, ...] = ("go to", "pick up", "open")
DETERMINERS: tuple[str, ...] = ("the", "a")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "grey")
OBJECTS: tuple[str, ...] = ("ball", "box", "key", "door")
#: which objects each verb can take (minigrid: pickup forbids doors; we add "open box", see env.OpenBoxInstr)
VERB_OBJECTS: dict[str, tuple[str, ...]] = {
    "go to": ("ball", "box", "key", "door"),
    "pick up": ("ball", "box", "key"),
    "open": ("door", "box"),
}
FACTORS: tuple[str, ...] = ("verb", "determiner", "colour", "object")


class InstructionError(ValueError):
    """An instruction is not in the grammar: unknown word or ungrammatical order."""


@dataclass(frozen=True)
class Instruction:
    """Structured form of one instruction ("verb determiner colour object")."""

    verb: str
    determiner: str
    colour: str
    object: str

    @property
    def text(self) -> str:
        return f"{self.verb} {self.determiner} {self.colour} {self.object}"

    def as_dict(self) -> dict[str, str]:
        return {"instruction": self.text, "verb": self.verb, "determiner": self.determiner,
                "colour": self.colour, "object": self.object}


@dataclass(frozen=True)
class Grammar:
    """A closed grammar "VERB DET COLOUR OBJECT". Order of the tuples defines the order of the set."""

    verbs: tuple[str, ...] = VERBS
    determiners: tuple[str, ...] = DETERMINERS
    colours: tuple[str, ...] = COLOURS
    verb_objects: tuple[tuple[str, tuple[str, ...]], ...] = field(
        default_factory=lambda: tuple((v, VERB_OBJECTS[v]) for v in VERBS))

    def __post_init__(self) -> None:
        for v, objs in self.verb_objects:
            if v not in self.verbs:
                raise InstructionError(f"verb {v!r} has objects but is not in verbs {self.verbs}")
            for o in objs:
                if o not in OBJECTS:
                    raise InstructionError(f"object {o!r} is not a minigrid object type {OBJECTS}")
            if v == "pick up" and "door" in objs:
                raise InstructionError("'pick up' cannot take 'door' (minigrid doors cannot be carried)")
        for c in self.colours:
            if c not in COLOURS:
                raise InstructionError(f"colour {c!r} is not a minigrid colour {COLOURS}")

    @property
    def objects_for(self) -> dict[str, tuple[str, ...]]:
        return dict(self.verb_objects)

    @property
    def objects(self) -> tuple[str, ...]:
        seen: list[str] = []
        for _, objs in self.verb_objects:
            seen += [o for o in objs if o not in seen]
        return tuple(seen)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every word, verbs split into words ("go", "to", ...), in a fixed order without repeats."""
        words: list[str] = []
        for w in [*" ".join(self.verbs).split(), *self.determiners, *self.colours, *self.objects]:
            if w not in words:
                words.append(w)
        return tuple(words)

    def instructions(self) -> list[Instruction]:
        """The ordered set: verb-object form (grammar order) x determiner x colour."""
        out = []
        for verb, objs in self.verb_objects:
            for obj in objs:
                for det in self.determiners:
                    for col in self.colours:
                        out.append(Instruction(verb, det, col, obj))
        return out

    def subset(self, verbs: Iterable[str] | None = None, determiners: Iterable[str] | None = None,
               colours: Iterable[str] | None = None, objects: Iterable[str] | None = None) -> "Grammar":
        """A smaller grammar keeping only the given values (``None`` keeps all)."""
        keep = lambda vals, allowed: tuple(v for v in allowed if vals is None or v in set(vals))  # noqa: E731
        vs = keep(verbs, self.verbs)
        vo = tuple((v, keep(objects, objs)) for v, objs in self.verb_objects if v in vs)
        vo = tuple((v, objs) for v, objs in vo if objs)
        g = Grammar(verbs=tuple(v for v, _ in vo), determiners=keep(determiners, self.determiners),
                    colours=keep(colours, self.colours), verb_objects=vo)
        if not g.instructions():
            raise InstructionError("this subset selects no instruction")
        return g

    def parse(self, text: str) -> Instruction:
        """Parse one instruction; raise :class:`InstructionError` naming the offending word."""
        if not isinstance(text, str):
            raise InstructionError(f"an instruction must be a string, got {type(text).__name__}")
        words = text.strip().lower().split()
        vocab = self.vocabulary
        for w in words:
            if w not in vocab:
                raise InstructionError(
                    f"unknown word {w!r} in {text!r}; the vocabulary is: {', '.join(vocab)}")
        form = "VERB DETERMINER COLOUR OBJECT, e.g. 'go to the red ball'"
        for verb in self.verbs:
            vw = verb.split()
            if words[: len(vw)] == vw:
                rest = words[len(vw):]
                break
        else:
            bad = words[0] if words else "(empty)"
            raise InstructionError(f"{text!r} must start with a verb {self.verbs}, found {bad!r}; expected {form}")
        if len(rest) != 3:
            raise InstructionError(f"{text!r} has {len(rest)} words after the verb, expected 3; expected {form}")
        det, col, obj = rest
        for word, allowed, slot in ((det, self.determiners, "determiner"), (col, self.colours, "colour"),
                                    (obj, self.objects, "object")):
            if word not in allowed:
                raise InstructionError(f"{word!r} in {text!r} is not a {slot}; {slot}s are {allowed}")
        if obj not in self.objects_for[verb]:
            raise InstructionError(f"{verb!r} cannot take {obj!r} in {text!r}; "
                                   f"{verb!r} takes {self.objects_for[verb]}")
        return Instruction(verb, det, col, obj)


DEFAULT_GRAMMAR = Grammar()


@lru_cache(maxsize=16)
def _instruction_tuple(grammar: Grammar) -> tuple[str, ...]:
    return tuple(i.text for i in grammar.instructions())


def instruction_set(grammar: Grammar = DEFAULT_GRAMMAR) -> list[str]:
    """The ordered list of instruction strings (108 for the default grammar)."""
    return list(_instruction_tuple(grammar))


def parse(text: str, grammar: Grammar = DEFAULT_GRAMMAR) -> dict[str, str]:
    """Metadata of one instruction: {'instruction', 'verb', 'determiner', 'colour', 'object'}.

    Raises :class:`InstructionError` for an unknown word or bad grammar (the message names the word).
    """
    return grammar.parse(text).as_dict()


def metadata(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> pd.DataFrame:
    """One row per instruction (default: the whole set, in order) with its factors."""
    items = instruction_set(grammar) if instructions is None else list(instructions)
    return pd.DataFrame([parse(t, grammar) for t in items])


def instruction_set_hash(instructions: Sequence[str] | None = None) -> str:
    """Short sha256 of the ordered list; every cache downstream keys on it."""
    items = instruction_set() if instructions is None else list(instructions)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def index_of(text: str, instructions: Sequence[str] | None = None) -> int:
    """Position of an instruction in the (default) ordered set, with a clear error if absent."""
    items = instruction_set() if instructions is None else list(instructions)
    norm = " ".join(text.strip().lower().split())
    try:
        return items.index(norm)
    except ValueError:
        parse(norm)  # raises the precise grammar error if it is not even grammatical
        raise InstructionError(f"{text!r} is grammatical but not in this instruction set") from None

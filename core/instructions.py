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

Wider sets (issue 15): :func:`presets` gives the nested presets ``paper108`` < ``+colourless`` < ``+location``
< ``+putnext`` < ``+sequence``, each switching on one more block of BabyAI forms (minigrid's ``ObjDesc``,
``PutNextInstr``, ``BeforeInstr``/``AfterInstr``/``AndInstr``). Conventions of the extended forms:

* The ordered set is a concatenation of blocks, in this order (each only if the grammar enables it):
  1. paper108-shaped "VERB DET COLOUR OBJECT" (the old order, so ``paper108`` is a prefix of every preset);
  2. colourless "VERB DET OBJECT" (``colourless=True``);
  3. with a location "VERB DET [COLOUR] OBJECT LOC" (``locations``), LOC one of "on your left", "on your
     right", "in front of you", "behind you" (minigrid's phrases; relative to the agent's start pose);
  4. "put DET [COLOUR] OBJECT next to DET [COLOUR] OBJECT" (``put_next=True``); the moved object is a ball,
     box or key, the fixed one any object; the two descriptions never overlap (same type and same colour,
     or same type with one colourless: minigrid rejects those levels);
  5. two clauses joined by a connective (``connectives``): "A, then B" (BeforeInstr), "A after you B"
     (AfterInstr: B first), "A and B" (AndInstr: any order). Clauses are the paper108 "the" forms (54) and
     never describe the same (colour, object): 3 x 54 x 53 - 3 x 72 = 8,370 instructions.
* An absent part is the empty string in :class:`Instruction` and in :func:`metadata` (``colour == ""`` is a
  colourless description). Tokens: words split on spaces, the comma of ", then" is a token of its own
  (:func:`words`).
* Sizes: paper108 108, +colourless 126, +location 630, +putnext 2,754, +sequence 11,124.
  ``instruction_set`` caches one tuple per grammar (built once, never enumerated twice).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
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
#: minigrid's ObjDesc locations (relative to the agent's start pose) and their surface phrases
LOCATIONS: tuple[str, ...] = ("left", "right", "front", "behind")
LOCATION_PHRASES: dict[str, str] = {"left": "on your left", "right": "on your right",
                                    "front": "in front of you", "behind": "behind you"}
#: sequence connectives: "A, then B" (BeforeInstr), "A after you B" (AfterInstr), "A and B" (AndInstr)
CONNECTIVES: tuple[str, ...] = ("then", "after you", "and")
CONNECTIVE_PHRASES: dict[str, str] = {"then": ", then ", "after you": " after you ", "and": " and "}
PUT_VERB = "put"
#: the forms (blocks) of the extended grammar, in set order (see Instruction.form)
FORMS: tuple[str, ...] = ("paper108", "colourless", "location", "putnext", "sequence-then",
                          "sequence-after-you", "sequence-and")
PUT_MOVABLE: tuple[str, ...] = ("ball", "box", "key")  #: minigrid's PutNextInstr cannot move a door
#: factor columns of :func:`metadata` for a grammar with any extended form (paper108 keeps FACTORS)
EXTENDED_FACTORS: tuple[str, ...] = (*FACTORS, "location", "connective", "verb2", "determiner2", "colour2",
                                     "object2")


class InstructionError(ValueError):
    """An instruction is not in the grammar: unknown word or ungrammatical order."""


def words(text: str) -> list[str]:
    """Tokens of an instruction: lower-cased words split on white space, a comma is a token of its own."""
    return text.strip().lower().replace(",", " , ").split()


def _desc_text(det: str, colour: str, obj: str, location: str = "") -> str:
    s = f"{det} {colour} {obj}" if colour else f"{det} {obj}"
    return f"{s} {LOCATION_PHRASES[location]}" if location else s


@dataclass(frozen=True)
class Instruction:
    """Structured form of one instruction.

    paper108 form: "verb determiner colour object". Extended parts (empty string = absent): ``colour`` ""
    (colourless), ``location`` (one of LOCATIONS), put-next's fixed object (``verb == "put"``;
    ``determiner2``/``colour2``/``object2``), and a sequence (``connective`` with the ``second`` clause).
    """

    verb: str
    determiner: str
    colour: str
    object: str
    location: str = ""
    determiner2: str = ""
    colour2: str = ""
    object2: str = ""
    connective: str = ""
    second: "Instruction | None" = None

    @property
    def is_paper108_form(self) -> bool:
        """True for the plain "verb det colour object" shape (colour given, nothing else)."""
        return bool(self.colour) and not (self.location or self.object2 or self.connective)

    @property
    def form(self) -> str:
        """The block of the module docstring this instruction belongs to: one of FORMS."""
        if self.connective:
            return "sequence-" + self.connective.replace(" ", "-")
        if self.verb == PUT_VERB:
            return "putnext"
        if self.location:
            return "location"
        return "paper108" if self.colour else "colourless"

    @property
    def clause_text(self) -> str:
        """The first (or only) clause."""
        if self.verb == PUT_VERB:
            return (f"put {_desc_text(self.determiner, self.colour, self.object, self.location)} next to "
                    f"{_desc_text(self.determiner2, self.colour2, self.object2)}")
        return f"{self.verb} {_desc_text(self.determiner, self.colour, self.object, self.location)}"

    @property
    def text(self) -> str:
        if self.connective:
            assert self.second is not None
            return self.clause_text + CONNECTIVE_PHRASES[self.connective] + self.second.clause_text
        return self.clause_text

    def as_dict(self, extended: bool = False) -> dict[str, str]:
        """{'instruction', 'verb', 'determiner', 'colour', 'object'}; with ``extended`` also EXTENDED_FACTORS
        (a sequence's second clause in verb2/determiner2/colour2/object2, put-next's fixed object in
        determiner2/colour2/object2 with verb2 "")."""
        d = {"instruction": self.text, "verb": self.verb, "determiner": self.determiner,
             "colour": self.colour, "object": self.object}
        if extended:
            s = self.second
            d.update(location=self.location, connective=self.connective, verb2=s.verb if s else "",
                     determiner2=s.determiner if s else self.determiner2, colour2=s.colour if s else self.colour2,
                     object2=s.object if s else self.object2)
        return d


@dataclass(frozen=True)
class Grammar:
    """A closed grammar "VERB DET COLOUR OBJECT". Order of the tuples defines the order of the set.

    The extension fields (all off by default, i.e. the paper108 grammar) switch on the blocks described in
    the module docstring: ``colourless`` descriptions, ``locations`` phrases, ``put_next`` and sequence
    ``connectives``.
    """

    verbs: tuple[str, ...] = VERBS
    determiners: tuple[str, ...] = DETERMINERS
    colours: tuple[str, ...] = COLOURS
    verb_objects: tuple[tuple[str, tuple[str, ...]], ...] = field(
        default_factory=lambda: tuple((v, VERB_OBJECTS[v]) for v in VERBS))
    colourless: bool = False
    locations: tuple[str, ...] = ()
    put_next: bool = False
    connectives: tuple[str, ...] = ()

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
        for loc in self.locations:
            if loc not in LOCATIONS:
                raise InstructionError(f"location {loc!r} is not a minigrid location {LOCATIONS}")
        for c in self.connectives:
            if c not in CONNECTIVES:
                raise InstructionError(f"connective {c!r} is not one of {CONNECTIVES}")
        if PUT_VERB in self.verbs:
            raise InstructionError("'put' is switched on with put_next=True, not as a verb")

    @property
    def extended(self) -> bool:
        """True if any extended block is on (then :func:`metadata` has EXTENDED_FACTORS columns)."""
        return bool(self.colourless or self.locations or self.put_next or self.connectives)

    @property
    def factors(self) -> tuple[str, ...]:
        return EXTENDED_FACTORS if self.extended else FACTORS

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
        """Every word, verbs split into words ("go", "to", ...), in a fixed order without repeats (the
        paper108 words first, then those of the extended blocks: location phrases, "put next to", ", then",
        "after you", "and")."""
        extra: list[str] = []
        for loc in self.locations:
            extra += LOCATION_PHRASES[loc].split()
        if self.put_next:
            extra += ["put", "next", "to"]
        for c in self.connectives:
            extra += words(CONNECTIVE_PHRASES[c])
        out: list[str] = []
        for w in [*" ".join(self.verbs).split(), *self.determiners, *self.colours, *self.objects, *extra]:
            if w not in out:
                out.append(w)
        return tuple(out)

    # -- the ordered set ------------------------------------------------------------------------------------
    def _colour_options(self) -> tuple[str, ...]:
        return (*self.colours, "") if self.colourless else self.colours

    def _base(self) -> list[Instruction]:
        out = []
        for verb, objs in self.verb_objects:
            for obj in objs:
                for det in self.determiners:
                    for col in self.colours:
                        out.append(Instruction(verb, det, col, obj))
        return out

    def _put_pairs(self) -> list[Instruction]:
        cols = self._colour_options()
        moves = [(d, c, o) for o in self.objects if o in PUT_MOVABLE for d in self.determiners for c in cols]
        fixed = [(d, c, o) for o in self.objects for d in self.determiners for c in cols]
        return [Instruction(PUT_VERB, d, c, o, determiner2=d2, colour2=c2, object2=o2)
                for d, c, o in moves for d2, c2, o2 in fixed if not _overlap(c, o, c2, o2)]

    def sequence_clauses(self) -> list[Instruction]:
        """The clauses of the sequence block: paper108-shaped "the" forms, in set order."""
        return [i for i in self._base() if i.determiner == "the"]

    def instructions(self) -> list[Instruction]:
        """The ordered set: the blocks of the module docstring, each in its own fixed order."""
        out = self._base()  # paper108 block: verb-object form (grammar order) x determiner x colour
        if self.colourless:
            out += [Instruction(v, d, "", o) for v, objs in self.verb_objects for o in objs for d in self.determiners]
        for loc in self.locations:
            out += [Instruction(v, d, c, o, location=loc) for v, objs in self.verb_objects for o in objs
                    for d in self.determiners for c in self._colour_options()]
        if self.put_next:
            out += self._put_pairs()
        clauses = self.sequence_clauses() if self.connectives else []
        for conn in self.connectives:
            out += [replace(a, connective=conn, second=b) for a in clauses for b in clauses
                    if (a.colour, a.object) != (b.colour, b.object)]
        return out

    def subset(self, verbs: Iterable[str] | None = None, determiners: Iterable[str] | None = None,
               colours: Iterable[str] | None = None, objects: Iterable[str] | None = None) -> "Grammar":
        """A smaller grammar keeping only the given values (``None`` keeps all); extension fields are kept
        (``put_next`` only if ``verbs`` is None or names "put")."""
        keep = lambda vals, allowed: tuple(v for v in allowed if vals is None or v in set(vals))  # noqa: E731
        vs = keep(verbs, self.verbs)
        vo = tuple((v, keep(objects, objs)) for v, objs in self.verb_objects if v in vs)
        vo = tuple((v, objs) for v, objs in vo if objs)
        put = self.put_next and (verbs is None or PUT_VERB in set(verbs))
        g = Grammar(verbs=tuple(v for v, _ in vo), determiners=keep(determiners, self.determiners),
                    colours=keep(colours, self.colours), verb_objects=vo, colourless=self.colourless,
                    locations=self.locations, put_next=put, connectives=self.connectives)
        if not g.instructions():
            raise InstructionError("this subset selects no instruction")
        return g

    def parse(self, text: str) -> Instruction:
        """Parse one instruction; raise :class:`InstructionError` naming the offending word."""
        if not isinstance(text, str):
            raise InstructionError(f"an instruction must be a string, got {type(text).__name__}")
        if self.extended:
            return _parse_extended(self, text)
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


def _overlap(c1: str, o1: str, c2: str, o2: str) -> bool:
    """Could one object match both descriptions (same type, and same colour or either colourless)?"""
    return o1 == o2 and (c1 == c2 or not c1 or not c2)


_EXT_FORM = ("VERB DETERMINER [COLOUR] OBJECT [LOCATION], 'put' DESCRIPTION 'next to' DESCRIPTION, or two "
             "clauses joined by ', then' / 'after you' / 'and'")


def _parse_desc(g: Grammar, toks: list[str], text: str, allow_location: bool) -> tuple[str, str, str, str]:
    """(determiner, colour, object, location) from the tokens of one description (all consumed)."""
    if not toks:
        raise InstructionError(f"{text!r} has a verb without an object description; expected {_EXT_FORM}")
    det, rest = toks[0], toks[1:]
    if det not in g.determiners:
        raise InstructionError(f"{det!r} in {text!r} is not a determiner; determiners are {g.determiners}")
    col = ""
    if rest and rest[0] in g.colours:
        col, rest = rest[0], rest[1:]
    if not rest:
        raise InstructionError(f"{text!r} has no object after {det!r}; expected {_EXT_FORM}")
    obj, rest = rest[0], rest[1:]
    if obj not in g.objects:
        slot = "colour" if obj in COLOURS or (col and obj in g.colours) else "object"
        allowed = g.objects if slot == "object" else g.colours
        raise InstructionError(f"{obj!r} in {text!r} is not a {slot} here; {slot}s are {allowed}")
    if not col and not g.colourless:
        raise InstructionError(f"{text!r} has no colour before {obj!r} (this grammar has no colourless "
                               f"descriptions); expected {_EXT_FORM}")
    loc = ""
    if rest:
        phrase = " ".join(rest)
        found = [k for k, v in LOCATION_PHRASES.items() if v == phrase]
        if not allow_location or not found or found[0] not in g.locations:
            raise InstructionError(f"{phrase!r} in {text!r} is not a location phrase of this grammar "
                                   f"{tuple(LOCATION_PHRASES[k] for k in g.locations)}; expected {_EXT_FORM}")
        loc = found[0]
    return det, col, obj, loc


def _parse_clause(g: Grammar, toks: list[str], text: str) -> Instruction:
    if g.put_next and toks[:1] == [PUT_VERB]:
        rest = toks[1:]
        cut = next((i for i in range(len(rest) - 1) if rest[i: i + 2] == ["next", "to"]), None)
        if cut is None:
            raise InstructionError(f"{text!r}: 'put' needs '... next to ...'; expected {_EXT_FORM}")
        d, c, o, _ = _parse_desc(g, rest[:cut], text, allow_location=False)
        d2, c2, o2, _ = _parse_desc(g, rest[cut + 2:], text, allow_location=False)
        if o not in PUT_MOVABLE:
            raise InstructionError(f"'put' cannot move {o!r} in {text!r}; it moves {PUT_MOVABLE}")
        if _overlap(c, o, c2, o2):
            raise InstructionError(f"{text!r}: one object could match both descriptions (minigrid rejects "
                                   "such levels)")
        return Instruction(PUT_VERB, d, c, o, determiner2=d2, colour2=c2, object2=o2)
    for verb in g.verbs:
        vw = verb.split()
        if toks[: len(vw)] == vw:
            break
    else:
        bad = toks[0] if toks else "(empty)"
        verbs = (*g.verbs, PUT_VERB) if g.put_next else g.verbs
        raise InstructionError(f"{text!r} must start with a verb {verbs}, found {bad!r}; expected {_EXT_FORM}")
    d, c, o, loc = _parse_desc(g, toks[len(vw):], text, allow_location=True)
    if o not in g.objects_for[verb]:
        raise InstructionError(f"{verb!r} cannot take {o!r} in {text!r}; {verb!r} takes {g.objects_for[verb]}")
    return Instruction(verb, d, c, o, location=loc)


def _parse_extended(g: Grammar, text: str) -> Instruction:
    toks = words(text)
    vocab = g.vocabulary
    for w in toks:
        if w not in vocab:
            raise InstructionError(f"unknown word {w!r} in {text!r}; the vocabulary is: {', '.join(vocab)}")
    for conn in g.connectives:
        cw = words(CONNECTIVE_PHRASES[conn])
        for i in range(1, len(toks) - len(cw)):
            if toks[i: i + len(cw)] == cw:
                a = _parse_clause(g, toks[:i], text)
                b = _parse_clause(g, toks[i + len(cw):], text)
                ok = _clause_texts(g)
                for part in (a, b):
                    if part.clause_text not in ok:
                        raise InstructionError(f"{part.clause_text!r} in {text!r} cannot be a clause of a sequence "
                                               "(clauses are 'VERB the COLOUR OBJECT')")
                if (a.colour, a.object) == (b.colour, b.object):
                    raise InstructionError(f"the two clauses of {text!r} describe the same object")
                return replace(a, connective=conn, second=b)
    if "," in toks:
        raise InstructionError(f"',' in {text!r} must be followed by 'then'; expected {_EXT_FORM}")
    return _parse_clause(g, toks, text)


DEFAULT_GRAMMAR = Grammar()


def presets() -> dict[str, Grammar]:
    """The nested instruction-set presets, smallest first: each set's instructions are a prefix of the next.

    ``paper108`` (108, == DEFAULT_GRAMMAR), ``+colourless`` (126), ``+location`` (630), ``+putnext`` (2,754),
    ``+sequence`` (11,124). See the module docstring for the blocks each one adds.
    """
    colourless = replace(DEFAULT_GRAMMAR, colourless=True)
    location = replace(colourless, locations=LOCATIONS)
    putnext = replace(location, put_next=True)
    sequence = replace(putnext, connectives=CONNECTIVES)
    return {"paper108": DEFAULT_GRAMMAR, "+colourless": colourless, "+location": location,
            "+putnext": putnext, "+sequence": sequence}


def preset(name: str) -> Grammar:
    """One preset by name, with a clear error listing the names."""
    ps = presets()
    if name not in ps:
        raise InstructionError(f"unknown instruction-set preset {name!r}; presets are {list(ps)}")
    return ps[name]


@lru_cache(maxsize=16)
def _instruction_tuple(grammar: Grammar) -> tuple[str, ...]:
    return tuple(i.text for i in grammar.instructions())


@lru_cache(maxsize=16)
def _index_map(grammar: Grammar) -> dict[str, int]:
    return {t: i for i, t in enumerate(_instruction_tuple(grammar))}


@lru_cache(maxsize=16)
def _clause_texts(grammar: Grammar) -> frozenset[str]:
    return frozenset(i.text for i in grammar.sequence_clauses())


def instruction_set(grammar: Grammar = DEFAULT_GRAMMAR) -> list[str]:
    """The ordered list of instruction strings (108 for the default grammar).

    Built once per grammar and cached as one tuple; each call returns a new list of the same strings.
    """
    return list(_instruction_tuple(grammar))


def instruction_count(grammar: Grammar = DEFAULT_GRAMMAR) -> int:
    """Size of the set (from the cached tuple)."""
    return len(_instruction_tuple(grammar))


def parse(text: str, grammar: Grammar = DEFAULT_GRAMMAR) -> dict[str, str]:
    """Metadata of one instruction: {'instruction', 'verb', 'determiner', 'colour', 'object'} (and, for an
    extended grammar, the other EXTENDED_FACTORS columns; absent parts are "").

    Raises :class:`InstructionError` for an unknown word or bad grammar (the message names the word).
    """
    return grammar.parse(text).as_dict(extended=grammar.extended)


def metadata(instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> pd.DataFrame:
    """One row per instruction (default: the whole set, in order) with its factors (``grammar.factors``)."""
    if instructions is None:
        rows = [i.as_dict(extended=grammar.extended) for i in grammar.instructions()]
    else:
        rows = [parse(t, grammar) for t in instructions]
    return pd.DataFrame(rows, columns=["instruction", *grammar.factors])


def instruction_set_hash(instructions: Sequence[str] | None = None) -> str:
    """Short sha256 of the ordered list; every cache downstream keys on it."""
    items = instruction_set() if instructions is None else list(instructions)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def index_of(text: str, instructions: Sequence[str] | None = None, grammar: Grammar = DEFAULT_GRAMMAR) -> int:
    """Position of an instruction in ``instructions`` (default: ``grammar``'s ordered set), with a clear error
    if absent (grammar errors are checked under ``grammar``)."""
    norm = " ".join(text.strip().lower().split())
    if instructions is None:
        pos = _index_map(grammar).get(norm)
        if pos is not None:
            return pos
    else:
        items = list(instructions)
        if norm in items:
            return items.index(norm)
    parse(norm, grammar)  # raises the precise grammar error if it is not even grammatical
    raise InstructionError(f"{text!r} is grammatical but not in this instruction set")

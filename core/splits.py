"""Held-out instruction splits: which of the 108 instructions an agent never trains on (compositional
generalisation, the paper's "break condition" for its Mechanism 1).

A split is data (:class:`Split`): a name, what it holds out, and the held-out instructions in instruction-set
order. The agent still embeds and executes all 108 instructions (its vocabulary covers every held-out word);
only the training demos of the held-out instructions are dropped (``core.train``, ``TrainConfig.holdout``).

The three splits (``splits()`` lists them; ``python -m core splits`` prints them):

- ``colour-object``: four colour x object pairs held out across every verb and determiner
  (:data:`HELD_OUT_PAIRS`: red key, purple box, green door, yellow ball; 18 instructions). Each word still occurs
  in other pairs, so a held-out item is a new *combination* of known words.
- ``verb-object``: one verb x object form held out for every colour and determiner
  (:data:`HELD_OUT_FORM`: "pick up ... box"; 12 instructions). The agent picks up balls and keys and goes to /
  opens boxes, but never picks up a box.
- ``random-10pct``: 10 % of the instructions (11), drawn with ``numpy.random.default_rng(0)``.

A split that would hold out every instruction containing some word is rejected (:class:`SplitError`): that
word's embedding would never receive a gradient, so "zero-shot" would only measure its initialisation.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .instructions import instruction_set, metadata

HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (("red", "key"), ("purple", "box"), ("green", "door"),
                                               ("yellow", "ball"))
HELD_OUT_FORM: tuple[str, str] = ("pick up", "box")
RANDOM_FRACTION, RANDOM_SEED = 0.10, 0


class SplitError(ValueError):
    """An unknown split, or a held-out set that cannot be trained around (empty, everything, a word lost)."""


@dataclass(frozen=True)
class Split:
    """A held-out set of instructions (in instruction-set order) and what it tests."""

    name: str
    description: str
    held_out: tuple[str, ...]

    def trained(self, instructions: Sequence[str] | None = None) -> list[str]:
        """The instructions the agent trains on (the set minus the held-out ones, in set order)."""
        out = set(self.held_out)
        return [t for t in (instruction_set() if instructions is None else instructions) if t not in out]

    def mask(self, instructions: Sequence[str] | None = None) -> np.ndarray:
        """Boolean (n,) over ``instructions``: True where the instruction is held out."""
        out = set(self.held_out)
        return np.array([t in out for t in (instruction_set() if instructions is None else instructions)])


def check_held_out(held_out: Sequence[str], instructions: Sequence[str] | None = None) -> None:
    """Raise :class:`SplitError` unless ``held_out`` is a non-empty proper subset of ``instructions`` whose
    removal leaves every word of the held-out items in at least one trained instruction."""
    items = list(instruction_set() if instructions is None else instructions)
    unknown = [t for t in held_out if t not in set(items)]
    if unknown:
        raise SplitError(f"held-out instructions not in the instruction set: {unknown[:5]}")
    if not held_out:
        raise SplitError("a split must hold out at least one instruction")
    trained = [t for t in items if t not in set(held_out)]
    if not trained:
        raise SplitError("a split cannot hold out every instruction")
    seen = {w for t in trained for w in t.split()}
    lost = sorted({w for t in held_out for w in t.split()} - seen)
    if lost:
        raise SplitError(f"this split holds out every instruction containing {lost}: "
                         f"{'that word' if len(lost) == 1 else 'those words'} would never appear in training, so "
                         "its embedding would never receive a gradient; keep at least one trained instruction "
                         "with each word")


def _colour_object() -> tuple[str, ...]:
    meta = metadata()
    keep = np.zeros(len(meta), bool)
    for colour, obj in HELD_OUT_PAIRS:
        keep |= (meta.colour == colour).to_numpy() & (meta.object == obj).to_numpy()
    return tuple(meta.instruction[keep])


def _verb_object() -> tuple[str, ...]:
    meta = metadata()
    verb, obj = HELD_OUT_FORM
    return tuple(meta.instruction[(meta.verb == verb) & (meta.object == obj)])


def _random() -> tuple[str, ...]:
    items = instruction_set()
    n = int(round(RANDOM_FRACTION * len(items)))
    idx = np.sort(np.random.default_rng(RANDOM_SEED).choice(len(items), size=n, replace=False))
    return tuple(items[i] for i in idx)


def split_definitions() -> dict[str, Split]:
    """Every split as a :class:`Split`, checked (:func:`check_held_out`)."""
    pairs = ", ".join(f"{c} {o}" for c, o in HELD_OUT_PAIRS)
    out = {
        "colour-object": Split("colour-object", f"colour x object pairs held out across every verb and "
                               f"determiner: {pairs}", _colour_object()),
        "verb-object": Split("verb-object", f"the form '{HELD_OUT_FORM[0]} ... {HELD_OUT_FORM[1]}' held out for "
                             "every colour and determiner", _verb_object()),
        "random-10pct": Split("random-10pct", f"{RANDOM_FRACTION:.0%} of the instructions at random "
                              f"(numpy default_rng({RANDOM_SEED}))", _random()),
    }
    for s in out.values():
        check_held_out(s.held_out)
    return out


def splits() -> dict[str, list[str]]:
    """{split name: the held-out instructions (instruction-set order)}. Public, stable."""
    return {name: list(s.held_out) for name, s in split_definitions().items()}


def get_split(name: str) -> Split:
    """The split called ``name``; :class:`SplitError` naming the known ones otherwise."""
    defs = split_definitions()
    if name not in defs:
        raise SplitError(f"unknown split {name!r}; known splits: {', '.join(defs)}")
    return defs[name]


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core splits",
                                description="The held-out instruction splits (compositional generalisation).")
    p.add_argument("--json", action="store_true", help="print {split: [held-out instructions]} as JSON")
    p.add_argument("--split", default=None, help="print only this split")
    args = p.parse_args(argv[1:])
    try:
        defs = split_definitions() if args.split is None else {args.split: get_split(args.split)}
    except SplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({n: list(s.held_out) for n, s in defs.items()}, indent=1))
        return 0
    n = len(instruction_set())
    for s in defs.values():
        print(f"{s.name}: {len(s.held_out)} of {n} held out ({s.description})")
        for t in s.held_out:
            print(f"  {t}")
    return 0

"""Issue 15: the instruction-set presets of the one grammar module (sizes, nesting, parsing, paper108 kept)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.instructions import (DEFAULT_GRAMMAR, EXTENDED_FACTORS, FACTORS, FORMS, InstructionError, _instruction_tuple,
                               index_of, instruction_set, instruction_set_hash, metadata, parse, preset, presets)

SIZES = {"paper108": 108, "+colourless": 126, "+location": 630, "+putnext": 2754, "+sequence": 11124}
PAPER108_HASH = "7199e4ed72dbfb4f"  # instruction_set_hash() before issue 15


def test_presets_are_ordered_nested_and_sized():
    ps = presets()
    assert list(ps) == list(SIZES)
    prev: list[str] = []
    for name, g in ps.items():
        items = instruction_set(g)
        assert len(items) == SIZES[name] and len(set(items)) == len(items), name
        assert items[: len(prev)] == prev, f"{name} does not contain the previous set as its prefix"
        prev = items


def test_paper108_preset_is_unchanged():
    g = presets()["paper108"]
    assert g == DEFAULT_GRAMMAR and not g.extended
    assert instruction_set(g) == instruction_set()
    assert instruction_set_hash(instruction_set(g)) == PAPER108_HASH == instruction_set_hash()
    assert g.vocabulary == ("go", "to", "pick", "up", "open", "the", "a", "red", "green", "blue", "purple",
                            "yellow", "grey", "ball", "box", "key", "door")
    assert list(metadata(grammar=g).columns) == ["instruction", *FACTORS]
    assert parse("go to the red ball") == {"instruction": "go to the red ball", "verb": "go to",
                                           "determiner": "the", "colour": "red", "object": "ball"}


def test_paper108_episodes_are_bit_identical_to_the_recording():
    """Grid, pose, mission and expert actions of 108 x 3 seeds as recorded before issue 15."""
    from tests.paper108_fingerprint import fingerprint

    recorded = json.loads((Path(__file__).parent / "data" / "paper108_fingerprints.json").read_text())
    assert len(recorded) == 324
    bad = [k for k, v in recorded.items() if fingerprint(k.split("|")[0], int(k.split("|")[1])) != v]
    assert not bad, f"{len(bad)} paper108 episodes changed, e.g. {bad[:3]}"


@pytest.mark.parametrize("text, expected", [
    ("go to the ball", dict(verb="go to", determiner="the", colour="", object="ball", form="colourless")),
    ("pick up a red key on your left", dict(verb="pick up", determiner="a", colour="red", object="key",
                                            location="left", form="location")),
    ("open the door in front of you", dict(verb="open", colour="", object="door", location="front")),
    ("go to a box behind you", dict(location="behind", determiner="a", colour="")),
    ("go to the grey box on your right", dict(location="right")),
    ("put the red ball next to a blue box", dict(verb="put", determiner="the", colour="red", object="ball",
                                                 determiner2="a", colour2="blue", object2="box", form="putnext")),
    ("put a key next to the door", dict(verb="put", colour="", object="key", colour2="", object2="door")),
    ("go to the red ball, then pick up the blue key", dict(connective="then", verb2="pick up", object2="key",
                                                            colour2="blue", form="sequence-then")),
    ("open the red door after you go to the grey box", dict(connective="after you", verb="open",
                                                            verb2="go to", form="sequence-after-you")),
    ("Pick up the green box  and  open the yellow box", dict(connective="and", verb2="open", object2="box")),
])
def test_new_words_are_parsed(text, expected):
    g = presets()["+sequence"]
    m = parse(text, g)
    assert set(m) == {"instruction", *EXTENDED_FACTORS}
    form = expected.pop("form", None)
    for k, v in expected.items():
        assert m[k] == v, (k, m)
    if form:
        assert g.parse(text).form == form
    assert m["instruction"] in set(instruction_set(g))
    assert index_of(text.replace(" ,", ","), grammar=g) == instruction_set(g).index(m["instruction"])


@pytest.mark.parametrize("name, text, fragment", [
    ("+sequence", "go to the red ball on your top", "unknown word 'top'"),
    ("+putnext", "go to the red ball, then go to the blue key", "unknown word ','"),
    ("+putnext", "go to the red ball and go to the blue key", "unknown word 'and'"),
    ("+colourless", "go to the ball on your left", "unknown word 'on'"),
    ("paper108", "go to the ball", "expected 3"),
    ("paper108", "put the red ball next to the blue box", "unknown word 'put'"),
    ("+sequence", "put the red ball next to the ball", "match both"),
    ("+sequence", "put the red door next to the blue box", "cannot move 'door'"),
    ("+sequence", "put the red ball on your left next to the blue box", "not a location phrase"),
    ("+sequence", "go to the red ball, then go to a blue key", "cannot be a clause"),
    ("+sequence", "go to the red ball on your left and go to the blue key", "cannot be a clause"),
    ("+sequence", "go to the red ball, then pick up the red ball", "same object"),
    ("+sequence", "pick up the red door", "cannot take 'door'"),
    ("+sequence", "go to the red ball left", "not a location phrase"),
    ("+sequence", "go the red ball", "must start with a verb"),
    ("+sequence", "go to red the ball", "is not a determiner"),
])
def test_unknown_and_ungrammatical_are_rejected(name, text, fragment):
    with pytest.raises(InstructionError, match=fragment) as e:
        parse(text, preset(name))
    if "unknown word" in fragment:
        assert "the vocabulary is" in str(e.value)


def test_every_instruction_round_trips_and_metadata_matches():
    g = presets()["+sequence"]
    items = instruction_set(g)
    structured = g.instructions()
    assert [i.text for i in structured] == items
    assert all(g.parse(t) == i for t, i in zip(items[::7], structured[::7]))
    df = metadata(grammar=g)
    assert list(df.columns) == ["instruction", *EXTENDED_FACTORS] and len(df) == len(items)
    forms = [i.form for i in structured]
    assert [f for f in FORMS if f in forms] == list(FORMS)
    assert forms.count("location") == 504 and forms.count("putnext") == 2124
    assert (df.loc[df.connective != "", "verb2"] != "").all()
    assert (df.loc[df.verb == "put", "object2"] != "").all()
    assert metadata(items[200:205], g).equals(df.iloc[200:205].reset_index(drop=True))


def test_the_set_is_built_once_and_shared():
    g = presets()["+sequence"]
    a, b = instruction_set(g), instruction_set(g)
    assert a == b and a is not b  # callers get their own list ...
    assert all(x is y for x, y in zip(a[:50], b[:50]))  # ... of the same cached strings
    assert _instruction_tuple(g) is _instruction_tuple(presets()["+sequence"])


def test_unknown_preset_and_cli(capsys):
    with pytest.raises(InstructionError, match="presets are"):
        preset("+everything")
    from core.instructions_cli import cli

    assert cli(["instructions", "--grammar", "+location", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "630 instructions over 26 words" in out and "behind" in out
    assert instruction_set_hash(instruction_set(preset("+location"))) in out


def test_demo_cache_key_of_paper108_is_unchanged():
    from core.demos import DEMOS_VERSION, cache_params
    from core.env import EnvConfig

    p = cache_params(100, 0, EnvConfig(), instruction_set())
    assert DEMOS_VERSION == 1
    assert p == {"version": 1, "n": 100, "seed": 0, "config": EnvConfig().as_dict(),
                 "instruction_set": PAPER108_HASH}
    assert cache_params(100, 0, EnvConfig(), instruction_set(), presets()["paper108"]) == p
    ext = cache_params(100, 0, EnvConfig(), instruction_set(presets()["+location"]), presets()["+location"])
    assert "grammar" in ext and ext["instruction_set"] != PAPER108_HASH

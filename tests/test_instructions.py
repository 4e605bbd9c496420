import pytest

from core.instructions import (DEFAULT_GRAMMAR, InstructionError, index_of, instruction_set,
                               instruction_set_hash, metadata, parse)


def test_default_set_is_108_unique_over_17_words():
    items = instruction_set()
    assert len(items) == 108 and len(set(items)) == 108
    assert len(DEFAULT_GRAMMAR.vocabulary) == 17
    words = {w for s in items for w in s.split()}
    assert words == set(DEFAULT_GRAMMAR.vocabulary)


def test_counts_per_factor():
    df = metadata()
    assert list(df.columns) == ["instruction", "verb", "determiner", "colour", "object"]
    assert df["verb"].value_counts().to_dict() == {"go to": 48, "pick up": 36, "open": 24}
    assert df["determiner"].value_counts().to_dict() == {"the": 54, "a": 54}
    assert set(df["colour"].value_counts()) == {18}
    assert not ((df["verb"] == "pick up") & (df["object"] == "door")).any()
    assert not ((df["verb"] == "open") & df["object"].isin(["ball", "key"])).any()


def test_parse_roundtrip_every_instruction():
    for s in instruction_set():
        m = parse(s)
        assert f"{m['verb']} {m['determiner']} {m['colour']} {m['object']}" == s


@pytest.mark.parametrize("text, word", [
    ("go to the red dog", "dog"), ("fetch the red ball", "fetch"), ("go to the crimson ball", "crimson")])
def test_unknown_word_is_named_with_the_vocabulary(text, word):
    with pytest.raises(InstructionError) as e:
        parse(text)
    msg = str(e.value)
    assert repr(word) in msg and "vocabulary" in msg and "purple" in msg


@pytest.mark.parametrize("text, fragment", [
    ("go the red ball", "must start with a verb"),
    ("go to red the ball", "is not a determiner"),
    ("go to the red", "expected 3"),
    ("open the red ball", "cannot take 'ball'"),
    ("pick up a blue door", "cannot take 'door'"),
    ("", "must start with a verb"),
])
def test_ungrammatical_strings(text, fragment):
    with pytest.raises(InstructionError, match=fragment):
        parse(text)


def test_subset_and_hash_change():
    go = DEFAULT_GRAMMAR.subset(verbs=["go to"])
    items = instruction_set(go)
    assert len(items) == 48 and all(s.startswith("go to ") for s in items)
    assert instruction_set_hash(items) != instruction_set_hash()
    assert instruction_set_hash(instruction_set()) == instruction_set_hash()
    with pytest.raises(InstructionError):
        DEFAULT_GRAMMAR.subset(verbs=["pick up"], objects=["door"])


def test_index_of():
    assert index_of("go to the red ball") == 0
    assert index_of("  Open A GREY box ") == 107
    with pytest.raises(InstructionError, match="not in this instruction set"):
        index_of("go to the red ball", instruction_set(DEFAULT_GRAMMAR.subset(verbs=["open"])))

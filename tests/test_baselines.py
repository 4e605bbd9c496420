"""core.baselines: exact encodings for hand-checked instructions, honest manifests, shipped files match."""
import numpy as np
import pytest

from core import baselines, store
from core.instructions import InstructionError, instruction_set

VOCAB = ["go", "to", "pick", "up", "open", "the", "a", "red", "green", "blue", "purple", "yellow", "grey",
         "ball", "box", "key", "door"]


def _row(words, vocab=VOCAB):
    v = np.zeros(len(vocab), dtype=np.float32)
    for w in words:
        v[vocab.index(w)] += 1
    return v


def test_vocabulary_is_the_hand_written_one():
    assert baselines.vocabulary() == VOCAB


@pytest.mark.parametrize("text", ["go to the red ball", "pick up a grey key", "open the yellow door",
                                  "open a blue box"])
def test_bag_of_words_exact(text):
    X = baselines.bag_of_words([text])
    assert X.shape == (1, 17)
    assert np.array_equal(X[0], _row(text.split()))


def test_bag_of_words_hand_checked_values():
    X = baselines.bag_of_words(["go to the red ball", "open a blue box"])
    # go to the red ball: go, to, the, red, ball -> columns 0, 1, 5, 7, 13
    assert np.flatnonzero(X[0]).tolist() == [0, 1, 5, 7, 13] and X[0].sum() == 5
    # open a blue box: open, a, blue, box -> columns 4, 6, 9, 14
    assert np.flatnonzero(X[1]).tolist() == [4, 6, 9, 14] and X[1].sum() == 4
    full = baselines.bag_of_words()
    assert full.shape == (108, 17)
    assert full[:, VOCAB.index("the")].sum() == 54 and full[:, VOCAB.index("red")].sum() == 18
    # cosine between "go to the red ball" and "go to a red ball": 4 shared words / 5
    a, b = baselines.bag_of_words(["go to the red ball", "go to a red ball"])
    assert np.isclose(a @ b / np.linalg.norm(a) / np.linalg.norm(b), 0.8)


def test_tfidf_matches_hand_formula_and_sklearn():
    items = instruction_set()
    X = baselines.tfidf()
    # hand: "open the red door"; df(open)=24, df(the)=54, df(red)=18, df(door)=12+12=24 of n=108
    n = 108
    w = {"open": 24, "the": 54, "red": 18, "door": 24}
    v = np.array([np.log((1 + n) / (1 + d)) + 1 for d in w.values()])
    v /= np.linalg.norm(v)
    row = X[items.index("open the red door")]
    got = np.array([row[VOCAB.index(t)] for t in w])
    assert np.allclose(got, v, atol=1e-6) and np.isclose(np.abs(row).sum(), v.sum(), atol=1e-5)
    sk = pytest.importorskip("sklearn.feature_extraction.text")
    vec = sk.TfidfVectorizer(vocabulary=VOCAB, token_pattern=r"\S+")
    assert np.allclose(vec.fit_transform(items).toarray(), X, atol=1e-6)


def test_factors_exact():
    names = baselines.factor_feature_names()
    assert names[:5] == ["verb=go to", "verb=pick up", "verb=open", "determiner=the", "determiner=a"]
    assert len(names) == 15
    X = baselines.factors(["pick up a grey key", "open the red door"])
    on = [[names[j] for j in np.flatnonzero(r)] for r in X]
    assert on[0] == ["verb=pick up", "determiner=a", "colour=grey", "object=key"]
    assert on[1] == ["verb=open", "determiner=the", "colour=red", "object=door"]
    full = baselines.factors()
    assert full.shape == (108, 15) and np.all(full.sum(1) == 4)
    # cosine = number of shared factors / 4
    a, b = baselines.factors(["go to the red ball", "pick up the red box"])
    assert np.isclose(a @ b / 4, 0.5)


def test_random_is_seeded_and_distinct():
    a, b, c = baselines.random_vectors(108, 0), baselines.random_vectors(108, 0), baselines.random_vectors(108, 1)
    assert a.shape == (108, 128) and np.array_equal(a, b) and not np.allclose(a, c)
    assert np.array_equal(a, np.random.default_rng(0).standard_normal((108, 128)).astype(np.float32))
    with pytest.raises(ValueError, match="seed"):
        baselines.encode("random")


def test_bad_instruction_raises():
    with pytest.raises(InstructionError, match="banana"):
        baselines.bag_of_words(["go to the red banana"])
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.encode("glove")


def test_ship_writes_honest_manifests(tmp_path):
    assert baselines.cli(["baselines", "--out", str(tmp_path)]) == 0
    stems = sorted(p.stem for p in tmp_path.glob("*.npz"))
    assert stems == sorted(["bag-of-words", "tfidf", "factors"] + [f"random-s{s}" for s in range(5)])
    for stem in stems:
        E, items, man = store.read_embeddings(stem, tmp_path)
        assert items == instruction_set()
        assert man["family"] == "baseline" and man["weights_sha256"] == "n/a (no weights)"
        assert man["source"] == "this repo: core.baselines" and man["pooling"] == "n/a" and man["layer"] == "n/a"
        assert all(k in man for k in store.MANIFEST_KEYS)
    E, _, man = store.read_embeddings("random-s3", tmp_path)
    assert man["seed"] == 3 and np.array_equal(E, baselines.random_vectors(108, 3))
    assert baselines.cli(["baselines", "--check", "--out", str(tmp_path)]) == 0
    np.savez_compressed(tmp_path / "factors.npz", embeddings=np.zeros((108, 15), np.float32),
                        instructions=np.array(instruction_set()))
    assert baselines.cli(["baselines", "--check", "--out", str(tmp_path)]) == 1


def test_shipped_assets_match_the_code():
    if not (store.embeddings_dir() / "bag-of-words.npz").exists():
        pytest.skip("baseline assets not shipped in this checkout")
    assert baselines.check() == []

import numpy as np
import pytest

from core import store
from core.instructions import instruction_set


def test_key_is_explicit_and_order_free():
    assert store.key("x", {"a": 1, "b": 2}) == store.key("x", {"b": 2, "a": 1})
    assert store.key("x", {"a": 1}) != store.key("x", {"a": 2}) != store.key("y", {"a": 2})
    assert store.key("demos", {"a": 1}).startswith("demos:")


def test_cached_computes_once_and_never_stores_failures():
    calls = []
    params = {"t": "once", "r": np.random.default_rng().integers(1 << 30)}
    f = lambda: calls.append(1) or np.arange(3)  # noqa: E731
    assert store.cached("t", params, f).tolist() == [0, 1, 2]
    assert store.cached("t", params, f).tolist() == [0, 1, 2]
    assert len(calls) == 1

    def boom():
        raise RuntimeError("weights missing")

    p2 = {"t": "fail", "r": params["r"]}
    with pytest.raises(RuntimeError):
        store.cached("t", p2, boom)
    assert store.key("t", p2) not in store.cache()


def test_corrupt_cache_file_is_dropped_and_recomputed():
    params = {"t": "corrupt", "r": int(np.random.default_rng().integers(1 << 30))}
    big = np.ones(100_000)  # large enough for diskcache to keep it in its own file
    store.cached("t", params, lambda: big)
    files = [p for p in store.cache_dir().rglob("*.val")]
    newest = max(files, key=lambda p: p.stat().st_mtime)
    newest.write_bytes(b"\x00garbage")
    again = store.cached("t", params, lambda: big * 2)
    assert again[0] == 2.0


def test_embedding_files_roundtrip_and_errors(tmp_path):
    items = instruction_set()
    E = np.random.default_rng(0).normal(size=(108, 5))
    man = {k: "x" for k in store.MANIFEST_KEYS if k not in ("n_items", "dim", "instruction_set_hash")}
    store.save_embeddings("m", E, items, man, directory=tmp_path)
    E2, items2, m2 = store.read_embeddings("m", directory=tmp_path)
    assert np.allclose(E, E2) and items2 == items and m2["dim"] == 5 and m2["n_items"] == 108
    with pytest.raises(FileNotFoundError, match="no embedding file"):
        store.read_embeddings("absent", directory=tmp_path)
    (tmp_path / "m.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt embedding file"):
        store.read_embeddings("m", directory=tmp_path)
    with pytest.raises(ValueError, match="lacks"):
        store.save_embeddings("n", E, items, {"model": "n"}, directory=tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        store.save_embeddings("n", E * np.nan, items, man, directory=tmp_path)
    assert store.embedding_file_name("alm", 3) == "alm-s3" and store.embedding_file_name("bow") == "bow"

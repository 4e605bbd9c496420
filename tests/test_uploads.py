"""core.uploads (bring your own embeddings) and ``python -m core metrics --add``: every format, every refusal."""
from __future__ import annotations

import builtins
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import metrics as M
from core import uploads as U
from core.instructions import instruction_set

INSTR = instruction_set()
N = len(INSTR)


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(N, 12))


def npy(a, **kw) -> bytes:
    f = io.BytesIO()
    np.save(f, a, **kw)
    return f.getvalue()


def npz(**arrays) -> bytes:
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


def parquet(df: pd.DataFrame) -> bytes:
    f = io.BytesIO()
    df.to_parquet(f)
    return f.getvalue()


def read(data: bytes, filename: str, name: str = "mine", **kw) -> np.ndarray:
    return U.read_upload(data, filename, name, **kw).embeddings


def refused(data: bytes, filename: str, *needles: str, name: str = "mine", **kw) -> str:
    with pytest.raises(U.UploadError) as e:
        U.read_upload(data, filename, name, **kw)
    msg = str(e.value)
    for needle in needles:
        assert needle in msg, msg
    return msg


def shuffled(X, seed=1):
    """(rows of X in a shuffled order, the instructions of those rows)."""
    order = np.random.default_rng(seed).permutation(N)
    return X[order], [INSTR[i] for i in order]


# ------------------------------------------------------------------------------------------ what is read
def test_every_format_gives_float32_rows_in_instruction_order(X):
    want = X.astype(np.float32)
    Xs, labels = shuffled(X)
    upper = [s.upper().replace(" ", "  ") for s in labels]  # case and spacing do not matter
    by_column = pd.DataFrame(Xs, columns=[f"d{j}" for j in range(12)]).assign(instruction=upper)
    pandas_default = pd.DataFrame(X)  # header "0,1,...", or ",0,1,..." with its index column
    text = io.StringIO()
    np.savetxt(text, X, delimiter=",")
    cases = {
        "npy": (npy(X), "e.npy"),
        "npy float32": (npy(X.astype(np.float32)), "E.NPY"),
        "npz one array": (npz(vectors=X), "e.npz"),
        "npz shipped format": (npz(embeddings=Xs, instructions=np.array(labels)), "e.npz"),
        "csv, no header": (text.getvalue().encode(), "e.csv"),
        "csv, pandas header": (pandas_default.to_csv(index=False).encode(), "e.csv"),
        "csv, pandas header and index": (pandas_default.to_csv().encode(), "e.csv"),
        "csv, instruction column": (by_column.to_csv(index=False).encode(), "e.csv"),
        "csv, instruction column, no header": (by_column.to_csv(index=False, header=False).encode(), "e.csv"),
        "parquet, numeric columns": (parquet(pd.DataFrame(X, columns=[f"d{j}" for j in range(12)])), "e.parquet"),
        "parquet, instruction column": (parquet(by_column), "e.parquet"),
        "parquet, vector column": (parquet(pd.DataFrame({"instruction": labels, "embedding": list(Xs)})),
                                   "e.parquet"),
    }
    for what, (data, fname) in cases.items():
        E = read(data, fname)
        assert E.dtype == np.float32 and E.shape == (N, 12), what
        np.testing.assert_allclose(E, want, rtol=1e-6, atol=1e-6, err_msg=what)
        assert not E.flags.writeable, what


def test_the_space_carries_a_manifest_and_a_content_fingerprint(X):
    from core.report import fingerprint

    a = U.read_upload(npy(X), "e.npy", "mine")
    b = U.read_upload(npy(X + 1), "e.npy", "mine")
    assert a.fingerprint == fingerprint(X.astype(np.float32)) != b.fingerprint
    man = a.manifest
    assert man["model"] == "mine" and man["family"] == "uploaded" and man["n_items"] == N
    assert man["dim"] == 12 and man["file"] == "e.npy" and man["rows"] == "row order" and man["uploaded"]


# ------------------------------------------------------------------------------------------ refusals: shape and rows
def test_wrong_row_count_and_shapes(X):
    refused(npy(X[:-1]), "e.npy", f"has {N - 1} rows; expected {N}", "instruction")
    refused(npy(np.vstack([X, X[:1]])), "e.npy", f"{N + 1} rows")
    refused(npy(X.ravel()), "e.npy", "1-D array", "2-D")
    refused(npy(X.reshape(N, 3, 4)), "e.npy", "shape (108, 3, 4)", "2-D")
    refused(npy(X[:, :1]), "e.npy", "at least 2 dimensions")
    refused(pd.DataFrame(X[:-3]).to_csv(index=False).encode(), "e.csv", f"has {N - 3} rows")


def test_unknown_missing_and_duplicate_instructions_are_named(X):
    Xs, labels = shuffled(X)

    def csv(lab, rows=Xs):
        return pd.DataFrame(rows).assign(instruction=lab).to_csv(index=False).encode()

    bad = list(labels)
    bad[3], bad[40] = "go to the pink ball", "fly to the moon"
    refused(csv(bad), "e.csv", "2 row label(s) are not instructions", "'go to the pink ball'", "'fly to the moon'")
    dup = list(labels)
    dup[7] = dup[2]
    msg = refused(csv(dup), "e.csv", "appear in more than one row", repr(labels[2]), "rows 2, 7")
    assert repr(labels[7]) not in msg.split("more than one row")[1]  # the missing one is not called a duplicate
    msg = refused(csv(labels[:-8], Xs[:-8]), "e.csv", f"8 of the {N} instructions have no row", "and 3 more")
    assert all(repr(t) in msg for t in [t for t in INSTR if t in labels[-8:]][:5])  # first 5, instruction order
    refused(npz(embeddings=Xs[:-1], instructions=np.array(labels[:-1])), "e.npz", "1 of the 108 instructions",
            repr(labels[-1]))


def test_nan_inf_zero_rows_and_float32_overflow(X):
    Y = X.copy()
    Y[4, 1] = np.nan
    refused(npy(Y), "e.npy", "NaN or inf", "rows [4]", repr(INSTR[4]))
    Y = X.copy()
    Y[9, 0] = np.inf
    refused(npy(Y), "e.npy", "NaN or inf", "rows [9]")
    Y = X.copy()
    Y[[5, 6]] = 0
    refused(npy(Y), "e.npy", "all-zero rows [5, 6]", repr(INSTR[5]), repr(INSTR[6]))
    lines = pd.DataFrame(X).to_csv(index=False).splitlines()
    cells = lines[11].split(",")
    cells[3] = ""  # an empty cell in the row of instruction 10
    lines[11] = ",".join(cells)
    refused("\n".join(lines).encode(), "e.csv", "NaN or inf", "rows [10]")
    Y = X.copy()
    Y[0, 0] = 1e300
    refused(npy(Y), "e.npy", "beyond float32's range")
    Xs, labels = shuffled(X)
    Xs = Xs.copy()
    Xs[0] = np.nan  # rows are reported in instruction order, by instruction
    refused(npz(embeddings=Xs, instructions=np.array(labels)), "e.npz", "NaN or inf", repr(labels[0]))


def test_non_numeric_columns_and_several_arrays(X):
    df = pd.DataFrame(X).assign(instruction=INSTR, note="x", source="y")
    refused(df.to_csv(index=False).encode(), "e.csv", "non-numeric column(s) 'note', 'source'")
    refused(pd.DataFrame(X).assign(a="x", b="y").to_csv(index=False).encode(), "e.csv", "non-numeric")
    refused(parquet(pd.DataFrame(X, columns=[f"d{j}" for j in range(12)]).assign(flag=True)), "e.parquet",
            "non-numeric column(s) 'flag'")
    refused(npz(first=X, second=X), "e.npz", "several arrays (first, second)", "'embeddings'")
    refused(npy(np.array(INSTR)), "e.npy", "not numbers")
    refused(npy(X.astype(bool)), "e.npy", "not numbers")
    refused(npz(embeddings=X, instructions=np.arange(N)), "e.npz", "instruction strings")


# ------------------------------------------------------------------------------------------ refusals: names
@pytest.mark.parametrize("name,needle", [
    ("alm", "taken by a shipped model or registry entry"),             # the agent
    ("smollm2-135m", "taken by a shipped model or registry entry"),    # a shipped model
    ("llama-3.2-1b", "taken by a shipped model or registry entry"),    # a registry entry without files
    ("alm-s3", "taken by a shipped model or registry entry"),          # a seed file name of a registry entry
    ("random-s0", "taken by a shipped model or registry entry"),
    ("", "not a usable name"), ("My Model", "not a usable name"), ("../../assets/x", "not a usable name"),
    ("a" * 41, "not a usable name"), ("-x", "not a usable name"), ("x/y", "not a usable name"),
])
def test_names_that_clash_or_are_unsafe_are_refused(X, name, needle):
    refused(npy(X), "e.npy", needle, name=name)


def test_a_name_used_by_another_upload_is_refused(X):
    refused(npy(X), "e.npy", "already used by another of your embeddings", name="mine", taken=["mine", "other"])
    assert read(npy(X), "e.npy", "mine", taken=["other"]).shape == (N, 12)


# ------------------------------------------------------------------------------------------ refusals: files
def test_size_limit_is_stated_and_enforced_before_parsing(X, tmp_path, monkeypatch):
    assert U.MAX_UPLOAD_MB == 50 and U.MAX_BYTES == 50 * 2**20
    data = npy(X)
    refused(data, "e.npy", "over the limit", max_bytes=len(data) - 1)
    refused(b"\0" * (U.MAX_BYTES + 1), "big.npy", "over the limit of 50 MB")
    p = tmp_path / "e.npy"
    p.write_bytes(data)

    def never(*a, **k):
        raise AssertionError("the file was read although it is over the limit")

    monkeypatch.setattr(Path, "read_bytes", never)
    with pytest.raises(U.UploadError, match="over the limit"):
        U.read_path(p, "mine", max_bytes=len(data) - 1)
    refused(b"", "e.npy", "is empty")


def test_streamlit_upload_limit_matches_the_stated_limit():
    import tomllib

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == U.MAX_UPLOAD_MB


def test_content_that_is_not_what_the_extension_says(X):
    text = pd.DataFrame(X).to_csv(index=False).encode()
    refused(text, "e.npy", "not a NumPy .npy file")
    refused(npy(X), "e.csv", "not a text CSV file", "NumPy .npy")
    refused(npz(embeddings=X), "e.parquet", "not a Parquet file", "zip")
    refused(parquet(pd.DataFrame(X, columns=list("abcdefghijkl"))), "e.npz", "not a NumPy .npz", "Parquet")
    refused(b"\xff\xfe\x00garbage" * 10, "e.csv", "not a text CSV file")
    refused("a,b\n1,2\n".encode("utf-16"), "e.csv", "not a text CSV file")
    refused(b"PAR1 definitely not parquet PAR1", "e.parquet", "cannot be read as Parquet")
    refused(npy(X)[:200], "e.npy", "truncated or corrupt")  # header says 108 x 12 float64, data cut
    refused(b"PK\x03\x04 not a zip", "e.npz", "not a readable .npz")
    refused(npy(X), "e.txt", "unsupported file type '.txt'")
    refused(npy(X), "embeddings", "unsupported file type")
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("readme.txt", "hello")
    refused(f.getvalue(), "e.npz", "not an .npz written by numpy", "readme.txt")


def test_an_npz_that_would_decompress_past_the_limit_is_refused(X, monkeypatch):
    monkeypatch.setattr(U, "MAX_DECOMPRESSED_MB", 0.001)  # 1 KB: the 10 KB array is over it
    refused(npz(embeddings=X), "e.npz", "would decompress to")


class _SideEffect:
    """Unpickling this object creates ``path`` (builtins.open(path, 'w')): the proof that a pickle ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def test_a_pickle_is_refused_and_never_executed(X, tmp_path):
    control = tmp_path / "control"
    obj = pickle.loads(pickle.dumps(_SideEffect(control)))  # the payload is live: loading it has the side effect
    obj.close()
    assert control.exists()

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_SideEffect(marker))
    obj_array = np.array([_SideEffect(marker), 1.0], dtype=object)
    attempts = {
        "pickle as .npy": (payload, "e.npy", "pickle"),
        "pickle as .npz": (payload, "e.npz", "pickle"),
        "pickle as .csv": (payload, "e.csv", "pickle"),
        "pickle as .parquet": (payload, "e.parquet", "pickle"),
        "object array .npy": (npy(obj_array, allow_pickle=True), "e.npy", "Python objects"),
        "object array in .npz": (npz(embeddings=obj_array), "e.npz", "Python objects"),
        "object instructions in .npz": (npz(embeddings=X, instructions=np.array([_SideEffect(marker)] * N,
                                                                               dtype=object)), "e.npz",
                                        "Python objects"),
    }
    for what, (data, fname, needle) in attempts.items():
        msg = refused(data, fname, needle)
        assert "never" in msg, (what, msg)
        assert not marker.exists(), f"{what}: the pickle was executed"
    # and numpy itself would have run it: the object array really carries the payload
    np.load(io.BytesIO(npy(obj_array, allow_pickle=True)), allow_pickle=True)
    assert marker.exists()


def test_parse_add():
    assert U.parse_add("mine=/tmp/x.npy") == ("mine", Path("/tmp/x.npy"))
    assert U.parse_add("mine=a=b.csv") == ("mine", Path("a=b.csv"))
    for bad in ("mine", "=x.npy", "mine="):
        with pytest.raises(U.UploadError, match="NAME=PATH"):
            U.parse_add(bad)


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture
def two_models(tmp_assets, tmp_path, monkeypatch):
    from core.store import save_embeddings

    monkeypatch.setenv("ALVA_CACHE_DIR", str(tmp_path / "cache"))
    man = {"family": "test", "source": "synthetic", "weights_sha256": "none", "pooling": "none", "layer": None,
           "dtype": "float32"}
    r = np.random.default_rng(5)
    base = r.normal(size=(N, 16))
    save_embeddings("alm-s0", base, INSTR, {**man, "model": "alm"})
    save_embeddings("bag-of-words", r.normal(size=(N, 17)), INSTR, {**man, "model": "bag-of-words"})
    return tmp_assets, base


def _tree(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


def test_cli_add_puts_the_file_in_the_tables_and_writes_no_asset(two_models, tmp_path, capsys):
    from core.metrics_cli import cli

    assets, base = two_models
    mine = base + 0.5 * np.random.default_rng(6).normal(size=base.shape)
    Xs, labels = shuffled(mine)
    path = tmp_path / "mine.csv"
    pd.DataFrame(Xs).assign(instruction=labels).to_csv(path, index=False)
    before = _tree(assets)
    out = tmp_path / "out"
    rc = cli(["metrics", "--add", f"mine={path}", "--permutations", "20", "--boot", "20", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert _tree(assets) == before
    pk = pd.read_csv(out / "precision_at_k.csv", comment="#")
    row = pk[(pk.model_a == "alm") & (pk.model_b == "mine") & (pk.k == 15)].iloc[0]
    A = np.asarray(base, dtype=np.float32)
    assert row.p_at_k == pytest.approx(M.precision_at_k(A, mine.astype(np.float32), 15), abs=1e-6)
    assert row.p_at_k > 0.5  # aligned by the instruction column: the shuffled file is the same space
    assert "mine" in pd.read_csv(out / "procrustes.csv", comment="#").model_b.tolist()
    # --models keeps the added one; two --add; a refused file or name exits 2 with the reason, nothing written
    other = tmp_path / "other.npy"
    np.save(other, mine[::-1].copy())
    rc = cli(["metrics", "--models", "alm", "--add", f"mine={path}", "--add", f"other={other}",
              "--permutations", "0", "--boot", "0", "--out", str(tmp_path / "out2")])
    assert rc == 0
    names = pd.read_csv(tmp_path / "out2" / "precision_at_k.csv", comment="#").model_b.unique().tolist()
    assert sorted(names) == ["mine", "other"]
    for spec, needle in ((f"alm={path}", "taken by a shipped model"), (f"x={tmp_path / 'nope.npy'}", "no such file"),
                         (f"mine={path}", "already used")):
        argv = ["metrics", "--add", f"mine={path}"] if needle == "already used" else ["metrics"]
        rc = cli([*argv, "--add", spec, "--out", str(tmp_path / "out3")])
        assert rc == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "out3").exists() and _tree(assets) == before
    assert os.environ["ALVA_ASSETS_DIR"] == str(assets)

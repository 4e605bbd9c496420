"""Bring your own embeddings: read and validate an embedding file that a user supplies (no streamlit).

One reader for the dashboard's uploader and for ``python -m core metrics --add NAME=PATH``:
:func:`read_upload` (bytes + file name) and :func:`read_path` return an :class:`UploadedSpace` whose array is
float32 (n, d) with its rows in ``instruction_set()`` order (108 for the default grammar), or raise
:class:`UploadError` with a message that names the problem. Nothing is written anywhere.

Formats (chosen by the file name's extension, then checked against the file's first bytes):

* ``.npy``: one 2-D numeric array;
* ``.npz``: one array, or an array named ``embeddings`` (plus, optionally, ``instructions``: the instruction
  strings of its rows, as in the files under ``assets/embeddings``);
* ``.csv``: numeric columns, with or without a header row;
* ``.parquet``: numeric columns, or one column whose values are equal-length vectors.

Rows are either in instruction order (one per instruction, nothing else) or carry their instruction: a
CSV/Parquet column named ``instruction`` (or, failing that, the file's only text column), or the ``instructions``
array of an ``.npz``. Instruction strings are compared after lower-casing and collapsing spaces.

Safety: the file's size is checked before anything is parsed (:data:`MAX_UPLOAD_MB`); ``.npy``/``.npz`` are read
with ``np.load(..., allow_pickle=False)`` after their headers were checked, so a pickle (or an array of Python
objects) is refused and never executed; an ``.npz`` is also refused when its arrays would decompress to more
than :data:`MAX_DECOMPRESSED_MB`.
"""
from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .metrics import MetricInputError, check_space

MAX_UPLOAD_MB = 50  #: largest file accepted (MiB); .streamlit/config.toml's server.maxUploadSize must equal it
MAX_BYTES = MAX_UPLOAD_MB * 2**20
MAX_DECOMPRESSED_MB = 4 * MAX_UPLOAD_MB  #: an .npz whose arrays declare more than this (MiB) is refused
FORMATS = (".npy", ".npz", ".csv", ".parquet")
INSTRUCTION_COLUMNS = ("instruction", "instructions")
#: a safe name: 1-40 characters, lowercase letters, digits, '.', '_' or '-', starting with a letter or digit
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
_SHOW = 5  # how many offending instructions a message names

_MAGIC = {b"\x93NUMPY": "a NumPy .npy file", b"PK\x03\x04": "a zip archive (.npz)", b"PK\x05\x06": "an empty zip",
          b"PAR1": "a Parquet file", b"\x80": "a Python pickle", b"\x89HDF": "an HDF5 file"}


class UploadError(ValueError):
    """A user-supplied embedding file or name that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class UploadedSpace:
    """One user-supplied space: ``embeddings`` float32 (n, d), read-only, rows in ``instruction_set()`` order."""

    name: str
    embeddings: np.ndarray = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """Content fingerprint (:func:`core.report.fingerprint`): the key of everything computed from it."""
        from .report import fingerprint

        return fingerprint(self.embeddings)


# ------------------------------------------------------------------------------------------ names
def check_name(name: str, taken: Iterable[str] = ()) -> str:
    """``name`` if it is safe and clashes with no shipped model, registry entry (or one of its seed files) and
    with none of ``taken`` (e.g. the other uploads of a session); else UploadError."""
    name = str(name).strip()
    if not NAME_PATTERN.match(name):
        raise UploadError(f"{name[:60]!r} is not a usable name: use 1-40 characters (lowercase letters, digits, "
                          "'.', '_' or '-'), starting with a letter or digit, e.g. 'my-model-l12'")
    from .embedders import available
    from .embedders.files import owner
    from .embedders.registry import TABLE

    if name in TABLE or owner(name) is not None or name in available():
        raise UploadError(f"the name {name!r} is taken by a shipped model or registry entry "
                          f"(python -m core embed --list); choose another name")
    if name in set(taken):
        raise UploadError(f"the name {name!r} is already used by another of your embeddings; remove that one "
                          "first or choose another name")
    return name


# ------------------------------------------------------------------------------------------ reading
def read_path(path: str | Path, name: str, *, taken: Iterable[str] = (), max_bytes: int = MAX_BYTES,
              instructions: Sequence[str] | None = None) -> UploadedSpace:
    """:func:`read_upload` of a file on disk; its size is checked (stat) before it is read."""
    p = Path(path)
    if not p.is_file():
        raise UploadError(f"no such file: {p}")
    _check_size(p.stat().st_size, p.name, max_bytes)
    return read_upload(p.read_bytes(), p.name, name, taken=taken, max_bytes=max_bytes, instructions=instructions)


def read_upload(data: bytes, filename: str, name: str, *, taken: Iterable[str] = (), max_bytes: int = MAX_BYTES,
                instructions: Sequence[str] | None = None) -> UploadedSpace:
    """Validate and read one embedding file (its bytes and its file name) under the model name ``name``.

    ``instructions``: the target order (default: ``instruction_set()``). Raises UploadError naming the
    problem: bad or clashing name, file too large, unknown extension, content that is not what the extension
    says (a pickle is refused without being loaded), not a 2-D numeric table, wrong row count, unknown / missing
    / duplicate instructions, NaN or inf, all-zero rows."""
    from . import report
    from .instructions import instruction_set, instruction_set_hash

    name = check_name(name, taken)
    fname = Path(str(filename)).name or "the file"
    _check_size(len(data), fname, max_bytes)
    ext = Path(fname).suffix.lower()
    if ext not in FORMATS:
        raise UploadError(f"{fname}: unsupported file type {ext or '(no extension)'!r}; use one of "
                          f"{', '.join(FORMATS)}")
    target = list(instruction_set() if instructions is None else instructions)
    reader = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv, ".parquet": _read_parquet}[ext]
    X, labels, how = reader(bytes(data), fname)
    dtype_in = str(X.dtype)
    X = _as_matrix(X, fname)
    X = _align(X, labels, fname, target)
    with np.errstate(over="ignore"):
        E = np.ascontiguousarray(X, dtype=np.float32)
    if np.isfinite(X).all() and not np.isfinite(E).all():
        raise UploadError(f"{fname} has values beyond float32's range (|x| > 3.4e38); rescale them")
    try:
        check_space(E, fname)
    except MetricInputError as e:  # NaN/inf or all-zero rows: name the instructions of those rows
        finite = np.isfinite(E).all(axis=1)
        bad = ~finite if not finite.all() else ~(E != 0).any(axis=1)
        raise UploadError(f"{e}; rows counted from 0 in instruction order: "
                          f"{_quoted([target[i] for i in np.flatnonzero(bad)])}") from None
    E.setflags(write=False)
    manifest = {"model": name, "family": report.UPLOADED_FAMILY, "source": f"uploaded file {fname}",
                "file": fname,
                "file_sha256": hashlib.sha256(data).hexdigest(), "rows": how, "dtype": f"float32 (from {dtype_in})",
                "pooling": "unknown (uploaded)", "layer": "unknown (uploaded)", "weights_sha256": "n/a (uploaded)",
                "n_items": int(E.shape[0]), "dim": int(E.shape[1]), "uploaded": True,
                "instruction_set_hash": instruction_set_hash(target)}
    return UploadedSpace(name, E, manifest)


def parse_add(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` (the CLI's ``--add``) -> (name, path)."""
    name, sep, path = str(spec).partition("=")
    if not sep or not name.strip() or not path.strip():
        raise UploadError(f"--add expects NAME=PATH (e.g. my-model=emb.npy), got {spec!r}")
    return name.strip(), Path(path.strip()).expanduser()


def _check_size(size: int, fname: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise UploadError(f"{fname} is {size:,} bytes, over the limit of {max_bytes / 2**20:g} MB "
                          f"({max_bytes:,} bytes)")
    if size == 0:
        raise UploadError(f"{fname} is empty")


def _what(data: bytes) -> str:
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    return "not recognised"


def _not_a(fname: str, kind: str, data: bytes, hint: str = "") -> UploadError:
    what = _what(data)
    found = f"it looks like {what}" if what != "not recognised" else f"it starts with {data[:8]!r}"
    refused = " (a pickle is never loaded)" if what == "a Python pickle" else ""
    return UploadError(f"{fname} is not {kind}: {found}{refused}{hint}")


# ------------------------------------------------------------------------------------------ .npy / .npz
def _load_npy(data: bytes, fname: str, kinds: str = "fiu") -> np.ndarray:
    """The array of an .npy file whose header was checked first: no object arrays (a pickle is never
    unpickled), only dtypes of ``kinds``, and a declared size the data can hold (nothing is allocated before)."""
    from numpy.lib import format as npf

    fp = io.BytesIO(data)
    try:
        version = npf.read_magic(fp)
        readers = {(1, 0): npf.read_array_header_1_0, (2, 0): npf.read_array_header_2_0}
        if version not in readers:
            raise UploadError(f"{fname}: .npy format version {version} is not read (save with numpy.save)")
        shape, _, dtype = readers[version](fp)
    except UploadError:
        raise
    except Exception as e:  # ValueError from a malformed header
        raise UploadError(f"{fname}: unreadable .npy header ({e})") from None
    if dtype.hasobject:
        raise UploadError(f"{fname} holds Python objects (stored as a pickle); it is refused and never unpickled. "
                          "Save plain numbers, e.g. numpy.save(path, X.astype('float32'))")
    if dtype.kind not in kinds:
        raise UploadError(f"{fname}: the array is of type {dtype}, not " +
                          ("numbers; save a float array" if kinds == "fiu" else "the instruction strings of the rows"))
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if need > len(data) - fp.tell():
        raise UploadError(f"{fname} is truncated or corrupt: its header declares {tuple(shape)} {dtype} "
                          f"({need} bytes) but it holds {len(data) - fp.tell()}")
    fp.seek(0)
    try:
        return np.load(fp, allow_pickle=False)
    except Exception as e:
        raise UploadError(f"{fname}: unreadable .npy file ({e})") from None


def _read_npy(data: bytes, fname: str):
    if not data.startswith(b"\x93NUMPY"):
        raise _not_a(fname, "a NumPy .npy file", data)
    return _load_npy(data, fname), None, "row order"


def _read_npz(data: bytes, fname: str):
    if not data.startswith(b"PK\x03\x04"):
        raise _not_a(fname, "a NumPy .npz file (a zip archive)", data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = {i.filename: i for i in zf.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise UploadError(f"{fname} is not a readable .npz (zip) file: {e}") from None
    bad = [n for n in infos if not n.endswith(".npy")]
    if bad:
        raise UploadError(f"{fname} is not an .npz written by numpy: it holds {', '.join(bad[:_SHOW])}")
    total = sum(i.file_size for i in infos.values())
    if total > MAX_DECOMPRESSED_MB * 2**20:
        raise UploadError(f"{fname} would decompress to {total / 2**20:.0f} MB; the limit is "
                          f"{MAX_DECOMPRESSED_MB} MB")
    keys = [n[:-4] for n in infos]
    if not keys:
        raise UploadError(f"{fname} holds no array")
    if "embeddings" in keys:
        key = "embeddings"
    elif len(keys) == 1:
        key = keys[0]
    else:
        raise UploadError(f"{fname} holds several arrays ({', '.join(keys[:8])}) and none is named 'embeddings': "
                          "save one array, or name the vectors 'embeddings' (and, optionally, the instruction "
                          "strings of its rows 'instructions'): numpy.savez(path, embeddings=X, instructions=texts)")

    def member(k: str, kinds: str = "fiu") -> np.ndarray:
        try:
            raw = zf.read(k + ".npy")  # at most the declared size (checked above); CRC checked
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise UploadError(f"{fname}: the array {k!r} is corrupt ({e})") from None
        return _load_npy(raw, f"{fname}[{k}]", kinds)

    X = member(key)
    if key == "embeddings" and "instructions" in keys:
        labels = [x.decode() if isinstance(x, bytes) else str(x) for x in np.ravel(member("instructions", "US"))]
        return X, labels, "aligned by the array 'instructions'"
    return X, None, f"row order (array {key!r})"


# ------------------------------------------------------------------------------------------ tables
_NA_TEXT = {"", "nan", "-nan", "+nan", "na", "n/a", "null", "none"}  # a missing number (then reported as NaN)


def _to_float(col):
    """(floats, parsed): a CSV column of strings as numbers; ``parsed`` is False where a cell is text."""
    import pandas as pd

    vals = pd.to_numeric(col, errors="coerce")
    return vals, vals.notna() | col.str.lower().isin(_NA_TEXT)


def _read_csv(data: bytes, fname: str):
    import pandas as pd

    if b"\x00" in data[:4096] or _what(data) != "not recognised":
        raise _not_a(fname, "a text CSV file", data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UploadError(f"{fname} is not a text CSV file (not UTF-8: {e.reason} at byte {e.start})") from None
    try:
        raw = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except Exception as e:  # pandas.errors.ParserError, EmptyDataError
        raise UploadError(f"{fname} cannot be read as CSV: {e}") from None
    raw = raw.apply(lambda c: c.str.strip())
    raw = raw.loc[:, [bool((raw[c] != "").any()) for c in raw.columns]]  # trailing commas: empty columns
    raw.columns = range(raw.shape[1])
    parsed = {c: _to_float(raw[c]) for c in raw.columns}
    body_num = {c: len(raw) > 1 and bool(ok.iloc[1:].all() and v.iloc[1:].notna().any())
                for c, (v, ok) in parsed.items()}
    first = {c: (v.iloc[0], ok.iloc[0], raw[c].iloc[0]) for c, (v, ok) in parsed.items()}
    # a header row: text above a numeric column, no number at all, or pandas' default names 0..m-1 / 1..m
    header = any(body_num[c] and not ok for c, (_, ok, _) in first.items()) or \
        all(pd.isna(v) for v, _, _ in first.values())
    if not header:
        nums = [v for c, (v, _, s) in first.items() if body_num[c] and s != ""]
        if len(nums) > 1 and all(float(v).is_integer() for v in nums):
            header = [int(v) for v in nums] in (list(range(len(nums))), list(range(1, len(nums) + 1)))
    names = [str(s) for s in raw.iloc[0]] if header else [f"column {c + 1}" for c in raw.columns]
    frame = pd.DataFrame({j: (parsed[c][0] if body_num[c] else raw[c]).iloc[1 if header else 0:]
                          for j, c in enumerate(raw.columns)}).reset_index(drop=True)
    frame.columns = names
    return _from_frame(frame, fname, header)


def _read_parquet(data: bytes, fname: str):
    import pandas as pd

    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1") and len(data) >= 12):
        raise _not_a(fname, "a Parquet file", data)
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow.ArrowInvalid and friends
        raise UploadError(f"{fname} cannot be read as Parquet: {e}") from None
    frame.columns = [str(c) for c in frame.columns]
    return _from_frame(frame.reset_index(drop=True), fname, True)


def _is_index(col, values) -> bool:
    """A column written by pandas for its index (no name; the values 0..n-1, in any order)."""
    import pandas as pd

    if str(col).strip() not in ("", "Unnamed: 0", "index", "__index_level_0__"):
        return False
    v = pd.to_numeric(values, errors="coerce")
    return bool(v.notna().all()) and np.array_equal(np.sort(v.to_numpy()), np.arange(len(v)))


def _from_frame(frame, fname: str, named: bool):
    """(matrix, instruction labels or None, how the rows are aligned) from a table: numeric columns, or one
    column of equal-length vectors; at most one text column (the instructions)."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise UploadError(f"{fname} holds no data rows")
    frame = frame.loc[:, [not _is_index(c, frame[c]) for c in frame.columns]] if named else frame
    names = [str(c) for c in frame.columns]
    numeric = [c for c in names if is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])]
    vectors = [c for c in names if c not in numeric and frame[c].map(
        lambda v: isinstance(v, (list, tuple, np.ndarray))).all()]
    rest = [c for c in names if c not in numeric and c not in vectors]
    text = [c for c in rest if frame[c].map(lambda v: isinstance(v, str) or v is None).all()]
    instr = [c for c in text if c.strip().lower() in INSTRUCTION_COLUMNS]
    col = instr[0] if instr else (text[0] if len(text) == 1 else None)
    others = [c for c in rest if c != col]
    if others:
        shown = ", ".join(repr(c) for c in others[:_SHOW])
        raise UploadError(f"{fname} has non-numeric column(s) {shown}: besides numbers, a file may hold one "
                          f"column of instruction strings (named 'instruction')")
    if vectors and (numeric or len(vectors) > 1):
        raise UploadError(f"{fname} mixes vector-valued column(s) ({', '.join(vectors)}) with other columns: keep "
                          "either one column of vectors or one numeric column per dimension")
    if vectors:
        lens = {len(v) for v in frame[vectors[0]]}
        if len(lens) != 1:
            raise UploadError(f"{fname}: the vectors in column {vectors[0]!r} have different lengths "
                              f"({', '.join(map(str, sorted(lens)[:_SHOW]))})")
        try:
            X = np.stack([np.asarray(v, dtype=np.float64) for v in frame[vectors[0]]])
        except (TypeError, ValueError):
            raise UploadError(f"{fname}: column {vectors[0]!r} does not hold numbers") from None
    elif numeric:
        X = frame[numeric].to_numpy(dtype=np.float64)
    else:
        raise UploadError(f"{fname} has no numeric column")
    if col is None:
        return X, None, "row order"
    labels = ["" if pd.isna(v) else str(v) for v in frame[col]]
    return X, labels, f"aligned by the column {col!r}"


# ------------------------------------------------------------------------------------------ shape and rows
def _as_matrix(X: np.ndarray, fname: str) -> np.ndarray:
    if X.ndim == 1:
        raise UploadError(f"{fname} holds a 1-D array of {X.shape[0]} values; expected a 2-D array: one row per "
                          "instruction, one column per dimension")
    if X.ndim != 2:
        raise UploadError(f"{fname} holds an array of shape {X.shape}; expected a 2-D array (instructions x "
                          "dimensions)")
    if X.shape[1] < 2:
        raise UploadError(f"{fname} has {X.shape[1]} column(s) of numbers; an embedding needs at least 2 "
                          "dimensions")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise UploadError(f"{fname}: values of type {X.dtype} are not real numbers")
    return X


def _norm(text: str) -> str:
    return " ".join(str(text).strip().lower().split())


def _quoted(items: Sequence[str]) -> str:
    shown = ", ".join(repr(s) for s in items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def _align(X: np.ndarray, labels: list[str] | None, fname: str, target: list[str]) -> np.ndarray:
    """Rows in ``target`` order: as they are (row count checked) or by their instruction labels."""
    n = len(target)
    if labels is None:
        if X.shape[0] != n:
            raise UploadError(f"{fname} has {X.shape[0]} rows; expected {n}: one per instruction, in the order "
                              "of `python -m core instructions` (or add a column 'instruction' naming each "
                              "row's instruction, to align by)")
        return X
    if len(labels) != X.shape[0]:
        raise UploadError(f"{fname}: {len(labels)} instruction strings for {X.shape[0]} rows")
    pos = {t: i for i, t in enumerate(target)}
    norm = [_norm(s) for s in labels]
    unknown = list(dict.fromkeys(s for s, m in zip(labels, norm) if m not in pos))
    if unknown:
        raise UploadError(f"{fname}: {len(unknown)} row label(s) are not instructions of this set: "
                          f"{_quoted(unknown)}")
    dup = [t for t, c in Counter(norm).items() if c > 1]
    if dup:
        rows = {t: [i for i, m in enumerate(norm) if m == t] for t in dup}
        shown = "; ".join(f"{t!r} (rows {', '.join(map(str, r))})" for t, r in list(rows.items())[:_SHOW])
        raise UploadError(f"{fname}: {len(dup)} instruction(s) appear in more than one row: {shown}")
    missing = [t for t in target if t not in set(norm)]
    if missing:
        raise UploadError(f"{fname}: {len(missing)} of the {n} instructions have no row: {_quoted(missing)}")
    order = {m: i for i, m in enumerate(norm)}
    return X[[order[t] for t in target]]

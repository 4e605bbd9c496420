"""Your own embeddings in the dashboard (AppTest, the real app.py with its sidebar uploader): a model on every page
of its session, in the CSV downloads, never in another session, never on disk."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from test_app import _run, _tables, _texts, _vega, synthetic, synthetic_dir  # noqa: F401  (fixtures)

from core import metrics, projection, report, store
from core.embedders import load_embeddings
from core.instructions import instruction_set
from ui import uploads

INSTR = instruction_set()
REPO = Path(__file__).resolve().parents[1]


def _npy(X: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, X)
    return f.getvalue()


def _space(seed: int) -> np.ndarray:
    """A space near the synthetic agent (so its P@k is well above chance) with its own noise."""
    A = load_embeddings("alm", 0)[0].astype(np.float64)
    return (A + 0.8 * np.random.default_rng(seed).normal(size=A.shape)).astype(np.float32)


def _open(at):
    """Open the sidebar's uploader (what a click on it sets; it is folded and sends nothing while closed)."""
    if not at.session_state[uploads.FOLD]:
        at.session_state[uploads.FOLD] = True
        at.run()
    return at


def _upload(at, name: str, data: bytes, filename: str = "mine.npy"):
    _open(at)
    at.text_input(key="w_upload_name").set_value(name)
    at.file_uploader(key="w_upload_file").set_value((filename, data, "application/octet-stream"))
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _pk15(at, model: str) -> float:
    tab = _tables(at, "P@k")[0]
    return float(tab.loc[tab["model"] == model, "P@k"].iloc[0])


@pytest.fixture
def no_umap(monkeypatch):
    """UMAP stand-in (first two principal components): the tests check where a space goes, not UMAP itself."""
    def pca2(X, seed=0, cache=True, **kw):
        Xc = np.asarray(X, dtype=np.float64) - np.mean(X, axis=0)
        return np.linalg.svd(Xc, full_matrices=False)[0][:, :2]

    monkeypatch.setattr(projection, "umap_layout", pca2)


@pytest.fixture
def downloads(monkeypatch):
    """file name -> bytes of every download button's data (what a click on it would save)."""
    seen: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def _tree(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


def test_an_upload_is_a_model_on_every_page_of_its_session(synthetic, no_umap, downloads):
    U = _space(1)
    A = load_embeddings("alm", 0)[0]
    at = _upload(_run("precision"), "mine", _npy(U))
    assert "Added mine (108 × 128, row order)" in " ".join(e.value.replace("\\", "") for e in at.sidebar.success)
    assert at.session_state["models"][-1] == "mine"
    # P@k: a curve with its bands, the table at k, the heatmap, and the CSV downloads
    (curves, plot), (heat, cells) = _vega(at)
    mine = plot[plot["pair"] == "mine"]
    assert len(mine) == 107 and mine["kind"].iloc[0] == report.KIND_MODEL
    assert mine["p"].to_numpy() == pytest.approx(metrics.precision_curve(A, U))
    assert mine["null_hi"].notna().all() and (mine["boot_lo"] <= mine["p"] + 1e-12).all()
    assert _pk15(at, "mine") == pytest.approx(metrics.precision_at_k(A, U, 15))
    assert "mine" in set(cells["row"])
    curves_csv = pd.read_csv(io.BytesIO(downloads["alva_precision_curves.csv"]))
    assert curves_csv.loc[(curves_csv["model"] == "mine") & (curves_csv["k"] == 15), "P@k"].iloc[0] == \
        pytest.approx(metrics.precision_at_k(A, U, 15))
    assert "mine" in pd.read_csv(io.BytesIO(downloads["alva_precision_matrix_k15.csv"]), index_col=0).columns
    # Neighbours: a column with the upload's own nearest neighbours, in the grid and its CSV
    at.switch_page("pages/neighbours.py").run()
    assert not at.exception, [e.message for e in at.exception]
    grid = next(d.value for d in at.dataframe if "mine" in d.value.columns)
    idx = metrics.neighbours(U, 15)[0]
    assert [c.split(" · ")[0].removeprefix("✓ ") for c in grid["mine"]] == [INSTR[j] for j in idx]
    nb = pd.read_csv(io.BytesIO(downloads["alva_neighbours_k15.csv"]))
    assert nb.loc[nb["model"] == "mine", "neighbour"].tolist() == [INSTR[j] for j in idx]
    # Procrustes: a panel, a row of the full-space statistics, the coordinates CSV
    at.switch_page("pages/procrustes.py").run()
    assert not at.exception, [e.message for e in at.exception]
    stats = _tables(at, "disparity")[0]
    row = stats[stats["model"] == "mine"].iloc[0]
    assert row["disparity"] == pytest.approx(metrics.procrustes(A, U).disparity, rel=1e-5)
    coords = pd.read_csv(io.BytesIO(downloads["alva_umap_aligned_to_alm.csv"]))
    assert (coords["space"] == "mine").sum() == 108
    # Overview: a row of the headline table (and of its CSV), with its statistics
    at.session_state["headline_fold"] = True  # the folded tables, opened
    at.switch_page("pages/overview.py").run()
    assert not at.exception, [e.message for e in at.exception]
    head = next(t for t in _tables(at, "P@15") if "mine" in set(t["model"]))
    assert head.loc[head["model"] == "mine", "P@15"].iloc[0] == pytest.approx(metrics.precision_at_k(A, U, 15))
    csv = pd.read_csv(io.BytesIO(downloads["alva_headline_p15.csv"]))
    assert csv.loc[csv["model"] == "mine", "family"].iloc[0] == "uploaded"


def test_an_upload_stays_in_its_session_and_never_reaches_the_disk(synthetic, no_umap):
    assets, shipped = _tree(Path(synthetic)), _tree(REPO / "assets")
    U1, U2 = _space(1), _space(2)
    A = load_embeddings("alm", 0)[0]
    one = _upload(_run("precision"), "mine", _npy(U1))
    p1 = _pk15(one, "mine")
    assert p1 == pytest.approx(metrics.precision_at_k(A, U1, 15))
    # another session sees nothing of it: not in its pickers, not in its figures, and a link naming it is refused
    two = _run("precision", {"models": "alm,mine"})
    assert not two.exception
    assert not [o for o in two.multiselect(key="w_models").options if o.startswith("mine")]
    assert "mine" not in set(_vega(two)[0][1]["pair"])
    assert "Unknown model in the link ignored: mine" in _texts(two)
    # the same name with other vectors in the other session: each session gets its own numbers
    _upload(two, "mine", _npy(U2))
    assert _pk15(two, "mine") == pytest.approx(metrics.precision_at_k(A, U2, 15)) != pytest.approx(p1)
    one.run()
    assert _pk15(one, "mine") == pytest.approx(p1)
    for page in ("neighbours", "procrustes", "overview"):  # every page computes something from it
        one.switch_page(f"pages/{page}.py").run()
        assert not one.exception, [e.message for e in one.exception]
    # nothing was written under assets/, and nothing computed from an upload is in the diskcache
    assert _tree(Path(synthetic)) == assets and _tree(REPO / "assets") == shipped
    c = store.cache()
    for U in (U1, U2):
        assert store.key("report.pair", report.pair_params(A, U)) not in c
        assert store.key("report.procrustes", report.procrustes_params(A, U)) not in c
        assert store.key("report.umap", report.layout_params(U)) not in c
    assert store.key("report.pair", report.pair_params(A, load_embeddings("smollm2-135m")[0])) in c  # (control)
    joint = {"alm-s0": A, **{m: load_embeddings(m)[0] for m in ("smollm2-135m", "all-minilm-l6-v2")}}
    assert store.key("report.joint", report.joint_params(joint, "alm-s0")) in c  # (control: the page's default)
    assert store.key("report.joint", report.joint_params({**joint, "mine": U1}, "alm-s0")) not in c
    raw = U1.tobytes()[:256]
    assert not any(raw in p.read_bytes() for p in store.cache_dir().rglob("*") if p.is_file())


def test_a_refused_upload_says_why_and_changes_nothing(synthetic):
    import pickle

    at = _run("precision")
    models = list(at.session_state["models"])
    _upload(at, "mine", pickle.dumps({"x": 1}), "mine.npy")  # (a live payload: tests/test_uploads.py)
    assert "pickle" in " ".join(e.value for e in at.sidebar.error)
    _upload(at, "alm", _npy(_space(1)))
    assert "taken by a shipped model" in " ".join(e.value.replace("\\", "") for e in at.sidebar.error)
    _upload(at, "mine", _npy(_space(1)[:100]))
    assert "has 100 rows; expected 108" in " ".join(e.value.replace("\\", "") for e in at.sidebar.error)
    assert list(at.session_state["models"]) == models and "mine" not in set(_vega(at)[0][1]["pair"])


def test_the_closed_uploader_sends_nothing_and_opens_with_its_form(synthetic):
    at = _run("precision")
    assert not at.session_state[uploads.FOLD]
    assert not [w for w in at.text_input if w.key == "w_upload_name"] and not at.get("file_uploader")
    _open(at)
    assert at.text_input(key="w_upload_name") and at.file_uploader(key="w_upload_file")
    assert not at.exception


def test_remove_forgets_the_upload_everywhere(synthetic):
    at = _upload(_run("precision"), "mine", _npy(_space(1)))
    assert "mine" in set(_vega(at)[0][1]["pair"])
    at.button(key="w_upload_remove_mine").click().run()
    assert not at.exception
    assert "mine" not in at.session_state["models"] and "mine" not in set(_vega(at)[0][1]["pair"])
    assert not [o for o in at.multiselect(key="w_models").options if o.startswith("mine")]

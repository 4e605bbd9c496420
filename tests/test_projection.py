"""core.projection: UMAP determinism and caching, aligned layouts, displacement. UMAP fits are few and small
(the first fit in a process pays the numba JIT, ~10 s)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from core import projection as P
from core.metrics import MetricInputError


def rotation(theta, reflect=False):
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return R @ np.diag([1, -1]) if reflect else R


def test_umap_not_imported_at_module_import():
    code = "import sys, core.projection, core.metrics; assert 'umap' not in sys.modules; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stderr


def test_adapt_n_neighbors():
    assert P.adapt_n_neighbors(108) == 15
    assert P.adapt_n_neighbors(10) == 9
    assert P.adapt_n_neighbors(3) == 2
    assert P.adapt_n_neighbors(108, 30) == 30


def test_umap_deterministic_cached_and_joint():
    """One test for everything that fits UMAP, to pay the JIT once."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 8))
    a = P.umap_layout(X, seed=1, cache=False)
    b = P.umap_layout(X, seed=1, cache=False)
    assert a.shape == (30, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)  # deterministic for a seed
    assert not np.allclose(a, P.umap_layout(X, seed=2, cache=False))
    c = P.umap_layout(X, seed=1)  # cached: first call computes, second reads back the same array
    np.testing.assert_array_equal(c, a)
    np.testing.assert_array_equal(P.umap_layout(X.astype(np.float32), seed=1), a)
    # joint layout: spaces aligned in high dimension, one UMAP; a rotated+scaled copy aligns exactly
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    spaces = {"alm": X, "copy": 3 * X @ Q + 2, "other": rng.standard_normal((30, 12))}
    j = P.joint_layout(spaces, seed=0, cache=False)
    assert j.reference == "alm" and j.method == "joint"
    assert j.disparity["copy"] == pytest.approx(0.0, abs=1e-10) and j.disparity["other"] > 0.3
    assert all(v.shape == (30, 2) for v in j.layouts.values())
    # the same instruction sits at the same place in every panel of a rotated copy: exactly, by construction
    np.testing.assert_array_equal(j.layouts["copy"], j.layouts["alm"])
    spread = np.sqrt(((j.layouts["alm"] - j.layouts["alm"].mean(0)) ** 2).sum(1).mean())  # rms distance to centre
    assert np.linalg.norm(j.layouts["other"] - j.layouts["alm"], axis=1).mean() > 0.2 * spread  # unrelated: apart
    # deterministic for a seed (a fresh fit, not a cache read), another seed gives another layout
    again = P.joint_layout(spaces, seed=0, cache=False)
    for m in spaces:
        np.testing.assert_array_equal(again.layouts[m], j.layouts[m])
    assert not np.allclose(P.joint_layout(spaces, seed=3, cache=False).layouts["alm"], j.layouts["alm"])
    # the dashboard's settings: no space reduced (dims "max"), each at unit size (scale "match"); a 3-d space and
    # its rotated copy embedded in 6 dims (zero-padded, rotated, scaled, moved) still coincide
    Z = rng.standard_normal((30, 3))
    Q6, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lifted = {"alm": Z, "lifted": 0.5 * np.hstack([Z, np.zeros((30, 3))]) @ Q6 - 1, "wide": X}
    d = P.joint_layout(lifted, seed=0, cache=False, dims="max", scale="match")
    np.testing.assert_array_equal(d.layouts["lifted"], d.layouts["alm"])
    assert not np.allclose(d.layouts["wide"], d.layouts["alm"])


def test_align_spaces_dims_and_scale():
    rng = np.random.default_rng(5)
    X, W = rng.standard_normal((20, 3)), rng.standard_normal((20, 9))
    _, a, _, sc, disp = P.align_spaces({"alm": X, "w": W}, dims="min")
    assert a["w"].shape == (20, 3)  # the 9-d space reduced to 3 principal components
    _, b, _, sc_max, disp_max = P.align_spaces({"alm": X, "w": W}, dims="max", scale="match")
    assert b["alm"].shape == b["w"].shape == (20, 9) and np.allclose(b["alm"][:, 3:], 0)  # padded, not reduced
    assert np.linalg.norm(b["w"]) == pytest.approx(1.0) and sc_max["w"] < 1  # unscaled, the fit's scale reported
    _, c, *_ = P.align_spaces({"alm": X, "w": W}, dims="max", scale="fit")
    assert np.allclose(c["w"], sc_max["w"] * b["w"]) and 0 < disp_max["w"] < 1
    with pytest.raises(MetricInputError, match="dims must be one of"):
        P.align_spaces({"alm": X}, dims="all")
    with pytest.raises(MetricInputError, match="scale must be"):
        P.align_spaces({"alm": X}, scale="none")


def test_coincident_groups():
    Y = np.array([[0.0, 0.0], [1.0, 0.0], [1e-12, 0.0], [1.0, 1e-11], [0.5, 0.5]])
    assert P.coincident_groups(Y).tolist() == [0, 1, 0, 1, 4]
    assert P.coincident_groups(Y, tol=0).tolist() == [0, 1, 2, 3, 4]


def test_matched_scale_keeps_unrelated_layouts_visible_and_the_disparity():
    rng = np.random.default_rng(3)
    ref, unrelated = rng.normal(size=(108, 2)), rng.normal(size=(108, 2)) * 40
    fit = P.align_layouts({"alm": ref, "m": unrelated}, scale="fit")
    match = P.align_layouts({"alm": ref, "m": unrelated}, scale="match")
    size = lambda X: np.linalg.norm(X - X.mean(0))  # noqa: E731
    assert size(fit.layouts["m"]) < 0.3 * size(ref)  # least squares shrinks what it cannot fit
    assert size(match.layouts["m"]) == pytest.approx(size(ref))
    assert match.disparity["m"] == pytest.approx(fit.disparity["m"]) and fit.disparity["m"] > 0.8
    same = P.align_layouts({"alm": ref, "m": 3 * ref[:, ::-1] + 5}, scale="match")  # reflected, scaled, moved
    assert np.allclose(same.layouts["m"], ref) and same.disparity["m"] == pytest.approx(0, abs=1e-12)
    with pytest.raises(MetricInputError, match="scale must be one of"):
        P.align_layouts({"alm": ref, "m": ref}, scale="stretch")


def test_align_layouts_takes_reference_orientation():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((25, 2))
    moved = 4.0 * ref @ rotation(1.1, reflect=True) + np.array([10.0, -3.0])
    noisy = 0.5 * ref @ rotation(-0.4) + 0.05 * rng.standard_normal((25, 2))
    al = P.align_layouts({"other": noisy, "alm": ref, "moved": moved})
    assert al.reference == "alm"  # the agent is the default reference
    np.testing.assert_array_equal(al.layouts["alm"], ref)  # reference unchanged
    np.testing.assert_allclose(al.layouts["moved"], ref, atol=1e-10)  # rotation, reflection, scale undone
    assert al.scale["moved"] == pytest.approx(1 / 4)
    assert al.disparity["moved"] == pytest.approx(0.0, abs=1e-12)
    assert np.abs(al.layouts["other"] - ref).max() < 0.3 and al.disparity["other"] > 0
    np.testing.assert_allclose(al.rotation["moved"] @ al.rotation["moved"].T, np.eye(2), atol=1e-12)
    # without reflection the mirrored copy cannot be matched exactly
    nr = P.align_layouts({"alm": ref, "moved": moved}, allow_reflection=False)
    assert nr.disparity["moved"] > 0.01
    with pytest.raises(MetricInputError, match="reference 'nope'"):
        P.align_layouts({"alm": ref}, reference="nope")


def test_displacement_definition():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    moved = ref.copy()
    moved[0] = [0.0, 0.5]
    al = P.AlignedLayouts(reference="r", method="layout", layouts={"r": ref, "m": moved}, rotation={}, scale={},
                          disparity={})
    t = P.displacement_table(al, k=2, instructions=["a", "b", "c", "d"])
    top = t.iloc[0]
    assert (top["model"], top["item"], top["instruction"]) == ("m", 0, "a")
    # item 0: moved 0.5; its 2 nearest neighbours in the reference are at distance 1 and 1 -> local scale 1
    assert top.displacement == pytest.approx(0.5) and top.local_scale == pytest.approx(1.0)
    assert top.relative_displacement == pytest.approx(0.5)
    assert (t.relative_displacement.iloc[1:] == 0).all()

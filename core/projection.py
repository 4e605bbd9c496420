"""2-D projections of embedding spaces: seeded, cached UMAP layouts and Procrustes-aligned comparisons.

``umap`` is imported lazily inside functions (never at module import). Its first fit in a process pays a numba
JIT cost (~10 s); call :func:`warm_up` once (e.g. inside ``st.cache_resource``) to pay it outside page renders.

Conventions
-----------
* **UMAP layout** (:func:`umap_layout`): 2 components, ``metric="cosine"`` on the raw rows,
  ``n_neighbors = min(15, n - 1)`` (never below 2), ``min_dist = 0.1``, spectral init, ``random_state=seed``
  (single-threaded, deterministic for a seed). Cached in :func:`core.store.cached` under stage ``umap`` with
  a key holding the SHA-256 of the float32 array bytes and shape, all parameters and the umap-learn version.
* **Aligned layouts** (:func:`align_layouts`): every model's 2-D layout is mapped onto the reference's layout
  by a similarity transform (translation + orthogonal rotation/reflection + isotropic scale) fitted by least
  squares (orthogonal Procrustes); the reference layout is returned unchanged, so every aligned layout has the
  reference's position, orientation and scale.
* **Joint layout** (:func:`joint_layout`): the high-dimensional spaces are aligned first -- each is centred,
  scaled to unit Frobenius norm, reduced by PCA to ``p = min(min_d, n)`` dims (lossless whenever every
  ``d >= n-1``, since centred data has rank <= n-1) and Procrustes-rotated/scaled onto the reference -- and
  then all N x n aligned points are projected by one UMAP fit (``metric="euclidean"``, the geometry Procrustes
  aligns), so all models share one 2-D frame. Options: ``dims="max"`` pads the smaller spaces with zeros to
  ``p = min(max_d, n)`` instead of reducing the larger ones; ``scale="match"`` leaves every aligned space at unit
  norm instead of its least-squares scale. Points that coincide after alignment (within ``COINCIDENT_TOL``) are
  fitted once and share one position, so rotated/scaled copies of a space get identical layouts.
* **Displacement** (:func:`displacement_table`): for model M and item i, ``displacement_i = ||y_i - r_i||``
  (Euclidean, aligned 2-D layout y of M vs reference layout r); ``local_scale_i`` = mean Euclidean distance
  from r_i to its k nearest neighbours in the reference layout (self excluded; default k = 5);
  ``relative_displacement_i = displacement_i / local_scale_i`` -- how many "neighbour spacings" item i moved.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import metrics as M

#: the agent's registry name: the default reference for aligned layouts
AGENT = "alm"
#: default UMAP parameters (n_neighbors is adapted to n: min(15, n - 1))
UMAP_DEFAULTS: dict[str, object] = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "init": "spectral",
                                    "n_components": 2}
LAYOUT_CONVENTIONS = ("UMAP 2-D, cosine on raw rows, n_neighbors = min(15, n-1), min_dist = 0.1, spectral init, "
                      "random_state = seed (deterministic)")
ALIGN_CONVENTIONS = ("each 2-D layout mapped onto the reference layout by translation, least-squares "
                     "rotation/reflection and an isotropic scale (least-squares 'fit', or 'match': the reference's "
                     "size); disparity = least-squares similarity Procrustes disparity; reference unchanged")
JOINT_CONVENTIONS = ("spaces centred, unit Frobenius norm, PCA to p = min(min dim, n) (or the largest dim, the "
                     "others zero-padded), Procrustes-aligned (rotation/reflection, least-squares or no scale) onto "
                     "the reference in p dims, then one joint UMAP (euclidean) of all N x n points, coincident "
                     "points fitted once")
DISPLACEMENT_CONVENTIONS = ("displacement = ||y_i - r_i|| (aligned layout vs reference layout); local_scale = "
                            "mean distance from r_i to its k nearest neighbours in the reference layout; "
                            "relative_displacement = displacement / local_scale")


def adapt_n_neighbors(n: int, requested: int | None = None) -> int:
    """UMAP's n_neighbors for n points: ``min(requested or 15, n - 1)``, at least 2."""
    req = int(requested if requested is not None else UMAP_DEFAULTS["n_neighbors"])
    return max(2, min(req, n - 1))


def array_hash(X: np.ndarray) -> str:
    """SHA-256 of a float32 C-contiguous copy of X plus its shape (what UMAP sees)."""
    a = np.ascontiguousarray(X, dtype=np.float32)
    h = hashlib.sha256(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _umap_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("umap-learn")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _fit_umap(X: np.ndarray, seed: int, n_neighbors: int, min_dist: float, metric: str, init: str) -> np.ndarray:
    import umap  # lazy: heavy import + numba JIT on first fit

    n = X.shape[0]
    if init == "spectral" and n <= 4:  # spectral init needs more points than components + 1
        init = "random"
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                        init=init, random_state=int(seed), transform_seed=int(seed), n_jobs=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        Y = reducer.fit_transform(np.ascontiguousarray(X, dtype=np.float32))
    return np.asarray(Y, dtype=np.float64)


def umap_layout(X, seed: int = 0, n_neighbors: int | None = None, min_dist: float | None = None,
                metric: str | None = None, cache: bool = True) -> np.ndarray:
    """(n, 2) UMAP layout of one space (conventions: module docstring); cached unless ``cache=False``."""
    X = M.check_space(X, "X", min_rows=3)
    n = X.shape[0]
    params = {"x": array_hash(X), "seed": int(seed), "n_neighbors": adapt_n_neighbors(n, n_neighbors),
              "min_dist": float(UMAP_DEFAULTS["min_dist"] if min_dist is None else min_dist),
              "metric": str(metric or UMAP_DEFAULTS["metric"]), "init": str(UMAP_DEFAULTS["init"]),
              "umap": _umap_version()}

    def compute() -> np.ndarray:
        return _fit_umap(X, params["seed"], params["n_neighbors"], params["min_dist"], params["metric"],
                         params["init"])

    if not cache:
        return compute()
    from .store import cached

    return np.array(cached("umap", params, compute,
                           validate=lambda v: isinstance(v, np.ndarray) and v.shape == (n, 2)))


def warm_up(n: int = 32, seed: int = 0) -> float:
    """Fit UMAP once on small random data (same code path as :func:`umap_layout`, uncached) so the numba JIT
    cost is paid now; returns the seconds it took. Call once per process (e.g. in ``st.cache_resource``)."""
    t = time.perf_counter()
    X = np.random.default_rng(seed).standard_normal((n, 8))
    _fit_umap(X, seed, adapt_n_neighbors(n), float(UMAP_DEFAULTS["min_dist"]), "cosine", "spectral")
    _fit_umap(X, seed, adapt_n_neighbors(n), float(UMAP_DEFAULTS["min_dist"]), "euclidean", "spectral")
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------------ alignment
@dataclass(frozen=True)
class AlignedLayouts:
    reference: str
    method: str                      # "layout" (2-D Procrustes of separate layouts) or "joint"
    layouts: dict[str, np.ndarray]   # name -> (n, 2) in the reference's frame
    rotation: dict[str, np.ndarray]  # name -> orthogonal Q (2x2 for "layout", p x p for "joint")
    scale: dict[str, float]
    disparity: dict[str, float]      # scipy-convention Procrustes disparity of the fit (0 = exact)
    conventions: str = field(default="")


def _pick_reference(names: Sequence[str], reference: str | None) -> str:
    if reference is None:
        return AGENT if AGENT in names else names[0]
    if reference not in names:
        raise M.MetricInputError(f"reference {reference!r} is not among the layouts: {list(names)}")
    return reference


SCALE_MODES = ("fit", "match", "none")


def _similarity_fit(Y: np.ndarray, R: np.ndarray, scale: str = "fit", allow_reflection: bool = True):
    """Least-squares Q (orthogonal) and a scale s, so that s (Y - mean Y) Q + mean R ~ R.

    ``scale``: "fit" = the least-squares s; "match" = Y's size made equal to R's (s = |Rc| / |Yc|, Frobenius
    norms of the centred layouts); "none" = 1. The disparity is the least-squares one whatever the mode.
    Returns (aligned, Q, s, disparity)."""
    Yc, Rc = Y - Y.mean(axis=0), R - R.mean(axis=0)
    nY, nR = np.linalg.norm(Yc), np.linalg.norm(Rc)
    if not (nY > 0 and nR > 0):
        raise M.MetricInputError("a layout has all points at one location; it cannot be aligned")
    U, sv, Vt = np.linalg.svd(Yc.T @ Rc)
    if not allow_reflection and np.linalg.det(U @ Vt) < 0:
        U[:, -1] *= -1
        sv = sv.copy()
        sv[-1] *= -1
    Q = U @ Vt
    s = {"fit": float(sv.sum() / nY ** 2), "match": float(nR / nY), "none": 1.0}[scale]
    aligned = s * (Yc @ Q) + R.mean(axis=0)
    disparity = float(1.0 - (sv.sum() / (nY * nR)) ** 2)
    return aligned, Q, s, max(0.0, disparity)


def align_layouts(layouts: Mapping[str, np.ndarray], reference: str | None = None, scale: bool | str = "fit",
                  allow_reflection: bool = True) -> AlignedLayouts:
    """Map every 2-D layout onto the reference's (default: the agent ``alm`` if present, else the first).

    Per model: translation and the least-squares rotation/reflection, then an isotropic scale chosen by
    ``scale``: "fit" (or True) = least squares (a full similarity Procrustes fit); "match" = the layout keeps the
    reference's overall size, for display: when two layouts share little structure the least-squares scale
    tends to 0 and would draw the layout as a point at the reference's centre; "none" (or False) = unscaled.
    The reported disparity is the least-squares one in every mode. The reference is returned unchanged.
    """
    mode = ("fit" if scale else "none") if isinstance(scale, bool) else scale
    if mode not in SCALE_MODES:
        raise M.MetricInputError(f"scale must be one of {SCALE_MODES} (or a bool); got {scale!r}")
    names = list(layouts)
    if not names:
        raise M.MetricInputError("no layouts given")
    ref = _pick_reference(names, reference)
    L = {m: np.asarray(layouts[m], dtype=np.float64) for m in names}
    n = L[ref].shape[0]
    for m, Y in L.items():
        if Y.ndim != 2 or Y.shape != L[ref].shape or not np.isfinite(Y).all():
            raise M.MetricInputError(f"layout {m!r} must be a finite array of shape {L[ref].shape}; got {Y.shape}")
    out, rot, sc, disp = {}, {}, {}, {}
    for m in names:
        if m == ref:
            out[m], rot[m], sc[m], disp[m] = L[m].copy(), np.eye(L[m].shape[1]), 1.0, 0.0
            continue
        out[m], rot[m], sc[m], disp[m] = _similarity_fit(L[m], L[ref], mode, allow_reflection)
    return AlignedLayouts(reference=ref, method="layout", layouts=out, rotation=rot, scale=sc, disparity=disp,
                          conventions=ALIGN_CONVENTIONS + f" (n = {n}, scale: {mode})")


DIMS_MODES = ("min", "max")
#: rows of the stacked aligned spaces closer than this (Euclidean; each aligned space has Frobenius norm <= 1) are
#: one point of the joint UMAP fit
COINCIDENT_TOL = 1e-9


def align_spaces(spaces: Mapping[str, np.ndarray], reference: str | None = None, *, dims: str = "min",
                 scale: str = "fit"
                 ) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float], dict[str, float]]:
    """High-dimensional Procrustes alignment onto the reference (see ``joint_layout``'s conventions).

    ``dims``: "min" = every space reduced by PCA to p = min(smallest dim, n) (the module's convention); "max" =
    p = min(largest dim, n), the smaller spaces padded with zeros, so no space loses a dimension (a 17-d
    bag-of-words in the selection does not reduce a 128-d space to 17 dims). ``scale``: "fit" = each aligned
    space multiplied by its least-squares scale (a space that fits badly shrinks towards the centre); "match" =
    unscaled, every aligned space keeps unit Frobenius norm like the reference. The disparity is the
    least-squares one either way.

    Returns (reference, aligned (n, p) coordinates, rotations, scales, disparities).
    """
    if dims not in DIMS_MODES:
        raise M.MetricInputError(f"dims must be one of {DIMS_MODES}; got {dims!r}")
    if scale not in ("fit", "match"):
        raise M.MetricInputError(f"scale must be 'fit' or 'match'; got {scale!r}")
    names = list(spaces)
    if not names:
        raise M.MetricInputError("no spaces given")
    ref = _pick_reference(names, reference)
    n = M._same_n(spaces)
    X = {m: M.check_space(spaces[m], m, min_rows=3) for m in names}
    st = {m: M._standardise(X[m], m) for m in names}
    pick = min if dims == "min" else max
    p = min(pick(x.shape[1] for x in X.values()), n)

    def scores(m):  # top-p PCA scores (padded to p), renormalised to unit Frobenius norm
        S = st[m].scores[:, :p]
        if S.shape[1] < p:
            S = np.hstack([S, np.zeros((n, p - S.shape[1]))])
        return S / np.linalg.norm(S)

    R = scores(ref)
    out, rot, sc, disp = {ref: R}, {ref: np.eye(p)}, {ref: 1.0}, {ref: 0.0}
    for m in names:
        if m == ref:
            continue
        B = scores(m)
        U, sv, Vt = np.linalg.svd(B.T @ R)
        Q = U @ Vt
        s = float(sv.sum())  # ||B||_F = 1
        out[m], rot[m], sc[m] = (s if scale == "fit" else 1.0) * (B @ Q), Q, s
        disp[m] = float(max(0.0, 1.0 - s ** 2))
    return ref, out, rot, sc, disp


def coincident_groups(Y: np.ndarray, tol: float = COINCIDENT_TOL) -> np.ndarray:
    """(N,) for each row of Y the index of the first row within ``tol`` of it (Euclidean): rows that are the same
    point up to floating-point noise share one representative (its own index for a row that is first)."""
    Y = np.asarray(Y, dtype=np.float64)
    sq = (Y ** 2).sum(axis=1)
    # screen with the Gram identity (cheap, but its rounding error grows with the norms), then measure exactly
    near = sq[:, None] + sq[None, :] - 2 * Y @ Y.T <= tol ** 2 + 1e-9 * (sq[:, None] + sq[None, :])
    rep = np.arange(len(Y))
    for i in range(len(Y)):
        if rep[i] != i:
            continue
        cand = np.flatnonzero(near[i, i + 1:]) + i + 1
        cand = cand[rep[cand] == cand]
        same = cand[np.sqrt(((Y[cand] - Y[i]) ** 2).sum(axis=1)) <= tol]
        rep[same] = i
    return rep


def joint_layout(spaces: Mapping[str, np.ndarray], reference: str | None = None, seed: int = 0,
                 n_neighbors: int | None = None, min_dist: float | None = None, metric: str = "euclidean",
                 cache: bool = True, *, dims: str = "min", scale: str = "fit") -> AlignedLayouts:
    """Align the high-dimensional spaces onto the reference (Procrustes: :func:`align_spaces` with ``dims`` and
    ``scale``), then one joint UMAP of all points, so every space is drawn in one 2-D frame.

    Points that coincide after alignment (within :data:`COINCIDENT_TOL`) are one point of the UMAP fit and get
    one position: spaces that are rotated, reflected, scaled or translated copies of each other get identical
    layouts."""
    ref, aligned, rot, sc, disp = align_spaces(spaces, reference, dims=dims, scale=scale)
    names = list(spaces)
    n = aligned[ref].shape[0]
    stacked = np.vstack([aligned[m] for m in names])
    rep = coincident_groups(stacked)
    distinct, inverse = np.unique(rep, return_inverse=True)
    Y = umap_layout(stacked[distinct], seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                    cache=cache)[inverse]
    layouts = {m: Y[i * n:(i + 1) * n] for i, m in enumerate(names)}
    return AlignedLayouts(reference=ref, method="joint", layouts=layouts, rotation=rot, scale=sc, disparity=disp,
                          conventions=JOINT_CONVENTIONS + f"; dims {dims}, scale {scale}; UMAP seed {seed}, metric "
                          f"{metric}, n_neighbors {adapt_n_neighbors(len(distinct), n_neighbors)} over "
                          f"{len(distinct)} distinct points")


def displacement_table(aligned: AlignedLayouts, k: int = 5, instructions: Sequence[str] | None = None
                       ) -> pd.DataFrame:
    """Per-item displacement of every non-reference model from the reference (definition: module docstring).

    Columns: model, item, [instruction], displacement, local_scale, relative_displacement; sorted by
    relative_displacement, largest first.
    """
    R = aligned.layouts[aligned.reference]
    n = R.shape[0]
    k = M.check_k(k, n)
    D = np.sqrt(((R[:, None, :] - R[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(D, np.inf)
    nn = np.argsort(D, axis=1, kind="stable")[:, :k]
    local = np.take_along_axis(D, nn, axis=1).mean(axis=1)
    if instructions is not None and len(instructions) != n:
        raise M.MetricInputError(f"{len(instructions)} instructions for {n} items")
    rows = []
    for m, Y in aligned.layouts.items():
        if m == aligned.reference:
            continue
        d = np.sqrt(((Y - R) ** 2).sum(axis=1))
        df = pd.DataFrame({"model": m, "item": np.arange(n)})
        if instructions is not None:
            df["instruction"] = list(instructions)
        df["displacement"] = d
        df["local_scale"] = local
        df["relative_displacement"] = np.divide(d, local, out=np.full(n, np.inf), where=local > 0)
        rows.append(df)
    if not rows:
        cols = ["model", "item"] + (["instruction"] if instructions is not None else []) + [
            "displacement", "local_scale", "relative_displacement"]
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values("relative_displacement", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["AGENT", "UMAP_DEFAULTS", "adapt_n_neighbors", "array_hash", "umap_layout", "warm_up",
           "AlignedLayouts", "align_layouts", "align_spaces", "coincident_groups", "joint_layout",
           "displacement_table"]

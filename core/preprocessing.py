"""Preprocessing choices applied to an embedding space before its neighbours are ranked (the analysis multiverse).

Every choice is a pure function of the rows it is given (statistics are fitted on exactly those items, so a
subset of instructions is preprocessed as if the study had only those items). Neighbours are then ranked by
cosine similarity with :mod:`core.metrics` (float64, self excluded, 10-decimal rounding, ties to the smaller
index), so ``raw`` is the project's default convention.

* ``raw``     -- the rows as they are (cosine on raw vectors; the default everywhere in ALVA).
* ``centred`` -- the column means (over the given items) are subtracted; a dimension that is constant over the
  items becomes exactly 0.
* ``zscore``  -- centred, then every dimension divided by its standard deviation over the items (ddof = 0);
  a constant dimension (sd 0) becomes 0.
* ``clamp``   -- platonic-rep's outlier clamp (Huh et al. 2024, ``remove_outliers(q=0.95, exact=False)`` then
  L2): threshold t = mean over rows of the row's 95th percentile of |activation| (linear interpolation);
  every value is clipped to [-t, t]; rows are L2-normalised.

A choice can leave a row all zero (e.g. centring a space whose rows are all identical): cosine is then undefined
and :func:`core.metrics.check_space` raises :class:`core.metrics.MetricInputError` downstream.
"""
from __future__ import annotations

import numpy as np

from .metrics import MetricInputError

PREPROCESSINGS: tuple[str, ...] = ("raw", "centred", "zscore", "clamp")
CLAMP_QUANTILE = 0.95
CONVENTIONS = {
    "raw": "raw rows (cosine on the vectors as they are)",
    "centred": "column means over the analysed items subtracted",
    "zscore": "centred, each dimension divided by its sd over the analysed items (ddof 0; constant dims -> 0)",
    "clamp": (f"platonic-rep outlier clamp: t = mean over rows of the row's {CLAMP_QUANTILE:.0%} quantile of "
              "|x| (linear interpolation), clip to [-t, t], then L2-normalise rows"),
}


def preprocess(X, how: str = "raw") -> np.ndarray:
    """Apply one preprocessing choice (module docstring) to X (n, d) -> float64 (n, d)."""
    if how not in PREPROCESSINGS:
        raise MetricInputError(f"unknown preprocessing {how!r}; choose one of {', '.join(PREPROCESSINGS)}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise MetricInputError(f"preprocess expects a 2-D array (n_items, dim); got shape {X.shape}")
    if how == "raw":
        return X
    if how == "clamp":
        t = float(np.quantile(np.abs(X), CLAMP_QUANTILE, axis=1).mean())
        Y = np.clip(X, -t, t)
        norms = np.linalg.norm(Y, axis=1, keepdims=True)
        return np.divide(Y, norms, out=np.zeros_like(Y), where=norms > 0)
    Y = X - X.mean(axis=0)
    Y[:, (X == X[:1]).all(axis=0)] = 0.0  # a constant dimension is exactly 0 (not the mean's rounding noise)
    if how == "zscore":
        sd = Y.std(axis=0)
        Y = np.divide(Y, sd, out=np.zeros_like(Y), where=sd > 0)
    return Y

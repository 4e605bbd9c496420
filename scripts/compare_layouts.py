"""Why the Procrustes page draws the joint layout: compare three ways of laying out several spaces side by side.

    python scripts/compare_layouts.py [--seed 0] [--aligned]

For the page's default selection (the agent ``alm-s<seed>`` and every language model shipped), per panel:

* ``apart``: how far the same instruction lies from its position in the reference's panel, the mean distance
  in RMS radii of the reference panel (its root-mean-square distance to its centroid); comparable panels give
  small values where the spaces agree, and values near those of unrelated layouts (~1.2 here) where they do not;
* ``own 10-NN``: the share of each instruction's 10 nearest neighbours in the panel (Euclidean, 2-D) that are
  among its 10 nearest in the panel's own space (cosine, :func:`core.metrics.neighbours`): how much of its own
  space a panel shows.

Methods: ``joint`` (core.report.joint_layout: full-space Procrustes, then one UMAP; what the page shows by
default), ``own`` (each space's own UMAP, 2-D Procrustes onto the reference, size matched: the page's *own*
option) and, with ``--aligned``, umap-learn's ``AlignedUMAP`` (cosine, window = every space, regularisation 0.01
and 0.1; slow: about a minute per fit on 2 busy cores). Prints a table; nothing is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import metrics, projection, report  # noqa: E402


def apart(layout: np.ndarray, ref: np.ndarray) -> float:
    radius = np.sqrt(((ref - ref.mean(0)) ** 2).sum(1).mean())
    return float(np.linalg.norm(layout - ref, axis=1).mean() / radius)


def own_overlap(layout: np.ndarray, X: np.ndarray, k: int = 10) -> float:
    D = np.linalg.norm(layout[:, None] - layout[None], axis=2)
    np.fill_diagonal(D, np.inf)
    mine = np.argsort(D, axis=1, kind="stable")[:, :k]
    theirs = metrics.neighbours(X, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(mine, theirs)]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="agent seed of the reference")
    p.add_argument("--aligned", action="store_true", help="also fit umap-learn's AlignedUMAP (slow)")
    args = p.parse_args()
    names = [report.REFERENCE, *[m for m in report.default_models() if m != report.REFERENCE]]
    spaces = {report.stem(m, report.default_seed(m, args.seed)): report.load_space(m, report.default_seed(
        m, args.seed))[0] for m in names if report.seeds_of(m)}
    ref = report.stem(report.REFERENCE, args.seed)
    methods = {"joint": report.joint_layout(spaces, ref)}
    own = {m: report.layout(X) for m, X in spaces.items()}
    methods["own"] = projection.align_layouts(own, reference=ref, scale="match").layouts
    if args.aligned:
        import umap

        order = [ref, *[m for m in spaces if m != ref]]
        for reg in (0.01, 0.1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = umap.AlignedUMAP(n_neighbors=15, metric="cosine", min_dist=0.1, random_state=report.UMAP_SEED,
                                       alignment_regularisation=reg, alignment_window_size=len(order)).fit(
                    [spaces[m] for m in order], relations=[{i: i for i in range(len(spaces[ref]))}] * (len(order) - 1))
            methods[f"AlignedUMAP {reg}"] = dict(zip(order, fit.embeddings_))
    print(f"{'method':18s} {'panel':24s} {'apart':>6s} {'own 10-NN':>10s}")
    for method, layouts in methods.items():
        for m, X in spaces.items():
            print(f"{method:18s} {m:24s} {apart(layouts[m], layouts[ref]):6.2f} {own_overlap(layouts[m], X):10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The analysis multiverse: how robust is an agent-model P@15 to the choices an analysis makes?

PLACEHOLDER: the run is added below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import metrics as M
from .instructions import instruction_set, metadata

K = 15                                  #: the headline k (chance 15/107 at n = 108)
SUBSET_FACTORS = ("verb", "determiner")  #: instruction subsets: within each level of these factors
N_SPLITS = 10                           #: random half splits of the split-half layer selection
SPLIT_SEED = 0                          #: numpy default_rng seed of the half splits


def chance_matched_k(n_items: int, k: int = K, n: int | None = None) -> int:
    """The k whose chance level k/(n_items-1) is closest to k/(n-1) of the full set (ties: the smaller k).

    With the 108 instructions and k = 15: 7 for 48 or 54 items, 5 for 36, 3 for 24.
    """
    n = len(instruction_set()) if n is None else int(n)
    if n_items < 2:
        raise M.MetricInputError(f"a set of {n_items} item(s) has no neighbours: P@k needs at least 2 items")
    target = M.chance_precision(n, k)
    ks = np.arange(1, n_items)
    return int(ks[np.argmin(np.abs(ks / (n_items - 1) - target))])


@dataclass(frozen=True)
class ItemSet:
    """A set of instructions analysed on its own (neighbours only among them) and the k used on it."""

    name: str             # "all", "verb=go to", "determiner=the", "half 3a" ...
    items: np.ndarray     # indices into instruction_set(), increasing
    k: int

    @property
    def n(self) -> int:
        return int(self.items.size)

    @property
    def chance(self) -> float:
        return float(M.chance_precision(self.n, self.k))


def check_item_set(s: ItemSet) -> ItemSet:
    """A set with fewer than k + 1 items cannot give k neighbours to each item: a clear error."""
    if s.n < s.k + 1:
        raise M.MetricInputError(f"instruction subset {s.name!r} has {s.n} items: P@{s.k} needs at least "
                                 f"k + 1 = {s.k + 1} items (every item needs k neighbours besides itself)")
    return s


def item_subsets(k: int = K, factors: Sequence[str] = SUBSET_FACTORS, subset_k: int | None = None,
                 instructions: Sequence[str] | None = None) -> list[ItemSet]:
    """"all" (k) and, for every level of each factor, the instructions with that level.

    The k of a subset is :func:`chance_matched_k` (chance as close as possible to k/(n-1)) unless ``subset_k``
    is given; a subset with fewer than k + 1 items raises :class:`core.metrics.MetricInputError`.
    """
    meta = metadata(instructions)
    n = len(meta)
    k = M.check_k(k, n)
    out = [check_item_set(ItemSet("all", np.arange(n), k))]
    for f in factors:
        if f not in meta.columns or f == "instruction":
            raise M.MetricInputError(f"unknown factor {f!r}; factors: {', '.join(c for c in meta.columns[1:])}")
        for level in dict.fromkeys(meta[f]):
            idx = np.flatnonzero(meta[f].to_numpy() == level)
            kk = chance_matched_k(idx.size, k, n) if subset_k is None else int(subset_k)
            out.append(check_item_set(ItemSet(f"{f}={level}", idx, kk)))
    return out


def split_halves(n: int, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` random splits of range(n) into two halves (sizes floor(n/2), ceil(n/2)), sorted indices."""
    if n < 4:
        raise M.MetricInputError(f"a split-half analysis needs at least 4 items, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_splits)):
        p = rng.permutation(n)
        out.append((np.sort(p[: n // 2]), np.sort(p[n // 2:])))
    return out


def half_item_sets(n: int, k: int = K, n_splits: int = N_SPLITS, seed: int = SPLIT_SEED) -> list[ItemSet]:
    """The halves of :func:`split_halves` as item sets ("split 0 a", "split 0 b", ...) with chance-matched k."""
    out = []
    for i, (a, b) in enumerate(split_halves(n, n_splits, seed)):
        for tag, idx in (("a", a), ("b", b)):
            out.append(check_item_set(ItemSet(f"split {i} {tag}", idx, chance_matched_k(idx.size, k, n))))
    return out


def analysis_item_sets(k: int = K) -> list[ItemSet]:
    """Every item set the shipped multiverse ranks neighbours on: the full set, the subsets, the halves."""
    n = len(instruction_set())
    return item_subsets(k) + half_item_sets(n, k)

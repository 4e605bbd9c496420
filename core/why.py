"""Why do two spaces align? The numbers behind the dashboard's "Why they align" page and the Overview's line on
what learning does to the agent's alignment.

Pure core (no streamlit). Nothing here is a new metric: every P@k comes from :func:`core.metrics.per_item_counts`
(cosine neighbours on raw rows, self excluded, ties to the smaller index), every factor figure from
:mod:`core.controls` (η², leave-one-out nearest-centroid accuracy, neighbour-factor shares), every trajectory from
:mod:`core.dynamics`. This module only arranges them over training steps, keeps them in the store
(:func:`core.store.cached`, keyed by the arrays' fingerprints) and writes the sentences that state them.

* :func:`trajectory_counts` -- for every recorded snapshot of a trajectory, the per-item neighbour-overlap counts
  against one space: P@k for any k, and P@k(i) for any instruction, are slices (:func:`precision_over_steps`);
* :func:`trajectory_factor_separation` -- η² and LOO accuracy per factor at every snapshot (what organises the
  agent as it learns; independent of k);
* :func:`organised_by` -- the factors that organise a space, read from a factor-separation table;
* :func:`pair_answer` / :func:`answer_text` -- the figures of one (agent, model) pair and the sentence that states
  them (numbers computed, never typed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import metrics, store

WHY_VERSION = 1
#: a factor "organises" a space when its η² is at least this share of the largest factor's η² (and above its null)
ORGANISED_SHARE = 0.5


# ------------------------------------------------------------------------------------------ over training
def trajectory_counts(traj, X: np.ndarray) -> np.ndarray:
    """(S, n, n-1) uint8: entry [s, i, k-1] = |N^k(i) of snapshot s ∩ N^k(i) of X| (:func:`metrics.per_item_counts`).

    ``traj``: a :class:`core.dynamics.Trajectory` whose rows are X's rows, in order. P@k of snapshot s is
    ``counts[s, :, k-1].mean() / k``. Cached in the store (key: both arrays' fingerprints).
    """
    from .report import fingerprint

    E = traj.embeddings
    metrics.check_pair(E[-1], X)
    params = {"v": WHY_VERSION, "trajectory": traj.fingerprint(), "space": fingerprint(X)}

    def compute() -> np.ndarray:
        return np.stack([metrics.per_item_counts(e, X) for e in E]).astype(np.uint8)  # counts <= n-1 <= 255

    if E.shape[1] > 256:
        raise metrics.MetricInputError(f"trajectory_counts stores counts as uint8: n = {E.shape[1]} > 256 items")
    return store.cached("why.trajectory_counts", params, compute)


def precision_over_steps(counts: np.ndarray, k: int, item: int | None = None) -> np.ndarray:
    """(S,) P@k of every snapshot (mean over items), or P@k(i) of one ``item``, from :func:`trajectory_counts`."""
    n = counts.shape[1]
    k = metrics.check_k(k, n)
    c = counts[:, :, k - 1].astype(np.float64)
    return (c.mean(axis=1) if item is None else c[:, int(item)]) / k


def trajectory_factor_separation(traj) -> pd.DataFrame:
    """:func:`core.controls.factor_separation` of every snapshot: one row per (step, factor) with ``eta2``,
    ``eta2_null``, ``loo_acc`` and ``loo_chance`` (conventions: ``controls.FACTOR_CONVENTIONS``). Cached."""
    from .controls import factor_separation
    from .instructions import metadata

    meta = metadata(traj.instructions)
    params = {"v": WHY_VERSION, "trajectory": traj.fingerprint()}

    def compute() -> pd.DataFrame:
        parts = []
        for step, E in zip(traj.steps.tolist(), traj.embeddings):
            fs = factor_separation(E, metadata=meta)
            parts.append(pd.DataFrame({"step": int(step), "factor": fs["factor"], "eta2": fs["eta2"],
                                       "eta2_null": fs["eta2_null"], "loo_acc": fs["loo_centroid_acc"],
                                       "loo_chance": fs["chance"]}))
        return pd.concat(parts, ignore_index=True)

    return store.cached("why.trajectory_factor_separation", params, compute).copy()


# ------------------------------------------------------------------------------------------ organisation
def factor_share_counts(X, instructions: Sequence[str] | None = None,
                        factors: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour-factor shares for every k at once: ``(counts, chance)``.

    ``counts[f, i, k-1]`` (uint8) = how many of item i's k nearest neighbours have i's level of ``factors[f]``
    (neighbours: :func:`core.metrics.neighbours`, cosine on raw rows, self excluded, ties to the smaller index);
    ``chance[f, i]`` = (#items with i's level - 1) / (n - 1). The share at k is ``counts[:, :, k-1] / k``: the
    quantity of :func:`core.controls.neighbour_factor_shares` (equal at every k: tests/test_why.py), computed once
    per space so that a new k is a slice. Default factors: ``core.instructions.FACTORS``.
    """
    from .instructions import FACTORS, metadata

    X = metrics.check_space(X)
    n = X.shape[0]
    if n > 256:
        raise metrics.MetricInputError(f"factor_share_counts stores counts as uint8: n = {n} > 256 items")
    meta = metadata(instructions)
    if len(meta) != n:
        raise metrics.MetricInputError(f"{len(meta)} instructions for {n} rows: give the instructions of the rows")
    idx = metrics.neighbours(X, n - 1)
    factors = list(FACTORS if factors is None else factors)
    counts = np.empty((len(factors), n, n - 1), dtype=np.uint8)
    chance = np.empty((len(factors), n))
    for j, f in enumerate(factors):
        _, y = np.unique(np.asarray(meta[f]), return_inverse=True)
        counts[j] = np.cumsum(y[idx] == y[:, None], axis=1)
        chance[j] = (np.bincount(y)[y] - 1) / (n - 1)
    return counts, chance


# ------------------------------------------------------------------------------------------ sentences
def organised_by(separation: pd.DataFrame, share: float = ORGANISED_SHARE, limit: int = 2) -> list[tuple[str, float]]:
    """[(factor, η²), ...]: the factors that organise a space, strongest first.

    ``separation``: rows of :func:`core.controls.factor_separation` (columns ``factor``, ``eta2``, ``eta2_null``).
    A factor counts when its η² is above its null (L-1)/(n-1) and at least ``share`` of the largest η²; at most
    ``limit`` factors. [] when no factor is above its null.
    """
    df = separation[separation["eta2"] > separation["eta2_null"]].sort_values("eta2", ascending=False)
    if df.empty:
        return []
    top = float(df["eta2"].iloc[0])
    keep = df[df["eta2"] >= share * top].head(limit)
    return [(str(f), float(v)) for f, v in zip(keep["factor"], keep["eta2"])]


def describe_organisation(label: str, factors: list[tuple[str, float]]) -> str:
    """"alm-s0 by colour (η² 0.58) and object (0.39)" -- or "... by no factor above chance"."""
    if not factors:
        return f"{label} by no single factor (every η² at its null)"
    first, *rest = factors
    text = f"{label} by {first[0]} (η² {first[1]:.2f})"
    for f, v in rest:
        text += f" and {f} ({v:.2f})"
    return text


@dataclass
class PairAnswer:
    """The figures that answer "why do these two spaces align (or not)?" for one (agent, model) pair.

    P@k values at ``k`` (NaN where not computed); ``peak_*`` over the recorded snapshots of the selected seed;
    ``organisation``: label -> factors (:func:`organised_by`); ``multiverse``: figures from the multiverse summary
    (at its own k = 15), empty when it is not computed.
    """

    agent: str                       # "alm-s0"
    untrained: str                   # "untrained-alm-s0"
    model: str                       # "smollm2-135m"
    k: int
    chance: float
    trained_p: float
    untrained_p: float = float("nan")
    final_step: int | None = None
    peak_p: float = float("nan")
    peak_step: int | None = None
    paper: tuple[float, float, str] | None = None  # the paper's P@15 range for the model's family, and the family
    organisation: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    multiverse: dict[str, Any] = field(default_factory=dict)


def agent_text(a: PairAnswer) -> str:
    """What organises the agent, trained and untrained (the part of every pair's answer about the agent alone)."""
    org = a.organisation
    if a.agent not in org:
        return ""
    text = describe_organisation(f"**{a.agent}** is organised", org[a.agent])
    if a.untrained in org:
        text += "; " + describe_organisation(f"before training, {a.untrained}", org[a.untrained])
    return text + "."


def _peak_between(a: PairAnswer) -> bool:
    """Whether the trajectory's highest P@k lies above both ends (beyond float noise: the same P@k summed in
    another order differs in its last bit, and a peak at step 0 is the untrained agent itself)."""
    return (np.isfinite(a.peak_p) and a.peak_step is not None
            and a.peak_p > np.nanmax([a.trained_p, a.untrained_p]) + 1e-9)


def _paper_range(a: PairAnswer) -> str:
    """The paper's reported range ("0.70–0.73", or one value); "" when the paper has none for the family."""
    if a.paper is None or not np.isfinite(a.paper[0]):
        return ""
    lo, hi, _ = a.paper
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}–{hi:.2f}"


def _factors(a: PairAnswer) -> tuple[list[str], list[str], list[str]]:
    """The factors organising the agent and the model, and those they share (in the agent's order)."""
    mine = [f for f, _ in a.organisation.get(a.agent, [])]
    theirs = [f for f, _ in a.organisation.get(a.model, [])]
    return mine, theirs, [f for f in mine if f in theirs]


def brief_header(a: PairAnswer) -> str:
    """The line above the brief answers (:func:`answer_brief`): the measure they share."""
    return f"P@{a.k} against each model (chance {a.chance:.3f}), before → after training:"


def answer_brief(a: PairAnswer) -> str:
    """One short markdown line stating ``a``: P@k before → after training (and its peak), the paper's range, whether
    the two spaces are organised by different factors, and the multiverse spread. The same numbers as
    :func:`answer_text`, which says them in full; clauses without data are left out."""
    text = f"**{a.agent} vs {a.model}**: "
    if np.isfinite(a.untrained_p):
        text += f"**{a.untrained_p:.2f}** untrained → **{a.trained_p:.2f}** trained"
        if _peak_between(a):
            text += f" (highest {a.peak_p:.2f} at step {a.peak_step})"
    else:
        text += f"**{a.trained_p:.2f}** trained (untrained not computed)"
    if _paper_range(a):
        text += f"; paper {_paper_range(a)}"
    mine, theirs, shared = _factors(a)
    if theirs:
        text += f". {a.model} is organised by {' and '.join(theirs)}"
        if mine and not shared:
            text += f", {a.agent} by {' and '.join(mine)}: they cannot share neighbourhoods"
        elif shared:
            text += ", like the agent"
    if a.multiverse:
        mv = a.multiverse
        text += f". Over {int(mv['n_choices']):,} analysis choices: {mv['q05']:.2f}–{mv['q95']:.2f}"
    return text + "."


def answer_text(a: PairAnswer, with_agent: bool = True) -> str:
    """A short markdown paragraph stating ``a`` (every number from ``a``; clauses without data are left out).
    ``with_agent=False`` leaves out what organises the agent (:func:`agent_text`, said once for several pairs)."""
    parts = [f"**{a.agent} vs {a.model}** (P@{a.k}; chance {a.chance:.3f}): "]
    trained = f"**{a.trained_p:.2f}**"
    if np.isfinite(a.untrained_p):
        steps = f"{a.final_step} training steps" if a.final_step is not None else "training"
        parts.append(f"the untrained agent ({a.untrained}, zero training steps) reaches **{a.untrained_p:.2f}**; "
                     f"after {steps}, {a.agent} reaches {trained}")
        if _peak_between(a):
            parts.append(f" (highest along the way: {a.peak_p:.2f} at step {a.peak_step})")
        diff = a.trained_p - a.untrained_p
        verb = "lowers" if diff < 0 else "raises"
        parts.append(f". Learning to act {verb} the alignment by {abs(diff):.2f}.")
    else:
        parts.append(f"{a.agent} reaches {trained} (the untrained agent is not computed here).")
    if _paper_range(a):
        parts.append(f" The paper reports {_paper_range(a)} for the family {a.model} stands in for ({a.paper[2]}).")
    org = a.organisation
    if with_agent and a.agent in org:
        parts.append(" " + agent_text(a))
    if a.model in org:
        parts.append(" " + describe_organisation(a.model + " is organised", org[a.model]) + ".")
        mine, theirs, shared = _factors(a)
        if mine and theirs and not shared:
            parts.append(f" {a.agent} and {a.model} are organised by different factors ({' and '.join(mine)} vs "
                         f"{' and '.join(theirs)}): two such spaces cannot share neighbourhoods.")
        elif shared:
            parts.append(f" Both are organised by {' and '.join(shared)}.")
    mv = a.multiverse
    if mv:
        parts.append(f" Over {int(mv['n_choices']):,} analysis choices (layers, poolings, preprocessing, instruction "
                     f"subsets; P@15 or its chance-matched k), {a.agent} spans {mv['q05']:.2f}–{mv['q95']:.2f} "
                     f"(5th–95th percentile; median {mv['median']:.2f})")
        if np.isfinite(mv.get("untrained_median", np.nan)):
            parts.append(f" and the untrained agent {mv['untrained_q05']:.2f}–{mv['untrained_q95']:.2f} "
                         f"(median {mv['untrained_median']:.2f})")
        parts.append(".")
        if np.isfinite(mv.get("split_half", np.nan)):
            choice = f" ({mv['split_half_choice']})" if mv.get("split_half_choice") else ""
            parts.append(f" The best layer pair chosen on half of the instructions{choice} scores "
                         f"{mv['split_half']:.2f} on the other half")
            if np.isfinite(mv.get("split_half_last_layer", np.nan)):
                chance = (f"; chance {mv['half_chance']:.3f}" if np.isfinite(mv.get("half_chance", np.nan))
                          else "")
                parts.append(f"; the pre-registered last layers score {mv['split_half_last_layer']:.2f} the same "
                             f"way{chance}.")
            else:
                parts.append(f" (the pre-registered last layers: {mv['last_layer']:.2f} on all items).")
    return "".join(parts)


def learning_effect(untrained: Sequence[float], trained: Sequence[float], models: Sequence[str], k: int) -> str:
    """One line for the Overview: P@k of the untrained and the trained agent against each model."""
    pairs = [f"{m} {u:.2f} → {t:.2f}" for m, u, t in zip(models, untrained, trained)
             if np.isfinite(u) and np.isfinite(t)]
    if not pairs:
        return ""
    down = sum(t < u for u, t in zip(untrained, trained) if np.isfinite(u) and np.isfinite(t))
    trend = ("learning lowers it against every model" if down == len(pairs) else
             "learning raises it against every model" if down == 0 else
             f"learning lowers it against {down} of {len(pairs)} models")
    return f"P@{k} of the untrained agent → the trained agent: " + ", ".join(pairs) + f"; {trend}."

"""core.why: the numbers of the "Why they align" page (alignment over training steps, organisation, sentences)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import dynamics, metrics, why
from core.baselines import factors
from core.controls import factor_separation
from core.instructions import instruction_set, metadata

INSTR = instruction_set()


def _trajectory(seed: int = 0, steps=(0, 10, 20, 50, 100)) -> dynamics.Trajectory:
    """A test trajectory (not a training run): from a random space to a factor-structured one."""
    r = np.random.default_rng(seed)
    U = r.normal(size=(len(INSTR), 32))
    T = factors().astype(np.float64) @ r.normal(size=(factors().shape[1], 32)) + 0.3 * r.normal(size=U.shape)
    a = np.asarray(steps, dtype=float) / steps[-1]
    E = np.stack([(1 - w) * U + w * T for w in a]).astype(np.float32)
    success = np.full(len(steps), np.nan)
    success[-1] = 0.9
    return dynamics.Trajectory(name="test", seed=seed, steps=np.asarray(steps, dtype=np.int64), embeddings=E,
                               success=success, instructions=list(INSTR))


def test_counts_give_p_at_k_for_every_k_and_item():
    t = _trajectory()
    X = np.random.default_rng(5).normal(size=(len(INSTR), 20))
    c = why.trajectory_counts(t, X)
    assert c.shape == (5, 108, 107) and c.dtype == np.uint8
    for k in (1, 7, 15, 107):
        p = why.precision_over_steps(c, k)
        assert np.allclose(p, [metrics.precision_at_k(E, X, k) for E in t.embeddings])
        assert np.allclose(why.precision_over_steps(c, k, item=40),
                           [metrics.per_item_precision(E, X, k)[40] for E in t.embeddings])
    # the same numbers as core.dynamics.trajectory_metrics (one P@k in the project)
    tm = dynamics.trajectory_metrics(t, {"x": X}, 15)
    assert np.allclose(tm["p_at_k"], why.precision_over_steps(c, 15))
    assert np.array_equal(why.trajectory_counts(t, X), c)  # read back from the store
    for bad in (0, 108):
        with pytest.raises(metrics.MetricInputError, match="k must satisfy"):
            why.precision_over_steps(c, bad)
    with pytest.raises(metrics.MetricInputError):
        why.trajectory_counts(t, X[:50])


def test_factor_separation_over_steps():
    t = _trajectory()
    df = why.trajectory_factor_separation(t)
    assert list(df["step"].unique()) == [0, 10, 20, 50, 100] and len(df) == 5 * 4
    last = df[df["step"] == 100].set_index("factor")
    ref = factor_separation(t.embeddings[-1]).set_index("factor")
    assert np.allclose(last.loc[ref.index, "eta2"], ref["eta2"])
    assert np.allclose(last.loc[ref.index, "loo_acc"], ref["loo_centroid_acc"])
    first = df[df["step"] == 0]
    assert (first["eta2"] < last["eta2"].to_numpy().max()).all()  # random at step 0, structured at the end


def test_factor_share_counts_equal_neighbour_factor_shares_at_every_k():
    from core.controls import neighbour_factor_shares
    from core.instructions import FACTORS

    X = _trajectory().embeddings[-1]
    counts, chance = why.factor_share_counts(X)
    assert counts.shape == (len(FACTORS), 108, 107) and counts.dtype == np.uint8
    for k in (1, 5, 15, 60, 107):
        per = neighbour_factor_shares(X, k, per_item=True)
        for j, f in enumerate(FACTORS):
            rows = per[per["factor"] == f]
            assert np.allclose(counts[j, :, k - 1] / k, rows["share"]) and np.allclose(chance[j], rows["chance"])
    assert (counts[:, :, -1] == np.round(chance * 107)).all()  # at k = n-1 every item is a neighbour
    colour = pd.get_dummies(metadata()["colour"]).to_numpy(float)
    c, _ = why.factor_share_counts(colour + 1e-3 * np.random.default_rng(1).normal(size=colour.shape))
    j = list(FACTORS).index("colour")
    assert (c[j, :, 16] == 17).all()  # a colour-only space: each item's 17 nearest share its colour
    with pytest.raises(metrics.MetricInputError, match="instructions for"):
        why.factor_share_counts(X[:50])


def test_organised_by_reads_the_factor_that_structures_a_space():
    meta = metadata()
    colour = pd.get_dummies(meta["colour"]).to_numpy(float)
    X = colour + 0.01 * np.random.default_rng(0).normal(size=colour.shape)
    org = why.organised_by(factor_separation(X))
    assert org[0][0] == "colour" and org[0][1] > 0.95 and len(org) == 1
    mixed = np.hstack([colour, pd.get_dummies(meta["verb"]).to_numpy(float)])  # eta2: colour 0.56, verb 0.44
    assert [f for f, _ in why.organised_by(factor_separation(mixed))] == ["colour", "verb"]
    flat = pd.DataFrame({"factor": ["verb", "colour"], "eta2": [0.01, 0.02], "eta2_null": [0.03, 0.05]})
    assert why.organised_by(flat) == []
    assert "no single factor" in why.describe_organisation("x", [])


def _answer(**kw) -> why.PairAnswer:
    base = dict(agent="alm-s0", untrained="untrained-alm-s0", model="smollm2-135m", k=15, chance=15 / 107,
                trained_p=0.19, untrained_p=0.67, final_step=1500, peak_p=0.74, peak_step=40,
                paper=(0.70, 0.73, "LLaMA"),
                organisation={"alm-s0": [("colour", 0.58), ("object", 0.39)], "untrained-alm-s0": [("verb", 0.4)],
                              "smollm2-135m": [("verb", 0.49)]})
    return why.PairAnswer(**{**base, **kw})


def test_answer_states_the_numbers_it_is_given():
    text = why.answer_text(_answer())
    for needle in ("**0.67**", "**0.19**", "1500 training steps", "0.74 at step 40", "lowers the alignment by 0.48",
                   "0.70–0.73", "(LLaMA)", "**alm-s0** is organised by colour (η² 0.58) and object (0.39)",
                   "before training, untrained-alm-s0 by verb (η² 0.40)",
                   "smollm2-135m is organised by verb (η² 0.49)",
                   "different factors (colour and object vs verb)"):
        assert needle in text, needle
    up = why.answer_text(_answer(trained_p=0.8, peak_p=0.8, organisation={"alm-s0": [("verb", 0.5)],
                                                                           "smollm2-135m": [("verb", 0.49)]}))
    assert "raises the alignment by 0.13" in up and "highest along the way" not in up
    assert "Both are organised by verb" in up and "different factors" not in up
    assert "alm-s0** is organised" not in why.answer_text(_answer(), with_agent=False)
    assert why.agent_text(_answer()) in why.answer_text(_answer())
    bare = why.answer_text(_answer(untrained_p=float("nan"), paper=(np.nan, np.nan, ""), organisation={}))
    assert "not computed" in bare and "paper" not in bare and "Organised" not in bare
    mv = dict(n_choices=12000, q05=0.12, q95=0.45, median=0.2, last_layer=0.19, split_half=0.41,
              untrained_q05=0.4, untrained_q95=0.7, untrained_median=0.6)
    text = why.answer_text(_answer(multiverse=mv))
    assert "Over 12,000 analysis choices" in text and "0.12–0.45 (5th–95th percentile; median 0.20)" in text
    assert "0.40–0.70 (median 0.60)" in text and "scores 0.41 on the other half (the pre-registered" in text
    mv |= dict(split_half_choice="agent L0 mean / L2 mean (15/20)", split_half_last_layer=0.18, half_chance=7 / 53)
    text = why.answer_text(_answer(multiverse=mv))
    assert "instructions (agent L0 mean / L2 mean (15/20)) scores 0.41 on the other half; the pre-registered last " \
           "layers score 0.18 the same way; chance 0.132." in text


def test_brief_answer_states_the_same_numbers_in_one_line():
    a = _answer(multiverse=dict(n_choices=12000, q05=0.12, q95=0.45, median=0.2))
    brief = why.answer_brief(a)
    assert "\n" not in brief and brief.startswith("**alm-s0 vs smollm2-135m**: ")
    for needle in ("**0.67** untrained → **0.19** trained", "(highest 0.74 at step 40)", "paper 0.70–0.73",
                   "smollm2-135m is organised by verb, alm-s0 by colour and object: they cannot share",
                   "Over 12,000 analysis choices: 0.12–0.45"):
        assert needle in brief, needle
    assert len(brief) < len(why.answer_text(a)) / 2  # the brief is brief; the full answer sits under it
    assert "P@15 against each model (chance 0.140)" in why.brief_header(a)
    same = why.answer_brief(_answer(trained_p=0.8, peak_p=0.8, organisation={"alm-s0": [("verb", 0.5)],
                                                                           "smollm2-135m": [("verb", 0.49)]}))
    assert "highest" not in same and "organised by verb, like the agent" in same and "cannot" not in same
    at_start = _answer(untrained_p=0.5925925925925926, peak_p=0.5925925925925927, peak_step=0)  # one ulp apart
    assert "highest" not in why.answer_brief(at_start) and "highest" not in why.answer_text(at_start)
    bare = why.answer_brief(_answer(untrained_p=float("nan"), paper=(np.nan, np.nan, ""), organisation={}))
    assert bare == "**alm-s0 vs smollm2-135m**: **0.19** trained (untrained not computed)."


def test_learning_effect_line():
    line = why.learning_effect([0.67, 0.71, np.nan], [0.19, 0.21, 0.3], ["a", "b", "c"], 15)
    assert line == ("P@15 of the untrained agent → the trained agent: a 0.67 → 0.19, b 0.71 → 0.21; "
                    "learning lowers it against every model.")
    assert "lowers it against 1 of 2" in why.learning_effect([0.5, 0.2], [0.4, 0.3], ["a", "b"], 15)
    assert why.learning_effect([np.nan], [0.2], ["a"], 15) == ""

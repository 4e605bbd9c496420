"""Held-out splits (core.splits), training without the held-out demos (core.train), LM word inits
(core.word_init) and the generalisation analysis (core.generalisation)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import generalisation, store
from core.agent import AgentConfig, build_agent, instruction_embeddings, trained_on
from core.instructions import DEFAULT_GRAMMAR, instruction_set, metadata
from core.splits import SplitError, check_held_out, get_split, split_definitions, splits
from core.train import TrainConfig, default_name, run_episodes, train, training_demos
from core.word_init import project

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- splits
def test_splits_are_data_and_hold_out_what_they_say():
    s = splits()
    assert list(s) == ["colour-object", "verb-object", "random-10pct"]
    meta = metadata()
    co = meta[[(c, o) in {("red", "key"), ("purple", "box"), ("green", "door"), ("yellow", "ball")}
               for c, o in zip(meta.colour, meta.object)]]
    assert s["colour-object"] == co.instruction.tolist() and len(co) == 18
    vo = meta[(meta.verb == "pick up") & (meta.object == "box")]
    assert s["verb-object"] == vo.instruction.tolist() and len(vo) == 12
    assert len(s["random-10pct"]) == 11 and s["random-10pct"] == splits()["random-10pct"]  # reproducible
    for name, held in s.items():
        split = get_split(name)
        assert set(split.trained()) | set(held) == set(instruction_set())
        assert not set(split.trained()) & set(held)
        assert split.mask().sum() == len(held)
        # every word of a held-out item still occurs in training (the vocabulary covers the held-out items)
        assert {w for t in held for w in t.split()} <= {w for t in split.trained() for w in t.split()}


def test_a_split_that_loses_a_word_is_rejected():
    every_red = [t for t in instruction_set() if " red " in t]
    with pytest.raises(SplitError, match=r"\['red'\].*never receive a gradient"):
        check_held_out(every_red)
    every_open = [t for t in instruction_set() if t.startswith("open ")]
    with pytest.raises(SplitError, match="open"):
        check_held_out(every_open)
    with pytest.raises(SplitError, match="not in the instruction set"):
        check_held_out(["go to the red unicorn"])
    with pytest.raises(SplitError, match="at least one"):
        check_held_out([])
    with pytest.raises(SplitError, match="known splits: colour-object"):
        get_split("colour-nonsense")
    check_held_out(every_red[:-1])  # one red instruction left in training: accepted


def test_splits_cli_lists_every_split(tmp_path):
    out = subprocess.run([sys.executable, "-m", "core", "splits", "--json"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == splits()
    bad = subprocess.run([sys.executable, "-m", "core", "splits", "--split", "nope"], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown split 'nope'" in bad.stderr


# ---------------------------------------------------------------------------------------------- training data
@pytest.fixture(scope="module")
def small_demos():
    from core.demos import generate

    return generate(216, seed=0, workers=1, progress=False)  # 2 episodes per instruction


def test_held_out_instructions_never_appear_in_the_training_demo_arrays(small_demos):
    from core.train import demo_tensors

    for name, held in splits().items():
        d = training_demos(small_demos, held)
        ids = {small_demos.instructions.index(t) for t in held}
        step_ids = demo_tensors(d)["instr"].numpy()  # what the trainer feeds the network
        assert not ids & set(step_ids.tolist()), name
        assert set(step_ids.tolist()) == set(range(108)) - ids  # every other instruction is still there
        # the arrays stay consistent: each kept episode's steps are the original episode's steps
        assert d.n_steps == len(d.actions) == len(d.images) == d.starts[-1]
        keep = np.flatnonzero(~np.isin(small_demos.instruction_ids, sorted(ids)))
        e = keep[7]
        j = 7
        orig = small_demos.actions[small_demos.starts[e]:small_demos.starts[e + 1]]
        assert np.array_equal(d.actions[d.starts[j]:d.starts[j + 1]], orig)
        assert np.array_equal(d.prev_actions()[d.starts[j]:d.starts[j + 1]],
                              small_demos.prev_actions()[small_demos.starts[e]:small_demos.starts[e + 1]])
    assert training_demos(small_demos, []) is small_demos


def test_default_names_of_the_variants():
    assert default_name() == "alm"
    assert default_name(holdout="colour-object") == "alm-holdout-colour-object"
    assert default_name(word_init="smollm2", holdout="colour-object") == "alm-word-smollm2-holdout-colour-object"


def test_unknown_split_fails_before_any_work(tmp_path):
    with pytest.raises(SplitError, match="unknown split"):
        train(TrainConfig(holdout="nope", out=str(tmp_path / "x.pt"), progress=False, demos=108))
    assert not list(tmp_path.iterdir())
    r = subprocess.run([sys.executable, "-m", "core", "train", "--holdout", "nope", "--out", str(tmp_path / "y.pt")],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown split 'nope'" in r.stderr


# ---------------------------------------------------------------------------------------------- word inits
def _upper(S: np.ndarray) -> np.ndarray:
    return S[np.triu_indices(len(S), 1)]


def _cos(X: np.ndarray) -> np.ndarray:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


def test_projection_keeps_the_centred_cosines_and_sets_unit_norms():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(17, 300)) + 3.0  # a shared offset, as static word vectors have
    W, info = project(V, 128)
    assert W.shape == (17, 128) and info["rank"] == 16
    assert np.allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-6) and not W[:, 16:].any()
    Vc = V - V.mean(0)
    assert np.allclose(_cos(W.astype(np.float64)), _cos(Vc), atol=1e-5)  # rank 16: a rotation of the centred rows
    assert not np.allclose(_cos(W.astype(np.float64)), _cos(V), atol=1e-2)  # ... not of the raw (offset) rows
    assert abs(sum(info["explained_variance_ratio"]) - 1) < 1e-4  # rounded to 6 decimals each
    with pytest.raises(ValueError, match="all equal"):
        project(np.ones((17, 5)), 128)


@pytest.mark.weights
@pytest.mark.parametrize("source", ["minilm", "smollm2"])
def test_lm_word_init_preserves_the_source_models_cosine_ranking(source):
    """Real offline weights (installed by scripts/install_offline_models.sh ci)."""
    from core.embedders.compute import resolve_weights
    from core.embedders.registry import resolve
    from core.word_init import LM_SOURCES, lm_word_init, source_word_vectors

    vocab = DEFAULT_GRAMMAR.vocabulary
    V, info = source_word_vectors(source, vocab)
    W, man = lm_word_init(source, vocab, 128)
    src, init = _upper(_cos(V - V.mean(0))), _upper(_cos(W.astype(np.float64)))
    order_src, order_init = np.argsort(-src, kind="stable"), np.argsort(-init, kind="stable")
    gaps = np.abs(np.diff(np.sort(src)))
    if gaps.min() > 1e-5:  # no near-ties: the rankings must be identical
        assert np.array_equal(order_src, order_init)
    assert np.allclose(src, init, atol=1e-5)
    # the manifest names the weights (the same sha256 core.embedders resolves) and the projection
    assert man["weights_sha256"] == resolve_weights(resolve(LM_SOURCES[source])).weights_sha256
    assert man["model"] == LM_SOURCES[source] and man["projection"]["rank"] == 16
    assert set(man["tokens"]) == set(vocab)


def test_lm_init_agents_start_from_their_vectors_and_round_trip(tmp_path):
    from core.agent import load_agent, save_checkpoint

    rng = np.random.default_rng(1)
    W, _ = project(rng.normal(size=(17, 50)), 64)
    cfg = AgentConfig(word_init="minilm", d_model=64, lang_ff=64, head_hidden=32, word_vectors=W.tolist())
    agent = build_agent(cfg, 0)
    assert np.allclose(agent.words.weight.detach().numpy()[1:], W) and not agent.words.weight[0].any()
    path = save_checkpoint(agent, tmp_path / "a.pt", {"seed": 0})
    back = load_agent(path)
    assert back.config.word_vectors == cfg.word_vectors
    assert np.array_equal(instruction_embeddings(back), instruction_embeddings(agent))
    with pytest.raises(ValueError, match=r"needs word_vectors of shape \(17, 64\)"):
        AgentConfig(word_init="smollm2", d_model=64)
    with pytest.raises(ValueError, match="only used by the LM word inits"):
        AgentConfig(word_init="identity", d_model=64, word_vectors=W.tolist())


# ---------------------------------------------------------------------------------------------- the agents
@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Two tiny agents (identity and random init, split colour-object), shipped (tests/generalisation_fixture)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from generalisation_fixture import build

    root = tmp_path_factory.mktemp("gen")
    return root, build(root)


def test_a_held_out_instruction_is_embedded_rolled_out_and_marked_never_trained(shipped):
    from core.agent import load_agent

    root, d = shipped
    agent = load_agent(d / "agents" / "alm-holdout-colour-object-s0.pt")  # the float16 copy
    held = "pick up the red key"
    assert not trained_on(agent.manifest, held) and trained_on(agent.manifest, "pick up the red ball")
    assert agent.manifest["holdout"]["held_out_episodes_in_training_demos"] == 0
    E = instruction_embeddings(agent, [held])
    assert E.shape == (1, 32) and np.isfinite(E).all()
    ok, length = run_episodes(agent, [(held, 12345)])
    assert length[0] >= 1 and ok.dtype == bool
    # the shipped E_L is the float32 one, the float16 checkpoint is close to it
    initial, final = generalisation.initial_final(d, "alm-holdout-colour-object-s0")
    assert np.abs(instruction_embeddings(agent) - final).max() < 0.05
    assert not np.array_equal(initial, final)


def test_shipped_tables_are_consistent_with_the_runs(shipped):
    root, d = shipped
    res = generalisation.load(d)
    runs = res["runs"]
    assert sorted(runs.run) == ["alm-holdout-colour-object-s0", "alm-word-random-holdout-colour-object-s0"]
    assert set(runs.word_init) == {"identity", "random"} and (runs.split == "colour-object").all()
    held = set(splits()["colour-object"])
    pi = res["per_instruction"]
    assert (pi.held_out == pi.instruction.isin(held)).all() and len(pi) == 2 * 108
    for run, g in pi.groupby("run"):  # trained / held-out success = the per-instruction table's means
        r = runs.set_index("run").loc[run]
        assert r.success_held_out == pytest.approx(g[g.held_out].success.mean(), abs=1e-4)
        assert r.success_trained == pytest.approx(g[~g.held_out].success.mean(), abs=1e-4)
    ha = res["heldout_alignment"]
    assert {"smollm2-135m", "untrained (same seed)"} <= set(ha.reference)
    assert (ha.k_among == generalisation.scaled_k(18)).all() and np.allclose(ha.among_chance, 2 / 17)
    nt = res["nearest_trained"]
    assert len(nt) == 2 * 18 and not nt.nearest_trained.isin(held).any() and nt.instruction.isin(held).all()
    ia = res["init_alignment"]
    assert np.allclose(ia.retained, ia.final / ia.initial)
    curves = res["alignment_curves"]
    first = curves[curves.step == 0].set_index(["run", "reference"]).precision
    assert np.allclose(first.loc[list(zip(ia.run, ia.reference))].to_numpy(), ia.initial.to_numpy())
    assert res["manifest"]["k"] == 15 and res["manifest"]["runs"] == sorted(runs.run)


def test_masked_precision_and_its_null():
    from core.metrics import per_item_precision

    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 8))
    mask = np.zeros(40, bool)
    mask[:10] = True
    same = generalisation.masked_precision(A, A, mask, k=5, n_permutations=200)
    assert same["observed"] == 1.0 and same["p"] == pytest.approx(1 / 201) and same["null_mean"] < 0.3
    B = rng.normal(size=(40, 8))
    r = generalisation.masked_precision(A, B, mask, k=5, n_permutations=200)
    assert r["observed"] == pytest.approx(per_item_precision(A, B, 5)[:10].mean())
    assert r["p"] > 0.05  # independent spaces: no evidence


def test_nearest_trained_finds_the_closest_trained_item_and_its_shared_factors():
    items = instruction_set()
    meta = metadata()
    held = np.array([t == "pick up the red key" for t in items])
    E = np.eye(108)[:, :108] * 1.0
    j = items.index("pick up a red key")
    E[held.argmax()] = E[j] * 0.9 + 0.1 * E[held.argmax()]  # closest to "pick up a red key"
    nt = generalisation.nearest_trained(E, held)
    row = nt.iloc[0]
    assert row.nearest_trained == "pick up a red key"
    assert row.shares_colour and row.shares_object and row.shares_verb and not row.shares_determiner
    trained = meta[~held]
    assert row.chance_colour == pytest.approx((trained.colour == "red").mean())


def test_load_without_results_names_the_command(tmp_path):
    with pytest.raises(generalisation.NotShippedError, match="python -m core sweep sweeps/generalisation.toml"):
        generalisation.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(generalisation.NotShippedError, match="unreadable"):
        generalisation.load(tmp_path)
    with pytest.raises(generalisation.NotShippedError, match="no shipped E_L"):
        generalisation.initial_final(tmp_path, "alm-holdout-x-s0")

"""Alignment across learning: recording E_L during training (core.train record=True) and core.dynamics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core import dynamics, metrics, store
from core.agent import ALM, build_agent, instruction_embeddings
from core.dynamics import (Trajectory, TrajectoryError, available, learning_curves, load_trajectory, save_trajectory,
                           snapshot_steps, trajectory_metrics)
from core.train import TrainConfig, train

# A tiny, fast config (as tests/test_train.py): 36 "pick up" instructions, a narrow network, 360 demos.
TINY = dict(verbs=("pick up",), demos=360, d_model=64, lang_ff=128, head_hidden=128, batch_size=64, lr=3e-3,
            warmup=10, threads=1, final_episodes=1, eval_episodes=1, progress=False, steps=70, eval_every=35)


def test_snapshot_schedule():
    s = snapshot_steps(1500)
    assert s[:21] == list(range(0, 201, 10)) and s[21:] == list(range(250, 1501, 50))
    assert snapshot_steps(2000)[-1] == 2000 and 1950 in snapshot_steps(2000)
    assert snapshot_steps(1234)[-2:] == [1200, 1234]  # the final step is always recorded
    assert snapshot_steps(35) == [0, 10, 20, 30, 35] and snapshot_steps(0) == [0]
    for bad in (-1, 2.5, "10", True):
        with pytest.raises(ValueError, match="total_steps"):
            snapshot_steps(bad)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run without recording, with recording, and with recording interrupted + resumed."""
    import os

    root = tmp_path_factory.mktemp("dyn")
    old = os.environ.get("ALVA_ASSETS_DIR")
    os.environ["ALVA_ASSETS_DIR"] = str(root / "assets")
    try:
        plain = train(TrainConfig(seed=0, name="tiny", out=str(root / "plain" / "tiny-s0.pt"), **TINY))
        rec = train(TrainConfig(seed=0, name="tiny", out=str(root / "rec" / "tiny-s0.pt"), record=True, **TINY))
        cfg = dict(seed=0, name="tiny", out=str(root / "resumed" / "tiny-s0.pt"), record=True, **TINY)
        assert train(TrainConfig(stop_after=35, **cfg)) is None
        resumed = train(TrainConfig(resume=True, **cfg))
    finally:
        os.environ.pop("ALVA_ASSETS_DIR") if old is None else os.environ.__setitem__("ALVA_ASSETS_DIR", old)
    return {"plain": plain, "rec": rec, "resumed": resumed, "root": root}


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_recording_does_not_change_the_run(runs):
    assert _same_weights(runs["plain"], runs["rec"])
    assert _same_weights(runs["rec"], runs["resumed"])
    drop = lambda hist: [{k: v for k, v in h.items() if k != "train_time_s"} for h in hist]  # noqa: E731
    assert drop(runs["plain"].manifest["history"]) == drop(runs["rec"].manifest["history"])
    assert not hasattr(runs["plain"], "trajectory_path")


def test_trajectory_endpoints_schedule_and_success(runs):
    rec = runs["rec"]
    assert rec.trajectory_path == runs["root"] / "rec" / "trajectories" / "tiny-s0.npz"
    t = load_trajectory("tiny", 0, directory=runs["root"] / "rec" / "trajectories")
    items = list(rec.config.instructions)
    assert t.steps.tolist() == [0, 10, 20, 30, 35, 40, 50, 60, 70] and t.instructions == items
    assert t.embeddings.dtype == np.float32 and t.embeddings.shape == (9, 36, 64)
    # snapshot 0 = the untrained network of the same config and seed; the last = the saved checkpoint's E_L
    untrained = build_agent(rec.config, 0)
    assert np.array_equal(t.embeddings[0], instruction_embeddings(untrained, items))
    saved = ALM(rec.config)  # load_agent refuses a 36-instruction agent; read the saved weights directly
    saved.load_state_dict(torch.load(rec.checkpoint_path, weights_only=True)["state_dict"])
    assert np.array_equal(t.embeddings[-1], instruction_embeddings(saved, items))
    assert not np.allclose(t.embeddings[0], t.embeddings[-1], atol=1e-2)  # it did learn something
    # quick success exactly at the eval points (35, 70), NaN elsewhere (never interpolated)
    quick = {h["step"]: h["quick_success"] for h in rec.manifest["history"]}
    assert set(quick) == {35, 70}
    for step, s in zip(t.steps.tolist(), t.success.tolist()):
        assert (s == quick[step]) if step in quick else np.isnan(s), (step, s)
    assert t.manifest["success_steps"] == [35, 70] and t.manifest["weights_sha256"] == \
        store.sha256_file(rec.checkpoint_path)
    for k in store.MANIFEST_KEYS:
        assert k in t.manifest, k


def test_resumed_recording_keeps_the_snapshots(runs):
    a = load_trajectory("tiny", 0, directory=runs["root"] / "rec" / "trajectories")
    b = load_trajectory("tiny", 0, directory=runs["root"] / "resumed" / "trajectories")
    assert a.steps.tolist() == b.steps.tolist()
    assert np.array_equal(a.embeddings, b.embeddings)
    assert np.array_equal(a.success, b.success, equal_nan=True)


def _toy(n=30, d=8, steps=(0, 10, 20), seed=0) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(name="toy", seed=seed, steps=np.array(steps), success=np.array([np.nan, 0.5, np.nan]),
                      embeddings=rng.normal(size=(len(steps), n, d)).astype(np.float32),
                      instructions=[f"i{j}" for j in range(n)])


def _save(t: Trajectory, directory) -> None:
    save_trajectory(t.name, t.seed, t.steps, t.embeddings, t.success, t.instructions,
                    {"model": t.name, "family": "agent", "source": "test"}, directory=directory)


def test_storage_round_trip_float16_inside_float32_ends(tmp_path):
    t = _toy()
    _save(t, tmp_path)
    u = load_trajectory("toy", 0, directory=tmp_path)
    assert np.array_equal(u.embeddings[[0, -1]], t.embeddings[[0, -1]])  # endpoints exact
    assert np.array_equal(u.embeddings[1], t.embeddings[1].astype(np.float16).astype(np.float32))
    assert np.array_equal(u.success, t.success, equal_nan=True) and u.steps.dtype == np.int64
    assert u.manifest["success_steps"] == [10] and available(tmp_path) == [("toy", 0)]
    with pytest.raises(TrajectoryError, match="strictly increasing"):
        save_trajectory("x", 0, [0, 0, 5], t.embeddings, t.success, t.instructions, {}, directory=tmp_path)
    assert available(tmp_path) == [("toy", 0)]  # the bad input wrote nothing


def test_load_trajectory_errors(tmp_path):
    _save(_toy(), tmp_path)
    with pytest.raises(TrajectoryError, match=r"available seeds of 'toy': \[0\]"):
        load_trajectory("toy", 3, directory=tmp_path)
    with pytest.raises(TrajectoryError, match=r"available names: \['toy'\]"):
        load_trajectory("nope", 0, directory=tmp_path)
    with pytest.raises(TrajectoryError, match="available none"):
        load_trajectory("toy", 0, directory=tmp_path / "empty")
    (tmp_path / "bad-s0.npz").write_bytes(b"not a zip file")
    with pytest.raises(TrajectoryError, match="corrupt trajectory file .*bad-s0.npz"):
        load_trajectory("bad", 0, directory=tmp_path)
    good = tmp_path / "toy-s0.npz"
    with np.load(good) as z:
        arrays = dict(z)
    np.savez(tmp_path / "cut-s0.npz", **{**arrays, "success": arrays["success"][:2]})
    (tmp_path / "cut-s0.json").write_text((tmp_path / "toy-s0.json").read_text())
    with pytest.raises(TrajectoryError, match="inconsistent arrays"):
        load_trajectory("cut", 0, directory=tmp_path)
    (tmp_path / "toy-s0.json").unlink()
    with pytest.raises(TrajectoryError, match="corrupt trajectory file .*missing file"):
        load_trajectory("toy", 0, directory=tmp_path)


def test_trajectory_metrics_are_core_metrics():
    t = _toy()
    rng = np.random.default_rng(1)
    spaces = {"a": rng.normal(size=(30, 5)), "b": t.embeddings[2] + 0.1 * rng.normal(size=(30, 8))}
    df = trajectory_metrics(t, spaces, k=4)
    assert list(df.columns) == ["step", "model", "p_at_k", "cka", "rsa"] and len(df) == 6
    for step, E in ((0, t.embeddings[0]), (20, t.embeddings[2])):
        for m, X in spaces.items():
            row = df[(df.step == step) & (df.model == m)].iloc[0]
            assert row.p_at_k == metrics.precision_at_k(E, X, 4)
            assert row.p_at_k == metrics.precision_curve(E, X)[3]
            assert row.cka == metrics.cka(E, X) and row.rsa == metrics.rsa(E, X)
    assert df[df.model == "b"].p_at_k.iloc[-1] > 0.5 > df[df.model == "a"].p_at_k.max()
    again = trajectory_metrics(t, spaces, k=4)  # from the store
    assert again.equals(df)
    assert not trajectory_metrics(t, spaces, k=5).p_at_k.equals(df.p_at_k)  # k is part of the key
    for k in (0, 30, 2.0):
        with pytest.raises(metrics.MetricInputError, match="k must"):
            trajectory_metrics(t, spaces, k=k)
    with pytest.raises(metrics.MetricInputError, match="same number of rows"):
        trajectory_metrics(t, {"short": np.ones((10, 3))})


# ------------------------------------------------------------------------------------------ the shipped data
def _shipped_agents() -> list[tuple[str, int]]:
    out = []
    for p in sorted((store.assets_dir() / "agents").glob("*.pt")):
        name, seed = p.stem.rsplit("-s", 1)
        out.append((name, int(seed)))
    return out


def test_every_shipped_agent_trained_with_recording_has_a_trajectory_with_exact_endpoints():
    """Every shipped agent was trained with ``record`` (the 5 alm seeds and the 3 variants) and ships its
    trajectory, whose first and last snapshots are the shipped untrained and trained E_L."""
    agents = _shipped_agents()
    recorded = [(n, s) for n, s in agents if store.read_json(
        store.assets_dir() / "agents" / f"{store.embedding_file_name(n, s)}.json")["train_config"].get("record")]
    assert recorded == agents and len(agents) == 8
    assert sorted(available()) == sorted(recorded)
    for name, seed in recorded:
        t = load_trajectory(name, seed)
        stem = store.embedding_file_name(name, seed)
        man = store.read_json(store.assets_dir() / "agents" / f"{stem}.json")
        cfg = TrainConfig(**{**man["train_config"], "verbs": tuple(man["train_config"]["verbs"])})
        assert t.steps.tolist() == sorted(cfg.record_steps()) and t.steps[-1] == man["optimizer_steps"]
        assert t.manifest["weights_sha256"] == store.sha256_file(store.assets_dir() / "agents" / f"{stem}.pt")
        E_last, items, _ = store.read_embeddings(stem)
        assert t.instructions == items and np.array_equal(t.embeddings[-1], E_last), stem
        if (store.embeddings_dir() / f"untrained-{stem}.npz").exists():
            assert np.array_equal(t.embeddings[0], store.read_embeddings(f"untrained-{stem}")[0]), stem
        quick = {h["step"]: h["quick_success"] for h in man["history"]}
        assert {int(s): v for s, v in zip(t.steps, t.success) if np.isfinite(v)} == quick, stem


def test_float16_storage_moves_p_at_15_by_at_most_a_neighbour_or_two():
    """The stored float16 snapshots vs float32, P@15 against every shipped space, on the shipped agents' E_L
    (the float32 endpoints are exact; this bounds what float16 does to the snapshots in between)."""
    stems = [p.stem for p in sorted(store.embeddings_dir().glob("*.npz"))]
    spaces = {s: store.read_embeddings(s)[0] for s in stems}
    worst = 0.0
    for a in [s for s in stems if s.startswith(("alm", "untrained-alm"))]:
        A16 = spaces[a].astype(np.float16).astype(np.float32)
        for b, B in spaces.items():
            if b != a:
                worst = max(worst, abs(metrics.precision_at_k(spaces[a], B, 15) - metrics.precision_at_k(A16, B, 15)))
    print(f"largest change of P@15 from float16 storage: {worst:.4f}")
    assert worst <= 2 / (15 * 108) + 1e-12  # at most 2 neighbour swaps in the 1620 neighbour slots


def test_learning_curves_stack_the_seeds_with_success():
    name = "alm"
    seeds = [s for n, s in available() if n == name][:2]
    space = store.read_embeddings("bag-of-words")[0]
    df = learning_curves(name, {"bag-of-words": space}, k=15, seeds=seeds)
    assert sorted(df.seed.unique()) == seeds
    t = load_trajectory(name, seeds[0])
    one = df[df.seed == seeds[0]]
    assert one.step.tolist() == t.steps.tolist()
    assert np.array_equal(one.success.to_numpy(), t.success, equal_nan=True)
    assert one.p_at_k.iloc[-1] == metrics.precision_at_k(t.embeddings[-1], space, 15)
    with pytest.raises(TrajectoryError, match="no trajectories of 'nope'"):
        learning_curves("nope", {"bag-of-words": space})
    assert dynamics.METRIC_COLUMNS == ("step", "model", "p_at_k", "cka", "rsa")


def test_cli_prints_the_curve_with_success(tmp_assets, capsys):
    import shutil

    from core.cli import main
    from core.instructions import instruction_set

    (tmp_assets / "embeddings").mkdir()
    for ext in ("npz", "json"):
        shutil.copy(store.REPO_ROOT / "assets" / "embeddings" / f"bag-of-words.{ext}", tmp_assets / "embeddings")
    rng = np.random.default_rng(0)
    E = rng.normal(size=(3, 108, 16)).astype(np.float32)
    save_trajectory("toy", 2, [0, 10, 20], E, [np.nan, 0.25, np.nan], instruction_set(),
                    {"model": "toy", "family": "agent", "source": "test"})
    assert main(["dynamics", "--list"]) == 0 and capsys.readouterr().out.split() == ["toy-s2"]
    assert main(["dynamics", "--name", "toy", "--seed", "2", "--models", "bag-of-words", "-k", "5",
                 "--csv", str(tmp_assets / "c.csv")]) == 0
    out = capsys.readouterr().out
    bow = store.read_embeddings("bag-of-words")[0]
    rows = {int(w[0]): w[1:] for w in map(str.split, out.splitlines()) if w and w[0].isdigit()}
    assert sorted(rows) == [0, 10, 20] and rows[0][0] == "NaN" and rows[10][0] == "0.25"
    assert float(rows[20][1]) == round(metrics.precision_at_k(E[2], bow, 5), 3)
    import pandas as pd

    assert len(pd.read_csv(tmp_assets / "c.csv")) == 3
    with pytest.raises(TrajectoryError, match="available seeds of 'toy': \\[2\\]"):
        main(["dynamics", "--name", "toy", "--seed", "0"])

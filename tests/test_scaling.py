"""Alignment as the instruction set grows (core.scaling): embedding a preset, shipping agents, the tables."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import scaling, store
from core.instructions import instruction_set, preset

REPO = Path(__file__).resolve().parents[1]


def test_scaled_k_and_null_sizes():
    assert scaling.scaled_k(108) == 15 and scaling.scaled_k(126) == 18 and scaling.scaled_k(630) == 88
    for n in (108, 126, 630, 2754, 11124):
        assert abs(scaling.scaled_k(n) / (n - 1) - 15 / 107) < 0.01
    assert scaling.null_permutations(126) == 1000 and scaling.null_permutations(630) == 200
    assert scaling.null_permutations(2754) == 20
    assert scaling.slug("+location") == "location" and scaling.agent_name("+location") == "alm-location"
    assert scaling.agent_name("paper108") == "alm"
    # the sequence set's agent has a memory (which part of "A, then B" is done is not in the view)
    assert scaling.memory_for("+sequence") == "gru" and scaling.memory_for("+putnext") == ""
    assert scaling.agent_name("+sequence") == "alm-gru-sequence"


@pytest.fixture(scope="module")
def shipped_set(tmp_path_factory):
    """+colourless in a tmp assets dir: its baselines, two tiny agents (seeds 0, 1) shipped, the tables."""
    from core.train import TrainConfig, default_name, train

    root = tmp_path_factory.mktemp("scal")
    assets, src = root / "assets", root / "source"
    (assets).mkdir()
    for sub in ("embeddings", "agents"):
        (assets / sub).symlink_to(REPO / "assets" / sub)
    old = os.environ.get("ALVA_ASSETS_DIR")
    try:
        os.environ["ALVA_ASSETS_DIR"] = str(src)
        for seed in (0, 1):
            train(TrainConfig(seed=seed, grammar="+colourless", name=default_name(grammar="+colourless"), demos=252,
                              d_model=32, lang_ff=64, head_hidden=32, batch_size=64, steps=20, eval_every=10,
                              eval_episodes=1, final_episodes=1, threads=1, progress=False))
        os.environ["ALVA_ASSETS_DIR"] = str(assets)
        scaling.embed_references("+colourless", models=(), progress=False)  # baselines only (no weights needed)
        scaling.ship(["+colourless"], source=src, progress=False, permutations=50)
        yield assets, scaling.load(), src
    finally:
        if old is None:
            os.environ.pop("ALVA_ASSETS_DIR", None)
        else:
            os.environ["ALVA_ASSETS_DIR"] = old


def test_shipped_set_files_have_every_instruction_in_order(shipped_set):
    assets, res, _ = shipped_set
    d = assets / "instruction_sets" / "colourless" / "embeddings"
    items = instruction_set(preset("+colourless"))
    for stem in ("bag-of-words", "factors", "alm-colourless-s0", "untrained-alm-colourless-s1"):
        E, its, man = store.read_embeddings(stem, d)
        assert its == items and E.shape[0] == 126 and man["n_items"] == 126, stem
    E, _, man = store.read_embeddings("alm-colourless-s0", d)
    assert man["storage_dtype"] == "float16" and man["instruction_set"] == "+colourless"
    assert (assets / "instruction_sets" / "colourless" / "agents" / "alm-colourless-s0.json").exists()
    # bag-of-words over the preset's vocabulary: "go to the ball" counts go, to, the, ball
    B, _, _ = store.read_embeddings("bag-of-words", d)
    row = B[items.index("go to the ball")]
    vocab = list(preset("+colourless").vocabulary)
    assert {vocab[j] for j in np.flatnonzero(row)} == {"go", "to", "the", "ball"}


def test_tables_are_core_metrics_on_the_shipped_files(shipped_set):
    from core.metrics import permutation_null, precision_at_k

    assets, res, _ = shipped_set
    d = assets / "instruction_sets" / "colourless" / "embeddings"
    A = store.read_embeddings("alm-colourless-s1", d)[0]
    B = store.read_embeddings("bag-of-words", d)[0]
    c = res["common108"].set_index(["set", "agent", "seed", "reference"])
    assert c.loc[("+colourless", "alm", 1, "bag-of-words")].precision == pytest.approx(
        precision_at_k(A[:108], B[:108], 15), abs=1e-6)
    w = res["whole"].set_index(["set", "agent", "seed", "reference"]).loc[("+colourless", "alm", 1, "bag-of-words")]
    nul = permutation_null(A, B, 50, seed=0)
    assert w.k == 18 and w.precision == pytest.approx(precision_at_k(A, B, 18), abs=1e-6)
    assert w.null_mean == pytest.approx(nul.mean[17], abs=1e-5) and w.p == pytest.approx(nul.p_value(18), abs=1e-5)
    assert w.chance == pytest.approx(18 / 125) and w.permutations == 50
    curve = res["curve"]
    row = curve[(curve.view == "common 108") & (curve.set == "+colourless") & (curve.agent == "alm")
                & (curve.reference == "bag-of-words")].iloc[0]
    assert row.seeds == 2 and row.n == 126
    sets = res["sets"].set_index("set")
    assert sets.loc["+colourless", "n"] == 126 and sets.loc["+colourless", "agents"] == 2
    # no reference model was embedded for this set (baselines only): each is named as not computed
    assert sets.loc["+colourless", "references_not_computed"].split() == list(scaling.REFERENCES)
    s = res["success"]
    assert set(s[s.set == "+colourless"].run) == {"alm-colourless-s0", "alm-colourless-s1"}
    assert {"form:paper108", "form:colourless"} <= set(s.columns)


def test_cli_errors_name_the_fix(tmp_path):
    env = {**os.environ, "ALVA_ASSETS_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "core", "scaling"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "python -m core scaling --ship" in r.stderr
    r = subprocess.run([sys.executable, "-m", "core", "scaling", "--embed", "+nonsense"], cwd=REPO, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown instruction-set preset" in r.stderr
    r = subprocess.run([sys.executable, "-m", "core", "scaling", "--embed", "+location", "--models", "bert-base"],
                       cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown reference model(s) ['bert-base']" in r.stderr
    assert not (tmp_path / "instruction_sets").exists()  # refused before anything was written
    r = subprocess.run([sys.executable, "-m", "core", "metrics", "--grammar", "+location"], cwd=REPO, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no shipped embeddings for instruction set '+location'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "core", "report", "--grammar", "+nonsense"], cwd=REPO, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown instruction-set preset" in r.stderr

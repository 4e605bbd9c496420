"""A tiny generalisation sweep result for tests (tests/test_generalisation.py, the dashboard tests): two real
(tiny) agents trained with a held-out split and E_L recorded, in the layout the sweep writes (agents/,
trajectories/), shipped with core.generalisation.ship into ``<root>/assets/generalisation``."""
from __future__ import annotations

import os
from pathlib import Path

# all 108 instructions (splits are defined on them), a narrow network, 5 demos per instruction, a few steps
TINY = dict(demos=540, d_model=32, lang_ff=64, head_hidden=32, batch_size=64, lr=3e-3, warmup=5, threads=1,
            final_episodes=1, eval_episodes=1, progress=False, steps=20, eval_every=10, record=True)
RUNS = (dict(holdout="colour-object", word_init="identity"), dict(holdout="colour-object", word_init="random"))


def build(root: Path, n_permutations: int = 20) -> Path:
    """Train the tiny runs into ``root/source`` and ship them to ``root/assets/generalisation``; returns the
    shipped directory. The assets dir also gets the repo's shipped reference embeddings (read-only links)."""
    from core import store
    from core.generalisation import ship
    from core.train import TrainConfig, default_name, train

    src, assets = root / "source", root / "assets"
    repo_assets = Path(__file__).resolve().parents[1] / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for sub in ("embeddings", "agents"):
        if not (assets / sub).exists():
            (assets / sub).symlink_to(repo_assets / sub)
    old = os.environ.get("ALVA_ASSETS_DIR")
    try:
        os.environ["ALVA_ASSETS_DIR"] = str(src)  # the sweep's layout: <src>/agents, <src>/trajectories
        for r in RUNS:
            train(TrainConfig(seed=0, name=default_name(word_init=r["word_init"], holdout=r["holdout"]), **r, **TINY))
        os.environ["ALVA_ASSETS_DIR"] = str(assets)
        return ship(src, store.assets_dir() / "generalisation", n_permutations=n_permutations, progress=False)
    finally:
        if old is None:
            os.environ.pop("ALVA_ASSETS_DIR", None)
        else:
            os.environ["ALVA_ASSETS_DIR"] = old

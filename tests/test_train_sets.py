"""Training on the larger instruction-set presets (TrainConfig.grammar): a tiny agent on a slice of +location."""
from __future__ import annotations

import numpy as np
import pytest

from core.agent import load_agent
from core.env import EnvConfig, episode_seed, make_env
from core.instructions import preset
from core.train import TrainConfig, default_name, evaluate, train


def _random_policy_success(items, n_episodes: int, seed: int = 0) -> float:
    """Uniform random actions over the 6 non-done actions, the same env seeds as ``evaluate(seed=0)``."""
    rng = np.random.default_rng(seed)
    g = preset("+location")
    wins = 0
    for e in range(n_episodes):
        env = make_env(items[e % len(items)], episode_seed("eval", 0, e), EnvConfig(), grammar=g)
        while True:
            _, _, term, trunc, info = env.step(int(rng.integers(0, 6)))
            if term or trunc:
                wins += bool(info["success"])
                break
    return wins / n_episodes


@pytest.fixture(scope="module")
def tiny_location(tmp_path_factory):
    d = tmp_path_factory.mktemp("sets")
    cfg = TrainConfig(grammar="+location", verbs=("go to",), demos=1200, d_model=64, lang_ff=128, head_hidden=128,
                      batch_size=128, lr=3e-3, warmup=10, steps=300, eval_every=150, eval_episodes=1,
                      quick_eval_max=40, final_episodes=1, threads=1, progress=False, out=str(d / "loc-s0.pt"),
                      name=default_name(grammar="+location"))
    return cfg, train(cfg)


def test_a_tiny_agent_on_a_slice_of_location_beats_a_random_policy(tiny_location):
    cfg, agent = tiny_location
    items = cfg.instructions()
    assert len(items) == 280 and sum(" on your " in t or " in front of you" in t or " behind you" in t
                                     for t in items) == 224
    table = evaluate(agent, episodes_per_instruction=1, seed=0, instructions=items, progress=False)
    trained = float(table.success.mean())
    random = _random_policy_success(items, len(items))
    assert trained > random + 0.15, (trained, random)
    assert set(table.form) == {"paper108", "colourless", "location"}  # per-form success is reported
    assert set(agent.manifest["success"]["per_form"]) == {"paper108", "colourless", "location"}


def test_a_preset_agent_round_trips_and_names_its_set(tiny_location):
    cfg, agent = tiny_location
    back = load_agent(cfg.out)
    assert back.config.grammar == "+location" and back.config.vocabulary == preset("+location").vocabulary
    assert agent.manifest["name"] == "alm-location"
    assert agent.manifest["train_config"]["grammar"] == "+location"

import subprocess
import sys

import numpy as np

from core import store
from core.demos import cache_params, generate
from core.env import EnvConfig, make_env, observe
from core.instructions import instruction_set
from tests.conftest import REPO_ROOT

FIELDS = ("images", "directions", "actions", "starts", "instruction_ids", "env_seeds")


def test_deterministic_and_worker_independent():
    a = generate(300, seed=3, workers=1, use_cache=False, progress=False)
    b = generate(300, seed=3, workers=2, use_cache=False, progress=False)
    c = generate(300, seed=4, workers=1, use_cache=False, progress=False)
    for f in FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert not np.array_equal(a.env_seeds, c.env_seeds)


def test_balanced_and_consistent():
    d = generate(216, seed=0, workers=1, use_cache=False, progress=False)
    assert np.bincount(d.instruction_ids, minlength=108).tolist() == [2] * 108
    assert d.starts[0] == 0 and d.starts[-1] == d.n_steps == len(d.images)
    # the stored first observation is the env's own for that seed
    e = 5
    env = make_env(d.instructions[d.instruction_ids[e]], int(d.env_seeds[e]))
    assert np.array_equal(observe(env)["image"], d.images[d.starts[e]])
    # replaying the stored actions succeeds
    for a in d.actions[d.starts[e]:d.starts[e + 1]]:
        _, _, term, trunc, info = env.step(int(a))
    assert term and info["success"]
    assert (d.prev_actions()[d.starts[:-1]] == 7).all()


def test_cached_under_explicit_key():
    items = instruction_set()[:4]
    d1 = generate(8, seed=1, instructions=items, progress=False)
    k = store.key("demos", cache_params(8, 1, EnvConfig(), items))
    assert k in store.cache()
    d2 = generate(8, seed=1, instructions=items, progress=False)
    assert np.array_equal(d1.actions, d2.actions)


def test_corrupt_cache_entry_is_recomputed():
    items = instruction_set()[:2]
    k = store.key("demos", cache_params(4, 9, EnvConfig(), items))
    store.cache().set(k, {"not": "a demo dataset"})
    d = generate(4, seed=9, instructions=items, progress=False)
    assert d.n_episodes == 4
    assert isinstance(store.cache()[k], dict) and "actions" in store.cache()[k]


def test_cli_tiny_job_end_to_end():
    out = subprocess.run([sys.executable, "-m", "core", "demos", "--n", "40", "--workers", "2", "--seed", "5",
                          "--verb", "open"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "40 episodes" in out.stdout and "24 instructions" in out.stdout and "cache key demos:" in out.stdout
    help_ = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "demos" in help_.stdout and "train" in help_.stdout
    bad = subprocess.run([sys.executable, "-m", "core", "nonsense"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown stage" in bad.stderr

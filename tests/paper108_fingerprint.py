"""Fingerprints of paper108 episodes (grid, agent pose, mission, expert actions), recorded BEFORE the grammar
presets were added (issue 15): ``tests/data/paper108_fingerprints.json``. test_grammar_presets checks that
today's code reproduces them bit for bit.

    python tests/paper108_fingerprint.py   # prints the JSON (only to re-record after a deliberate change)
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEEDS = (0, 7, 123456)


def fingerprint(instruction: str, seed: int) -> str:
    """sha256 (16 hex) of the reset grid encoding, agent pose, mission and the expert's actions."""
    from core.demos import run_expert
    from core.env import EnvConfig, make_env

    env = make_env(instruction, seed)
    u = env.unwrapped
    h = hashlib.sha256()
    h.update(u.grid.encode().tobytes())
    h.update(repr((tuple(int(v) for v in u.agent_pos), int(u.agent_dir), u.mission)).encode())
    try:
        _, _, actions = run_expert(instruction, seed, EnvConfig())
        h.update(actions.tobytes())
    except RuntimeError:
        h.update(b"bot-failed")
    return h.hexdigest()[:16]


def record() -> dict[str, str]:
    from core.instructions import instruction_set

    return {f"{t}|{s}": fingerprint(t, s) for t in instruction_set() for s in SEEDS}


if __name__ == "__main__":
    print(json.dumps(record(), indent=0, sort_keys=False))

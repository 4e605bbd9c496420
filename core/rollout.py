"""One episode of a trained agent, recorded for the dashboard: ``rollout(agent, instruction, env_seed)``.

The policy is greedy (argmax of the action probabilities), so a rollout is deterministic for a seed.
Success is the environment's own verdict (``info['success']`` of the last step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .env import ACTION_NAMES, EnvConfig, frame_full, frame_pov, make_env, observe


@dataclass
class Rollout:
    """A recorded episode. Frames have T + 1 entries (every state incl. the final one); per-step arrays have T."""

    instruction: str
    env_seed: int
    frames_full: list[np.ndarray]  # T+1 x uint8 (H, W, 3): the room, agent's field of view highlighted
    frames_pov: list[np.ndarray]  # T+1 x uint8 (7*tile, 7*tile, 3): the agent's 7x7 view (agent bottom centre)
    actions: list[str]  # T action names
    action_ids: np.ndarray  # int (T,)
    probs: np.ndarray  # float32 (T, 7) action probabilities (in ACTION_NAMES order)
    attention: np.ndarray  # float32 (T, n_heads, 7, 7): last cross-attention block, mean over the language
    #                        tokens, [row, col] as in frames_pov; sums to 1 over the 7x7 cells per head
    attention_tokens: np.ndarray  # float32 (T, n_heads, n_tokens, 7, 7): the same, per instruction token
    tokens: list[str]  # the instruction's words (rows of attention_tokens)
    success: bool
    length: int
    action_names: tuple[str, ...] = field(default=ACTION_NAMES)

    @property
    def attention_mean(self) -> np.ndarray:
        """(T, 7, 7): attention averaged over heads and tokens."""
        return self.attention.mean(1)


def rollout(agent, instruction: str, env_seed: int, tile_size: int = 32, pov_tile_size: int = 32,
            env_config: EnvConfig | None = None) -> Rollout:
    """Run ``agent`` greedily on ``instruction`` in the env seeded ``env_seed`` and record everything."""
    from .agent import START_ACTION

    env_config = env_config or EnvConfig(done_action=agent.config.done_action)
    env = make_env(instruction, env_seed, env_config)
    iid = list(agent.config.instructions).index(env.unwrapped.instruction.text)
    words = env.unwrapped.instruction.text.split()
    full, pov, actions, probs, attn = [frame_full(env, tile_size)], [frame_pov(env, pov_tile_size)], [], [], []
    prev, success, done, state = START_ACTION, False, False, None
    while not done:
        o = observe(env)
        a, p, w, state = agent.act(np.array([iid]), o["image"][None], np.array([o["direction"]]), np.array([prev]),
                                   state=state)
        a = int(a[0])
        _, _, term, trunc, info = env.step(a)
        actions.append(a), probs.append(p[0]), attn.append(w[0][:, : len(words)])
        full.append(frame_full(env, tile_size)), pov.append(frame_pov(env, pov_tile_size))
        prev, done, success = a, term or trunc, bool(info["success"])
    att_tok = np.stack(attn).astype(np.float32)
    return Rollout(instruction=env.unwrapped.instruction.text, env_seed=int(env_seed), frames_full=full,
                   frames_pov=pov, actions=[ACTION_NAMES[a] for a in actions], action_ids=np.array(actions),
                   probs=np.stack(probs).astype(np.float32), attention=att_tok.mean(2),
                   attention_tokens=att_tok, tokens=words, success=success, length=len(actions))


#: matplotlib's "inferno" sampled at 0, 1/6, ..., 1 (RGB 0-255); intermediate values are interpolated linearly
_INFERNO = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                     [252, 255, 164]], dtype=np.float64)


def inferno(x: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (clipped) to uint8 RGB with the inferno colour map: 0 = black, 1 = pale yellow."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * (len(_INFERNO) - 1)
    i = np.minimum(x.astype(int), len(_INFERNO) - 2)
    f = (x - i)[..., None]
    return np.round(_INFERNO[i] * (1 - f) + _INFERNO[i + 1] * f).astype(np.uint8)


def attention_overlay(pov: np.ndarray, attention: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The agent's view with its attention drawn over it: each of the 7x7 cells is blended (weight ``alpha``)
    with the inferno colour of its weight divided by the step's largest weight (brightest = most attended).

    ``pov``: uint8 (7t, 7t, 3) from :func:`core.env.frame_pov`; ``attention``: (7, 7), [row, col] as in ``pov``.
    Returns uint8 (7t, 7t, 3)."""
    A = np.asarray(attention, dtype=np.float64)
    if pov.shape[0] % A.shape[0] or pov.shape[1] % A.shape[1]:
        raise ValueError(f"view of shape {pov.shape[:2]} is not a whole number of {A.shape} cells")
    t = pov.shape[0] // A.shape[0]
    peak = A.max()
    colour = inferno(A / peak if peak > 0 else A)
    colour = np.repeat(np.repeat(colour, t, axis=0), t, axis=1).astype(np.float64)
    return np.round((1 - alpha) * pov.astype(np.float64) + alpha * colour).astype(np.uint8)

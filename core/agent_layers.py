"""Layer sweep of the agent's language pathway: every stage of the instruction encoder, pooled several ways.

Layers (``lang_layers`` + 1 of them; 3 for the shipped agents), each a (B, L, 128) token-state tensor of
:meth:`core.agent.ALM.encode_language`, captured with forward hooks on the very call that computes E_L:

* layer 0 -- the encoder's input: word embeddings + learned positional embeddings (the word-embedding layer);
* layer l (1 .. lang_layers - 1) -- the output of encoder block l (pre-norm residual stream);
* the last layer -- the output of the last block after the final LayerNorm (the states E_L pools).

Poolings over an instruction's real (non-padding) tokens: ``mean`` (the shipped E_L under the last layer),
``first`` (the first word's state), ``max`` (per-dimension maximum). So ``load_agent_layers(name, seed)[-1]``
under ``mean`` is E_L, equal to ``assets/embeddings/<name>-s<seed>.npz`` (tested). Nothing ships for these: they
are computed from the checkpoint in ``assets/agents`` (milliseconds) and memoised per process.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

AGENT_POOLINGS: tuple[str, ...] = ("mean", "first", "max")
UNTRAINED_PREFIX = "untrained-"
AGENT_LAYER_CONVENTIONS = (
    "agent language pathway: layer 0 = word + positional embeddings (encoder input), layer l = output of encoder "
    "block l, last = last block + final LayerNorm (E_L's token states); pooled over real tokens: mean (E_L at "
    "the last layer), first (first word), max (per-dimension maximum)")


def layer_names(n_blocks: int) -> list[str]:
    """Readable names of the ``n_blocks + 1`` layers."""
    return (["words + positions"] + [f"block {i}" for i in range(1, n_blocks)]
            + [f"block {n_blocks} + final norm"])


def pool_tokens(states: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Pool (n, L, d) token states over the real tokens of each row (mask (n, L) bool) -> float32 (n, d)."""
    from .embedders.errors import BadOptionError

    m = mask[..., None]
    if pooling == "mean":
        return ((states * m).sum(1) / m.sum(1)).astype(np.float32)
    if pooling == "first":
        return states[:, 0].astype(np.float32)
    if pooling == "max":
        return np.where(m, states, -np.inf).max(1).astype(np.float32)
    raise BadOptionError(f"agent pooling {pooling!r} unknown; choose one of {', '.join(AGENT_POOLINGS)}")


def language_layers(agent, instructions: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """{pooling: float32 (n_layers, n, d)} of a loaded :class:`core.agent.ALM` (definition: module docstring).

    One ``encode_language`` call; the last layer under ``mean`` is checked against the E_L it returns.
    """
    import torch

    from .instructions import instruction_set

    items = list(instructions or instruction_set())
    index = {t: i for i, t in enumerate(agent.config.instructions)}
    missing = [t for t in items if t not in index]
    if missing:
        raise KeyError(f"instructions unknown to this agent: {missing[:3]}")
    captured: list = []
    hooks = [agent.lang.register_forward_pre_hook(lambda mod, args: captured.append(args[0]))]
    hooks += [layer.register_forward_hook(lambda mod, args, out: captured.append(out))
              for layer in list(agent.lang.layers)[:-1]]
    hooks.append(agent.lang_norm.register_forward_hook(lambda mod, args, out: captured.append(out)))
    was = agent.training
    agent.eval()
    try:
        with torch.no_grad():
            _, mask, e_l = agent.encode_language(torch.tensor([index[t] for t in items]))
    finally:
        for h in hooks:
            h.remove()
        agent.train(was)
    states = [c.detach().numpy().astype(np.float64) for c in captured]
    mask = mask.numpy()
    out = {p: np.stack([pool_tokens(s, mask, p) for s in states]) for p in AGENT_POOLINGS}
    if not np.allclose(out["mean"][-1], e_l.numpy(), rtol=0, atol=1e-6):
        raise RuntimeError("the captured last layer does not reproduce E_L: core.agent.encode_language changed")
    out["mean"][-1] = e_l.numpy().astype(np.float32)  # E_L exactly as core.agent computes it
    return out


def agent_checkpoint(name: str, seed: int | None = None) -> tuple[str, int, bool]:
    """(checkpoint stem, seed, untrained) for an agent name (``alm``, ``alm-word-random``, ``untrained-alm``,
    ``untrained-alm-done``, ...) and seed. Unknown names and seeds without a shipped checkpoint raise errors
    that list what exists."""
    from .embedders.errors import BadOptionError, NotComputedError
    from .embedders.registry import TABLE, resolve

    untrained = name.startswith(UNTRAINED_PREFIX)
    base = name[len(UNTRAINED_PREFIX):] if untrained else name
    if untrained and base not in TABLE:
        resolve(name)  # "untrained-alm" is a registry row; otherwise UnknownModelError with the known names
    spec = resolve(base)
    if spec.family != "agent" or spec.name.startswith(UNTRAINED_PREFIX):
        raise BadOptionError(f"{name!r} is not an agent with a checkpoint; agents: "
                             f"{', '.join(n for n, s in TABLE.items() if s.family == 'agent')}")
    seeds = spec.seeds or (0,)
    seed = seeds[0] if seed is None else seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed not in seeds:
        raise BadOptionError(f"seed {seed!r} of {name!r} is unknown; its seeds are {list(seeds)}")
    stem = f"{spec.name}-s{int(seed)}"
    if not checkpoint_path(stem).is_file():
        raise NotComputedError(f"no checkpoint {checkpoint_path(stem)} for {name!r} seed {seed}; train it "
                               f"with: {spec.compute_command}")
    return stem, int(seed), untrained


def checkpoint_path(stem: str):
    """``assets/agents/<stem>.pt`` (as :func:`core.agent.resolve` names a shipped agent; no torch import)."""
    from .store import assets_dir

    return assets_dir() / "agents" / f"{stem}.pt"


@lru_cache(maxsize=64)
def _layers_cached(path: str, mtime_ns: int, untrained: bool) -> dict[str, np.ndarray]:
    from .agent import load_agent, untrained_agent

    agent = untrained_agent(path) if untrained else load_agent(path)
    out = language_layers(agent)
    for a in out.values():
        a.setflags(write=False)
    return out


def load_agent_layers(name: str, seed: int | None = None, pooling: str = "mean") -> np.ndarray:
    """float32 (n_layers, 108, 128): the agent's language pathway, every layer under ``pooling``.

    ``name``: ``alm``, an agent variant, or ``untrained-<agent>`` (the same checkpoint's network at
    initialisation); ``seed``: one of the registry's seeds (default: the first). Computed from the shipped
    checkpoint (memoised). The last layer under ``mean`` is the shipped E_L.
    """
    from .embedders.errors import BadOptionError

    if pooling not in AGENT_POOLINGS:
        raise BadOptionError(f"agent pooling {pooling!r} unknown; choose one of {', '.join(AGENT_POOLINGS)}")
    stem, _, untrained = agent_checkpoint(name, seed)
    path = checkpoint_path(stem)
    return _layers_cached(str(path), path.stat().st_mtime_ns, untrained)[pooling].copy()


def shipped_agents() -> list[tuple[str, int]]:
    """(agent name, seed) of every trained checkpoint in ``assets/agents`` that the registry knows."""
    from .embedders.registry import TABLE

    out = []
    for name, spec in TABLE.items():
        if spec.family != "agent" or name.startswith(UNTRAINED_PREFIX):
            continue
        for s in spec.seeds or (0,):
            if checkpoint_path(f"{name}-s{s}").is_file():
                out.append((name, int(s)))
    return out

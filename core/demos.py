"""Expert demonstrations from minigrid's ``BabyAIBot``, balanced over the instruction set.

``generate(n, seed=..., workers=...)`` returns a :class:`Demos` (compact numpy arrays) and stores it in the
diskcache store under ``store.key("demos", {instruction-set hash, env config, n, seed, version})``.

Balance and seeds: episode ``e`` uses instruction ``e % len(instructions)`` and env seed
``env.episode_seed("train", seed, e, attempt)``. If the bot fails (crash, or no success within
``max_steps``), the attempt is counted and reported, never stored, and the next attempt (a new seed) is tried,
up to 10. Episodes are generated in fixed chunks whose results are concatenated in order, so the dataset is
identical whatever the number of worker processes.

Expert: ``BabyAIBot`` with two additions. (1) "open ... box" is not a BabyAI instruction: the bot plans a
"go to" the box and the expert toggles when the bot says it has arrived. (2) In done mode the expert emits
``done`` as soon as the instruction was satisfied on the previous step (``instrs.lastStepMatch``); the stock bot
would drop a picked-up object first. (3) Extended forms (issue 15): location and put-next are minigrid's own and
the stock bot plans them; inside a sequence an "open ... box" clause is planned by :class:`_Bot` as "go next to
the box, then toggle" (the paper108 path above is left exactly as it was, so paper108 demos are unchanged).

Instruction sets: ``instructions`` may be any list, e.g. ``instruction_set(presets()["+location"])``; the
grammar that parses them is given with ``grammar`` (default: the paper108 grammar). The cache key gains a
``grammar`` entry only for a non-default grammar, so paper108 keys are unchanged.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from . import store
from .env import EnvConfig, episode_seed, make_env, observe
from .instructions import DEFAULT_GRAMMAR, Grammar, instruction_set, instruction_set_hash

DEMOS_VERSION = 1  # bump when the expert or storage format changes: it is part of the cache key
CHUNK = 250  # episodes per work unit (fixed: results must not depend on the number of workers)
MAX_ATTEMPTS = 10


@dataclass
class Demos:
    """A demonstration dataset. Steps of episode ``e`` are ``slice(starts[e], starts[e + 1])``."""

    images: np.ndarray  # uint8 (T, 7, 7, 3) symbolic obs, or (T, H, W, 3) rgb obs
    directions: np.ndarray  # uint8 (T,)
    actions: np.ndarray  # uint8 (T,) expert action
    starts: np.ndarray  # int64 (E + 1,) episode boundaries into the step arrays
    instruction_ids: np.ndarray  # int16 (E,) index into `instructions`
    env_seeds: np.ndarray  # int64 (E,)
    instructions: list[str]
    config: dict
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # (instruction id, env seed, reason)

    @property
    def n_episodes(self) -> int:
        return len(self.instruction_ids)

    @property
    def n_steps(self) -> int:
        return len(self.actions)

    def step_instruction_ids(self) -> np.ndarray:
        """Instruction id of every step (T,)."""
        return np.repeat(self.instruction_ids, np.diff(self.starts))

    def prev_actions(self, start_token: int = 7) -> np.ndarray:
        """The action taken before each step (``start_token`` at an episode's first step)."""
        prev = np.empty_like(self.actions)
        prev[1:] = self.actions[:-1]
        prev[self.starts[:-1]] = start_token
        return prev

    def summary(self) -> str:
        lengths = np.diff(self.starts)
        return (f"{self.n_episodes} episodes, {self.n_steps} steps (mean length {lengths.mean():.1f}, max "
                f"{lengths.max()}), {len(self.instructions)} instructions, bot failures skipped: "
                f"{len(self.failures)}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_BOT: dict[str, type] = {}


def _bot_class() -> type:
    """minigrid's BabyAIBot that also plans our OpenBoxInstr (go next to the box, toggle); built once."""
    if "bot" in _BOT:
        return _BOT["bot"]
    from minigrid.utils.baby_ai_bot import BabyAIBot, GoNextToSubgoal, Subgoal

    from .env import _level_class

    _level_class()
    from .env import _CLASSES

    class _OpenBoxSubgoal(Subgoal):
        def replan_before_action(self):
            return self.actions.toggle

        def replan_after_action(self, action_taken):
            if action_taken is None or action_taken == self.actions.toggle:
                self.bot.stack.pop()

    class _Bot(BabyAIBot):
        def _process_instr(self, instr):
            if isinstance(instr, _CLASSES["OpenBoxInstr"]):
                self.stack.append(_OpenBoxSubgoal(self))
                self.stack.append(GoNextToSubgoal(self, instr.desc))
                return
            super()._process_instr(instr)

    _BOT["bot"] = _Bot
    return _Bot


class Expert:
    """The bot for one freshly reset env; ``act()`` returns the next expert action."""

    def __init__(self, env):
        from minigrid.utils.baby_ai_bot import BabyAIBot
        import minigrid.envs.babyai.core.verifier as ver

        self.env = env.unwrapped
        s = self.env.instruction
        self.open_box = s.verb == "open" and s.object == "box" and not s.connective
        real = self.env.instrs
        if self.open_box:  # the bot knows no "open box": let it plan "go to" the same description
            self.env.instrs = ver.GoToInstr(real.desc)
        try:
            self.bot = _bot_class()(env) if s.connective else BabyAIBot(env)
        finally:
            self.env.instrs = real

    def act(self) -> int:
        a = self.env.actions
        if self.env.config.done_action and self.env.instrs.lastStepMatch:
            return int(a.done)
        action = self.bot.replan()
        if self.open_box and action == a.done:
            return int(a.toggle)
        return int(action)


def run_expert(instruction: str, env_seed: int, config: EnvConfig, grammar: Grammar = DEFAULT_GRAMMAR):
    """One expert episode -> (images, directions, actions) or raise RuntimeError if the bot fails."""
    env = make_env(instruction, env_seed, config, grammar=grammar)
    expert = Expert(env)
    images, dirs, actions = [], [], []
    for _ in range(env.unwrapped.max_steps):
        o = observe(env)
        act = expert.act()
        images.append(o["image"])
        dirs.append(o["direction"])
        actions.append(act)
        _, _, terminated, truncated, info = env.step(act)
        if terminated or truncated:
            if info.get("success"):
                return np.stack(images), np.array(dirs, np.uint8), np.array(actions, np.uint8)
            break
    raise RuntimeError("bot did not succeed within max_steps")


def _chunk(args) -> dict:
    instructions, config_dict, seed, lo, hi = args[:5]
    grammar = args[5] if len(args) > 5 else DEFAULT_GRAMMAR
    config = EnvConfig(**config_dict)
    images, dirs, actions, lengths, ids, seeds, failures = [], [], [], [], [], [], []
    for e in range(lo, hi):
        iid = e % len(instructions)
        for attempt in range(MAX_ATTEMPTS):
            s = episode_seed("train", seed, e, attempt)
            try:
                im, d, a = run_expert(instructions[iid], s, config, grammar)
            except Exception as err:  # bot assertion / DisappearedBoxError / timeout: count, never store
                failures.append((iid, s, f"{type(err).__name__}: {err}"))
                continue
            images.append(im), dirs.append(d), actions.append(a)
            lengths.append(len(a)), ids.append(iid), seeds.append(s)
            break
        else:
            raise RuntimeError(f"the bot failed {MAX_ATTEMPTS} times on {instructions[iid]!r}; see failures")
    return {"images": np.concatenate(images), "directions": np.concatenate(dirs),
            "actions": np.concatenate(actions), "lengths": np.array(lengths, np.int64),
            "ids": np.array(ids, np.int16), "seeds": np.array(seeds, np.int64), "failures": failures}


def _iter_chunks(instructions, config, seed, n, workers, grammar=DEFAULT_GRAMMAR) -> Iterator[dict]:
    jobs = [(list(instructions), config.as_dict(), seed, lo, min(lo + CHUNK, n), grammar)
            for lo in range(0, n, CHUNK)]
    if workers <= 1:
        yield from map(_chunk, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_chunk, jobs)  # imap keeps job order


def _generate(n, seed, workers, config, instructions, progress, grammar=DEFAULT_GRAMMAR) -> Demos:
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=n, desc="demos", unit="ep", disable=not progress) as bar:
        for part in _iter_chunks(instructions, config, seed, n, workers, grammar):
            parts.append(part)
            bar.update(len(part["ids"]))
    lengths = np.concatenate([p["lengths"] for p in parts])
    return Demos(
        images=np.concatenate([p["images"] for p in parts]),
        directions=np.concatenate([p["directions"] for p in parts]),
        actions=np.concatenate([p["actions"] for p in parts]),
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        instruction_ids=np.concatenate([p["ids"] for p in parts]),
        env_seeds=np.concatenate([p["seeds"] for p in parts]),
        instructions=list(instructions), config=config.as_dict(),
        failures=[f for p in parts for f in p["failures"]])


def cache_params(n: int, seed: int, config: EnvConfig, instructions: Sequence[str],
                 grammar: Grammar = DEFAULT_GRAMMAR) -> dict:
    """The demo cache key's parameters; ``grammar`` enters only when it is not the paper108 grammar, so the
    keys of paper108 datasets are unchanged."""
    params = {"version": DEMOS_VERSION, "n": int(n), "seed": int(seed), "config": config.as_dict(),
              "instruction_set": instruction_set_hash(instructions)}
    if grammar != DEFAULT_GRAMMAR:
        params["grammar"] = repr(grammar)
    return params


def generate(n: int, seed: int = 0, workers: int = 1, config: EnvConfig | None = None,
             instructions: Sequence[str] | None = None, progress: bool = True, use_cache: bool = True,
             grammar: Grammar = DEFAULT_GRAMMAR) -> Demos:
    """``n`` expert episodes, balanced over ``instructions`` (default: the whole set of ``grammar``); cached.

    Same (n, seed, config, instructions, grammar) -> identical dataset for any ``workers``.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    config = config or EnvConfig()
    instructions = list(instructions or instruction_set(grammar))
    if not use_cache:
        return _generate(n, seed, workers, config, instructions, progress, grammar)
    d = store.cached("demos", cache_params(n, seed, config, instructions, grammar),
                     lambda: _generate(n, seed, workers, config, instructions, progress, grammar).to_dict(),
                     validate=lambda v: isinstance(v, dict) and set(v) == set(Demos.__dataclass_fields__))
    return Demos(**d)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core demos", description="Generate expert demonstrations "
                                "(cached in the diskcache store; a second call with the same options is instant).")
    p.add_argument("--n", type=int, default=50_000, help="number of episodes (default 50000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--done-action", action="store_true", help="require an explicit `done` (see core.env)")
    p.add_argument("--obs", choices=["symbolic", "rgb"], default="symbolic")
    p.add_argument("--verb", action="append", help="only instructions with this verb (repeatable)")
    p.add_argument("--grammar", default="paper108", help="instruction-set preset (core.instructions.presets)")
    p.add_argument("--refresh", action="store_true", help="recompute even if cached")
    args = p.parse_args(argv[1:])
    from .instructions import preset

    grammar = preset(args.grammar)
    instructions = instruction_set(grammar.subset(verbs=args.verb)) if args.verb else instruction_set(grammar)
    config = EnvConfig(obs_mode=args.obs, done_action=args.done_action)
    params = cache_params(args.n, args.seed, config, instructions, grammar)
    t = time.perf_counter()
    if args.refresh:
        store.cache().delete(store.key("demos", params))
    demos = generate(args.n, seed=args.seed, workers=args.workers, config=config, instructions=instructions,
                     grammar=grammar)
    dt = time.perf_counter() - t
    print(demos.summary())
    for iid, s, reason in demos.failures[:10]:
        print(f"  bot failure: {demos.instructions[iid]!r} seed {s}: {reason}")
    print(f"cache key {store.key('demos', params)} in {store.cache_dir()}; {dt:.1f} s")
    return 0

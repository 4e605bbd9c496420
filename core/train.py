"""Behavioural cloning of the ALM on expert demonstrations, and success-rate evaluation.

Read top to bottom:

1. :class:`TrainConfig` holds every option (one dataclass; it is saved in the checkpoint manifest).
2. :func:`train` generates (or loads from the cache) the expert demos, builds the agent with
   :func:`core.agent.build_agent` (``torch.manual_seed(seed)`` first), and minimises the cross-entropy between the
   agent's action logits and the expert's actions with AdamW, linear warm-up then cosine decay, gradient
   clipping. Mini-batches are drawn from a seeded permutation of all demo steps (epoch after epoch); for a
   memory agent (``memory = "gru"``) from a seeded permutation of the demo episodes, whole episodes, about
   ``batch_size`` steps per batch, so that its state runs from each episode's first step.
   Every ``eval_every`` steps it runs a quick success check (``eval_episodes`` per instruction on eval-seed 1,
   never the episodes of the final evaluation) and saves a resumable training state
   (``cache/train/<name>-s<seed>.state.pt``: weights, optimiser, step, RNG). At the end it evaluates on
   ``final_episodes`` episodes per instruction (eval-seed 0, disjoint from the demos) and writes the checkpoint
   ``<out>`` (.pt) with its manifest (.json).
   With ``record`` it also reads E_L (eval mode, no grad, no RNG touched, train mode restored) at
   :func:`core.dynamics.snapshot_steps` and at the eval points, keeps the snapshots in the resumable state, and
   writes the trajectory ``assets/trajectories/<name>-s<seed>.npz`` (+ .json) at the end (core.dynamics).
3. :func:`evaluate` runs the greedy policy in fresh environments whose seeds come from
   ``episode_seed("eval", seed, i)`` (disjoint from the training demos), batched over many envs at once,
   and returns one row per instruction. :func:`summarise` gives overall / per-verb success.

CLI: ``python -m core train --seed 0`` and ``python -m core evaluate --agent alm-s0``.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import store
from .env import EnvConfig, end_object, episode_seed, make_env, observe
from .instructions import instruction_set, instruction_set_hash, metadata


@dataclass
class TrainConfig:
    seed: int = 0  # network init and batch order
    name: str = "alm"  # model name: the checkpoint is <name>-s<seed>.pt
    # agent (see core.agent.AgentConfig)
    vision: str = "symbolic"
    word_init: str = "identity"
    done_action: bool = False  # done-mode env + done-mode demos
    resnet_weights: str = "imagenet"
    prev_action: bool = True  # the previous action as input (memory)
    memory: str = ""  # "" | "gru": a recurrent state over the episode (core.agent); trains on whole episodes
    d_model: int = 128  # width (the shipped agents use 128: E_L is 128-d); smaller only for quick tests
    lang_ff: int = 512
    head_hidden: int = 256
    # data
    verbs: tuple[str, ...] = ()  # train/evaluate on the instructions with these verbs only (default: all 108)
    grammar: str = ""  # instruction-set preset (core.instructions.presets: +colourless, +location, ...); "" = paper108
    holdout: str = ""  # a core.splits split: its held-out instructions' demos are dropped (the agent still embeds
    #                    and is evaluated on every instruction; the quick checks run on the trained ones only)
    demos: int = 50_000  # expert episodes (cached; balanced over the 108 instructions)
    demo_seed: int = 0
    demo_workers: int = 2
    # optimisation
    steps: int = 1500
    batch_size: int = 256
    lr: float = 1e-3
    min_lr_frac: float = 0.05  # cosine decays to lr * min_lr_frac
    warmup: int = 100
    weight_decay: float = 0.01  # on Linear / attention weights only (not embeddings, norms, biases)
    grad_clip: float = 1.0
    threads: int = 1  # 1 is the shipped setting: on a 2-core machine shared with other jobs, 2 torch threads
    #                   collapsed to ~250 samples/s vs ~1,100 for 1 thread (idle machine: 2 threads ~1.4x faster)
    device: str = "auto"  # auto | cpu | cuda (core.device: auto = CUDA when available; cuda without CUDA = error)
    # evaluation and checkpoints
    eval_every: int = 250  # quick success check + resumable state every N steps (0 = never)
    eval_episodes: int = 2  # per instruction, quick check (eval-seed 1)
    quick_eval_max: int = 216  # the quick check runs on at most this many (trained) instructions, evenly spaced
    final_episodes: int = 20  # per instruction, final reported success (eval-seed 0)
    out: str = ""  # checkpoint path; default assets/agents/<name>-s<seed>.pt
    resume: bool = False
    stop_after: int = 0  # > 0: stop after this many steps, leaving the resumable state (time-boxed runs, tests)
    progress: bool = True
    record: bool = False  # record E_L at core.dynamics.snapshot_steps(steps) + the eval points (a trajectory)

    def agent_config(self):
        from .agent import AgentConfig

        return AgentConfig(vision=self.vision, word_init=self.word_init, done_action=self.done_action,
                           resnet_weights=self.resnet_weights, d_model=self.d_model, lang_ff=self.lang_ff,
                           head_hidden=self.head_hidden, prev_action=self.prev_action, memory=self.memory,
                           instructions=tuple(self.instructions()), word_vectors=self.word_vectors()[0],
                           vocabulary=self.grammar_obj().vocabulary, grammar=self.grammar)

    def grammar_obj(self):
        """The instruction-set preset's Grammar (paper108 when ``grammar`` is empty)."""
        from .instructions import preset

        return preset(self.grammar or "paper108")

    def word_vectors(self) -> tuple[tuple[tuple[float, ...], ...], dict[str, Any] | None]:
        """The LM word init's initial vectors and manifest (core.word_init), or ((), None) for the other inits."""
        from .agent import LM_WORD_INITS

        if self.word_init not in LM_WORD_INITS:
            return (), None
        from .word_init import lm_word_init

        W, man = lm_word_init(self.word_init, self.grammar_obj().vocabulary, self.d_model)
        return tuple(map(tuple, W.tolist())), man

    def held_out(self) -> list[str]:
        """The instructions of split ``holdout`` (none without one); core.splits.SplitError for an unknown split."""
        if not self.holdout:
            return []
        from .splits import get_split

        return list(get_split(self.holdout).held_out)

    def trained_instructions(self) -> list[str]:
        """The instructions whose demos the agent trains on (all of :meth:`instructions` minus :meth:`held_out`)."""
        out = set(self.held_out())
        return [t for t in self.instructions() if t not in out]

    def instructions(self) -> list[str]:
        from .instructions import DEFAULT_GRAMMAR

        if self.grammar:
            g = self.grammar_obj()
            items = instruction_set(g)
            return [t for t in items if g.parse(t).verb in self.verbs] if self.verbs else items
        return instruction_set(DEFAULT_GRAMMAR.subset(verbs=self.verbs)) if self.verbs else instruction_set()

    def quick_instructions(self) -> list[str]:
        """The quick check's instructions: the trained ones, evenly spaced, at most ``quick_eval_max``."""
        items = self.trained_instructions()
        step = max(1, math.ceil(len(items) / max(1, self.quick_eval_max)))
        return items[::step]

    def env_config(self) -> EnvConfig:
        return EnvConfig(done_action=self.done_action)

    def out_path(self) -> Path:
        if self.out:
            return Path(self.out)
        return store.assets_dir() / "agents" / f"{store.embedding_file_name(self.name, self.seed)}.pt"

    def state_path(self) -> Path:
        return store.cache_dir() / "train" / f"{self.out_path().stem}.state.pt"

    def trajectory_dir(self) -> Path:
        """Where ``record`` writes the trajectory: assets/trajectories/, or trajectories/ beside a custom ``out``."""
        from .dynamics import trajectories_dir

        return Path(self.out).parent / "trajectories" if self.out else trajectories_dir()

    def record_steps(self) -> set[int]:
        """Steps at which ``record`` reads E_L: the snapshot schedule and every quick-eval point."""
        from .dynamics import snapshot_steps

        if not self.record:
            return set()
        evals = set(range(self.eval_every, self.steps + 1, self.eval_every)) | {self.steps} if self.eval_every \
            else set()
        return set(snapshot_steps(self.steps)) | evals


def default_name(vision: str = "symbolic", word_init: str = "identity", done_action: bool = False,
                 holdout: str = "", grammar: str = "", memory: str = "") -> str:
    """The model name of a variant: ``alm``, ``alm-done``, ``alm-word-random``, ``alm-resnet``,
    ``alm-holdout-colour-object``, ``alm-word-smollm2-holdout-colour-object``, ``alm-location`` (preset
    ``+location``), ``alm-gru-sequence`` (memory ``gru``, preset ``+sequence``) ... (checkpoint
    ``<name>-s<seed>.pt``)."""
    return ("alm" + ("-done" if done_action else "") + ("" if word_init == "identity" else f"-word-{word_init}")
            + ("" if vision == "symbolic" else "-resnet") + (f"-{memory}" if memory else "")
            + (f"-holdout-{holdout}" if holdout else "") + (f"-{grammar.lstrip('+')}" if grammar else ""))


def training_demos(demos, held_out: Sequence[str]):
    """``demos`` without the episodes of the ``held_out`` instructions (a new :class:`core.demos.Demos`; instruction
    ids still index ``demos.instructions``, so they match the agent's full instruction list)."""
    if not held_out:
        return demos
    from .demos import Demos

    out_ids = {demos.instructions.index(t) for t in held_out}
    keep_ep = ~np.isin(demos.instruction_ids, sorted(out_ids))
    lengths = np.diff(demos.starts)
    keep_step = np.repeat(keep_ep, lengths)
    starts = np.concatenate([[0], np.cumsum(lengths[keep_ep])]).astype(demos.starts.dtype)
    return Demos(images=demos.images[keep_step], directions=demos.directions[keep_step],
                 actions=demos.actions[keep_step], starts=starts, instruction_ids=demos.instruction_ids[keep_ep],
                 env_seeds=demos.env_seeds[keep_ep], instructions=list(demos.instructions),
                 config={**demos.config, "held_out": list(held_out)},
                 failures=[f for f in demos.failures if f[0] not in out_ids])


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``lr * min_lr_frac``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def episode_batch(starts, lengths, idx):
    """The steps of the episodes ``idx`` as a padded (B, T) batch: (step index (B, T), mask (B, T)); T = the
    longest episode's length, padded positions repeat the episode's last step and are masked out."""
    import torch

    L = lengths[idx]
    t = torch.arange(int(L.max()), device=L.device)
    mask = t[None] < L[:, None]
    return starts[idx][:, None] + torch.minimum(t[None], L[:, None] - 1), mask


def demo_tensors(demos) -> dict[str, Any]:
    """The demo steps as torch tensors: images, directions, prev_actions, actions, instruction ids."""
    import torch

    return {"images": torch.from_numpy(demos.images), "directions": torch.from_numpy(demos.directions),
            "prev_actions": torch.from_numpy(demos.prev_actions()),
            "actions": torch.from_numpy(demos.actions.astype(np.int64)),
            "instr": torch.from_numpy(demos.step_instruction_ids().astype(np.int64)),
            "starts": torch.from_numpy(demos.starts[:-1].astype(np.int64)),
            "lengths": torch.from_numpy(np.diff(demos.starts).astype(np.int64)),
            "episode_instr": torch.from_numpy(demos.instruction_ids.astype(np.int64))}


def _optimizer(agent, cfg: TrainConfig):
    import torch

    decay, no_decay = [], []
    for name, p in agent.named_parameters():
        is_matrix = p.ndim >= 2 and not any(k in name for k in ("words", "pos", "obj", "col", "state",
                                                                "direction", "prev_action"))
        (decay if is_matrix else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def train(cfg: TrainConfig, command: str | None = None, *, demos=None, state_path: str | Path | None = None):
    """Train one agent; returns it (eval mode, on the CPU) with ``agent.manifest``. See the module docstring.

    ``demos``: the dataset, when the caller already has it (the sweep's workers get it from the driver, which
    reads the cache); default: :func:`core.demos.generate` with the config's options (cached).
    ``state_path``: where the resumable state goes (default :meth:`TrainConfig.state_path`, in the cache).
    The network is built on the CPU (same init on every device), then moved to ``cfg.device``; the batch order
    comes from a CPU generator, so a seed gives the same batches on every device."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from .agent import build_agent, instruction_embeddings, save_checkpoint
    from .demos import generate
    from .device import describe, resolve as resolve_device

    dev = resolve_device(cfg.device)  # DeviceError before any work
    torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    # 1. data
    held_out = cfg.held_out()  # SplitError for an unknown split, before any work
    if demos is None:
        demos = generate(cfg.demos, seed=cfg.demo_seed, workers=cfg.demo_workers, config=cfg.env_config(),
                         instructions=cfg.instructions(), progress=cfg.progress, grammar=cfg.grammar_obj())
    if list(demos.instructions) != cfg.instructions():
        raise ValueError(f"the demos were made for another instruction set ({len(demos.instructions)} instructions, "
                         f"hash {instruction_set_hash(demos.instructions)}) than this config's "
                         f"({cfg.grammar or 'paper108'}, {len(cfg.instructions())})")
    demos = training_demos(demos, held_out)
    data = {k: v.to(dev) for k, v in demo_tensors(demos).items()}
    n_steps = len(data["actions"])
    # a memory agent learns from whole episodes (its state runs from each episode's first step): a batch is
    # `per_batch` episodes, about batch_size steps; otherwise a batch is batch_size steps from any episodes
    episodic = bool(cfg.memory)
    n = demos.n_episodes if episodic else n_steps
    per_batch = max(1, round(cfg.batch_size * demos.n_episodes / n_steps)) if episodic else cfg.batch_size
    # 2. model, optimiser, RNG for batch order
    agent = build_agent(cfg.agent_config(), cfg.seed).to(dev)
    opt = _optimizer(agent, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    perm, pos, step, history, train_time = torch.randperm(n, generator=gen), 0, 0, [], 0.0
    samples = 0  # demo steps the loss has seen
    loss_ema = acc_ema = None
    record_at, snaps = cfg.record_steps(), {"steps": [], "embeddings": [], "success": []}
    state_path = Path(state_path) if state_path is not None else cfg.state_path()
    if cfg.resume and state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        free = ("resume", "progress", "stop_after", "device")  # options that do not change what is computed
        saved = {"record": False, "memory": "", **st["config"]}  # states written before these options existed
        if {k: v for k, v in saved.items() if k not in free} != {k: v for k, v in asdict(cfg).items()
                                                                 if k not in free}:
            raise ValueError(f"{state_path} was written with a different TrainConfig; remove it or match it")
        agent.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        perm, pos, step, history, train_time = st["perm"], st["pos"], st["step"], st["history"], st["train_time"]
        loss_ema, acc_ema = st["loss_ema"], st["acc_ema"]
        snaps = st.get("snapshots", snaps)
        samples = st.get("samples", step * cfg.batch_size)
        print(f"resumed from {state_path} at step {step}", file=sys.stderr)
    # 3. optimisation (recording reads E_L in eval mode under no_grad and restores train mode; touches no RNG)
    def record() -> None:
        snaps["steps"].append(step)
        snaps["embeddings"].append(instruction_embeddings(agent, agent.config.instructions))
        snaps["success"].append(float("nan"))  # filled in below where a quick eval runs at this step

    if step == 0 and 0 in record_at and not snaps["steps"]:
        record()
    agent.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}-s{cfg.seed}", disable=not cfg.progress)
    t_seg = time.perf_counter()
    while step < cfg.steps:
        if pos + per_batch > n:  # new epoch
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos: pos + per_batch].to(dev)
        pos += per_batch
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        if episodic:
            at, mask = episode_batch(data["starts"], data["lengths"], idx)
            logits = agent.forward_episodes(data["episode_instr"][idx], data["images"][at], data["directions"][at],
                                            data["prev_actions"][at], mask)[mask]
            target = data["actions"][at][mask]
        else:
            logits = agent(data["instr"][idx], data["images"][idx], data["directions"][idx],
                           data["prev_actions"][idx])
            target = data["actions"][idx]
        loss = F.cross_entropy(logits, target)
        samples += len(target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(agent.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        acc = (logits.argmax(-1) == target).float().mean().item()
        loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
        acc_ema = acc if acc_ema is None else 0.98 * acc_ema + 0.02 * acc
        bar.update(1)
        bar.set_postfix(loss=f"{loss_ema:.3f}", acc=f"{acc_ema:.3f}", lr=f"{lr_at(step, cfg):.1e}",
                        success=f"{history[-1]['quick_success']:.2f}" if history else "-")
        if step in record_at:
            record()
        if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
            train_time += time.perf_counter() - t_seg
            agent.eval()
            table = evaluate(agent, episodes_per_instruction=cfg.eval_episodes, seed=1, progress=False,
                             instructions=cfg.quick_instructions())
            agent.train()
            history.append({"step": step, "train_time_s": round(train_time, 1), "loss_ema": round(loss_ema, 4),
                            "acc_ema": round(acc_ema, 4), "quick_success": round(float(table.success.mean()), 4),
                            "quick_episodes": int(table.episodes.sum())})
            if snaps["steps"] and snaps["steps"][-1] == step:
                snaps["success"][-1] = history[-1]["quick_success"]
            bar.write(f"step {step}: loss {loss_ema:.3f} acc {acc_ema:.3f} quick success "
                      f"{history[-1]['quick_success']:.3f} ({history[-1]['quick_episodes']} episodes, eval-seed 1) "
                      f"train time {train_time:.0f} s")
            state_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"config": asdict(cfg), "model": agent.state_dict(), "optimizer": opt.state_dict(),
                        "generator": gen.get_state(), "perm": perm, "pos": pos, "step": step,
                        "history": history, "train_time": train_time, "loss_ema": loss_ema, "acc_ema": acc_ema,
                        "snapshots": snaps, "samples": samples}, state_path)
            t_seg = time.perf_counter()
        if cfg.stop_after and step >= cfg.stop_after and step < cfg.steps:
            bar.close()
            if not (cfg.eval_every and step % cfg.eval_every == 0):
                raise ValueError("stop_after must be a multiple of eval_every (the resumable state is saved there)")
            print(f"stopped after step {step}; resume with --resume ({state_path})", file=sys.stderr)
            return None
    bar.close()
    if not (cfg.eval_every and step % cfg.eval_every == 0):
        train_time += time.perf_counter() - t_seg
    # 4. final evaluation and checkpoint
    agent.eval()
    t_eval = time.perf_counter()
    table = evaluate(agent, episodes_per_instruction=cfg.final_episodes, seed=0, progress=cfg.progress,
                     instructions=agent.config.instructions)
    summary = summarise(table)
    import torch as _t

    trained_ids = sorted(set(demos.instruction_ids.tolist()))
    holdout = None
    if held_out:
        ho = table.instruction.isin(held_out)
        rate = lambda t: round(float(t.successes.sum() / t.episodes.sum()), 4)  # noqa: E731
        holdout = {"split": cfg.holdout, "instructions": held_out, "success_trained": rate(table[~ho]),
                   "success_held_out": rate(table[ho]),
                   "held_out_episodes_in_training_demos": int(np.isin(
                       demos.instruction_ids, [demos.instructions.index(t) for t in held_out]).sum())}

    manifest = {
        "name": cfg.name, "seed": cfg.seed, "command": command or "core.train.train(TrainConfig(...))",
        "train_config": asdict(cfg), "agent_config": {k: v for k, v in agent.config.as_dict().items()
                                                      if k not in ("instructions", "word_vectors")},
        "env_config": cfg.env_config().as_dict(),
        "demos": {"episodes": demos.n_episodes, "steps": demos.n_steps, "seed": cfg.demo_seed,
                  "bot_failures_skipped": len(demos.failures), "instructions_trained": len(trained_ids)},
        "holdout": holdout,
        "word_init": cfg.word_vectors()[1],
        "optimizer_steps": step, "samples_seen": samples,
        **({"episodes_per_batch": per_batch} if episodic else {}),
        "epochs": round(samples / n_steps, 3),
        "training_time_s": round(train_time, 1),
        "samples_per_s": round(samples / max(train_time, 1e-9), 1),
        "wall_time_s": round(time.perf_counter() - t_start, 1),
        "final_eval_time_s": round(time.perf_counter() - t_eval, 1),
        "n_parameters": sum(p.numel() for p in agent.parameters()),
        "history": history,
        "success": summary,
        "success_protocol": (f"greedy argmax policy, {cfg.final_episodes} episodes per instruction x "
                             f"{len(table)} instructions, env seeds episode_seed('eval', 0, i) (disjoint from "
                             "the training demos), max_steps " f"{cfg.env_config().max_steps}, success = the "
                             "environment's own verdict"),
        "torch_version": str(_t.__version__), "threads": cfg.threads,
        "git_commit": store.git_commit(), "date": store.now_iso(),
        "resnet_weights_source": getattr(agent.vision, "weights_source", None),
    }
    manifest.update(describe(dev))
    agent = agent.cpu()
    out = save_checkpoint(agent, cfg.out_path(), manifest)
    agent.manifest, agent.checkpoint_path = manifest, out
    if cfg.record:
        agent.trajectory_path = _save_trajectory(cfg, snaps, manifest, out)
    print(f"{out}: success {summary['overall']:.3f} over {summary['episodes']} episodes; per verb "
          f"{summary['per_verb']}; training {train_time:.0f} s, {step} steps", file=sys.stderr)
    return agent


def _save_trajectory(cfg: TrainConfig, snaps: dict[str, list], manifest: dict[str, Any], checkpoint: Path) -> Path:
    """Write the recorded snapshots with their provenance (core.dynamics.save_trajectory)."""
    from .agent import LAYER, POOLING
    from .dynamics import save_trajectory

    stem = checkpoint.stem
    man = {"model": cfg.name, "family": "agent", "source": manifest["command"],
           "weights_sha256": store.sha256_file(checkpoint), "weights_note": "sha256 of the final checkpoint",
           "checkpoint": str(Path("assets/agents") / checkpoint.name), "pooling": POOLING, "layer": LAYER,
           "read": "core.agent.instruction_embeddings: eval mode, no grad, during training (train mode restored)",
           "schedule": "core.dynamics.snapshot_steps(steps) plus the quick-eval points (every eval_every steps)",
           "equals": {"first": f"untrained-{stem}", "last": stem},
           "success_protocol": (f"quick check of training: greedy policy, {cfg.eval_episodes} episodes per "
                                "instruction, env seeds episode_seed('eval', 1, i); NaN at steps where it did not "
                                "run (never interpolated)"),
           "final_success": manifest["success"]["overall"], "train_config": asdict(cfg),
           "training_time_s": manifest["training_time_s"], "torch_version": manifest["torch_version"]}
    return save_trajectory(cfg.name, cfg.seed, snaps["steps"], np.stack(snaps["embeddings"]), snaps["success"],
                           list(cfg.instructions()), man, directory=cfg.trajectory_dir())


# ---------------------------------------------------------------------------------------------- evaluation
def run_episodes(agent, jobs: Sequence[tuple[str, int]], env_config: EnvConfig | None = None,
                 max_envs: int = 1200, progress: bool = False, outcomes: list | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Run the greedy policy on (instruction, env_seed) jobs, batched over up to ``max_envs`` envs at once.

    Returns (success bool (n,), episode length (n,)); success is the environment's ``info['success']``.
    ``outcomes``: a list to fill with :func:`core.env.end_object` of each episode's last state, in job order.
    """
    from tqdm.auto import tqdm

    from .agent import START_ACTION
    from .instructions import preset

    env_config = env_config or EnvConfig(done_action=agent.config.done_action)
    grammar = preset(agent.config.grammar or "paper108")
    index = {t: i for i, t in enumerate(agent.config.instructions)}
    success, length = np.zeros(len(jobs), bool), np.zeros(len(jobs), np.int64)
    ends: list = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc="evaluate", unit="ep", disable=not progress)
    for lo in range(0, len(jobs), max_envs):
        chunk = list(range(lo, min(lo + max_envs, len(jobs))))
        envs = [make_env(jobs[j][0], jobs[j][1], env_config, grammar=grammar) for j in chunk]
        ids = np.array([index[jobs[j][0]] for j in chunk])
        prev = np.full(len(chunk), START_ACTION)
        active = list(range(len(chunk)))
        state = None  # a memory agent's state of the active envs, in `active` order
        while active:
            obs = [observe(envs[k]) for k in active]
            actions, _, _, state = agent.act(ids[active], np.stack([o["image"] for o in obs]),
                                             np.array([o["direction"] for o in obs]), prev[active], state=state)
            still, keep = [], []  # keep: positions (in `active`) of the envs still running
            for i, (k, a) in enumerate(zip(active, actions)):
                _, _, term, trunc, info = envs[k].step(int(a))
                prev[k] = a
                length[chunk[k]] += 1
                if term or trunc:
                    success[chunk[k]] = bool(info["success"])
                    if outcomes is not None:
                        ends[chunk[k]] = end_object(envs[k])
                    bar.update(1)
                else:
                    still.append(k)
                    keep.append(i)
            active = still
            if state is not None:
                state = state[keep]
    bar.close()
    if outcomes is not None:
        outcomes.extend(ends)
    return success, length


def evaluate(agent, episodes_per_instruction: int = 20, seed: int = 0, instructions: Sequence[str] | None = None,
             env_config: EnvConfig | None = None, progress: bool = True) -> pd.DataFrame:
    """Success per instruction of the greedy policy in fresh envs (seeds ``episode_seed('eval', seed, i)``).

    Returns a DataFrame with columns instruction, verb, determiner, colour, object, episodes, successes,
    success, mean_length (one row per instruction, in ``instruction_set()`` order).
    """
    from .instructions import DEFAULT_GRAMMAR, preset

    grammar = preset(agent.config.grammar or "paper108")
    items = list(instructions or instruction_set(grammar))
    jobs = [(items[i % len(items)], episode_seed("eval", seed, e))
            for e, i in enumerate(range(len(items) * episodes_per_instruction))]
    was = agent.training
    agent.eval()
    ok, length = run_episodes(agent, jobs, env_config, progress=progress)
    agent.train(was)
    df = pd.DataFrame({"instruction": [j[0] for j in jobs], "success": ok, "length": length})
    g = df.groupby("instruction", sort=False)
    table = pd.DataFrame({"episodes": g.size(), "successes": g.success.sum(), "success": g.success.mean(),
                          "mean_length": g.length.mean()}).reset_index()
    meta = metadata(items, grammar)
    if grammar is not DEFAULT_GRAMMAR:
        meta["form"] = [grammar.parse(t).form for t in items]
    return meta.merge(table, on="instruction")


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """Overall, per-verb, per-determiner, per-object and per-instruction success of an :func:`evaluate` table."""
    w = lambda col: {k: round(float(v.successes.sum() / v.episodes.sum()), 4)  # noqa: E731
                     for k, v in table.groupby(col, sort=False)}
    return {"overall": round(float(table.successes.sum() / table.episodes.sum()), 4),
            "episodes": int(table.episodes.sum()),
            "episodes_per_instruction": int(table.episodes.min()),
            "per_verb": w("verb"), "per_determiner": w("determiner"), "per_object": w("object"),
            "per_verb_object": {f"{v} {o}": round(float(g.successes.sum() / g.episodes.sum()), 4)
                                for (v, o), g in table.groupby(["verb", "object"], sort=False)},
            "per_instruction": {r.instruction: round(float(r.success), 4) for r in table.itertuples()},
            **({"per_form": w("form")} if "form" in table else {})}


# ---------------------------------------------------------------------------------------------- CLI
def _train_parser() -> argparse.ArgumentParser:
    from .agent import MEMORIES, WORD_INITS

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m core train", description="Train an ALM by behavioural cloning.")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--name", default=None, help="model name (default: alm, or alm-<variant> for ablations)")
    p.add_argument("--vision", choices=["symbolic", "resnet-hybrid"], default=d.vision)
    p.add_argument("--word-init", choices=list(WORD_INITS), default=d.word_init,
                   help="identity (the paper's one-hot) | identical | random | smollm2 | minilm | spacy (a language "
                        "model's static word vectors, PCA-projected, norm 1: core.word_init)")
    p.add_argument("--grammar", default="", metavar="PRESET",
                   help="instruction-set preset (python -m core instructions --grammar NAME); default paper108")
    p.add_argument("--holdout", default="", metavar="SPLIT",
                   help="drop the demos of this split's held-out instructions (python -m core splits)")
    p.add_argument("--done-action", action="store_true", help="done-mode env and demos (`done` required)")
    p.add_argument("--memory", choices=list(MEMORIES), default=d.memory,
                   help="gru: a recurrent state over the episode (needed by +sequence; E_L is unchanged by it)")
    p.add_argument("--resnet-weights", default=d.resnet_weights,
                   help="resnet-hybrid: imagenet (torchvision cache, never downloaded) | random | PATH.pth")
    p.add_argument("--demos", type=int, default=d.demos, help=f"expert episodes (default {d.demos})")
    p.add_argument("--demo-seed", type=int, default=d.demo_seed)
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch threads (default 1: robust when the cores are shared; 2 is faster on an idle machine)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device,
                   help="auto (default: CUDA when available) | cpu | cuda (an error where there is no CUDA)")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help="per instruction, quick check")
    p.add_argument("--final-episodes", type=int, default=d.final_episodes, help="per instruction, final")
    p.add_argument("--out", default="", help="checkpoint path (default assets/agents/<name>-s<seed>.pt)")
    p.add_argument("--resume", action="store_true", help="continue from cache/train/<name>-s<seed>.state.pt")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop after N steps (a multiple of --eval-every), leaving a state for --resume")
    p.add_argument("--record", action="store_true",
                   help="record E_L during training (core.dynamics.snapshot_steps) -> assets/trajectories/")
    p.add_argument("--no-progress", action="store_true")
    return p


def cli(argv: list[str]) -> int:
    stage = argv[0] if argv else "train"
    if stage == "evaluate":
        return _evaluate_cli(argv)
    args = _train_parser().parse_args(argv[1:])
    grammar = "" if args.grammar == "paper108" else args.grammar
    name = args.name or default_name(args.vision, args.word_init, args.done_action, args.holdout, grammar,
                                     args.memory)
    cfg = TrainConfig(seed=args.seed, name=name, vision=args.vision, word_init=args.word_init, holdout=args.holdout,
                      grammar=grammar, memory=args.memory,
                      done_action=args.done_action, resnet_weights=args.resnet_weights, demos=args.demos,
                      demo_seed=args.demo_seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      warmup=args.warmup, threads=args.threads, eval_every=args.eval_every,
                      eval_episodes=args.eval_episodes, final_episodes=args.final_episodes, out=args.out,
                      resume=args.resume, stop_after=args.stop_after, progress=not args.no_progress,
                      device=args.device, record=args.record)
    command = "python -m core " + " ".join(shlex.quote(a) for a in argv)
    from .device import DeviceError

    from .instructions import InstructionError
    from .splits import SplitError

    try:
        train(cfg, command=command)
    except (DeviceError, SplitError, InstructionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _evaluate_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core evaluate", description="Success rate of a trained agent "
                                "in fresh environments (seeds disjoint from the training demos).")
    p.add_argument("--agent", default=None, help="shipped name (alm-s0 ...) or checkpoint path")
    p.add_argument("--episodes-per-instruction", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="evaluation seed (episode_seed('eval', seed, i))")
    p.add_argument("--csv", default=None, help="write the per-instruction table here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto (default: CUDA when available) | cpu | cuda (an error where there is no CUDA)")
    args = p.parse_args(argv[1:])
    import torch

    from .agent import load_agent
    from .device import DeviceError, describe, resolve as resolve_device

    try:
        dev = resolve_device(args.device)
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    agent = load_agent(args.agent).to(dev)
    print(f"device: {describe(dev)}", file=sys.stderr)
    table = evaluate(agent, args.episodes_per_instruction, seed=args.seed)
    s = summarise(table)
    if args.csv:
        table.to_csv(args.csv, index=False)
    with pd.option_context("display.max_rows", 200, "display.width", 160):
        print(table.sort_values("success").head(15).to_string(index=False))
    print(f"\noverall success {s['overall']:.3f} over {s['episodes']} episodes; per verb {s['per_verb']}; "
          f"per object {s['per_object']}")
    return 0



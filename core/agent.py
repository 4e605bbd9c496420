"""The action-language model (ALM): an instruction-following agent whose language embedding E_L is shaped
only by behavioural cloning on BabyAI actions (Milano & Nolfi, arXiv 2601.22948).

Architecture (read top to bottom, :class:`ALM`):

1. **Language encoder.** Each instruction is tokenised into words of the closed vocabulary
   (``DEFAULT_GRAMMAR.vocabulary``, 17 words, id 0 = padding) and padded to the longest instruction (5).
   Word embeddings (``d_model`` = 128) are initialised by ``word_init``:
   ``identity`` (default, the paper's): word ``i`` starts as the one-hot vector ``e_i``, so every word is
   equidistant from every other and no prior similarity exists; ``identical``: every word starts as the same
   vector ``e_0``; ``random``: N(0, 1/d) rows (norm ~1, like the one-hot rows); ``smollm2`` / ``minilm`` /
   ``spacy``: a language model's static word vectors projected by PCA and rescaled to norm 1
   (:mod:`core.word_init`; the matrix is kept in ``AgentConfig.word_vectors``). All are trainable.
   Learned positional embeddings are added, then a pre-norm transformer encoder (2 layers, 4 heads) and a final
   LayerNorm give one state per token. **E_L = masked mean over the instruction's (non-padding) tokens of the
   language-encoder output** (128-d). E_L depends on the instruction only (:func:`instruction_embeddings`).
2. **Vision encoder** (``vision``), output = 49 visual tokens on the agent's 7x7 egocentric view:
   ``symbolic`` (ships): each cell's (object, colour, state) is embedded (sum of three embeddings) plus a 2-D
   position embedding; ``resnet-hybrid`` (the paper's): the view rendered to RGB (32 px per cell, 224x224), the
   stem and first 2 stages of a ResNet-18 (ImageNet weights) followed by 2 untrained ResNet-18 stages -> a
   7x7x512 map projected to 128. A context embedding (the agent's direction and its **previous action**,
   a cheap memory that breaks the loops of a memoryless policy) is added to every visual token, then a
   per-token residual MLP.
3. **Cross-modal integration.** ``n_xattn`` blocks in which the **language tokens are the queries** and the
   visual tokens the keys/values (pre-norm multi-head cross-attention + feed-forward, residual). The attention
   weights of the last block are returned by ``forward(..., return_attention=True)`` as
   (B, n_heads, n_tokens, 7, 7) in display orientation [row, col] (row 6, col 3 = the agent's own cell, the
   agent looks "up"), like :func:`core.env.frame_pov`; they sum to 1 over the 49 visual tokens.
4. **Memory** (``memory``, optional; off in every shipped paper108 agent). ``"gru"``: a GRU cell carries a
   128-d state across the steps of an episode, h_t = GRU(LayerNorm([pooled_t, context_t]), h_{t-1}), h_0 = 0,
   where pooled_t is the masked mean of the cross-attended language tokens at step t. The sequence forms of
   ``+sequence`` ("A, then B") need it: the view alone does not say whether A is done. The memory sits after the
   language encoder, so **E_L is unchanged by it**: it still depends on the instruction only. Training feeds
   whole episodes (:meth:`ALM.forward_episodes`); acting carries the state (:meth:`ALM.act`'s ``state``).
5. **Head.** The masked mean of the cross-attended language tokens, concatenated with E_L, the context
   embedding (and h_t for a memory agent), goes through a residual MLP to logits over the 7 BabyAI actions
   (left, right, forward, pickup, drop, toggle, done). ``done`` is masked (logit -inf) unless the agent was
   trained in done mode; every other action is left to the data.

Observations are given as minigrid gives them: ``images`` uint8 (B, 7, 7, 3) indexed [x, y], ``directions``
(B,), ``prev_actions`` (B,) with :data:`START_ACTION` (7) at an episode's first step.

Checkpoints (``*.pt``) are a dict {"format", "version", "agent_config", "state_dict", "manifest"}; names resolve
to ``assets/agents/<name>.pt`` with the manifest next to it as ``<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from . import store
from .env import ACTION_NAMES
from .instructions import DEFAULT_GRAMMAR, instruction_set, instruction_set_hash

CHECKPOINT_FORMAT = "alva-agent"
CHECKPOINT_VERSION = 1
DEFAULT_AGENT = "alm-s0"
START_ACTION = len(ACTION_NAMES)  # "previous action" token at an episode's first step (7)
DONE = ACTION_NAMES.index("done")
N_OBJECTS, N_COLOURS, N_STATES = 11, 6, 3  # minigrid OBJECT_IDX / COLOR_IDX / STATE ranges
VIEW = 7
WORD_INITS = ("identity", "identical", "random", "smollm2", "minilm", "spacy")
LM_WORD_INITS = WORD_INITS[3:]  # initialised from a language model (core.word_init): need `word_vectors`
VISIONS = ("symbolic", "resnet-hybrid")
MEMORIES = ("", "gru")  # "" = none (the paper's agent: a step-wise policy with the previous action as context)
POOLING = "masked mean over instruction tokens of the language encoder output (after its final LayerNorm)"
LAYER = "language encoder output (2-layer pre-norm transformer + final LayerNorm), before cross-attention"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match this code / instruction set."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything that defines the network (stored in every checkpoint)."""

    vision: str = "symbolic"  # "symbolic" | "resnet-hybrid"
    word_init: str = "identity"  # "identity" | "identical" | "random" | "smollm2" | "minilm" | "spacy"
    done_action: bool = False  # trained for the done-action env (otherwise `done` is masked)
    prev_action: bool = True  # feed the previous action (a cheap memory); False = memoryless policy
    memory: str = ""  # "" (none) | "gru": a recurrent state over the episode's steps (module docstring, 4.)
    vision_pos_std: float = 1.0  # init std of the 7x7 position embeddings (same scale as the cell embeddings)
    d_model: int = 128
    n_heads: int = 4
    lang_layers: int = 2
    lang_ff: int = 512
    n_xattn: int = 2
    head_hidden: int = 256
    resnet_weights: str = "imagenet"  # resnet-hybrid only: "imagenet" | "random" | path to a .pth state dict
    rgb_tile: int = 32  # resnet-hybrid only: pixels per cell (7 x 32 = 224)
    vocabulary: tuple[str, ...] = DEFAULT_GRAMMAR.vocabulary
    instructions: tuple[str, ...] = field(default_factory=lambda: tuple(instruction_set()))
    grammar: str = ""  # instruction-set preset (core.instructions.presets); "" = paper108
    #: LM word inits only: the (n_words, d_model) initial word vectors (core.word_init.lm_word_init), kept here so
    #: that a checkpoint rebuilds its init without the language model's weights
    word_vectors: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.vision not in VISIONS:
            raise ValueError(f"vision must be one of {VISIONS}, got {self.vision!r}")
        if self.word_init not in WORD_INITS:
            raise ValueError(f"word_init must be one of {WORD_INITS}, got {self.word_init!r}")
        if self.memory not in MEMORIES:
            raise ValueError(f"memory must be one of {MEMORIES} ('' = none), got {self.memory!r}")
        if len(self.vocabulary) + 1 > self.d_model and self.word_init == "identity":
            raise ValueError("identity word init needs d_model >= vocabulary size + 1")
        object.__setattr__(self, "vocabulary", tuple(self.vocabulary))
        object.__setattr__(self, "instructions", tuple(self.instructions))
        object.__setattr__(self, "word_vectors", tuple(tuple(float(x) for x in r) for r in self.word_vectors))
        if self.word_init in LM_WORD_INITS:
            shape = (len(self.word_vectors), len(self.word_vectors[0]) if self.word_vectors else 0)
            if shape != (len(self.vocabulary), self.d_model):
                raise ValueError(f"word_init {self.word_init!r} needs word_vectors of shape "
                                 f"({len(self.vocabulary)}, {self.d_model}) (core.word_init.lm_word_init), got {shape}")
        elif self.word_vectors:
            raise ValueError(f"word_vectors are only used by the LM word inits {LM_WORD_INITS}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vocabulary"], d["instructions"] = list(self.vocabulary), list(self.instructions)
        d["word_vectors"] = [list(r) for r in self.word_vectors]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AgentConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"checkpoint agent_config has unknown keys {sorted(unknown)} "
                                  "(saved by a different version of core/agent.py?)")
        return cls(**d)


def tokenize(instructions: Sequence[str], vocabulary: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids (n, L) with 0 = padding (word i of the vocabulary -> i + 1) and the validity mask (n, L)."""
    from .instructions import words

    index = {w: i + 1 for i, w in enumerate(vocabulary)}
    rows = [[index[w] for w in words(text)] for text in instructions]
    L = max(map(len, rows))
    ids = torch.zeros(len(rows), L, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids, ids != 0


# ---------------------------------------------------------------------------------------------- modules
class ResidualMLP(nn.Module):
    """x + W2 relu(W1 LN(x))."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SymbolicVision(nn.Module):
    """7x7x3 symbolic grid -> 49 tokens: object + colour + state embeddings + 2-D position."""

    def __init__(self, d: int, pos_std: float = 1.0):
        super().__init__()
        self.obj = nn.Embedding(N_OBJECTS, d)
        self.col = nn.Embedding(N_COLOURS, d)
        self.state = nn.Embedding(N_STATES, d)
        self.pos = nn.Parameter(torch.randn(VIEW * VIEW, d) * pos_std)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:  # grid: long (B, 7[row], 7[col], 3)
        g = grid.reshape(grid.shape[0], VIEW * VIEW, 3)
        return self.obj(g[..., 0]) + self.col(g[..., 1]) + self.state(g[..., 2]) + self.pos


def _resnet18_state(weights: str) -> tuple[dict | None, str]:
    """ResNet-18 ImageNet weights: the torchvision cache or a .pth file; never downloads."""
    if weights == "random":
        return None, "random (explicitly chosen: no ImageNet weights)"
    if weights == "imagenet":
        try:
            from torchvision.models import ResNet18_Weights
        except ImportError as e:  # pragma: no cover
            raise RuntimeError("resnet-hybrid needs torchvision (pip install torchvision)") from e
        url = ResNet18_Weights.IMAGENET1K_V1.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if not cached.exists():
            raise RuntimeError(
                f"resnet-hybrid needs ImageNet ResNet-18 weights, not found at {cached} (this machine cannot "
                "download them). Put the file there, pass --resnet-weights PATH/TO/resnet18.pth, or choose "
                "--resnet-weights random explicitly (the manifest records it).")
        path = cached
    else:
        path = Path(weights)
        if not path.exists():
            raise RuntimeError(f"--resnet-weights {weights!r}: no such file")
    return torch.load(path, map_location="cpu", weights_only=True), f"{weights} ({path.name})"


class ResNetHybridVision(nn.Module):
    """RGB view (224x224) -> ResNet-18 stem+layer1+layer2 (ImageNet) -> layer3+layer4 (untrained) -> 7x7 tokens."""

    def __init__(self, d: int, weights: str, tile: int, pos_std: float = 1.0):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        state, self.weights_source = _resnet18_state(weights)
        if state is not None:  # ImageNet weights for the stem and the first 2 stages only
            keep = {k: v for k, v in state.items() if k.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")}
            missing = [k for k in net.state_dict() if k.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")
                       and k not in keep]
            if missing:
                raise RuntimeError(f"ResNet-18 weights lack {missing[:3]}")
            net.load_state_dict(keep, strict=False)  # layer3/layer4 stay untrained (the paper's hybrid)
        self.pretrained = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
        self.untrained = nn.Sequential(net.layer3, net.layer4)
        self.proj = nn.Linear(512, d)
        self.pos = nn.Parameter(torch.randn(VIEW * VIEW, d) * pos_std)
        self.tile = tile
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:  # grid: long (B, 7[row], 7[col], 3)
        rgb = torch.from_numpy(render_views(grid.cpu().numpy(), self.tile)).to(grid.device)
        x = (rgb.permute(0, 3, 1, 2).float() / 255 - self.mean) / self.std
        fmap = self.untrained(self.pretrained(x))  # (B, 512, 7, 7) for 224x224 input
        if fmap.shape[-2:] != (VIEW, VIEW):
            raise RuntimeError(f"resnet-hybrid expects a {VIEW}x{VIEW} map, got {tuple(fmap.shape[-2:])}")
        return self.proj(fmap.flatten(2).transpose(1, 2)) + self.pos


def render_views(grid_rc: np.ndarray, tile: int) -> np.ndarray:
    """RGB renderings (B, 7*tile, 7*tile, 3) of symbolic views given in [row, col] order (agent at row 6, col 3,
    looking up), as minigrid's ``get_pov_render`` draws them."""
    from minigrid.core.grid import Grid

    out = []
    for g in grid_rc:
        img = np.ascontiguousarray(g.transpose(1, 0, 2)).astype(np.uint8)  # back to minigrid's [x, y]
        grid, vis = Grid.decode(img)
        out.append(grid.render(tile, agent_pos=(VIEW // 2, VIEW - 1), agent_dir=3, highlight_mask=vis))
    return np.stack(out)


class GRUMemory(nn.Module):
    """h_t = GRUCell(LayerNorm(x_t), h_{t-1}): the norm keeps the gates out of saturation (the pooled language
    state has a norm of ~16 at init, which saturated a bare GRU cell: its state stopped carrying anything)."""

    def __init__(self, d_in: int, d: int):
        super().__init__()
        self.norm, self.cell = nn.LayerNorm(d_in), nn.GRUCell(d_in, d)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(self.norm(x), h)


class CrossBlock(nn.Module):
    """Language tokens (queries) attend to visual tokens (keys/values); pre-norm, residual, then FF."""

    def __init__(self, d: int, n_heads: int, ff: int):
        super().__init__()
        self.ln_q, self.ln_kv = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.ff = ResidualMLP(d, ff)

    def forward(self, q, kv, need_weights: bool = False):
        kv = self.ln_kv(kv)
        out, w = self.attn(self.ln_q(q), kv, kv, need_weights=need_weights, average_attn_weights=False)
        return self.ff(q + out), w  # w: (B, heads, Lq, 49) or None


class ALM(nn.Module):
    """The action-language model. See the module docstring."""

    def __init__(self, config: AgentConfig):
        super().__init__()
        self.config = c = config
        d = c.d_model
        ids, mask = tokenize(c.instructions, c.vocabulary)
        self.register_buffer("token_ids", ids, persistent=False)  # (n_instructions, L)
        self.register_buffer("token_mask", mask, persistent=False)
        L = ids.shape[1]
        # 1. language
        self.words = nn.Embedding(len(c.vocabulary) + 1, d, padding_idx=0)
        self.lang_pos = nn.Parameter(torch.randn(L, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, c.n_heads, c.lang_ff, dropout=0.0, batch_first=True, norm_first=True)
        self.lang = nn.TransformerEncoder(layer, c.lang_layers, enable_nested_tensor=False)
        self.lang_norm = nn.LayerNorm(d)
        # 2. vision + context (direction, previous action)
        self.vision = (SymbolicVision(d, c.vision_pos_std) if c.vision == "symbolic" else
                       ResNetHybridVision(d, c.resnet_weights, c.rgb_tile, c.vision_pos_std))
        self.direction = nn.Embedding(4, d)
        self.prev_action = nn.Embedding(len(ACTION_NAMES) + 1, d)
        self.vision_mlp = ResidualMLP(d, d)
        # 3. cross-modal integration
        self.cross = nn.ModuleList(CrossBlock(d, c.n_heads, 2 * d) for _ in range(c.n_xattn))
        # 4. head
        h = c.head_hidden
        self.head = nn.Sequential(nn.Linear((4 if c.memory else 3) * d, h), ResidualMLP(h, 2 * h),
                                  ResidualMLP(h, 2 * h), nn.LayerNorm(h), nn.Linear(h, len(ACTION_NAMES)))
        self.register_buffer("action_mask", torch.tensor(
            [0.0] * DONE + [0.0 if c.done_action else -math.inf]), persistent=False)
        self._init_words()
        # 5. memory (built last, so a memoryless agent's initialisation is exactly what it was before memory existed)
        self.memory = GRUMemory(2 * d, d) if c.memory == "gru" else None

    def _init_words(self) -> None:
        n, d = self.words.weight.shape
        with torch.no_grad():
            w = torch.zeros(n, d)
            if self.config.word_init == "identity":
                w[1:, : n - 1] = torch.eye(n - 1)  # word i (id i+1) = e_i; padding row stays 0
            elif self.config.word_init == "identical":
                w[1:, 0] = 1.0
            elif self.config.word_init in LM_WORD_INITS:
                w[1:] = torch.tensor(self.config.word_vectors, dtype=torch.float32)
            else:
                w[1:] = torch.randn(n - 1, d) / math.sqrt(d)
            self.words.weight.copy_(w)

    # -- language -----------------------------------------------------------------------------------
    def encode_language(self, instr_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """instr_ids (B,) indices into ``config.instructions`` -> (token states (B,L,d), mask (B,L), E_L (B,d))."""
        ids, mask = self.token_ids[instr_ids], self.token_mask[instr_ids]
        x = self.words(ids) + self.lang_pos
        x = self.lang_norm(self.lang(x, src_key_padding_mask=~mask))
        m = mask.unsqueeze(-1).float()
        return x, mask, (x * m).sum(1) / m.sum(1)

    # -- full policy --------------------------------------------------------------------------------
    def _features(self, instr_ids, images, directions, prev_actions, return_attention: bool = False):
        """Per step, no memory: (pooled cross-attended language (B, d), E_L (B, d), context (B, d), attention)."""
        # language: encode each distinct instruction of the batch once
        uniq, inverse = torch.unique(instr_ids, return_inverse=True)
        tok_u, mask_u, el_u = self.encode_language(uniq)
        tok, mask, e_l = tok_u[inverse], mask_u[inverse], el_u[inverse]
        # vision: minigrid's [x, y] -> display [row, col]
        grid = images.transpose(1, 2).long()
        if not self.config.prev_action:
            prev_actions = torch.full_like(prev_actions, START_ACTION)
        ctx = self.direction(directions.long()) + self.prev_action(prev_actions.long())
        vis = self.vision_mlp(self.vision(grid) + ctx.unsqueeze(1))
        # cross-attention: language queries, visual keys/values
        q, w = tok, None
        for i, block in enumerate(self.cross):
            q, w = block(q, vis, need_weights=return_attention and i == len(self.cross) - 1)
        m = mask.unsqueeze(-1).float()
        pooled = (q * m).sum(1) / m.sum(1)
        return pooled, e_l, ctx, w

    def _head(self, pooled, e_l, ctx, h=None):
        x = [pooled, e_l, ctx] + ([h] if h is not None else [])
        return self.head(torch.cat(x, -1)) + self.action_mask

    def forward(self, instr_ids, images, directions, prev_actions, return_attention: bool = False):
        """Action logits (B, 7) [and last-block attention (B, heads, L, 7, 7)] of a memoryless agent, one step per
        row. A memory agent has no step-wise forward without its state: use :meth:`step` or
        :meth:`forward_episodes`."""
        if self.memory is not None:
            raise ValueError("a memory agent needs its recurrent state: use step(..., state) or forward_episodes()")
        logits, _, w = self.step(instr_ids, images, directions, prev_actions, return_attention=return_attention)
        return (logits, w) if return_attention else logits

    def step(self, instr_ids, images, directions, prev_actions, state=None, return_attention: bool = False):
        """One step of every row: (logits (B, 7), new state (B, d) or None, attention (B, heads, L, 7, 7) or None).

        ``state``: the memory's h_{t-1} (B, d); None = zeros (an episode's first step). Memoryless agents return
        state None."""
        pooled, e_l, ctx, w = self._features(instr_ids, images, directions, prev_actions, return_attention)
        h = None
        if self.memory is not None:
            if state is None:
                state = pooled.new_zeros(pooled.shape[0], self.config.d_model)
            h = self.memory(torch.cat([pooled, ctx], -1), state)
        logits = self._head(pooled, e_l, ctx, h)
        return logits, h, (w.reshape(*w.shape[:3], VIEW, VIEW) if return_attention else None)

    def forward_episodes(self, instr_ids, images, directions, prev_actions, mask):
        """Logits (B, T, 7) of B padded episodes of up to T steps: ``images`` (B, T, 7, 7, 3), ``directions`` /
        ``prev_actions`` / ``mask`` (B, T), ``instr_ids`` (B,). ``mask`` marks real steps; an episode's steps come
        first. The step features run on all real steps at once; only the memory runs step after step (from
        h_0 = 0). Rows at padded steps are 0. Equal to calling :meth:`step` step by step (tests/test_memory.py)."""
        B, T = mask.shape
        flat = mask.reshape(-1).nonzero().squeeze(1)
        rows = instr_ids.repeat_interleave(T)[flat]
        pooled, e_l, ctx, _ = self._features(rows, images.reshape(B * T, *images.shape[2:])[flat],
                                             directions.reshape(-1)[flat], prev_actions.reshape(-1)[flat])
        h_all = None
        if self.memory is not None:
            d = self.config.d_model
            x = pooled.new_zeros(B * T, 2 * d).index_copy(0, flat, torch.cat([pooled, ctx], -1)).reshape(B, T, 2 * d)
            h, hs = pooled.new_zeros(B, d), []
            for t in range(T):  # padded steps come after an episode's end: what they compute is never read
                h = self.memory(x[:, t], h)
                hs.append(h)
            h_all = torch.stack(hs, 1).reshape(B * T, d)[flat]
        logits = self._head(pooled, e_l, ctx, h_all)
        return logits.new_zeros(B * T, logits.shape[-1]).index_copy(0, flat, logits).reshape(B, T, -1)

    @torch.no_grad()
    def act(self, instr_ids, images, directions, prev_actions, state=None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor | None]:
        """Greedy actions (B,), action probabilities (B, 7), attention (B, heads, L, 7, 7) and the memory's new
        state (B, d) (None for a memoryless agent) from numpy inputs; ``state`` is the previous one (None at an
        episode's first step).

        Inputs go to the agent's device; outputs come back as CPU numpy arrays (the state stays a tensor)."""
        dev = self.token_ids.device
        t = lambda a: torch.as_tensor(np.asarray(a)).to(dev)  # noqa: E731
        logits, h, w = self.step(t(instr_ids).long(), t(images), t(directions), t(prev_actions), state=state,
                                 return_attention=True)
        probs = torch.softmax(logits, -1).cpu()
        return probs.argmax(-1).numpy(), probs.numpy(), w.cpu().numpy(), h


def build_agent(config: AgentConfig, seed: int) -> ALM:
    """A freshly initialised agent: ``torch.manual_seed(seed)`` then construction (the ONE init path, used by
    training and by the untrained-agent control, so both give the same step-0 network)."""
    torch.manual_seed(int(seed))
    return ALM(config)


# ---------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(agent: ALM, path: str | Path, manifest: dict[str, Any]) -> Path:
    """``path`` (.pt, float32 weights, atomic) and ``path.with_suffix('.json')`` (the manifest)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(manifest, default=str))  # plain types only: loadable with weights_only
    blob = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "agent_config": agent.config.as_dict(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in agent.state_dict().items()},
            "manifest": manifest}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    store.write_json(path.with_suffix(".json"), manifest)
    return path


def checkpoint_dirs() -> list[Path]:
    """Where shipped checkpoints live, searched in order (:func:`core.store.agent_dirs`)."""
    return store.agent_dirs()


def shipped_checkpoints() -> dict[str, Path]:
    """{name: path} of every shipped checkpoint (:func:`checkpoint_dirs`; the first directory wins a clash)."""
    out: dict[str, Path] = {}
    for d in checkpoint_dirs():
        for p in sorted(d.glob("*.pt")):
            out.setdefault(p.stem, p)
    return out


def resolve(path_or_name: str | Path | None = None) -> Path:
    """A checkpoint path: an existing file, or a shipped name (``<checkpoint_dirs()>/<name>.pt``)."""
    p = Path(str(path_or_name or DEFAULT_AGENT))
    if p.suffix == ".pt" or p.exists() or "/" in str(path_or_name or ""):
        return p
    return shipped_checkpoints().get(p.name, store.assets_dir() / "agents" / f"{p.name}.pt")


def trained_on(manifest: dict[str, Any], instruction: str) -> bool:
    """Whether the agent of this training manifest had demos of ``instruction``: False for the held-out
    instructions of its split (``manifest['holdout']``) and for instructions outside its ``verbs`` subset."""
    held = set((manifest.get("holdout") or {}).get("instructions", []))
    verbs = tuple((manifest.get("train_config") or {}).get("verbs") or ())
    if instruction in held:
        return False
    return not verbs or any(instruction.startswith(v + " ") for v in verbs)


def load_agent(path_or_name: str | Path | None = None) -> ALM:
    """Load a trained agent (default: the shipped ``alm-s0``) in eval mode; manifest in ``agent.manifest``.

    Raises :class:`CheckpointError` for a missing, corrupt or mismatched checkpoint.
    """
    path = resolve(path_or_name)
    if not path.exists():
        shipped = sorted(shipped_checkpoints())
        raise CheckpointError(f"no agent checkpoint {path}; shipped agents: {shipped or 'none'} "
                              "(train one with `python -m core train --seed 0`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"corrupt agent checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an ALVA agent checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    if blob.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint version {blob.get('version')}, this code reads "
                              f"{CHECKPOINT_VERSION}")
    config = AgentConfig.from_dict(blob["agent_config"])
    from .instructions import InstructionError, preset

    try:
        grammar = preset(config.grammar or "paper108")
    except InstructionError as e:
        raise CheckpointError(f"{path}: {e}") from None
    want = instruction_set(grammar)
    verbs = tuple(((blob.get("manifest") or {}).get("train_config") or {}).get("verbs") or ())
    if verbs:  # trained on the instructions with these verbs only (TrainConfig.verbs)
        want = [t for t in want if grammar.parse(t).verb in verbs]
    if list(config.instructions) != want or tuple(config.vocabulary) != grammar.vocabulary:
        raise CheckpointError(f"{path} was trained on a different instruction set / vocabulary "
                              f"(hash {instruction_set_hash(config.instructions)} vs {instruction_set_hash(want)} of "
                              f"{config.grammar or 'paper108'})")
    try:
        if config.vision == "resnet-hybrid":  # weights come from the checkpoint: never need ImageNet here
            config = AgentConfig(**{**config.as_dict(), "resnet_weights": "random"})
        agent = ALM(config)
        agent.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match this agent architecture: {e}") from None
    agent.config = AgentConfig.from_dict(blob["agent_config"])
    agent.manifest = blob.get("manifest", {})
    agent.checkpoint_path = path
    return agent.eval()


# ---------------------------------------------------------------------------------------------- embeddings
@torch.no_grad()
def instruction_embeddings(agent: ALM, instructions: Sequence[str] | None = None) -> np.ndarray:
    """E_L of every instruction (default: the 108 in ``instruction_set()`` order) -> float32 (n, 128)."""
    items = list(instructions or instruction_set())
    index = {t: i for i, t in enumerate(agent.config.instructions)}
    missing = [t for t in items if t not in index]
    if missing:
        raise KeyError(f"instructions unknown to this agent: {missing[:3]}")
    was = agent.training
    agent.eval()
    _, _, e_l = agent.encode_language(torch.tensor([index[t] for t in items], device=agent.token_ids.device))
    agent.train(was)
    return e_l.cpu().numpy().astype(np.float32)


def untrained_agent(path_or_name: str | Path | None = None) -> ALM:
    """The same architecture/config/seed as a trained checkpoint, at initialisation (zero training steps)."""
    trained = load_agent(path_or_name)
    seed = trained.manifest.get("seed")
    if seed is None:
        raise CheckpointError(f"{trained.checkpoint_path} manifest has no seed")
    return build_agent(trained.config, int(seed)).eval()


def agent_embeddings(path_or_name: str | Path | None = None, untrained: bool = False,
                     device: str = "auto") -> tuple[str, np.ndarray, dict[str, Any]]:
    """A checkpoint's E_L (or its untrained twin's) -> (file stem ``<model>-s<seed>``, float32 (108, d), manifest).

    Computes only (nothing is written): :func:`ship_embeddings` and the sweep's driver write the files.
    ``device``: ``auto|cpu|cuda`` (:mod:`core.device`); the checkpoint loads on the CPU and is moved there."""
    from .device import describe, resolve as resolve_device

    dev = resolve_device(device)
    agent = load_agent(path_or_name)
    man = agent.manifest
    model = man.get("name", agent.checkpoint_path.stem.rsplit("-s", 1)[0])
    seed = int(man["seed"])
    net = untrained_agent(agent.checkpoint_path) if untrained else agent
    name = ("untrained-" + model) if untrained else model
    E = instruction_embeddings(net.to(dev))
    train_cmd = man.get("command", "python -m core train")
    manifest = {
        "model": name, "family": "agent", "seed": seed,
        "source": (f"python -m core embed-agent --agent {agent.checkpoint_path.stem} --ship --untrained: the "
                   f"network of `{train_cmd}` at initialisation (same architecture, config, init and seed, zero "
                   "training steps; core.agent.untrained_agent)") if untrained else train_cmd,
        "weights_sha256": store.sha256_file(agent.checkpoint_path),
        "weights_note": ("sha256 of the trained checkpoint whose config+seed define this untrained network"
                         if untrained else "sha256 of the checkpoint"),
        "checkpoint": str(Path("assets/agents") / agent.checkpoint_path.name),
        "pooling": POOLING, "layer": LAYER, "dtype": "float32",
        "agent_config": {k: v for k, v in agent.config.as_dict().items() if k not in ("instructions", "word_vectors")},
        "success": None if untrained else man.get("success", {}).get("overall"),
        "trained_success": man.get("success", {}).get("overall"),
        "optimizer_steps": 0 if untrained else man.get("optimizer_steps"),
        "torch_version": torch.__version__, **describe(dev),
    }
    return store.embedding_file_name(name, seed), E, manifest


def ship_embeddings(path_or_name: str | Path | None = None, untrained: bool = False, device: str = "auto") -> Path:
    """Write ``assets/embeddings/<model>-s<seed>`` for a trained checkpoint (or its untrained twin)."""
    stem, E, manifest = agent_embeddings(path_or_name, untrained, device)
    return store.save_embeddings(stem, E, instruction_set(), manifest)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core embed-agent",
                                description="Print or ship an agent's 108 x 128 instruction embeddings E_L.")
    p.add_argument("--agent", default=DEFAULT_AGENT, help="shipped name (alm-s0 ...) or checkpoint path")
    p.add_argument("--ship", action="store_true", help="write assets/embeddings/<model>-s<seed>.npz/.json")
    p.add_argument("--untrained", action="store_true",
                   help="the agent's architecture/config/seed at initialisation (zero training steps)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (default: CUDA when available) | cpu | cuda (an error where there is no CUDA)")
    args = p.parse_args(argv[1:])
    from .device import DeviceError

    try:
        if args.ship:
            print(ship_embeddings(args.agent, untrained=args.untrained, device=args.device))
            return 0
        _, E, _ = agent_embeddings(args.agent, untrained=args.untrained, device=args.device)
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"agent": str(resolve(args.agent)), "shape": list(E.shape), "norm_mean":
                      float(np.linalg.norm(E, axis=1).mean())}))
    return 0

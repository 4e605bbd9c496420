"""The agent's optional memory (AgentConfig.memory = "gru", needed by the +sequence forms): E_L is unchanged by
it, training on whole episodes equals acting step by step, the state carries what the view no longer shows, and a
memory agent trains, saves, loads, evaluates and rolls out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.agent import START_ACTION, AgentConfig, build_agent, instruction_embeddings, load_agent
from core.rollout import rollout
from core.train import TrainConfig, default_name, episode_batch, evaluate, train

SMALL = dict(d_model=32, lang_ff=64, head_hidden=32)


def _episodes(B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 6, (B, T, 7, 7, 3), generator=g).to(torch.uint8)
    images[..., 2] %= 3  # minigrid's state channel: open / closed / locked
    directions = torch.randint(0, 4, (B, T), generator=g)
    prev = torch.randint(0, 7, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    return torch.randint(0, 108, (B,), generator=g), images, directions, prev, mask


def test_memory_leaves_the_language_pathway_and_e_l_unchanged():
    plain = build_agent(AgentConfig(**SMALL), seed=3)
    mem = build_agent(AgentConfig(**SMALL, memory="gru"), seed=3)
    assert np.array_equal(instruction_embeddings(plain), instruction_embeddings(mem))
    names = {n for n, _ in mem.named_parameters()} - {n for n, _ in plain.named_parameters()}
    assert names and all(n.startswith("memory.") for n in names)
    with pytest.raises(ValueError, match="memory must be one of"):
        AgentConfig(memory="lstm")


def test_forward_episodes_equals_acting_step_by_step():
    torch.manual_seed(0)
    for memory in ("", "gru"):
        agent = build_agent(AgentConfig(**SMALL, memory=memory), seed=1).eval()
        ids, images, dirs, prev, mask = _episodes(B=5, T=6)
        with torch.no_grad():
            batched = agent.forward_episodes(ids, images, dirs, prev, mask)
            state = None
            for t in range(mask.shape[1]):
                logits, state, _ = agent.step(ids, images[:, t], dirs[:, t], prev[:, t], state=state)
                m = mask[:, t]
                assert torch.allclose(batched[m, t], logits[m], atol=1e-5), (memory, t)
                assert (batched[~m, t] == 0).all()
        assert (state is None) == (memory == "")


def test_memory_carries_what_the_view_no_longer_shows():
    """Two episodes that differ only in their first view: a memory agent's later logits differ, a memoryless
    agent's do not."""
    ids, images, dirs, prev, _ = _episodes(B=1, T=3, seed=1)
    other = images.clone()
    other[0, 0, ..., 0] = (other[0, 0, ..., 0] + 1) % 6
    for memory, differs in (("", False), ("gru", True)):
        agent = build_agent(AgentConfig(**SMALL, memory=memory), seed=0).eval()
        mask = torch.ones(1, 3, dtype=torch.bool)
        with torch.no_grad():
            a = agent.forward_episodes(ids, images, dirs, prev, mask)
            b = agent.forward_episodes(ids, other, dirs, prev, mask)
        assert (not torch.allclose(a[0, 2], b[0, 2])) == differs, memory


def test_a_memory_agent_learns_a_task_that_needs_memory_and_a_memoryless_one_cannot():
    """Step 0 shows a ball or a key in one cell; step 1 shows an empty view. The right action at step 1 is
    pickup after a ball, drop after a key: no input at step 1 says which (no previous action either)."""
    B, T = 16, 2
    bit = torch.arange(B) % 2
    images = torch.zeros(B, T, 7, 7, 3, dtype=torch.uint8)
    images[..., 0] = 1  # empty cells
    images[:, 0, 3, 3, 0] = torch.where(bit == 1, 6, 5)  # minigrid: 6 ball, 5 key
    dirs = torch.zeros(B, T, dtype=torch.long)
    prev = torch.full((B, T), START_ACTION)
    mask = torch.ones(B, T, dtype=torch.bool)
    ids = torch.zeros(B, dtype=torch.long)
    target = torch.zeros(B, T, dtype=torch.long)
    target[:, 1] = torch.where(bit == 1, 3, 4)
    acc = {}
    for memory in ("", "gru"):
        agent = build_agent(AgentConfig(**SMALL, memory=memory, prev_action=False), seed=0)
        opt = torch.optim.Adam(agent.parameters(), lr=3e-3)
        for _ in range(250):  # the memory agent gets there at ~150 steps
            loss = F.cross_entropy(agent.forward_episodes(ids, images, dirs, prev, mask)[mask], target[mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = agent.eval().forward_episodes(ids, images, dirs, prev, mask).argmax(-1)
        acc[memory] = float((pred[:, 1] == target[:, 1]).float().mean())
    assert acc["gru"] == 1.0 and acc[""] <= 0.5 + 1e-6, acc


def test_episode_batch_pads_with_each_episodes_last_step():
    starts, lengths = torch.tensor([0, 3, 4]), torch.tensor([3, 1, 5])
    at, mask = episode_batch(starts, lengths, torch.tensor([2, 0, 1]))
    assert at.tolist() == [[4, 5, 6, 7, 8], [0, 1, 2, 2, 2], [3, 3, 3, 3, 3]]
    assert mask.sum(1).tolist() == [5, 3, 1]


@pytest.fixture(scope="module")
def tiny_memory_agent(tmp_path_factory):
    d = tmp_path_factory.mktemp("memory")
    cfg = TrainConfig(memory="gru", demos=216, **SMALL, batch_size=64, lr=3e-3, warmup=5, steps=20, eval_every=10,
                      eval_episodes=1, final_episodes=1, threads=1, progress=False, out=str(d / "gru-s0.pt"),
                      name=default_name(memory="gru"))
    return cfg, train(cfg)


def test_a_memory_agent_trains_on_whole_episodes_and_round_trips(tiny_memory_agent):
    cfg, agent = tiny_memory_agent
    m = agent.manifest
    assert m["name"] == "alm-gru" and m["agent_config"]["memory"] == "gru"
    assert m["episodes_per_batch"] >= 1 and m["samples_seen"] > 0
    assert abs(m["samples_seen"] / cfg.steps - cfg.batch_size) < cfg.batch_size  # about batch_size steps a batch
    back = load_agent(cfg.out)
    assert back.config.memory == "gru"
    assert np.array_equal(instruction_embeddings(back), instruction_embeddings(agent))
    ep = rollout(back, "go to the red ball", env_seed=5)
    assert ep.length == len(ep.actions) >= 1
    table = evaluate(back, episodes_per_instruction=1, seed=0, instructions=["go to the red ball", "open a red door"],
                     progress=False)
    assert len(table) == 2 and table.episodes.sum() == 2


def test_a_memory_agent_refuses_the_stateless_forward(tiny_memory_agent):
    _, agent = tiny_memory_agent
    ids, images, dirs, prev, _ = _episodes(B=2, T=1)
    with pytest.raises(ValueError, match="recurrent state"):
        agent(ids, images[:, 0], dirs[:, 0], prev[:, 0])

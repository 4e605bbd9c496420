"""The ALM network: word init, E_L, attention, checkpoints, rollout, resnet-hybrid wiring."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.agent import (ALM, AgentConfig, CheckpointError, build_agent, instruction_embeddings, load_agent,
                        render_views, save_checkpoint, untrained_agent)
from core.env import ACTION_NAMES, frame_pov, make_env, observe
from core.instructions import DEFAULT_GRAMMAR, instruction_set

V = len(DEFAULT_GRAMMAR.vocabulary)  # 17


def _batch(n=6, seed=0):
    """Real observations from a few envs (minigrid [x, y] images)."""
    items = instruction_set()
    obs = [observe(make_env(items[i * 17 % 108], 100 + i)) for i in range(n)]
    ids = torch.tensor([i * 17 % 108 for i in range(n)])
    imgs = torch.from_numpy(np.stack([o["image"] for o in obs]))
    dirs = torch.tensor([int(o["direction"]) for o in obs])
    prev = torch.tensor([7, 0, 1, 2, 3, 5][:n] + [7] * max(0, n - 6))
    return ids, imgs, dirs, prev


def test_identity_init_is_one_hot_at_step_0():
    agent = build_agent(AgentConfig(), seed=3)
    W = agent.words.weight.detach()
    assert W.shape == (V + 1, 128)
    assert torch.equal(W[0], torch.zeros(128))  # padding
    assert torch.equal(W[1:, :V], torch.eye(V)) and torch.equal(W[1:, V:], torch.zeros(V, 128 - V))
    d = torch.cdist(W[1:], W[1:])
    off = d[~torch.eye(V, dtype=bool)]
    assert torch.allclose(off, torch.full_like(off, 2 ** 0.5))  # every word equidistant from every other


def test_other_word_inits():
    W = build_agent(AgentConfig(word_init="identical"), 0).words.weight.detach()[1:]
    assert torch.equal(W, W[:1].expand_as(W)) and float(W[0].norm()) == 1.0
    W = build_agent(AgentConfig(word_init="random"), 0).words.weight.detach()[1:]
    assert torch.linalg.matrix_rank(W) == V and 0.7 < float(W.norm(dim=1).mean()) < 1.3
    with pytest.raises(ValueError, match="word_init"):
        AgentConfig(word_init="glove")


def test_language_embedding_shape_and_determinism():
    a, b, c = (build_agent(AgentConfig(), s) for s in (0, 0, 1))
    Ea, Eb, Ec = instruction_embeddings(a), instruction_embeddings(b), instruction_embeddings(c)
    assert Ea.shape == (108, 128) and Ea.dtype == np.float32 and np.isfinite(Ea).all()
    assert np.array_equal(Ea, Eb)
    assert not np.allclose(Ea, Ec)
    assert len({tuple(np.round(r, 5)) for r in Ea}) == 108  # all instructions distinct at init
    # order = instruction_set(): a subset query returns the same rows
    sub = instruction_set()[5:9]
    assert np.allclose(instruction_embeddings(a, sub), Ea[5:9], atol=1e-6)


def test_language_embedding_is_independent_of_vision():
    agent = build_agent(AgentConfig(), 0).eval()
    captured = []
    agent.lang_norm.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone()))
    ids, imgs, dirs, prev = _batch()
    ids = torch.zeros_like(ids)  # same instruction everywhere, very different views / contexts
    logits = agent(ids, imgs, dirs, prev)
    assert not torch.allclose(logits[0], logits[1])  # the views do matter for the action ...
    assert all(torch.allclose(x, captured[0][0]) for x in captured[0])  # ... but not for E_L
    shuffled = imgs[torch.randperm(len(imgs))]
    agent(ids, shuffled, dirs.flip(0), prev.flip(0))
    assert torch.equal(captured[0], captured[1])


def test_attention_sums_to_one_over_the_visual_grid():
    agent = build_agent(AgentConfig(), 0).eval()
    ids, imgs, dirs, prev = _batch()
    logits, w = agent(ids, imgs, dirs, prev, return_attention=True)
    assert logits.shape == (6, 7)
    assert w.shape == (6, 4, 5, 7, 7)
    assert torch.allclose(w.sum((-1, -2)), torch.ones(6, 4, 5), atol=1e-5)
    assert (w >= 0).all()
    # `done` is masked when the agent is not a done-mode agent
    assert torch.isinf(logits[:, ACTION_NAMES.index("done")]).all()
    done_agent = build_agent(AgentConfig(done_action=True), 0).eval()
    assert torch.isfinite(done_agent(ids, imgs, dirs, prev)).all()


def test_attention_orientation_matches_the_pov_frame():
    """Attention [row, col] must follow frame_pov: the token of cell [x, y] of minigrid's image sits at
    row y, col x; we check through the vision tokens by planting one distinctive cell."""
    agent = build_agent(AgentConfig(), 0).eval()
    img = np.zeros((1, 7, 7, 3), np.uint8)
    img[..., 0] = 1  # empty everywhere
    img[0, 5, 1] = (6, 0, 0)  # a red ball at x=5, y=1
    grid = torch.from_numpy(img).transpose(1, 2).long()
    tok = agent.vision(grid)[0].reshape(7, 7, -1)
    ref = agent.vision(torch.from_numpy(np.where(img == 6, 1, img)).transpose(1, 2).long())[0].reshape(7, 7, -1)
    diff = (tok - ref).abs().sum(-1)
    assert diff[1, 5] > 0 and diff.sum() == diff[1, 5]  # row y=1, col x=5


def test_render_views_matches_the_environment_pov():
    env = make_env("pick up a green key", 5)
    o = observe(env)
    rgb = render_views(o["image"].transpose(1, 0, 2)[None], 8)[0]
    assert rgb.shape == (56, 56, 3)
    assert np.array_equal(rgb, frame_pov(env, 8))


def test_resnet_hybrid_needs_weights_or_explicit_random(tmp_path, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(RuntimeError, match="ImageNet ResNet-18 weights"):
        ALM(AgentConfig(vision="resnet-hybrid"))
    with pytest.raises(RuntimeError, match="no such file"):
        ALM(AgentConfig(vision="resnet-hybrid", resnet_weights=str(tmp_path / "nope.pth")))
    agent = build_agent(AgentConfig(vision="resnet-hybrid", resnet_weights="random"), 0).eval()
    assert "random" in agent.vision.weights_source
    ids, imgs, dirs, prev = _batch(2)
    with torch.no_grad():
        logits, w = agent(ids, imgs, dirs, prev, return_attention=True)
    assert logits.shape == (2, 7) and w.shape == (2, 4, 5, 7, 7)
    # a weights file: its stem + layer1/2 are used, layer3/4 stay untrained
    from torchvision.models import resnet18

    torch.manual_seed(123)
    ref = resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    a2 = build_agent(AgentConfig(vision="resnet-hybrid", resnet_weights=str(tmp_path / "r18.pth")), 0)
    assert torch.equal(a2.vision.pretrained[0].weight, ref.conv1.weight)
    assert torch.equal(a2.vision.pretrained[5][0].conv1.weight, ref.layer2[0].conv1.weight)
    assert not torch.equal(a2.vision.untrained[0][0].conv1.weight, ref.layer3[0].conv1.weight)


# ---------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    agent = build_agent(AgentConfig(), 7).eval()
    with torch.no_grad():  # perturb so that we do not just compare two fresh inits
        for p in agent.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_checkpoint(agent, tmp_path / "a.pt", {"seed": 7, "name": "alm"})
    loaded = load_agent(path)
    ids, imgs, dirs, prev = _batch()
    a1, p1, w1, _ = agent.act(ids.numpy(), imgs.numpy(), dirs.numpy(), prev.numpy())
    a2, p2, w2, _ = loaded.act(ids.numpy(), imgs.numpy(), dirs.numpy(), prev.numpy())
    assert np.array_equal(a1, a2) and np.array_equal(p1, p2) and np.array_equal(w1, w2)
    assert np.array_equal(instruction_embeddings(agent), instruction_embeddings(loaded))
    assert loaded.manifest == {"seed": 7, "name": "alm"} and (tmp_path / "a.json").exists()


def test_bad_checkpoints_give_clear_errors(tmp_path, tmp_assets):
    with pytest.raises(CheckpointError, match="no agent checkpoint"):
        load_agent("alm-s99")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_agent(bad)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an ALVA agent"):
        load_agent(tmp_path / "other.pt")
    good = save_checkpoint(build_agent(AgentConfig(), 0), tmp_path / "good.pt", {"seed": 0})
    blob = torch.load(good, weights_only=True)
    blob["state_dict"]["words.weight"] = torch.zeros(5, 128)  # shape mismatch
    torch.save(blob, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_agent(tmp_path / "shape.pt")
    blob = torch.load(good, weights_only=True)
    blob["agent_config"]["instructions"] = blob["agent_config"]["instructions"][:-1]
    torch.save(blob, tmp_path / "set.pt")
    with pytest.raises(CheckpointError, match="different instruction set"):
        load_agent(tmp_path / "set.pt")
    blob = torch.load(good, weights_only=True)
    blob["version"] = 99
    torch.save(blob, tmp_path / "ver.pt")
    with pytest.raises(CheckpointError, match="version"):
        load_agent(tmp_path / "ver.pt")
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(good.read_bytes()[: 1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_agent(truncated)


def test_untrained_agent_rebuilds_the_step0_network(tmp_path):
    cfg = AgentConfig(word_init="random")
    path = save_checkpoint(build_agent(cfg, 4), tmp_path / "x.pt", {"seed": 4})
    u = untrained_agent(path)
    assert u.config == cfg
    assert np.array_equal(instruction_embeddings(u), instruction_embeddings(build_agent(cfg, 4)))


# ---------------------------------------------------------------------------------------------- shipped assets
SHIPPED = [f"alm-s{s}" for s in range(5)] + ["alm-done-s0", "alm-word-random-s0", "alm-word-identical-s0"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_agent_embeddings_match_their_checkpoint(name):
    from core import store

    ck = store.assets_dir() / "agents" / f"{name}.pt"
    if not ck.exists():
        pytest.skip(f"{name} not shipped")
    agent = load_agent(name)
    E, items, man = store.read_embeddings(name)
    assert items == instruction_set() and E.shape == (108, 128)
    assert man["weights_sha256"] == store.sha256_file(ck) and man["family"] == "agent"
    assert np.allclose(E, instruction_embeddings(agent), atol=1e-6)
    s = agent.manifest["success"]
    assert s["episodes"] >= 2160 and s["episodes_per_instruction"] >= 20 and len(s["per_instruction"]) == 108
    if name.startswith("alm-s"):
        assert s["overall"] >= 0.90, (name, s["overall"])


@pytest.mark.parametrize("seed", range(5))
def test_shipped_untrained_embeddings_are_the_step0_network(seed):
    from core import store

    if not (store.assets_dir() / "embeddings" / f"untrained-alm-s{seed}.npz").exists():
        pytest.skip("not shipped")
    trained = load_agent(f"alm-s{seed}")
    E, _, man = store.read_embeddings(f"untrained-alm-s{seed}")
    step0 = build_agent(trained.config, seed)
    assert np.array_equal(E, instruction_embeddings(step0))
    assert not np.allclose(E, instruction_embeddings(trained), atol=1e-3)
    assert man["optimizer_steps"] == 0 and man["seed"] == seed

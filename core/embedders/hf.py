"""Hugging Face transformers path: causal LMs (decoder) and encoders, by hub id or local directory.

A hub id is fetched with ``huggingface_hub.snapshot_download`` (tokenizer, config and safetensors only; the
commit hash becomes the revision). A local directory is used as is. ``trust_remote_code`` is always off.
The base model (``AutoModel``) is used for both kinds, so ``last_hidden_state`` is the final layer after the
architecture's final norm.
"""
from __future__ import annotations

from pathlib import Path

from ._common import Resolved, files_sha256, pool, select_layers, torch_dtype
from .errors import MissingWeightsError

_ALLOW = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*", "*.tiktoken"]


def weight_files(d: Path) -> list[str]:
    files = sorted(d.glob("*.safetensors")) or sorted(d.glob("pytorch_model*.bin"))
    return [str(f) for f in files]


def resolve_hf(model: str, model_id: str, revision: str | None = None, install: str = "") -> Resolved:
    """Find (or download) a model dir. Missing -> MissingWeightsError naming the model and how to get it."""
    p = Path(str(model_id)).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MissingWeightsError(f"{model!r}: {p} is not a model directory (config.json + weights)")
        d, rev = p.resolve(), "local"
    else:
        if str(model_id).startswith((".", "/", "~")):
            raise MissingWeightsError(f"{model!r}: local path {model_id} does not exist")
        try:
            from huggingface_hub import snapshot_download

            d = Path(snapshot_download(str(model_id), revision=revision, allow_patterns=_ALLOW))
            if not weight_files(d):  # an older repo with only pytorch_model.bin
                d = Path(snapshot_download(str(model_id), revision=revision,
                                           allow_patterns=[*_ALLOW, "pytorch_model*.bin"]))
        except Exception as e:  # offline, gated, unknown repo, network error
            raise MissingWeightsError(
                f"weights of {model!r} ({model_id}) are not available here: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}. They need {install or 'the Hugging Face hub'}; "
                f"then run: python -m core embed --model {model} --ship") from None
        rev = d.name  # snapshots/<commit>
    files = weight_files(d)
    if not files or not (d / "config.json").exists():
        raise MissingWeightsError(f"{model!r}: {d} has no config.json or no weights "
                                  f"(*.safetensors / pytorch_model*.bin)")
    return Resolved(path=str(d), weights_files=files, weights_sha256=files_sha256(files),
                    source_package="huggingface_hub" if rev != "local" else None, revision=rev,
                    info={"model_id": str(model_id)})


def prepare_tokenizer(tok):
    """Right padding (positions of real tokens never shift) and a pad token for batching."""
    tok.padding_side = "right"
    if tok.pad_token is None:
        for cand in (tok.eos_token, tok.unk_token, tok.bos_token):
            if cand is not None:
                tok.pad_token = cand
                break
        else:
            raise MissingWeightsError("tokenizer has no pad, eos, unk or bos token to pad batches with")
    return tok


def load_tokenizer(path: str):
    """The tokenizer a directory declares. A generic ``tokenizer.json`` (class PreTrainedTokenizerFast /
    TokenizersBackend, e.g. one built with the ``tokenizers`` library) is loaded as is: transformers 5's
    AutoTokenizer would otherwise swap in the model type's tokenizer class (e.g. Qwen2Tokenizer) and re-tokenise."""
    import json

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg_path = Path(path) / "tokenizer_config.json"
    declared = json.loads(cfg_path.read_text()).get("tokenizer_class") if cfg_path.exists() else None
    if declared in ("PreTrainedTokenizerFast", "TokenizersBackend") and (Path(path) / "tokenizer.json").exists():
        return prepare_tokenizer(PreTrainedTokenizerFast.from_pretrained(path))
    return prepare_tokenizer(AutoTokenizer.from_pretrained(path, trust_remote_code=False))


def load_hf(resolved: Resolved, dtype: str = "float32"):
    """(tokenizer, base model in eval mode) from a resolved local directory."""
    from transformers import AutoModel

    tok = load_tokenizer(resolved.path)
    model, info = AutoModel.from_pretrained(resolved.path, dtype=torch_dtype(dtype), trust_remote_code=False,
                                            output_loading_info=True)
    check_loading(resolved.path, info)
    return tok, model.eval()


def check_loading(path, info: dict) -> None:
    """Refuse a model with weights missing from the checkpoint: they would be random, not pretrained."""
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise MissingWeightsError(f"{path}: {len(missing)} parameter(s) are missing from the checkpoint and would be "
                                  f"randomly initialised ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})"
                                  f"; refusing to embed with them")


def embed_tokens(tok, model, texts: list[str], *, pooling: str, layer, batch_size: int = 32,
                 exclude_special: bool = False, progress: bool = False, desc: str = "embed", forward=None):
    """Run ``model`` (or ``forward(model, input_ids, attention_mask)``) over texts in batches and pool.

    Returns float32 (n, d) for one layer or (n_layers+1, n, d) for ``layer='all'``.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    want_all = layer != "last"
    out: list[list[np.ndarray]] = []
    batches = range(0, len(texts), batch_size)
    for i in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        chunk = list(texts[i:i + batch_size])
        enc = tok(chunk, padding=True, return_tensors="pt", return_special_tokens_mask=True)
        mask = enc["attention_mask"]
        special = enc.pop("special_tokens_mask")
        content = mask * (1 - special)
        if (content.sum(1) == 0).any():
            bad = [t for t, n in zip(chunk, content.sum(1).tolist()) if n == 0]
            raise ValueError(f"the tokenizer turned {bad[:3]} into special tokens only; refusing to embed")
        pmask = content if exclude_special else mask
        dev = next(model.parameters()).device  # inputs go where the model is (core.device)
        with torch.inference_mode():
            if forward is not None:
                res = forward(model, enc["input_ids"].to(dev), mask.to(dev), want_all)
            else:
                kw = {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                res = model(**kw, output_hidden_states=want_all, return_dict=True)
            states = select_layers(res.hidden_states, layer) if want_all else [res.last_hidden_state]
            out.append([pool(h, pmask, pooling).cpu().numpy() for h in states])
    per_layer = [np.concatenate([b[j] for b in out], axis=0).astype(np.float32) for j in range(len(out[0]))]
    return per_layer[0] if layer != "all" else np.stack(per_layer)

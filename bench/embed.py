"""Speed of the offline reference models: load time and time to embed the 108 instructions.

Plain script (not a test):  .venv/bin/python bench/embed.py [NAME ...]   (default: every offline model)

Each model runs in a fresh subprocess, uncached (use_cache=False), so the figures are cold-start figures:
``import`` = importing the model libraries, ``resolve`` = locating the weights and checking their sha256
(memoised after the first run), ``load`` = building the model from disk (for GGUF models: from the converted
safetensors, after the one-off conversion, whose time is printed when it happens), ``embed`` = the 108
instructions at the default options, batch 32. Threads: torch's default (the number of cores).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(name: str) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t0 = time.perf_counter()
    from core.embedders import TABLE
    from core.embedders.compute import _run, check_options, resolve_weights
    from core.instructions import instruction_set

    spec = TABLE[name]
    if spec.loader == "spacy":
        import spacy  # noqa: F401
    else:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    resolved = resolve_weights(spec)
    t_resolve = time.perf_counter() - t1
    t_convert = None
    if spec.loader == "gguf" and not (Path(resolved.path) / "ALVA_CONVERSION.json").exists():
        from core.embedders.gguf import materialise

        t2 = time.perf_counter()
        materialise(resolved)
        t_convert = time.perf_counter() - t2
    opts = check_options(spec)
    opts["exclude_special"] = False
    st = resolved.info.get("sentence_transformers")
    opts["normalize"] = bool(st and st["normalize"])
    timings: dict[str, float] = {}
    E = _run(spec, resolved, instruction_set(), opts, False, timings)
    import torch

    return {"model": name, "dim": int(E.shape[1]), "import_s": t_import, "resolve_s": t_resolve,
            "convert_s": t_convert, "load_s": timings["load_s"], "embed108_s": timings["embed_s"],
            "threads": torch.get_num_threads()}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print("BENCH " + json.dumps(one(argv[1])))
        return 0
    from core.embedders import TABLE

    names = argv or [n for n, s in TABLE.items() if s.offline_available and s.computed_here]
    print(f"{'model':24s} {'dim':>4s} {'import s':>9s} {'resolve s':>9s} {'load s':>7s} {'embed 108 s':>11s}"
          f" {'ms/instr':>9s}  note")
    for n in names:
        r = subprocess.run([sys.executable, __file__, "--one", n], capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("BENCH ")), None)
        if r.returncode != 0 or line is None:
            err = (r.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{n:24s} skipped: {err}")
            continue
        b = json.loads(line[6:])
        note = f"one-off GGUF conversion {b['convert_s']:.1f}s" if b["convert_s"] else ""
        print(f"{n:24s} {b['dim']:4d} {b['import_s']:9.2f} {b['resolve_s']:9.2f} {b['load_s']:7.2f} "
              f"{b['embed108_s']:11.2f} {1000 * b['embed108_s'] / 108:9.1f}  {note} (torch threads {b['threads']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

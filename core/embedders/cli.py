"""``python -m core embed``: compute reference-model embeddings of the instruction set.

Examples::

    python -m core embed --list                              # the registry, with what is present
    python -m core embed --model smollm2-135m --ship         # compute, cache, write assets/embeddings/
    python -m core embed --model all                         # every model whose weights are available
    python -m core embed --model smollm2-135m --layer all    # layer sweep (cached; not shippable as one file)
    python -m core embed --hf-causal some/id --name my-lm --ship
    python -m core embed --hf-encoder /path/to/dir --name my-encoder --pooling cls
    python -m core embed --open-clip ViT-B-16/laion2b_s34b_b88k --name clip-b16

Without ``--ship`` the result goes to the diskcache and to ``<cache_dir>/embeddings/<name>.npz/.json`` (read by
``load_embeddings``); with ``--ship`` to ``assets/embeddings/<name>.npz/.json``. Non-default options without
``--name`` get a suffixed file name (``<name>-<pooling>-l<layer>``) so a default file is never overwritten by
another definition.
"""
from __future__ import annotations

import argparse
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core embed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="registry name, or 'all' (every model whose weights are available)")
    src.add_argument("--hf-causal", metavar="ID", help="any Hugging Face causal LM: hub id or local directory")
    src.add_argument("--hf-encoder", metavar="ID", help="any Hugging Face encoder: hub id or local directory")
    src.add_argument("--open-clip", metavar="ARCH/PRETRAINED",
                     help="open_clip text tower, e.g. ViT-B-16/laion2b_s34b_b88k (PRETRAINED may be a file)")
    src.add_argument("--blip", metavar="ID", help="BLIP retrieval model (text side): hub id or local directory")
    src.add_argument("--gguf", metavar="FILE", help="a local .gguf decoder LM (converted once, cached)")
    src.add_argument("--list", action="store_true", help="print the registry and exit")
    p.add_argument("--name", help="output name for a model given by id (default: derived from the id)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit) for --hf-causal/--hf-encoder/--blip")
    p.add_argument("--pooling", help="mean | last | cls | model (allowed values depend on the family)")
    p.add_argument("--layer", help="last (default) | an integer index into hidden_states | all")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--exclude-special", action="store_true",
                   help="mean/last pooling over real tokens minus the special tokens the tokenizer adds (BOS, CLS..)")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None, help="L2 after pooling")
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto (default: CUDA when available) | cpu | cuda (an error where there is no CUDA)")
    p.add_argument("--ship", action="store_true", help="write assets/embeddings/<name>.npz/.json")
    p.add_argument("--refresh", action="store_true", help="recompute even if cached")
    p.add_argument("--no-progress", action="store_true")
    return p


def _print_registry() -> None:
    import pandas as pd

    from . import registry

    df = registry()
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 48):
        print(df[["name", "family", "paper_family", "offline_available", "present", "default_pooling",
                  "default_layer", "seeds"]].to_string(index=False))


def output_name(spec, name_arg: str | None, normalize: bool | None, man: dict) -> str:
    """The file stem of a computed embedding: ``name_arg``, the model's name for its default options, else the
    name suffixed with what differs (``<name>-<pooling>-l<layer>[-dtype][-nospecial][-norm|-nonorm]``)."""
    if name_arg:
        return name_arg
    default = (man["pooling"] == spec.default_pooling and man["layer"] in (str(spec.default_layer), "n/a")
               and man["dtype"] == "float32" and not man["exclude_special"] and normalize is None)
    if default:
        return spec.name
    s = f"{spec.name}-{man['pooling']}-l{man['layer']}"
    if man["dtype"] != "float32":
        s += f"-{man['dtype']}"
    if man["exclude_special"]:
        s += "-nospecial"
    if normalize is not None:
        s += "-norm" if man["normalize"] else "-nonorm"
    return s


def _one(spec, a) -> str:
    from ..instructions import instruction_set
    from ..store import cache_dir, save_embeddings
    from .compute import embed

    t0 = time.perf_counter()
    E, man = embed(spec, pooling=a.pooling, layer=a.layer, dtype=a.dtype, batch_size=a.batch_size,
                   exclude_special=a.exclude_special, normalize=a.normalize, progress=not a.no_progress,
                   refresh=a.refresh, device=a.device)
    dt = time.perf_counter() - t0
    if E.ndim == 3:
        if a.ship:
            raise SystemExit("--layer all gives one array per layer; ship one layer at a time with "
                             "--layer K --name NAME-lK --ship")
        return (f"{spec.name}: {E.shape[0]} layers x {E.shape[1]} x {E.shape[2]} in the diskcache "
                f"(key {man['cache_key']}; embed(..., layer='all') returns it) [{dt:.1f}s]")
    out = output_name(spec, a.name, a.normalize, man)
    man = dict(man, model=out) if out != spec.name else man
    directory = None if a.ship else cache_dir() / "embeddings"
    path = save_embeddings(out, E, instruction_set(), man, directory=directory)
    return f"{out}: {E.shape[0]} x {E.shape[1]} -> {path} [{dt:.1f}s]"


def cli(argv: list[str]) -> int:
    from ..device import DeviceError
    from .errors import BadOptionError, EmbedderError, MissingWeightsError
    from .registry import TABLE, custom_spec, resolve

    args = list(argv[1:] if argv and argv[0] == "embed" else argv)
    a = _parser().parse_args(args)
    if a.list:
        _print_registry()
        return 0
    kinds = {"hf_causal": "hf-causal", "hf_encoder": "hf-encoder", "open_clip": "open-clip", "blip": "blip",
             "gguf": "gguf"}
    custom = [(k, getattr(a, attr)) for attr, k in kinds.items() if getattr(a, attr)]
    if custom:
        kind, mid = custom[0]
        specs = [custom_spec(kind, mid, a.name, revision=a.revision)]
        a.name = None  # already the spec's name
    elif a.model == "all":
        specs = [s for s in TABLE.values() if s.computed_here]
        if a.name:
            print("--name cannot be used with --model all", file=sys.stderr)
            return 2
    elif a.model:
        try:
            specs = [resolve(a.model)]
        except EmbedderError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    else:
        print("give --model NAME|all, --hf-causal/--hf-encoder/--open-clip/--blip/--gguf ID, or --list\n",
              file=sys.stderr)
        _print_registry()
        return 2
    failed, skipped = [], []
    for spec in specs:
        try:
            print(_one(spec, a), flush=True)
        except MissingWeightsError as e:
            if a.model == "all":
                skipped.append(f"{spec.name}: {e}")
            else:
                print(f"error: {e}", file=sys.stderr)
                return 3
        except DeviceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except (BadOptionError, EmbedderError) as e:
            if a.model == "all" and isinstance(e, BadOptionError):
                skipped.append(f"{spec.name}: {e}")
                continue
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # a real failure with weights present: report, go on with `all`
            if a.model != "all":
                raise
            failed.append(f"{spec.name}: {type(e).__name__}: {e}")
    for s in skipped:
        print(f"skipped {s}")
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed else 0

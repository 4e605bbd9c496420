"""``python -m core STAGE ...``: one entry point for every pipeline stage.

Each stage lives in its module as ``cli(argv) -> int`` with its own argparse; this table only names them,
so ``python -m core --help`` imports nothing heavy.
"""
from __future__ import annotations

import importlib
import sys

#: stage -> (module, one-line help). The order is the pipeline's order.
STAGES: dict[str, tuple[str, str]] = {
    "instructions": ("core.instructions_cli", "print the instruction set (table, CSV or JSON)"),
    "splits": ("core.splits", "the held-out instruction splits (compositional generalisation)"),
    "demos": ("core.demos", "generate expert demonstrations with BabyAIBot into the cache"),
    "train": ("core.train", "train an action-language agent by behavioural cloning"),
    "evaluate": ("core.train", "evaluate a trained agent's success per instruction"),
    "embed-agent": ("core.agent", "extract an agent's 108 x 128 instruction embeddings"),
    "embed": ("core.embedders.cli", "compute reference-model embeddings (language / vision-language models)"),
    "layers": ("core.embedders.layers", "layer sweeps: every hidden state of the reference models (assets/layers)"),
    "baselines": ("core.baselines", "compute control embeddings (bag-of-words, factors, random, untrained agent)"),
    "metrics": ("core.metrics_cli", "P@k, Procrustes, CKA, RSA tables for the embeddings present"),
    "controls": ("core.controls", "alignment beyond lexical overlap, per-factor analysis, trained vs untrained"),
    "multiverse": ("core.multiverse", "P@15 over every analysis choice (layers, pooling, preprocessing, subsets)"),
    "dynamics": ("core.dynamics", "alignment across learning: each recorded E_L snapshot vs the shipped spaces"),
    "scaling": ("core.scaling", "alignment as the instruction set grows (presets +colourless, +location, ...)"),
    "generalisation": ("core.generalisation", "held-out splits and LM word inits: ship and print the results"),
    "report": ("core.report", "precompute the dashboard's artefacts (UMAP layouts, nulls) into assets/report"),
    "sweep": ("core.sweep.cli", "run a sweep spec (grids of train/evaluate/embed runs) as Ray tasks"),
}


def usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: python -m core STAGE [options]   (python -m core STAGE --help for a stage's options)", "",
             "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"unknown stage {stage!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    return int(module.cli([stage, *rest]) or 0)

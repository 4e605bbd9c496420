"""``python -m core instructions``: print the instruction set and its factors."""
from __future__ import annotations

import argparse

from .instructions import DEFAULT_GRAMMAR, instruction_set_hash, metadata


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core instructions", description=__doc__)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--verb", action="append", help="keep only this verb (repeatable), e.g. --verb 'go to'")
    args = p.parse_args(argv[1:])
    g = DEFAULT_GRAMMAR.subset(verbs=args.verb) if args.verb else DEFAULT_GRAMMAR
    df = metadata(grammar=g)
    if args.format == "csv":
        print(df.to_csv(index_label="id"), end="")
    elif args.format == "json":
        print(df.to_json(orient="records", indent=1))
    else:
        print(df.to_string())
        print(f"\n{len(df)} instructions over {len(g.vocabulary)} words: {' '.join(g.vocabulary)}")
        print(f"instruction-set hash: {instruction_set_hash(df['instruction'].tolist())}")
    return 0

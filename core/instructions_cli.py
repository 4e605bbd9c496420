"""``python -m core instructions``: print the instruction set and its factors.

``--grammar NAME`` picks a preset of :func:`core.instructions.presets` (default ``paper108``); ``--summary``
prints only the size, vocabulary and hash (the default for sets larger than 1,000 in table format).
"""
from __future__ import annotations

import argparse

from .instructions import instruction_set_hash, metadata, preset, presets


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m core instructions", description=__doc__)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--grammar", choices=list(presets()), default="paper108",
                   help="instruction-set preset (nested, smallest first); default paper108")
    p.add_argument("--verb", action="append", help="keep only this verb (repeatable), e.g. --verb 'go to'")
    p.add_argument("--summary", action="store_true", help="print only size, vocabulary and hash")
    args = p.parse_args(argv[1:])
    base = preset(args.grammar)
    g = base.subset(verbs=args.verb) if args.verb else base
    df = metadata(grammar=g)
    if args.format == "csv" and not args.summary:
        print(df.to_csv(index_label="id"), end="")
    elif args.format == "json" and not args.summary:
        print(df.to_json(orient="records", indent=1))
    else:
        if not args.summary and len(df) <= 1000:
            print(df.to_string())
            print()
        elif not args.summary:
            print(df.head(10).to_string())
            print(f"... ({len(df) - 10} more rows; use --format csv for all)\n")
        print(f"{len(df)} instructions over {len(g.vocabulary)} words: {' '.join(g.vocabulary)}")
        print(f"instruction-set hash: {instruction_set_hash(df['instruction'].tolist())}")
        if g.extended:
            for col in ("verb", "location", "connective"):
                counts = df[col].replace("", "(none)").value_counts(sort=False).to_dict()
                print(f"by {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0

"""``python -m core sweep SPEC``: run a sweep spec (see :mod:`core.sweep.spec`) as Ray tasks.

Examples::

    python -m core sweep tiny                          # sweeps/tiny.toml on a local Ray instance (all cores)
    python -m core sweep sweeps/shipped.toml --workers 2
    python -m core sweep shipped --address auto        # join the running cluster (ray start --head ...)
    python -m core sweep tiny --in-process             # no Ray: one run after another in this process
    python -m core sweep shipped --dry-run             # what would run, what is done

Exit status: 0 every run ok or done before; 1 some run failed; 2 bad spec / option / device; 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import shlex
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core sweep", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="a .toml spec, or the name of a shipped one in sweeps/ (tiny, shipped)")
    p.add_argument("--workers", type=int, default=None,
                   help="CPUs of the local Ray instance and the most runs in flight (default: all cores)")
    p.add_argument("--address", default=None,
                   help="join a running Ray cluster: auto (the one started on this machine) or HOST:PORT")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="for every run (default: each run's own option, auto unless the spec says otherwise)")
    p.add_argument("--retries", type=int, default=None, help="re-submissions of a failed run (default: the spec's)")
    p.add_argument("--in-process", action="store_true", help="run here, one run after another, without Ray")
    p.add_argument("--refresh", action="store_true", help="run every run again, even those done before")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run nothing")
    p.add_argument("--no-progress", action="store_true")
    return p


def _dry_run(sweep) -> int:
    from .engine import RunState, is_done, record_params

    for r in sweep.runs:
        params = record_params(sweep, RunState(r))
        state = ("done" if is_done(r, params) else "to run") if params is not None else "to run (no checkpoint yet)"
        print(f"{r.id:<48} {state:<28} {r.block}")
    print(f"{len(sweep.runs)} runs")
    return 0


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv[1:] if argv and argv[0] == "sweep" else argv)
    from ..device import DeviceError
    from .engine import format_table, run_sweep
    from .spec import SpecError, load

    if args.workers is not None and args.workers < 1:
        print("error: --workers must be >= 1", file=sys.stderr)
        return 2
    try:
        sweep = load(args.spec)
        if args.dry_run:
            return _dry_run(sweep)
        summary = run_sweep(sweep, workers=args.workers, address=args.address, device=args.device,
                            retries=args.retries, in_process=args.in_process, refresh=args.refresh,
                            progress=not args.no_progress,
                            command="python -m core " + " ".join(shlex.quote(a) for a in argv))
    except (SpecError, DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: runs in flight were cancelled; finished runs are written and count as done",
              file=sys.stderr)
        return 130
    print(format_table(summary))
    return 1 if summary["counts"]["failed"] else 0

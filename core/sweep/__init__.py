"""Sweeps: grids of pipeline runs declared in a TOML spec, run as Ray tasks (``python -m core sweep SPEC``).

:mod:`core.sweep.spec` reads and checks a spec, :mod:`core.sweep.tasks` runs one run where it is sent,
:mod:`core.sweep.engine` is the driver (skip, submit, retry, write, summarise), :mod:`core.sweep.cli` the command.
Ray is imported only when a sweep runs on it.
"""
from .engine import format_table, results_root, run_sweep, sweep_dir
from .spec import Run, SpecError, Sweep, load, parse

__all__ = ["Run", "SpecError", "Sweep", "format_table", "load", "parse", "results_root", "run_sweep", "sweep_dir"]

"""Sweep specs: a small TOML file naming grids over the pipeline's existing options -> a list of runs.

Format (``sweeps/tiny.toml`` and ``sweeps/shipped.toml`` are complete examples)::

    name = "tiny"        # required: results, logs and summary.json go under <cache>/sweeps/<name>/
    ship = false         # true: agents and embeddings are written to assets/ (the shipped files)
    retries = 1          # a failed run is submitted again this many times, then reported failed

    [[train]]            # one block = one grid; plain keys are fixed options for every run of the block
    steps = 1500
    grid.seed = [0, 1, 2, 3, 4]     # grid.<option> = [values]: the runs are the product of all grid lists

Kinds (a TOML array of tables each) and their options:

- ``train``: every field of :class:`core.train.TrainConfig` except ``out``, ``resume``, ``stop_after``,
  ``progress`` (``name`` defaults to ``alm`` or its variant name, as ``python -m core train`` does);
- ``evaluate``: ``agent`` (required), ``episodes`` (per instruction, 20), ``seed`` (eval seed, 0), ``device``;
- ``embed-agent``: ``agent`` (required), ``untrained`` (false), ``device``;
- ``embed``: ``model`` (required, a registry name), ``pooling``, ``layer``, ``dtype``, ``batch_size``,
  ``normalize``, ``exclude_special``, ``name``, ``device``;
- ``baselines``: no options (bag-of-words, tfidf, factors, random-s0..s4).

``agent`` is a checkpoint name (``alm-s0``): the sweep's own agents first (trained in its first phase), then
``assets/agents``. Every error names the field (``train[0].grid.seed: ...``) and is raised before anything runs.
"""
from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..device import DEVICES

#: kinds in the order their phase runs: phase 0 makes checkpoints and reference embeddings, phase 1 reads
#: checkpoints (``agent``), which may come from phase 0 of the same sweep.
PHASES: dict[str, int] = {"train": 0, "embed": 0, "baselines": 0, "evaluate": 1, "embed-agent": 1}
TOP_LEVEL = {"name": str, "ship": bool, "retries": int, "description": str}
SPECS_DIR = Path(__file__).resolve().parents[2] / "sweeps"
_TRAIN_EXCLUDED = ("out", "resume", "stop_after", "progress")
#: options added after done-records existed, at the value that computes exactly what the code did before them:
#: left out of a run's done-record there, so runs recorded earlier stay done (core.sweep.engine.record_params)
NEUTRAL_DEFAULTS: dict[str, Any] = {"memory": ""}
_REQUIRED = object()


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the field."""


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its kind, its id (unique in the sweep) and its complete options (defaults filled)."""

    kind: str
    id: str
    options: dict[str, Any]
    block: str  # where it comes from in the spec, e.g. "train[0]"

    @property
    def phase(self) -> int:
        return PHASES[self.kind]


@dataclass
class Sweep:
    name: str
    runs: list[Run]
    path: Path | None = None
    ship: bool = False
    retries: int = 1
    description: str = ""
    text: str = field(default="", repr=False)  # the spec file's text (its sha256 goes into the summary)


def option_table(kind: str) -> dict[str, Any]:
    """Option -> default (``_REQUIRED`` for required ones) of a kind."""
    if kind == "train":
        from ..train import TrainConfig

        d = TrainConfig()
        return {f.name: getattr(d, f.name) for f in fields(TrainConfig) if f.name not in _TRAIN_EXCLUDED} | {
            "name": None}
    if kind == "evaluate":
        return {"agent": _REQUIRED, "episodes": 20, "seed": 0, "device": "auto"}
    if kind == "embed-agent":
        return {"agent": _REQUIRED, "untrained": False, "device": "auto"}
    if kind == "embed":
        return {"model": _REQUIRED, "pooling": None, "layer": None, "dtype": "float32", "batch_size": None,
                "normalize": None, "exclude_special": False, "name": None, "device": "auto"}
    if kind == "baselines":
        return {}
    raise SpecError(f"unknown run kind {kind!r}; kinds: {', '.join(PHASES)}")


def _choices(kind: str) -> dict[str, tuple]:
    from ..agent import MEMORIES, VISIONS, WORD_INITS
    from ..embedders.registry import DTYPES
    from ..instructions import VERBS

    return {"device": DEVICES, "vision": VISIONS, "word_init": WORD_INITS, "memory": MEMORIES, "dtype": DTYPES,
            "verbs": VERBS}


_POSITIVE = ("steps", "demos", "batch_size", "threads", "final_episodes", "episodes", "demo_workers", "d_model",
             "lang_ff", "head_hidden")
_NON_NEGATIVE = ("seed", "demo_seed", "warmup", "eval_every", "eval_episodes")


def check_value(where: str, option: str, value: Any, default: Any, kind: str) -> Any:
    """One option's value, checked against its default's type and the known choices; returns it normalised."""
    def bad(msg: str):
        raise SpecError(f"{where}: {msg}")

    if isinstance(default, bool) or option in ("untrained", "exclude_special", "record"):
        if not isinstance(value, bool):
            bad(f"expected true or false, got {value!r}")
    elif option == "normalize":
        if not isinstance(value, bool):
            bad(f"expected true or false, got {value!r}")
    elif option == "layer":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            bad(f"expected an integer or 'last', got {value!r}")
        if isinstance(value, str) and value != "last":
            bad(f"expected an integer or 'last' (one layer per run: use grid.layer = [0, 1, ...]), got {value!r}")
    elif isinstance(default, int) or option in ("batch_size",):
        if isinstance(value, bool) or not isinstance(value, int):
            bad(f"expected an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(f"expected a number, got {value!r}")
        value = float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad(f"expected a list of strings, got {value!r}")
        value = tuple(value)
    elif default is _REQUIRED or isinstance(default, str) or default is None:
        if not isinstance(value, str) or not value:
            bad(f"expected a non-empty string, got {value!r}")
    choices = _choices(kind).get(option)
    if choices is not None:
        for v in (value if isinstance(value, tuple) else (value,)):
            if v not in choices:
                bad(f"{v!r} is not one of {', '.join(map(str, choices))}")
    if option in _POSITIVE and value is not None and value < 1:
        bad(f"must be >= 1, got {value!r}")
    if option in _NON_NEGATIVE and value < 0:
        bad(f"must be >= 0, got {value!r}")
    if option == "model":
        from ..embedders.registry import TABLE

        if value not in TABLE or not TABLE[value].computed_here:
            bad(f"unknown model {value!r}; models computed by `embed`: "
                f"{', '.join(n for n, s in TABLE.items() if s.computed_here)}")
    return value


def _runs_of_block(kind: str, index: int, block: Any) -> list[Run]:
    where = f"{kind}[{index}]"
    if not isinstance(block, dict):
        raise SpecError(f"{where}: expected a table ([[{kind}]]), got {block!r}")
    table = option_table(kind)
    fixed = {k: v for k, v in block.items() if k != "grid"}
    grid = block.get("grid", {})
    if not isinstance(grid, dict):
        raise SpecError(f"{where}.grid: expected a table (grid.<option> = [values]), got {grid!r}")
    for prefix, keys in ((where, fixed), (f"{where}.grid", grid)):
        for k in keys:
            if k not in table:
                raise SpecError(f"{prefix}.{k}: unknown option {k!r} for {kind}; options: "
                                f"{', '.join(sorted(table)) or 'none'}")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise SpecError(f"{where}.grid.{both[0]}: given both as a fixed option and in the grid")
    checked = {k: check_value(f"{where}.{k}", k, v, table[k], kind) for k, v in fixed.items()}
    axes: list[tuple[str, list]] = []
    for k, values in grid.items():
        if not isinstance(values, list):
            raise SpecError(f"{where}.grid.{k}: expected a list of values, got {values!r}")
        if not values:
            raise SpecError(f"{where}.grid.{k}: empty list (a grid axis needs at least one value)")
        axes.append((k, [check_value(f"{where}.grid.{k}[{i}]", k, v, table[k], kind) for i, v in enumerate(values)]))
    runs = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        opts = {**{k: v for k, v in table.items()}, **checked, **dict(zip((k for k, _ in axes), combo))}
        missing = [k for k, v in opts.items() if v is _REQUIRED]
        if missing:
            raise SpecError(f"{where}.{missing[0]}: required option missing (give {missing[0]} = ... or "
                            f"grid.{missing[0]} = [...])")
        if kind == "train" and not opts["name"]:
            from ..train import default_name

            opts["name"] = default_name(opts["vision"], opts["word_init"], opts["done_action"], opts["holdout"],
                                        opts["grammar"], opts["memory"])
        runs.append(Run(kind=kind, id=run_id(kind, opts), options=opts, block=where))
    return runs


def run_id(kind: str, opts: dict[str, Any]) -> str:
    """The run's id: what it produces (``train:alm-s0``, ``embed-agent:untrained-alm-s0``, ``embed:minilm``)."""
    from ..store import embedding_file_name

    if kind == "train":
        return f"train:{embedding_file_name(opts['name'], opts['seed'])}"
    if kind == "evaluate":
        return f"evaluate:{opts['agent']}-e{opts['episodes']}-s{opts['seed']}"
    if kind == "embed-agent":
        return f"embed-agent:{'untrained-' if opts['untrained'] else ''}{opts['agent']}"
    if kind == "embed":
        if opts["name"]:
            return f"embed:{opts['name']}"
        extra = [f"{k}={opts[k]}" for k in ("pooling", "layer", "batch_size", "normalize") if opts[k] is not None]
        extra += [f"dtype={opts['dtype']}"] if opts["dtype"] != "float32" else []
        extra += ["exclude_special"] if opts["exclude_special"] else []
        return f"embed:{opts['model']}" + (f"[{','.join(extra)}]" if extra else "")
    return "baselines"


def parse(text: str, path: Path | None = None) -> Sweep:
    """A spec's text -> :class:`Sweep`. Raises :class:`SpecError` naming the field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path or 'spec'}: not valid TOML: {e}") from None
    top = {k: v for k, v in doc.items() if k not in PHASES}
    for k, v in top.items():
        if k not in TOP_LEVEL:
            raise SpecError(f"{k}: unknown top-level key {k!r}; keys: {', '.join(TOP_LEVEL)} and the run kinds "
                            f"{', '.join(PHASES)} ([[kind]] tables)")
        if not isinstance(v, TOP_LEVEL[k]) or (TOP_LEVEL[k] is int and isinstance(v, bool)):
            raise SpecError(f"{k}: expected {TOP_LEVEL[k].__name__}, got {v!r}")
    if "name" not in top or not top["name"].strip() or "/" in top["name"]:
        raise SpecError("name: required, a non-empty name without '/' (results go under <cache>/sweeps/<name>/)")
    if top.get("retries", 1) < 0:
        raise SpecError(f"retries: must be >= 0, got {top['retries']}")
    runs: list[Run] = []
    for kind in PHASES:
        blocks = doc.get(kind, [])
        if isinstance(blocks, dict):  # [kind] instead of [[kind]]: one block
            blocks = [blocks]
        if not isinstance(blocks, list):
            raise SpecError(f"{kind}: expected [[{kind}]] tables, got {blocks!r}")
        for i, block in enumerate(blocks):
            runs += _runs_of_block(kind, i, block)
    if not runs:
        raise SpecError(f"{path or 'spec'}: no runs (add [[train]], [[evaluate]], [[embed-agent]], [[embed]] or "
                        "[[baselines]] tables)")
    seen: dict[str, str] = {}
    for r in runs:
        if r.id in seen:
            raise SpecError(f"{r.block}: run {r.id} is also produced by {seen[r.id]} (two runs, one result)")
        seen[r.id] = r.block
    return Sweep(name=top["name"], runs=runs, path=path, ship=top.get("ship", False), retries=top.get("retries", 1),
                 description=top.get("description", ""), text=text)


def load(path_or_name: str | Path) -> Sweep:
    """Read a spec file, or a shipped spec by name (``tiny`` -> ``sweeps/tiny.toml``)."""
    p = Path(path_or_name)
    if not p.exists() and not p.suffix and (SPECS_DIR / f"{p.name}.toml").exists():
        p = SPECS_DIR / f"{p.name}.toml"
    if not p.exists():
        shipped = sorted(q.stem for q in SPECS_DIR.glob("*.toml"))
        raise SpecError(f"no sweep spec {path_or_name!r} (a .toml file, or a shipped spec: {', '.join(shipped)})")
    return parse(p.read_text(), p)

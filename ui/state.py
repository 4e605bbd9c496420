"""Cross-page state: one canonical session-state key per value, mirrored in the URL query parameters.

* ``apply_query()`` (called by app.py before the page runs) reads the URL: on the session's first run, and
  whenever the URL differs from what the app last wrote (a deep link, or a ``st.page_link`` with
  ``query_params``), each parameter present is validated and copied into session state. Invalid values
  (unknown instruction, k out of range, unknown model, ...) are dropped with a clear message and the
  current/default value is kept.
* ``write_query()`` (called by app.py after the page ran) writes the canonical values back, so the address
  bar is always a shareable deep link of what is on screen.
* Widgets never own the state: each widget has its own key, is pre-set from the canonical value, and copies
  its value back in an ``on_change`` callback (``bind``). Hence a value survives page switches even though
  Streamlit deletes the state of widgets that are not rendered.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

import streamlit as st

from core.generalisation import REFERENCES as _GEN_REFERENCES
from core.instructions import InstructionError, index_of, instruction_set, preset
from core.metrics import check_k
from core.splits import splits as _splits

INSTRUCTIONS = instruction_set()
N = len(INSTRUCTIONS)
#: the instruction set every page starts on (URL key ``set``): the paper's 108 instructions
DEFAULT_SET = "paper108"
DEFAULT_INSTRUCTION = INSTRUCTIONS[0]
DEFAULT_K = 15
FACTORS = ("verb", "colour", "object", "determiner")
COLOUR_BY = (*FACTORS, "P@k")  #: Procrustes colourings: a factor, or per-item P@k with the reference
LAYOUTS = ("joint", "own")  #: Procrustes layouts: joint (one UMAP of the aligned spaces) or each space's own
VIEWS = ("room", "agent")
#: what the learning curves of the "Why they align" page draw: P@k, CKA, RSA, or P@k of the selected instruction
CURVE_METRICS = ("pk", "cka", "rsa", "pk_instruction")
#: the sections of the "Why they align" page (one tab each; only the open one is computed)
WHY_SECTIONS = ("learning", "organisation", "multiverse")
#: the held-out splits (core.splits), for the Generalisation page's per-split figures
SPLITS = tuple(_splits())
#: the reference language models of the generalisation analysis (core.generalisation.REFERENCES)
GEN_REFERENCES = _GEN_REFERENCES

#: canonical key -> query parameter name
#: ``set`` comes first: the instruction and k of a link are checked against the set of the same link
GLOBAL_PARAMS = {"set": "set", "instruction": "instruction", "models": "models", "k": "k", "seed": "seed"}
PAGE_PARAMS = {"env": "env", "view": "view", "ref": "ref", "colour_by": "colour_by", "step": "step",
               "layout": "layout", "metric": "metric", "agent": "agent", "checkpoint": "checkpoint", "split": "split",
               "reference": "reference", "section": "section"}
ALL_PARAMS = {**GLOBAL_PARAMS, **PAGE_PARAMS}
_LAST = "_qp_last"
_WARN = "_qp_warnings"


def md_escape(text: Any, limit: int = 80) -> str:
    """A user-provided string, shortened and escaped so it renders literally inside markdown."""
    s = str(text)
    s = s if len(s) <= limit else s[:limit] + "…"
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", s)


def warn(msg: str) -> None:
    st.session_state.setdefault(_WARN, []).append(msg)


def pop_warnings() -> list[str]:
    return st.session_state.pop(_WARN, [])


# ------------------------------------------------------------------------------------------ instruction sets
@functools.lru_cache(maxsize=8)
def set_items(name: str) -> tuple[str, ...]:
    """The instructions of preset ``name`` in the set's order (``paper108``'s 108 are the first of every set)."""
    return tuple(INSTRUCTIONS) if name == DEFAULT_SET else tuple(instruction_set(preset(name)))


def current_set() -> str:
    return st.session_state.get("set", DEFAULT_SET)


def items() -> tuple[str, ...]:
    """The selected set's instructions."""
    return set_items(current_set())


def index(instruction: str, name: str | None = None) -> int:
    """Position of ``instruction`` in set ``name`` (default: the selected set)."""
    name = name or current_set()
    return index_of(instruction) if name == DEFAULT_SET else index_of(instruction, grammar=preset(name))


def parse_set(value: str, shipped: list[str]) -> str:
    """A shipped preset name. ``+`` decodes to a space in a hand-typed query string (``?set=+colourless``), so a
    name without its ``+`` is accepted too."""
    v = str(value).strip()
    if v not in shipped and f"+{v}" in shipped:
        v = f"+{v}"
    if v not in shipped:
        raise ValueError(f"instruction set must be one of the shipped sets: {', '.join(shipped)}")
    return v


def fit_to_set() -> dict[str, str]:
    """Keep the shared instruction and k valid for the selected set (after a set change): an instruction outside
    the set falls back to the first one, k above n - 1 to n - 1. Returns {key: what changed, in words}."""
    ss = st.session_state
    its, out = items(), {}
    try:
        index(ss.get("instruction", DEFAULT_INSTRUCTION))
    except InstructionError:
        out["instruction"] = f"instruction “{ss.get('instruction')}” is not in {current_set()}: showing “{its[0]}”"
        ss["instruction"] = its[0]
    if int(ss.get("k", DEFAULT_K)) > len(its) - 1:
        out["k"] = f"k = {ss['k']} is more than n - 1 = {len(its) - 1}: showing k = {len(its) - 1}"
        ss["k"] = len(its) - 1
    return out


# ------------------------------------------------------------------------------------------ validators
def parse_instruction(value: str, name: str = DEFAULT_SET) -> str:
    return set_items(name)[index(value, name)]


def parse_k(value: str, n: int = N) -> int:
    try:
        k = int(str(value).strip())
    except ValueError:
        raise ValueError(f"k must be a whole number between 1 and {n - 1}") from None
    return check_k(k, n)  # MetricInputError (a ValueError) explains the range


def parse_int(value: str, lo: int, hi: int, what: str) -> int:
    try:
        x = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number between {lo} and {hi}") from None
    if not lo <= x <= hi:
        raise ValueError(f"{what} = {x} is out of range {lo}..{hi}")
    return x


def parse_models(value: str, known: list[str]) -> tuple[list[str], list[str]]:
    """(valid names in order, unknown names) from a comma-separated list."""
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    good = list(dict.fromkeys(n for n in names if n in known))
    return good, [n for n in names if n not in known]


# ------------------------------------------------------------------------------------------ state
def agents(ctx: dict[str, Any]) -> list[str]:
    """The trained agent variants present (``alm``, ``alm-word-random``, ...), in inventory order."""
    from core.report import KIND_AGENT

    return [n for n in ctx["present"] if ctx["kinds"].get(n) == KIND_AGENT]


def default_agent(ctx: dict[str, Any]) -> str:
    from core.report import REFERENCE

    present = agents(ctx)
    return REFERENCE if REFERENCE in present or not present else present[0]


def defaults(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"set": DEFAULT_SET, "instruction": DEFAULT_INSTRUCTION, "models": list(ctx["default_models"]),
            "k": DEFAULT_K,
            "seed": ctx["default_seed"], "env": 0, "view": "room", "ref": ctx["default_ref"],
            "colour_by": "verb", "step": 0, "layout": "joint", "metric": CURVE_METRICS[0],
            "agent": default_agent(ctx), "checkpoint": ctx.get("default_checkpoint", ""), "split": SPLITS[0],
            "reference": GEN_REFERENCES[0], "section": WHY_SECTIONS[0]}


def init(ctx: dict[str, Any]) -> None:
    """Fill missing canonical keys with defaults. ``ctx`` carries the asset-dependent defaults/choices."""
    for k, v in defaults(ctx).items():
        st.session_state.setdefault(k, v)
    # a set or seed no longer present (assets changed) falls back
    if st.session_state["set"] not in ctx.get("sets", [DEFAULT_SET]):
        st.session_state["set"] = DEFAULT_SET
        fit_to_set()
    if st.session_state["seed"] not in ctx["seeds"] and ctx["seeds"]:
        st.session_state["seed"] = ctx["default_seed"]


def apply_query(ctx: dict[str, Any]) -> None:
    """Copy valid URL parameters into session state (first run, or when the URL changed from outside)."""
    qp = {k: st.query_params.get(k) for k in st.query_params.keys()}
    last = st.session_state.get(_LAST)
    if last is not None and qp == last:
        return
    changed = {k: v for k, v in qp.items() if last is None or last.get(k) != v}
    ss = st.session_state
    choices = {"view": VIEWS, "colour_by": COLOUR_BY, "layout": LAYOUTS, "metric": CURVE_METRICS,  # one of a list
               "split": SPLITS, "reference": GEN_REFERENCES, "section": WHY_SECTIONS}
    for key, param in ALL_PARAMS.items():
        if param not in changed or changed[param] is None:
            continue
        raw = changed[param]
        try:
            if key == "set":
                ss["set"] = parse_set(raw, ctx.get("sets", [DEFAULT_SET]))
                for what, msg in fit_to_set().items():
                    if what not in changed:  # else the link's own value follows
                            warn(f"The instruction set changed to {md_escape(ss['set'])}: {md_escape(msg, 300)}.")
            elif key == "instruction":
                ss["instruction"] = parse_instruction(raw, current_set())
            elif key == "k":
                ss["k"] = parse_k(raw, len(items()))
            elif key == "models":
                good, bad = parse_models(raw, ctx["known_models"])
                if bad:
                    warn(f"Unknown model{'s' if len(bad) > 1 else ''} in the link ignored: "
                         f"{', '.join(md_escape(b) for b in bad)}. Known models are listed on the Overview page "
                         "(embeddings uploaded in another session stay in that session).")
                if good:
                    ss["models"] = good
                elif not bad:
                    raise ValueError("no model given")
            elif key == "seed":
                s = parse_int(raw, 0, 99, "agent seed")
                if s not in ctx["seeds"]:
                    raise ValueError(f"agent seed {s} is not shipped (seeds present: "
                                     f"{', '.join(map(str, ctx['seeds'])) or 'none'})")
                ss["seed"] = s
            elif key == "env":
                ss["env"] = parse_int(raw, 0, 99_999, "environment seed")
            elif key == "step":
                ss["step"] = parse_int(raw, 0, 10_000, "step")
            elif key in choices:
                if raw not in choices[key]:
                    raise ValueError(f"{key} must be one of {', '.join(choices[key])}")
                ss[key] = raw
            elif key == "agent":
                if raw not in agents(ctx):
                    raise ValueError(f"unknown agent; agents present: {', '.join(agents(ctx)) or 'none'}")
                ss["agent"] = raw
            elif key == "checkpoint":
                if raw not in ctx.get("checkpoints", []):
                    raise ValueError(f"agent {raw} is not shipped; shipped agents: "
                                     f"{', '.join(ctx.get('checkpoints', [])) or 'none'}")
                ss["checkpoint"] = raw
                main = main_seed(raw)
                if main is not None and main in ctx["seeds"]:  # a main agent alm-sN: the shared seed is N
                    ss["seed"] = main
            elif key == "ref":
                if raw not in ctx["known_models"]:
                    raise ValueError("unknown reference model; known models are listed on the Overview page")
                ss["ref"] = raw
        except (ValueError, InstructionError) as e:
            shown = md_escape(ss.get(key))
            warn(f"Ignored `{param}={md_escape(raw)}` from the link: {md_escape(str(e), 300)}. "
                 f"Showing {param} = {shown} instead.")
    if "seed" in changed and "checkpoint" not in qp and f"alm-s{ss['seed']}" in ctx.get("checkpoints", []):
        # a link without an agent (older links, other pages' links to the Agent page): seed N means alm-sN
        ss["checkpoint"] = f"alm-s{ss['seed']}"
    ss[_LAST] = qp


def main_seed(name: str) -> int | None:
    """N for a main agent's checkpoint ``alm-sN``, else None."""
    m = re.fullmatch(r"alm-s(\d+)", str(name))
    return int(m.group(1)) if m else None


def write_query(keys: list[str] | None = None) -> None:
    """Write canonical values to the URL (global keys plus the page's own ``keys``)."""
    ss = st.session_state
    want: dict[str, str] = {}
    for key in [*GLOBAL_PARAMS, *(keys or [])]:
        if key not in ss:
            continue
        v = ss[key]
        want[ALL_PARAMS[key]] = ",".join(v) if isinstance(v, (list, tuple)) else str(v)
    current = {k: st.query_params.get(k) for k in st.query_params.keys()}
    if current != want:
        st.query_params.from_dict(want)
    ss[_LAST] = want


# ------------------------------------------------------------------------------------------ widgets
def _copy(widget_key: str, key: str, after: Callable[[], None] | None = None) -> None:
    st.session_state[key] = st.session_state[widget_key]
    if after is not None:
        after()


def bind(widget_key: str, key: str, after: Callable[[], None] | None = None) -> dict[str, Any]:
    """Pre-set a widget from the canonical value; returns the kwargs that copy it back on change."""
    st.session_state[widget_key] = st.session_state[key]
    return {"key": widget_key, "on_change": _copy, "args": (widget_key, key, after)}


def select(key: str, value: Any) -> None:
    st.session_state[key] = value


def rerun() -> None:
    """Rerun now: only the running fragment during a fragment run, else the whole app (a fragment also runs as
    part of full runs, where a fragment-scoped rerun is not allowed)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    st.rerun(scope="fragment" if ctx is not None and ctx.fragment_ids_this_run else "app")

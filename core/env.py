"""One BabyAI level per instruction: ``make_env(instruction, seed)``.

Layout (``InstrLevel``): the centre room of a 3x3 minigrid ``RoomGrid`` (room_size 7, so the grid is 19x19),
with 4 closed, unlocked doors (one per wall) and ``num_distractors`` objects; the agent starts in the centre
room and sees a 7x7 egocentric window.

Semantics of an instruction "VERB DET COLOUR OBJECT":
- "the X": exactly one object matching (type, colour) exists in the whole grid;
- "a X":   two matching objects exist and either one counts;
- distractors (and the colours of non-target doors) never match the target's (type, colour).
minigrid derives the determiner itself from the number of matches, and ``reset`` asserts that the
mission string equals the instruction exactly.

Success: "go to" = facing a matching object (minigrid GoToInstr); "pick up" = picking a matching object up
(PickupInstr); "open ... door" = toggling a matching door open (OpenInstr); "open ... box" = toggling a
matching box, which minigrid replaces by its contents (our :class:`OpenBoxInstr`).

Done mode (``EnvConfig(done_action=True)``): the episode only succeeds when the agent emits ``done`` on the
step right after the instruction was satisfied (minigrid's ``use_done_actions`` semantics); a ``done`` at any
other time fails. We implement it in ``InstrLevel.step`` instead of through minigrid's module-global flag, so
both modes can coexist in one process.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .instructions import COLOURS, DEFAULT_GRAMMAR, Grammar, Instruction

#: env-seed ranges: training demos and evaluation episodes never share a seed (see :func:`episode_seed`).
SPLIT_BASE = {"train": 0, "eval": 1_000_000_000, "show": 2_000_000_000}
ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


@dataclass(frozen=True)
class EnvConfig:
    """Everything that shapes an episode; its values go into every cache key (``as_dict``)."""

    room_size: int = 7
    num_distractors: int = 5
    max_steps: int = 64
    obs_mode: str = "symbolic"  # "symbolic": 7x7x3 (object, colour, state) grid; "rgb": agent POV pixels
    rgb_tile_size: int = 8  # pixels per cell for obs_mode="rgb" (7 cells -> 56x56)
    done_action: bool = False  # require an explicit `done` (see module docstring)

    def __post_init__(self) -> None:
        if self.obs_mode not in ("symbolic", "rgb"):
            raise ValueError(f"obs_mode must be 'symbolic' or 'rgb', got {self.obs_mode!r}")
        if self.room_size < 5:
            raise ValueError("room_size must be >= 5 (the room needs space for targets and distractors)")
        if not 0 <= self.num_distractors <= 10:
            raise ValueError("num_distractors must be in 0..10")
        if self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def episode_seed(split: str, seed: int, index: int, attempt: int = 0) -> int:
    """The env seed of episode ``index`` of a run seeded ``seed`` in ``split`` ('train' | 'eval' | 'show').

    Ranges are disjoint across splits for seed < 100, index < 1e6 and attempt < 10.
    """
    if split not in SPLIT_BASE:
        raise ValueError(f"split must be one of {list(SPLIT_BASE)}, got {split!r}")
    if not (0 <= seed < 100 and 0 <= index < 1_000_000 and 0 <= attempt < 10):
        raise ValueError("episode_seed needs 0 <= seed < 100, 0 <= index < 1e6, 0 <= attempt < 10")
    return SPLIT_BASE[split] + seed * 10_000_000 + index * 10 + attempt


def _minigrid():
    """Import minigrid lazily (it pulls gymnasium and pygame)."""
    import minigrid.envs.babyai.core.roomgrid_level as rgl
    import minigrid.envs.babyai.core.verifier as ver

    return rgl, ver


def _make_open_box_instr_class():
    _, ver = _minigrid()

    class OpenBoxInstr(ver.ActionInstr):
        """"open the/a C box": succeeds when the agent toggles a matching box (which then disappears)."""

        def __init__(self, obj_desc):
            super().__init__()
            assert obj_desc.type == "box"
            self.desc = obj_desc

        def surface(self, env):
            return "open " + self.desc.surface(env)

        def reset_verifier(self, env):
            super().reset_verifier(env)
            self.desc.find_matching_objs(env)

        def verify_action(self, action):
            if action != self.env.actions.toggle:
                return "continue"
            front = tuple(int(v) for v in self.env.front_pos)
            cell = self.env.grid.get(*front)
            for box in self.desc.obj_set:
                if box.cur_pos is not None and tuple(int(v) for v in box.cur_pos) == front and cell is not box:
                    return "success"
            return "continue"

    return OpenBoxInstr


_CLASSES: dict[str, type] = {}


def _level_class() -> type:
    """Build the level class once (deferred so that importing core.env does not import minigrid)."""
    if "InstrLevel" in _CLASSES:
        return _CLASSES["InstrLevel"]
    rgl, ver = _minigrid()
    OpenBoxInstr = _make_open_box_instr_class()

    class InstrLevel(rgl.RoomGridLevel):
        """A level whose mission is exactly one given instruction (see module docstring)."""

        def __init__(self, instruction: str | Instruction, config: EnvConfig = EnvConfig(),
                     grammar: Grammar = DEFAULT_GRAMMAR, **kwargs):
            self.instruction = instruction if isinstance(instruction, Instruction) else grammar.parse(instruction)
            self.config = config
            super().__init__(num_rows=3, num_cols=3, room_size=config.room_size, max_steps=config.max_steps,
                             **kwargs)

        # -- generation -------------------------------------------------------------------------------
        def gen_mission(self):
            s = self.instruction
            n_match = 1 if s.determiner == "the" else 2
            others = [c for c in COLOURS if c != s.colour]
            if s.object == "door":
                door_colours = [s.colour] * n_match + [self._rand_elem(others) for _ in range(4 - n_match)]
            else:
                door_colours = [self._rand_elem(COLOURS) for _ in range(4)]
            order = list(range(4))
            self.np_random.shuffle(order)
            for idx, colour in zip(order, door_colours):
                self.add_door(1, 1, door_idx=idx, color=colour, locked=False)
            if s.object != "door":
                for _ in range(n_match):
                    self.add_object(1, 1, s.object, s.colour)
            placed = 0
            while placed < self.config.num_distractors:
                kind = self._rand_elem(["key", "ball", "box"])
                colour = self._rand_elem(COLOURS)
                if (kind, colour) == (s.object, s.colour):
                    continue  # distractors never match the target
                self.add_object(1, 1, kind, colour)
                placed += 1
            self.place_agent(1, 1)
            desc = ver.ObjDesc(s.object, s.colour)
            if s.verb == "go to":
                self.instrs = ver.GoToInstr(desc)
            elif s.verb == "pick up":
                self.instrs = ver.PickupInstr(desc)
            elif s.object == "door":
                self.instrs = ver.OpenInstr(desc)
            else:
                self.instrs = OpenBoxInstr(desc)

        def reset(self, **kwargs):
            obs, info = super().reset(**kwargs)
            if self.mission != self.instruction.text:
                raise RuntimeError(f"mission {self.mission!r} != instruction {self.instruction.text!r}")
            return obs, info

        # -- dynamics ---------------------------------------------------------------------------------
        def step(self, action):
            # Bypass RoomGridLevel.step (which reads minigrid's global done flag); same logic otherwise.
            obs, reward, terminated, truncated, info = rgl.RoomGrid.step(self, action)
            if action == self.actions.drop:
                self.update_objs_poss()
            instr = self.instrs
            if self.config.done_action:
                if action == self.actions.done:
                    terminated = True
                    reward = self._reward() if instr.lastStepMatch else 0
                else:
                    instr.lastStepMatch = instr.verify_action(action) == "success"
            elif instr.verify_action(action) == "success":
                terminated, reward = True, self._reward()
            info = {**info, "success": bool(terminated and reward > 0)}
            return obs, reward, terminated, truncated, info

    _CLASSES["InstrLevel"] = InstrLevel
    _CLASSES["OpenBoxInstr"] = OpenBoxInstr
    return InstrLevel


def make_env(instruction: str | Instruction, seed: int, config: EnvConfig | None = None,
             render_mode: str | None = None, grammar: Grammar = DEFAULT_GRAMMAR):
    """A level for ``instruction``, already reset with ``seed`` (deterministic for a seed).

    ``env.unwrapped.mission == instruction``; the first observation is ``observe(env)``.
    Raises :class:`core.instructions.InstructionError` for an instruction outside the grammar.
    """
    env = _level_class()(instruction, config or EnvConfig(), grammar=grammar, render_mode=render_mode)
    env.reset(seed=int(seed))
    return env


def observe(env) -> dict[str, np.ndarray]:
    """The agent's observation of the current state according to ``env.config.obs_mode``.

    symbolic: ``image`` uint8 (7, 7, 3) indexed [x, y] as minigrid gives it; rgb: ``image`` uint8 (H, W, 3)
    agent POV; both with ``direction`` (0..3).
    """
    u = env.unwrapped
    obs = u.gen_obs()
    if u.config.obs_mode == "rgb":
        return {"image": frame_pov(env, u.config.rgb_tile_size), "direction": np.uint8(obs["direction"])}
    return {"image": obs["image"].astype(np.uint8), "direction": np.uint8(obs["direction"])}


def frame_full(env, tile_size: int = 32, crop_to_room: bool = True, highlight: bool = True) -> np.ndarray:
    """RGB frame of the whole grid (the agent's field of view highlighted); by default cropped to the centre
    room and its walls/doors, which is where everything happens. uint8 (H, W, 3)."""
    u = env.unwrapped
    img = u.get_full_render(highlight, tile_size)
    if crop_to_room:
        room = u.get_room(1, 1)
        (x0, y0), (w, h) = room.top, room.size
        img = img[y0 * tile_size:(y0 + h) * tile_size, x0 * tile_size:(x0 + w) * tile_size]
    return np.ascontiguousarray(img)


def frame_pov(env, tile_size: int = 32) -> np.ndarray:
    """RGB rendering of the agent's 7x7 view (agent at the bottom centre, looking up). uint8 (7t, 7t, 3)."""
    return env.unwrapped.get_pov_render(tile_size)


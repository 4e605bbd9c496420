"""Where a run computes: ``--device auto|cpu|cuda`` for train, evaluate, rollout and embed.

Conventions (one place):

- ``auto`` takes CUDA when ``torch.cuda.is_available()``, else the CPU.
- ``cuda`` where no CUDA device exists raises :class:`DeviceError` (a clear error, never a silent CPU fallback).
- Results record the device used and its name (:func:`describe`): ``{"device": "cuda", "device_name": "NVIDIA
  H100 ..."}`` or ``{"device": "cpu", "device_name": "<processor>"}``.
- Checkpoints always load on the CPU (``map_location="cpu"``); a caller moves the model afterwards.

torch is imported lazily, so ``core.device`` is cheap to import (the sweep driver validates devices with it).
"""
from __future__ import annotations

import platform
from typing import Any

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device that does not exist here was asked for (or the option is not a device)."""


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def check(device: str | None) -> str:
    """The option itself, validated (``None`` -> ``auto``); nothing is probed."""
    device = "auto" if device is None else str(device)
    if device not in DEVICES:
        raise DeviceError(f"device {device!r}: choose one of {', '.join(DEVICES)}")
    return device


def resolve(device: str | None = "auto") -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device to use here (``cpu`` or ``cuda``). Raises DeviceError."""
    device = check(device)
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise DeviceError("device 'cuda' was asked for, but torch sees no CUDA device here "
                          f"(torch.cuda.is_available() is False; torch {_torch_version()}). "
                          "Use --device cpu, or --device auto to take CUDA only where it exists.")
    return "cpu"


def describe(device: str) -> dict[str, Any]:
    """What a manifest records about a resolved device: its kind and its name."""
    if device == "cuda":
        import torch

        return {"device": "cuda", "device_name": torch.cuda.get_device_name(torch.cuda.current_device())}
    return {"device": "cpu", "device_name": platform.processor() or platform.machine() or "cpu"}


def _torch_version() -> str:
    import torch

    return str(torch.__version__)

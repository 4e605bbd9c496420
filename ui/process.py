"""Housekeeping for the Streamlit server process (shared by every session)."""
from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_at_last_freeze = 0


def freeze_long_lived(min_new_modules: int = 50) -> bool:
    """After a run that imported many modules, collect once and put every surviving object out of the cyclic
    garbage collector's reach (``gc.freeze``). Returns whether it did.

    Modules such as torch, umap and transformers bring hundreds of thousands of objects that live as long as
    the process. Left in the oldest generation, they are rescanned by every full collection. With torch loaded,
    one collection took about 180 ms here, and one ran during most widget interactions (bench/app.py: 0.27 s
    instead of 0.13 s for a k move). Frozen objects are still freed by reference counting; only cyclic garbage
    among them is never collected."""
    global _modules_at_last_freeze
    with _lock:
        n = len(sys.modules)
        if n - _modules_at_last_freeze < min_new_modules:
            return False
        gc.collect()
        gc.freeze()
        _modules_at_last_freeze = n
        return True

"""ui.process: the server's one-off garbage-collector freeze after heavy imports."""
import gc

from ui import process


def test_freeze_happens_once_per_batch_of_new_modules(monkeypatch):
    monkeypatch.setattr(process, "_modules_at_last_freeze", 0)
    try:
        gc.unfreeze()
        assert process.freeze_long_lived(min_new_modules=10) is True  # every module imported so far is new
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # numpy, pandas, streamlit... now outside the cyclic collector's scans
        assert process.freeze_long_lived(min_new_modules=10) is False  # nothing new since
        assert gc.get_freeze_count() == frozen
        monkeypatch.setattr(process, "_modules_at_last_freeze", process._modules_at_last_freeze - 10)
        assert process.freeze_long_lived(min_new_modules=10) is True  # as if 10 modules had been imported
    finally:
        gc.unfreeze()

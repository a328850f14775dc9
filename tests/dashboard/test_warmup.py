"""dashboard.warmup: the work ``scaleplan serve`` starts in a thread fills the caches the pages read."""

from __future__ import annotations

from scaleplan.core import calibration
from scaleplan.dashboard import common, fits, warmup


def test_warm_up_leaves_the_calibration_for_the_first_page(dashboard_db, monkeypatch):
    """After warm(), the page's call of the one calibration loader computes nothing: it gets the same object."""
    fits._calibration.clear()
    warmup.warm()
    warmed, why, _ = fits.calibration_or_reason()
    assert warmed is not None, f"the built database has the shipped sweep's calibration: {why}"

    def refit(*args, **kwargs):
        raise AssertionError("the calibration was fitted again after the warm-up")

    monkeypatch.setattr(calibration, "fit_calibration", refit)
    again, _, _ = fits.calibration_or_reason()
    assert again is warmed


def test_a_failing_warm_up_is_logged_and_leaves_the_work_to_the_page(monkeypatch, caplog):
    """The thread never raises: what it could not do, the page does (and explains) itself."""
    monkeypatch.setattr(common, "database_status", lambda: (_ for _ in ()).throw(OSError("disk gone")))
    monkeypatch.setattr("streamlit.runtime.Runtime.exists", staticmethod(lambda: True))
    with caplog.at_level("WARNING", logger="scaleplan.dashboard"):
        warmup.start().join(timeout=30)
    assert any("warm-up at server start failed" in record.message for record in caplog.records)


def test_the_warm_up_thread_does_not_flood_the_log_with_missing_context_warnings(monkeypatch):
    """Streamlit warns "missing ScriptRunContext" for every cache call outside a session; the warm-up thread
    has none by design, so its warnings are dropped, while another thread's still pass."""
    import logging
    import threading

    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.threadName}: {record.getMessage()}")

    monkeypatch.setattr("streamlit.runtime.Runtime.exists", staticmethod(lambda: False))
    monkeypatch.setattr(warmup, "RUNTIME_WAIT_S", 0.0)
    warmup.start().join(timeout=30)  # installs the filter; the thread gives up at once (no runtime)
    context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    handler = Collect()
    context_log.addHandler(handler)
    try:
        for name in (warmup.THREAD_NAME, "another-thread"):
            thread = threading.Thread(target=get_script_run_ctx, name=name)
            thread.start()
            thread.join()
    finally:
        context_log.removeHandler(handler)
    assert not any(line.startswith(warmup.THREAD_NAME) for line in seen)
    assert any(line.startswith("another-thread") and "missing ScriptRunContext" in line for line in seen)

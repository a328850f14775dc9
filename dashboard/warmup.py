"""What a fresh server's first page would otherwise wait for, done once when ``scaleplan serve`` starts.

:func:`start` runs :func:`warm` in a background thread: it fills the same caches the pages read
(nothing is computed that a page would not compute itself, with the same keys), so the first
page of a fresh server finds them ready and a later page never waits for them:

* Plotly's lazily imported validators and the ``plotly_white`` template (the first figure of a
  process costs ~0.1-0.4 s more than the next);
* the database connection, its status check and the family list (``dashboard.common``);
* the calibration learned on the stored or shipped sweep results (``dashboard.fits``), which the
  Fit page and the planner share: reading the results and fitting it cost ~0.15 s on a quiet
  machine and 0.5-0.8 s on a loaded one.

A page that asks for one of these while the thread computes it waits for that computation
(``st.cache_data``/``st.cache_resource`` compute each key once). Anything that fails here is
logged and left to the page, which shows its own message.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("scaleplan.dashboard")

RUNTIME_WAIT_S = 60.0  # the server's runtime exists a fraction of a second after bootstrap starts
THREAD_NAME = "scaleplan-warmup"
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _NoContextWarning(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning when the warm-up thread raises it: the thread
    has no session by design (it fills process-wide caches), and the warning would otherwise print about
    a dozen times in the server's log at every start. The same warning from any other thread passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName == THREAD_NAME and "missing ScriptRunContext" in record.getMessage())


def warm() -> None:
    """Fill the shared caches (see the module docstring); needs Streamlit's runtime to exist."""
    import pandas as pd
    import plotly.io as pio

    from scaleplan.dashboard import analysis_charts, common, fits

    curves = pd.DataFrame({"run_id": ["a", "a"], "tokens_seen": [1e9, 2e9], "value": [3.0, 2.9]})
    runs = pd.DataFrame({"run_id": ["a"], "label": ["a"], "num_params": [1e8]})
    figure = analysis_charts.observed_figure(curves=curves, runs=runs, y_title="loss", title="warm-up")
    pio.to_json(figure, validate=False)
    if common.database_status() != "ok":
        return
    common.cached_families(common.db_version())
    fits.calibration_or_reason()


def _run() -> None:
    from streamlit.runtime import Runtime

    deadline = time.monotonic() + RUNTIME_WAIT_S
    while not Runtime.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)
    started = time.perf_counter()
    try:
        warm()
    except Exception:  # noqa: BLE001 - a page computes the same again and shows its own message
        log.warning("warm-up at server start failed; the first page computes it", exc_info=True)
        return
    log.info("warm-up at server start done in %.2f s", time.perf_counter() - started)


def start() -> threading.Thread:
    """Start :func:`warm` in a daemon thread once Streamlit's runtime exists (call before ``bootstrap.run``)."""
    context_log = logging.getLogger(_CONTEXT_LOGGER)
    if not any(isinstance(f, _NoContextWarning) for f in context_log.filters):
        context_log.addFilter(_NoContextWarning())
    thread = threading.Thread(target=_run, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread

"""The meta-analysis results in the dashboard: cached loading and the "run the sweep" offer.

The results file is ``common.meta_path()`` (the settings' meta_path); without results of the
current data version there, the ones shipped with scaleplan are used. Loading is
cached on the file's (mtime, size) and on the database's data version, so a new sweep (or a
rebuilt database) is picked up on the next rerun. Only rows of the current data version are used.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from scaleplan.core import meta, storage
from scaleplan.dashboard import common

log = logging.getLogger("scaleplan.dashboard")
# Measured: the full sweep (5,376 tasks, identical designs fitted once) took 256 CPU-s on the 2-core
# machine of benchmarks/results/bench_sweep_output.txt, i.e. 0.048 s per planned task on one core.
# Machines of this class differ by up to 4x (the previous fitter took 155 CPU-s on one, 680 on
# that one): the estimate is the slower machine's, rounded up.
SECONDS_PER_FIT = 0.05
_SWEEP_LOCK = threading.Lock()


def meta_version() -> tuple[int, int] | None:
    """(mtime_ns, size) of the results file, or None when there is none."""
    try:
        stat = common.meta_path().stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def results_key() -> tuple:
    """What the sweep results in use depend on, for cache keys: the results file (path, stat) and the
    database's data version. The shipped results have no file (stat None), so without the data version
    a rebuilt database would reuse what was computed from the old data until the server restarts."""
    return (str(common.meta_path()), meta_version(), data_version(common.db_version()))


@st.cache_data(show_spinner=False, max_entries=4)
def data_version(version: common.DbVersion | None) -> str | None:
    with common.db() as con:
        return storage.stored_data_version(con)


@st.cache_data(show_spinner=False, max_entries=4)
def _load(path: str, file_version: tuple[int, int] | None, data: str | None) -> pd.DataFrame:
    # With no results of this data version on this machine, the results shipped with scaleplan
    # for the same data version are used (meta.load_results), so the pages are ready on first open.
    return meta.load_results(Path(path), data_version=data)


def results() -> tuple[pd.DataFrame, str | None]:
    """The sweep rows of the current data version, and why there are none (None when there are).

    The reason is a clause in lower case without a full stop, for the page's own sentence.

    A results file that cannot be read (damaged, or locked by a running sweep) gives an empty
    frame and a message saying so.
    """
    data = data_version(common.db_version())
    empty = pd.DataFrame(columns=list(meta.RESULT_COLUMNS))
    try:
        frame = _load(str(common.meta_path()), meta_version(), data)
    except (duckdb.Error, OSError) as error:
        log.warning("meta-analysis results unreadable: %s", error)
        return empty, (
            "the meta-analysis results cannot be read right now (a sweep may be running, or the file is "
            "damaged); reload the page in a minute, or run the sweep again"
        )
    if frame.empty:
        stored = meta_version() is not None
        return frame, (
            (
                "the stored meta-analysis results belong to an older build of the database and no longer "
                "apply; run the sweep again for the current data"
            )
            if stored
            else None
        )
    if not (frame["status"] == "ok").any():
        return frame, "the meta-analysis results hold no successful fit; run the sweep again"
    return frame, None


def available(frame: pd.DataFrame) -> bool:
    return not frame.empty and bool((frame["status"] == "ok").any())


@st.cache_data(show_spinner=False, max_entries=4)
def planned_fits(version: common.DbVersion | None) -> int:
    """How many fits a full sweep plans on this database (for the button's label)."""
    total = 0
    with common.db() as con:
        families = meta.eligible_families(con)
        for family in families:
            curves = storage.family_curves(con, family)
            if not curves.empty:
                total += len(meta.plan_tasks(family, curves))
    return total


def _minutes(fits: int) -> str:
    seconds = fits * SECONDS_PER_FIT / max(os.cpu_count() or 1, 1)
    return "under a minute" if seconds < 60 else f"~{seconds / 60:.0f} min"


def offer_sweep(key: str, *, reason: str | None = None) -> None:
    """Explain that the results are missing and offer to run the sweep, with a progress bar."""
    version = common.db_version()
    fits = planned_fits(version)
    st.info(
        f"{reason[:1].upper()}{reason[1:]}."
        if reason
        else "The meta-analysis has not been run yet: it fits scaling laws on many choices of small "
        "runs in every family of the collection and measures how far each prediction lands from the real "
        "loss. This page learns its accuracy estimates from those results.",
        icon=":material/science:",
    )
    st.caption(
        f"The results are stored in {common.escape_md(common.meta_path().name)} next to the database; "
        "an interrupted run resumes where it stopped. Set SCALEPLAN_META to use a precomputed file."
    )
    if st.button(
        f"Run the meta-analysis ({fits:,} fits, {_minutes(fits)})",
        type="primary",
        key=key,
        icon=":material/play_arrow:",
    ):
        _run_with_progress()


def _run_with_progress() -> None:
    bar = st.progress(0.0, text="Starting the fits...")

    def on_progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,} fits done")

    if not _SWEEP_LOCK.acquire(blocking=False):
        st.info("Another session is running the meta-analysis right now; reload the page when it is done.")
        return
    try:
        report = meta.run_sweep(common.db_path(), common.meta_path(), progress=False, on_progress=on_progress)
    except storage.FileInUseError as error:  # a results file or database another program holds: not a bug
        flag = "--meta" if error.path == common.meta_path() else "--db"
        st.error("The meta-analysis cannot run now: " + common.in_use_text(error, flag), icon=":material/lock:")
        return
    except (duckdb.Error, OSError, storage.DatabaseError) as error:
        log.exception("meta-analysis failed")
        st.error(f"The meta-analysis failed: {common.escape_md(common.short(error))}")
        return
    finally:
        _SWEEP_LOCK.release()
    bar.progress(
        1.0,
        text=f"Done: {report.fitted:,} fits succeeded, {report.failed:,} could not be fitted "
        f"({report.seconds / 60:.1f} min).",
    )
    _load.clear()
    st.rerun()

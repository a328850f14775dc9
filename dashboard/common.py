"""Shared dashboard plumbing: the database connection, cached queries, the page guard.

Every page script ends with ``common.run_page(render)``, which

* checks the database first (``needs_database=True``) and, when it is missing, stale or
  damaged, shows a clear message with a "Build the database" button and a progress bar
  instead of the page (a missing file at a path given with ``--db`` is not built on: the page
  says how to restore it or build it there);
* runs ``render()`` and turns any unexpected exception into a short ``st.error`` (the full
  traceback goes to the server log only), and a database error raised mid-page (file
  deleted or corrupted while the app runs) into the rebuild offer.

Caching: query results are cached with ``st.cache_data`` keyed on :func:`db_version`, a normal
(hashed) parameter made of the database file's mtime, size and inode, so a rebuild (which
swaps the file in atomically) invalidates every cached result. ``st.cache_data`` ignores
parameters whose names start with an underscore, so the version is never named ``_version``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import streamlit as st

from scaleplan.core import exports, storage
from scaleplan.core.errors import UserError
from scaleplan.core.manifest import DataSourceError
from scaleplan.core.settings import Settings

log = logging.getLogger("scaleplan.dashboard")

DbVersion = tuple[int, int, int]

STATUS_MESSAGES = {
    "missing": "The database has not been built yet.",
    "stale": "The database was built from older sources or code and must be rebuilt.",
    "corrupt": "The database file is damaged and cannot be read.",
    "foreign": "The database path holds a file that is not scaleplan's database, so scaleplan will not write over it.",
}


_SETTINGS_KEY = "_scaleplan_settings"


def settings_from_argv(argv: list[str]) -> Settings:
    """Settings from the script arguments that ``scaleplan serve`` passes, then environment, defaults.

    Only arguments given to the app script itself count (``argv[0]`` is ``app.py``); under
    another runner (AppTest in pytest) ``argv`` belongs to that runner and is ignored.
    """
    import argparse

    from scaleplan.core.cli._common import add_settings_arguments, settings_from_args

    parser = argparse.ArgumentParser(add_help=False)
    add_settings_arguments(parser)
    own = argv[1:] if argv and Path(argv[0]).name == "app.py" else []
    return settings_from_args(parser.parse_known_args(own)[0])


def settings() -> Settings:
    """This session's settings, resolved once (on its first script run) and kept in the session."""
    try:
        cached = st.session_state.get(_SETTINGS_KEY)
    except Exception:  # noqa: BLE001 - outside a script run (a worker thread): resolve afresh
        return settings_from_argv(sys.argv)
    if cached is None:
        cached = settings_from_argv(sys.argv)
        st.session_state[_SETTINGS_KEY] = cached
    return cached


def db_path() -> Path:
    """The database file of this session's settings."""
    return settings().db_path


def db_version(path: Path | None = None) -> DbVersion | None:
    """(mtime_ns, size, inode) of the database file, or None when it does not exist."""
    try:
        stat = (path or db_path()).stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


# ---------------------------------------------------------------------------------------------
# Connection: one read-only DuckDB connection per database file version, shared by sessions;
# each query runs on its own cursor (DuckDB connections are not safe across threads).


class _Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.build_lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.key: tuple[str, DbVersion] | None = None

    def release(self) -> None:
        """Close the shared connection (DuckDB keeps a file open while any connection lives)."""
        if self.con is not None:
            try:
                self.con.close()
            except duckdb.Error:
                pass
        self.con, self.key = None, None


@st.cache_resource(show_spinner=False)
def _holder() -> _Holder:
    return _Holder()


def release_connection() -> None:
    holder = _holder()
    with holder.lock:
        holder.release()


@contextmanager
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the current database file; reopened when the file was replaced."""
    path = db_path()
    version = db_version(path)
    if version is None:
        raise storage.DatabaseError("the database file is missing")
    holder = _holder()
    with holder.lock:
        key = (str(path), version)
        if holder.key != key:
            holder.release()
            holder.con = storage.connect(path)
            holder.key = key
        cursor = holder.con.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


# ---------------------------------------------------------------------------------------------
# Database health, and the build offer.


@st.cache_data(show_spinner=False, max_entries=8)
def _status(path: str, version: DbVersion) -> str:
    return storage.database_status(Path(path))


def database_status() -> str:
    """ "ok", "missing", "stale" or "corrupt" for the current file (cached per file version)."""
    path = db_path()
    version = db_version(path)
    holder = _holder()
    with holder.lock:
        if holder.key is not None and holder.key != (str(path), version):
            # An open connection would make DuckDB read its cached copy of a replaced file.
            holder.release()
    if version is None:
        return "missing"
    return _status(str(path), version)


def ensure_database_ui(status: str | None = None) -> bool:
    """True when the database is usable; otherwise explain why and offer a build."""
    try:
        status = status or database_status()
    except storage.DatabaseInUseError as error:  # another program writes to it: nothing to build
        st.error(in_use_text(error, "--db"), icon=":material/lock:")
        return False
    if status == "ok":
        return True
    if status == "foreign":
        st.error(
            f"{STATUS_MESSAGES['foreign']} Point SCALEPLAN_DB (or `scaleplan serve --db`) at another path, "
            "or move that file away, then reload the page.",
            icon=":material/database:",
        )
        return False
    if status == "missing" and settings().db_explicit:
        _explicit_database_missing()
        return False
    st.warning(
        f"{STATUS_MESSAGES.get(status, 'The database cannot be used.')} "
        "Building it from the sources takes under a minute.",
        icon=":material/database:",
    )
    if st.button("Build the database now", type="primary", key="build-database"):
        _build_with_progress()
    return False


def _explicit_database_missing() -> None:
    """The database path given with ``--db`` (or ``$SCALEPLAN_DB``) holds no file (moved or deleted
    while serving: ``serve`` refuses a missing one at start): say so and how to fix it, never build
    there, as no command does (a mistyped path must not become a new database)."""
    import shlex

    current = settings()
    st.warning(  # a warning like the default location's "not built yet": pages without the database go on
        f"The database file given with `--db` (or `$SCALEPLAN_DB`), {escape_md(current.db_path, limit=1000)}, "
        "is missing: it was moved or deleted while the dashboard was running. scaleplan builds a database "
        "only at its default location, not at a path you gave. Restore the file, or build it there with the "
        "command below, then reload this page.",
        icon=":material/database:",
    )
    mirror = f" --mirror {shlex.quote(str(current.mirror))}" if current.mirror is not None else ""
    st.code(f"scaleplan data build --db {shlex.quote(str(current.db_path))}{mirror}", language="bash")


def in_use_text(error: storage.FileInUseError, flag: str) -> str:
    """The page's message for a file another program holds (Markdown): the shared reason
    (:func:`storage.in_use_reason`, the path escaped), then what the person at this page can do;
    ``flag`` is the ``scaleplan serve`` option that names the file (``--db``)."""
    reason = storage.in_use_reason(escape_md(error.path, limit=1000), error.pid)
    return (
        f"{reason}. Close that program, then reload this page. If you started this dashboard, you can instead "
        f"restart `scaleplan serve` with another `{flag}`. The file was not touched."
    )


def file_error_text(error: UserError, flag: str) -> str:
    """The page's message (Markdown) for a user error about one of scaleplan's files:
    :func:`in_use_text` when another program holds it, else the error's first line, escaped."""
    if isinstance(error, storage.FileInUseError):
        return in_use_text(error, flag)
    return escape_md(short(error))


def _build_with_progress() -> None:
    bar = st.progress(0.0, text="Reading the sources...")

    def on_source(name: str, index: int, total: int) -> None:
        bar.progress(index / max(total, 1), text=f"Reading source {index + 1} of {total}: {name}")

    holder = _holder()
    if not holder.build_lock.acquire(blocking=False):
        st.info("Another session is building the database right now; reload the page in a minute.")
        return
    try:
        release_connection()
        current = settings()
        storage.build_database(
            current.db_path,
            mirror=current.mirror,
            download_dir=current.download_dir,
            download_url=current.download_url,
            progress=False,
            on_source=on_source,
        )
    except (DataSourceError, storage.DatabaseError, OSError, duckdb.Error) as error:
        log.exception("database build failed")
        st.error(f"The build failed: {escape_md(short(error))}")
        return
    except Exception:  # noqa: BLE001 - never a traceback in the page
        log.exception("database build failed")
        st.error("The build failed unexpectedly; the server log has the details.")
        return
    finally:
        holder.build_lock.release()
    bar.progress(1.0, text="Done")
    st.cache_data.clear()
    st.rerun()


# ---------------------------------------------------------------------------------------------
# Page guard.


@contextmanager
def page_guard() -> Iterator[None]:
    """Errors inside the block shown as a short message and logged in full, never as a traceback; a
    database error also drops the connection and the cached queries, and offers the build when the
    database is gone. Around every page body (:func:`run_page`) and every fragment's body
    (:func:`guarded`): a fragment's rerun runs only the fragment, outside the page's guard."""
    try:
        yield
    except (storage.DatabaseError, duckdb.Error) as error:
        log.warning("database error while drawing a page: %s", error)
        release_connection()
        st.cache_data.clear()
        if ensure_database_ui():  # usable again: the error was passing
            st.error("The database could not be read just now. Reload the page to try again.", icon=":material/error:")
    except Exception as error:  # noqa: BLE001 - shown as a short message, logged in full
        log.exception("unexpected error while drawing a page")
        st.error(
            f"Something went wrong while drawing this page ({type(error).__name__}). "
            "Change the selection or reload the page; the server log has the details.",
            icon=":material/error:",
        )


def guarded(body: Callable[..., None]) -> Callable[..., None]:
    """``body`` run inside :func:`page_guard`; for fragments: ``@st.fragment`` over ``@common.guarded``."""

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> None:
        with page_guard():
            body(*args, **kwargs)

    return run


def run_page(render: Callable[[], None], *, needs_database: bool = True) -> None:
    """Run a page body: database check first, then ``render()`` with errors shown briefly."""
    with page_guard():
        if needs_database and not ensure_database_ui():
            return
        render()


# ---------------------------------------------------------------------------------------------
# Text helpers.

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=])")


def escape_md(text: object, limit: int = 200) -> str:
    """``text`` made inert in Streamlit markdown (every ASCII punctuation mark escaped), shortened."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    value = value.replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", value)


def markdown_table(frame: pd.DataFrame, limit: int = 200) -> str:
    """``frame`` as a Markdown table, every header and cell escaped with :func:`escape_md`.

    For the small tables of a page's first view (a few rows): Streamlit draws it as plain HTML, while
    ``st.dataframe`` and ``st.table`` make the browser fetch and run its Arrow grid's JavaScript
    (~0.9 MB in 20 chunks), which delays the page's chart on a cold load.
    """
    header = "| " + " | ".join(escape_md(c, limit) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(escape_md(v, limit) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def inert_frame(frame: pd.DataFrame, limit: int = 400) -> pd.DataFrame:
    """``frame`` with its index, columns and cells escaped with :func:`escape_md`, for ``st.table``, which
    renders Markdown (images, links) in all three: user strings (scenario and study names) stay text."""
    escaped = frame.map(lambda value: escape_md(value, limit))
    escaped.index = pd.Index([escape_md(v, limit) for v in frame.index], name=frame.index.name)
    escaped.columns = pd.Index([escape_md(c, limit) for c in frame.columns])
    return escaped


def csv_download(
    label: str,
    frame: pd.DataFrame,
    file_name: str,
    *,
    key: str | None = None,
    on_click: Literal["rerun", "ignore"] = "rerun",
) -> None:
    """A download button for ``frame`` as CSV (:func:`scaleplan.core.exports.csv_bytes`: cells that a
    spreadsheet would run as formulas are neutralised); ``key`` and ``on_click`` as st.download_button's."""
    st.download_button(
        label,
        exports.csv_bytes(frame),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=key,
        on_click=on_click,
    )


def short(error: BaseException, limit: int = 300) -> str:
    """The first line of an error message, shortened."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# ---------------------------------------------------------------------------------------------
# One computation per key across sessions

_flights_guard = threading.Lock()
_flights: dict[tuple, list] = {}  # key -> [lock, number of callers holding or waiting for it]


def _flight_key(value: object) -> object:
    """A hashable stand-in for an argument: frames by content, containers element-wise."""
    if isinstance(value, pd.DataFrame):
        return (
            "frame",
            tuple(map(str, value.columns)),
            len(value),
            int(pd.util.hash_pandas_object(value, index=True).sum()),
        )
    if isinstance(value, (tuple, list)):
        return tuple(_flight_key(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def single_flight(cached: Callable) -> Callable:
    """Let one session compute an ``st.cache_data`` result while the others asking for the same
    arguments wait, then read it from the cache.

    ``st.cache_data`` does not deduplicate computations in flight: twenty sessions opening the
    same fit at once would each run the same bootstrap. Keys are the function and its
    arguments (frames by content); like ``st.cache_data``, parameters named with a leading
    underscore are left out of the key.
    """
    signature = inspect.signature(cached)

    @functools.wraps(cached)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        key = (
            cached.__module__,
            cached.__qualname__,
            _flight_key([(name, value) for name, value in bound.arguments.items() if not name.startswith("_")]),
        )
        with _flights_guard:
            entry = _flights.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                return cached(*args, **kwargs)
        finally:
            with _flights_guard:
                entry[1] -= 1
                if entry[1] == 0 and _flights.get(key) is entry:
                    del _flights[key]

    wrapper.clear = getattr(cached, "clear", None)
    return wrapper


# ---------------------------------------------------------------------------------------------
# Cached queries. ``version`` is the database file version; it keys the cache.


@st.cache_data(show_spinner=False, max_entries=4)
def cached_summary(version: DbVersion | None) -> storage.CollectionSummary:
    with db() as con:
        return storage.summary(con)


@st.cache_data(show_spinner=False, max_entries=4)
def cached_families(version: DbVersion | None) -> pd.DataFrame:
    with db() as con:
        return storage.list_families(con)


@st.cache_data(show_spinner=False, max_entries=4)
def cached_runs(version: DbVersion | None) -> pd.DataFrame:
    with db() as con:
        return storage.list_runs(con)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_family_metrics(version: DbVersion | None, families: tuple[str, ...]) -> pd.DataFrame:
    with db() as con:
        return storage.family_metrics(con, list(families))


@st.cache_data(show_spinner=False, max_entries=128)
def cached_explore_runs(
    version: DbVersion | None,
    families: tuple[str, ...],
    metric: str,
    architectures: tuple[str, ...] | None = None,
    training_data: tuple[str, ...] | None = None,
    min_params: float | None = None,
    max_params: float | None = None,
) -> pd.DataFrame:
    with db() as con:
        return storage.explore_runs(
            con,
            list(families),
            metric,
            architectures=None if architectures is None else list(architectures),
            training_data=None if training_data is None else list(training_data),
            min_params=min_params,
            max_params=max_params,
        )


@st.cache_data(show_spinner=False, max_entries=64)
def cached_curves(
    version: DbVersion | None, run_ids: tuple[str, ...], metric: str, max_points: int = 400
) -> pd.DataFrame:
    with db() as con:
        return storage.downsampled_curves(con, list(run_ids), metric, max_points=max_points)


# ---------------------------------------------------------------------------------------------
# Meta-analysis results (the sweep of core.meta), used by the planner and reliability pages.


def meta_path() -> Path:
    """The meta-analysis results file of this session's settings."""
    return settings().meta_path

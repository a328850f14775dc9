"""Shared dashboard plumbing: the database connection, caching, error display."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from core import storage


def db_path() -> Path:
    return Path(os.environ.get("SCALEPLAN_DB") or storage.DEFAULT_DB_PATH)


def ensure_database_ui() -> bool:
    """Check the database; offer a rebuild with a progress bar when it is missing, stale or corrupt."""
    status = storage.database_status(db_path())
    if status == "ok":
        return True
    messages = {
        "missing": "The database has not been built yet.",
        "stale": "The database was built from older sources or code and must be rebuilt.",
        "corrupt": "The database file is damaged and cannot be read.",
    }
    st.warning(f"{messages[status]} Building it takes under a minute.")
    if st.button("Build the database now", type="primary"):
        bar = st.progress(0.0, text="Reading sources...")

        def on_source(name: str, index: int, total: int) -> None:
            bar.progress(index / total, text=f"Reading source {index + 1} of {total}: {name}")

        try:
            storage.build_database(db_path(), progress=False, on_source=on_source)
        except Exception as error:  # shown to the user, never a traceback
            st.error(f"The build failed: {error}")
            return False
        bar.progress(1.0, text="Done")
        st.cache_resource.clear()
        st.cache_data.clear()
        st.rerun()
    return False


@st.cache_resource
def _connection(path: str, mtime: float):
    return storage.connect(Path(path))


def connection():
    """A read-only connection, reopened when the file is replaced by a rebuild."""
    path = db_path()
    return _connection(str(path), path.stat().st_mtime)


@st.cache_data(show_spinner=False)
def cached_summary(_version: float | None = None) -> dict:
    return storage.summary(connection())


@st.cache_data(show_spinner=False)
def cached_families(_version: float | None = None) -> pd.DataFrame:
    return storage.list_families(connection())

"""A user's uploaded runs: validation for the "Your runs" page and access for the other pages.

The validated table lives in ``st.session_state["uploaded_runs"]`` (a DataFrame with run_id,
run_name, seed, num_params, tokens_seen, value; ``value`` is the uploaded loss) for the rest of
the browser session; nothing is written to disk. Other pages read it with::

    from scaleplan.dashboard import uploads
    table = uploads.uploaded_runs()   # None when nothing was uploaded
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from scaleplan.core import formats, userdata

SESSION_KEY = "uploaded_runs"
NAME_KEY = "uploaded_runs_name"
COLUMNS = ("run_id", "run_name", "seed", "num_params", "tokens_seen", "value")


@dataclass(frozen=True)
class UploadOutcome:
    """What an upload gave: the validated table, or the reason it cannot be used."""

    table: pd.DataFrame | None
    messages: tuple[str, ...] = ()
    rejected_rows: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.table is not None

    def problems(self) -> pd.DataFrame:
        """The row-by-row messages as a table: Line (of the file, first line = 1; a Parquet file's
        data row, first = 1, under "Row"), Problem."""
        rows = []
        unit = "Line"
        for message in self.messages:
            match = re.match(r"(line|row) (\d+): (.*)", message, flags=re.DOTALL)
            if match and match.group(1) == "row":
                unit = "Row"
            rows.append((int(match.group(2)), match.group(3)) if match else (None, message))
        return pd.DataFrame(rows, columns=[unit, "Problem"])


def process_upload(data: bytes, *, size: int | None = None) -> UploadOutcome:
    """Validate an uploaded file (bytes, any of :data:`core.formats.FORMATS`). Never raises for bad input:
    returns an outcome with ``error``."""
    size = len(data) if size is None else size
    if size > userdata.MAX_UPLOAD_BYTES:
        return UploadOutcome(None, error=userdata.sentence(userdata.too_large_message(size)))
    try:
        result = formats.parse_runs(data)  # every format and column, as the Your runs page reads them
    except userdata.RunsTableError as error:
        return UploadOutcome(None, error=userdata.sentence(str(error)))
    finally:
        # Parsing a 20 MB file leaves ~80 MB of pandas reference cycles, and the server runs no full
        # collection after each script run (runner.postScriptGC = false): collect them now, once per upload.
        gc.collect()
    return UploadOutcome(result.table[list(COLUMNS)].copy(), result.messages, result.rejected_rows)


def column_docs() -> pd.DataFrame:
    """Every column a runs file may have (:data:`core.userdata.COLUMN_SPECS`): Column, Required, Also read as, Meaning."""
    rows = [
        (c.name, "required" if c.required else "optional", ", ".join(c.aliases), c.meaning)
        for c in userdata.COLUMN_SPECS
    ]
    return pd.DataFrame(rows, columns=["Column", "Required", "Also read as", "Meaning"])


def uploaded_runs() -> pd.DataFrame | None:
    """The validated uploaded runs of this session, or None."""
    table = st.session_state.get(SESSION_KEY)
    return table if isinstance(table, pd.DataFrame) and not table.empty else None


def uploaded_name() -> str | None:
    return st.session_state.get(NAME_KEY)


def store(outcome: UploadOutcome, name: str) -> bool:
    """Keep a successful upload for the session (replacing any earlier one). A failed upload changes
    nothing: the last valid upload stays in use. Returns whether an earlier upload is kept after a failure."""
    if outcome.ok:
        st.session_state[SESSION_KEY] = outcome.table
        st.session_state[NAME_KEY] = name
        return False
    return uploaded_runs() is not None


def release(file_id: str) -> None:
    """Drop an uploaded file's bytes from Streamlit's in-memory upload store once it is parsed.

    Streamlit holds every uploaded file of a session until the session ends (plus its
    disconnect grace period); the parsed table is all the pages need.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and ctx.uploaded_file_mgr is not None:
        ctx.uploaded_file_mgr.remove_file(session_id=ctx.session_id, file_id=file_id)


def clear() -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(NAME_KEY, None)

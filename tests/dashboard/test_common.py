"""dashboard.common's text helpers: Markdown tables whose cells cannot break the table or inject markup."""

from __future__ import annotations

import re

import pandas as pd

from scaleplan.dashboard import common


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells, split on the pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_table_has_a_header_a_rule_and_one_line_per_row():
    frame = pd.DataFrame({"Run": ["70M", "160M"], "Tokens": ["300B", "300B"]})
    lines = common.markdown_table(frame).splitlines()
    assert lines[0] == "| Run | Tokens |"
    assert lines[1] == "|---|---|"
    assert len(lines) == 4 and all(len(_cells(line)) == 2 for line in lines)


def test_markdown_table_escapes_user_text_in_cells_and_headers():
    # An uploaded run name with a pipe, a newline, emphasis, a link and HTML: each stays one cell of plain text.
    name = "a|b\nc *x* [l](http://e) <b>"
    frame = pd.DataFrame({"Run | name": [name], "n": [3]})
    text = common.markdown_table(frame)
    lines = text.splitlines()
    assert len(lines) == 3  # the newline did not start a new row
    assert all(len(_cells(line)) == 2 for line in (lines[0], lines[2]))
    cell = _cells(lines[2])[0].strip()
    assert "<b>" not in text and "*x*" not in text and "](" not in text
    assert cell.replace("\\", "") == name.replace("\n", " ")  # the text itself is kept


def test_markdown_table_of_no_rows_is_its_header():
    frame = pd.DataFrame(columns=["Parameter", "Value"])
    assert common.markdown_table(frame).splitlines() == ["| Parameter | Value |", "|---|---|"]


def test_a_guarded_fragment_shows_a_short_message_not_a_traceback():
    # A fragment's own rerun runs outside the page's guard (common.run_page): common.guarded gives it the same.
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from scaleplan.dashboard import common

        @st.fragment
        @common.guarded
        def part():
            st.markdown("before")
            raise ValueError("boom")

        part()
        st.markdown("after the fragment")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert "Something went wrong while drawing this page (ValueError)" in at.error[0].value
    assert [m.value for m in at.markdown] == ["before", "after the fragment"]


def test_inert_frame_escapes_index_columns_and_cells():
    import pandas as pd

    from scaleplan.dashboard import common

    frame = pd.DataFrame({"![a](u)": ["**b** [l](h)", "$1.5k"]}, index=["<i>x</i>", "7B"])
    inert = common.inert_frame(frame)
    texts = [*inert.columns, *inert.index, *inert.to_numpy().ravel()]
    originals = [*frame.columns, *frame.index, *frame.to_numpy().ravel()]
    for text, original in zip(texts, originals, strict=True):
        assert text.replace("\\", "") == original  # the same text once shown
        marks = [i for i, ch in enumerate(text) if ch in "![]()*<>$" and (i == 0 or text[i - 1] != "\\")]
        assert marks == [], text


def test_a_database_locked_by_another_program_is_explained_not_built(tmp_path, monkeypatch):
    # A second process holds the file for writing: the page says so (no traceback, no build button).
    import subprocess
    import sys
    import time

    from streamlit.testing.v1 import AppTest

    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        time.sleep(0.2)

        def script():
            from scaleplan.dashboard import common

            common.ensure_database_ui()

        monkeypatch.setenv("SCALEPLAN_DB", str(db))
        at = AppTest.from_function(script).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("in use by another program" in e.value for e in at.error), [e.value for e in at.error]
        assert not at.button
    finally:
        holder.kill()
        holder.wait()


def test_the_in_use_message_speaks_to_the_dashboard_user_with_the_path_escaped(tmp_path, monkeypatch):
    # The CLI's remedy ("point --db / --user-db elsewhere") is a flag the page's reader cannot give, and
    # the path is the server's: shown as text, Markdown-escaped (here it holds '*' and '_').
    from streamlit.testing.v1 import AppTest

    from tests.core.test_storage_in_use import _hold

    folder = tmp_path / "team_*db*"
    folder.mkdir()
    db = folder / "locked.duckdb"
    holder = _hold(db)
    try:

        def script():
            from scaleplan.dashboard import common

            common.ensure_database_ui()

        monkeypatch.setenv("SCALEPLAN_DB", str(db))
        at = AppTest.from_function(script).run()
        assert not at.exception, [e.value for e in at.exception]
        [message] = [e.value for e in at.error]
    finally:
        holder.kill()
        holder.wait()
    assert "in use by another program" in message and f"(PID {holder.pid})" in message
    # Written out by hand: the folder's '_' and '*' each behind a backslash, so Markdown shows them.
    assert "team\\_\\*db\\*" in message and "team_*db*" not in message
    assert "--user-db" not in message and "point --db" not in message
    assert "reload this page" in message and "restart `scaleplan serve` with another `--db`" in message


def test_a_sweep_while_the_results_file_is_held_says_so_on_the_page(built_db, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from scaleplan.core import meta
    from tests.helpers import held_for_writing

    results = tmp_path / "meta.duckdb"
    meta.open_results(results).close()
    monkeypatch.setenv("SCALEPLAN_DB", str(built_db))
    monkeypatch.setenv("SCALEPLAN_META", str(results))

    def script():
        from scaleplan.dashboard import sweep

        sweep._run_with_progress()

    with held_for_writing(results):
        at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    error = " ".join(e.value for e in at.error)
    assert "cannot run now" in error and "in use by another program" in error and "reload this page" in error
    assert "--meta" in error and "point --meta" not in error

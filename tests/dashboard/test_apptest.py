"""The dashboard pages in Streamlit's AppTest (in-process): main paths and bad paths.

The ``app_test`` fixture (tests/dashboard/conftest.py) points SCALEPLAN_DB at the database
built once per session and returns an AppTest of dashboard/app.py after its first run.
"""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from scaleplan.core import storage, userdata
from scaleplan.dashboard import uploads

GOOD_CSV = userdata.TEMPLATE_CSV.encode()
MIXED_CSV = (
    b"run_name,num_params,tokens_seen,loss\na,1e8,1e9,3.0\na,1e8,2e9,2.9\na,1e8,4e9,oops\nb,4e8,1e9,2.8\nb,4e8,2e9,-1\n"
)
BAD_CSV = b"name,size,steps\nx,1,2\n"


def _no_failure(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _charts(at) -> int:
    return len(at.get("plotly_chart"))


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


# ---------------------------------------------------------------------------------------------
# Overview


def test_overview_counts_and_families(app_test):
    at = app_test()
    _no_failure(at)
    assert at.title[0].value == "scaleplan"
    labels = [m.label for m in at.metric]
    assert labels == ["Training runs", "Families", "Observations", "Metrics"]
    assert storage.RUN_COUNTING in _texts(at.caption).replace("\\", "")  # what a run is, vs the paper's 485
    assert int(at.metric[0].value.replace(",", "")) >= 300
    families = at.dataframe[0].value
    assert "Family" in families.columns and len(families) >= 30
    assert _charts(at) == 1


def test_overview_sources_count_each_run_once(app_test, con):
    """The sources table counts runs, each once at the source that provides it, so the column adds up to the
    collection's runs (before: 'Models', with the over-training runs counted at both overtrain and
    overtrain_downstreams); a source that only adds values to another's runs says what it adds; large counts
    have thousands separators. Truths read from the database here."""
    at = app_test()
    _no_failure(at)
    sources = next(d.value for d in at.dataframe if "Repository" in d.value.columns).set_index("Source")
    assert "Models" not in sources.columns
    runs = sources["Runs"].str.replace(",", "").astype(int)
    total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert runs.sum() == total == int(at.metric[0].value.replace(",", ""))
    provided = dict(con.execute("SELECT source, count(*) FROM runs GROUP BY source").fetchall())
    assert runs.to_dict() == {s: provided.get(s, 0) for s in sources.index}
    observations = dict(con.execute("SELECT source, count(*) FROM observations GROUP BY source").fetchall())
    assert sources["Observations"].to_dict() == {s: f"{observations[s]:,}" for s in sources.index}
    assert sources.loc["mamba", "Observations"] == "132,522"  # one LLM360 Mamba run, logged every few steps
    added, others = con.execute(
        """SELECT count(DISTINCT o.run_id), any_value(r.source) FROM observations o JOIN runs r USING (run_id)
           WHERE o.source = 'overtrain_downstreams' AND r.source <> o.source"""
    ).fetchone()
    assert runs["overtrain_downstreams"] == 0
    assert f"on {added:,} runs of {others}" in sources.loc["overtrain_downstreams", "Adds to other sources' runs"]
    assert sources.loc["overtrain", "Adds to other sources' runs"] == ""


# ---------------------------------------------------------------------------------------------
# Explore


def test_explore_default_view(app_test):
    at = app_test("explore.py")
    _no_failure(at)
    assert at.multiselect(key="explore.family").value == ["pythia"]
    assert at.selectbox(key="explore.metric").value == "zero-shot/lambada_openai/log_ppl"
    assert _charts(at) == 1
    assert at.query_params["family"] == ["pythia"] or at.query_params["family"] == "pythia"
    table = at.dataframe[0].value
    assert len(table) == 7 and "Parameters" in table.columns


def test_explore_table_shows_the_final_value_among_its_first_columns(app_test, con):
    """At 1,400 px the runs table shows about five columns before it scrolls sideways: the final value is the
    fourth, beside the run and its size (before: the eleventh, off screen), and holds each run's last
    observation of the metric, read here from the database."""
    at = app_test("explore.py")
    _no_failure(at)
    table = at.dataframe[0].value
    columns = list(table.columns)
    final = next(c for c in columns if c.startswith("Final "))
    assert columns[:4] == ["Run", "Family", "Parameters", final], columns
    assert columns[-1] == "Run id"
    last = con.execute(
        """SELECT r.model_name, arg_max(o.value, o.tokens_seen) FROM observations o JOIN runs r USING (run_id)
           WHERE o.family = 'pythia' AND o.metric = 'zero-shot/lambada_openai/log_ppl' GROUP BY r.model_name"""
    ).fetchall()
    assert dict(zip(table["Run"], table[final])) == pytest.approx(dict(last))

    several = app_test("explore.py", query_params={"family": ["pythia", "gpt3"]})  # each family's own metric
    assert list(several.dataframe[0].value.columns)[:5] == ["Run", "Family", "Parameters", "Metric", "Final value"]


def test_explore_select_family_and_flops(app_test):
    at = app_test("explore.py")
    at.multiselect(key="explore.family").set_value(["gpt3"]).run()
    _no_failure(at)
    assert at.selectbox(key="explore.metric").value == "val/loss"  # gpt3's default metric
    assert _charts(at) == 1 and len(at.dataframe[0].value) == 8
    at.segmented_control(key="explore.x").set_value("flops").run()
    _no_failure(at)
    assert _charts(at) == 1
    assert at.query_params["x"] in ("flops", ["flops"])


def test_explore_x_axis_flipped_back_redraws_the_same_chart_without_rebuilding_it(app_test, monkeypatch):
    """The chart of a view is built once (kept per view): flipping the x axis back sends the same figure."""
    from scaleplan.dashboard import charts

    at = app_test("explore.py")
    first = at.get("plotly_chart")[0].proto.spec
    built = []
    original = charts.curves_figure
    monkeypatch.setattr(
        charts, "curves_figure", lambda *args, **kwargs: built.append(kwargs["x"]) or original(*args, **kwargs)
    )
    at.segmented_control(key="explore.x").set_value("flops").run()
    flops = at.get("plotly_chart")[0].proto.spec
    at.segmented_control(key="explore.x").set_value("tokens").run()
    assert at.get("plotly_chart")[0].proto.spec == first != flops
    assert "tokens_seen" not in built  # the tokens view was not built again


def test_explore_size_filter_narrows_the_table(app_test, con):
    at = app_test("explore.py")
    assert at.select_slider(key="explore.size").options[:3] == ["70M", "162M", "405M"]  # B/M labels
    sizes = sorted(storage.explore_runs(con, ["pythia"], "zero-shot/lambada_openai/log_ppl")["num_params"])
    at.select_slider(key="explore.size").set_range(sizes[1], sizes[2]).run()
    _no_failure(at)
    assert len(at.dataframe[0].value) == 2


def test_explore_long_curves_are_thinned(app_test):
    at = app_test("explore.py", query_params={"family": "llm360-mamba"})
    _no_failure(at)
    assert _charts(at) == 1
    assert "thinned to 400 points" in _texts(at.caption)


def test_explore_empty_selection_is_a_notice(app_test):
    at = app_test("explore.py")
    at.multiselect(key="explore.family").set_value([]).run()
    _no_failure(at)
    assert _charts(at) == 0
    assert "Choose at least one family" in _texts(at.info)


def test_explore_filters_that_match_nothing(app_test, con):
    at = app_test("explore.py", query_params={"family": ["gpt3", "pile-t5"], "metric": "train/loss"})
    _no_failure(at)
    largest = storage.explore_runs(con, ["gpt3"], "train/loss")["num_params"].max()  # 175B, a gpt3 size
    at.multiselect(key="explore.arch").set_value(["encoder-decoder"])
    at.select_slider(key="explore.size").set_range(largest, largest).run()
    _no_failure(at)
    assert _charts(at) == 0
    assert "No run matches these filters" in _texts(at.info)


def test_explore_valid_link(app_test):
    at = app_test("explore.py", query_params={"family": ["opt", "gpt3"], "metric": "val/loss", "x": "flops"})
    _no_failure(at)
    assert at.multiselect(key="explore.family").value == ["opt", "gpt3"]
    assert at.selectbox(key="explore.metric").value == "val/loss"
    assert at.segmented_control(key="explore.x").value == "flops"
    notice = _texts(at.info).replace("\\", "")
    assert "Not shown: opt, which reports no Validation loss" in notice  # said, not hidden
    assert "Each family's default metric" in notice


def test_explore_families_with_different_default_metrics_each_get_theirs(app_test):
    """pythia's default is the LAMBADA last-word loss, gpt3's the validation loss: both are drawn."""
    at = app_test("explore.py", query_params={"family": ["pythia", "gpt3"]})
    _no_failure(at)
    assert at.selectbox(key="explore.metric").value == "each"
    assert _charts(at) == 2 and not at.info
    headings = _texts(at.markdown).replace("\\", "")
    assert "LAMBADA last-word loss, zero-shot (nats/word)** · pythia" in headings
    assert "Validation loss (nats/token)** · gpt3" in headings
    table = at.dataframe[0].value
    assert set(table["Family"]) == {"pythia", "gpt3"} and "Metric" in table.columns
    # One "(default of ...)" mark per family, naming it.
    box = at.selectbox(key="explore.metric")
    marked = [o for o in box.options if "(default of" in o]
    assert sorted(marked) == [
        "LAMBADA last-word loss, zero-shot (nats/word)  (default of pythia)",
        "Validation loss (nats/token)  (default of gpt3)",
    ]
    import json

    legends = {json.loads(chart.proto.spec)["layout"]["legend"]["title"]["text"] for chart in at.get("plotly_chart")}
    assert legends == {
        "pythia · LAMBADA last-word loss, zero-shot · parameters",  # family and metric
        "gpt3 · Validation loss · parameters",
    }


def test_explore_one_default_mark_per_family(app_test):
    at = app_test("explore.py", query_params={"family": ["pythia", "pythia-deduped", "gpt3", "opt"]})
    _no_failure(at)
    options = at.selectbox(key="explore.metric").options
    owners = [o.split("(default of ")[1].rstrip(")") for o in options if "(default of" in o]
    families = [f for names in owners for f in names.split(", ")]
    assert sorted(families) == ["gpt3", "opt", "pythia", "pythia-deduped"]  # each family exactly once


def test_explore_unknown_link_values_fall_back(app_test):
    at = app_test("explore.py", query_params={"family": "no-such-family", "metric": "bogus", "x": "sideways"})
    _no_failure(at)
    assert at.multiselect(key="explore.family").value == ["pythia"]
    assert at.selectbox(key="explore.metric").value == "zero-shot/lambada_openai/log_ppl"
    assert at.segmented_control(key="explore.x").value == "tokens"
    notices = _texts(at.info)
    assert "no\\-such\\-family" in notices and "bogus" in notices and "sideways" in notices
    assert _charts(at) == 1


def test_explore_hostile_link_is_escaped(app_test):
    at = app_test("explore.py", query_params={"family": "<img src=x onerror=alert(1)>", "metric": "**x**"})
    _no_failure(at)
    notices = _texts(at.info)
    assert "img src" in notices  # quoted, but inert: every markdown/HTML character is escaped
    assert not re.search(r"(?<!\\)[<>*]", notices)
    assert _charts(at) == 1


# ---------------------------------------------------------------------------------------------
# Your runs


def test_your_runs_empty_state(app_test):
    at = app_test("your_runs.py")
    _no_failure(at)
    assert "No file uploaded yet" in _texts(at.info)
    assert len(at.get("download_button")) == 1  # the template
    assert "uploaded_runs" not in at.session_state


def test_your_runs_documents_every_column_it_reads(app_test):
    from tests.core.test_formats import READ_COLUMNS

    at = app_test("your_runs.py")
    _no_failure(at)
    documented = "\n".join(str(m.value) for m in at.markdown).replace("\\", "")
    assert set(re.findall(r"^- \*\*([a-z_]+)\*\*:", documented, flags=re.MULTILINE)) == READ_COLUMNS
    assert "Optional columns (7)" in [e.label for e in at.expander]
    captions = _texts(at.caption).replace("\\", "")
    assert "extra columns are ignored" not in captions
    assert "Other columns are not used" in captions
    assert "lines starting with # are comments. " not in captions  # a row can start with # too
    assert "comments above the header row, and below it when nothing else is on the line" in captions


def test_your_runs_reads_a_row_starting_with_hash_and_lists_the_notes_it_cannot_read(app_test):
    from tests.core.test_userdata import LINES_WITH_HASHES

    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("hashes.csv", LINES_WITH_HASHES.encode(), "text/csv")).run()
    _no_failure(at)
    assert "2 rows were left out" in _texts(at.warning)
    assert at.dataframe[0].value["Line"].tolist() == [7, 8]
    assert sorted(at.session_state["uploaded_runs"]["run_name"]) == ["#b", "a", "c"]


def test_your_runs_upload_keeps_table_in_session(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    _no_failure(at)
    table = at.session_state["uploaded_runs"]
    assert list(table.columns) == ["run_id", "run_name", "seed", "num_params", "tokens_seen", "value"]
    assert table["run_id"].nunique() == 3 and len(table) == 6
    assert "3 runs" in _texts(at.success)
    assert _charts(at) == 1
    assert len(at.dataframe[-1].value) == 6  # the preview


def test_your_runs_rejected_rows_are_listed(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("mixed.csv", MIXED_CSV, "text/csv")).run()
    _no_failure(at)
    assert "2 rows were left out" in _texts(at.warning)
    problems = at.dataframe[0].value
    assert problems["Line"].tolist() == [4, 6]
    assert len(at.session_state["uploaded_runs"]) == 3


def test_your_runs_rejected_rows_are_named_by_their_line_in_the_file(app_test):
    from tests.core.test_userdata import LINED_CSV

    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("lined.csv", LINED_CSV.encode(), "text/csv")).run()
    _no_failure(at)
    assert "2 rows were left out" in _texts(at.warning)
    problems = at.dataframe[0].value
    assert problems["Line"].tolist() == [6, 8]  # past a comment, a header, blank and comment lines
    assert problems["Problem"].iloc[1].startswith("5 values for 4 columns, not read")


def test_your_runs_wandb_export_asks_for_the_pages_own_input(app_test):
    from tests.core.test_formats import WANDB_CSV

    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("export.csv", WANDB_CSV, "text/csv")).run()
    assert not at.exception
    message = _texts(at.error).replace("\\", "")
    assert "in the box 'Tokens per step' above the file" in message and "--" not in message
    at.text_input(key="your_runs.tokens_per_step").set_value("2M").run()
    _no_failure(at)
    assert at.session_state["uploaded_runs"]["run_name"].nunique() == 2
    unnamed = b"Step,baseline - loss\n10,3.0\n"
    at.file_uploader[0].set_value(("unnamed.csv", unnamed, "text/csv")).run()
    message = _texts(at.error).replace("\\", "")
    assert "'baseline' is not in their name" in message and "put each run's size in its name" in message
    assert "--params" not in message


def test_your_runs_malformed_file_is_an_error(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("bad.csv", BAD_CSV, "text/csv")).run()
    assert not at.exception
    assert "Missing required column" in _texts(at.error)
    assert "uploaded_runs" not in at.session_state
    assert _charts(at) == 0


XLSX_LIKE = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8  # a zip container, as .xlsx files are
HEADER_ONLY_CSV = b"run_name,num_params,tokens_seen,loss\r\n"


def test_your_runs_binary_file_gets_plain_words(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", XLSX_LIKE, "text/csv")).run()  # a workbook renamed to .csv
    assert not at.exception
    message = _texts(at.error).replace("\\", "")
    assert "This is not a text file" in message and "Save your table as CSV" in message
    assert "unquoted" not in message and "found:" not in message


def test_your_runs_header_only_file_says_so(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("empty.csv", HEADER_ONLY_CSV, "text/csv")).run()
    assert not at.exception
    message = _texts(at.error).replace("\\", "")
    assert "has a header row but no data rows" in message
    assert not re.search(r":\s*$", message)  # nothing left dangling after a colon


def test_your_runs_bad_upload_keeps_the_last_valid_one(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    at.file_uploader[0].set_value(("bad.csv", BAD_CSV, "text/csv")).run()
    assert not at.exception
    message = _texts(at.error).replace("\\", "")
    assert "Missing required column" in message and "Your previous upload, runs.csv, is still in use" in message
    assert len(at.session_state["uploaded_runs"]) == 6 and at.session_state["uploaded_runs_name"] == "runs.csv"
    assert "3 runs" in _texts(at.success) and _charts(at) == 1


def test_your_runs_state_the_default_cutoff(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    _no_failure(at)
    # The template's runs stop at 40B tokens: 10% of that is 4B, below the paper's 10B.
    assert "at or below 4B tokens by default" in _texts(at.caption).replace("\\", "")


def test_your_runs_clear(app_test):
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    at.button[0].click().run()  # "Clear the uploaded runs"
    _no_failure(at)
    assert "uploaded_runs" not in at.session_state
    assert "No file uploaded yet" in _texts(at.info)


def test_your_runs_from_session_state(app_test):
    table = uploads.process_upload(GOOD_CSV).table
    at = app_test("your_runs.py", session_state={"uploaded_runs": table, "uploaded_runs_name": "earlier.csv"})
    _no_failure(at)
    assert "earlier\\.csv" in _texts(at.success)
    assert _charts(at) == 1


def test_process_upload():
    good = uploads.process_upload(GOOD_CSV)
    assert good.ok and good.error is None and good.rejected_rows == 0
    mixed = uploads.process_upload(MIXED_CSV)
    assert mixed.ok and mixed.rejected_rows == 2
    assert mixed.problems()["Problem"].tolist() == ["loss is not a number", "loss must be > 0"]
    bad = uploads.process_upload(BAD_CSV)
    assert not bad.ok and bad.error.startswith("Missing required column")
    big = uploads.process_upload(b"", size=userdata.MAX_UPLOAD_BYTES + 1)
    assert not big.ok and "the limit is 20 MB" in big.error
    assert not uploads.process_upload(b"").ok
    binary = uploads.process_upload(b"\x00\x01\x02garbage")
    assert not binary.ok and binary.error.startswith("This is not a text file")
    header_only = uploads.process_upload(HEADER_ONLY_CSV)
    assert (
        header_only.error == "The file has a header row but no data rows: add one row per checkpoint below the header"
    )


def test_column_docs_come_from_userdata():
    docs = uploads.column_docs()
    assert docs["Column"].tolist() == [c.name for c in userdata.COLUMN_SPECS]
    assert docs[docs["Required"] == "required"]["Column"].tolist() == ["num_params", "tokens_seen", "loss"]


# ---------------------------------------------------------------------------------------------
# Database missing, corrupt, deleted or corrupted while the app runs


def test_missing_database_offers_a_build(app_test, tmp_path, monkeypatch, mirror):
    # At the default location (no --db, no $SCALEPLAN_DB): a path given explicitly is never built on
    # (test_an_explicit_database_deleted_while_running_is_not_rebuilt_there)
    monkeypatch.delenv("SCALEPLAN_DB")
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "data" / "scaleplan.duckdb"
    monkeypatch.setenv("SCALEPLAN_MIRROR", str(mirror))
    at = app_test()
    assert not at.exception
    assert "has not been built yet" in _texts(at.warning)
    at.button(key="build-database").click().run(timeout=120)
    assert not at.exception and not at.error
    assert db.exists()
    assert [m.label for m in at.metric][:1] == ["Training runs"]


def test_corrupt_database_is_explained(app_test, built_db, tmp_path, monkeypatch):
    db = tmp_path / "corrupt.duckdb"
    shutil.copy(built_db, db)
    with open(db, "r+b") as handle:  # a DuckDB file (its magic bytes kept) whose content is damaged
        handle.seek(4096)
        handle.write(b"\x00garbage" * 1000)
    monkeypatch.setenv("SCALEPLAN_DB", str(db))
    for page in (None, "explore.py"):
        at = app_test(page)
        assert not at.exception
        assert "damaged" in _texts(at.warning)
        assert at.button(key="build-database")


def test_a_file_that_is_not_a_database_is_never_offered_for_a_build(app_test, tmp_path, monkeypatch):
    db = tmp_path / "my_runs.csv"
    db.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("SCALEPLAN_DB", str(db))
    for page in (None, "explore.py"):
        at = app_test(page)
        assert not at.exception
        assert "will not write over it" in _texts(at.error)
        assert not [b for b in at.button if b.key == "build-database"]
    assert db.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_database_damaged_while_running(app_test, built_db, tmp_path, monkeypatch, damage):
    monkeypatch.delenv("SCALEPLAN_DB")  # the default location, where a build is offered
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path))
    db = tmp_path / "scaleplan.duckdb"
    shutil.copy(built_db, db)
    at = app_test("explore.py")
    _no_failure(at)
    assert _charts(at) == 1
    if damage == "delete":
        db.unlink()
    else:
        with open(db, "r+b") as handle:
            handle.seek(4096)  # damaged content behind DuckDB's magic bytes: still recognisably a database
            handle.write(b"\x00garbage" * 200_000)
    at.multiselect(key="explore.family").set_value(["gpt3"]).run()
    assert not at.exception
    expected = "has not been built yet" if damage == "delete" else "damaged"
    assert expected in _texts(at.warning)
    assert at.button(key="build-database")


@pytest.mark.parametrize("flag", ["--db", "SCALEPLAN_DB"])
def test_an_explicit_database_deleted_while_running_is_not_rebuilt_there(
    app_test, built_db, tmp_path, monkeypatch, mirror, flag
):
    """Review: with `serve --db PATH` the page offered "Build the database now" at PATH once the file
    was gone, which no command does at a path the user gave. It says what happened and how to fix it."""
    import shlex
    from pathlib import Path

    from scaleplan.dashboard import common

    db = tmp_path / "team *dbs*" / "copy.duckdb"  # Markdown characters and a space in the path
    db.parent.mkdir()
    shutil.copy(built_db, db)
    monkeypatch.setenv("SCALEPLAN_MIRROR", str(mirror))
    if flag == "--db":  # as `scaleplan serve --db PATH` hands it to the app script
        monkeypatch.delenv("SCALEPLAN_DB")
        monkeypatch.setattr(common.sys, "argv", ["app.py", "--db", str(db)])
    else:
        monkeypatch.setenv("SCALEPLAN_DB", str(db))
    at = app_test("explore.py")
    _no_failure(at)
    assert _charts(at) == 1
    db.unlink()
    at.multiselect(key="explore.family").set_value(["gpt3"]).run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "build-database"] and not at.error
    [message] = [e.value for e in at.warning]
    assert "has not been built" not in message
    assert "given with `--db`" in message and "is missing" in message and "Restore the file" in message
    assert "team \\*dbs\\*" in message  # the path as text: Markdown's '*' behind a backslash
    [command] = [c.value for c in at.code]
    expected = ["scaleplan", "data", "build", "--db", str(db.resolve()), "--mirror", str(Path(mirror).resolve())]
    assert shlex.split(command) == expected
    assert not db.exists()  # nothing was built there
    shutil.copy(built_db, db)  # restored, as the page says
    at.run()
    _no_failure(at)
    assert _charts(at) == 1


def test_your_runs_works_without_database(app_test, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_DB", str(tmp_path / "none.duckdb"))
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    _no_failure(at)
    assert isinstance(at.session_state["uploaded_runs"], pd.DataFrame)


def test_your_runs_save_rename_delete_a_study(app_test, tmp_path, monkeypatch):
    from scaleplan.core import studies

    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("runs.csv", GOOD_CSV, "text/csv")).run()
    _no_failure(at)
    at.text_input(key="your_runs.save_name").set_value("ladder")
    at.button(key="FormSubmitter:your_runs.save-Save as study").click().run()
    _no_failure(at)
    assert [s.name for s in studies.list_studies(store)] == ["ladder"]
    assert "Saved as study" in _texts(at.success).replace("\\", "")
    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    with user_store(store) as con:  # a scenario planned on the study: the rename says it follows
        scenarios.save_scenario(
            con,
            "on ladder",
            scenarios.PlanInputs(
                target_params=7e9,
                target_tokens=1.4e11,
                budget_dollars=20_000,
                accuracy_percent=5,
                study="ladder",
                law="fit:ladder",
            ),
        )
    at.text_input(key="your_runs.rename_to").set_value("ladder v2")
    at.button(key="your_runs.rename").click().run()
    _no_failure(at)
    assert [s.name for s in studies.list_studies(store)] == ["ladder v2"]
    assert "Renamed study **ladder** to **ladder v2**; 1 saved scenario follows it." in _texts(at.success)
    # a study a saved scenario plans on is not deleted at one click: the page names the scenario
    at.button(key="your_runs.delete").click().run()
    assert not at.exception
    assert [s.name for s in studies.list_studies(store)] == ["ladder v2"]
    assert "1 saved scenario ('on ladder') plans on the study 'ladder v2'" in _texts(at.error).replace("\\", "")
    at.checkbox(key="your_runs.delete_force").check().run()
    at.button(key="your_runs.delete").click().run()
    _no_failure(at)
    assert studies.list_studies(store) == ()
    assert "1 saved scenario that planned on it is now unavailable" in _texts(at.success)
    assert len(at.session_state["uploaded_runs"]) == 6  # deleting the study keeps the runs in use


ONE_RUN_CSV = b"run_name,num_params,tokens_seen,loss\nsolo,7e7,1e9,3.2\nsolo,7e7,2e9,3.1\n"


def test_your_runs_wording_for_one_run_of_one_size(app_test, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(tmp_path / "user.duckdb"))
    at = app_test("your_runs.py")
    at.file_uploader[0].set_value(("solo.csv", ONE_RUN_CSV, "text/csv")).run()
    assert not at.exception
    assert "1 run with 2 checkpoints from solo.csv is ready" in _texts(at.success).replace("*", "").replace("\\", "")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model sizes"] == "1" and metrics["Most tokens seen"] == "2B"  # no range cut off in a card
    import json

    chart = json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec)["layout"], ensure_ascii=False)
    assert "1 run, 2 checkpoints · 70M params" in chart and "1 runs" not in chart  # one size, once
    at.text_input(key="your_runs.save_name").set_value("it's *mine*")
    at.button(key="FormSubmitter:your_runs.save-Save as study").click().run()
    assert not at.exception
    # The name as typed (bold, escaped), not its Python repr; one run, not "1 runs".
    assert "Saved as study **it's *mine*** (1 run)." in [e.value.replace("\\", "") for e in at.success]
    assert "1 run ·" in at.selectbox(key="your_runs.stored").format_func("it's *mine*")


def test_your_runs_errors_keep_a_column_names_spelling(app_test):
    at = app_test("your_runs.py")
    data = b"params,tokens,loss,final_of_schedule\n1e8,2e9,3.0,maybe\n"
    at.file_uploader[0].set_value(("flags.csv", data, "text/csv")).run()
    assert not at.exception
    message = _texts(at.error).replace("\\", "")
    assert "This file cannot be used: final_of_schedule must be true or false" in message
    at.file_uploader[0].set_value(("none.csv", b"", "text/csv")).run()
    assert "This file cannot be used: The file is empty" in _texts(at.error).replace("\\", "")


# ---------------------------------------------------------------- issue 25: any finite input draws


def test_fit_page_with_an_extreme_finite_run_shows_no_error_box(app_test):
    table = uploads.process_upload(GOOD_CSV).table  # the Your runs page's reader
    extreme = table.iloc[[0]].assign(run_id="upload/huge", run_name="huge", tokens_seen=1.7e308)
    at = app_test(
        "fit.py",
        session_state={"uploaded_runs": pd.concat([table, extreme], ignore_index=True), "uploaded_runs_name": "x.csv"},
    )
    at.selectbox(key="fit.family").set_value("your-runs").run()
    assert not at.exception
    assert "Something went wrong" not in _texts(at.error)


def test_explore_caption_states_the_sizes_each_chart_draws(app_test, con):
    """Two families on their own metrics: each chart's caption gives its own runs' size range, not the
    size filter's range over both (which spans 70M to 175B)."""
    import json

    from scaleplan.core import units

    at = app_test("explore.py", query_params={"family": ["pythia", "gpt3"]})
    _no_failure(at)
    captions = [
        " ".join(a["text"] for a in json.loads(chart.proto.spec)["layout"]["annotations"])
        for chart in at.get("plotly_chart")
    ]
    for family, metric, caption in zip(
        ["pythia", "gpt3"], ["zero-shot/lambada_openai/log_ppl", "val/loss"], captions, strict=True
    ):
        sizes = storage.explore_runs(con, [family], metric)["num_params"]
        drawn = f"{units.format_params(sizes.min(), unit=False)} to {units.format_params(sizes.max())}"
        assert drawn in caption, (family, caption)
    assert "70M to 175B" not in " ".join(captions)

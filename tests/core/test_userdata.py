import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleplan.core import userdata
from scaleplan.core.formats import ParsedRuns, parse_runs
from scaleplan.core.userdata import MAX_UPLOAD_BYTES, TEMPLATE_CSV, RunsTableError


def test_template_parses_into_three_runs():
    table = parse_runs(TEMPLATE_CSV)
    assert table.num_runs == 3 and table.rejected_rows == 0
    assert (table.table["num_params"] > 0).all()


def test_bad_rows_get_row_numbered_messages_and_good_rows_survive():
    text = (
        "num_params,tokens_seen,loss\n"
        "1e8,2e10,3.1\n"  # row 2 ok
        "-5,1e10,2.0\n"  # row 3 negative
        "abc,1e9,3\n"  # row 4 text
        "1e8,inf,3\n"  # row 5 inf
        "1e8,3e10,\n"  # row 6 empty
        "1e8,2e10,3.1\n"
    )  # row 7 duplicate
    table = parse_runs(text)
    assert len(table.table) == 1 and table.rejected_rows == 5
    joined = " | ".join(table.messages)
    for expected in (
        "line 3: num_params must be > 0",
        "line 4: num_params is not a number",
        "line 5: tokens_seen is not finite",
        "line 6: loss is empty",
        "line 7: duplicate",
    ):
        assert expected in joined


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"x,y\n1,2\n", "missing required column"),
        (
            b"num_params,tokens_seen,loss\nnan,nan,nan\n",
            r"no row can be used \(1 row read\): line 2: num_params is not",
        ),
        (b"a" * (MAX_UPLOAD_BYTES + 1), "limit"),
    ],
)
def test_unusable_files_raise_a_clear_error(data, message):
    with pytest.raises(RunsTableError, match=message):
        parse_runs(data)


# Binary files as people upload them by mistake: an .xlsx (a zip), a legacy .xls (OLE2), a PNG, raw bytes.
_RNG = np.random.default_rng(7)
BINARY_FILES = {
    "xlsx": b"PK\x03\x04" + _RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
    "xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _RNG.integers(0, 256, 500, dtype=np.uint8).tobytes(),
    "bytes": _RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
}


@pytest.mark.parametrize("name", sorted(BINARY_FILES))
def test_binary_files_get_a_plain_message(name):
    with pytest.raises(RunsTableError) as info:
        parse_runs(BINARY_FILES[name])
    message = str(info.value)
    assert message.startswith("this is not a text file") and "Save your table as CSV" in message
    assert "unquoted" not in message and "found:" not in message  # no parser jargon, no garbage column names


@pytest.mark.parametrize(
    "data",
    [
        b"num_params,tokens_seen,loss\n",
        b"num_params;tokens_seen;loss\r\n\r\n",
        "num_params,tokens_seen,loss\n".encode("utf-16"),
    ],
)
def test_header_only_file_says_there_are_no_data_rows(data):
    with pytest.raises(RunsTableError, match="has a header row but no data rows"):
        parse_runs(data)


def test_old_mac_line_ends_and_stray_carriage_returns_are_read():
    table = parse_runs(b"num_params,tokens_seen,loss\r1e8,2e10,3.1\r2e8,2e10,2.9\r")
    assert len(table.table) == 2
    # The old parser showed Python's csv error ("new-line character seen in unquoted field") here;
    # a line break inside a row now splits it, and the broken rows get row messages.
    broken = parse_runs(b"num_params,tokens_seen,loss\r1e8,1e9,3\n2e8,\r1e9,2.9\n")
    assert len(broken.table) == 1 and broken.messages[0].startswith("line 3: tokens_seen is empty")


def test_text_in_other_encodings_is_still_read():
    text = "run_name,num_params,tokens_seen,loss\ncafé,1e8,2e10,3.1\n"
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"):
        assert parse_runs(text.encode(encoding)).table["run_name"].iloc[0] == "café", encoding


def test_bom_semicolons_and_case_insensitive_headers():
    data = "\ufeffNum_Params;Tokens_Seen;LOSS;run_name\n1e8;2e10;3.1;a\n2e8;2e10;2.9;b\n".encode("utf-8")
    table = parse_runs(data)
    assert table.num_runs == 2


def test_one_run_name_with_two_sizes_is_rejected():
    with pytest.raises(RunsTableError, match="more than one num_params"):
        parse_runs("run_name,num_params,tokens_seen,loss\na,1e8,1e10,3\na,2e8,2e10,2.8\n")


cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=8),
    st.just(""),
    st.just("1e400"),
    st.just("-0"),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.lists(
        st.sampled_from(["num_params", "tokens_seen", "loss", "run_name", "seed", "x", "LOSS", ""]),
        min_size=0,
        max_size=6,
    ),
    rows=st.lists(st.lists(cell, min_size=0, max_size=7), max_size=12),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
)
def test_fuzzed_csv_ends_in_a_valid_table_or_the_documented_error(header, rows, sep, encoding):
    text = "\n".join([sep.join(header)] + [sep.join(r) for r in rows])
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    try:
        result = parse_runs(data)
    except RunsTableError as error:
        assert str(error)
        return
    assert isinstance(result, ParsedRuns)
    table = result.table
    assert len(table) > 0
    for column in ("num_params", "tokens_seen", "value"):
        values = table[column].to_numpy(dtype=float)
        assert np.isfinite(values).all() and (values > 0).all()
    assert not table.duplicated(["run_id", "tokens_seen"]).any()


# ---------------------------------------------------------------- issue 25: plausibility limits


def test_implausible_values_are_rejected_per_row_with_the_reason():
    from scaleplan.core import planning, units

    text = (
        TEMPLATE_CSV
        + "huge_d,0,7e7,1e308,3.0\nhuge_n,0,1e308,2e10,3.0\ntiny_n,0,10,2e10,3.0\nbig_loss,0,7e7,2e10,1e9\n"
    )
    table = parse_runs(text)
    assert len(table.table) == 6 and table.rejected_rows == 4
    reasons = dict(m.split(": ", 1) for m in table.messages)
    assert "tokens_seen is above 1e+17" in reasons["line 8"]
    assert "num_params is above 1e+15" in reasons["line 9"]
    assert "num_params is below 1e+03" in reasons["line 10"]
    assert "loss is above" in reasons["line 11"]
    # the same bounds as the planner's (one definition, core.units)
    assert planning.MAX_PARAMS == units.MAX_PARAMS and planning.MAX_TOKENS == units.MAX_TOKENS


def test_table_errors_speak_neither_web_nor_cli_words():
    with pytest.raises(RunsTableError) as caught:
        parse_runs("size,tokens,loss\n1,2,3\n")
    assert "Download" not in str(caught.value) and "num_params" in str(caught.value)


def test_the_size_limit_is_stated_in_one_unit():
    from scaleplan.core import userdata

    with pytest.raises(RunsTableError) as caught:
        parse_runs(b"a" * (MAX_UPLOAD_BYTES + 1))
    assert f"{MAX_UPLOAD_BYTES + 1:,} bytes" in str(caught.value) and userdata.MAX_UPLOAD_TEXT in str(caught.value)
    assert MAX_UPLOAD_BYTES == userdata.MAX_UPLOAD_MB * 10**6


# ---------------------------------------------------------------- rows named by their line in the file

# Lines 1-2 a comment and the header; blank and comment lines before each bad row.
LINED_CSV = (
    "# runs of 2026-11, exported by hand\n"  # line 1
    "run_name,num_params,tokens_seen,loss\n"  # line 2: header
    "\n"  # line 3
    "a,1e8,1e9,3.0\n"  # line 4
    "# the next value was mistyped\n"  # line 5
    "a,1e8,2e9,oops\n"  # line 6: loss not a number
    "\n"  # line 7
    "a,1e8,3e9,2.5,2.4\n"  # line 8: five values, four columns
    "a,1e8,4e9,2.3,,\n"  # line 9: trailing empty cells are fine
    "b,2e8,1e9,2.9\n"  # line 10
)


def test_messages_name_the_line_of_the_file_past_blank_and_comment_lines():
    table = parse_runs(LINED_CSV)
    assert table.rejected_rows == 2 and len(table.table) == 3
    assert table.messages[0] == "line 6: loss is not a number"
    assert table.messages[1].startswith("line 8: 5 values for 4 columns, not read")


def test_a_quote_in_a_comment_above_the_header_does_not_swallow_the_file():
    # The review's repro: an unbalanced quote after a separator in a note above the header opened a quoted
    # value that ran to the end of the file ("the file has only comment lines").
    data = '# note, "quoted, text\n' + LINED_CSV.split("\n", 1)[1]
    table = parse_runs(data)
    assert table.rejected_rows == 2 and len(table.table) == 3
    assert table.messages[0] == "line 6: loss is not a number"
    assert table.messages[1].startswith("line 8: 5 values for 4 columns, not read")


def test_a_row_with_too_many_values_is_reported_not_dropped_silently():
    data = "num_params,tokens_seen,loss\n1e8,1e9,3.0\n1,000,000,2e9,3.1\n"
    table = parse_runs(data)
    assert table.rejected_rows == 1 and len(table.table) == 1
    assert table.messages == (
        "line 3: 5 values for 3 columns, not read (a separator inside a value, e.g. 1,000? write 1000 or quote it)",
    )
    with pytest.raises(RunsTableError, match=r"no row can be used \(1 row read\): line 2: 4 values for 3 columns"):
        parse_runs("num_params,tokens_seen,loss\n1e8,1e9,3.0,9\n")


def test_a_quoted_value_over_two_lines_keeps_the_next_rows_lines():
    data = 'run_name,num_params,tokens_seen,loss\n"two\nlines",1e8,1e9,3.0\nb,2e8,1e9,bad\n'
    table = parse_runs(data)
    assert table.messages == ("line 4: loss is not a number",)
    assert table.table["run_name"].tolist() == ["two\nlines"]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab1 "), max_size=6))
def test_protected_text_reads_back_as_written_and_runs_no_formula(text):
    from scaleplan.core import exports, userdata

    protected = userdata.protect_text(text)
    assert userdata.unprotect_text(protected) == text
    assert not protected.startswith(exports.FORMULA_PREFIXES)


def test_counts_and_sentences_read_as_english():
    from scaleplan.core import userdata

    assert [userdata.count_of(n, "run") for n in (0, 1, 2, 1000)] == ["0 runs", "1 run", "2 runs", "1,000 runs"]
    assert userdata.count_of(1, "budget") == "1 budget" and userdata.count_of(3, "index", "indices") == "3 indices"
    assert userdata.sentence("missing required column(s): loss") == "Missing required column(s): loss"
    for text in ("tokens_seen must be > 0", "step must be a number", "final_of_schedule must be true"):
        assert userdata.sentence(text) == text


def test_trailing_separators_do_not_count_as_values_and_comments_alone_are_no_table():
    table = parse_runs("num_params,tokens_seen,loss\n1e8,1e9,3.0\n1e8,2e9,2.9,9,,,\n")
    assert table.messages == (
        "line 3: 4 values for 3 columns, not read (a separator inside a value, e.g. 1,000? write 1000 or quote it)",
    )
    with pytest.raises(RunsTableError, match="only comment lines"):
        parse_runs("# nothing yet\n\n# still nothing\n")


# ---------------------------------------------------------------- comment lines never eat a data row


def test_a_run_named_with_a_hash_without_its_seed_is_read_not_dropped():
    # The optional seed, last, is left out of one run's rows: 4 fields for a 5-column header.
    rows = ["run_name,num_params,tokens_seen,loss,seed"]
    rows += [f"small,1e8,{d}e9,{3.0 - d / 10},0" for d in (1, 2, 3)]
    rows += [f"#1-big,4e8,{d}e9,{2.8 - d / 10}" for d in (1, 2, 3)]
    table = parse_runs("\n".join(rows) + "\n")
    assert (table.num_runs, len(table.table), table.rejected_rows) == (2, 6, 0)
    assert sorted(table.table["run_name"].unique()) == ["#1-big", "small"]


LINES_WITH_HASHES = (
    "# exported by hand, 2026-11, seeds 0 and 1\n"  # line 1: before the header, commas or not
    "run_name,num_params,tokens_seen,loss,seed\n"  # line 2: header
    "a,1e8,1e9,3.0,0\n"  # line 3
    "# a note alone\n"  # line 4: a comment
    "# a note a spreadsheet saved in column A,,,,\n"  # line 5: a comment (only empty cells after it)
    "#b,1e8,2e9,2.9\n"  # line 6: a row (its seed left out)
    "# loss of run c was mistyped, see notes\n"  # line 7: holds two values: read as a row, refused
    "# one, two, three, four, five, six\n"  # line 8: more values than columns: refused
    "c,1e8,3e9,2.8,1\n"  # line 9
)


def test_a_line_starting_with_hash_is_a_comment_only_before_the_header_or_alone():
    table = parse_runs(LINES_WITH_HASHES)
    assert sorted(table.table["run_name"]) == ["#b", "a", "c"]
    assert table.rejected_rows == 2
    assert [m.split(":")[0] for m in table.messages] == ["line 7", "line 8"]
    assert all("starts with #" in m for m in table.messages)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "#a", " #1-r640m", "#", "# note"]), st.integers(0, 4)),
        min_size=1,
        max_size=8,
    )
)
def test_every_line_after_the_header_with_a_second_value_is_read_or_refused(rows):
    # Each row: a first cell, then 0-4 of the header's other columns (trailing ones left out).
    values = ["1e8", "2e9", "3.0", "0"]
    text = "run_name,num_params,tokens_seen,loss,seed\n" + "".join(
        ",".join([first, *values[:kept]]) + "\n" for first, kept in rows
    )
    with_values = {i + 2 for i, (_, kept) in enumerate(rows) if kept > 0}
    may_be_read = {i + 2 for i, (first, kept) in enumerate(rows) if kept > 0 or not first.strip().startswith("#")}
    if not may_be_read:  # comment lines only below the header
        with pytest.raises(RunsTableError, match="no data rows"):
            userdata.read_text_rows(text)
        return
    read = userdata.read_text_rows(text)
    accounted = set(read.lines) | {line for line, _ in read.refused}
    assert with_values <= accounted <= may_be_read


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    above=st.lists(
        st.sampled_from(
            ["", "# a note", '# a "quote', '"# quoted, note",,', '"# two\nlines",x', '"# a\r\n\r\nb"', "#,Step,a - b"]
        ),
        max_size=4,
    ),
    header=st.lists(st.sampled_from(["Step", "run - loss", "num_params", '"a, b"', "", " x "]), min_size=1, max_size=5),
    sep=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_the_header_found_for_detecting_the_format_is_the_one_the_reader_reads(above, header, sep, encoding):
    text = "\n".join([*above, sep.join(header), sep.join(["1"] * len(header))]) + "\n"
    data = text.encode(encoding)
    try:
        rows = userdata.read_text_rows(data)
    except RunsTableError:
        return
    cells = userdata.header_cells(data)
    assert cells is not None
    assert [c or f"(column {i + 1})" for i, c in enumerate(cells)] == [str(c) for c in rows.frame.columns]


def test_size_and_token_cells_take_the_command_lines_suffixes():
    # The one number rule of the CLI and the planner (core.units.parse_number): 100M is 1e8, 1.5B is 1.5e9,
    # 2T is 2e12; thousands separators and underscores group digits; a decimal comma is no number.
    text = (
        "run_name,num_params,tokens_seen,loss,step,flops\n"
        "a,100M,2B,3.1,1k,1.2e18\n"
        "a,100M,4B,3.0,2k,2.4E18\n"
        'b,"1,500,000,000",2T,2.5,3_000,18e21\n'
        "c,1_000_000,20b,4.0,,\n"
        'd,"0,5B",1e9,3.0,,\n'  # line 6: a decimal comma, refused as before
        "e,7 B,1e9,2.2,,\n"
    )
    table = parse_runs(text)
    got = table.table.set_index(["run_name", "tokens_seen"])
    assert got.loc[("a", 2e9), "num_params"] == 1e8 and got.loc[("a", 4e9), "step"] == 2000
    assert got.loc[("b", 2e12), "num_params"] == 1.5e9 and got.loc[("b", 2e12), "flops"] == 1.8e22
    assert got.loc[("c", 2e10), "num_params"] == 1e6 and got.loc[("e", 1e9), "num_params"] == 7e9
    assert table.rejected_rows == 1 and "line 6: num_params is not a number" in " | ".join(table.messages)
    assert got.loc[("a", 2e9), "flops"] == 1.2e18  # a plain number reads as ever


def test_a_semicolon_file_reads_decimal_commas_as_decimals():
    """A spreadsheet in a decimal-comma locale writes ';' between cells and 3,5374 for 3.5374: every loss
    reads as written (never 3,538 -> 3538 by the thousands rule), as the same file with points does."""
    header = "run_name;num_params;tokens_seen;loss\n"
    rows = [
        ("a", "20000000", "8000000000", "3,7122"),
        ("b", "40000000", "8000000000", "3,538"),
        ("c", "80000000", "8000000000", "3,40"),
    ]
    semicolon = parse_runs(header + "".join(";".join(r) + "\n" for r in rows))
    points = parse_runs(
        header.replace(";", ",") + "".join(",".join(r[:3] + (r[3].replace(",", "."),)) + "\n" for r in rows)
    )
    assert semicolon.rejected_rows == 0
    assert list(semicolon.table["value"]) == [3.7122, 3.538, 3.40] == list(points.table["value"])


def test_a_quoted_thousands_separator_in_a_comma_file_still_reads():
    table = parse_runs('run_name,num_params,tokens_seen,loss\na,"20,000,000","8,000,000,000",3.7\n').table
    assert (table["num_params"].iloc[0], table["tokens_seen"].iloc[0]) == (20e6, 8e9)


def test_a_repeated_row_with_another_loss_is_named_as_a_conflict():
    text = "run_name,num_params,tokens_seen,loss\na,2e7,8e9,3.7\nb,4e7,8e9,3.5\na,2e7,8e9,3.9\nb,4e7,8e9,3.5\nc,8e7,8e9,3.4\n"
    parsed = parse_runs(text)
    assert list(parsed.table["value"]) == [3.7, 3.5, 3.4]
    conflict = [m for m in parsed.messages if m.startswith("line 4:")]
    assert conflict == [
        "line 4: same run and tokens_seen as line 2 but another loss (3.9 against 3.7); the first is used, check which is right"
    ]
    assert any(m.startswith("line 5: duplicate of an earlier row") for m in parsed.messages)

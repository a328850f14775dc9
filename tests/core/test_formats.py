"""Every upload format: a real-looking file parses to the right runs; a malformed one gets a plain message."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import formats
from scaleplan.core.errors import UserError

# A Chinchilla-style isoFLOP sweep as a lab's spreadsheet exports it: aliases, mixed case, spaces.
SWEEP_CSV = b"""Model,Params,Tokens,Train Loss,FLOPs,Schedule,Final of schedule
iso-1e18-50M,5.0e7,3.333e9,3.412,1e18,cosine,true
iso-1e18-100M,1.0e8,1.667e9,3.371,1e18,cosine,true
iso-1e18-200M,2.0e8,8.33e8,3.398,1e18,cosine,true
iso-1e19-100M,1.0e8,1.667e10,3.101,1e19,cosine,TRUE
iso-1e19-200M,2.0e8,8.33e9,3.062,1e19,cosine,yes
iso-1e19-400M,4.0e8,4.167e9,3.090,1e19,cosine,1
"""

# Long format with checkpoints: one row per run and step, tokens from the step.
LONG_CSV = b"""run,seed,n_params,step,tokens_per_step,loss
small,0,70_000_000,1000,2097152,3.90
small,0,70_000_000,2000,2097152,3.61
small,0,70_000_000,4000,2097152,3.42
small,1,70_000_000,4000,2097152,3.43
big,0,410_000_000,1000,2097152,3.52
big,0,410_000_000,2000,2097152,3.20
big,0,410_000_000,4000,2097152,2.98
"""

# A W&B "export panel data" CSV (the layout of the collection's OLMo and LLM360 exports).
WANDB_CSV = (
    b'"Step","pythia-160m - train/loss","pythia-160m - train/loss__MIN","pythia-160m - train/loss__MAX",'
    b'"pythia-410m - train/loss","pythia-410m - train/loss__MIN","pythia-410m - train/loss__MAX"\n'
    b'"1000","3.71","3.70","3.72","3.40","3.39","3.41"\n'
    b'"2000","3.42","3.41","3.43","3.12","3.11","3.13"\n'
    b'"3000","3.30","3.29","3.31","",""," "\n'
)


def test_csv_with_aliases_flops_and_schedule():
    parsed = formats.parse_runs(SWEEP_CSV)
    assert parsed.format == "csv"
    mapping = parsed.mapping.as_dict()
    assert mapping["num_params"] == "Params" and mapping["tokens_seen"] == "Tokens"
    assert mapping["loss"] == "Train Loss" and mapping["run_name"] == "Model" and mapping["flops"] == "FLOPs"
    assert mapping["final_of_schedule"] == "Final of schedule"
    table = parsed.table
    assert parsed.num_runs == 6 and len(table) == 6
    assert table["flops"].tolist() == [1e18] * 3 + [1e19] * 3
    assert table["final_of_schedule"].all() and set(table["schedule"]) == {"cosine"}
    row = table.set_index("run_name").loc["iso-1e19-200M"]
    assert row["num_params"] == 2e8 and row["tokens_seen"] == 8.33e9 and row["value"] == pytest.approx(3.062)


def test_long_format_with_steps_and_seeds():
    parsed = formats.parse_runs(LONG_CSV)
    table = parsed.table
    assert parsed.num_runs == 3  # small seed 0, small seed 1, big seed 0
    assert "step" in table
    big = table[table["run_name"] == "big"].sort_values("step")
    np.testing.assert_allclose(big["tokens_seen"], [1000 * 2097152, 2000 * 2097152, 4000 * 2097152])
    assert big["num_params"].iloc[0] == 410e6
    assert parsed.mapping.as_dict()["tokens_seen"] == "step x tokens_per_step"


def test_steps_with_tokens_per_step_given():
    data = b"run,params,step,loss\na,1e8,100,3.5\na,1e8,200,3.3\n"
    parsed = formats.parse_runs(data, tokens_per_step=1e6)
    assert parsed.table["tokens_seen"].tolist() == [1e8, 2e8]


def test_parquet():
    frame = pd.DataFrame(
        {
            "N": [7e7, 7e7, 1.6e8],
            "D": [2e9, 4e9, 4e9],
            "val_loss": [3.2, 3.1, 2.9],
            "run_name": ["a", "a", "b"],
            "final_of_schedule": [False, True, True],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parsed = formats.parse_runs(buffer.getvalue())
    assert parsed.format == "parquet"
    assert parsed.table["num_params"].tolist() == [7e7, 7e7, 1.6e8]
    assert parsed.table["value"].tolist() == [3.2, 3.1, 2.9]
    assert parsed.table["final_of_schedule"].tolist() == [False, True, True]


def test_wandb_export():
    parsed = formats.parse_runs(WANDB_CSV, tokens_per_step=2**21)
    assert parsed.format == "wandb"
    table = parsed.table
    assert sorted(table["run_name"].unique()) == ["pythia-160m", "pythia-410m"]
    small = table[table["run_name"] == "pythia-160m"]
    assert small["num_params"].iloc[0] == 160e6 and len(small) == 3
    assert len(table[table["run_name"] == "pythia-410m"]) == 2  # the empty cells are no checkpoints
    np.testing.assert_allclose(small["tokens_seen"], np.array([1000, 2000, 3000]) * 2**21)


@pytest.mark.parametrize(
    "above",
    [
        '"# exported from W&B, by me",,,,\n',  # a note a spreadsheet saved in cell A1, quoted for its comma
        '"# exported from W&B\nby me, on 2026-11-30",,,\n',  # the same note over two lines
        '"# exported from W&B\r\n\r\nby me",,,\r\n',  # over three lines, Windows line ends
    ],
)
def test_a_wandb_export_under_a_quoted_note_is_detected_as_one(above):
    # The reader skips a record whose first cell starts with # above the header (userdata.COMMENT_RULE),
    # quoted or not; the format must be detected from the header that reader finds, not from the file's
    # first line ('"# exported from W&B', read as the header, made the export a CSV with no num_params).
    data = above.encode() + WANDB_CSV
    assert formats.detect_format(data) == "wandb"
    parsed = formats.parse_runs(data, tokens_per_step=2**21)
    assert parsed.format == "wandb" and parsed.rejected_rows == 0
    assert sorted(parsed.table["run_name"].unique()) == ["pythia-160m", "pythia-410m"] and len(parsed.table) == 5


def test_a_wandb_export_in_utf16_is_detected_as_one():
    # Excel's "Unicode text" is UTF-16: the reader decodes it (userdata's decoding), so must the detection.
    text = WANDB_CSV.decode().replace('","', '"\t"')
    for encoding in ("utf-16", "utf-16-le"):
        data = text.encode(encoding)
        assert formats.detect_format(data) == "wandb", encoding
        assert formats.parse_runs(data, tokens_per_step=2**21).num_runs == 2, encoding


def test_a_quoted_note_that_looks_like_a_wandb_header_does_not_make_a_csv_one():
    # A note row (its first cell starts with #, so the reader skips it) that holds a Step cell and a
    # '<run> - <metric>' cell: read as the header, it made a CSV a W&B export with no such column.
    data = b'"# pasted from the panel",Step,a - loss\nnum_params,tokens_seen,loss\n1e8,2e9,3.1\n2e8,2e9,2.9\n'
    assert formats.detect_format(data) == "csv"
    parsed = formats.parse_runs(data)
    assert (parsed.format, parsed.num_runs, parsed.rejected_rows) == ("csv", 2, 0)


def test_wandb_sizes_given_for_unnamed_runs():
    data = b"Step,baseline - loss,wide - loss\n10,3.0,2.9\n"
    parsed = formats.parse_runs(data, tokens_per_step=1e6, num_params={"baseline": 1e8, "wide": 2e8})
    assert parsed.table.set_index("run_name")["num_params"].to_dict() == {"baseline": 1e8, "wide": 2e8}


@pytest.mark.parametrize("size", ["pythia-410m", "olmo-1.3B", "run_7b", "x-125M-v2"])
def test_size_from_name(size):
    assert (
        formats.size_from_name(size)
        == {"pythia-410m": 410e6, "olmo-1.3B": 1.3e9, "run_7b": 7e9, "x-125M-v2": 125e6}[size]
    )


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (b"PAR1 this is not really parquet PAR1", {}, "Parquet file cannot be read"),
        (WANDB_CSV, {}, "tokens per step"),
        (b"Step,mystery - loss\n1,3.0\n", {"tokens_per_step": 1e6}, "is not in their name"),
        (b"Step,a-1b - loss,a-1b - acc\n1,3.0,0.5\n", {"tokens_per_step": 1e6}, "several metrics"),
        (b"run,params,step,loss\na,1e8,100,3.5\n", {}, "steps but not tokens"),
        (b"params,n_params,tokens,loss\n1,2,3,4\n", {}, "could each be num_params"),
        (b"params,tokens,loss,flops\n1e8,2e9,3.0,lots\n", {}, "flops must be a positive number"),
        (b"params,tokens,loss,final_of_schedule\n1e8,2e9,3.0,maybe\n", {}, "final_of_schedule must be true or false"),
        (b"size,amount,loss\n1e8,2e9,3.0\n", {}, "missing required column"),
    ],
)
def test_malformed_files_get_a_plain_message(data, kwargs, message):
    with pytest.raises(formats.FormatError, match=message) as raised:
        formats.parse_runs(data, **kwargs)
    assert isinstance(raised.value, UserError)
    assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value)


def test_bad_rows_are_left_out_with_their_line():
    data = SWEEP_CSV + b"broken,abc,1e9,3.0,1e18,cosine,true\n"
    parsed = formats.parse_runs(data)
    assert parsed.rejected_rows == 1 and parsed.num_runs == 6
    assert parsed.messages[0].startswith("line 8: num_params is not a number")


def test_the_template_parses_into_the_rows_it_writes():
    import csv

    from scaleplan.core import userdata

    parsed = formats.parse_runs(userdata.TEMPLATE_CSV)
    # The truth: Python's csv module on the template's own text, one row per checkpoint.
    written = list(csv.DictReader(io.StringIO(userdata.TEMPLATE_CSV)))
    expected = pd.DataFrame(
        {
            "run_id": [f"upload/{r['run_name']}/seed{r['seed']}" for r in written],
            "run_name": [r["run_name"] for r in written],
            "seed": [float(r["seed"]) for r in written],
            "num_params": [float(r["num_params"]) for r in written],
            "tokens_seen": [float(r["tokens_seen"]) for r in written],
            "value": [float(r["loss"]) for r in written],
        }
    )
    assert parsed.rejected_rows == 0 and parsed.format == "csv"
    pd.testing.assert_frame_equal(parsed.table, expected, check_dtype=False)


# ---------------------------------------------------------------------------------------------
# What the rows are: runs that end before their learning-rate schedule does


def _with_schedule(schedules: list[str], finals: list[str]) -> bytes:
    lines = SWEEP_CSV.decode().splitlines()
    rows = [lines[0]]
    for line, schedule, final in zip(lines[1:], schedules, finals, strict=True):
        rows.append(",".join(line.split(",")[:5] + [schedule, final]))
    return ("\n".join(rows) + "\n").encode()


def test_runs_that_all_end_their_schedule_say_nothing():
    assert formats.schedule_reach(formats.parse_runs(SWEEP_CSV).table) is None
    assert formats.schedule_reach(formats.parse_runs(LONG_CSV).table) is None  # no schedule columns


def test_a_cosine_horizon_beyond_the_run_gives_the_share_reached():
    # 1e19 runs trained for a 4x longer cosine: tokens 1.667e10, 8.33e9, 4.167e9 of horizons 6.67e10,
    # 3.33e10, 1.67e10 -> each reached 25% of its schedule.
    data = _with_schedule(
        ["cosine"] * 3 + ["cosine-66.7B", "cosine-33.3B", "cosine 1.667e10 tokens"],
        ["true"] * 3 + ["false"] * 3,
    )
    reach = formats.schedule_reach(formats.parse_runs(data).table)
    assert reach is not None and reach.known_horizon
    assert (reach.mid_schedule_runs, reach.runs) == (3, 6)
    assert reach.fraction == pytest.approx(0.25, rel=2e-3)
    assert "3 of 6 runs have no final-of-schedule loss" in reach.message and "25%" in reach.message


def test_runs_without_a_schedule_length_do_not_hide_the_others_lengths():
    # Three mid-schedule runs give horizons 4x their last tokens (25% reached); one is ``constant``.
    data = _with_schedule(
        ["cosine"] * 2 + ["constant", "cosine-66.7B", "cosine-33.3B", "cosine 1.667e10 tokens"],
        ["true"] * 2 + ["false"] * 4,
    )
    reach = formats.schedule_reach(formats.parse_runs(data).table)
    assert reach is not None and reach.known_horizon
    assert (reach.mid_schedule_runs, reach.without_length) == (4, 1)
    assert reach.fraction == pytest.approx(0.25, rel=2e-3)
    assert "median 25% of their schedules, counting the 1 that gives no schedule length at 10%" in reach.message
    assert "the first 25% of training;" in reach.message


def test_runs_without_a_schedule_length_count_at_the_shortest_share_measured():
    # The review's repro: 4 constant runs and 1 cosine run that reached 95% of its 4.386B tokens (its last
    # checkpoint is 4.167e9). Counting the 4 at the shortest share measured (10%), the median is 10%: the
    # one known share must not stand for the runs whose reach is unknown.
    data = _with_schedule(["cosine"] + ["constant"] * 4 + ["cosine-4.386B"], ["true"] + ["false"] * 5)
    reach = formats.schedule_reach(formats.parse_runs(data).table)
    assert reach is not None and reach.known_horizon
    assert (reach.mid_schedule_runs, reach.runs, reach.without_length) == (5, 6, 4)
    assert reach.fraction == 0.1
    assert "the first 10% of training" in reach.message and "95%" not in reach.message
    assert "median 10% of their schedules, counting the 4 that give no schedule length at 10%" in reach.message
    # Two known at 95% and two unknown: the lower of the two middle values, not their mean (52%).
    even = _with_schedule(
        ["cosine"] * 2 + ["constant", "cosine-17.55B", "constant", "cosine-4.386B"], ["true"] * 2 + ["false"] * 4
    )
    reach = formats.schedule_reach(formats.parse_runs(even).table)
    assert reach is not None and (reach.mid_schedule_runs, reach.without_length, reach.fraction) == (4, 2, 0.1)


def test_runs_that_all_give_a_schedule_length_are_counted_at_their_share():
    # Three mid-schedule runs at 95%, 25% and 50% of their schedules: the median is 50%.
    data = _with_schedule(
        ["cosine"] * 3 + ["cosine-17.55B", "cosine-33.3B", "cosine-8.334B"], ["true"] * 3 + ["false"] * 3
    )
    reach = formats.schedule_reach(formats.parse_runs(data).table)
    assert reach is not None and reach.known_horizon and reach.without_length == 0
    assert reach.fraction == pytest.approx(0.5, rel=2e-3)
    assert "they reached a median 50% of their schedules)" in reach.message
    assert "no schedule length" not in reach.message and "the first 50% of training;" in reach.message


def test_an_empty_final_of_schedule_cell_is_read_as_false_and_the_docs_say_so():
    from pathlib import Path

    from scaleplan.core import userdata

    # The last run leaves its cell empty: read as false, so it counts as ended mid-schedule (the safe side:
    # a wider interval, never a narrower one).
    data = _with_schedule(["cosine"] * 6, ["true"] * 5 + [""])
    parsed = formats.parse_runs(data)
    assert parsed.rejected_rows == 0
    assert parsed.table["final_of_schedule"].tolist() == [True] * 5 + [False]
    reach = formats.schedule_reach(parsed.table)
    assert reach is not None and (reach.mid_schedule_runs, reach.runs) == (1, 6)
    # Said where the columns are described: the spec (the Your runs page's column table) and the README.
    (spec,) = [c for c in userdata.COLUMN_SPECS if c.name == "final_of_schedule"]
    assert "an empty cell is false" in spec.meaning
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "`final_of_schedule` (true/false; an empty cell is false" in readme


def test_a_run_that_stops_short_of_its_schedules_length_is_mid_schedule_unless_it_says_final():
    # No final_of_schedule column: the 1e19 runs stop at a quarter of their cosine lengths; the 1e18 runs
    # at exactly theirs (3.333e9, 1.667e9, 8.33e8 tokens) or without a length.
    lines = SWEEP_CSV.decode().splitlines()
    schedules = ["cosine-3.333B", "cosine 1.667e9 tokens", "cosine", "cosine-66.7B", "cosine-33.3B", "cosine-16.67B"]
    rows = [",".join(lines[0].split(",")[:6])]
    rows += [",".join(line.split(",")[:5] + [schedule]) for line, schedule in zip(lines[1:], schedules, strict=True)]
    reach = formats.schedule_reach(formats.parse_runs("\n".join(rows) + "\n").table)
    assert reach is not None and (reach.mid_schedule_runs, reach.runs, reach.without_length) == (3, 6, 0)
    assert reach.fraction == pytest.approx(0.25, rel=2e-3)
    # The same runs saying their last checkpoint ends the schedule: the statement wins.
    assert formats.schedule_reach(formats.parse_runs(_with_schedule(schedules, ["true"] * 6)).table) is None


def test_a_run_a_hair_short_of_a_rounded_length_has_reached_it():
    # The review's repro: three runs of ``cosine-20B`` whose last checkpoint is at 19.998B tokens have
    # finished (20B is written to the nearest billion); the same runs stopping at 19B have not.
    def runs(last_tokens: str) -> bytes:
        rows = ["run,num_params,tokens_seen,loss,schedule"]
        for name, size in (("a", "1e8"), ("b", "2e8"), ("c", "4e8")):
            rows += [f"{name},{size},1e10,3.5,cosine-20B", f"{name},{size},{last_tokens},3.2,cosine-20B"]
        return ("\n".join(rows) + "\n").encode()

    assert formats.schedule_reach(formats.parse_runs(runs("19.998e9")).table) is None
    assert formats.schedule_reach(formats.parse_runs(runs("20.4e9")).table) is None
    reach = formats.schedule_reach(formats.parse_runs(runs("19e9")).table)
    assert reach is not None and reach.mid_schedule_runs == 3 and reach.fraction == pytest.approx(0.95)


def test_a_constant_schedule_is_mid_schedule_of_unknown_length():
    data = _with_schedule(["constant"] * 6, [""] * 6)
    reach = formats.schedule_reach(formats.parse_runs(data).table)
    assert reach is not None and not reach.known_horizon and reach.mid_schedule_runs == 6
    assert reach.fraction == 0.1 and reach.without_length == 6
    assert "the shortest it measured" in reach.message


def test_mid_schedule_runs_change_the_design_and_warn():
    # The same runs with and without the declaration: the calibration sees a fit on 10% of training
    # (the collection's shortest) instead of the whole, and the warning names the runs.
    from scaleplan.core import analysis
    from scaleplan.core.selection import Selection

    plain = formats.parse_runs(SWEEP_CSV).table
    declared = formats.parse_runs(_with_schedule(["constant"] * 6, ["false"] * 6)).table
    kwargs = dict(target_params=1e9, target_tokens=2e10)
    columns = ["run_id", "num_params", "tokens_seen", "value"]
    before = analysis.analyse(plain[columns], Selection(min_tokens=1e8), **kwargs)
    after = analysis.analyse(
        declared[columns], Selection(min_tokens=1e8), schedule=formats.schedule_reach(declared), **kwargs
    )
    assert before.features.fraction == 1.0 and after.features.fraction == formats.MIN_MEASURED_FRACTION
    assert after.predicted_loss == before.predicted_loss  # the fit itself is the same
    assert [w.kind for w in after.warnings if w.kind == "mid_schedule"] == ["mid_schedule"]
    assert not [w for w in before.warnings if w.kind == "mid_schedule"]


def test_a_missing_column_error_names_the_files_own_columns():
    with pytest.raises(formats.FormatError) as caught:
        formats.parse_runs("a,b,c\n1,2,3\n")
    assert "found: a, b, c." in str(caught.value)


def test_every_format_names_the_line_of_the_file():
    from tests.core.test_userdata import LINED_CSV

    parsed = formats.parse_runs(LINED_CSV)
    assert parsed.rejected_rows == 2 and parsed.num_runs == 2
    assert parsed.messages[0] == "line 6: loss is not a number"
    assert parsed.messages[1].startswith("line 8: 5 values for 4 columns, not read")
    # An optional column's mistake names the line too.
    data = b"# sweep\nparams,tokens,loss,flops\n\n1e8,2e9,3.0,1e18\n\n1e8,4e9,2.9,lots\n"
    with pytest.raises(formats.FormatError, match=r"flops must be .*; see line 6$"):
        formats.parse_runs(data)


def test_a_wandb_export_names_the_line_and_column_of_a_bad_loss():
    data = b"# exported 2026-11-30\n" + WANDB_CSV.replace(b'"3.42"', b'"n/a"')
    parsed = formats.parse_runs(data, tokens_per_step=2**21)
    assert parsed.format == "wandb"
    # WANDB_CSV's second data row is line 3 of its own; the comment puts it on line 4.
    assert parsed.messages == ("line 4: loss is not a number (column pythia-160m - train/loss)",)


def test_a_parquet_files_bad_row_is_its_data_row():
    frame = pd.DataFrame({"N": [7e7, -1.0, 1.6e8], "D": [2e9, 4e9, 4e9], "loss": [3.2, 3.1, 2.9]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parsed = formats.parse_runs(buffer.getvalue())
    assert parsed.messages == ("row 2: num_params must be > 0",)


# Every column a file can give, each under its own name: what the parser reads.
ALL_COLUMNS_CSV = (
    b"run_name,seed,num_params,step,tokens_per_step,loss,flops,schedule,final_of_schedule,notes\n"
    b"a,0,1e8,1000,1000000,3.2,6e17,cosine-2B,false,first try\n"
    b"a,0,1e8,2000,1000000,3.0,1.2e18,cosine-2B,true,\n"
)
READ_COLUMNS = {"num_params", "tokens_seen", "loss", "run_name", "seed", "step", "tokens_per_step", "flops"}
READ_COLUMNS |= {"schedule", "final_of_schedule"}


def test_the_column_docs_and_errors_list_every_column_the_parser_reads():
    from scaleplan.core import userdata

    parsed = formats.parse_runs(ALL_COLUMNS_CSV)
    assert parsed.mapping.ignored == ("notes",)
    assert set(parsed.mapping.as_dict()) | {"tokens_per_step"} == READ_COLUMNS  # tokens from the step
    assert parsed.table["tokens_seen"].tolist() == [1e9, 2e9] and parsed.table["flops"].tolist() == [6e17, 1.2e18]
    assert {c.name for c in userdata.COLUMN_SPECS} == READ_COLUMNS
    with pytest.raises(formats.FormatError) as caught:
        formats.parse_runs(b"size,amount\n1,2\n")
    listed = str(caught.value).split("The columns are ", 1)[1]
    assert set(re.findall(r"[a-z_]+(?= \(|,|;)", listed)) == READ_COLUMNS
    assert "ignored" not in userdata.NOT_A_TABLE and all(name in userdata.NOT_A_TABLE for name in READ_COLUMNS)


def test_two_unused_columns_of_one_name_are_ignored_but_two_used_ones_are_refused():
    # The review's repro: two ``note`` columns scaleplan does not read were ignored before and must stay so.
    parsed = formats.parse_runs(b"num_params,tokens_seen,loss,note,note\n1e8,2e9,3.1,a,b\n2e8,4e9,2.9,c,d\n")
    assert len(parsed.table) == 2 and parsed.mapping.ignored == ("note",)
    assert sorted(parsed.table["value"]) == [2.9, 3.1]
    # Two columns that would both be the loss: which one is meant is not known.
    with pytest.raises(UserError, match=r"the header repeats a column name \(loss\)"):
        formats.parse_runs(b"num_params,tokens_seen,loss,Loss\n1e8,2e9,3.1,3.0\n")

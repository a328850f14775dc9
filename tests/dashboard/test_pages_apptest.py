"""The analysis pages (fit, planner, reliability) in Streamlit's AppTest: main paths and bad inputs.

SCALEPLAN_DB points at the session's built database (``app_test`` fixture) and SCALEPLAN_META at
a small sweep run once per session (``meta_db`` in tests/conftest.py), or at a missing file.
Every test checks that no exception element is shown and that bad inputs give a readable message.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from scaleplan.core import laws


def _texts(elements) -> str:
    """The elements' text with markdown escapes removed."""
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def _no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _no_failure(at) -> None:
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at) -> int:
    return len(at.get("plotly_chart"))


def _table(at, first_column: str) -> pd.DataFrame:
    """The page's Markdown table (dashboard.common.markdown_table) whose first header is ``first_column``,
    read back: rows split on the unescaped pipes, markdown escapes removed."""
    for element in at.markdown:
        lines = str(element.value).splitlines()
        if not lines or not lines[0].startswith(f"| {first_column} |"):
            continue
        rows = [
            [cell.strip().replace("\\", "") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            for line in lines
            if not line.startswith("|---")
        ]
        return pd.DataFrame(rows[1:], columns=rows[0])
    raise AssertionError(f"no table starting with {first_column!r}")


def _query(at, name):
    value = at.query_params.get(name)
    return value[-1] if isinstance(value, list) else value


def _clear_fit_caches() -> None:
    """Forget every cached fit: the data caches and the kept staged analyses (st.cache_resource)."""
    import streamlit as st

    from scaleplan.dashboard import fits

    st.cache_data.clear()
    fits.staged_analysis.clear()


@pytest.fixture()
def with_meta(meta_db, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    return meta_db


@pytest.fixture()
def without_meta(tmp_path, monkeypatch):
    """No sweep on this machine and no shipped results (an install without data/sweep_results.*)."""
    from scaleplan.core import meta

    path = tmp_path / "no-meta.duckdb"
    monkeypatch.setenv("SCALEPLAN_META", str(path))
    monkeypatch.setattr(meta.shipped, "shipped_results_info", lambda: None)
    return path


# ---------------------------------------------------------------------------------------------
# Fit and extrapolate


def test_fit_default_view(app_test, without_meta):
    at = app_test("fit.py")
    _no_failure(at)
    assert at.selectbox(key="fit.family").value == "pythia"
    assert at.selectbox(key="fit.target").value == "pythia/pythia-12b"
    assert len(at.multiselect(key="fit.runs").value) == 6  # every smaller run
    metrics = _metrics(at)
    predicted = float(metrics["Predicted loss"])
    actual = float(metrics["Actual loss"])
    assert 1.0 < predicted < 2.0 and 1.0 < actual < 2.0
    are = float(metrics["ARE (last 30%)"].rstrip("%")) / 100
    assert 0 <= are < 0.2
    # No sweep results in this session: the prediction says why it has no calibrated interval.
    assert "No calibrated interval" in _texts(at.caption)
    assert _charts(at) == 1
    params = _table(at, "Parameter")
    assert list(params["Parameter"]) == ["E", "A", "B", "alpha", "beta"]
    assert (params["Source"] == "fitted").all()
    # The bootstrap is on demand: off by default, its column empty and the caption says how to get it.
    assert at.toggle(key="fit.boot").value is False
    assert (params["90% interval (bootstrap)"] == "\u2013").all()  # units.MISSING
    assert "turn on the bootstrap" in _texts(at.caption)
    assert len(_table(at, "Run")) == 6
    assert _query(at, "family") == "pythia" and _query(at, "target") == "pythia/pythia-12b"
    assert "runs" not in at.query_params  # the default selection is not spelled out


def test_fit_first_draw_that_cannot_fit_leaves_no_chart(app_test, without_meta):
    """The observed-losses chart the page shows while it fits (first draw of the session) goes when the
    fit fails: the page ends with the reason and how to fix it, and no chart."""
    at = app_test("fit.py", query_params={"family": "pythia", "cutoff": "1e13"})
    _no_failure(at)
    assert "at or below the cutoff" in _texts(at.info)
    assert _charts(at) == 0


def test_fit_calibrated_interval_level_and_warnings(app_test, with_meta):
    at = app_test("fit.py", query_params={"family": "opt"})
    _no_failure(at)
    captions = _texts(at.caption)
    assert "90% interval" in captions
    low, high = (float(v) for v in captions.split("90% interval ")[1].split()[0].split("–"))
    predicted = float(_metrics(at)["Predicted loss"])
    assert low < predicted < high  # never a zero-width interval
    # the family's own evidence the interval conditions on, next to it (core.fitting.largest_size_backtest)
    assert re.search(
        r"Refitted without its largest size \([0-9.]+[MB] params\), the law predicts .* [0-9.]+% (low|high) ", captions
    )
    at.selectbox(key="fit.level").set_value("80").run()
    _no_failure(at)
    captions = _texts(at.caption)
    low80, high80 = (float(v) for v in captions.split("80% interval ")[1].split()[0].split("–"))
    assert low <= low80 < high80 <= high and _query(at, "level") == "80"
    # Three runs: the identifiability warning sits next to the prediction.
    at.multiselect(key="fit.runs").set_value(list(at.multiselect(key="fit.runs").value)[:3]).run()
    _no_exception(at)
    assert "Exactly 3 model sizes" in _texts(at.warning)
    at.toggle(key="fit.boot").set_value(True).run()
    _no_exception(at)
    assert "replicates" in _texts(at.caption)  # the bootstrap's failed-replicate count is stated
    assert _query(at, "boot") == "1"


def test_fit_first_view_profiles_and_bootstraps_once(app_test, with_meta, monkeypatch):
    # The interval is shown before the bootstrap; the bootstrap stage must not redo the
    # identifiability profile (7 refits) that the interval stage already ran.

    from scaleplan.core import analysis, fitting

    calls = {"profile": 0, "bootstrap": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(analysis, "flat_direction", counted("profile", analysis.flat_direction))
    monkeypatch.setattr(fitting, "bootstrap", counted("bootstrap", fitting.bootstrap))
    _clear_fit_caches()
    at = app_test("fit.py", query_params={"family": "opt", "boot": "1"})
    _no_failure(at)
    assert "90% interval" in _texts(at.caption) and "replicates" in _texts(at.caption)
    assert calls == {"profile": 1, "bootstrap": 1}
    params = _table(at, "Parameter")
    # the free parameters' intervals (low – high) hold their fitted values
    checked = 0
    for row in params.itertuples():
        if "not determined" in row[4]:
            continue
        low, high = (float(v) for v in row[4].split("–"))
        assert low <= float(row[3]) <= high
        checked += 1
    assert checked >= 3


def test_fit_level_change_does_not_redo_the_profile(app_test, with_meta, monkeypatch):
    # The identifiability profile (7 refits) does not depend on the interval level: a new level
    # recomputes the interval only.

    from scaleplan.core import analysis

    calls = {"profile": 0}
    original = analysis.flat_direction

    def counted(*args, **kwargs):
        calls["profile"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(analysis, "flat_direction", counted)
    _clear_fit_caches()
    at = app_test("fit.py", query_params={"family": "opt"})
    _no_failure(at)
    assert calls["profile"] == 1 and "90% interval" in _texts(at.caption)
    at.selectbox(key="fit.level").set_value("80").run()
    _no_failure(at)
    assert "80% interval" in _texts(at.caption)
    assert calls["profile"] == 1


def test_fit_failed_bootstrap_keeps_the_interval_and_says_why(app_test, with_meta, monkeypatch):
    # When every bootstrap replicate fails, the calibrated interval (its own stage) still stands,
    # and the page says why the parameter intervals are missing instead of dropping the message.

    from scaleplan.core import fitting

    def failing(*args, **kwargs):
        raise fitting.ConvergenceError("all 100 bootstrap replicates failed to converge")

    monkeypatch.setattr(fitting, "bootstrap", failing)
    _clear_fit_caches()
    at = app_test("fit.py", query_params={"family": "opt", "boot": "1"})
    _no_exception(at)
    assert "90% interval" in _texts(at.caption)
    assert "No bootstrap intervals: All 100 bootstrap replicates failed" in _texts(at.warning)


def test_fit_bootstrap_runs_only_when_asked(app_test, with_meta, monkeypatch):
    # The default view never refits for the parameter intervals; turning the toggle on runs the
    # bootstrap once, and it stays on for the next selection.
    from scaleplan.core import fitting

    calls = {"bootstrap": 0}
    original = fitting.bootstrap

    def counted(*args, **kwargs):
        calls["bootstrap"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(fitting, "bootstrap", counted)
    _clear_fit_caches()
    at = app_test("fit.py", query_params={"family": "opt"})
    _no_failure(at)
    at.selectbox(key="fit.level").set_value("80").run()
    assert calls["bootstrap"] == 0 and "boot" not in at.query_params
    at.toggle(key="fit.boot").set_value(True).run()
    _no_failure(at)
    assert calls["bootstrap"] == 1
    at.slider(key="fit.p").set_value(0.9).run()
    _no_failure(at)
    assert calls["bootstrap"] == 2 and at.toggle(key="fit.boot").value is True


def test_fit_bootstrap_stays_on_across_a_run_that_stops_before_it(app_test, with_meta):
    # A run that stops before the details (no run chosen) does not draw the toggle; when the runs come
    # back the toggle is still on, and so is boot=1 in the link.
    at = app_test("fit.py", query_params={"family": "opt", "boot": "1"})
    _no_failure(at)
    runs = list(at.multiselect(key="fit.runs").value)
    assert at.toggle(key="fit.boot").value is True
    at.multiselect(key="fit.runs").set_value([]).run()
    assert "Choose at least one run" in _texts(at.warning)
    at.multiselect(key="fit.runs").set_value(runs).run()
    _no_failure(at)
    assert at.toggle(key="fit.boot").value is True and _query(at, "boot") == "1"
    assert "replicates" in _texts(at.caption)


def test_fit_task_section_predicts_a_task_and_states_a_refusal(app_test, with_meta):
    # The Fit page's downstream task: a task the study runs can predict gets its accuracy and interval;
    # one they sit at chance on is refused with the reason, not an error.
    at = app_test("fit.py", query_params={"family": "pythia"})
    _no_failure(at)
    at.selectbox(key="fit-task-task").set_value("zero-shot/arc_easy").run()
    _no_failure(at)
    predicted = float(_metrics(at)["Predicted accuracy"].removesuffix(" points"))
    assert 25.0 < predicted < 100.0  # above ARC-Easy's chance (4 choices)
    assert "interval" in _texts(at.caption) and _charts(at) == 2
    at.selectbox(key="fit-task-task").set_value("zero-shot/hendrycksTest-abstract_algebra").run()
    _no_failure(at)
    assert "No prediction:" in _texts(at.warning) and "Predicted accuracy" not in _metrics(at)


def test_fit_tiny_fraction_and_high_cutoff_is_a_message(app_test):
    at = app_test("fit.py")
    at.slider(key="fit.p").set_value(0.1)
    at.number_input(key="fit.cutoff").set_value(100.0).run()
    _no_exception(at)
    shown = (_texts(at.warning) + _texts(at.error)).lower()
    assert "cannot be fitted" in shown and "no checkpoint is left" in shown
    assert _charts(at) == 0
    assert _query(at, "p") == "0.1" and _query(at, "cutoff") == "1e11"


def test_fit_link_with_out_of_range_fraction_falls_back(app_test):
    at = app_test("fit.py", query_params={"family": "pythia", "p": "0.0001", "ckpt": "sideways"})
    _no_failure(at)
    notices = _texts(at.info)
    assert "below the minimum" in notices and "sideways" in notices
    assert at.slider(key="fit.p").value == 1.0
    assert at.segmented_control(key="fit.ckpt").value == "all"


def test_fit_hypothetical_negative_n_is_an_error(app_test):
    at = app_test("fit.py")
    at.selectbox(key="fit.target").set_value("hypothetical").run()
    _no_failure(at)
    assert "Predicted loss" in _metrics(at)  # 2x the largest run by default
    at.text_input(key="fit.n").set_value("-5B").run()
    _no_exception(at)
    assert "greater than zero" in _texts(at.error)
    assert _charts(at) == 0
    at.text_input(key="fit.n").set_value("not a size").run()
    assert "cannot read" in _texts(at.error)


def test_fit_hypothetical_target(app_test):
    at = app_test("fit.py", query_params={"family": "pythia", "target": "hypothetical", "n": "70e9", "d": "1.4e12"})
    _no_failure(at)
    assert at.text_input(key="fit.n").value == "70B" and at.text_input(key="fit.d").value == "1.4T"
    metrics = _metrics(at)
    assert metrics["Actual loss"] == "–"
    assert 0.5 < float(metrics["Predicted loss"]) < 2.0
    assert _query(at, "n") == "7e10" and _query(at, "d") == "1.4e12"


def test_fit_empty_run_selection_is_a_notice(app_test):
    at = app_test("fit.py")
    at.multiselect(key="fit.runs").set_value([]).run()
    _no_exception(at)
    assert "Choose at least one run" in _texts(at.warning)
    assert _charts(at) == 0


def test_fit_target_smaller_than_every_run(app_test):
    at = app_test("fit.py")
    at.selectbox(key="fit.target").set_value("pythia/pythia-70m").run()
    _no_exception(at)
    assert "No run of this family is smaller than the target" in _texts(at.warning)


def test_fit_fewer_runs_and_final_only(app_test):
    at = app_test("fit.py")
    at.multiselect(key="fit.runs").set_value(["pythia/pythia-70m", "pythia/pythia-160m"])
    at.segmented_control(key="fit.ckpt").set_value("final").run()
    _no_exception(at)
    # Two final losses cannot identify five parameters: a message, not a crash.
    assert "cannot be fitted" in _texts(at.warning) + _texts(at.error)
    assert len(at.query_params.get_all("runs") if hasattr(at.query_params, "get_all") else at.query_params["runs"]) == 2


def test_fit_borrowed_exponents(app_test):
    at = app_test("fit.py")
    at.multiselect(key="fit.borrow").set_value(["alpha", "beta"])
    at.selectbox(key="fit.from").set_value("pythia-deduped").run()
    _no_failure(at)
    params = _table(at, "Parameter").set_index("Parameter")
    assert params.loc["alpha", "Source"] == "borrowed from pythia-deduped"
    assert params.loc["E", "Source"] == "fitted"
    assert _query(at, "from") == "pythia-deduped"


def test_fit_law_selector_fits_the_chosen_law(app_test, with_meta):
    at = app_test("fit.py")
    assert at.selectbox(key="fit.law").options == [laws.get(n).title for n in laws.loss_laws()]
    at.selectbox(key="fit.law").set_value("overtrain").run()
    _no_failure(at)
    params = _table(at, "Parameter").set_index("Parameter")
    assert list(params.index) == ["E", "a", "b", "eta"]
    assert _query(at, "law") == "overtrain"
    # the calibration measured Chinchilla fits: no calibrated interval for another law, and it says so
    assert "learned on Chinchilla fits" in _texts(at.caption) + _texts(at.markdown) + _texts(at.info)
    assert [o.split(" ")[0] for o in at.multiselect(key="fit.borrow").options] == ["E", "a", "b", "eta"]


TRUTH = {"E": 1.8, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.3}


def _uploaded() -> pd.DataFrame:
    """Synthetic uploaded runs drawn exactly from a known law (5 sizes x 8 checkpoints above 10B tokens)."""
    rows = []
    for name, n in (("tiny", 2e7), ("small", 6e7), ("mid", 2e8), ("big", 5e8), ("target", 1e9)):
        for d in np.geomspace(12e9, 60e9, 8):
            rows.append(
                {
                    "run_id": f"upload/{name}",
                    "run_name": name,
                    "seed": np.nan,
                    "num_params": n,
                    "tokens_seen": d,
                    "value": float(laws.chinchilla_loss(n, d, **TRUTH)),
                }
            )
    return pd.DataFrame(rows)


def test_fit_uploaded_runs(app_test):
    # The fit must predict the uploaded 1B target closely.
    truth = TRUTH
    at = app_test("fit.py", session_state={"uploaded_runs": _uploaded(), "uploaded_runs_name": "mine.csv"})
    at.selectbox(key="fit.family").set_value("your-runs").run()
    _no_failure(at)
    assert at.selectbox(key="fit.target").value == "upload/target"
    metrics = _metrics(at)
    expected = float(laws.chinchilla_loss(1e9, 60e9, **truth))
    assert float(metrics["Predicted loss"]) == pytest.approx(expected, abs=0.002)
    assert float(metrics["ARE (last 30%)"].rstrip("%")) < 0.5


def test_fit_link_to_uploaded_runs_without_upload(app_test):
    at = app_test("fit.py", query_params={"family": "your-runs"})
    _no_failure(at)
    assert "uploaded runs" in _texts(at.info)
    assert at.selectbox(key="fit.family").value == "pythia"


# ---------------------------------------------------------------------------------------------
# Budget planner


def test_planner_default_view(app_test, with_meta):
    at = app_test("planner.py", timeout=120)  # the first planner run fits the reference laws (cached after)
    _no_failure(at)
    metrics = _metrics(at)
    assert metrics["Target"].startswith("70B")
    assert metrics["Study budget"] == "$20k"
    designs = at.dataframe[0].value
    assert "★" in set(designs["Pick"])
    assert {"Model sizes", "Tokens", "Cost", "ARE p50", "ARE p80", "ARE p90", "Support"} <= set(designs.columns)
    # short enough for 1,400 px (tests/dashboard/test_browser_planner.py): how many sizes, smallest to largest
    assert (
        designs["Model sizes"].str.fullmatch(r"\d+ sizes, [0-9.]+[kMBT]?–[0-9.]+[kMBT]?|1 size, [0-9.]+[kMBT]?").all()
    )
    laws = next(t.value for t in at.table if "Name" in t.value.columns)  # a static table (wraps at 1,400 px)
    assert {"hoffmann2022", "besiroglu2024", "gadre-rpj"} <= {str(v).replace("\\", "") for v in laws["Name"]}
    assert _charts(at) == 3  # cost vs ARE, loss/error and inference cost vs multiplier
    text = _texts(at.markdown)
    assert "To predict the loss of a 70B-parameter model" in text
    assert "The default reference is Besiroglu" in _texts(at.caption)
    assert _query(at, "n") == "7e10" and _query(at, "amount") == "20000"


def test_planner_ready_on_first_open_with_the_shipped_results(app_test, tmp_path, monkeypatch):
    """A fresh machine (no sweep run here): the results shipped with scaleplan rank the designs."""
    from scaleplan.core import meta

    monkeypatch.setenv("SCALEPLAN_META", str(tmp_path / "never-run.duckdb"))
    assert meta.shipped_results_info() is not None
    at = app_test("planner.py", timeout=120)
    _no_failure(at)
    assert not (tmp_path / "never-run.duckdb").exists()  # nothing was computed for the page
    designs = at.dataframe[0].value
    assert "★" in set(designs["Pick"])
    assert designs["Support"].astype(str).str.contains(r"\d+ fits, \d+ families").any()
    assert "Expected accuracy is not available" not in _texts(at.info)


def test_planner_without_meta_says_so_and_runs_no_sweep(app_test, without_meta):
    at = app_test("planner.py")
    _no_failure(at)
    assert not any(b.label.startswith("Run the meta-analysis") for b in at.button)
    assert "Expected accuracy is not available" in _texts(at.info)
    assert "scaleplan meta run" in _texts(at.info)
    assert _charts(at) == 2  # the over-training trade-off does not need the results
    assert "No study design can be ranked" in _texts(at.markdown)


@pytest.mark.parametrize("amount", [0.0, -100.0])
def test_planner_impossible_budget(app_test, with_meta, amount):
    at = app_test("planner.py")
    at.number_input(key="planner.amount").set_value(amount).run()
    _no_exception(at)
    assert "Impossible study budget" in _texts(at.error)


def test_planner_tiny_budget_has_no_pick(app_test, with_meta):
    at = app_test("planner.py")
    at.number_input(key="planner.amount").set_value(0.05).run()
    _no_failure(at)
    assert "No well-supported study design fits the $0.05 budget" in _texts(at.markdown)


def test_planner_bad_gpu_model(app_test, with_meta):
    at = app_test("planner.py")
    at.number_input(key="planner.mfu").set_value(0.0).run()
    _no_exception(at)
    assert "MFU" in _texts(at.error)


def test_planner_negative_target(app_test, with_meta):
    at = app_test("planner.py")
    at.text_input(key="planner.n").set_value("-70B").run()
    _no_exception(at)
    assert "greater than zero" in _texts(at.error)


def test_planner_compute_budget_mode(app_test, with_meta):
    at = app_test("planner.py")
    at.segmented_control(key="planner.mode").set_value("compute")
    at.run()
    at.text_input(key="planner.c").set_value("1e22").run()
    _no_failure(at)
    assert _metrics(at)["Target"] == _metrics(at)["Compute-optimal N*"]
    assert "besiroglu2024" in _texts(at.caption)
    assert _query(at, "mode") == "compute" and _query(at, "c") == "1e22"


def test_planner_gpu_hours(app_test, with_meta):
    at = app_test("planner.py")
    at.segmented_control(key="planner.unit").set_value("gpu_hours").run()
    at.number_input(key="planner.amount").set_value(1000.0).run()
    _no_failure(at)
    # 1000 GPU-hours at $2 = $2k; 1000 * 3600 s * 989e12 FLOP/s * 0.4 = 1.4e21 FLOPs
    assert _metrics(at)["Study budget"] == "1k GPU-hours"  # the unit it was given in (review 4), its $ below
    assert "$2k · 1.4e21 FLOPs" in _texts(at.caption)


def test_planner_reference_law_from_uploaded_runs(app_test, with_meta):
    at = app_test("planner.py", session_state={"uploaded_runs": _uploaded(), "uploaded_runs_name": "mine.csv"})
    at.selectbox(key="planner.law").set_value("fit:your-runs").run()
    _no_failure(at)
    assert "Compute-optimal N*" in _metrics(at) and "fit:your-runs" in _texts(at.caption)
    assert _query(at, "law") == "fit:your-runs"


def test_planner_bad_link_values(app_test, with_meta):
    at = app_test("planner.py", query_params={"mfu": "500", "n": "lots", "unit": "<b>x</b>"})
    _no_failure(at)
    notices = _texts(at.info)
    assert "above the maximum" in notices and "lots" in notices
    assert at.number_input(key="planner.mfu").value == 40.0


# ---------------------------------------------------------------------------------------------
# How reliable are scaling laws?


def test_reliability_default_view(app_test, with_meta):
    at = app_test("reliability.py")
    _no_failure(at)
    assert int(_metrics(at)["Families"]) == 5
    assert _charts(at) == 4  # calibration plot + heatmap + two comparisons
    reading = _texts(at.markdown)
    assert "The 90% intervals contained the real loss for" in reading and "diagonal" in reading
    assert "Each source group" in reading  # held out as a new lab's runs are, not one family at a time
    coverage = at.dataframe[0].value
    assert list(coverage["Nominal"]) == ["50%", "80%", "90%", "95%"]
    # The session's sweep has 5 families in 4 source groups (pythia and pythia-deduped are one): one row
    # each, with the groups' designs adding up to the pooled count, and the page's 90% figure is that of
    # a leave-one-source-out report computed here.
    from scaleplan.core import calibration, meta

    groups = at.dataframe[1].value.set_index("Source group")
    assert set(groups.index) == {"pythia", "opt", "gpt3", "overtrain"}
    assert groups.loc["pythia", "Families"] == 2
    results = meta.load_results(with_meta)
    report = calibration.summarise(calibration.leave_one_source_out(results), holdout="source")
    assert int(groups["Designs"].sum()) == report.cells
    realised_90 = next(s.realised for s in report.levels if s.nominal == 0.9)
    assert list(coverage["Realised (ours)"])[2] == f"{realised_90:.1%}"
    findings = at.table[0].value
    assert "Holds on our data?" in findings.columns
    assert set(findings["Holds on our data?"]) <= {"Yes", "No", "Not testable here"}


def test_reliability_family_and_final_only(app_test, with_meta):
    at = app_test("reliability.py")
    at.selectbox(key="reliability.family").set_value("opt")
    at.segmented_control(key="reliability.ckpt").set_value("final").run()
    _no_exception(at)
    assert _query(at, "family") == "opt" and _query(at, "ckpt") == "final"


def test_reliability_bars_and_table_agree_and_name_the_options(app_test, with_meta):
    """The checkpoints comparison's caption and the findings table count the same tasks, recomputed here from
    the sweep rows (10B cutoff on, one task per family, runs, fraction); in one family with no pair to compare,
    the failure rates name their options (before: "33% (first option) and 100% (second option)")."""
    from scaleplan.core import meta

    rows = meta.load_results(with_meta)
    rows = rows[np.isclose(rows["min_tokens"].astype(float), 10e9)]
    key = ["family", "run_ids", "fraction", "objective"]

    def tasks(frame):
        a, b = frame[~frame["final_only"].astype(bool)], frame[frame["final_only"].astype(bool)]
        return a.merge(b, on=key, suffixes=("_a", "_b"))

    every = tasks(rows)
    at = app_test("reliability.py")
    _no_failure(at)
    captions = _texts(at.caption)
    assert (
        f"Of the {len(every):,} tasks fitted both ways, fits fail in {(every['status_a'] != 'ok').mean():.0%}"
        in captions
    )
    ours = at.table[0].value.set_index("Finding").iloc[0]["Our sweep"]
    assert f"of all {len(every):,} designs fitted both ways" in ours
    # the bars' subtitle counts the informative pairs and says of how many tasks (the caption's count)
    informative = every[
        (every["status_a"] == "ok") & (every["status_b"] == "ok") & (every["n_points_a"] != every["n_points_b"])
    ]
    texts = [
        " ".join(a["text"].replace("<br>", " ").split())
        for chart in at.get("plotly_chart")
        for a in json.loads(chart.proto.spec)["layout"].get("annotations", [])
    ]
    specs = " | ".join(texts)
    assert f"{len(informative):,} pairs where both fits succeeded on different points (of {len(every):,} tasks" in specs

    pythia = tasks(rows[rows["family"] == "pythia"])
    assert (pythia["status_b"] != "ok").all()  # final-only never fits Pythia: no pair to draw
    at.selectbox(key="reliability.family").set_value("pythia").run()
    _no_failure(at)
    info = _texts(at.info)
    assert (
        f"fits fail in {(pythia['status_a'] != 'ok').mean():.0%} with “Intermediate checkpoints” and in 100% with "
        "“Final losses only”"
    ) in info
    assert "first option" not in info


def test_reliability_without_meta(app_test, without_meta):
    at = app_test("reliability.py")
    _no_failure(at)
    assert any(b.label.startswith("Run the meta-analysis") for b in at.button)
    assert _charts(at) == 0


def test_run_the_sweep_button(app_test, without_meta, meta_db, monkeypatch):
    """The button runs the sweep with a progress callback and the page then uses the results
    (the sweep itself is replaced by a copy of the session's small sweep)."""
    import shutil

    from scaleplan.core import meta

    calls = []

    def fake_sweep(db_path, meta_path, **kwargs):
        calls.append(kwargs)
        kwargs["on_progress"](1, 2)
        shutil.copy(meta_db, meta_path)
        kwargs["on_progress"](2, 2)
        return meta.SweepReport(planned=2, skipped=0, fitted=2, failed=0, seconds=0.1)

    monkeypatch.setattr(meta, "run_sweep", fake_sweep)
    at = app_test("reliability.py", timeout=120)  # after the click the page learns the calibration (LOFO)
    assert _charts(at) == 0
    next(b for b in at.button if b.label.startswith("Run the meta-analysis")).click().run()
    _no_failure(at)
    assert len(calls) == 1 and callable(calls[0]["on_progress"])
    assert _charts(at) == 4  # calibration plot, heatmap and two comparisons, from the new results


def test_reliability_card_and_footer_count_the_same_families(app_test, meta_db, tmp_path, monkeypatch):
    """A family whose fits all failed is not counted as a family of results on the card or in the footer."""
    import shutil

    import duckdb

    path = tmp_path / "meta.duckdb"
    shutil.copy(meta_db, path)
    con = duckdb.connect(str(path))
    con.execute("""INSERT INTO sweep_results (key, data_version, family, status, message)
                   SELECT 'all-failed', any_value(data_version), 'zz-all-failed', 'failed', 'synthetic'
                   FROM sweep_results""")
    con.close()
    monkeypatch.setenv("SCALEPLAN_META", str(path))
    at = app_test("reliability.py", timeout=300)  # the findings experiments take a while on a busy machine
    _no_failure(at)
    assert int(_metrics(at)["Families"]) == 5
    assert "5 families with a successful fit (of 6 tried)" in _texts(at.caption)


def _small_uploaded() -> pd.DataFrame:
    """Uploaded runs as people train them: every checkpoint under 10B tokens (drawn from TRUTH)."""
    rows = []
    for name, n in (("tiny", 2e7), ("small", 6e7), ("mid", 2e8), ("big", 5e8), ("target", 1e9)):
        for d in np.geomspace(1e8, 4e9, 10):
            rows.append(
                {
                    "run_id": f"upload/{name}",
                    "run_name": name,
                    "seed": np.nan,
                    "num_params": n,
                    "tokens_seen": d,
                    "value": float(laws.chinchilla_loss(n, d, **TRUTH)),
                }
            )
    return pd.DataFrame(rows)


def test_fit_uploaded_runs_under_10b_tokens_fit_by_default(app_test):
    at = app_test(
        "fit.py", session_state={"uploaded_runs": _small_uploaded(), "uploaded_runs_name": "mine.csv"}, timeout=180
    )
    at.selectbox(key="fit.family").set_value("your-runs").run(timeout=180)
    _no_failure(at)
    assert at.number_input(key="fit.cutoff").value == pytest.approx(0.4)  # 10% of 4B tokens, in B tokens
    expected = float(laws.chinchilla_loss(1e9, 4e9, **TRUTH))
    assert float(_metrics(at)["Predicted loss"]) == pytest.approx(expected, abs=0.002)
    # Back to a family of the collection: the paper's 10B cutoff again.
    at.selectbox(key="fit.family").set_value("pythia").run(timeout=180)
    assert at.number_input(key="fit.cutoff").value == pytest.approx(10.0)


def test_fit_hypothetical_target_inside_the_uploaded_size_range(app_test):
    at = app_test(
        "fit.py", session_state={"uploaded_runs": _small_uploaded(), "uploaded_runs_name": "mine.csv"}, timeout=180
    )
    at.selectbox(key="fit.family").set_value("your-runs").run(timeout=180)
    at.selectbox(key="fit.target").set_value("hypothetical").run(timeout=180)
    at.text_input(key="fit.n").set_value("300M")
    at.text_input(key="fit.d").set_value("3B").run(timeout=180)
    _no_failure(at)
    assert len(at.multiselect(key="fit.runs").value) == 5  # larger runs than the target are offered and used
    assert "inside the size range of the runs fitted" in _texts(at.info)
    expected = float(laws.chinchilla_loss(3e8, 3e9, **TRUTH))
    assert float(_metrics(at)["Predicted loss"]) == pytest.approx(expected, abs=0.002)


def test_fit_page_says_which_loss_in_which_unit(app_test):
    at = app_test("fit.py", timeout=180)
    _no_failure(at)
    said = _texts(at.markdown)
    assert "Loss fitted and predicted: **LAMBADA last-word loss, zero-shot**, in nats/word" in said
    import json

    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert figure["layout"]["yaxis"]["title"]["text"].startswith("LAMBADA last-word loss, zero-shot (nats/word")
    assert "pythia" in figure["layout"]["title"]["text"]  # a downloaded chart says what it is
    assert "runs in the fit" in figure["layout"]["annotations"][-1]["text"]


def test_fit_chart_caption_counts_the_fitted_sizes_not_the_family(app_test):
    # pythia has 8 sizes (70M-12B); fitting 3 of them, the chart says 3 sizes, 70M-410M, not the family's.
    import json

    at = app_test("fit.py")
    at.multiselect(key="fit.runs").set_value(["pythia/pythia-70m", "pythia/pythia-160m", "pythia/pythia-410m"]).run()
    _no_exception(at)
    charts = at.get("plotly_chart")
    assert charts
    caption = " ".join(a["text"] for a in json.loads(charts[0].proto.spec)["layout"]["annotations"])
    assert "3 runs in the fit (3 sizes, 70M–405M params)" in caption, caption


def test_explore_table_export_writes_compute_as_numbers_in_flops(app_test, monkeypatch):
    # review4/5: the CSV held the screen's text ("2.13e22") in its compute column. The file must hold numbers:
    # FLOPs (the unit in the column's name), which for these runs are close to 6 x parameters x tokens.
    import csv
    import io

    from scaleplan.core import exports

    written: dict[str, bytes] = {}
    real = exports.csv_bytes

    def recording(frame):
        data = real(frame)
        written[",".join(map(str, frame.columns))] = data
        return data

    monkeypatch.setattr(exports, "csv_bytes", recording)
    at = app_test("explore.py")
    _no_failure(at)
    shown = next(t for t in at.dataframe if "Compute (last, FLOPs)" in t.value.columns).value
    assert shown["Compute (last, FLOPs)"].map(lambda v: isinstance(v, str)).all()  # the screen keeps its text
    (data,) = [d for name, d in written.items() if "Compute (last, FLOPs)" in name]
    # read as written: quoted cells are text, the others numbers (csv.QUOTE_NONNUMERIC)
    head, *rows = list(csv.reader(io.StringIO(data.decode("utf-8")), quoting=csv.QUOTE_NONNUMERIC))
    column = {name: i for i, name in enumerate(head)}
    compute = [row[column["Compute (last, FLOPs)"]] for row in rows]
    assert rows and all(isinstance(v, float) for v in compute), compute[:5]
    # in FLOPs and to full precision: most runs' compute is 6 x parameters x tokens (C = 6ND) to rounding error
    exact = [
        abs(c / (6 * row[column["Parameters"]] * row[column["Tokens seen (last)"]]) - 1) < 1e-6
        for c, row in zip(compute, rows)
    ]
    assert sum(exact) > 0.5 * len(rows), compute[:5]

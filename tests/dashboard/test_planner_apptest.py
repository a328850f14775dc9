"""The Budget planner in Streamlit's AppTest: percent inputs, errors under their input's heading,
links that hold every input, candidate runs."""

from __future__ import annotations

import pytest

from scaleplan.core import units


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def _no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _query_all(at, name) -> list[str]:
    value = at.query_params.get(name)
    return [] if value is None else ([value] if isinstance(value, str) else list(value))


@pytest.fixture()
def with_meta(meta_db, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    return meta_db


# 70B on 1.4T tokens: 6 N D = 5.88e23 FLOPs; at 989 TFLOP/s and 40% MFU, 5.88e23 / (3600 * 989e12 * 0.4)
# = 412,863 GPU-hours, $825.7k at $2 per GPU-hour.
TARGET_COST_40 = units.format_dollars(6 * 70e9 * 1.4e12 / (3600 * 989e12 * 0.4) * 2)


def test_mfu_typed_as_a_fraction_is_converted_with_a_note(app_test, with_meta):
    at = app_test("planner.py", timeout=120)
    assert _metrics(at)["Training the target costs"] == TARGET_COST_40 == "$826k"
    at.number_input(key="planner.mfu").set_value(0.4).run()
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert _metrics(at)["Training the target costs"] == TARGET_COST_40
    assert "MFU: 0.4 was read as a fraction, 40%" in _texts(at.info)
    assert at.query_params.get("mfu") in ("40", ["40"])
    at.number_input(key="planner.are").set_value(0.05).run()
    assert "the accuracy needed: 0.05 was read as a fraction, 5%" in _texts(at.info).lower()
    assert "the 5.0% goal" in _texts(at.markdown)


@pytest.mark.parametrize(
    ("key", "value", "heading"),
    [
        ("planner.mfu", 0.0, "MFU (%):"),
        ("planner.mfu", 150.0, "MFU (%):"),
        ("planner.are", 500.0, "Accuracy needed (ARE, %):"),
        ("planner.price", 0.0, "$ per GPU-hour:"),
        ("planner.peak", 0.0, "Peak TFLOP/s per GPU:"),
        ("planner.amount", -5.0, "Impossible study budget:"),
    ],
)
def test_each_error_is_under_its_inputs_heading(app_test, with_meta, key, value, heading):
    at = app_test("planner.py", timeout=120)
    at.number_input(key=key).set_value(value).run()
    _no_exception(at)
    errors = [str(e.value).replace("\\", "") for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(heading), errors
    if heading != "Impossible study budget:":
        assert "Impossible study budget" not in errors[0]


def test_link_holds_token_rules_and_the_outside_box(app_test, with_meta):
    at = app_test("planner.py", timeout=120, query_params={"rules": ["isoflop", "target_fraction"], "any": "1"})
    _no_exception(at)
    assert not at.error
    assert at.multiselect(key="planner.rules").value == ["isoflop", "target_fraction"]
    assert at.checkbox(key="planner.any_tpp").value is True
    rules = set(at.dataframe[0].value["Token rule"])
    assert rules <= {"IsoFLOP grid", "Fraction of target tokens"}
    assert _query_all(at, "rules") == ["target_fraction", "isoflop"] and _query_all(at, "any") == ["1"]
    at.multiselect(key="planner.rules").set_value(["tokens_per_param"]).run()
    at.checkbox(key="planner.any_tpp").uncheck().run()
    assert _query_all(at, "rules") == ["tokens_per_param"] and _query_all(at, "any") == []
    assert set(at.dataframe[0].value["Token rule"]) == {"Tokens per parameter"}


RUNS = [(150e6, 3e9, 2), (300e6, 6e9, 2), (600e6, 12e9, 2), (1.2e9, 24e9, 2), (2e9, 40e9, 2), (3e9, 60e9, 2)]


def test_candidate_runs_are_priced_like_the_cli(app_test, with_meta, built_db, tmp_path, capsys):
    import json

    from scaleplan.core import cli

    records = [{"Parameters": units.format_count(n), "Tokens": units.format_count(t), "Seeds": k} for n, t, k in RUNS]
    at = app_test("planner.py", timeout=120, session_state={"planner.candidate_base": records})
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]
    metrics = _metrics(at)

    path = tmp_path / "runs.csv"
    path.write_text("num_params,tokens,seeds\n" + "".join(f"{n:g},{t:g},{k}\n" for n, t, k in RUNS))
    argv = ["plan", "--target-params", "70B", "--target-tokens", "1.4T", "--budget-dollars", "20000"]
    argv += ["--accuracy", "5", "--runs-file", str(path), "--json", "--quiet", "--law-boot", "2"]
    assert cli.main([*argv, "--db", str(built_db), "--meta", str(with_meta), "--log-dir", str(tmp_path)]) == 0
    candidate = json.loads(capsys.readouterr().out)["candidate"]
    # sum_i 2 * 6 N_i D_i at 7.12e17 FLOPs per dollar
    dollars = sum(k * 6 * n * t for n, t, k in RUNS) / (3600 * 989e12 * 0.4) * 2
    assert candidate["cost_dollars"] == pytest.approx(dollars, rel=1e-9)
    assert metrics["Your runs cost"] == units.format_dollars(candidate["cost_dollars"]) == units.format_dollars(dollars)
    assert metrics["Your runs: ARE median"] == units.format_percent(candidate["are_median"])
    assert metrics["Your runs: ARE 80th pct."] == units.format_percent(candidate["are_p80"])
    assert "your 6 runs of 150M-3B parameters on 20 tokens/param, 2 seeds" in _texts(at.caption)


def test_candidate_table_prefilled_from_the_pick_and_bad_rows_named(app_test, with_meta):
    at = app_test("planner.py", timeout=120)
    _no_exception(at)
    designs = at.dataframe[0].value
    pick_cost = designs.loc[designs["Pick"] == "★", "Cost"].iloc[0]
    pick_p80 = designs.loc[designs["Pick"] == "★", "ARE p80"].iloc[0]
    metrics = _metrics(at)
    assert metrics["Your runs cost"] == pick_cost and metrics["Your runs: ARE 80th pct."] == pick_p80
    bad = [{"Parameters": "150M", "Tokens": "3B", "Seeds": 1}, {"Parameters": "lots", "Tokens": "3B", "Seeds": 1}]
    at = app_test("planner.py", timeout=120, session_state={"planner.candidate_base": bad})
    _no_exception(at)
    errors = _texts(at.error)
    assert errors.startswith("Your candidate runs:") and "row 2, num_params: cannot read 'lots'" in errors


def test_next_rung_of_a_stored_study(app_test, with_meta, tmp_path, monkeypatch):
    from scaleplan.core import formats, laws, studies

    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    lines = ["run_name,seed,num_params,tokens_seen,loss"]
    for n in (50e6, 100e6, 200e6, 400e6):
        for share in (0.5, 1.0):
            lines.append(
                f"r{n:g},0,{n:g},{20 * n * share:g},{float(laws.chinchilla_loss(n, 20 * n * share, **truth)):.5f}"
            )
    data = ("\n".join(lines) + "\n").encode()
    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    studies.save_study(store, "ladder", formats.parse_runs(data), sha256=studies.sha256_of(data))
    at = app_test("planner.py", timeout=120)
    at.selectbox(key="planner.from_study").set_value("ladder").run()
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]
    table = next(df.value for df in at.dataframe if "Add" in df.value.columns)
    # 800M at 20 tokens/param: 6 * 8e8 * 1.6e10 FLOPs at 7.12e17 FLOPs per dollar
    row = table[table["Add"].str.startswith("a 800M-parameter run")].iloc[0]
    assert row["Cost of the added runs"] == units.format_dollars(6 * 8e8 * 1.6e10 / (3600 * 989e12 * 0.4 / 2))
    seeds = table[table["Add"] == "one more seed of every run"].iloc[0]
    assert seeds["Pick"] == ""
    assert "Your study (4 runs of 50M-400M parameters) predicts the target with" in _texts(at.markdown)
    at.button(key="planner.rung_to_candidates").click().run()
    _no_exception(at)
    base = at.session_state["planner.candidate_base"]
    picked = table[table["Pick"] == "★"]
    assert len(base) >= 4 and {r["Parameters"] for r in base[:4]} == {"50M", "100M", "200M", "400M"}
    if picked.empty:
        assert len(base) == 4
    else:
        assert len(base) > 4
    assert at.query_params.get("from") in ("ladder", ["ladder"])
    linked = app_test("planner.py", timeout=120, query_params={"from": "ladder"})
    _no_exception(linked)
    assert linked.selectbox(key="planner.from_study").value == "ladder"


def test_candidate_rows_by_tokens_per_param(app_test, with_meta):
    rows = [
        {"Parameters": "1B", "Tokens": None, "Tokens per parameter": "20", "Seeds": 1},
        {"Parameters": "2B", "Tokens": "40B", "Tokens per parameter": None, "Seeds": 1},
    ]
    at = app_test("planner.py", timeout=120, session_state={"planner.candidate_base": rows})
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]
    # 6 * (1e9 * 2e10 + 2e9 * 4e10) FLOPs at 7.12e17 FLOPs per dollar
    assert _metrics(at)["Your runs cost"] == units.format_dollars(
        6 * (1e9 * 2e10 + 2e9 * 4e10) / (3600 * 989e12 * 0.4 / 2)
    )


def test_link_to_a_study_that_is_not_stored_is_explained_and_dropped(app_test, with_meta, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(tmp_path / "empty-user.duckdb"))
    at = app_test("planner.py", timeout=120, query_params={"from": "gone"})
    _no_exception(at)
    assert "Unknown stored study “gone” in the link; showing “none” instead." in _texts(at.info)
    assert at.query_params.get("from") is None


def test_a_store_another_program_holds_is_explained_and_the_link_kept(app_test, with_meta, tmp_path, monkeypatch):
    from tests.helpers import held_for_writing

    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    with held_for_writing(store):
        at = app_test("planner.py", timeout=120, query_params={"from": "ladder"})
    _no_exception(at)
    warning = _texts(at.warning)
    assert "Your stored studies cannot be read" in warning and "in use" in warning
    assert "reload this page" in warning and "point --db" not in warning  # the page's remedy, not the CLI's
    assert "Unknown stored study" not in _texts(at.info)
    assert at.query_params.get("from") in ("ladder", ["ladder"])  # kept for when the store is free again


def test_a_target_beyond_the_overtraining_range_keeps_the_plan(app_test, with_meta):
    # 1e15 tokens on 200M parameters: 5,000,000 tokens per parameter, both within the inputs' limits
    at = app_test("planner.py", timeout=120, query_params={"n": "200M", "d": "1e15"})
    _no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "over-training table is left out: the target trains on 5M tokens per parameter" in _texts(at.info)
    assert "Recommendation" in _texts(at.markdown)
    assert all("Tokens per parameter M" not in frame.value.columns for frame in at.dataframe)


def test_overtraining_table_marks_the_target_row(app_test, with_meta):
    at = app_test("planner.py", timeout=120, query_params={"n": "1.4B", "d": "30B"})
    _no_exception(at)
    table = next(frame.value for frame in at.dataframe if "Tokens per parameter M" in frame.value.columns)
    marked = table[table["Target"] == "★"]
    # the target's row: 30B / 1.4B = 21.43 tokens per parameter, shown to 3 significant digits
    assert len(marked) == 1 and marked["Tokens per parameter M"].iloc[0] == "21.4"
    assert table["Tokens per parameter M"].str.len().max() <= 5


def test_every_design_refused_is_not_blamed_on_the_budget(app_test, with_meta):
    at = app_test("planner.py", timeout=120, query_params={"n": "1.4B", "d": "900B", "amount": "5000000"})
    _no_exception(at)
    text = _texts(at.markdown)
    assert "No well-supported study design fits" not in text
    assert "designs of the design space is refused, for reasons that no budget changes" in text
    assert "designs: the target trains on 643 tokens per parameter" in text

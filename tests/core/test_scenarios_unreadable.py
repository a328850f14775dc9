"""A saved scenario whose stored inputs cannot be read is listed as unreadable and kept; it never blocks
a study rename or the listing of the others."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scaleplan.core import cli, scenarios, studies
from scaleplan.core.userstore import user_store
from tests.core.test_scenarios import BASE, _raw_rows, _stored_study

DAMAGED = "{not json"
NOT_INPUTS = {
    "a list": "[1, 2]",
    "a negative budget": json.dumps({"target_params": 7e9, "target_tokens": 1.4e11, "budget_dollars": -5}),
}


def _insert(store, name: str, text: str) -> None:
    with user_store(store) as con:
        scenarios.ensure_scenario_tables(con)
        con.execute(
            "INSERT INTO scenarios VALUES (?, ?, '1', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            [name, text],
        )


@pytest.fixture
def store(tmp_path):
    """A study 'my sweep', a scenario planned on it, one on the collection, and a damaged row."""
    path = tmp_path / "user.duckdb"
    _stored_study(path)
    with user_store(path) as con:
        scenarios.save_scenario(con, "from my sweep", dataclasses.replace(BASE, study="my sweep", law="fit:my sweep"))
        scenarios.save_scenario(con, "collection", BASE)
    _insert(path, "damaged", DAMAGED)
    return path


def test_carry_study_leaves_unreadable_json_alone():
    assert scenarios.carry_study(DAMAGED, "my sweep", "v2") is None


def test_one_damaged_row_does_not_block_a_study_rename(store, tmp_path, capsys):
    before = _raw_rows(store)
    code = cli.main(["--user-db", str(store), "--log-dir", str(tmp_path / "log"), "runs", "rename", "my sweep", "v2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [s.name for s in studies.list_studies(store)] == ["v2"]
    after = _raw_rows(store)
    assert after["damaged"] == before["damaged"]  # kept byte for byte
    assert after["collection"] == before["collection"]
    carried = json.loads(after["from my sweep"][1])
    assert carried["study"] == "v2" and carried["law"] == "fit:v2"


def test_the_listing_names_an_unreadable_row_and_keeps_it(store, tmp_path, capsys):
    for name, text in NOT_INPUTS.items():
        _insert(store, name, text)
    before = _raw_rows(store)
    with user_store(store, read_only=True) as con:
        listed = {s.name: s for s in scenarios.list_scenarios(con)}
    assert set(listed) == {"a list", "a negative budget", "collection", "damaged", "from my sweep"}
    for name in ("a list", "a negative budget", "damaged"):
        assert isinstance(listed[name], scenarios.UnreadableScenario), name
    assert "not valid JSON" in listed["damaged"].problem
    assert isinstance(listed["collection"], scenarios.Scenario) and listed["collection"].inputs == BASE

    where = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    assert cli.main([*where, "scenario", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [damaged] = [line for line in lines if line.startswith("damaged: ")]
    assert "unreadable" in damaged and "scaleplan scenario remove damaged" in damaged
    assert any(line.startswith("collection: ") and "unreadable" not in line for line in lines)
    assert cli.main([*where, "scenario", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["scenarios"]}
    assert rows["damaged"]["inputs"] is None and "not valid JSON" in rows["damaged"]["unreadable"]
    assert rows["collection"]["inputs"]["budget_dollars"] == 20_000
    assert not (tmp_path / "log").exists()  # no internal error
    assert _raw_rows(store) == before  # nothing deleted or rewritten


def test_an_unreadable_scenario_is_refused_by_name_and_can_be_removed(store, tmp_path, capsys):
    with user_store(store, read_only=True) as con, pytest.raises(scenarios.ScenarioError, match="cannot be opened"):
        scenarios.get_scenario(con, "damaged")
    where = ["--user-db", str(store), "--log-dir", str(tmp_path / "log")]
    assert cli.main([*where, "scenario", "remove", "damaged"]) == 0
    assert set(_raw_rows(store)) == {"collection", "from my sweep"}  # only it


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"token_rules": 5}', "token_rules is not a list of rule names"),
        ('{"target_params": "abc"}', "target_params is text, not a number"),
        ('{"law": {"a": 1}}', "law is an object, not text"),
        ('{"any_tokens_per_param": "yes"}', "any_tokens_per_param is text, not true/false"),
    ],
)
def test_a_stored_value_of_the_wrong_kind_is_named_in_words(text, named, tmp_path):
    store = tmp_path / "user.duckdb"
    _insert(store, "odd", text)
    with user_store(store, read_only=True) as con:
        [listed] = scenarios.list_scenarios(con)
    assert isinstance(listed, scenarios.UnreadableScenario) and named in listed.problem
    assert "object is not" not in listed.problem and "'int'" not in listed.problem

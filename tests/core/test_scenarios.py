"""Scenarios: storage in the user store, evaluation through the planner, comparison side by side."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleplan.core import laws, planning, scenarios, userdata
from scaleplan.core.errors import UserError
from scaleplan.core.userstore import user_store


class ToyErrorModel:
    """An error model with a known answer: ARE shrinks with the number of sizes and grows with the
    extrapolation in parameters (independent of the calibration's code)."""

    def are_quantiles(self, features):
        base = 0.02 * (1 + math.log10(features.param_ratio)) / math.sqrt(features.num_sizes)
        return SimpleNamespace(median=base, p80=1.6 * base, p90=2.0 * base, cells=500, families=12, thin_support=False)


def toy_context() -> scenarios.PlanningContext:
    return scenarios.PlanningContext(
        laws=planning.all_laws(),
        problems={},
        calibration=ToyErrorModel(),
        calibration_message=None,
        tpp_range=planning.DEFAULT_TPP_RANGE,
        data_version="test-version",
    )


BASE = scenarios.PlanInputs(target_params=7e9, target_tokens=1.4e11, budget_dollars=20_000, accuracy_percent=5)


def test_inputs_are_validated_with_the_planners_rules():
    with pytest.raises(UserError, match="not both"):
        scenarios.PlanInputs(target_params=7e9, target_tokens=1e11, target_flops=1e22, budget_dollars=1)
    with pytest.raises(UserError):
        scenarios.PlanInputs(target_params=7e9, target_tokens=1e11, budget_dollars=-5)
    with pytest.raises(UserError, match="exactly one|one of"):
        scenarios.PlanInputs(target_params=7e9, target_tokens=1e11, budget_dollars=5, budget_gpu_hours=5)
    with pytest.raises(UserError, match="percent"):
        scenarios.PlanInputs(target_params=7e9, target_tokens=1e11, budget_dollars=5, accuracy_percent=0)
    with pytest.raises(UserError, match="MFU"):
        scenarios.PlanInputs(target_params=7e9, target_tokens=1e11, budget_dollars=5, mfu=1.5)


def test_inputs_survive_a_json_round_trip():
    inputs = dataclasses.replace(BASE, token_rules=("isoflop",), study="my sweep", law="fit:my sweep")
    assert scenarios.PlanInputs.from_json(inputs.to_json()) == inputs


def test_store_save_list_rename_duplicate_delete(tmp_path):
    path = tmp_path / "user.duckdb"
    with user_store(path) as con:
        scenarios.save_scenario(con, "baseline $20k", BASE)
        scenarios.save_scenario(con, "big", dataclasses.replace(BASE, budget_dollars=2e6))
        with pytest.raises(scenarios.ScenarioError, match="exists already"):
            scenarios.save_scenario(con, "big", BASE)
        scenarios.rename_scenario(con, "big", "big $2M")
        scenarios.duplicate_scenario(con, "big $2M", "copy")
        assert scenarios.get_scenario(con, "copy").inputs.budget_dollars == 2e6
        scenarios.delete_scenario(con, "copy")
        with pytest.raises(scenarios.ScenarioError, match="no scenario named 'copy'; saved: baseline"):
            scenarios.get_scenario(con, "copy")
    # a new connection (a restart) reads the same scenarios
    with user_store(path, read_only=True) as con:
        assert [s.name for s in scenarios.list_scenarios(con)] == ["baseline $20k", "big $2M"]
        assert scenarios.get_scenario(con, "baseline $20k").inputs == BASE


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 81, None])
def test_bad_names_are_refused_with_a_message(name):
    with pytest.raises(scenarios.ScenarioError, match="name"):
        scenarios.check_name(name)


def test_a_sql_looking_name_is_stored_as_text(tmp_path):
    name = "x'); DROP TABLE scenarios; --"
    with user_store(tmp_path / "u.duckdb") as con:
        scenarios.save_scenario(con, name, BASE)
        assert scenarios.get_scenario(con, name).name == name


def test_reading_an_empty_store_creates_no_file(tmp_path):
    path = tmp_path / "none.duckdb"
    with user_store(path, read_only=True) as con:
        assert scenarios.list_scenarios(con) == ()
    assert not path.exists()


def test_predicted_loss_is_the_law_at_the_target_with_its_sample_interval():
    law = planning.published_law("besiroglu2024")
    result = scenarios.predicted_loss(law, 7e10, 1.4e12)
    p = planning.BESIROGLU2024
    by_hand = p["E"] + p["A"] / 7e10 ** p["alpha"] + p["B"] / 1.4e12 ** p["beta"]
    assert result.value == pytest.approx(by_hand, rel=1e-12)
    s = law.samples
    values = laws.chinchilla_loss(7e10, 1.4e12, s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4])
    assert result.low == pytest.approx(min(np.quantile(values, 0.1), by_hand))
    assert result.high == pytest.approx(max(np.quantile(values, 0.9), by_hand))
    assert result.low < result.value < result.high


def test_evaluate_calls_the_planner_and_picks_what_plan_study_picks():
    context = toy_context()
    outcome = scenarios.evaluate("a", BASE, context)
    assert isinstance(outcome, scenarios.ScenarioOutcome)
    direct = planning.plan_study(
        7e9,
        1.4e11,
        budget_dollars=20_000,
        goal_are=0.05,
        calibration=context.calibration,
        tpp_range=planning.DEFAULT_TPP_RANGE,
    )
    assert outcome.plan.pick == direct.pick and outcome.pick is not None
    assert outcome.pick.cost.dollars == direct.picked.cost.dollars <= 20_000
    assert outcome.target_flops == pytest.approx(6 * 7e9 * 1.4e11)
    # the frontier is cheapest-first and strictly improving in p80
    costs, p80 = zip(*outcome.frontier)
    assert list(costs) == sorted(costs) and all(b < a for a, b in zip(p80, p80[1:]))


def test_a_compute_target_is_split_by_the_selected_law():
    inputs = scenarios.PlanInputs(target_flops=5.76e23, budget_dollars=20_000, law="hoffmann2022")
    outcome = scenarios.evaluate("c", inputs, toy_context())
    opt = planning.optimal_allocation(planning.published_law("hoffmann2022"), 5.76e23)
    assert outcome.target_params == opt.num_params and outcome.target_tokens == opt.tokens


def test_a_law_that_is_missing_makes_the_scenario_unavailable_not_an_error():
    inputs = dataclasses.replace(BASE, law="fit:gone")
    context = dataclasses.replace(toy_context(), problems={"fit:gone": "too few sizes"})
    outcome = scenarios.evaluate("g", inputs, context)
    assert isinstance(outcome, scenarios.ScenarioUnavailable) and "too few sizes" in outcome.reason
    comparison = scenarios.compare([outcome, scenarios.evaluate("a", BASE, toy_context())])
    assert comparison.outcomes[0].values[0].startswith("unavailable: the law fit:gone")


def test_a_deleted_study_says_so(con):
    inputs = dataclasses.replace(BASE, study="my sweep", law="fit:my sweep")
    context = scenarios.load_context(con, inputs, calibration=None, calibration_message="none", n_boot=0)
    assert isinstance(context, str) and "'my sweep'" in context and "no longer exists" in context


def test_compare_shows_only_differing_inputs_and_refuses_too_many():
    a = scenarios.evaluate("a", BASE, toy_context())
    b = scenarios.evaluate("b", dataclasses.replace(BASE, budget_dollars=2e5, mfu=0.5), toy_context())
    comparison = scenarios.compare([a, b])
    assert [r.label for r in comparison.inputs] == ["Study budget", "MFU"]
    assert comparison.inputs[0].values == ("$20k", "$200k")
    assert comparison.inputs[1].values == ("40%", "50%")
    with pytest.raises(scenarios.ScenarioError, match="at most 4"):
        scenarios.compare([a] * 5)
    with pytest.raises(scenarios.ScenarioError, match="twice"):
        scenarios.compare([a, a])


budgets = st.floats(min_value=1e3, max_value=5e6)
inputs_strategy = st.builds(
    scenarios.PlanInputs,
    target_params=st.sampled_from([1e9, 7e9, 7e10]),
    target_tokens=st.sampled_from([2e11, 1.4e12, 4e12]),
    budget_dollars=budgets,
    dollars_per_gpu_hour=st.floats(min_value=0.5, max_value=10),
    mfu=st.floats(min_value=0.2, max_value=0.6),
    accuracy_percent=st.floats(min_value=1, max_value=30),
    law=st.sampled_from(planning.PUBLISHED_LAWS),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=inputs_strategy, second=inputs_strategy)
def test_comparison_numbers_equal_each_scenario_opened_alone(tmp_path_factory, first, second):
    """Save two scenarios, reopen them from the store, compare: every number of the comparison
    equals that of the scenario evaluated and compared alone."""
    path = tmp_path_factory.mktemp("store") / "user.duckdb"
    context = toy_context()
    with user_store(path) as con:
        scenarios.save_scenario(con, "first", first)
        scenarios.save_scenario(con, "second", second)
    with user_store(path, read_only=True) as con:
        saved = [scenarios.get_scenario(con, n) for n in ("first", "second")]
    together = scenarios.compare([scenarios.evaluate(s.name, s.inputs, context) for s in saved])
    for column, (scenario, original) in enumerate(zip(saved, (first, second))):
        alone = scenarios.evaluate(scenario.name, original, context)
        alone_comparison = scenarios.compare([alone])
        assert [r.values[column] for r in together.outcomes] == [r.values[0] for r in alone_comparison.outcomes]
        both = together.scenarios[column]
        assert both.plan.pick == alone.plan.pick
        assert both.loss == alone.loss
        assert both.frontier == alone.frontier
        assert both.compute_optimal == alone.compute_optimal
        if alone.pick is not None:
            assert both.pick.cost.dollars == alone.pick.cost.dollars
            assert both.pick.expected == alone.pick.expected


def test_a_stored_study_is_the_source_of_its_law_and_its_deletion_is_reported(con, tmp_path):
    """A study of runs drawn from a known law: the scenario's fit:<study> law predicts the target's
    true loss; once the study is deleted the scenario says so instead of failing."""
    from scaleplan.core import formats, studies
    from tests.core.synthetic import synthetic_family, true_loss

    family = synthetic_family(checkpoints=12)
    csv = family.rename(columns={"run_id": "run_name", "value": "loss"}).to_csv(index=False).encode()
    store = tmp_path / "user.duckdb"
    studies.save_study(store, "my sweep", formats.parse_runs(csv), sha256=studies.sha256_of(csv))
    inputs = dataclasses.replace(BASE, study="my sweep", law="fit:my sweep")
    lookup = scenarios.study_lookup(store)
    context = scenarios.load_context(
        con, inputs, calibration=ToyErrorModel(), calibration_message=None, study_curves=lookup, n_boot=2
    )
    assert isinstance(context, scenarios.PlanningContext), context
    outcome = scenarios.evaluate("from my sweep", inputs, context)
    assert isinstance(outcome, scenarios.ScenarioOutcome)
    assert outcome.selected_law.name == "fit:my sweep"
    # the law is the planner's fit of the study's own runs, with the uploaded runs' cutoff ...
    study = lookup("my sweep")
    direct = planning.family_law(study, "my sweep", n_boot=2, min_tokens=userdata.default_min_tokens(study))
    assert dict(outcome.selected_law.params) == pytest.approx(dict(direct.params), rel=1e-9)
    # ... which extrapolates the known law to the 7B target within 5% (the largest run is held out
    # and the first 10% of the shortest run, at most 10B tokens, dropped, as for every user's runs)
    assert outcome.loss.value == pytest.approx(float(true_loss(7e9, 1.4e11)), rel=0.05)
    studies.delete_study(store, "my sweep")
    gone = scenarios.load_context(
        con, inputs, calibration=None, calibration_message="none", study_curves=lookup, n_boot=2
    )
    assert isinstance(gone, str) and "'my sweep'" in gone and "no longer exists" in gone


# ---------------------------------------------------------------------------------------------
# The target's predicted 17-task average accuracy (the planner's rule, core.task_prediction)


def _interval_cell(accuracy) -> str:
    at = f" at {accuracy.family}'s {accuracy.loss_metric} {accuracy.predicted_loss:.3f}"
    return (
        f"{accuracy.predicted_points:.1f} points{at} (90% interval "
        f"{accuracy.lower_points:.1f}-{accuracy.upper_points:.1f}"
    )


def test_each_predicted_loss_says_whose_loss_it_is(con):
    """Review: 'Predicted target loss 1.974' sat next to an accuracy read at a loss of 2.159 of other
    runs; each now names its law and data, in the table and in the brief's sentence."""
    from scaleplan.core import brief

    far = dataclasses.replace(BASE, target_params=7e10, target_tokens=1.4e12)
    outcome = scenarios.evaluate("70B", far, toy_context(), accuracy=scenarios.average_accuracy_for(con))
    comparison = scenarios.compare([outcome])
    rows = {r.label: r.values[0] for r in comparison.outcomes}
    (label,) = [k for k in rows if k.startswith("Predicted target loss")]
    assert "reference law" in label and "training data" in label
    # Besiroglu et al. 2024's published fit: E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658.
    besiroglu = 1.8172 + 482.01 / 7e10**0.3478 + 2085.43 / 1.4e12**0.3658
    assert rows[label].startswith(f"{besiroglu:.3f} nats/token under besiroglu2024 (80% interval ")
    accuracy = outcome.average_accuracy
    assert accuracy is not None and accuracy.predicted_loss is not None
    assert abs(accuracy.predicted_loss - besiroglu) > 0.05  # another loss: another metric of other runs
    cell = rows[scenarios.AVERAGE_ACCURACY_LABEL]
    assert f" points at overtrain-rpj's {accuracy.loss_metric} {accuracy.predicted_loss:.3f} (" in cell
    (sentence,) = brief.recommendation_sentence(comparison)
    assert f"{besiroglu:.3f} nats/token under besiroglu2024" in sentence
    assert sentence.index("training data") < sentence.index("17-task")
    note = scenarios.losses_note(outcome.loss, accuracy)
    assert note.startswith(
        f"Predicted target loss under besiroglu2024 (nats/token, the law's training data): {besiroglu:.3f}"
    )
    assert f"{accuracy.predicted_loss:.3f}, the {accuracy.loss_metric} of overtrain-rpj's runs" in note


def test_the_token_rules_row_uses_the_planners_labels():
    rows = dict(BASE.rows())
    assert rows["Token rules"] == "Tokens per parameter (20, 80); Fraction of target tokens (10%, 30%); IsoFLOP grid"


def test_an_outcome_carries_the_planners_average_accuracy_and_states_it(con):
    from scaleplan.core import task_prediction

    near = scenarios.evaluate("7B", BASE, toy_context(), accuracy=scenarios.average_accuracy_for(con))
    far_inputs = dataclasses.replace(BASE, target_params=7e10, target_tokens=1.4e12)
    far = scenarios.evaluate("70B", far_inputs, toy_context(), accuracy=scenarios.average_accuracy_for(con))
    for outcome, (n, d) in ((near, (7e9, 1.4e11)), (far, (7e10, 1.4e12))):
        expected = task_prediction.target_average_accuracy(con, n, d, BASE.law)
        assert outcome.average_accuracy == expected and expected.predicted_points is not None
        assert expected.sentence in outcome.recommendation  # stated as the planner states it
    row = next(r for r in scenarios.compare([near, far]).outcomes if r.label == scenarios.AVERAGE_ACCURACY_LABEL)
    # the 7B target lies within the held-out runs' compute: the interval alone
    assert row.values[0] == _interval_cell(near.average_accuracy) + ")"
    # the 70B target lies beyond them: the cell says how far, from the held-out runs' own compute
    largest = task_prediction.average_holdout(con).largest_flops
    assert 6 * 7e9 * 1.4e11 < largest < 6 * 7e10 * 1.4e12
    assert row.values[1].startswith(_interval_cell(far.average_accuracy) + "; the held-out runs reach")
    ratio = 6 * 7e10 * 1.4e12 / largest  # written to three significant digits (73.9x)
    assert f"{float(f'{ratio:.3g}'):,g}x beyond, where the coverage is not measured)" in row.values[1]


def test_scenarios_sharing_a_target_and_a_law_fit_the_average_once(con, monkeypatch):
    from scaleplan.core import task_prediction

    calls = []
    real = task_prediction.target_average_accuracy

    def counted(*args, **kwargs):
        calls.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(task_prediction, "target_average_accuracy", counted)
    lookup = scenarios.average_accuracy_for(con)
    outcomes = [
        scenarios.evaluate(name, dataclasses.replace(BASE, budget_dollars=budget), toy_context(), accuracy=lookup)
        for name, budget in (("a", 2e4), ("b", 2e5), ("c", 2e6))
    ]
    outcomes.append(
        scenarios.evaluate("other law", dataclasses.replace(BASE, law="hoffmann2022"), toy_context(), accuracy=lookup)
    )
    assert calls == [(7e9, 1.4e11, BASE.law), (7e9, 1.4e11, "hoffmann2022")]
    assert outcomes[0].average_accuracy is outcomes[2].average_accuracy


def test_an_outcome_without_the_accuracy_or_with_its_refusal_still_compares():
    from scaleplan.core import brief, task_prediction

    plain = scenarios.evaluate("plain", BASE, toy_context())  # planned without the collection's database
    assert plain.average_accuracy is None and "17 tasks" not in plain.recommendation
    refusal = task_prediction.TargetAccuracy(
        task_prediction.AVERAGE_NAME,
        "overtrain-rpj",
        "why",
        "fits",
        "loss",
        1.2,
        None,
        None,
        None,
        0.9,
        "",
        "",
        refused=True,
        reason="extrapolation",
        message="the target's predicted loss lies far below the fit's",
    )
    refused = scenarios.evaluate("refused", BASE, toy_context(), accuracy=lambda n, d, law: refusal)
    comparison = scenarios.compare([plain, refused])
    row = next(r for r in comparison.outcomes if r.label == scenarios.AVERAGE_ACCURACY_LABEL)
    assert row.values == ("n/a", "no prediction: the target's predicted loss lies far below the fit's")
    sentences = brief.recommendation_sentence(comparison)
    assert sentences[0].endswith("predicted 17-task average accuracy n/a.")
    assert sentences[1].endswith("predicted 17-task average accuracy no prediction: " + refusal.message + ".")
    notes = dict(brief.accuracy_notes(comparison.scenarios))
    assert "not computed" in notes["plain"] and refusal.message in notes["refused"]


# ---------------------------------------------------------------------------------------------
# A renamed study takes its scenarios along (review: they were left behind and called deleted)


def _stored_study(store, name="my sweep"):
    from scaleplan.core import formats, studies
    from tests.core.synthetic import synthetic_family

    csv = synthetic_family(checkpoints=12).rename(columns={"run_id": "run_name", "value": "loss"})
    data = csv.to_csv(index=False).encode()
    studies.save_study(store, name, formats.parse_runs(data), sha256=studies.sha256_of(data))


def _raw_rows(store):
    with user_store(store, read_only=True) as con:
        return {row[0]: row for row in con.execute("SELECT * FROM scenarios").fetchall()}


def test_renaming_a_study_carries_its_scenarios_along_and_they_still_plan(con, tmp_path):
    import json

    from scaleplan.core import studies
    from tests.core.synthetic import true_loss

    store = tmp_path / "user.duckdb"
    _stored_study(store)
    from_sweep = dataclasses.replace(BASE, study="my sweep", law="fit:my sweep")
    newer = {**json.loads(from_sweep.to_json()), "added_by_a_newer_scaleplan": [1, 2]}
    with user_store(store) as ucon:
        scenarios.save_scenario(ucon, "from my sweep", from_sweep)
        scenarios.save_scenario(ucon, "collection", BASE)
        ucon.execute(
            "INSERT INTO scenarios VALUES (?, ?, '1', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            ["newer", json.dumps(newer)],
        )
    before = _raw_rows(store)
    info = studies.rename_study(store, "my sweep", "sweep v2")
    assert info.name == "sweep v2"
    after = _raw_rows(store)
    assert after["collection"] == before["collection"]  # a scenario of another source is untouched
    kept = json.loads(after["newer"][1])
    assert kept["study"] == "sweep v2" and kept["law"] == "fit:sweep v2"
    assert kept["added_by_a_newer_scaleplan"] == [1, 2]  # what this scaleplan does not know is kept
    with user_store(store, read_only=True) as ucon:
        opened = scenarios.get_scenario(ucon, "from my sweep").inputs
    assert opened == dataclasses.replace(from_sweep, study="sweep v2", law="fit:sweep v2")
    lookup = scenarios.study_lookup(store)
    context = scenarios.load_context(
        con, opened, calibration=ToyErrorModel(), calibration_message=None, study_curves=lookup, n_boot=2
    )
    assert isinstance(context, scenarios.PlanningContext), context
    outcome = scenarios.evaluate("from my sweep", opened, context)
    assert isinstance(outcome, scenarios.ScenarioOutcome) and outcome.selected_law.name == "fit:sweep v2"
    # still fitted on the study's runs, drawn from a known law: the 7B target within 5%
    assert outcome.loss.value == pytest.approx(float(true_loss(7e9, 1.4e11)), rel=0.05)


def test_a_rename_that_fails_leaves_the_study_and_every_scenario_as_they_were(tmp_path, monkeypatch):
    from scaleplan.core import studies

    store = tmp_path / "user.duckdb"
    _stored_study(store)
    with user_store(store) as ucon:
        for name in ("a", "b"):
            scenarios.save_scenario(ucon, name, dataclasses.replace(BASE, study="my sweep", law="fit:my sweep"))
    before = _raw_rows(store)
    carried = []

    def fails_on_the_second(text, old, new):
        if carried:
            raise RuntimeError("the disk is full")
        carried.append(text)
        return text.replace(old, new)

    monkeypatch.setattr(scenarios, "carry_study", fails_on_the_second, raising=False)
    with pytest.raises(RuntimeError, match="disk is full"):
        studies.rename_study(store, "my sweep", "sweep v2")
    assert carried  # the first scenario was rewritten before the failure ...
    assert [s.name for s in studies.list_studies(store)] == ["my sweep"]  # ... and rolled back with the rename
    assert _raw_rows(store) == before


def test_a_study_source_is_planned_only_through_its_own_law(con, tmp_path):
    """save_scenario (the dashboard's and the CLI's) refuses a study source with another law; one saved
    before the rule is reported unavailable with the same reason, not planned on the collection as if
    the study were used."""
    store = tmp_path / "user.duckdb"
    _stored_study(store)
    for law in ("fit:pythia", "hoffmann2022", "gadre-c4"):
        inputs = dataclasses.replace(BASE, study="my sweep", law=law)
        with user_store(store) as ucon, pytest.raises(scenarios.ScenarioError, match="cannot be planned") as refused:
            scenarios.save_scenario(ucon, "x", inputs)
        assert "fit:my sweep" in str(refused.value) and scenarios.source_problem(inputs) in str(refused.value)
        with user_store(store) as ucon:  # as an older scaleplan stored it
            scenarios.ensure_scenario_tables(ucon)
            ucon.execute("DELETE FROM scenarios")
            ucon.execute("INSERT INTO scenarios VALUES ('x', ?, '1', 'now', 'now')", [inputs.to_json()])
            stored = scenarios.get_scenario(ucon, "x").inputs
        context = scenarios.load_context(
            con, stored, calibration=None, calibration_message="none", study_curves=scenarios.study_lookup(store)
        )
        assert context == scenarios.source_problem(inputs)
    assert scenarios.source_problem(dataclasses.replace(BASE, study="my sweep", law="fit:my sweep")) is None
    assert scenarios.source_problem(BASE) is None


def test_a_law_and_study_that_do_not_plan_together_are_explained_without_cli_flags_by_default():
    # The Scenarios page shows load_context's reason: its reader has no --law or --study to give.
    inputs = dataclasses.replace(BASE, study="my sweep", law="hoffmann2022")
    page = scenarios.source_problem(inputs)
    assert page is not None and "fit:my sweep" in page and "--" not in page
    cli_text = scenarios.source_problem(inputs, flags=True)
    assert cli_text is not None and "--law 'fit:my sweep'" in cli_text and "leave out --study" in cli_text


def test_a_study_source_is_saved_as_the_study_names_itself(tmp_path):
    """Review: save_scenario stored the study source as typed (" my sweep ", a decomposed accent),
    while a study's name is stripped and NFC; the scenario must name the stored study and its law."""
    import unicodedata

    from scaleplan.core import studies

    store = tmp_path / "user.duckdb"
    stored_name = unicodedata.normalize("NFC", "café sweep")
    _stored_study(store, stored_name)
    typed = "  " + unicodedata.normalize("NFD", "café sweep") + " "
    assert typed != stored_name
    for law in ("fit:" + typed, "fit:" + stored_name):
        with user_store(store) as ucon:
            saved = scenarios.save_scenario(ucon, "mine", dataclasses.replace(BASE, study=typed, law=law), replace=True)
        assert saved.inputs.study == stored_name and saved.inputs.law == "fit:" + stored_name
        assert [s.name for s in studies.list_studies(store)] == [saved.inputs.study]
    assert scenarios.normalise_study(BASE) is BASE  # no study source: unchanged


def test_a_target_beyond_the_over_training_table_still_plans_and_compares():
    # 1e15 tokens on 200M parameters: 5e6 tokens per parameter, beyond the over-training table's 1e6
    # (the planner keeps its plan without the table); a scenario of it must evaluate and compare too.
    far = scenarios.PlanInputs(target_params=2e8, target_tokens=1e15, budget_dollars=3_000, accuracy_percent=10)
    outcome = scenarios.evaluate("far", far, toy_context())
    assert isinstance(outcome, scenarios.ScenarioOutcome)
    assert outcome.overtraining is None
    assert outcome.overtraining_note is not None and "left out" in outcome.overtraining_note
    assert "5M tokens per parameter" in outcome.overtraining_note
    near = scenarios.evaluate("near", BASE, toy_context())
    assert near.overtraining is not None and near.overtraining_note is None
    table = scenarios.compare([outcome, near])
    assert table is not None

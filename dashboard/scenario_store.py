"""The dashboard's side of saved scenarios: the user store, evaluating scenarios, the save control.

Thin over :mod:`scaleplan.core.scenarios`: the store is the user's own DuckDB file
(``Settings.user_db_path``), opened per action (no connection is held across reruns, so the CLI
can write to it meanwhile), and every outcome is planned by the core planner with the same laws
and error model as the Budget planner page.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from scaleplan.core import scenarios, storage, task_prediction
from scaleplan.core.errors import UserError
from scaleplan.core.userstore import user_store
from scaleplan.dashboard import common, fits

KEY = "scenarios."
REPLACE_LABEL = "Replace a scenario of that name"


def store_path():
    return common.settings().user_db_path


def saved() -> tuple[scenarios.Scenario | scenarios.UnreadableScenario, ...]:
    """Every saved scenario; a damaged one as :class:`core.scenarios.UnreadableScenario`."""
    with user_store(store_path(), read_only=True) as con:
        return scenarios.list_scenarios(con)


def context_for(inputs: scenarios.PlanInputs) -> scenarios.PlanningContext | str:
    """The planner's laws, error model and tokens-per-parameter range for ``inputs`` (cached by the Fit page's loaders)."""
    version = common.db_version()
    model, why, _ = fits.calibration_or_reason()
    if inputs.study is not None:
        with common.db() as con:
            return scenarios.load_context(
                con,
                inputs,
                calibration=model,
                calibration_message=why or None,
                study_curves=scenarios.study_lookup(store_path()),
            )
    laws, problems = fits.planner_laws(version, inputs.law_family)
    with common.db() as con:
        stored = storage.stored_data_version(con)
    return scenarios.PlanningContext(
        laws=laws,
        problems=problems,
        calibration=model,
        calibration_message=why or None,
        tpp_range=fits.tokens_per_param_range(version),
        data_version=stored or "unknown",
    )


def evaluate(named: Sequence[scenarios.Scenario]) -> list[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable]:
    out: list[scenarios.ScenarioOutcome | scenarios.ScenarioUnavailable] = []
    version = common.db_version()

    def accuracy(n: float, d: float, law: str) -> task_prediction.TargetAccuracy | None:
        return fits.average_accuracy(version, n, d, law)

    for scenario in named:
        context = context_for(scenario.inputs)
        if isinstance(context, str):
            out.append(scenarios.ScenarioUnavailable(scenario.name, scenario.inputs, context))
        else:
            out.append(scenarios.evaluate(scenario.name, scenario.inputs, context, accuracy=accuracy))
    return out


def save_control(inputs: scenarios.PlanInputs | None, *, why_not: str | None = None) -> None:
    """A name box and a "Save as scenario" button (the Budget planner's control)."""
    row = st.columns([3, 1.4, 3.6], vertical_alignment="bottom")
    name = row[0].text_input("Scenario name", key=KEY + "save_name", placeholder="e.g. baseline $20k")
    replace = row[2].checkbox(REPLACE_LABEL, key=KEY + "save_replace")
    if row[1].button("Save as scenario", icon=":material/bookmark_add:", key=KEY + "save", disabled=inputs is None):
        if inputs is None:
            return
        try:
            with user_store(store_path()) as con:
                saved_as = scenarios.save_scenario(
                    con, name, inputs, replace=replace, how_to_replace=f"tick '{REPLACE_LABEL}'"
                )
        except UserError as error:
            st.error(common.escape_md(error, limit=400), icon=":material/error:")
            return
        st.success(
            f"Saved scenario {common.escape_md(saved_as.name)}. Compare it on the Scenarios page.",
            icon=":material/bookmark_added:",
        )
    if why_not:
        st.caption(common.escape_md(why_not, limit=300))

"""Scenarios: saved planner inputs side by side, and the decision brief (PDF, PowerPoint).

URL state: ``?compare=NAME&compare=NAME`` (up to 4) reproduces a comparison.

Thin page over :mod:`scaleplan.core.scenarios` (store, evaluation, comparison tables) and
:mod:`scaleplan.core.brief` (the frontier chart and the brief's files); the outcomes come from the
core planner with the Budget planner's laws and error model (:mod:`scaleplan.dashboard.scenario_store`).
"""

from __future__ import annotations

import datetime as _dt

import pandas as pd
import streamlit as st

from scaleplan.core import __version__, brief, scenarios
from scaleplan.core.errors import UserError
from scaleplan.core.userstore import user_store
from scaleplan.dashboard import analysis_charts, common
from scaleplan.dashboard import scenario_store as store

KEY = "scenarios."


def _saved_table(saved: tuple[scenarios.Scenario, ...]) -> pd.DataFrame:
    rows = []
    for s in saved:
        values = dict(s.inputs.rows())
        rows.append(
            {
                "Scenario": s.name,
                "Target": values["Target"],
                "Study budget": values["Study budget"],
                "Accuracy needed": values["Accuracy needed (ARE, 80th pct.)"],
                "Law": s.inputs.law,
                "Study source": values["Study source"],
                "Saved (UTC)": s.updated_at.replace("T", " ")[:16],
            }
        )
    return pd.DataFrame(rows)


def _unreadable_notice(unreadable: list[scenarios.UnreadableScenario]) -> None:
    """Damaged scenarios: named with their problem, kept as stored, left out of the comparison."""
    listed = "; ".join(f"**{common.escape_md(s.name)}**: {common.escape_md(s.problem)}" for s in unreadable)
    st.warning(
        f"{len(unreadable)} saved scenario{'s' if len(unreadable) != 1 else ''} cannot be read and "
        f"{'are' if len(unreadable) != 1 else 'is'} left out of the comparison ({listed}). "
        f"{'They are' if len(unreadable) != 1 else 'It is'} kept as stored: delete it below, or save a scenario "
        "under that name from the Budget planner with “Replace a scenario of that name” ticked.",
        icon=":material/warning:",
    )


def _manage(saved: tuple[scenarios.Scenario | scenarios.UnreadableScenario, ...]) -> None:
    with st.expander("Rename, duplicate or delete a scenario", expanded=False):
        row = st.columns([2.5, 2.5, 1.2, 1.2, 1.2], vertical_alignment="bottom")
        name = row[0].selectbox("Scenario", [s.name for s in saved], key=KEY + "manage")
        new = row[1].text_input("New name", key=KEY + "new_name")
        action = None
        if row[2].button("Rename", key=KEY + "rename"):
            action = ("renamed", lambda con: scenarios.rename_scenario(con, name, new))
        if row[3].button("Duplicate", key=KEY + "duplicate"):
            action = ("duplicated", lambda con: scenarios.duplicate_scenario(con, name, new))
        if row[4].button("Delete", key=KEY + "delete", type="primary"):
            action = ("deleted", lambda con: scenarios.delete_scenario(con, name))
        if action is None:
            return
        try:
            with user_store(store.store_path()) as con:
                action[1](con)
        except UserError as error:
            st.error(common.escape_md(error, limit=400), icon=":material/error:")
            return
        st.session_state[KEY + "done"] = f"Scenario {name} {action[0]}."
        st.rerun()


def _chosen(names: list[str]) -> list[str]:
    wanted = [n for n in st.query_params.get_all("compare") if n in names][: scenarios.MAX_COMPARED]
    if KEY + "compare" not in st.session_state:
        st.session_state[KEY + "compare"] = wanted or names[:2]
    st.session_state[KEY + "compare"] = [n for n in st.session_state[KEY + "compare"] if n in names]
    chosen = st.multiselect(
        f"Compare (up to {scenarios.MAX_COMPARED})",
        names,
        key=KEY + "compare",
        max_selections=scenarios.MAX_COMPARED,
        help="The link in the address bar reproduces this comparison.",
    )
    st.query_params["compare"] = chosen
    return chosen


def _comparison(comparison: scenarios.Comparison) -> None:
    for o in comparison.scenarios:
        if isinstance(o, scenarios.ScenarioUnavailable):
            st.warning(
                f"Scenario {common.escape_md(o.name)} cannot be planned now: {common.escape_md(o.reason, limit=400)}",
                icon=":material/warning:",
            )
    st.subheader("Inputs that differ" if len(comparison.scenarios) > 1 else "Inputs")
    if comparison.inputs:
        st.table(common.inert_frame(comparison.table("inputs").set_index("")))
    else:
        st.caption("The scenarios have the same inputs.")
    st.subheader("Outcomes")
    st.table(common.inert_frame(comparison.table("outcomes").set_index("")))
    st.caption(
        "Pick: the cheapest well-supported study design whose expected ARE at the 80th percentile meets the goal "
        "within the budget (else the most accurate one). Expected ARE: the calibrated error model of the public "
        "collection's meta-analysis. Predicted target loss: the scenario's reference law at the target, in the loss "
        "of the data that law was fitted on, with the 80% interval of its parameter uncertainty. Predicted 17-task "
        "average accuracy: Gadre et al.'s Err(L) at another loss, the target's loss predicted on the over-training "
        "testbed's runs (named in each cell), with its 90% interval measured leaving one over-training data set out (the planner's "
        "rule). N*, D*: compute-optimal parameters and tokens at the target's compute C = 6ND."
    )
    figure = brief.frontier_figure(comparison.scenarios)
    st.plotly_chart(
        figure, key=KEY + "frontier", config=analysis_charts.plotly_config("scaleplan-scenario-frontiers", "png")
    )
    with st.container(border=True):
        st.markdown("**Recommendation**")
        for sentence in brief.recommendation_sentence(comparison):
            st.markdown(common.escape_md(sentence, limit=2000))


def _downloads(comparison: scenarios.Comparison) -> None:
    outcomes = [o for o in comparison.scenarios if isinstance(o, scenarios.ScenarioOutcome)]
    version = ", ".join(sorted({o.data_version for o in outcomes})) or "unknown"
    stem = "scaleplan-brief-" + "-vs-".join(
        "".join(c if c.isalnum() else "-" for c in name)[:30] for name in comparison.names
    )

    @st.cache_data(show_spinner=False, max_entries=8)
    def made(key: tuple) -> brief.Brief:
        return brief.build_brief(
            comparison, scaleplan_version=__version__, data_version=version, date=_dt.date.fromisoformat(key[-1])
        )

    @st.cache_data(show_spinner=False, max_entries=8)
    def lacking(key: tuple) -> brief.MissingGlyphs:
        return brief.pdf_missing_glyphs(
            comparison, scaleplan_version=__version__, data_version=version, date=_dt.date.fromisoformat(key[-1])
        )

    key = (tuple(o.inputs.to_json() for o in comparison.scenarios), comparison.names, version, str(_dt.date.today()))
    warning = lacking(key).warning
    if warning:
        st.warning(common.escape_md(warning[0].upper() + warning[1:], limit=400), icon=":material/warning:")
    row = st.columns([2.2, 2.8, 5], vertical_alignment="center")
    row[0].download_button(
        "Download brief (PDF)",
        icon=":material/picture_as_pdf:",
        on_click="ignore",
        mime="application/pdf",
        file_name=f"{stem}.pdf",
        data=lambda: brief.brief_pdf(made(key)).data,
        key=KEY + "pdf",
    )
    row[1].download_button(
        "Download deck (PowerPoint)",
        icon=":material/slideshow:",
        on_click="ignore",
        mime="application/vnd.openxmlformats-officedocument.presentationml.presentation",
        file_name=f"{stem}.pptx",
        data=lambda: brief.brief_pptx(made(key)),
        key=KEY + "pptx",
    )
    row[2].caption("The brief: one page with an appendix of the study runs, the fitted parameters and the formulas.")


def render() -> None:
    st.title("Scenarios")
    st.caption(
        "What-if plans side by side: save the Budget planner's inputs as a named scenario there, then compare up "
        "to four here and take a decision brief into the meeting."
    )
    done = st.session_state.pop(KEY + "done", None)
    if done:
        st.success(common.escape_md(done), icon=":material/check:")
    try:
        saved = store.saved()
    except UserError as error:
        st.error(common.escape_md(error, limit=400), icon=":material/error:")
        return
    if not saved:
        st.info(
            "No scenario is saved yet. On the Budget planner, set the inputs and press **Save as scenario**.",
            icon=":material/bookmark:",
        )
        return
    readable = tuple(s for s in saved if isinstance(s, scenarios.Scenario))
    unreadable = [s for s in saved if isinstance(s, scenarios.UnreadableScenario)]
    if unreadable:
        _unreadable_notice(unreadable)
    if readable:
        st.table(common.inert_frame(_saved_table(readable).set_index("Scenario")))  # wraps: no column is cut
    _manage(saved)
    chosen = _chosen([s.name for s in readable])
    if not chosen:
        st.caption("Choose scenarios to compare.")
        return
    by_name = {s.name: s for s in readable}
    # The downloads' slot is emptied before planning starts: while a new selection is planned, the
    # previous run's buttons (whose brief is of the previous selection) are not offered.
    view = st.container()
    downloads = st.empty()
    with view:
        with st.spinner("Planning the scenarios..."):
            outcomes = store.evaluate([by_name[n] for n in chosen])
        comparison = scenarios.compare(outcomes)
        _comparison(comparison)
    with downloads.container():
        _downloads(comparison)


common.run_page(render)

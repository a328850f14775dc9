"""Overview: what the collection holds (counts, where runs sit in size and tokens, families)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from scaleplan.core import storage, units
from scaleplan.dashboard import charts, common


def render() -> None:
    version = common.db_version()
    summary = common.cached_summary(version)
    families = common.cached_families(version)
    runs = common.cached_runs(version)

    st.title("scaleplan")
    st.markdown(
        "Plan LLM pretraining budgets with scaling laws fitted on a collection of "
        "public training runs. Start with **Explore the collection** to look at the curves, "
        "or upload checkpoints of your own models under **Your runs**."
    )

    cols = st.columns(4)
    cols[0].metric(
        "Training runs",
        f"{summary.models:,}",
        border=True,
        help="One run is one model's training curve on one data setting and token budget.",
    )
    cols[1].metric("Families", f"{summary.families:,}", border=True)
    cols[2].metric(
        "Observations",
        units.format_count(summary.observations),
        border=True,
        help=f"{summary.observations:,} (run, checkpoint, metric) values",
    )
    cols[3].metric("Metrics", f"{summary.metrics:,}", border=True)
    st.caption(common.escape_md(storage.RUN_COUNTING, limit=2000))

    st.subheader("Where the runs sit")
    st.caption(
        "One point per run: its parameter count and the tokens it was trained on "
        "(the last checkpoint of its family's default metric)."
    )
    coverage = charts.add_context(
        charts.coverage_figure(runs),
        title="Where the runs of the collection sit: model size and tokens seen",
        inputs=f"{summary.models:,} runs in {summary.families:,} families, one point per run at its last "
        "checkpoint of its family's default metric",
    )
    st.plotly_chart(
        coverage, config={"displaylogo": False, "toImageButtonOptions": {"filename": "scaleplan-collection"}}
    )

    st.subheader("Families")
    st.caption(
        "A family is a set of runs trained together (same data, recipe and evaluation). Sizes are parameter counts."
    )
    table = pd.DataFrame(
        {
            "Family": families["family"],
            "Source": families["source"],
            "Architecture": families["architecture"],
            "Domain": families["domain"],
            "Runs": families["num_runs"],
            "Sizes": [
                f"{units.format_params(lo, unit=False)} – {units.format_params(hi, unit=False)}"
                if lo != hi
                else units.format_params(lo, unit=False)
                for lo, hi in zip(families["min_params"], families["max_params"])
            ],
            "Default metric": families["default_metric"],
            "Description": families["description"],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=420,
        column_config={
            "Runs": st.column_config.NumberColumn(width="small"),
            "Description": st.column_config.TextColumn(width="large"),
        },
    )

    with st.expander("Sources, licences and skipped rows"):
        if summary.sources:
            # Runs are counted once, at the source that provides them (they add up to the collection's runs);
            # a source that only adds values to another source's runs says what it adds instead.
            st.dataframe(
                pd.DataFrame(
                    {
                        "Source": [s.source for s in summary.sources],
                        "Repository": [s.repository for s in summary.sources],
                        "Commit": [s.commit for s in summary.sources],
                        "License": [s.license for s in summary.sources],
                        "Runs": [f"{s.runs:,}" for s in summary.sources],
                        "Observations": [f"{s.observations:,}" for s in summary.sources],
                        "Skipped rows": [f"{s.bad_rows:,}" for s in summary.sources],
                        "Adds to other sources' runs": [s.added_text() for s in summary.sources],
                    }
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    name: st.column_config.TextColumn(alignment="right")
                    for name in ("Runs", "Observations", "Skipped rows")
                }
                | {
                    "Runs": st.column_config.TextColumn(
                        alignment="right", help="Runs the source provides; each run is counted at one source."
                    )
                },
            )
            st.caption(
                f"Runs: the {summary.models:,} training runs, each counted once at the source that provides it. "
                "Observations: (run, checkpoint, metric) values the source contributes. Skipped rows: malformed "
                "rows left out while reading it."
            )
        if summary.built_at:
            st.caption(f"Database built {summary.built_at[:19].replace('T', ' ')} UTC.")


common.run_page(render)

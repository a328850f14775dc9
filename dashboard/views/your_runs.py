"""Your runs: upload checkpoints of your own training runs (CSV), validated row by row.

The validated table is kept in st.session_state["uploaded_runs"] (see dashboard.uploads) for the
fit and planning pages; nothing is written to disk.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from scaleplan.core import units, userdata
from scaleplan.dashboard import charts, common, uploads

KEY = "your_runs."


def _clear() -> None:
    uploads.clear()
    st.session_state.pop(KEY + "outcome", None)
    st.session_state.pop(KEY + "marker", None)
    st.session_state[KEY + "generation"] = st.session_state.get(KEY + "generation", 0) + 1


def _process(uploaded) -> uploads.UploadOutcome:
    """Validate a newly uploaded file once (reruns reuse the outcome)."""
    marker = (uploaded.file_id, uploaded.size)
    if st.session_state.get(KEY + "marker") != marker:
        if uploaded.size > userdata.MAX_UPLOAD_BYTES:
            outcome = uploads.process_upload(b"", size=uploaded.size)
        else:
            outcome = uploads.process_upload(uploaded.getvalue())
        uploads.store(outcome, uploaded.name)
        st.session_state[KEY + "outcome"] = outcome
        st.session_state[KEY + "marker"] = marker
    return st.session_state[KEY + "outcome"]


def render() -> None:
    st.title("Your runs")
    st.markdown(
        "Upload the checkpoints of your own training runs to compare them with the collection "
        "and to fit scaling laws to them. The file stays in memory for this browser session only; "
        "nothing is stored on the server."
    )

    left, right = st.columns([3, 2], gap="large")
    with right.container(border=True):
        st.markdown("**CSV columns**")
        docs = uploads.column_docs()
        if docs.empty:
            st.text(userdata.__doc__ or "")
        else:
            st.table(docs, hide_index=True, border="horizontal")
        st.caption(
            "One row per checkpoint. Header names are case-insensitive; commas, semicolons "
            "or tabs as separators; extra columns are ignored."
        )
        st.download_button(
            "Download the template",
            userdata.TEMPLATE_CSV.encode(),
            file_name="runs-template.csv",
            mime="text/csv",
            icon=":material/download:",
        )

    generation = st.session_state.get(KEY + "generation", 0)
    limit_mb = userdata.MAX_UPLOAD_BYTES // (1024 * 1024)
    uploaded = left.file_uploader(
        "CSV file with your runs",
        type=["csv", "tsv", "txt"],
        key=f"{KEY}uploader.{generation}",
        max_upload_size=limit_mb,
        help=f"Up to {limit_mb} MB and {userdata.MAX_ROWS:,} rows.",
    )
    outcome = _process(uploaded) if uploaded is not None else None

    with left:
        table = uploads.uploaded_runs()
        if outcome is not None and not outcome.ok:
            kept = (
                f" Your previous upload, {common.escape_md(uploads.uploaded_name() or 'your file', 80)}, "
                "is still in use."
                if table is not None
                else ""
            )
            st.error(
                f"This file cannot be used: {common.escape_md(outcome.error.rstrip('.'), 400)}.{kept}",
                icon=":material/error:",
            )
        if table is None:
            if outcome is None:
                st.info(
                    "No file uploaded yet. Download the template on the right to see the format.",
                    icon=":material/upload_file:",
                )
            return
        name = uploads.uploaded_name() or "your file"
        count = table["run_id"].nunique()
        st.success(
            f"**{count} run{'s' if count != 1 else ''}** with **{len(table):,} checkpoints** from "
            f"{common.escape_md(name, 80)} are ready for this session.",
            icon=":material/check_circle:",
        )
        if outcome is not None and outcome.rejected_rows:
            problems = outcome.problems()
            more = outcome.rejected_rows - len(problems)
            st.warning(
                f"{outcome.rejected_rows:,} row{'s were' if outcome.rejected_rows != 1 else ' was'} "
                "left out" + (f" (the first {len(problems)} are listed)" if more > 0 else "") + ":",
                icon=":material/warning:",
            )
            st.dataframe(
                problems,
                hide_index=True,
                width="stretch",
                height=min(38 + 35 * len(problems), 250),
                column_config={"Row": st.column_config.NumberColumn(format="%d", width="small")},
            )
        st.button("Clear the uploaded runs", on_click=_clear, icon=":material/delete:")

    _show_runs(table)


def _show_runs(table: pd.DataFrame) -> None:
    cols = st.columns(4)
    cols[0].metric("Runs", f"{table['run_id'].nunique():,}", border=True)
    cols[1].metric("Checkpoints", f"{len(table):,}", border=True)
    cols[2].metric(
        "Model sizes (parameters)",
        f"{units.format_params(table['num_params'].min(), unit=False)} – "
        f"{units.format_params(table['num_params'].max(), unit=False)}",
        border=True,
    )
    cols[3].metric("Tokens seen", f"up to {units.format_tokens(table['tokens_seen'].max())}", border=True)
    cutoff = userdata.default_min_tokens(table)
    st.caption(
        f"Fits of these runs (Fit and extrapolate) drop checkpoints at or below "
        f"{units.format_tokens(cutoff)} by default: 10% of your shortest run's training, at most 10B tokens. "
        "The paper's fixed 10B-token cutoff removes the warm-up of runs trained on hundreds of billions of "
        "tokens and would leave nothing of shorter runs; every run's final checkpoint is kept."
    )

    st.subheader("Your curves")
    log_y = units.log_axis_sensible(table["value"].min(), table["value"].max())
    figure = charts.curves_figure(
        table.assign(label=table["run_name"]),
        x="tokens_seen",
        x_title=units.axis_title("Tokens seen", "tokens", log=True),
        y_title=units.axis_title("Loss", "as uploaded, e.g. nats/token", log=log_y),
        log_x=True,
        log_y=log_y,
        value_name="loss",
        height=480,
    )
    charts.add_context(
        figure,
        title="Your runs: loss against tokens seen",
        inputs=f"{uploads.uploaded_name() or 'uploaded file'} · {table['run_id'].nunique()} runs, "
        f"{len(table):,} checkpoints · sizes {units.format_params(table['num_params'].min())} "
        f"to {units.format_params(table['num_params'].max())}",
    )
    st.plotly_chart(
        figure,
        key=KEY + "chart",
        config={"displaylogo": False, "toImageButtonOptions": {"filename": "scaleplan-your-runs"}},
    )

    st.subheader("Preview")
    preview = table[["run_name", "seed", "num_params", "tokens_seen", "value", "run_id"]]
    preview = preview.dropna(axis="columns", how="all")  # no seeds given: no empty column
    st.dataframe(
        preview.rename(
            columns={
                "run_name": "Run",
                "seed": "Seed",
                "num_params": "Parameters",
                "tokens_seen": "Tokens seen",
                "value": "Loss",
                "run_id": "Run id",
            }
        ),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(table), 400),
        column_config={
            "Parameters": st.column_config.NumberColumn(format="compact"),
            "Tokens seen": st.column_config.NumberColumn(format="compact"),
            "Seed": st.column_config.NumberColumn(format="%d"),
            "Loss": st.column_config.NumberColumn(format="%.4f"),
        },
    )


common.run_page(render, needs_database=False)

"""Your runs: upload your own runs (CSV, long format with steps, Parquet, W&B export), keep them as
named studies, and see what they say: approach 2 (isoFLOP) beside approach 3 and the published laws,
and the prediction for a target with its calibrated interval.

The table in use is kept in st.session_state["uploaded_runs"] (see dashboard.uploads) for the fit and
planning pages. A study is written to the user store (core.studies) only when the user saves it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from scaleplan.core import formats, isoflop, laws, planning, studies, units, userdata
from scaleplan.core.errors import UserError
from scaleplan.dashboard import charts, common, fits, uploads

KEY = "your_runs."
TOKENS_PER_STEP_LABEL = "Tokens per step (for W&B exports and files that count steps)"
PAGE_INPUTS = formats.Inputs(tokens_per_step="in the box 'Tokens per step' above the file, e.g. 4194304")
"""What this page lets a person give for a file that lacks it: the tokens per step, not per-run sizes."""


def _clear() -> None:
    uploads.clear()
    for key in ("parsed", "sha256", "study"):
        st.session_state.pop(KEY + key, None)
    st.session_state.pop(KEY + "outcome", None)
    st.session_state.pop(KEY + "marker", None)
    st.session_state[KEY + "generation"] = st.session_state.get(KEY + "generation", 0) + 1


def _process(uploaded, tokens_per_step: float | None) -> uploads.UploadOutcome:
    """Validate a newly uploaded file once (reruns reuse the outcome); a valid one is put in use."""
    marker = (uploaded.file_id, uploaded.size, tokens_per_step)
    if st.session_state.get(KEY + "marker") != marker:
        if uploaded.size > userdata.MAX_UPLOAD_BYTES:
            outcome = uploads.process_upload(b"", size=uploaded.size)
        else:
            data = uploaded.getvalue()
            try:
                parsed = formats.parse_runs(data, tokens_per_step=tokens_per_step, inputs=PAGE_INPUTS)
            except UserError as error:
                outcome = uploads.UploadOutcome(None, error=userdata.sentence(str(error)))
            else:
                outcome = uploads.UploadOutcome(
                    parsed.table[list(uploads.COLUMNS)].copy(), parsed.messages, parsed.rejected_rows
                )
                st.session_state[KEY + "parsed"] = parsed
                st.session_state[KEY + "sha256"] = studies.sha256_of(data)
                st.session_state[KEY + "study"] = None  # a new file: not (yet) a stored study
        uploads.store(outcome, uploaded.name)
        st.session_state[KEY + "outcome"] = outcome
        st.session_state[KEY + "marker"] = marker
    return st.session_state[KEY + "outcome"]


def _tokens_per_step(container) -> float | None:
    text = container.text_input(
        TOKENS_PER_STEP_LABEL,
        key=KEY + "tokens_per_step",
        placeholder="e.g. 4194304 (batch size x sequence length)",
        help="A W&B export and a file with a step column but no tokens need it to know the tokens seen.",
    )
    if not text.strip():
        return None
    try:
        return planning.parse_quantity(text, name="Tokens per step", maximum=1e12)
    except UserError as error:
        container.error(common.escape_md(str(error), 300), icon=":material/error:")
        return None


def _column_list(docs: pd.DataFrame) -> str:
    """Columns of :func:`uploads.column_docs` as a Markdown list (a narrow column has no room for a table)."""
    return "\n".join(
        f"- **{common.escape_md(name)}**: {common.escape_md(meaning, 300)}"
        + (f" *(also {common.escape_md(aliases, 300)})*" if aliases else "")
        for name, _required, aliases, meaning in docs.itertuples(index=False, name=None)
    )


def render() -> None:
    st.title("Your runs")
    st.markdown(
        "Upload the checkpoints of your own training runs (CSV, Parquet or a W&B export) to fit "
        "scaling laws to them and to read your isoFLOP sweep. A file stays in this browser session "
        "until you save it as a study; saved studies stay in your user store "
        "(saved studies survive restarts and database rebuilds)."
    )

    left, right = st.columns([3, 2], gap="large")
    with right.container(border=True):
        docs = uploads.column_docs()
        required = docs[docs["Required"] == "required"]
        st.markdown("**Required columns**\n\n" + _column_list(required))
        with st.expander(f"Optional columns ({len(docs) - len(required)})"):
            st.markdown(_column_list(docs[docs["Required"] != "required"]))
        st.caption(
            "One row per checkpoint. Header names are case-insensitive (spaces and hyphens read as _); "
            "commas, semicolons, tabs or | as separators; "
            f"{common.escape_md(userdata.COMMENT_RULE, 400)}. {common.escape_md(userdata.OTHER_COLUMNS, 400)}. A W&B export (Step and '<run> - <metric>' "
            "columns) needs the tokens per step, and each run's size in its name (e.g. 410m)."
        )
        st.download_button(
            "Download the template",
            userdata.TEMPLATE_CSV.encode(),
            file_name="runs-template.csv",
            mime="text/csv",
            icon=":material/download:",
        )

    generation = st.session_state.get(KEY + "generation", 0)
    tokens_per_step = _tokens_per_step(left)
    uploaded = left.file_uploader(
        "File with your runs (CSV, Parquet or W&B export)",
        type=["csv", "tsv", "txt", "parquet"],
        key=f"{KEY}uploader.{generation}",
        max_upload_size=userdata.MAX_UPLOAD_MB,
        help=f"Up to {userdata.MAX_UPLOAD_TEXT} and {userdata.MAX_ROWS:,} rows.",
    )
    outcome = _process(uploaded, tokens_per_step) if uploaded is not None else None

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
            _stored_studies()
            return
        name = uploads.uploaded_name() or "your file"
        count = table["run_id"].nunique()
        st.success(
            f"**{userdata.count_of(count, 'run')}** with **{userdata.count_of(len(table), 'checkpoint')}** from "
            f"{common.escape_md(name, 80)} {'is' if count == 1 else 'are'} ready for this session.",
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
                column_config={problems.columns[0]: st.column_config.NumberColumn(format="%d", width="small")},
            )
        st.button("Clear the uploaded runs", on_click=_clear, icon=":material/delete:")
        _mapping()
        _save_form()
        _stored_studies()

    _show_runs(table)


def _size_range(table: pd.DataFrame, *, unit: bool = True) -> str:
    """The runs' sizes: ``70M – 410M params``, or ``70M params`` when every run has the same size."""
    low, high = (units.format_params(table["num_params"].agg(f), unit=False) for f in ("min", "max"))
    sizes = low if low == high else f"{low} – {high}"
    return f"{sizes} params" if unit else sizes


def _show_runs(table: pd.DataFrame) -> None:
    cols = st.columns(4)
    cols[0].metric("Runs", f"{table['run_id'].nunique():,}", border=True)
    cols[1].metric("Checkpoints", f"{len(table):,}", border=True)
    # A range does not fit a metric card (it was cut to "100M – 2..."): the count here, the range once,
    # in the chart's caption below (which a downloaded image keeps).
    cols[2].metric("Model sizes", f"{table['num_params'].nunique():,}", border=True, help=_size_range(table))
    cols[3].metric("Most tokens seen", units.format_tokens(table["tokens_seen"].max(), unit=False), border=True)
    study = st.session_state.get(KEY + "study")
    if study:
        st.caption(f"Stored study in use: **{common.escape_md(study, 80)}**")
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
        inputs=f"{uploads.uploaded_name() or 'uploaded file'} · {userdata.count_of(table['run_id'].nunique(), 'run')}, "
        f"{userdata.count_of(len(table), 'checkpoint')} · {_size_range(table)}",
    )
    st.plotly_chart(
        figure,
        key=KEY + "chart",
        config={"displaylogo": False, "toImageButtonOptions": {"filename": "scaleplan-your-runs"}},
    )

    _analysis(table)

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


# ---------------------------------------------------------------------------------------------
# Column mapping and stored studies


def _parsed() -> formats.ParsedRuns | None:
    parsed = st.session_state.get(KEY + "parsed")
    return parsed if isinstance(parsed, formats.ParsedRuns) else None


def _mapping() -> None:
    parsed = _parsed()
    if parsed is None:
        return
    with st.expander(f"Columns read from your file ({parsed.format})", expanded=True):
        st.dataframe(parsed.mapping.table(), hide_index=True, width="stretch", key=KEY + "mapping")
        st.caption("Check this before reading anything below: every number on this page uses these columns.")


def _store_path():
    return common.settings().user_db_path


def _notice(kind: str, *parts: str) -> None:
    """Keep a message for the next run: ``parts`` alternate plain text and a user's value (a study's
    name, shown in bold as typed), the values escaped for Markdown; a lone part is escaped as a whole."""
    if len(parts) == 1:
        text = common.escape_md(parts[0], 400)
    else:
        text = "".join(part if i % 2 == 0 else f"**{common.escape_md(part, 120)}**" for i, part in enumerate(parts))
    st.session_state[KEY + "notice"] = (kind, text)


def _save(name: str) -> None:
    parsed = _parsed()
    if parsed is None:
        return
    try:
        info = studies.save_study(
            _store_path(),
            name,
            parsed,
            sha256=st.session_state.get(KEY + "sha256") or "",
            filename=uploads.uploaded_name() or "",
        )
    except UserError as error:
        _notice("error", str(error))
        return
    st.session_state[KEY + "study"] = info.name
    _notice("success", "Saved as study ", info.name, f" ({userdata.count_of(info.num_runs, 'run')}).")


def _save_form() -> None:
    if _parsed() is None or st.session_state.get(KEY + "study"):
        return
    with st.form(KEY + "save", border=True):
        default = (uploads.uploaded_name() or "my study").rsplit(".", 1)[0][: studies.MAX_NAME_LENGTH]
        name = st.text_input("Study name", value=default, max_chars=studies.MAX_NAME_LENGTH, key=KEY + "save_name")
        if st.form_submit_button("Save as study", icon=":material/save:"):
            _save(name)


def _open(name: str) -> None:
    try:
        study = studies.load_study(_store_path(), name)
    except UserError as error:
        _notice("error", str(error))
        return
    table = study.table
    outcome = uploads.UploadOutcome(table[list(uploads.COLUMNS)].copy())
    uploads.store(outcome, study.info.filename or study.name)
    st.session_state[KEY + "parsed"] = formats.ParsedRuns(
        table=table, mapping=study.info.mapping, format=study.info.format, messages=(), rejected_rows=0
    )
    st.session_state[KEY + "sha256"] = study.info.sha256
    st.session_state[KEY + "study"] = study.name
    st.session_state.pop(KEY + "outcome", None)
    st.session_state.pop(KEY + "marker", None)
    st.session_state[KEY + "generation"] = st.session_state.get(KEY + "generation", 0) + 1  # empties the uploader
    _notice("success", "Opened study ", study.name, ".")


def _rename(old: str) -> None:
    new = st.session_state.get(KEY + "rename_to", "")
    try:
        renamed = studies.rename_study(_store_path(), old, new)
    except UserError as error:
        _notice("error", str(error))
        return
    if st.session_state.get(KEY + "study") == old:
        st.session_state[KEY + "study"] = renamed.name
    _notice("success", "Renamed study ", old, " to ", renamed.name, f"; {renamed.scenarios_text}.")


DELETE_FORCE = "Delete even if saved scenarios plan on it"


def _delete(name: str) -> None:
    # A study that saved scenarios plan on is deleted only with the box ticked (they become unavailable).
    force = bool(st.session_state.get(KEY + "delete_force"))
    try:
        orphaned = studies.delete_study(_store_path(), name, how_to_force=None if force else f"tick “{DELETE_FORCE}”")
    except UserError as error:
        _notice("error", str(error))
        return
    if st.session_state.get(KEY + "study") == name:
        st.session_state[KEY + "study"] = None
    st.session_state[KEY + "delete_force"] = False
    lost = (
        f"; {userdata.count_of(orphaned, 'saved scenario')} that planned on it "
        f"{'is' if orphaned == 1 else 'are'} now unavailable"
        if orphaned
        else ""
    )
    _notice("success", "Deleted study ", name, f"; the other studies are unchanged{lost}.")


def _stored_studies() -> None:
    notice = st.session_state.pop(KEY + "notice", None)
    if notice:
        kind, text = notice
        (st.success if kind == "success" else st.error)(text)
    st.subheader("Your stored studies")
    try:
        stored = studies.list_studies(_store_path())
    except UserError as error:
        st.error(common.escape_md(str(error), 400), icon=":material/error:")
        return
    if not stored:
        st.caption("No study saved yet: upload a file and save it as a study to keep it.")
        return
    by_name = {s.name: s for s in stored}
    name = st.selectbox(
        "Study",
        list(by_name),
        key=KEY + "stored",
        format_func=lambda n: (
            f"{n} · {userdata.count_of(by_name[n].num_runs, 'run')} · {by_name[n].uploaded_at:%Y-%m-%d %H:%M} UTC"
        ),
    )
    if name is None:
        return
    info = by_name[name]
    st.caption(
        f"{userdata.count_of(info.num_rows, 'row')} from {common.escape_md(info.filename or 'a file', 80)} "
        f"({info.format}), "
        f"sha256 {info.sha256[:12]}"
    )
    cols = st.columns(3)
    cols[0].button("Open this study", key=KEY + "open", on_click=_open, args=(name,), icon=":material/folder_open:")
    try:
        data = studies.export_csv(studies.load_study(_store_path(), name))
        cols[1].download_button(
            "Export CSV", data, file_name="study.csv", mime="text/csv", key=KEY + "export", icon=":material/download:"
        )
    except UserError as error:
        cols[1].caption(common.escape_md(str(error), 200))
    with cols[2].popover("Rename or delete", icon=":material/edit:"):
        st.text_input("New name", key=KEY + "rename_to", max_chars=studies.MAX_NAME_LENGTH)
        st.button("Rename", key=KEY + "rename", on_click=_rename, args=(name,))
        st.divider()
        st.checkbox(DELETE_FORCE, key=KEY + "delete_force")
        st.button("Delete this study", key=KEY + "delete", on_click=_delete, args=(name,), type="primary")


# ---------------------------------------------------------------------------------------------
# What the runs say: approach 2 and 3, the prediction


def _target(table: pd.DataFrame) -> studies.StudyTarget | None:
    mode = st.segmented_control(
        "Target given as",
        ["Compute budget", "Model size and tokens"],
        default="Compute budget",
        key=KEY + "target_mode",
    )
    cols = st.columns(3)
    try:
        if mode == "Model size and tokens":
            n = planning.parse_quantity(
                cols[0].text_input("Target parameters N", value="7B", key=KEY + "target_n"),
                name="Target parameters",
                maximum=planning.MAX_PARAMS,
            )
            d = planning.parse_quantity(
                cols[1].text_input("Target tokens D", value="140B", key=KEY + "target_d"),
                name="Target tokens",
                maximum=planning.MAX_TOKENS,
            )
            return studies.StudyTarget(num_params=n, tokens=d)
        c = planning.parse_quantity(
            cols[0].text_input(
                "Target compute budget (FLOPs)",
                value=f"{studies.default_target(table).flops:.0e}",
                key=KEY + "target_c",
            ),
            name="Target compute",
        )
        return studies.StudyTarget(compute_flops=c)
    except UserError as error:
        st.error(common.escape_md(str(error), 300), icon=":material/error:")
        return None


# A resource cache, not cache_data: the report holds fit results whose Parameters refuse the attribute
# writes of unpickling; the report is frozen, so sharing one object between sessions is safe.
@st.cache_resource(show_spinner=False, max_entries=16)
def _report(table: pd.DataFrame, target: tuple, level: float, meta_key: tuple, _calibration) -> studies.StudyReport:
    n, d, c = target
    return studies.analyse_study(
        table, studies.StudyTarget(num_params=n, tokens=d, compute_flops=c), calibration_model=_calibration, level=level
    )


def _analysis(table: pd.DataFrame) -> None:
    st.subheader("What your runs say")
    parsed = _parsed()
    full = parsed.table if parsed is not None and len(parsed.table) == len(table) else table
    target = _target(full)
    if target is None:
        return
    level = st.select_slider(
        "Level of the calibrated interval",
        options=list(fits.LEVELS),
        value=fits.DEFAULT_LEVEL,
        key=KEY + "level",
        format_func=lambda v: f"{v:.0%}",
        help="The levels the Fit page offers: the share of held-out designs whose real loss should fall inside.",
    )
    cal, reason, meta_key = fits.calibration_or_reason()
    with st.spinner("Fitting approach 2 (isoFLOP) and approach 3 on your runs..."):
        report = _report(full, (target.num_params, target.tokens, target.compute_flops), level, meta_key, cal)
    _prediction(report, reason)
    _allocations(report)
    for warning in report.warnings:
        st.warning(common.escape_md(warning, 400), icon=":material/warning:")
    if report.isoflop is None:
        st.info(
            f"No isoFLOP analysis (approach 2): {common.escape_md(report.isoflop_problem, 500)}",
            icon=":material/info:",
        )
        return
    st.plotly_chart(isoflop_figure(report.isoflop), key=KEY + "isoflop", config={"displaylogo": False})
    st.plotly_chart(
        optimum_figure(report.isoflop, report.allocations, report.target.flops),
        key=KEY + "optimum",
        config={"displaylogo": False},
    )


def _prediction(report: studies.StudyReport, reason: str) -> None:
    if report.prediction is None:
        st.info(f"No prediction: {common.escape_md(report.prediction_problem, 400)}", icon=":material/info:")
        return
    pred = report.prediction
    where = (
        f"at the compute-optimal split of the budget by {studies.FINAL_LOSS_FIT}"
        if report.target.compute_flops is not None
        else "at the target you typed"
    )
    interval = pred.interval
    if interval is None:
        note = f"no calibrated interval: {reason}" if reason else "no calibrated interval"
    elif hasattr(interval, "low"):
        note = f"{units.format_level(report.level)} calibrated interval {interval.low:.4f} – {interval.high:.4f}"
    else:
        note = str(interval)
    cols = st.columns(3)
    cols[0].metric(
        f"Predicted loss ({studies.checkpoint_fit_label(len(pred.points))})",
        f"{pred.predicted_loss:.4f}",
        border=True,
        help=f"From {studies.CHECKPOINT_FIT}: not the final-loss fit of approach 3 in the table below.",
    )
    cols[1].metric("Target parameters N", units.format_params(report.num_params), border=True)
    cols[2].metric("Target tokens D", units.format_tokens(report.tokens), border=True)
    st.caption(
        f"Loss in the units of your file, from {studies.CHECKPOINT_FIT}, {where} "
        f"({units.format_flops(laws.compute_from(pred.target_params, pred.target_tokens))}); {common.escape_md(note, 300)}."
    )


def _allocations(report: studies.StudyReport) -> None:
    rows = []
    for a in report.allocations:
        band = (
            f"{units.format_params(a.num_params_low)} – {units.format_params(a.num_params_high)}"
            if a.has_interval
            else "no interval"
        )
        rows.append(
            {
                "Method": a.label,
                "N* (parameters)": units.format_params(a.num_params),
                f"N* {units.format_level(report.allocations[0].level)} interval": band,
                "D* (tokens)": units.format_tokens(a.tokens),
                "Tokens per parameter": f"{a.tokens_per_param:.1f}",
            }
        )
    own = sum(a.method in ("approach2", "approach3") for a in report.allocations)
    st.markdown(
        f"**Compute-optimal split of {units.format_flops(report.target.flops)}: "
        + ("your runs' fits beside the published laws**" if own else "the published laws only**")
    )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=KEY + "allocations")
    if not own:
        st.caption(
            "No row from your runs: neither approach 2 (isoFLOP minima) nor approach 3 on the final losses could be "
            "fitted (see below). The published laws' rows are Hoffmann's and Besiroglu's fits on their own runs."
        )


def isoflop_figure(result: isoflop.IsoflopAnalysis) -> go.Figure:
    """Each budget's final losses against N with its parabola in ln N and its minimum (with interval)."""
    fig = go.Figure()
    palette = charts.size_colors([b.compute_flops for b in result.budgets])
    for budget in result.budgets:
        color = palette.get(budget.compute_flops)
        label = units.format_flops(budget.compute_flops)
        fig.add_scatter(
            x=list(budget.num_params), y=list(budget.loss), mode="markers", name=label,
            marker=dict(color=color, size=9), legendgroup=label,
            hovertemplate="N %{x:.3s}<br>loss %{y:.4f}<extra>" + label + "</extra>",
        )  # fmt: skip
        if budget.coefficients is not None:
            grid = np.geomspace(min(budget.num_params) / 1.2, max(budget.num_params) * 1.2, 80)
            fig.add_scatter(
                x=grid, y=budget.curve(grid), mode="lines", line=dict(color=color), legendgroup=label,
                showlegend=False, hoverinfo="skip",
            )  # fmt: skip
        if budget.optimal_params is not None:
            error = None
            if budget.optimal_params_low is not None and budget.optimal_params_high is not None:
                error = dict(
                    type="data", symmetric=False,
                    array=[budget.optimal_params_high - budget.optimal_params],
                    arrayminus=[budget.optimal_params - budget.optimal_params_low], color=color,
                )  # fmt: skip
            fig.add_scatter(
                x=[budget.optimal_params], y=[budget.optimal_loss], mode="markers", legendgroup=label,
                marker=dict(symbol="star", size=15, color=color, line=dict(color="black", width=1)),
                error_x=error, showlegend=False,
                hovertemplate="minimum N* %{x:.3s}<br>loss %{y:.4f}<extra>" + label + "</extra>",
            )  # fmt: skip
    charts.base_layout(
        fig,
        x_title=units.axis_title("Model size N", "parameters", log=True),
        y_title=units.axis_title("Final loss", "as uploaded, e.g. nats/token"),
        log_x=True,
        log_y=False,
        height=480,
    )
    fig.update_layout(legend_title_text="Compute budget")
    return charts.add_context(
        fig,
        title=f"IsoFLOP curves: a parabola in ln N per budget, minima (stars) with {units.format_level(result.level)} intervals",
        inputs=f"{userdata.count_of(len(result.budgets), 'budget')} · "
        f"{userdata.count_of(sum(len(b.num_params) for b in result.budgets), 'run')}",
    )


def optimum_figure(
    result: isoflop.IsoflopAnalysis, allocations: tuple[isoflop.Allocation, ...], target_flops: float
) -> go.Figure:
    """N*(C) = G C^a through the budgets' minima with its band, out to the target, beside the other methods."""
    fitted = [b for b in result.budgets if b.optimal_params is not None]
    low_c = min(b.compute_flops for b in fitted) / 2
    high_c = max(target_flops, max(b.compute_flops for b in fitted)) * 2
    grid = np.geomspace(low_c, high_c, 100)
    low, high = result.optimal_params_band(grid)
    fig = go.Figure()
    fig.add_scatter(x=grid, y=high, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
    fig.add_scatter(
        x=grid, y=low, mode="lines", line=dict(width=0), fill="tonexty", fillcolor="rgba(31,119,180,0.2)",
        name=f"{units.format_level(result.level)} interval", hoverinfo="skip",
    )  # fmt: skip
    fig.add_scatter(
        x=grid, y=result.optimal_params(grid), mode="lines", line=dict(color="#1f77b4"),
        name=f"approach 2: N* = {result.coefficient:.3g} C^{result.exponent:.3f}",
        hovertemplate="C %{x:.3s} FLOPs<br>N* %{y:.3s}<extra></extra>",
    )  # fmt: skip
    fig.add_scatter(
        x=[b.compute_flops for b in fitted], y=[b.optimal_params for b in fitted], mode="markers",
        marker=dict(size=10, color="#1f77b4"), name="budget minima",
        error_y=dict(
            type="data", symmetric=False,
            array=[(b.optimal_params_high or b.optimal_params) - b.optimal_params for b in fitted],
            arrayminus=[b.optimal_params - (b.optimal_params_low or b.optimal_params) for b in fitted],
        ),
        hovertemplate="C %{x:.3s} FLOPs<br>N* %{y:.3s}<extra></extra>",
    )  # fmt: skip
    symbols = {"approach3": "diamond", "hoffmann2022": "square", "besiroglu2024": "triangle-up"}
    for a in allocations:
        if a.method == "approach2":
            continue
        fig.add_scatter(
            x=[a.compute_flops], y=[a.num_params], mode="markers", name=a.label,
            marker=dict(size=12, symbol=symbols.get(a.method, "circle")),
            error_y=dict(
                type="data", symmetric=False, array=[a.num_params_high - a.num_params],
                arrayminus=[a.num_params - a.num_params_low],
            ),
            hovertemplate="C %{x:.3s} FLOPs<br>N* %{y:.3s}<extra></extra>",
        )  # fmt: skip
    charts.base_layout(
        fig,
        x_title=units.axis_title("Training compute C", "FLOPs", log=True),
        y_title=units.axis_title("Compute-optimal size N*", "parameters", log=True),
        log_x=True,
        log_y=True,
        height=480,
    )
    return charts.add_context(
        fig,
        title="Compute-optimal model size N*(C): your isoFLOP minima, extrapolated to the target",
        inputs=f"target {units.format_flops(target_flops)} · intervals at {units.format_level(result.level)}",
    )


common.run_page(render, needs_database=False)

"""Fit and extrapolate: fit L(N, D) = E + A/N^alpha + B/D^beta on small runs, predict a bigger one.

URL state (validated by dashboard.state, so a link reproduces the view)::

    ?family=pythia&target=pythia/pythia-12b&runs=...&p=0.5&ckpt=all&cutoff=10e9&borrow=alpha&from=gpt3&boot=1
    ?family=gpt3&target=hypothetical&n=3e11&d=1e12

``runs`` is only written when it differs from the default (every run smaller than the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from scaleplan.core import analysis, calibration, fitting, laws, planning, units, userdata
from scaleplan.core.analysis import Analysis, AnalysisFailure, FitRequest, StagedAnalysis
from scaleplan.core.metrics import MetricLabel, metric_label
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, MIN_SIZES_TO_FIT
from scaleplan.dashboard import analysis_charts, charts, common, fits, report, state, uploads

KEY = "fit."
HYPOTHETICAL = "hypothetical"
SHARE_CARD_MAX = 1e6  # a larger factor of compute has too many digits for its card: "> 1,000,000x"
DEFAULT_FAMILY = "pythia"
CHECKPOINTS = {"all": "All checkpoints", "final": "Final only"}
DEFAULT_BORROW_SOURCE = ("pythia-deduped", "pythia", "chinchilla", "gpt3")
DEFAULT_LAW = "chinchilla"
MAX_CUTOFF_B = 100_000.0  # 100T tokens


def _reset(*names: str) -> None:
    for name in names:
        st.session_state.pop(KEY + name, None)


def _valid(name: str, allowed, default, *, multi: bool = False) -> None:
    """Widget ``KEY + name`` keeps its value if still allowed, else takes ``default``."""
    state.keep_valid(KEY + name, allowed, multi=multi)
    st.session_state.setdefault(KEY + name, default)


def _on_family_change() -> None:
    _reset("target", "runs", "n", "d", "cutoff")  # uploaded runs have their own default cutoff


def _on_target_change() -> None:
    _reset("runs")


def _law_title(name: str) -> str:
    return laws.get(name).title


def _level_label(level_percent: str) -> str:
    return f"{level_percent}%"


def _family_label(labels: dict[str, str]) -> Any:
    """A family as the family selector shows it (its label, or its name)."""
    return lambda family: labels.get(family, family)


def _loss_label(version, family: str) -> MetricLabel:
    """The loss the page fits and predicts, in plain words: the family's default metric, or the upload's loss."""
    if family == fits.UPLOADED:
        return MetricLabel("loss", "Loss as uploaded", "the unit of your file, e.g. nats/token")
    families = common.cached_families(version).set_index("family")
    metric = str(families.loc[family, "default_metric"])
    kinds = common.cached_family_metrics(version, (family,)).set_index("metric")["kind"]
    return metric_label(metric, kinds.get(metric))


def _loss_axis_title(loss: MetricLabel, family: str) -> str:
    """The loss axis' title, one unit in one pair of parentheses: "Validation loss, log-perplexity (nats/token)"
    (a name that ends in its own parenthetical gets it after a comma), "Loss (as uploaded)" for an upload."""
    if family == fits.UPLOADED:
        return units.axis_title("Loss", "as uploaded")
    name = loss.name
    if name.endswith(")") and " (" in name:
        head, _, tail = name[:-1].rpartition(" (")
        name = f"{head}, {tail}"
    return units.axis_title(name, loss.unit)


def _family_options(families: pd.DataFrame, uploaded: pd.DataFrame | None) -> tuple[list[str], dict[str, str]]:
    usable = families[families["num_sizes"] >= MIN_SIZES_TO_FIT]
    names = usable["family"].tolist()
    labels = {
        row.family: f"{row.family}  ({row.num_sizes} sizes, {units.format_count(row.min_params)}–"
        f"{units.format_count(row.max_params)})"
        for row in usable.itertuples()
    }
    if uploaded is not None:
        names = [fits.UPLOADED] + names
        labels[fits.UPLOADED] = f"Your runs (uploaded, {uploaded['run_id'].nunique()} runs)"
    return names, labels


def _preview(
    version: common.DbVersion | None,
    family: str,
    uploaded: pd.DataFrame | None,
    labels: dict[str, str],
    slot: Any,
) -> None:
    """The family's observed losses in the headline's place, drawn before the inputs' widgets (the family
    is the family widget's value, set before it is drawn): the first chunk the browser asks for is then
    Plotly's, fetched and evaluated while it loads the widgets and the server fits."""
    curves = fits.curves_of(family, uploaded)
    if curves.empty:
        return
    loss = _loss_label(version, family)
    slot.plotly_chart(
        analysis_charts.observed_figure(
            curves=curves,
            runs=fits.runs_table(curves),
            y_title=_loss_axis_title(loss, family),
            title=f"Observed losses of {labels.get(family, family)} (fitting...)",
        ),
        config=analysis_charts.plotly_config("scaleplan-fit"),
    )


def _quantity_input(column, label: str, key: str, help_text: str) -> tuple[float | None, str | None]:
    text = column.text_input(label, key=key, help=help_text)
    try:
        return planning.parse_quantity(text, name=label, maximum=planning.MAX_TOKENS), None
    except planning.PlanningError as error:
        return None, str(error)


def render() -> None:
    version = common.db_version()
    families = common.cached_families(version)
    uploaded = uploads.uploaded_runs()
    names, labels = _family_options(families, uploaded)
    st.title("Fit and extrapolate")
    st.caption(
        "Fit the scaling law L(N, D) = E + A/N^α + B/D^β on the checkpoints of small runs and "
        "extrapolate to a larger target: a run of the family (to see how far off the prediction is) or a "
        "hypothetical model."
    )
    if not names:
        st.info("No family has runs of at least two sizes.")
        return
    # The headline's place is reserved after the inputs' and, on the session's first draw of this page,
    # shows the family's observed losses before any widget is drawn (_preview): the browser then fetches
    # and runs Plotly's JavaScript (4.7 MB, 1-2.5 s of its main thread on a loaded 2-core machine) while
    # it loads the widgets and the server fits, instead of after.
    inputs, headline_slot, details = st.container(), st.empty(), st.container()
    with inputs:
        drawn = _inputs_and_results(version, families, uploaded, names, labels, headline_slot, details)
    if not drawn:
        headline_slot.empty()


def _inputs_and_results(
    version: common.DbVersion | None,
    families: pd.DataFrame,
    uploaded: pd.DataFrame | None,
    names: list[str],
    labels: dict[str, str],
    headline_slot: Any,
    details: Any,
) -> bool:
    """The page below its title: the inputs, then the headline in ``headline_slot`` and the ``details``.
    False when it stopped before the headline (a message says why)."""
    # ---- URL -> widgets (first visit of the session only) -------------------------------------
    default_family = DEFAULT_FAMILY if DEFAULT_FAMILY in names else names[0]
    family_label = _family_label(labels)
    p_family = state.read_param("family", allowed=names, default=default_family, label="family", describe=family_label)
    first = state.seed_widget(KEY + "family", p_family)
    lost_upload = first and st.query_params.get("family") == fits.UPLOADED and uploaded is None
    notices = [p_family] if first and not lost_upload else []  # a lost upload has its own notice, below
    if lost_upload:
        st.info(
            "The link refers to uploaded runs, which live only in the browser session that uploaded them; "
            f"showing {default_family} instead.",
            icon=":material/link_off:",
        )
    _valid("family", names, default_family)
    if not st.session_state.get(KEY + "drawn"):
        _preview(version, st.session_state[KEY + "family"], uploaded, labels, headline_slot)

    law_names = list(laws.loss_laws())
    p_law = state.read_param("law", allowed=law_names, default=DEFAULT_LAW, label="law", describe=_law_title)
    if first:
        state.seed_widget(KEY + "law", p_law)
        notices.append(p_law)
    _valid("law", law_names, DEFAULT_LAW)
    law = laws.get(st.session_state.get(KEY + "law", DEFAULT_LAW))
    borrowable_names = list(law.param_names)

    top = st.columns([3, 3, 2], vertical_alignment="bottom")
    top[2].selectbox(
        "Law",
        law_names,
        key=KEY + "law",
        format_func=_law_title,
        help="The scaling law fitted: " + "; ".join(f"{laws.get(n).title}: {laws.get(n).formula}" for n in law_names),
    )
    family = top[0].selectbox(
        "Family",
        names,
        key=KEY + "family",
        format_func=family_label,
        on_change=_on_family_change,
        help="A family is a set of runs trained with one recipe at different sizes.",
    )
    curves = fits.curves_of(family, uploaded)
    runs = fits.runs_table(curves)
    if runs.empty:
        st.warning("This family has no loss observations to fit.")
        return False
    loss = _loss_label(version, family)
    run_ids = runs["run_id"].tolist()
    run_label = {
        r.run_id: f"{r.label} · {units.format_params(r.num_params, unit=False)} · "
        f"{units.format_tokens(r.max_tokens, unit=False)} tokens"
        for r in runs.itertuples()
    }
    default_target = fits.default_target(curves) or run_ids[-1]
    target_options = list(reversed(run_ids)) + [HYPOTHETICAL]

    def target_label(run_id: str) -> str:
        return "A hypothetical model (enter N and D)" if run_id == HYPOTHETICAL else run_label.get(run_id, run_id)

    p_target = state.read_param(
        "target", allowed=target_options, default=default_target, label="target", describe=target_label
    )
    largest = runs.iloc[-1]
    p_n = state.read_param(
        "n",
        default=float(2 * largest["num_params"]),
        minimum=1.0,
        maximum=planning.MAX_PARAMS,
        label="target parameters",
    )
    p_d = state.read_param(
        "d", default=float(largest["max_tokens"]), minimum=1.0, maximum=planning.MAX_TOKENS, label="target tokens"
    )
    p_fraction = state.read_param("p", default=1.0, minimum=0.1, maximum=1.0, label="fraction of training")
    p_ckpt = state.read_param(
        "ckpt", allowed=list(CHECKPOINTS), default="all", label="checkpoints", describe=CHECKPOINTS.get
    )
    default_cutoff = userdata.default_min_tokens(uploaded) if family == fits.UPLOADED else DEFAULT_MIN_TOKENS
    p_cutoff = state.read_param(
        "cutoff", default=default_cutoff, minimum=0.0, maximum=MAX_CUTOFF_B * 1e9, label="early-token cutoff"
    )
    other_families = [f for f in families["family"] if f != family]
    borrow_default = next((f for f in DEFAULT_BORROW_SOURCE if f in other_families), other_families[0])
    p_borrow = state.read_param("borrow", allowed=borrowable_names, default=[], multi=True, label="borrowed parameter")
    p_from = state.read_param(
        "from", allowed=other_families, default=borrow_default, label="family to borrow from", describe=family_label
    )
    level_options = [f"{round(level * 100)}" for level in fits.LEVELS]
    p_level = state.read_param(
        "level",
        allowed=level_options,
        default=f"{round(fits.DEFAULT_LEVEL * 100)}",
        label="interval level",
        describe=_level_label,
    )
    p_boot = state.read_param(
        "boot", allowed=list(state.SWITCH), default="0", label="bootstrap", describe=state.SWITCH.get
    )
    if first:
        state.seed_widget(KEY + "target", p_target)
        st.session_state.setdefault(KEY + "n", fits.friendly_number(p_n.value))
        st.session_state.setdefault(KEY + "d", fits.friendly_number(p_d.value))
        state.seed_widget(KEY + "p", p_fraction)
        state.seed_widget(KEY + "ckpt", p_ckpt)
        st.session_state.setdefault(KEY + "cutoff", float(p_cutoff.value) / 1e9)
        state.seed_widget(KEY + "borrow", p_borrow)
        state.seed_widget(KEY + "from", p_from)
        state.seed_widget(KEY + "level", p_level)
        notices += [p_target, p_n, p_d, p_fraction, p_ckpt, p_cutoff, p_borrow, p_from, p_level, p_boot]
    # From the URL on every run, not only the first: a run that stops before the details (no run chosen,
    # a failed fit) does not draw the toggle, so Streamlit forgets its value; the URL still holds it.
    st.session_state.setdefault(KEY + "boot", p_boot.value == "1")
    _valid("target", target_options, default_target)
    _valid("from", other_families, borrow_default)
    st.session_state.setdefault(KEY + "n", fits.friendly_number(float(2 * largest["num_params"])))
    st.session_state.setdefault(KEY + "d", fits.friendly_number(float(largest["max_tokens"])))
    st.session_state.setdefault(KEY + "cutoff", default_cutoff / 1e9)

    target = top[1].selectbox(
        "Target",
        target_options,
        key=KEY + "target",
        on_change=_on_target_change,
        format_func=target_label,
        help="Default: the family's largest run. Its real loss shows how good the prediction is.",
    )
    hypothetical = target == HYPOTHETICAL
    target_n = target_d = None
    input_errors = []
    if hypothetical:
        cols = st.columns(2)
        target_n, error_n = _quantity_input(cols[0], "Target parameters N", KEY + "n", "e.g. 7B, 7e9 or 7000000000")
        target_d, error_d = _quantity_input(cols[1], "Target training tokens D", KEY + "d", "e.g. 140B or 1.4e11")
        input_errors = [e for e in (error_n, error_d) if e]
        size_limit = np.inf  # a hypothetical target may lie inside the runs' size range (noted with the result)
    else:
        size_limit = float(runs.loc[runs["run_id"] == target, "num_params"].iloc[0])

    # Runs that may be used: smaller than the target.
    pool = runs[(runs["num_params"] < size_limit) & (runs["run_id"] != target)]
    pool_ids = pool["run_id"].tolist()
    p_runs = state.read_param("runs", allowed=pool_ids, default=pool_ids, multi=True, label="run")
    if first:
        state.seed_widget(KEY + "runs", p_runs)
        notices.append(p_runs)
    _valid("runs", pool_ids, pool_ids, multi=True)
    chosen = st.multiselect(
        "Small runs to fit on",
        pool_ids,
        key=KEY + "runs",
        format_func=lambda r: run_label.get(r, r),
        placeholder="Choose the runs to fit on",
        help="Default: every run smaller than the target (every run for a hypothetical target).",
    )

    options = st.columns([2.4, 2.8, 1.9, 2.2], vertical_alignment="bottom")
    fraction = options[0].slider(
        "Fraction of training used",
        0.1,
        1.0,
        step=0.05,
        key=KEY + "p",
        help="Only checkpoints up to this share of the longest chosen run's tokens are used (p in the paper).",
    )
    ckpt = (
        options[1].segmented_control(
            "Checkpoints", list(CHECKPOINTS), key=KEY + "ckpt", format_func=CHECKPOINTS.get, required=True
        )
        or "all"
    )
    cutoff_b = options[2].number_input(
        "Drop checkpoints ≤ (B tokens)",
        min_value=0.0,
        max_value=MAX_CUTOFF_B,
        step=1.0,
        key=KEY + "cutoff",
        format="%g",
        help="Early checkpoints are noisy; the paper drops those at or below 10B tokens. "
        "For your uploaded runs the default is 10% of the shortest run's training, "
        "at most 10B tokens.",
    )
    with options[3].popover("Borrow parameters", icon=":material/call_split:", use_container_width=True):
        st.caption(
            "Fix some parameters at another family's fitted values (fitted with the default protocol) "
            "and fit the rest: useful with one or two runs of a new family."
        )
        st.session_state[KEY + "borrow"] = [
            p for p in st.session_state.get(KEY + "borrow", []) if p in borrowable_names
        ]
        borrow = st.multiselect(
            "Parameters to borrow",
            borrowable_names,
            key=KEY + "borrow",
            format_func=lambda p: f"{p} ({law.descriptions.get(p, 'parameter')})",
        )
        source = st.selectbox("From family", other_families, key=KEY + "from", format_func=family_label)
    state.show_notices(notices)

    cutoff = float(cutoff_b) * 1e9
    default_runs = sorted(chosen) == sorted(pool_ids)
    state.write_params(
        {
            "family": family,
            "target": target,
            "n": fits.url_number(target_n) if hypothetical and target_n else None,
            "d": fits.url_number(target_d) if hypothetical and target_d else None,
            "runs": None if default_runs else chosen,
            "p": f"{fraction:g}",
            "ckpt": ckpt,
            "cutoff": fits.url_number(cutoff),
            "law": None if law.name == DEFAULT_LAW else law.name,
            "borrow": borrow or None,
            "from": source if borrow else None,
        }
    )

    # ---- Validation ---------------------------------------------------------------------------
    if input_errors:
        for error in input_errors:
            st.error(common.escape_md(error[:1].upper() + error[1:]), icon=":material/error:")
        return False
    if pool.empty:
        st.warning(
            "No run of this family is smaller than the target: choose a larger target.", icon=":material/warning:"
        )
        return False
    if not chosen:
        st.warning("Choose at least one run to fit on.", icon=":material/touch_app:")
        return False
    fixed: tuple[tuple[str, float], ...] = ()
    if borrow:
        borrowed = fits.borrowable(version, source, None, law.name)
        if isinstance(borrowed, AnalysisFailure):
            st.error(
                f"The law of {common.escape_md(source)} could not be fitted, so nothing can be borrowed from it: "
                f"{common.escape_md(borrowed.message)}",
                icon=":material/error:",
            )
            return False
        fixed = tuple((name, float(borrowed[name])) for name in sorted(borrow))

    request = FitRequest(
        run_ids=tuple(sorted(chosen)),
        target_run=None if hypothetical else target,
        target_params=target_n,
        target_tokens=target_d,
        fraction=float(fraction),
        final_only=ckpt == "final",
        min_tokens=cutoff,
        fixed=fixed,
        law=law.name,
    )
    staged = fits.staged_analysis(
        version,
        family,
        uploaded if family == fits.UPLOADED else None,
        request,
        None if family == fits.UPLOADED else loss.unit,  # an upload's unit is its file's, unknown here
    )
    with st.spinner("Fitting..."):
        result = staged.fitted
    if isinstance(result, AnalysisFailure):
        show = st.warning if result.kind == "selection" else st.error
        show(
            f"The law cannot be fitted on this selection: {common.escape_md(result.message, 400)}",
            icon=":material/warning:",
        )
        longest = float(runs.loc[runs["run_id"].isin(chosen), "max_tokens"].max())
        if longest <= cutoff:
            st.info(
                f"Every checkpoint of the chosen runs is at or below the cutoff: the longest run sees "
                f"{common.escape_md(units.format_tokens(longest))}. Lower “Drop checkpoints ≤” (e.g. to 0) to fit "
                "this family.",
                icon=":material/lightbulb:",
            )
        else:
            st.caption("Try more runs, a larger fraction of training, intermediate checkpoints or a lower cutoff.")
        return False
    headline = headline_slot.container()
    largest_fitted = float(result.points.runs["num_params"].max())
    if hypothetical and result.target_params <= largest_fitted:
        headline.info(
            f"The target's size, {units.format_params(result.target_params)}, lies inside the size range of "
            f"the runs fitted ({units.format_params(result.points.runs['num_params'].min(), unit=False)} to "
            f"{units.format_params(largest_fitted)}): runs larger than the target are used too, so this is an "
            "interpolation in model size rather than an extrapolation, and the fit's compute can exceed the "
            "target's.",
            icon=":material/info:",
        )
    view = _View(
        family=family,
        family_label=labels.get(family, family),
        target=target,
        target_name="Hypothetical target" if hypothetical else fits.target_label(runs, target),
        hypothetical=hypothetical,
        chosen=tuple(chosen),
        fraction=float(fraction),
        ckpt=ckpt,
        cutoff=cutoff,
        borrow=tuple(borrow),
        source=source,
        loss=loss,
        level_options=tuple(level_options),
    )
    # Headline first (prediction, interval, chart), then the identifiability profile, then the bootstrap.
    # The headline writes what the report shows into ``latest`` (the same object on its fragment's own reruns).
    latest: dict[str, Any] = {}
    with headline:
        _headline(view, staged, curves, runs, latest)
    st.session_state[KEY + "drawn"] = True
    with details:
        _details(view, staged, runs, latest)
    return True


@dataclass(frozen=True)
class _View:
    """What the page shows the analysis for (the widgets' values, read once per run)."""

    family: str
    family_label: str
    target: str
    target_name: str
    hypothetical: bool
    chosen: tuple[str, ...]
    fraction: float
    ckpt: str
    cutoff: float
    borrow: tuple[str, ...]
    source: str
    loss: MetricLabel
    level_options: tuple[str, ...]

    def target_text(self, result: Analysis) -> str:
        size = f"{units.format_params(result.target_params)}, {units.format_tokens(result.target_tokens)}"
        return f"hypothetical, {size}" if self.hypothetical else f"{self.target_name} ({size})"


def _interval_note(interval: object, missing: str, family: str) -> str:
    """The text next to the predicted loss: the calibrated interval, or why there is none."""
    if isinstance(interval, calibration.PredictionInterval):
        note = f"{units.format_level(interval.level)} interval {interval.low:.3f}–{interval.high:.3f}"
        if family == fits.UPLOADED:
            note += f" ({calibration.NEW_SOURCE_NOTE})"
        return note
    if isinstance(interval, (calibration.Refusal, str)):
        return str(interval)
    return f"No calibrated interval: {missing.rstrip('.')}." if missing else ""


def _metric_cards(view: _View, result: Analysis) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """The actual loss, ARE and compute share cards (the predicted loss has its own); returns them for the report."""
    cards = st.columns(4)
    out: list[tuple[str, str, str]] = []
    evaluation = result.evaluation
    if evaluation is not None:
        cards[1].metric(
            "Actual loss", f"{evaluation.actual_final:.3f}", help="The target's loss at its final checkpoint."
        )
        cards[1].caption(f"{view.target_name[:40]} at {units.format_tokens(evaluation.final_tokens)}")
        cards[2].metric(
            "ARE (last 30%)",
            units.format_percent(evaluation.are_mean),
            help="Absolute relative error |predicted − actual| / actual, averaged over the target's "
            "checkpoints in the last 30% of its training.",
        )
        cards[2].caption(f"at the final checkpoint: {units.format_percent(evaluation.are_final)}")
        out += [
            ("Actual loss", f"{evaluation.actual_final:.3f}", ""),
            (
                "ARE (last 30%)",
                units.format_percent(evaluation.are_mean),
                f"final checkpoint: {units.format_percent(evaluation.are_final)}",
            ),
        ]
    else:
        cards[1].metric("Actual loss", units.MISSING)
        cards[1].caption("hypothetical target: no real loss")
        cards[2].metric("ARE", units.MISSING)
        cards[2].caption("needs a real target run")
    share = result.compute_share
    target_compute = laws.compute_from(result.target_params, result.target_tokens)
    cards[3].metric(
        "Fit compute share",
        units.format_share(share, at_most=SHARE_CARD_MAX),
        help="Sum over the fitted runs of 6·N·D (furthest checkpoint used), divided by 6·N·D of the target.",
    )
    fit_text, target_text = _flops_pair(result.points.compute_flops, target_compute)
    beyond_card = f": {units.format_share(share)}" if share > SHARE_CARD_MAX else ""
    cards[3].caption(f"{fit_text} of {target_text}{beyond_card}")
    above = ABOVE_TARGET_NOTE if share > 1 else ""
    if above:
        cards[3].caption(above)
    out.append(("Fit compute share", units.format_share(share), f"{fit_text} of {target_text}. {above}".strip()))
    return cards, out


def _figure(view: _View, result: Analysis, curves: pd.DataFrame, runs: pd.DataFrame, interval: object) -> go.Figure:
    points = result.points
    figure = analysis_charts.fit_figure(
        curves=curves,
        fit_runs=runs[runs["run_id"].isin(view.chosen)],
        used=pd.DataFrame(
            {
                "run_id": points.run_ids.astype(str),
                "num_params": points.num_params,
                "tokens_seen": points.tokens_seen,
                "loss": points.loss,
            }
        ),
        params=dict(result.fit.params),
        target_label=view.target_name,
        target_params=result.target_params,
        target_tokens=result.target_tokens,
        target_run=None if view.hypothetical else view.target,
        predicted=result.predicted_loss,
        band=None,
        grid=fits.target_grid(result, curves),
        law=result.fit.law.name,
        y_title=_loss_axis_title(view.loss, view.family),
        min_tokens=view.cutoff,
    )
    charts.add_context(
        figure,
        title=f"{view.family_label}: {view.loss.name} of {view.target_name}, fitted and extrapolated",
        inputs=f"Target {view.target_text(result)} · "
        f"{_fitted_runs_text(view, result, runs)} · "
        f"fraction of training {view.fraction:g} · "
        f"{CHECKPOINTS[view.ckpt].lower()} · checkpoints at or below "
        f"{units.format_tokens(view.cutoff)} dropped"
        + (f" · {', '.join(view.borrow)} borrowed from {view.source}" if view.borrow else "")
        + f" · {result.fit.law.formula}, loss in {view.loss.unit}",
    )
    if isinstance(interval, calibration.PredictionInterval):
        # The calibrated interval is measured for the target's final loss only, so it is drawn there
        # (an error bar), not as a band along the curve.
        predicted = result.predicted_loss
        figure.add_trace(
            go.Scatter(
                x=[result.target_tokens],
                y=[predicted],
                mode="markers",
                marker={"color": "#d62728", "size": 1},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [interval.high - predicted],
                    "arrayminus": [predicted - interval.low],
                    "color": "#d62728",
                    "thickness": 2,
                    "width": 8,
                },
                name=f"{units.format_level(interval.level)} calibrated interval",
                legendgroup="target",
                hovertemplate=f"{units.format_level(interval.level)} interval {interval.low:.4g}–{interval.high:.4g}<extra></extra>",
            )
        )
    return figure


@st.fragment
@common.guarded
def _headline(
    view: _View, staged: StagedAnalysis, curves: pd.DataFrame, runs: pd.DataFrame, latest: dict[str, Any]
) -> None:
    """The prediction with its calibrated interval, the other cards and the chart; the interval level
    and the chart's image format rerun only this part."""
    result = staged.fitted
    assert isinstance(result, Analysis)  # the page returned before on a failure
    st.markdown(
        f"Loss fitted and predicted: **{common.escape_md(view.loss.name)}**, in {common.escape_md(view.loss.unit)} "
        "(the predicted and actual losses below)."
    )
    cards, metric_cards = _metric_cards(view, result)
    _valid("level", list(view.level_options), f"{round(fits.DEFAULT_LEVEL * 100)}")
    cal, missing, _meta_key = fits.calibration_or_reason()
    with cards[0]:
        level_slot = st.empty()
    level = int(st.session_state[KEY + "level"]) / 100
    interval = staged.interval(cal, level)
    note = _interval_note(interval, missing, view.family)
    with level_slot.container():
        st.metric(
            "Predicted loss",
            f"{result.predicted_loss:.3f}",
            help=f"The fitted law at the target's N and final D. The {units.format_level(level)} interval is calibrated "
            f"on the collection's measured extrapolation errors ({calibration.METHOD}). Its coverage is "
            "measured leaving whole source groups out of the calibration, as your own runs are new: the "
            "Reliability page shows the realised share for every level and every source group. It replaces "
            "the run-bootstrap band, which measures only parameter uncertainty.",
        )
        st.caption(common.escape_md(note, 400))
        evidence = result.backtest_note(interval) if isinstance(interval, calibration.PredictionInterval) else ""
        if evidence:
            st.caption(common.escape_md(evidence, 300))
    metric_cards.insert(0, ("Predicted loss", f"{result.predicted_loss:.3f}", note))
    figure = _figure(view, result, curves, runs, interval)
    image_format = st.session_state.get(KEY + "image", "png")
    st.plotly_chart(figure, key=KEY + "chart", config=analysis_charts.plotly_config("scaleplan-fit", image_format))
    shown = isinstance(interval, calibration.PredictionInterval)
    st.caption(
        "Filled markers: checkpoints used in the fit; hollow: not used (before the cutoff, beyond the fraction "
        "or not final); grey area: at or below the early-token cutoff. Dashed: the fitted law at each run's size. "
        "Red: the target's predicted curve"
        + (f"; red bar: the {units.format_level(level)} calibrated interval of the final loss" if shown else "")
        + ("; black diamonds: the target's real losses." if not view.hypothetical else ".")
    )
    controls = st.columns([2, 2, 6], vertical_alignment="bottom")
    level_pct = controls[0].selectbox(
        "Interval level",
        list(view.level_options),
        key=KEY + "level",
        format_func=_level_label,
        help="Level of the calibrated prediction interval: the share of held-out "
        "designs of the collection whose real loss should fall inside intervals built "
        "this way (measured leaving whole source groups out; see the Reliability page).",
    )
    state.write_params({"level": None if int(level_pct) / 100 == fits.DEFAULT_LEVEL else level_pct})
    controls[1].segmented_control(
        "Chart image",
        ["png", "svg"],
        key=KEY + "image",
        format_func=str.upper,
        default="png",
        help="Format of the camera button in the chart's toolbar.",
    )
    with st.spinner("Identifiability checks..."):
        warnings = staged.warnings
    for warning in warnings:
        st.warning(common.escape_md(warning.message, 600), icon=":material/report:")
    latest.update(metrics=metric_cards, figure=figure, level=level, warnings=[w.message for w in warnings])


def _details(view: _View, staged: StagedAnalysis, runs: pd.DataFrame, latest: dict[str, Any]) -> None:
    """The fitted parameters (with their bootstrap intervals when asked for), the runs in the fit, the
    downstream task and the report."""
    result = staged.fitted
    assert isinstance(result, Analysis)
    # The bootstrap (N_BOOT refits, ~1-3 s of the server's CPU for every new selection) is on demand:
    # the prediction and its calibrated interval do not depend on it.
    with_boot = st.toggle(
        f"Parameter intervals by bootstrap ({fits.N_BOOT} refits)",
        key=KEY + "boot",
        help="Refits the law on resampled data (whole runs when the fit has 6 sizes or more, else blocks of "
        "checkpoints within each run) to give each fitted parameter a 90% interval: parameter uncertainty "
        "only; the calibrated interval of the prediction above is measured on the collection. Takes a few "
        "seconds for each new selection while it is on.",
    )
    state.write_params({"boot": "1" if with_boot else None})
    boot: fitting.BootstrapResult | AnalysisFailure | None = None
    boot_warnings: list[str] = []
    if with_boot:
        with st.spinner(f"Bootstrap ({fits.N_BOOT} refits) for the parameter intervals..."):
            boot = staged.bootstrap
        boot_warnings = [w.message for w in staged.bootstrap_warnings]
        if isinstance(boot, AnalysisFailure):
            # A failed bootstrap (every replicate failed) still leaves the calibrated interval; say why the
            # parameter intervals are missing.
            boot_warnings.append(f"No bootstrap intervals: {boot.message}")
    for text in boot_warnings:
        st.warning(common.escape_md(text, 600), icon=":material/report:")
    intervals = staged.parameter_intervals(0.9) if with_boot else {}
    fitted_law = result.fit.law
    table = pd.DataFrame(
        [
            {
                "Parameter": name,
                "Meaning": fitted_law.descriptions.get(name, ""),
                "Value": units.format_number(result.fit.params[name]),
                "90% interval (bootstrap)": units.format_interval(*intervals[name])
                if name in intervals
                else units.MISSING,
                "Source": f"borrowed from {view.source}" if name in view.borrow else "fitted",
            }
            for name in fitted_law.param_names
        ]
    )
    left, right = st.columns([3, 2], gap="large")
    left.subheader("Fitted parameters")
    left.markdown(common.markdown_table(table))
    boot_note = ""
    if isinstance(boot, fitting.BootstrapResult):
        scheme = {"runs": "runs resampled", "blocks": "checkpoints resampled in blocks within each run"}.get(
            boot.scheme, boot.scheme
        )
        boot_note = (
            f"Parameter intervals: bootstrap, {boot.n_boot} replicates ({scheme}); "
            f"{boot.n_failed} failed to fit" + (" and are left out." if boot.n_failed else ".")
        )
        left.caption(boot_note)
    elif not with_boot:
        left.caption("Parameter intervals: turn on the bootstrap above to compute them.")
    report_boot_note = boot_note or ("" if with_boot else "Parameter intervals: not computed (the bootstrap was off).")
    used_runs = result.points.runs.merge(runs[["run_id", "label"]], on="run_id", how="left")
    runs_out = pd.DataFrame(
        {
            "Run": used_runs["label"],
            "Parameters": used_runs["num_params"].map(lambda n: units.format_params(n, unit=False)),
            "Tokens used (furthest)": used_runs["max_tokens_used"].map(lambda d: units.format_tokens(d, unit=False)),
        }
    )
    right.subheader("Runs in the fit")
    right.markdown(common.markdown_table(runs_out))
    # Imported here, after the headline: the task section's core.downstream imports scipy.stats (~1-3 s cold).
    from scaleplan.dashboard.views import fit_task

    fit_task.render(
        view.family,
        result,
        None if view.hypothetical else view.target,
        view.target_name,
        latest,
        view.loss,
        _loss_axis_title(view.loss, view.family),
    )

    borrowed = dict(result.fit.params)
    inputs = [
        ("Family", view.family_label),
        (
            "Target",
            view.target_name
            if not view.hypothetical
            else f"hypothetical: {units.format_params(result.target_params)}, "
            f"{units.format_tokens(result.target_tokens)}",
        ),
        (
            "Runs in the fit",
            ", ".join(fits.target_label(runs, r) for r in runs["run_id"] if r in set(result.points.runs["run_id"])),
        ),
        ("Fraction of training used", f"{view.fraction:g}"),
        ("Checkpoints", CHECKPOINTS[view.ckpt]),
        ("Checkpoints dropped at or below", units.format_tokens(view.cutoff)),
        (
            "Borrowed parameters",
            ", ".join(f"{n} = {units.format_number(borrowed[n])} from {view.source}" for n in view.borrow) or "none",
        ),
        ("Objective", "Huber on log loss (Hoffmann et al. approach 3)"),
    ]

    def build() -> str:
        # The headline's latest state (its fragment may have rerun with another level since).
        level = latest["level"]
        return report.build_report(
            title="scaleplan: fit and extrapolate",
            subtitle=f"Family {view.family_label}",
            inputs=inputs,
            metrics=latest["metrics"],
            figures=[("Observed and predicted loss", latest["figure"])],
            tables=[("Fitted parameters", table), ("Runs in the fit", runs_out)],
            notes=[
                f"Law: {fitted_law.title}, {fitted_law.formula}; N in parameters, D in tokens seen. "
                "ARE = |predicted - actual| / actual.",
                f"Prediction interval: {units.format_level(level)}, {calibration.METHOD}; its coverage is measured "
                "leaving each source group of the collection out (`scaleplan reproduce calibration`).",
                *([report_boot_note] if report_boot_note else []),
            ],
            warnings=latest["warnings"] + boot_warnings,
        )

    st.download_button(
        "Download report (HTML)",
        icon=":material/download:",
        on_click="ignore",
        mime="text/html",
        file_name="scaleplan-fit-report.html",
        data=build,
    )


ABOVE_TARGET_NOTE = analysis.ABOVE_TARGET_NOTE


def _flops_pair(fit_flops: float, target_flops: float) -> tuple[str, str]:
    """The fit's and the target's compute with the fewest significant digits (2 to 5) at which two
    different counts read differently ("2.06e22 FLOPs of 2.09e22 FLOPs", not "2.1e22 of 2.1e22")."""
    for decimals in range(1, 5):
        pair = units.format_flops(fit_flops, decimals=decimals), units.format_flops(target_flops, decimals=decimals)
        if pair[0] != pair[1] or fit_flops == target_flops:
            return pair
    return pair


def _fitted_runs_text(view: _View, result: Analysis, runs: pd.DataFrame) -> str:
    """The runs that contribute points to the fit, their sizes, and the selected runs that contribute none
    (why: every checkpoint at or below the cutoff, or none left by the fraction or final-only choice)."""
    contributing = set(result.points.runs["run_id"].astype(str))
    count = len(contributing)
    text = f"{count} run{'s' if count != 1 else ''} in the fit ({_fitted_sizes(result.points.num_params)})"
    idle = runs[runs["run_id"].isin(view.chosen) & ~runs["run_id"].astype(str).isin(contributing)]
    if idle.empty:
        return text
    cut = int((idle["max_tokens"] <= view.cutoff).sum())
    rest = len(idle) - cut
    parts = []
    if cut:
        parts.append(f"{cut} selected run{'s have' if cut != 1 else ' has'} no checkpoint after the cutoff")
    if rest:
        parts.append(
            f"{rest} selected run{'s have' if rest != 1 else ' has'} no checkpoint within the fraction of training"
            + (" or final" if view.ckpt == "final" else "")
        )
    return text + "; " + "; ".join(parts)


def _fitted_sizes(num_params: np.ndarray) -> str:
    """The sizes the fit used, not the family's: "3 sizes, 70M-410M params" or "1.4B params"."""
    sizes = np.unique(np.asarray(num_params, dtype=float))
    if sizes.size == 1:
        return units.format_params(sizes[0])
    return f"{sizes.size} sizes, {units.format_params(sizes[0], unit=False)}–{units.format_params(sizes[-1])}"


common.run_page(render)

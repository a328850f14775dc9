"""Explore the collection: training curves of chosen families, filtered, with the runs table.

URL state (validated by dashboard.state): ``?family=pythia&family=opt&metric=val/loss&x=flops``;
``metric=each`` draws every family on its own default metric (one chart per metric), the default
when the chosen families' default metrics differ.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from scaleplan.core import units
from scaleplan.core.metrics import metric_label
from scaleplan.dashboard import charts, common, state

KEY = "explore."
DEFAULT_FAMILIES = ("pythia", "gpt3", "opt")  # the first one present is the default selection
X_AXES = {"tokens": "Tokens", "flops": "Compute (FLOPs)"}
X_COLUMNS = {"tokens": "tokens_seen", "flops": "flops"}
MAX_FAMILIES = 12
MAX_POINTS_PER_RUN = 400
COMPUTE_COLUMN = "Compute (last, FLOPs)"  # on screen as text (number columns stop near 1e20), in the CSV a number
EACH = "each"  # the metric choice "each family's default metric"


def _on_family_change() -> None:
    """Families changed: the metric and the filters go back to their defaults."""
    st.session_state[KEY + "metric"] = None
    for name in ("arch", "data", "size"):
        st.session_state.pop(KEY + name, None)


def _defaults_of(families: pd.DataFrame, chosen: list[str], metrics: pd.DataFrame) -> dict[str, str]:
    """``{family: its default metric}`` for the chosen families that report their default metric."""
    defaults = families.set_index("family")["default_metric"]
    observed = set(metrics["metric"])
    return {f: str(defaults[f]) for f in chosen if f in defaults.index and defaults[f] in observed}


def _default_metric(defaults: dict[str, str], metrics: pd.DataFrame) -> str:
    """The shared default metric of the chosen families, or EACH when their defaults differ."""
    distinct = set(defaults.values())
    if len(distinct) == 1:
        return distinct.pop()
    return EACH if distinct else str(metrics["metric"].iloc[0])


def _metric_option(metric: str, kinds: dict[str, str], default_for: dict[str, list[str]]) -> str:
    if metric == EACH:
        return "Each family's default metric"
    text = metric_label(metric, kinds.get(metric)).title
    owners = default_for.get(metric)
    return f"{text}  (default of {', '.join(owners)})" if owners else text


def render() -> None:
    version = common.db_version()
    families = common.cached_families(version)
    names = families["family"].tolist()
    default_family = next((f for f in DEFAULT_FAMILIES if f in names), names[0] if names else None)

    st.title("Explore the collection")
    st.caption(
        "Training curves of the public runs: pick families, a metric and filters. "
        f"Long curves are thinned to at most {MAX_POINTS_PER_RUN} points per run for drawing."
    )

    family_param = state.read_param(
        "family",
        allowed=names,
        default=[default_family] if default_family else [],
        multi=True,
        label="family",
        max_count=MAX_FAMILIES,
    )
    x_param = state.read_param("x", allowed=list(X_AXES), default="tokens", label="x axis", describe=X_AXES.get)
    first_visit = state.seed_widget(KEY + "family", family_param)
    state.seed_widget(KEY + "x", x_param)
    notices = [family_param, x_param] if first_visit else []

    top = st.columns([5, 4], vertical_alignment="bottom")
    chosen = top[0].multiselect(
        "Families",
        names,
        key=KEY + "family",
        on_change=_on_family_change,
        max_selections=MAX_FAMILIES,
        placeholder="Choose one or more families",
    )
    if not chosen:
        state.show_notices(notices)
        state.write_params({"family": None, "metric": None, "x": st.session_state.get(KEY + "x")})
        st.info("Choose at least one family above to see its training curves.", icon=":material/touch_app:")
        return

    metrics = common.cached_family_metrics(version, tuple(chosen))
    if metrics.empty:
        st.info("The chosen families have no observations.")
        return
    defaults = _defaults_of(families, chosen, metrics)
    default_for: dict[str, list[str]] = {}
    for family, own in defaults.items():
        default_for.setdefault(own, []).append(family)
    kinds = dict(zip(metrics["metric"], metrics["kind"]))
    metric_names = ([EACH] if len(chosen) > 1 else []) + metrics["metric"].tolist()
    default_metric = _default_metric(defaults, metrics)

    def metric_option(metric: str) -> str:
        return _metric_option(metric, kinds, default_for)

    metric_param = state.read_param(
        "metric", allowed=metric_names, default=default_metric, label="metric", describe=metric_option
    )
    if first_visit:
        state.seed_widget(KEY + "metric", metric_param)
        notices.append(metric_param)
    state.keep_valid(KEY + "metric", metric_names)
    st.session_state.setdefault(KEY + "metric", default_metric)
    if st.session_state[KEY + "metric"] is None:
        st.session_state[KEY + "metric"] = default_metric
    metric = top[1].selectbox(
        "Metric",
        metric_names,
        key=KEY + "metric",
        format_func=metric_option,
        help="Each family's default metric is marked with the family's name: its "
        "reference loss. With families whose defaults differ, each is drawn on its own.",
    )
    groups = {m: fams for m, fams in default_for.items()} if metric == EACH else {metric: list(chosen)}
    state.show_notices(notices)

    # Filters whose options come from the runs of the chosen families that report the metric(s).
    all_runs = pd.concat(
        [common.cached_explore_runs(version, tuple(fams), m).assign(metric=m) for m, fams in groups.items()],
        ignore_index=True,
    )
    architectures = sorted(str(a) for a in all_runs["architecture"].unique())
    training = sorted(str(t) for t in all_runs["training_data"].unique())
    sizes = sorted(float(n) for n in all_runs["num_params"].unique())
    state.keep_valid(KEY + "arch", architectures, multi=True)
    state.keep_valid(KEY + "data", training, multi=True)
    state.keep_valid(KEY + "size", sizes)

    filters = st.columns([2, 4, 5], vertical_alignment="bottom")
    arch = filters[0].multiselect("Architecture", architectures, key=KEY + "arch", placeholder="All")
    data = filters[1].multiselect("Training data", training, key=KEY + "data", placeholder="All")
    if len(sizes) > 1:
        low, high = filters[2].select_slider(
            "Model size (parameters)",
            sizes,
            value=(sizes[0], sizes[-1]),
            key=KEY + "size",
            format_func=lambda n: units.format_params(n, unit=False),
        )
    else:
        low = high = sizes[0] if sizes else None
        filters[2].caption(f"Model size: {units.format_params(low)}" if sizes else "No runs.")

    bounds = (low, high) if len(sizes) > 1 else (None, None)
    runs = pd.concat(
        [
            common.cached_explore_runs(
                version, tuple(fams), m, tuple(arch) or None, tuple(data) or None, *bounds
            ).assign(metric=m)
            for m, fams in groups.items()
        ],
        ignore_index=True,
    )
    state.write_params({"family": chosen, "metric": metric})
    missing = [f for f in chosen if f not in set(all_runs["family"])]
    if missing:
        names = ", ".join(common.escape_md(f) for f in missing)
        if metric == EACH:
            st.info(
                f"Not shown: {names} (no values of {'its' if len(missing) == 1 else 'their'} default metric).",
                icon=":material/visibility_off:",
            )
        else:
            st.info(
                f"Not shown: {names}, which report{'s' if len(missing) == 1 else ''} no "
                f"{common.escape_md(metric_label(metric, kinds.get(metric)).name)}. Choose “Each family's "
                "default metric” to see every family on its own metric.",
                icon=":material/visibility_off:",
            )
    if runs.empty:
        st.info(
            "No run matches these filters. Widen the size range or clear the architecture and training-data filters.",
            icon=":material/filter_alt_off:",
        )
        return

    described = metrics.set_index("metric")["description"]
    _charts(version, groups, runs, kinds, described, tuple(arch), tuple(data))

    st.subheader("Selected runs")
    several_metrics = len(groups) > 1
    # The columns a reader compares first (which run, how big, its final value) come first, so they are in
    # view at 1,400 px before the table scrolls sideways; descriptions and the run id follow.
    table = pd.DataFrame(
        {
            "Run": runs["model_name"].fillna(runs["run_id"]),
            "Family": runs["family"],
            "Parameters": runs["num_params"],
            "Metric": [metric_label(m, kinds.get(m)).title for m in runs["metric"]],
            "Final value": runs["final_value"],
            "Tokens seen (last)": runs["max_tokens"],
            # as text: Streamlit's number columns cannot show values above ~1e20
            COMPUTE_COLUMN: [units.format_flops(v, unit=False, decimals=2) for v in runs["max_flops"]],
            "Points": runs["num_points"],
            "Seed": runs["seed"],
            "Architecture": runs["architecture"],
            "Training data": runs["training_data"],
            "Run id": runs["run_id"],
        }
    )
    if not several_metrics:
        only = metric_label(metric, kinds.get(metric))
        table = table.drop(columns="Metric").rename(columns={"Final value": f"Final {only.title}"})
    final_column = [c for c in table.columns if c.startswith("Final ")][0]
    table = table.dropna(axis="columns", how="all")  # e.g. no seeds: no empty column
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(table), 420),
        column_config={
            "Parameters": st.column_config.NumberColumn(format="compact"),
            "Seed": st.column_config.NumberColumn(format="%d"),
            "Tokens seen (last)": st.column_config.NumberColumn(format="compact"),
            final_column: st.column_config.NumberColumn(format="%.4f"),
        },
    )
    # The file holds numbers, not the screen's text: compute in FLOPs (the unit in the column's name).
    export = table.assign(**{COMPUTE_COLUMN: runs["max_flops"].to_numpy()}) if COMPUTE_COLUMN in table else table
    common.csv_download("Download this table (CSV)", export, "scaleplan-runs.csv")


@st.fragment
@common.guarded
def _charts(
    version: common.DbVersion | None,
    groups: dict[str, list[str]],
    runs: pd.DataFrame,
    kinds: dict[str, str],
    described: pd.Series,
    arch: tuple[str, ...],
    data: tuple[str, ...],
) -> None:
    """One chart per metric group with its options (x axis for all, log y for each) and the plotted
    points' download. A fragment: flipping the x axis or a log scale redraws the charts only, not the
    filters and the runs table above and below (which do not depend on them)."""
    x_key = "tokens"
    plotted_parts = []
    for index, (group_metric, group_families) in enumerate(groups.items()):
        group_runs = runs[runs["metric"] == group_metric]
        if group_runs.empty:
            continue
        label = metric_label(group_metric, kinds.get(group_metric))
        thinned = int((group_runs["num_points"] > MAX_POINTS_PER_RUN).sum())
        curves = common.cached_curves(version, tuple(group_runs["run_id"]), group_metric, MAX_POINTS_PER_RUN)
        if len(groups) > 1:
            st.markdown(
                f"**{common.escape_md(label.title)}** · "
                + ", ".join(common.escape_md(f) for f in group_families if f in set(group_runs["family"]))
            )
        options = st.columns([6, 2.4, 2], vertical_alignment="center")
        if not plotted_parts:  # the first chart's row holds the x axis of every chart
            x_key = (
                options[1].segmented_control(
                    "X axis", list(X_AXES), key=KEY + "x", format_func=X_AXES.get, required=True
                )
                or "tokens"
            )
            state.write_params({"x": x_key})
        x_column = X_COLUMNS[x_key]
        plotted = curves.dropna(subset=[x_column]).assign(metric=group_metric)
        plotted_parts.append(plotted)
        description = described.get(group_metric)
        options[0].caption(
            f"{len(group_runs)} run{'s' if len(group_runs) != 1 else ''} · {len(plotted):,} points drawn"
            + (
                f" · {thinned} long run{'s' if thinned != 1 else ''} thinned to {MAX_POINTS_PER_RUN} points"
                if thinned
                else ""
            )
            + (
                f" · {len(curves) - len(plotted):,} points without a FLOP count left out"
                if len(plotted) < len(curves)
                else ""
            )
            + (f" · {common.escape_md(description)}" if isinstance(description, str) else "")
        )
        low_value, high_value = plotted["value"].min(), plotted["value"].max()
        log_y = options[2].toggle(
            "Log y axis",
            value=units.log_axis_sensible(low_value, high_value),
            key=f"{KEY}log_y.{group_metric}",
            help="On by default when the values span a factor of ten or more.",
        )
        figure = _figure(
            version,
            tuple(group_runs["run_id"]),
            group_metric,
            kinds.get(group_metric),
            tuple(group_families),
            x_key,
            log_y,
            f"Families {', '.join(group_families)} · metric {group_metric} ({label.unit}) · "
            f"x axis {X_AXES[x_key].lower()}"
            + (f" · architecture {', '.join(arch)}" if arch else "")
            + (f" · training data {', '.join(data)}" if data else "")
            + _drawn_sizes(group_runs),
            _plotted=plotted,
        )
        st.plotly_chart(
            figure,
            key=KEY + "chart" + (f".{index}" if index else ""),
            config={"displaylogo": False, "toImageButtonOptions": {"filename": "scaleplan-explore"}},
        )
    columns = ["run_id", "family", "model_name", "num_params", "tokens_seen", "flops", "value", "metric"]
    points = pd.concat(plotted_parts, ignore_index=True)[columns] if plotted_parts else pd.DataFrame(columns=columns)
    common.csv_download("Download the plotted points (CSV)", points, "scaleplan-curves.csv")


@st.cache_resource(show_spinner=False, max_entries=32)
def _figure(
    version: common.DbVersion | None,
    run_ids: tuple[str, ...],
    metric: str,
    kind: str | None,
    families: tuple[str, ...],
    x_key: str,
    log_y: bool,
    inputs: str,
    *,
    _plotted: pd.DataFrame,
) -> go.Figure:
    """The chart of one metric's runs, built once per view and shared (Streamlit copies a figure to send
    it; nothing modifies this one): a widget flipped back, e.g. the x axis, redraws without rebuilding
    it (~0.1 s of hover text and validation for 8 runs of 400 points). ``_plotted`` is
    ``common.cached_curves`` of ``run_ids`` for ``metric`` without the rows lacking the x value: the
    other arguments determine it, so it is not part of the cache key."""
    label = metric_label(metric, kind)
    figure = charts.curves_figure(
        _plotted.assign(label=_plotted["model_name"].fillna(_plotted["run_id"])),
        x=X_COLUMNS[x_key],
        x_title=units.axis_title("Training compute", "FLOPs", log=True)
        if x_key == "flops"
        else units.axis_title("Tokens seen", "tokens", log=True),
        y_title=units.axis_title(label.name, label.unit, log=log_y),
        log_x=True,
        log_y=log_y,
        value_name=label.name,
        family_labels={f: f"{f} · {label.name}" for f in families},
    )
    return charts.add_context(figure, title=f"{label.name}: " + ", ".join(families), inputs=inputs)


def _drawn_sizes(group_runs: pd.DataFrame) -> str:
    """The sizes this chart draws (not the size filter's range): " · 70M to 12B params" or " · 1.4B params"."""
    drawn = group_runs["num_params"].dropna()
    if drawn.empty:
        return ""
    low, high = float(drawn.min()), float(drawn.max())
    if low == high:
        return f" · {units.format_params(low)}"
    return f" · {units.format_params(low, unit=False)} to {units.format_params(high)}"


common.run_page(render)

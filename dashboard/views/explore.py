"""Explore the collection: training curves of chosen families, filtered, with the runs table.

URL state (validated by dashboard.state): ``?family=pythia&family=opt&metric=val/loss&x=flops``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from scaleplan.core import units
from scaleplan.dashboard import charts, common, state

KEY = "explore."
DEFAULT_FAMILIES = ("pythia", "gpt3", "opt")  # the first one present is the default selection
X_AXES = {"tokens": "Tokens", "flops": "Compute (FLOPs)"}
MAX_FAMILIES = 12
MAX_POINTS_PER_RUN = 400


def _on_family_change() -> None:
    """Families changed: the metric and the filters go back to their defaults."""
    st.session_state[KEY + "metric"] = None
    for name in ("arch", "data", "size"):
        st.session_state.pop(KEY + name, None)


def _default_metric(families: pd.DataFrame, chosen: list[str], metrics: pd.DataFrame) -> str:
    """The chosen families' default metric reported by most of them (the first family's on a tie)."""
    defaults = families.set_index("family")["default_metric"]
    reach = metrics.set_index("metric")["num_families"]
    candidates = [defaults[f] for f in chosen if f in defaults.index and defaults[f] in reach.index]
    if not candidates:
        return str(metrics["metric"].iloc[0])
    return max(candidates, key=lambda m: reach[m])  # max keeps the first of equals


def render() -> None:
    version = common.db_version()
    families = common.cached_families(version)
    names = families["family"].tolist()
    default_family = next((f for f in DEFAULT_FAMILIES if f in names), names[0] if names else None)

    st.title("Explore the collection")
    st.caption("Training curves of the public runs: pick families, a metric and filters. "
               f"Long curves are thinned to at most {MAX_POINTS_PER_RUN} points per run for drawing.")

    family_param = state.read_param("family", allowed=names, default=[default_family] if default_family else [],
                                    multi=True, label="family", max_count=MAX_FAMILIES)
    x_param = state.read_param("x", allowed=list(X_AXES), default="tokens", label="x axis")
    first_visit = state.seed_widget(KEY + "family", family_param)
    state.seed_widget(KEY + "x", x_param)
    notices = [family_param, x_param] if first_visit else []

    top = st.columns([5, 4, 2.4], vertical_alignment="bottom")
    chosen = top[0].multiselect("Families", names, key=KEY + "family", on_change=_on_family_change,
                                max_selections=MAX_FAMILIES, placeholder="Choose one or more families")
    if not chosen:
        state.show_notices(notices)
        state.write_params({"family": None, "metric": None, "x": st.session_state.get(KEY + "x")})
        st.info("Choose at least one family above to see its training curves.", icon=":material/touch_app:")
        return

    metrics = common.cached_family_metrics(version, tuple(chosen))
    if metrics.empty:
        st.info("The chosen families have no observations.")
        return
    metric_names = metrics["metric"].tolist()
    default_metric = _default_metric(families, chosen, metrics)
    metric_param = state.read_param("metric", allowed=metric_names, default=default_metric, label="metric")
    if first_visit:
        state.seed_widget(KEY + "metric", metric_param)
        notices.append(metric_param)
    state.keep_valid(KEY + "metric", metric_names)
    st.session_state.setdefault(KEY + "metric", default_metric)
    defaults = set(metrics.loc[metrics["is_default"], "metric"])
    metric = top[1].selectbox("Metric", metric_names, key=KEY + "metric",
                              format_func=lambda m: f"{m}  (default)" if m in defaults else m,
                              help="Defaults first: each family's reference loss.")
    x_key = top[2].segmented_control("X axis", list(X_AXES), key=KEY + "x", format_func=X_AXES.get,
                                     required=True) or "tokens"
    state.show_notices(notices)

    # Filters whose options come from the runs of the chosen families that report the metric.
    all_runs = common.cached_explore_runs(version, tuple(chosen), metric)
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
        low, high = filters[2].select_slider("Model size (parameters)", sizes, value=(sizes[0], sizes[-1]),
                                             key=KEY + "size",
                                             format_func=lambda n: units.format_params(n, unit=False))
    else:
        low = high = sizes[0] if sizes else None
        filters[2].caption(f"Model size: {units.format_params(low)}" if sizes else "No runs.")

    runs = common.cached_explore_runs(version, tuple(chosen), metric, tuple(arch) or None, tuple(data) or None,
                                      low if len(sizes) > 1 else None, high if len(sizes) > 1 else None)
    state.write_params({"family": chosen, "metric": metric, "x": x_key})
    if runs.empty:
        st.info("No run matches these filters. Widen the size range or clear the architecture "
                "and training-data filters.", icon=":material/filter_alt_off:")
        return

    missing = [f for f in chosen if f not in set(all_runs["family"])]
    if missing:
        st.caption(f"Not shown (no {common.escape_md(metric)} values): "
                   + ", ".join(common.escape_md(f) for f in missing) + ".")
    curves = common.cached_curves(version, tuple(runs["run_id"]), metric, MAX_POINTS_PER_RUN)
    info = metrics.set_index("metric").loc[metric]
    x_column = "flops" if x_key == "flops" else "tokens_seen"
    plotted = curves.dropna(subset=[x_column])
    low_value, high_value = plotted["value"].min(), plotted["value"].max()

    options = st.columns([6, 2], vertical_alignment="center")
    thinned = int((runs["num_points"] > MAX_POINTS_PER_RUN).sum())
    options[0].caption(
        f"{len(runs)} run{'s' if len(runs) != 1 else ''} · {len(plotted):,} points drawn"
        + (f" · {thinned} long run{'s' if thinned != 1 else ''} thinned to {MAX_POINTS_PER_RUN} points" if thinned else "")
        + (f" · {len(curves) - len(plotted):,} points without a FLOP count left out" if len(plotted) < len(curves) else "")
        + (f" · {common.escape_md(info['description'])}" if isinstance(info['description'], str) else ""))
    log_y = options[1].toggle("Log y axis", value=units.log_axis_sensible(low_value, high_value),
                              help="On by default when the values span a factor of ten or more.")

    chart_data = plotted.assign(label=plotted["model_name"].fillna(plotted["run_id"]))
    unit = units.metric_unit(info["kind"])
    x_title = (units.axis_title("Training compute", "FLOPs", log=True) if x_key == "flops"
               else units.axis_title("Tokens seen", "tokens", log=True))
    figure = charts.curves_figure(chart_data, x=x_column, x_title=x_title,
                                  y_title=units.axis_title(metric, unit, log=log_y), log_x=True, log_y=log_y,
                                  value_name=metric)
    st.plotly_chart(figure, key=KEY + "chart", config={"displaylogo": False})

    st.subheader("Selected runs")
    table = pd.DataFrame({
        "Run": runs["model_name"].fillna(runs["run_id"]),
        "Family": runs["family"],
        "Parameters": runs["num_params"],
        "Architecture": runs["architecture"],
        "Training data": runs["training_data"],
        "Seed": runs["seed"],
        "Points": runs["num_points"],
        "Tokens seen (last)": runs["max_tokens"],
        # as text: Streamlit's number columns cannot show values above ~1e20
        "Compute (last, FLOPs)": [units.format_flops(v, unit=False, decimals=2) for v in runs["max_flops"]],
        f"Final {metric}": runs["final_value"],
        "Run id": runs["run_id"],
    })
    table = table.dropna(axis="columns", how="all")  # e.g. no seeds: no empty column
    st.dataframe(table, hide_index=True, width="stretch",
                 height=min(38 + 35 * len(table), 420),
                 column_config={
                     "Parameters": st.column_config.NumberColumn(format="compact"),
                     "Seed": st.column_config.NumberColumn(format="%d"),
                     "Tokens seen (last)": st.column_config.NumberColumn(format="compact"),
                     f"Final {metric}": st.column_config.NumberColumn(format="%.4f"),
                 })
    downloads = st.container(horizontal=True)
    downloads.download_button("Download this table (CSV)", table.to_csv(index=False).encode(),
                                 file_name="scaleplan-runs.csv", mime="text/csv", icon=":material/download:")
    points = plotted[["run_id", "family", "model_name", "num_params", "tokens_seen", "flops", "value"]].assign(
        metric=metric)
    downloads.download_button("Download the plotted points (CSV)", points.to_csv(index=False).encode(),
                                 file_name="scaleplan-curves.csv", mime="text/csv", icon=":material/download:")


common.run_page(render)

"""Budget planner: which small runs to train to predict a target, and how to train the target.

URL state (validated by dashboard.state)::

    ?mode=size&n=70e9&d=1.4e12&law=overtrain-rpj:gadre&unit=dollars&amount=20000&price=2&peak=989&mfu=40&are=5
    ?mode=compute&c=1e23&...

The expected accuracy of each study design is learned from the meta-analysis results
(``common.meta_path()``: $SCALEPLAN_META or data/meta.duckdb); without them the page offers to run
the sweep and still shows the compute-optimal allocation and the over-training trade-off.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from scaleplan.core import laws, planning, units
from scaleplan.dashboard import analysis_charts, common, fits, report, state, sweep, uploads

KEY = "planner."
MODES = {"size": "Model size and tokens", "compute": "Compute budget"}
UNITS = {"dollars": "Dollars", "gpu_hours": "GPU-hours"}
GADRE = fits.GADRE_FAMILY + ":gadre"
SHOWN_PLANS = 10


def _quantity(text: str, name: str, maximum: float) -> tuple[float | None, str | None]:
    try:
        return planning.parse_quantity(text, name=name, maximum=maximum), None
    except planning.PlanningError as error:
        return None, str(error)


@common.single_flight
@st.cache_data(show_spinner=False, max_entries=64)
def _plans(meta_key: tuple, target_params: float, target_tokens: float, study_flops: float, target_are: float,
           cost: tuple[tuple[str, float], ...], _results: pd.DataFrame) -> dict:
    """candidate_plans, cached on the results file's version instead of hashing the results."""
    try:
        plans = planning.candidate_plans(target_params, target_tokens, study_flops, results=_results,
                                         target_are=target_are, cost=dict(cost))
    except planning.MetaResultsMissingError as error:
        return {"ok": False, "missing": True, "message": str(error)}
    except planning.PlanningError as error:
        return {"ok": False, "missing": False, "message": str(error)}
    return {"ok": True, "plans": plans}


def _sizes_text(sizes) -> str:
    return ", ".join(units.format_count(n) for n in sizes)


def _plans_table(plans: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Runs": plans["num_runs"],
        "Model sizes (parameters)": plans["sizes"].map(_sizes_text),
        "Tokens per run": [rule if rule.startswith("20") else f"{units.format_tokens(t[0], unit=False)} ({rule})"
                           for rule, t in zip(plans["token_rule"], plans["tokens"])],
        "Seeds": plans["seeds"],
        "Compute (FLOPs)": plans["study_flops"].map(lambda v: units.format_flops(v, unit=False)),
        "Cost": plans["dollars"].map(units.format_dollars) if "dollars" in plans else units.MISSING,
        "Share of target compute": plans["compute_share"].map(_share),
        "ARE median": plans["are_median"].map(units.format_percent),
        "ARE 80th pct.": plans["are_p80"].map(units.format_percent),
        "Support": [f"{f} fits, {fam} famil{'y' if fam == 1 else 'ies'}" if f else "none"
                    for f, fam in zip(plans["fits"], plans["families"])],
    })


def render() -> None:
    version = common.db_version()
    families = common.cached_families(version)
    uploaded = uploads.uploaded_runs()
    law_options = [GADRE] + ([fits.UPLOADED] if uploaded is not None else []) \
        + families.loc[families["num_sizes"] >= 3, "family"].tolist()

    def law_label(f: str) -> str:
        if f == GADRE:
            return "Over-training law, Gadre et al. (overtrain-rpj)"
        return "Chinchilla law fitted on your uploaded runs" if f == fits.UPLOADED else f"Chinchilla law fitted on {f}"

    st.title("Budget planner")
    st.caption("Plan a scaling-law study: which small runs to train so their fit predicts your target's loss to the "
               "accuracy you need, what that costs, and how much over-training the target would save at inference.")

    params = {
        "mode": state.read_param("mode", allowed=list(MODES), default="size", label="target mode"),
        "n": state.read_param("n", default=70e9, minimum=1e6, maximum=planning.MAX_PARAMS, label="target parameters"),
        "d": state.read_param("d", default=1.4e12, minimum=1e6, maximum=planning.MAX_TOKENS, label="target tokens"),
        "c": state.read_param("c", default=1e23, minimum=1e15, maximum=planning.MAX_FLOPS, label="compute budget"),
        "law": state.read_param("law", allowed=law_options, default=GADRE, label="reference law"),
        "unit": state.read_param("unit", allowed=list(UNITS), default="dollars", label="budget unit"),
        "amount": state.read_param("amount", default=20_000.0, minimum=0.0, maximum=planning.MAX_DOLLARS,
                                   label="study budget"),
        "price": state.read_param("price", default=planning.DEFAULT_DOLLARS_PER_GPU_HOUR, minimum=0.01,
                                  maximum=1000.0, label="price per GPU-hour"),
        "peak": state.read_param("peak", default=planning.H100_BF16_DENSE_FLOPS / 1e12, minimum=1.0,
                                 maximum=1e6, label="peak TFLOP/s"),
        "mfu": state.read_param("mfu", default=planning.DEFAULT_MFU * 100, minimum=1.0, maximum=100.0, label="MFU"),
        "are": state.read_param("are", default=5.0, minimum=0.1, maximum=100.0, label="accuracy needed"),
    }
    first = KEY + "mode" not in st.session_state
    if first:
        for name, param in params.items():
            value = param.value
            if name in ("n", "d", "c"):
                value = fits.friendly_number(value)
            st.session_state[KEY + name] = value
    state.keep_valid(KEY + "law", law_options)
    st.session_state.setdefault(KEY + "law", GADRE)

    # ---- Inputs ---------------------------------------------------------------------------------
    box = st.container(border=True)
    row = box.columns([2.6, 1.5, 1.5, 3], vertical_alignment="bottom")
    mode = row[0].segmented_control("Target given as", list(MODES), key=KEY + "mode", format_func=MODES.get,
                                    required=True) or "size"
    errors = []
    if mode == "size":
        n_value, e1 = _quantity(row[1].text_input("Target parameters N", key=KEY + "n", help="e.g. 7B or 7e9"),
                                "Target parameters N", planning.MAX_PARAMS)
        d_value, e2 = _quantity(row[2].text_input("Target tokens D", key=KEY + "d", help="e.g. 140B or 1.4e11"),
                                "Target tokens D", planning.MAX_TOKENS)
        c_value, errors = None, [e for e in (e1, e2) if e]
    else:
        c_value, e3 = _quantity(row[1].text_input("Training compute C (FLOPs)", key=KEY + "c", help="e.g. 1e23"),
                                "Training compute C", planning.MAX_FLOPS)
        n_value = d_value = None
        errors = [e for e in (e3,) if e]
        row[2].caption("N and D: the compute-optimal split of C under the reference law.")
    law = row[3].selectbox("Reference law (compute-optimal N, D)", law_options, key=KEY + "law", format_func=law_label,
                           help="The law whose compute-optimal allocation is shown (and used for a compute budget).")

    row = box.columns([1.6, 1.6, 1.4, 1.4, 1.2, 1.6], vertical_alignment="bottom")
    unit = row[0].segmented_control("Study budget in", list(UNITS), key=KEY + "unit", format_func=UNITS.get,
                                    required=True) or "dollars"
    amount = row[1].number_input("Study budget ($)" if unit == "dollars" else "Study budget (GPU-hours)",
                                 key=KEY + "amount", step=1000.0, format="%g",
                                 help="What you can spend on the small runs of the study.")
    price = row[2].number_input("$ per GPU-hour", key=KEY + "price", step=0.25, format="%g")
    peak = row[3].number_input("Peak TFLOP/s per GPU", key=KEY + "peak", step=10.0, format="%g",
                               help="989 = H100 SXM, bf16 dense; 312 = A100 bf16.")
    mfu = row[4].number_input("MFU (%)", key=KEY + "mfu", step=5.0, format="%g",
                              help="Model FLOPs utilisation: the share of peak a training run achieves (35-45% typical).")
    target_are = row[5].number_input("Accuracy needed (ARE, %)", key=KEY + "are", step=1.0, format="%g",
                                     help="The largest acceptable |predicted − actual| / actual loss of the target.")
    if first:
        state.show_notices(params.values())
    state.write_params({
        "mode": mode, "law": law, "unit": unit, "amount": f"{amount:g}", "price": f"{price:g}", "peak": f"{peak:g}",
        "mfu": f"{mfu:g}", "are": f"{target_are:g}",
        "n": fits.url_number(n_value) if mode == "size" else None, "d": fits.url_number(d_value) if mode == "size" else None,
        "c": fits.url_number(c_value) if mode == "compute" else None,
    })

    # ---- Validation -----------------------------------------------------------------------------
    for error in errors:
        st.error(common.escape_md(error[:1].upper() + error[1:]), icon=":material/error:")
    if errors:
        return
    cost = {"dollars_per_gpu_hour": price, "peak_flops_per_gpu": peak * 1e12, "mfu": mfu / 100}
    try:
        if not (0 < target_are <= 100):
            raise planning.PlanningError("the accuracy needed must be between 0% and 100%")
        study_flops = planning.study_compute_budget(
            dollars=amount if unit == "dollars" else None, gpu_hours=amount if unit == "gpu_hours" else None, **cost)
    except planning.PlanningError as error:
        st.error(f"Impossible study budget: {common.escape_md(error)}.", icon=":material/error:")
        return

    reference = fits.reference_law(version, law, uploaded if law == fits.UPLOADED else None)
    if mode == "compute":
        if not reference["ok"]:
            st.error(f"The reference law could not be fitted: {common.escape_md(reference['message'])}")
            return
        n_opt, d_opt = (float(x) for x in laws.compute_optimal_allocation(c_value, **reference["params"]))
        n_value, d_value = n_opt, d_opt
    try:
        target_flops = planning.training_flops(n_value, d_value)
    except planning.PlanningError as error:
        st.error(f"Impossible target: {common.escape_md(error)}.", icon=":material/error:")
        return
    if reference["ok"]:
        n_opt, d_opt = (float(x) for x in laws.compute_optimal_allocation(target_flops, **reference["params"]))
    else:
        n_opt = d_opt = math.nan
        st.warning(f"The reference law could not be fitted: {common.escape_md(reference['message'])}")
    target_cost = planning.compute_cost(min(target_flops, planning.MAX_FLOPS), **cost)

    # ---- Summary --------------------------------------------------------------------------------
    cards = st.columns(4)
    cards[0].metric("Target", units.format_params(n_value),
                    help="Parameters N and training tokens D of the model whose loss you want to predict.")
    cards[0].caption(f"{units.format_tokens(d_value)} ({d_value / n_value:.0f} per param) · "
                     f"{units.format_flops(target_flops)}")
    cards[1].metric("Training the target costs", units.format_dollars(target_cost.dollars))
    cards[1].caption(f"{units.format_count(target_cost.gpu_hours)} GPU-hours at {mfu:g}% MFU")
    cards[2].metric("Study budget", units.format_flops(study_flops),
                    help="FLOPs = GPU-hours × 3600 × peak FLOP/s × MFU.")
    cards[2].caption(f"{_share(study_flops / target_flops)} of the target's compute")
    cards[3].metric("Compute-optimal for this C", units.format_params(n_opt) if math.isfinite(n_opt) else units.MISSING,
                    help=f"Under the reference law ({law_label(law)}).")
    cards[3].caption(f"{units.format_tokens(d_opt)} ({d_opt / n_opt:.0f} per param)" if math.isfinite(n_opt)
                     else "reference law unavailable")
    if study_flops > target_flops:
        st.warning("The study budget is larger than the cost of training the target itself: you could simply train "
                   "the target.", icon=":material/warning:")

    # ---- Study designs --------------------------------------------------------------------------
    st.subheader("Study designs that fit the budget")
    results, problem = sweep.results()
    best = None
    plans_out = None
    meta_available = sweep.available(results)
    if not meta_available:
        sweep.offer_sweep(KEY + "sweep", reason=problem)
    else:
        outcome = _plans((str(common.meta_path()), sweep.meta_version()), n_value, d_value, study_flops,
                         target_are / 100, tuple(sorted(cost.items())), results)
        if not outcome["ok"]:
            if outcome["missing"]:
                meta_available = False
                sweep.offer_sweep(KEY + "sweep", reason=outcome["message"])
            else:
                st.error(f"Impossible budget: {common.escape_md(outcome['message'])}.", icon=":material/error:")
        else:
            plans = outcome["plans"]
            best = planning.best_plan(plans, target_are / 100)
            shown = plans.head(SHOWN_PLANS)
            if best is not None and best.name not in shown.index:
                shown = pd.concat([plans.loc[[best.name]], plans.head(SHOWN_PLANS - 1)])
            plans_out = _plans_table(shown)
            plans_out.insert(0, "Pick", ["★" if best is not None and i == best.name else ""
                                         for i in shown.index])
            st.dataframe(plans_out, hide_index=True, width="stretch")
            meeting = int((plans["are_p80"] <= target_are / 100).sum())
            st.caption(f"{len(plans):,} designs fit the budget; {meeting:,} meet {target_are:g}% ARE in 4 of 5 "
                       "comparable fits. Ranked by expected ARE (designs supported by 2+ families first), then cost; "
                       "★: the cheapest well-supported design that meets the accuracy needed. "
                       "Expected ARE: what the public collection's fits with the same number of runs and a similar "
                       "share of the target's compute achieved (meta-analysis, family-averaged).")

    # ---- Over-training --------------------------------------------------------------------------
    st.subheader("Over-training the target: loss against inference cost")
    gadre = fits.gadre_laws(version)
    tradeoff = choice = None
    figures = []
    if not gadre["ok"]:
        st.warning(f"The over-training law could not be fitted: {common.escape_md(gadre['message'])}")
    else:
        multipliers = sorted(set(planning.DEFAULT_MULTIPLIERS) | ({round(d_value / n_value)}
                                                                 if 1 <= d_value / n_value <= 1e4 else set()))
        tradeoff = planning.overtraining_tradeoff(gadre["params"], target_flops, multipliers=multipliers,
                                                  downstream=gadre.get("downstream"))
        choice = planning.overtraining_choice(tradeoff)
        chin = laws.overtrain_as_chinchilla(**gadre["params"])
        g_n, g_d = laws.compute_optimal_allocation(target_flops, **chin)
        image_format = st.session_state.get(KEY + "image", "png")
        loss_fig, cost_fig = analysis_charts.tradeoff_figures(tradeoff, optimal_multiplier=float(g_d / g_n))
        left, right = st.columns(2, gap="medium")
        left.plotly_chart(loss_fig, key=KEY + "tradeoff", config=analysis_charts.plotly_config(
            "scaleplan-overtraining-loss", image_format))
        right.plotly_chart(cost_fig, key=KEY + "inference", config=analysis_charts.plotly_config(
            "scaleplan-overtraining-inference", image_format))
        figures = [("Loss and downstream error against the token multiplier", loss_fig),
                   ("Inference cost per token against the token multiplier", cost_fig)]
        held = gadre.get("held_out")
        check = ""
        if held is not None and not held.empty:
            errs = (held["predicted"] - held["actual"]).abs() / held["actual"]
            check = (f" Checked on the held-out large runs of {fits.GADRE_FAMILY}: "
                     + ", ".join(f"{units.format_count(n)} at M={m:.0f}: {units.format_percent(e)} error"
                                 for n, m, e in zip(held["num_params"], held["multiplier"], errs)) + ".")
        st.caption(f"At the target's compute {units.format_flops(target_flops)}: N = √(C / 6M), D = M·N. Loss: Gadre et "
                   f"al.'s L(C, M) fitted on {gadre['fit_runs']} small runs of {fits.GADRE_FAMILY} (C4 validation "
                   "loss); error: Err(L) = ε − k·exp(−γL) on the 17-task average." + check)
        tradeoff_out = pd.DataFrame({
            "Tokens per parameter M": tradeoff["multiplier"].map(lambda m: f"{m:g}"),
            "Parameters N": tradeoff["num_params"].map(units.format_count),
            "Tokens D": tradeoff["tokens"].map(units.format_count),
            "Predicted loss (nats/token)": tradeoff["loss"].map(lambda v: f"{v:.3f}"),
            "Loss above optimum": tradeoff["loss_increase"].map(lambda v: f"{v:+.3f}"),
            "Avg. downstream error": tradeoff["downstream_error"].map(units.format_percent),
            "Inference FLOPs/token": tradeoff["inference_flops_per_token"].map(lambda v: units.format_flops(v, unit=False)),
            "Inference saved": tradeoff["inference_saved"].map(lambda v: units.format_percent(v, 0)),
        })
        with st.expander("Over-training table", expanded=False):
            st.dataframe(tradeoff_out, hide_index=True, width="stretch")

    # ---- Recommendation -------------------------------------------------------------------------
    text = planning.recommendation(
        target_params=n_value, target_tokens=d_value, target_are=target_are / 100,
        plan_num_runs=None if best is None else int(best["num_runs"]),
        plan_min_size=None if best is None else float(best["min_size"]),
        plan_max_size=None if best is None else float(best["max_size"]),
        plan_seeds=None if best is None else int(best["seeds"]),
        plan_compute_share=None if best is None else float(best["compute_share"]),
        plan_dollars=None if best is None or "dollars" not in best else float(best["dollars"]),
        plan_are_median=None if best is None else float(best["are_median"]),
        plan_are_p80=None if best is None else float(best["are_p80"]),
        plan_fraction_of_target_tokens=None if best is None or best["token_rule"].startswith("20")
        else float(best["tokens"][0]) / d_value,
        plan_runs_under_cutoff=None if best is None else int(best["under_cutoff"]),
        optimal_params=n_opt if math.isfinite(n_opt) else None, optimal_tokens=d_opt if math.isfinite(d_opt) else None,
        overtrain_multiplier=None if choice is None else float(choice["multiplier"]),
        overtrain_loss_increase=None if choice is None else float(choice["loss_increase"]),
        overtrain_inference_saved=None if choice is None else float(choice["inference_saved"]),
        meta_available=meta_available)
    with st.container(border=True):
        st.markdown("**Recommendation**")
        st.markdown(common.escape_md(text, limit=2000))

    inputs = [("Target", f"{units.format_params(n_value)}, {units.format_tokens(d_value)} "
                         f"({units.format_flops(target_flops)})"),
              ("Target given as", MODES[mode]), ("Reference law", law_label(law)),
              ("Study budget", f"{amount:g} {UNITS[unit].lower()} = {units.format_flops(study_flops)}"),
              ("GPU cost model", f"${price:g}/GPU-hour, {peak:g} TFLOP/s peak, {mfu:g}% MFU"),
              ("Accuracy needed", f"{target_are:g}% ARE")]
    metric_cards = [("Training the target costs", units.format_dollars(target_cost.dollars),
                     f"{units.format_count(target_cost.gpu_hours)} GPU-hours"),
                    ("Study budget", units.format_flops(study_flops),
                     f"{_share(study_flops / target_flops)} of the target's compute"),
                    ("Compute-optimal for this C", f"{units.format_count(n_opt)} params, {units.format_count(d_opt)} "
                     "tokens" if math.isfinite(n_opt) else units.MISSING, law_label(law))]
    tables = ([("Study designs (best first)", plans_out)] if plans_out is not None else []) + (
        [("Over-training trade-off", tradeoff_out)] if tradeoff is not None else [])
    bottom = st.columns([3, 2, 5], vertical_alignment="center")
    bottom[0].download_button(
        "Download report (HTML)", icon=":material/download:", on_click="ignore", mime="text/html",
        file_name="scaleplan-budget-plan.html",
        data=lambda: report.build_report(title="scaleplan: budget plan", inputs=inputs, metrics=metric_cards,
                                         recommendation=text, tables=tables, figures=figures,
                                         notes=["Compute C = 6 N D. FLOPs = GPU-hours x 3600 x peak x MFU. "
                                                "Expected ARE comes from the meta-analysis of the public collection."]))
    bottom[1].segmented_control("Chart image", ["png", "svg"], key=KEY + "image", format_func=str.upper,
                                default="png", help="Format of the camera button in the charts' toolbars.")



def _share(value: float) -> str:
    """A share of the target's compute with sensible precision: 0.012%, 2.4%, 605%."""
    return units.format_percent(value, 3 if value < 0.001 else 2 if value < 0.01 else 1 if value < 1 else 0)


common.run_page(render)

"""Budget planner: which small runs to train to predict a target, and how to train the target.

URL state (validated by dashboard.state)::

    ?mode=size&n=70e9&d=1.4e12&law=besiroglu2024&unit=dollars&amount=20000&price=2&peak=989&mfu=40&are=5
    ?mode=compute&c=1e23&...&rules=isoflop&rules=tokens_per_param&any=1

(``rules`` only when not all token rules are chosen, ``any=1`` when runs outside the collection's
tokens-per-parameter range are allowed, ``from=NAME`` when the next rung of a stored study is planned.) MFU and the accuracy goal are in percent everywhere
(:func:`core.units.read_percent`).

Small functions over typed core results: :func:`core.planning.plan_study` gives a
:class:`~core.planning.StudyPlan` (designs, pick, frontier), :func:`core.planning.compute_optimal_table`
the laws side by side, :func:`core.planning.summarise_overtraining` the trade-off under the selected
law, and :func:`core.planning.recommendation` the text from the same objects. The expected accuracy
comes from the calibrated error model (:mod:`core.calibration`) built on the meta-analysis results;
without them the page says so and still shows the laws (a sweep never runs here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from scaleplan.core import calibration, planning, scenarios, units
from scaleplan.core.planning.overtraining import multiplier_text, overtraining_or_reason
from scaleplan.core.planning.recommendation import support_text
from scaleplan.core.selection import MIN_SIZES_TO_SWEEP
from scaleplan.dashboard import analysis_charts, charts, common, fits, report, scenario_store, state, uploads

KEY = "planner."
MODES = {"size": "Model size and tokens", "compute": "Compute budget"}
UNITS = {"dollars": "Dollars", "gpu_hours": "GPU-hours"}
MODE_BUTTONS = {"size": "N and D", "compute": "Compute C"}
"""The target-mode buttons' short labels (the long ones, :data:`MODES`, in their help and the report)."""
UNIT_BUTTONS = {"dollars": "US$", "gpu_hours": "GPU-hours"}
RULES = scenarios.TOKEN_RULE_LABELS
SHOWN_DESIGNS = 12
DESIGN_COLUMNS = {  # the study-designs table: what a short header means
    "Model sizes": st.column_config.TextColumn(
        help="Parameters of the design's models: how many sizes, smallest to largest (each run in the list below)"
    ),
    "Tokens": st.column_config.TextColumn(help="Training tokens of each run, fewest to most"),
    "ARE p50": st.column_config.TextColumn(help="Expected absolute relative error of the predicted loss, median"),
    "ARE p80": st.column_config.TextColumn(
        help="Expected absolute relative error of the predicted loss, 80th percentile (the goal's)"
    ),
    "ARE p90": st.column_config.TextColumn(
        help="Expected absolute relative error of the predicted loss, 90th percentile"
    ),
}


@dataclass(frozen=True)
class Inputs:
    mode: str
    target_params: float | None
    target_tokens: float | None
    compute_flops: float | None
    law: str
    budget_dollars: float
    goal_are: float
    cost: planning.CostModel
    rules: tuple[str, ...]
    any_tpp: bool
    budget_gpu_hours: float | None = None  # the budget as typed, when given in GPU-hours


def _quantity(text: str, name: str, maximum: float) -> tuple[float | None, str | None]:
    try:
        return planning.parse_quantity(text, name=name, maximum=maximum), None
    except planning.PlanningError as error:
        return None, str(error)


def _law_options(families: pd.DataFrame, uploaded) -> list[str]:
    fitted = [
        planning.FAMILY_LAW_PREFIX + f for f in families.loc[families["num_sizes"] >= MIN_SIZES_TO_SWEEP, "family"]
    ]
    if uploaded is not None:
        fitted.insert(0, planning.FAMILY_LAW_PREFIX + fits.UPLOADED)
    return list(planning.PUBLISHED_LAWS) + list(planning.GADRE_LAWS) + fitted


def _study_label(name: str) -> str:
    return name or "none"


def _law_label(name: str) -> str:
    if name == "hoffmann2022":
        return "Hoffmann et al. 2022 (Chinchilla)"
    if name == "besiroglu2024":
        return "Besiroglu et al. 2024 (default)"
    if name in planning.GADRE_LAWS:
        return f"Gadre et al. L(C, M) fitted on {planning.GADRE_LAWS[name]}"
    family = name[len(planning.FAMILY_LAW_PREFIX) :]
    return (
        "Chinchilla law fitted on your uploaded runs"
        if family == fits.UPLOADED
        else f"Chinchilla law fitted on {family}"
    )


def _read_inputs(law_options: list[str]) -> Inputs | None:
    params = {
        "mode": state.read_param("mode", allowed=list(MODES), default="size", label="target mode", describe=MODES.get),
        "n": state.read_param("n", default=70e9, minimum=1e6, maximum=planning.MAX_PARAMS, label="target parameters"),
        "d": state.read_param("d", default=1.4e12, minimum=1e6, maximum=planning.MAX_TOKENS, label="target tokens"),
        "c": state.read_param("c", default=5.9e23, minimum=1e15, maximum=planning.MAX_FLOPS, label="compute budget"),
        "law": state.read_param(
            "law", allowed=law_options, default=planning.DEFAULT_LAW, label="reference law", describe=_law_label
        ),
        "unit": state.read_param(
            "unit", allowed=list(UNITS), default="dollars", label="budget unit", describe=UNITS.get
        ),
        "amount": state.read_param(
            "amount", default=20_000.0, minimum=0.0, maximum=planning.MAX_DOLLARS, label="study budget"
        ),
        "price": state.read_param(
            "price",
            default=planning.DEFAULT_DOLLARS_PER_GPU_HOUR,
            minimum=0.01,
            maximum=1000.0,
            label="price per GPU-hour",
        ),
        "peak": state.read_param(
            "peak", default=planning.H100_BF16_DENSE_FLOPS / 1e12, minimum=1.0, maximum=1e6, label="peak TFLOP/s"
        ),
        "mfu": state.read_param("mfu", default=planning.DEFAULT_MFU_PERCENT, minimum=0.01, maximum=100.0, label="MFU"),
        "are": state.read_param("are", default=5.0, minimum=0.01, maximum=100.0, label="accuracy needed"),
        "rules": state.read_param(
            "rules",
            allowed=list(RULES),
            multi=True,
            default=list(RULES),
            label="token rules",
            max_count=len(RULES),
            describe=RULES.get,
        ),
        "any": state.read_param(
            "any", allowed=list(state.SWITCH), default="0", label="allow runs outside", describe=state.SWITCH.get
        ),
    }
    first = KEY + "mode" not in st.session_state
    if first:
        for name, param in params.items():
            value = fits.friendly_number(param.value) if name in ("n", "d", "c") else param.value
            if name == "rules":
                value = list(value) or list(RULES)
            elif name == "any":
                name, value = "any_tpp", value == "1"
            st.session_state[KEY + name] = value
    state.keep_valid(KEY + "law", law_options)
    st.session_state.setdefault(KEY + "law", planning.DEFAULT_LAW)

    box = st.container(border=True)
    row = box.columns([2.1, 1.4, 1.4, 3.7], vertical_alignment="bottom")
    mode = (
        row[0].segmented_control(
            "Target given as",
            list(MODES),
            key=KEY + "mode",
            format_func=MODE_BUTTONS.get,
            required=True,
            help="N and D: the model size and tokens of the target. Compute C: a compute budget in FLOPs, split "
            "compute-optimally under the reference law.",
        )
        or "size"
    )
    errors: list[str] = []
    n_value = d_value = c_value = None
    if mode == "size":
        n_value, e1 = _quantity(
            row[1].text_input("Target parameters N", key=KEY + "n", help="e.g. 7B or 7e9"),
            "Target parameters N",
            planning.MAX_PARAMS,
        )
        d_value, e2 = _quantity(
            row[2].text_input("Target tokens D", key=KEY + "d", help="e.g. 140B or 1.4e11"),
            "Target tokens D",
            planning.MAX_TOKENS,
        )
        errors = [e for e in (e1, e2) if e]
    else:
        c_value, e3 = _quantity(
            row[1].text_input("Training compute C (FLOPs)", key=KEY + "c", help="e.g. 1e23"),
            "Training compute C",
            planning.MAX_FLOPS,
        )
        errors = [e for e in (e3,) if e]
        row[2].caption("N and D: the compute-optimal split of C under the reference law.")
    law = row[3].selectbox(
        "Reference law",
        law_options,
        key=KEY + "law",
        format_func=_law_label,
        help="The law whose compute-optimal split and over-training trade-off are used. Hoffmann et al. 2022: "
        "Chinchilla's published fit; Besiroglu et al. 2024: its replication. " + planning.DEFAULT_LAW_REASON,
    )

    row = box.columns([2.0, 1.5, 1.3, 1.3, 1.0, 1.5], vertical_alignment="bottom")
    unit = (
        row[0].segmented_control(
            "Study budget in",
            list(UNITS),
            key=KEY + "unit",
            format_func=UNIT_BUTTONS.get,
            required=True,
            help="US dollars, or GPU-hours priced at the $ per GPU-hour.",
        )
        or "dollars"
    )
    amount = row[1].number_input(
        "Study budget ($)" if unit == "dollars" else "Study budget (GPU-hours)",
        key=KEY + "amount",
        step=1000.0,
        format="%g",
        help="What you can spend on the small runs of the study.",
    )
    price = row[2].number_input("$ per GPU-hour", key=KEY + "price", step=0.25, format="%g")
    peak = row[3].number_input(
        "Peak TFLOP/s per GPU",
        key=KEY + "peak",
        step=10.0,
        format="%g",
        help="989 = H100 SXM, bf16 dense; 312 = A100 bf16.",
    )
    mfu = row[4].number_input(
        "MFU (%)",
        key=KEY + "mfu",
        step=5.0,
        format="%g",
        help="Model FLOPs utilisation: the share of peak a training run achieves (35-45% typical).",
    )
    goal = row[5].number_input(
        "Accuracy needed (ARE, %)",
        key=KEY + "are",
        step=1.0,
        format="%g",
        help="The largest acceptable |predicted − actual| / actual loss of the target, met by 4 in 5 comparable fits.",
    )
    rules = box.multiselect("Token rules for the study runs", list(RULES), format_func=RULES.get, key=KEY + "rules")
    any_tpp = box.checkbox("Allow runs outside the collection's tokens/param range", key=KEY + "any_tpp")
    if first:
        state.show_notices(params.values())
    state.write_params(
        {
            "mode": mode,
            "law": law,
            "unit": unit,
            "amount": f"{amount:g}",
            "price": f"{price:g}",
            "peak": f"{peak:g}",
            "mfu": _percent_text(mfu),
            "are": _percent_text(goal),
            "n": fits.url_number(n_value) if mode == "size" else None,
            "d": fits.url_number(d_value) if mode == "size" else None,
            "c": fits.url_number(c_value) if mode == "compute" else None,
            "rules": [r for r in RULES if r in rules] if set(rules) != set(RULES) else None,
            "any": "1" if any_tpp else None,
        }
    )
    if not rules:
        errors.append("Token rules: choose at least one token rule")
    for error in errors:
        st.error(common.escape_md(error[:1].upper() + error[1:]), icon=":material/error:")
    problems, notes, values = _check_numbers(unit, amount, price, peak, mfu, goal)
    for note in notes:
        st.info(common.escape_md(note), icon=":material/percent:")
    for heading, message in problems:
        st.error(f"{heading}: {common.escape_md(message)}.", icon=":material/error:")
    if errors or problems:
        return None
    cost, budget, goal_fraction = values
    return Inputs(
        mode=mode,
        target_params=n_value,
        target_tokens=d_value,
        compute_flops=c_value,
        law=law,
        budget_dollars=budget,
        goal_are=goal_fraction,
        cost=cost,
        rules=tuple(rules),
        any_tpp=bool(any_tpp),
        budget_gpu_hours=float(amount) if unit == "gpu_hours" else None,
    )


def _percent_text(value: float) -> str:
    """A percentage for the URL, after the one conversion rule (0.4 typed -> "40")."""
    try:
        return f"{units.read_percent(value, name='value').percent:g}"
    except units.PercentError:
        return f"{value:g}"


INPUT_HEADINGS = {
    "price": "$ per GPU-hour",
    "peak": "Peak TFLOP/s per GPU",
    "mfu": "MFU (%)",
    "goal": "Accuracy needed (ARE, %)",
    "budget": "Impossible study budget",
}
"""The heading each input's error appears under (the input's own label)."""


def _check_numbers(
    unit: str, amount: float, price: float, peak: float, mfu: float, goal: float
) -> tuple[list[tuple[str, str]], list[str], tuple[planning.CostModel, float, float] | None]:
    """(errors as (heading, message), notes, (cost model, budget in $, goal as a fraction) or None).

    MFU and the accuracy goal are percentages read by :func:`core.units.read_percent` (a fraction such
    as 0.4 is converted with a note); each input's error is shown under its own heading."""
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    readings = {}
    for field, value, name in (("mfu", mfu, "MFU"), ("goal", goal, "the accuracy needed")):
        try:
            readings[field] = units.read_percent(value, name=name)
        except units.PercentError as error:
            problems.append((INPUT_HEADINGS[field], str(error)))
            continue
        if readings[field].note:
            notes.append(readings[field].note[:1].upper() + readings[field].note[1:])
    for field, message in planning.cost_model_problems(
        price, peak * 1e12, readings["mfu"].fraction if "mfu" in readings else planning.DEFAULT_MFU
    ).items():
        if field != "mfu" or "mfu" in readings:
            problems.append((INPUT_HEADINGS[field], message))
    if problems:
        return problems, notes, None
    cost = planning.CostModel(dollars_per_gpu_hour=price, peak_flops_per_gpu=peak * 1e12, mfu=readings["mfu"].fraction)
    try:
        budget = cost.budget_dollars(amount if unit == "dollars" else None, amount if unit == "gpu_hours" else None)
    except planning.PlanningError as error:
        return [(INPUT_HEADINGS["budget"], str(error))], notes, None
    return [], notes, (cost, budget, readings["goal"].fraction)


@st.cache_data(show_spinner=False, max_entries=64)
def _plan(
    n: float,
    d: float,
    budget: float,
    goal: float,
    cost: planning.CostModel,
    rules: tuple[str, ...],
    tpp_range: tuple[float, float] | None,
    meta_key: tuple,
    why: str,
    _model: calibration.Calibration | None,
) -> planning.StudyPlan:
    """``_model``: the Fit page's calibration (fits.calibration_or_reason), named in the key by ``meta_key``;
    ``why``: why there is none (part of the key, so a passing problem is not cached as the answer)."""
    return planning.plan_study(
        n,
        d,
        budget_dollars=budget,
        goal_are=goal,
        calibration=_model,
        cost=cost,
        message=why or None,
        token_rules=rules,
        tpp_range=tpp_range,
    )


def _show_summary(inputs: Inputs, n: float, d: float, optimum: planning.ComputeOptimal | None) -> None:
    target_flops = planning.training_flops(n, d)
    target_cost = inputs.cost.of(min(target_flops, planning.MAX_FLOPS))
    cards = st.columns(4)
    cards[0].metric("Target", units.format_params(n))
    cards[0].caption(f"{units.format_tokens(d)} ({d / n:.0f} per param) · {units.format_flops(target_flops)}")
    cards[1].metric("Training the target costs", units.format_dollars(target_cost.dollars))
    cards[1].caption(f"{units.format_count(target_cost.gpu_hours)} GPU-hours")
    flops = units.format_flops(inputs.budget_dollars * inputs.cost.flops_per_dollar)
    if inputs.budget_gpu_hours is None:
        cards[2].metric("Study budget", units.format_dollars(inputs.budget_dollars))
        cards[2].caption(flops)
    else:
        cards[2].metric("Study budget", f"{units.format_count(inputs.budget_gpu_hours)} GPU-hours")
        cards[2].caption(f"{units.format_dollars(inputs.budget_dollars)} · {flops}")
    if optimum is not None:
        cards[3].metric("Compute-optimal N*", units.format_params(optimum.num_params))
        cards[3].caption(
            f"{units.format_tokens(optimum.tokens)} ({optimum.tokens_per_param:.0f} per param) · "
            f"{common.escape_md(optimum.law)}"
        )


def _designs_table(plan: planning.StudyPlan) -> pd.DataFrame:
    table = plan.table()
    shown = table[table["within_budget"] & (table["frontier"] | table["pick"])].tail(SHOWN_DESIGNS)
    if plan.pick is not None and plan.pick not in shown.index:
        shown = pd.concat([shown, table.loc[[plan.pick]]])
    return pd.DataFrame(
        {
            "Pick": ["★" if p else "" for p in shown["pick"]],
            "Runs": shown["num_runs"],
            "Model sizes": [_sizes_text(s) for s in shown["sizes"]],
            "Tokens": [_tokens_text(t) for t in shown["tokens"]],
            "Token rule": shown["token_rule"].map(lambda r: RULES.get(r, r).split(" (")[0]),
            "Seeds": shown["seeds"],
            "Cost": shown["dollars"].map(units.format_dollars),
            "ARE p50": shown["are_median"].map(units.format_percent),
            "ARE p80": shown["are_p80"].map(units.format_percent),
            "ARE p90": shown["are_p90"].map(units.format_percent),
            "Support": [
                f"{f:,} fits, {fam} famil{'y' if fam == 1 else 'ies'}" + (" (thin)" if thin else "")
                for f, fam, thin in zip(shown["fits"], shown["families"], shown["thin_support"])
            ],
        }
    )


def _sizes_text(sizes: Iterable[float]) -> str:
    """A design's model sizes in a few characters, its smallest and largest (the run list below names
    each): "6 sizes, 312.5M–10B", "1 size, 2B"."""
    distinct = sorted(set(sizes))
    if len(distinct) == 1:
        return f"1 size, {units.format_count(distinct[0])}"
    return f"{len(distinct)} sizes, {units.format_count(distinct[0])}–{units.format_count(distinct[-1])}"


def _tokens_text(tokens: Iterable[float]) -> str:
    """A design's tokens per run, fewest to most ("2.5B–40B"), or one count when every run has it ("174B")."""
    counts = list(tokens)
    fewest, most = units.format_count(min(counts)), units.format_count(max(counts))
    return fewest if fewest == most else f"{fewest}–{most}"


def _budget_text(inputs: Inputs) -> str:
    """'$20k', or '10k GPU-hours ($20k)' for a budget given in GPU-hours."""
    dollars = units.format_dollars(inputs.budget_dollars)
    if inputs.budget_gpu_hours is None:
        return dollars
    return f"{units.format_count(inputs.budget_gpu_hours)} GPU-hours ({dollars})"


def _show_designs(
    plan: planning.StudyPlan, image_format: str, cost: planning.CostModel, budget: str
) -> tuple[pd.DataFrame | None, object]:
    st.subheader("Study designs: cost against expected accuracy")
    if plan.message is not None:
        st.info(
            f"Expected accuracy is not available: {common.escape_md(plan.message, limit=400)}. The compute-optimal "
            "allocation and the over-training trade-off below do not need it.",
            icon=":material/science:",
        )
        return None, None
    figure = analysis_charts.plan_figure(plan)
    charts.add_context(
        figure,
        title=f"Study designs for a {units.format_params(plan.target_params)}, "
        f"{units.format_tokens(plan.target_tokens)} target: cost against expected accuracy",
        inputs=f"Study budget {budget} · goal: "
        f"{units.format_percent(plan.goal_are)} ARE at the 80th percentile · {len(plan.designs):,} designs · "
        "expected ARE: calibrated error model of the public collection's meta-analysis",
    )
    st.plotly_chart(
        figure, key=KEY + "plan_chart", config=analysis_charts.plotly_config("scaleplan-study-designs", image_format)
    )
    out = _designs_table(plan)
    st.dataframe(out, hide_index=True, width="stretch", column_config=DESIGN_COLUMNS)
    _show_run_list(plan, cost)
    within = len(plan.within_budget)
    meeting = sum(
        1 for i in plan.within_budget if plan.designs[i].rankable and plan.designs[i].are_p80 <= plan.goal_are
    )
    st.caption(
        f"{len(plan.designs):,} designs in the design space, {within:,} within the budget, {meeting:,} of "
        f"those meet {units.format_percent(plan.goal_are)} ARE at the 80th percentile with good support. "
        "Shown: the Pareto frontier within the budget (no cheaper design has a better 80th percentile). "
        "★: the cheapest well-supported design whose 80th percentile meets the goal within the budget, "
        "or the most accurate one when none does; thin-support designs are never picked. Expected ARE: "
        "the calibrated error model learnt from the meta-analysis of the public collection."
    )
    return out, figure


def _editable_number(value: float) -> str:
    """A count for an editable cell: "150M" when that reads back exactly, else 6 significant digits."""
    text = units.format_count(value)
    try:
        if abs(units.parse_number(text) - value) <= 1e-9 * abs(value):
            return text
    except units.NumberSyntaxError:
        pass
    return fits.url_number(value) or f"{value:g}"


def _runs_records(design: planning.StudyDesign) -> list[dict[str, object]]:
    """A design's runs as rows of the candidate editor (Parameters, Tokens as text; Seeds)."""
    return [
        {"Parameters": _editable_number(n), "Tokens": _editable_number(t), "Seeds": int(k)}
        for n, t, k in zip(design.sizes, design.tokens, design.seeds_per_run)
    ]


def _runs_table(design: planning.StudyDesign, cost: planning.CostModel) -> pd.DataFrame:
    runs = planning.design_runs(design, cost)
    return pd.DataFrame(
        {
            "Parameters": runs["num_params"].map(units.format_count),
            "Tokens": runs["tokens"].map(units.format_count),
            "Tokens per parameter": runs["tokens_per_param"].map(lambda v: f"{v:.3g}"),
            "Seeds": runs["seeds"],
            "Compute (FLOPs, all seeds)": runs["flops"].map(lambda v: units.format_flops(v, unit=False)),
            "GPU-hours": runs["gpu_hours"].map(units.format_count),
            "Cost": runs["cost_dollars"].map(units.format_dollars),
        }
    )


def _runs_export(design: planning.StudyDesign, cost: planning.CostModel) -> pd.DataFrame:
    """The run list as a runs file reads it back (num_params, tokens, seeds first)."""
    runs = planning.design_runs(design, cost)
    return runs[["num_params", "tokens", "seeds", "tokens_per_param", "flops", "gpu_hours", "cost_dollars"]]


def _show_run_list(plan: planning.StudyPlan, cost: planning.CostModel) -> None:
    """Any shown design's runs, run by run, with an export (default: the pick)."""
    table = plan.table()
    within = table[table["within_budget"] & (table["frontier"] | table["pick"])].tail(SHOWN_DESIGNS).index.tolist()
    if plan.pick is not None and plan.pick not in within:
        within.append(plan.pick)
    if not within:
        return
    with st.expander("Run-by-run list of a design", expanded=False):
        choice = st.selectbox(
            "Design",
            within,
            index=within.index(plan.pick) if plan.pick in within else 0,
            format_func=lambda i: (
                ("★ " if i == plan.pick else "")
                + f"{plan.designs[i].design.describe()} · {units.format_dollars(plan.designs[i].cost.dollars)}"
            ),
            key=KEY + "run_list_design",
        )
        a = plan.designs[int(choice)]
        st.dataframe(_runs_table(a.design, cost), hide_index=True, width="stretch")
        common.csv_download(
            "Export these runs (CSV)",
            _runs_export(a.design, cost),
            "scaleplan-study-runs.csv",
            key=KEY + "run_list_export",
            on_click="ignore",
        )


def _show_candidates(
    plan: planning.StudyPlan, inputs: Inputs, n: float, d: float, model: calibration.Calibration | None
) -> planning.AssessedDesign | None:
    """The editable table of your own runs, prefilled from the pick, priced and assessed by the same model."""
    st.subheader("Your candidate runs: price and expected accuracy")
    st.caption(
        "One row per run: parameters and tokens (150M, 3B, 1.5e8 ...) or tokens per parameter, and seeds. Prefilled from the pick; edit, "
        "add or delete rows. The runs are priced with the GPU cost model above and assessed by the same calibrated "
        "error model as the generated designs (`scaleplan plan --runs-file` gives the same numbers)."
    )
    version = st.session_state.get(KEY + "candidate_version", 0)
    if KEY + "candidate_base" not in st.session_state:
        st.session_state[KEY + "candidate_base"] = (
            _runs_records(plan.picked.design)
            if plan.picked is not None
            else [{"Parameters": "150M", "Tokens": "3B", "Seeds": 1}, {"Parameters": "1B", "Tokens": "20B", "Seeds": 1}]
        )
    if plan.picked is not None and st.button("Start again from the pick", key=KEY + "candidate_reset"):
        st.session_state[KEY + "candidate_base"] = _runs_records(plan.picked.design)
        st.session_state[KEY + "candidate_version"] = version = version + 1
    base = pd.DataFrame(
        st.session_state[KEY + "candidate_base"], columns=["Parameters", "Tokens", "Tokens per parameter", "Seeds"]
    )
    for column in ("Parameters", "Tokens", "Tokens per parameter"):  # text cells ("150M"); empty is ""
        base[column] = [("" if v is None or (isinstance(v, float) and v != v) else str(v)) for v in base[column]]
    edited = st.data_editor(
        base,
        key=f"{KEY}candidate_editor.{version}",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "Parameters": st.column_config.TextColumn("Parameters", help="e.g. 150M, 1.5B or 1.5e9", required=True),
            "Tokens": st.column_config.TextColumn("Tokens", help="training tokens of the run, e.g. 3B"),
            "Tokens per parameter": st.column_config.TextColumn(
                "Tokens per parameter", help="instead of Tokens: D = this x parameters (e.g. 20)"
            ),
            "Seeds": st.column_config.NumberColumn(
                "Seeds", min_value=1, max_value=planning.MAX_RUN_SEEDS, step=1, default=1, help="repeats of the run"
            ),
        },
    )
    try:
        design = planning.candidate_design(
            pd.DataFrame(edited).rename(
                columns={
                    "Parameters": "num_params",
                    "Tokens": "tokens",
                    "Tokens per parameter": "tokens_per_param",
                    "Seeds": "seeds",
                }
            )
        )
    except planning.PlanningError as error:
        st.error(f"Your candidate runs: {common.escape_md(error, limit=400)}.", icon=":material/error:")
        return None
    assessed = planning.assess_candidate(design, n, d, calibration=model, cost=inputs.cost)
    e = assessed.expected
    cards = st.columns(4)
    cards[0].metric("Your runs cost", units.format_dollars(assessed.cost.dollars))
    cards[0].caption(
        f"{units.format_count(assessed.cost.gpu_hours)} GPU-hours · "
        + ("within" if assessed.cost.dollars <= inputs.budget_dollars else "over")
        + f" the {units.format_dollars(inputs.budget_dollars)} budget"
    )
    cards[1].metric("Your runs: ARE median", units.format_percent(e.median) if e else "–")
    cards[2].metric("Your runs: ARE 80th pct.", units.format_percent(e.p80) if e else "–")
    cards[3].metric("Your runs: ARE 90th pct.", units.format_percent(e.p90) if e else "–")
    if e is not None:
        st.caption(
            f"{common.escape_md(design.describe())}: expected error from {support_text(e)}"
            + (" (thin support: not ranked)" if e.thin_support else "")
            + (
                f"; the pick reaches {units.format_percent(plan.picked.are_p80)} at the 80th percentile for "
                f"{units.format_dollars(plan.picked.cost.dollars)}"
                if plan.picked is not None
                else ""
            )
            + ". "
            + common.escape_md(planning.plain_accuracy(e), limit=600)
        )
    else:
        st.caption(f"No expected accuracy for these runs: {common.escape_md(assessed.refusal, limit=400)}.")
    if max(design.seeds_per_run) > 1:
        st.caption(common.escape_md(planning.SEEDS_NOTE, limit=400))
    common.csv_download(
        "Export your runs (CSV)",
        _runs_export(design, inputs.cost),
        "scaleplan-candidate-runs.csv",
        key=KEY + "candidate_export",
        on_click="ignore",
    )
    return assessed


def _show_next_rung(inputs: Inputs, n: float, d: float, model: calibration.Calibration | None) -> None:
    """Plan the next rung of a stored study (Your runs): additions priced, with the expected ARE after each."""
    from scaleplan.core import studies
    from scaleplan.core.errors import UserError

    store = common.settings().user_db_path
    try:
        names = [info.name for info in studies.list_studies(store)]
    except UserError as error:
        # The store cannot be read now (another program holds it, ...): say so and keep the link's
        # ?from= for when it can be read again.
        st.warning(
            "Your stored studies cannot be read: " + common.file_error_text(error, "--user-db"),
            icon=":material/lock:",
        )
        return
    if not names:
        if st.query_params.get("from"):  # a link to a study this store does not hold
            state.show_notices(
                [state.read_param("from", allowed=[""], default="", label="stored study", describe=_study_label)]
            )
            state.write_params({"from": None})
        st.caption("Store a study of your own runs on the Your runs page to plan its next rung here.")
        return
    st.subheader("The next rung of a stored study")
    if KEY + "from_study" not in st.session_state:  # a link's ?from=NAME (a study that is not stored: none)
        linked = state.read_param("from", allowed=["", *names], default="", label="stored study", describe=_study_label)
        st.session_state[KEY + "from_study"] = linked.value
        state.show_notices([linked])
    state.keep_valid(KEY + "from_study", ["", *names])
    name = st.selectbox(
        "Start from your study",
        ["", *names],
        key=KEY + "from_study",
        format_func=_study_label,
        help="A study stored on the Your runs page: which runs to add so its fit predicts this target better.",
    )
    state.write_params({"from": name or None})
    if not name:
        return
    try:
        study = studies.load_study(common.settings().user_db_path, name)
        rung = planning.next_rung(
            planning.study_design(study.table),
            n,
            d,
            calibration=model,
            cost=inputs.cost,
            budget_dollars=inputs.budget_dollars,
            goal_are=inputs.goal_are,
        )
    except UserError as error:
        st.error(f"Start from your study: {common.escape_md(error, limit=400)}.", icon=":material/error:")
        return
    rows = []
    for i, a in enumerate(rung.additions):
        e = a.after.expected
        rows.append(
            {
                "Pick": "★" if i == rung.pick else "",
                "Add": a.label,
                "Cost of the added runs": units.format_dollars(a.cost.dollars),
                "ARE median after": units.format_percent(e.median) if e else "–",
                "ARE 80th pct. after": units.format_percent(e.p80) if e else "–",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=KEY + "rung_table")
    refused: dict[str, list[str]] = {}
    for a in rung.additions:
        if a.after.expected is None:
            refused.setdefault(a.after.refusal or "the error model gives none", []).append(a.label)
    if refused:
        st.caption(
            "–: no expected ARE after that addition, because "
            + "; ".join(
                f"{common.escape_md(reason, limit=300)} ({'; '.join(common.escape_md(label) for label in labels)})"
                for reason, labels in refused.items()
            )
            + "."
        )
    st.markdown(common.escape_md(planning.next_rung_text(rung), limit=1200))
    st.caption(common.escape_md(planning.SEEDS_NOTE, limit=400))
    combined = rung.picked.after.design if rung.picked is not None else rung.existing.design
    st.button(
        "Edit your study's runs" + (" with the picked addition" if rung.picked is not None else "") + " as candidates",
        key=KEY + "rung_to_candidates",
        on_click=_use_as_candidates,
        args=(_runs_records(combined),),
        help="Puts these runs in the candidate table above, to price and assess changes of your own.",
    )


def _use_as_candidates(records: list[dict[str, object]]) -> None:
    st.session_state[KEY + "candidate_base"] = records
    st.session_state[KEY + "candidate_version"] = st.session_state.get(KEY + "candidate_version", 0) + 1


def _laws_table(rows: tuple[planning.ComputeOptimal, ...], selected: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Law": [("▶ " if r.law == selected else "") + _law_label(r.law) for r in rows],
            "Name": [r.law for r in rows],
            "N* (parameters)": [units.format_count(r.num_params) for r in rows],
            "N* 80% interval": [
                f"{units.format_count(r.num_params_low)}–{units.format_count(r.num_params_high)}"
                if r.has_interval
                else "none"
                for r in rows
            ],
            "D* (tokens)": [units.format_count(r.tokens) for r in rows],
            "Tokens per parameter": [f"{r.tokens_per_param:.0f}" for r in rows],
            "Interval from": [r.source for r in rows],
        }
    )


def _show_laws(
    rows, selected: str, problems: dict[str, str], target_flops: float, *, target_from_compute: bool
) -> pd.DataFrame:
    st.subheader(f"Compute-optimal allocation at {units.format_flops(target_flops)}, law by law")
    table = _laws_table(rows, selected)
    st.table(common.inert_frame(table.set_index("Law")))  # a static table wraps its cells: no column is cut
    warning = planning.disagreement_warning(rows, target_from_compute=target_from_compute)
    if warning:
        st.warning(common.escape_md(warning, limit=600), icon=":material/warning:")
    st.caption(
        common.escape_md(planning.DEFAULT_LAW_REASON, limit=600)
        + " N* = G (C/6)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)), D* = C/(6N*)."
    )
    for name, problem in problems.items():
        st.caption(f"{common.escape_md(_law_label(name))} could not be fitted: {common.escape_md(problem)}")
    return table


INFERENCE_CHANGE = planning.INFERENCE_CHANGE


def _show_overtraining(summary: planning.OvertrainingSummary, image_format: str) -> tuple[pd.DataFrame, list]:
    st.subheader(f"Over-training the target under {summary.law}: loss against inference cost")
    loss_fig, cost_fig = analysis_charts.tradeoff_figures(summary.table, optimal_multiplier=summary.optimal_multiplier)
    inputs = (
        f"Target compute {units.format_flops(summary.compute_flops)} · law {summary.law} · compute-optimal "
        f"M* = {planning.multiplier_text(summary.optimal_multiplier)} tokens per parameter, "
        f"target M = {planning.multiplier_text(summary.target_multiplier)}"
    )
    charts.add_context(
        loss_fig, title="Loss against tokens per parameter at the target's compute", inputs=inputs, wrap=50
    )
    charts.add_context(
        cost_fig, title="Inference cost against tokens per parameter at the target's compute", inputs=inputs, wrap=50
    )
    left, right = st.columns(2, gap="medium")
    left.plotly_chart(
        loss_fig,
        key=KEY + "tradeoff",
        config=analysis_charts.plotly_config("scaleplan-overtraining-loss", image_format),
    )
    right.plotly_chart(
        cost_fig,
        key=KEY + "inference",
        config=analysis_charts.plotly_config("scaleplan-overtraining-inference", image_format),
    )
    t = summary.table
    out = pd.DataFrame(
        {
            "Target": ["★" if target else "" for target in t["target"]],
            "Tokens per parameter M": t["multiplier"].map(multiplier_text),
            "Parameters N": t["num_params"].map(units.format_count),
            "Tokens D": t["tokens"].map(units.format_count),
            f"Predicted loss under {summary.law} (nats/token)": t["loss"].map(lambda v: f"{v:.3f}"),
            "Loss above optimum": t["loss_increase"].map(lambda v: f"{v:+.3f}"),
            INFERENCE_CHANGE: t["inference_saved"].map(planning.inference_change_text),
        }
    )
    st.caption(
        "Inference cost, in the bar labels and the table alike: the change in inference FLOPs per token against the "
        "compute-optimal model (+36%: 36% more; -66%: 66% less, i.e. saved)."
    )
    with st.expander("Over-training table", expanded=False):
        st.dataframe(out, hide_index=True, width="stretch")
    return out, [
        ("Loss against the token multiplier", loss_fig),
        ("Inference cost against the token multiplier", cost_fig),
    ]


def render() -> None:
    version = common.db_version()
    uploaded = uploads.uploaded_runs()
    law_options = _law_options(common.cached_families(version), uploaded)
    st.title("Budget planner")
    st.caption(
        "Plan a scaling-law study: which small runs to train so their fit predicts your target's loss to the "
        "accuracy you need, what that costs, and how to split the target's compute."
    )
    inputs = _read_inputs(law_options)
    if inputs is None:
        return
    family = (
        inputs.law[len(planning.FAMILY_LAW_PREFIX) :] if inputs.law.startswith(planning.FAMILY_LAW_PREFIX) else None
    )
    with st.spinner("Fitting the reference laws..."):
        all_laws, problems = fits.planner_laws(version, family, uploaded if family == fits.UPLOADED else None)
    laws_by_name = {law.name: law for law in all_laws}
    selected = laws_by_name.get(inputs.law)
    if selected is None:
        st.error(f"The reference law could not be fitted: {common.escape_md(problems.get(inputs.law, 'unknown'))}")
        return
    try:
        if inputs.mode == "compute":
            opt = planning.optimal_allocation(selected, inputs.compute_flops)
            n, d = opt.num_params, opt.tokens
        else:
            n, d = inputs.target_params, inputs.target_tokens
        target_flops = planning.training_flops(n, d)
        rows = planning.compute_optimal_table(all_laws, target_flops)
    except planning.PlanningError as error:
        st.error(f"Impossible target: {common.escape_md(error)}.", icon=":material/error:")
        return
    summary, summary_note = overtraining_or_reason(selected, n, d)
    optimum = next((r for r in rows if r.law == inputs.law), None)
    _show_summary(inputs, n, d, optimum)
    image_format = st.session_state.get(KEY + "image", "png")
    model, why, meta_key = fits.calibration_or_reason()
    try:
        plan = _plan(
            n,
            d,
            inputs.budget_dollars,
            inputs.goal_are,
            inputs.cost,
            inputs.rules,
            None if inputs.any_tpp else fits.tokens_per_param_range(version),
            meta_key,
            why,
            model,
        )
    except planning.PlanningError as error:
        st.error(f"No study design: {common.escape_md(error)}.", icon=":material/error:")
        return
    designs_out, plan_fig = _show_designs(plan, image_format, inputs.cost, _budget_text(inputs))
    _show_candidates(plan, inputs, n, d, model)
    _show_next_rung(inputs, n, d, model)
    laws_out = _show_laws(rows, inputs.law, problems, target_flops, target_from_compute=inputs.mode == "compute")
    if summary is None:
        st.subheader("Over-training the target")
        st.info(common.escape_md(summary_note, limit=400), icon=":material/info:")
        tradeoff_out, figures = None, []
    else:
        tradeoff_out, figures = _show_overtraining(summary, image_format)
    accuracy = fits.average_accuracy(version, n, d, inputs.law)
    text = planning.recommendation(plan, optimum, summary, accuracy)
    with st.container(border=True):
        st.markdown("**Recommendation**")
        st.markdown(common.escape_md(text, limit=5000))
        st.caption(
            common.escape_md(
                scenarios.losses_note(scenarios.predicted_loss(selected, n, d, calibration=model), accuracy),
                limit=1200,
            )
        )
    _save_as_scenario(inputs)
    _download(
        inputs,
        n,
        d,
        text,
        designs_out,
        laws_out,
        tradeoff_out,
        ([("Study cost against expected ARE", plan_fig)] if plan_fig is not None else []) + figures,
    )


def _save_as_scenario(inputs: Inputs) -> None:
    """The "Save as scenario" control: these inputs under a name, for the Scenarios page."""
    family = inputs.law[len(planning.FAMILY_LAW_PREFIX) :] if inputs.law.startswith(planning.FAMILY_LAW_PREFIX) else ""
    if family == fits.UPLOADED:
        scenario_store.save_control(
            None, why_not="A law fitted on uploaded runs cannot be saved: they last one session."
        )
        return
    scenario_store.save_control(
        scenarios.PlanInputs(
            target_params=inputs.target_params,
            target_tokens=inputs.target_tokens,
            target_flops=inputs.compute_flops,
            budget_dollars=inputs.budget_dollars if inputs.budget_gpu_hours is None else None,
            budget_gpu_hours=inputs.budget_gpu_hours,
            dollars_per_gpu_hour=inputs.cost.dollars_per_gpu_hour,
            peak_flops_per_gpu=inputs.cost.peak_flops_per_gpu,
            mfu=inputs.cost.mfu,
            accuracy_percent=inputs.goal_are * 100,
            law=inputs.law,
            token_rules=inputs.rules,
            any_tokens_per_param=inputs.any_tpp,
        )
    )


def _download(inputs: Inputs, n, d, text, designs_out, laws_out, tradeoff_out, figures) -> None:
    rows = [
        ("Target", f"{units.format_params(n)}, {units.format_tokens(d)}"),
        ("Target given as", MODES[inputs.mode]),
        ("Reference law", _law_label(inputs.law)),
        ("Study budget", _budget_text(inputs)),
        (
            "GPU cost model",
            f"${inputs.cost.dollars_per_gpu_hour:g}/GPU-hour, "
            f"{inputs.cost.peak_flops_per_gpu / 1e12:g} TFLOP/s peak, {inputs.cost.mfu:.0%} MFU",
        ),
        ("Accuracy needed", f"{units.format_percent(inputs.goal_are)} ARE (80th percentile)"),
    ]
    tables = (
        ([("Study designs (Pareto frontier within budget)", designs_out)] if designs_out is not None else [])
        + [("Compute-optimal allocation", laws_out)]
        + ([("Over-training trade-off", tradeoff_out)] if tradeoff_out is not None else [])
    )
    bottom = st.columns([3, 2, 5], vertical_alignment="center")
    bottom[0].download_button(
        "Download report (HTML)",
        icon=":material/download:",
        on_click="ignore",
        mime="text/html",
        file_name="scaleplan-budget-plan.html",
        data=lambda: report.build_report(
            title="scaleplan: budget plan",
            inputs=rows,
            metrics=[],
            recommendation=text,
            tables=tables,
            figures=figures,
            notes=[
                "Compute C = 6 N D. FLOPs = GPU-hours x 3600 x peak x MFU. "
                "Expected ARE: the calibrated error model of the public collection."
            ],
        ),
    )
    bottom[1].segmented_control(
        "Chart image",
        ["png", "svg"],
        key=KEY + "image",
        format_func=str.upper,
        default="png",
        help="Format of the camera button in the charts' toolbars.",
    )


common.run_page(render)

"""The Fit page in AppTest: what its chart, cards and task section say, checked against the data.

Counts (runs that contribute points, sizes) are read from the database, not from the page's code.
"""

from __future__ import annotations

import json
import re

import pytest

from scaleplan.core import storage
from scaleplan.core.metrics import metric_label
from scaleplan.core.selection import DEFAULT_MIN_TOKENS
from tests.dashboard.test_pages_apptest import _metrics, _no_exception, _no_failure, _texts, with_meta  # noqa: F401 (a fixture)


def _chart(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _subtitle(figure: dict) -> str:
    return " ".join(a["text"] for a in figure["layout"].get("annotations", [])).replace("<br>", " ")


def test_caption_counts_the_runs_that_contribute_points(app_test, con):
    # overtrain-rpj: 34 runs smaller than the target; only those with a checkpoint above the 10B cutoff
    # contribute points (each run has one, final, checkpoint).
    curves = storage.family_curves(con, "overtrain-rpj")
    runs = curves.groupby("run_id").agg(n=("num_params", "first"), longest=("tokens_seen", "max"))
    smaller = runs[runs["n"] < runs["n"].max()]
    contributing = smaller[smaller["longest"] > DEFAULT_MIN_TOKENS]
    idle = len(smaller) - len(contributing)
    assert idle > 0 and len(contributing) > 0
    at = app_test("fit.py", query_params={"family": "overtrain-rpj"}, timeout=180)
    _no_failure(at)
    subtitle = _subtitle(_chart(at)).replace("\u2013", "-")
    sizes = contributing["n"].nunique()
    assert f"{len(contributing)} runs in the fit ({sizes} sizes," in subtitle, subtitle
    assert f"{idle} selected runs have no checkpoint after the cutoff" in subtitle, subtitle
    assert f"{len(smaller)} runs in the fit" not in subtitle


def test_compute_share_flop_counts_read_differently_when_the_share_is_not_100_percent(app_test):
    # pythia's default fit: 98.6% of the target's compute, shown over "2.1e22 FLOPs of 2.1e22 FLOPs".
    at = app_test("fit.py")
    _no_failure(at)
    share = float(_metrics(at)["Fit compute share"].rstrip("%"))
    assert share != pytest.approx(100.0, abs=0.01)
    caption = next(c.value for c in at.caption if "FLOPs of" in str(c.value))
    fit_flops, target_flops = (float(v) for v in re.findall(r"([0-9.]+e[0-9]+) FLOPs", caption))
    assert fit_flops != target_flops
    # and the two counts as shown give the share to within their rounding (digits at which they differ)
    assert 100 * fit_flops / target_flops == pytest.approx(share, rel=0.01)
    assert "cost more than training the target" not in _texts(at.caption)


def test_compute_share_above_100_percent_is_explained(app_test):
    at = app_test("fit.py", query_params={"family": "chinchilla", "ckpt": "final", "p": "0.5"}, timeout=180)
    _no_failure(at)
    card = _metrics(at)["Fit compute share"]  # 1,220%: from 1,000% up a factor, "12.2x"
    share = float(card[:-1].replace(",", "")) * 100 if card.endswith("x") else float(card.rstrip("%"))
    assert share > 100
    assert "cost more than training the target" in _texts(at.caption)


def _markdown_table(at, first_header: str) -> list[dict[str, str]]:
    """The rows of the page's Markdown table whose first header is ``first_header``, escapes removed."""
    text = next(m.value for m in at.markdown if m.value.startswith(f"| {first_header} |")).replace("\\", "")
    header, _rule, *rows = text.splitlines()
    names = [c.strip() for c in header.strip("|").split("|")]
    return [dict(zip(names, (c.strip() for c in row.strip("|").split("|")))) for row in rows]


PLAIN_NUMBER = re.compile(r"-?\d{1,3}(,\d{3})*(\.\d+)?")


def test_fitted_parameters_are_plain_numbers(app_test):
    # review4/5: "A = 3.487e+05". Pythia's size coefficient is in the hundreds of thousands: it reads 348,700.
    at = app_test("fit.py")
    _no_failure(at)
    at.toggle[0].set_value(True).run(timeout=300)  # the bootstrap's parameter intervals
    _no_failure(at)
    rows = {row["Parameter"]: row for row in _markdown_table(at, "Parameter")}
    assert set(rows) == {"E", "A", "B", "alpha", "beta"}
    for name, row in rows.items():
        assert PLAIN_NUMBER.fullmatch(row["Value"]), (name, row["Value"])
        low, _, high = row["90% interval (bootstrap)"].partition(" \u2013 ")
        assert PLAIN_NUMBER.fullmatch(low) and PLAIN_NUMBER.fullmatch(high), (name, row)
        assert float(low.replace(",", "")) <= float(high.replace(",", ""))
    size_coefficient = float(rows["A"]["Value"].replace(",", ""))
    assert size_coefficient > 1000 and "," in rows["A"]["Value"]


def test_a_compute_share_of_billions_of_times_the_target_reads_as_a_factor(app_test):
    # review4/5: a tiny hypothetical target (1 token) showed "7.2e19%". Its compute is 6 x 1e11 x 1 = 6e11 FLOPs.
    at = app_test("fit.py", query_params={"target": "hypothetical", "n": "1e11", "d": "1"}, timeout=180)
    _no_failure(at)
    card = _metrics(at)["Fit compute share"]
    assert card == "> 1,000,000x"  # a bound: the factor's eleven digits do not fit the card
    caption = next(str(c.value) for c in at.caption if "FLOPs of" in str(c.value))
    fit_flops = float(re.match(r"([0-9.]+e[0-9]+) FLOPs of 6\.0e11 FLOPs: ", caption).group(1))
    factor = re.search(r": ([0-9,]+)x$", caption)
    assert factor, caption
    assert float(factor.group(1).replace(",", "")) == pytest.approx(fit_flops / 6e11, rel=0.03)
    assert "e19%" not in card + caption and "%" not in card
    assert "cost more than training the target" in _texts(at.caption)


def test_the_flat_direction_warning_gives_its_range_in_the_familys_loss_unit(app_test, con):
    # review4/5: the range had no unit. Pythia's loss is its default metric's, LAMBADA's in nats/word; a
    # 1-token hypothetical target leaves E free to trade against B/D^beta, so equally good fits disagree.
    metric = con.execute("SELECT default_metric FROM families WHERE family = 'pythia'").fetchone()[0]
    kind = con.execute("SELECT kind FROM metrics WHERE metric = ?", [metric]).fetchone()
    unit = metric_label(metric, kind[0] if kind else None).unit
    at = app_test("fit.py", query_params={"target": "hypothetical", "n": "1e11", "d": "1"}, timeout=180)
    _no_failure(at)
    flat = [str(w.value).replace("\\", "") for w in at.warning if "Flat direction" in str(w.value)]
    assert len(flat) == 1, [w.value for w in at.warning]
    found = re.search(r"predict a loss of ([0-9.,]+) to ([0-9.,]+) (\S+) for the target", flat[0])
    assert found and found.group(3) == unit, flat[0]
    assert float(found.group(1).replace(",", "")) < float(found.group(2).replace(",", ""))


def _title_has_one_pair_of_parentheses(title: str) -> bool:
    return title.count("(") == 1 and title.count(")") == 1 and title.endswith(")")


def test_loss_axis_title_has_one_unit_in_one_pair_of_parentheses(app_test):
    # opt's loss is "Validation loss (log-perplexity)" in nats/token.
    at = app_test("fit.py", query_params={"family": "opt"})
    _no_failure(at)
    title = _chart(at)["layout"]["yaxis"]["title"]["text"]
    assert _title_has_one_pair_of_parentheses(title) and title.endswith("(nats/token)"), title
    assert "log-perplexity" in title


def test_uploaded_loss_axis_title_says_as_uploaded_once(app_test):
    from tests.dashboard.test_pages_apptest import _uploaded

    at = app_test("fit.py", session_state={"uploaded_runs": _uploaded(), "uploaded_runs_name": "mine.csv"})
    at.selectbox(key="fit.family").set_value("your-runs").run()
    _no_failure(at)
    title = _chart(at)["layout"]["yaxis"]["title"]["text"]
    assert _title_has_one_pair_of_parentheses(title) and title.count("uploaded") == 1, title


def test_link_to_uploaded_runs_in_a_new_session_gives_one_notice(app_test):
    at = app_test("fit.py", query_params={"family": "your-runs"})
    _no_exception(at)
    shown = [str(i.value).replace("\\", "") for i in at.info]  # markdown escapes removed
    about_family = [text for text in shown if "your-runs" in text or "uploaded runs" in text]
    assert len(about_family) == 1, about_family
    assert at.selectbox(key="fit.family").value == "pythia"


@pytest.mark.usefixtures("with_meta")
def test_task_chart_states_the_familys_loss_unit(app_test, con):
    # pythia's loss is LAMBADA last-word loss, in nats/word (its default metric), not nats/token.
    family = con.execute("SELECT default_metric FROM families WHERE family = 'pythia'").fetchone()[0]
    kind = con.execute("SELECT kind FROM metrics WHERE metric = ?", [family]).fetchone()
    unit = metric_label(family, kind[0] if kind else None).unit
    assert unit == "nats/word"
    at = app_test("fit.py", query_params={"family": "pythia"})
    at.selectbox(key="fit-task-task").set_value("zero-shot/piqa").run()
    _no_failure(at)
    figure = _chart(at, -1)
    assert f"({unit})" in figure["layout"]["xaxis"]["title"]["text"]
    assert "L0 = " in _subtitle(figure) and "nats/token" not in json.dumps(figure)
    assert re.search(r"L0 = [0-9.]+ " + re.escape(unit), _subtitle(figure))


@pytest.mark.usefixtures("with_meta")
def test_task_refusal_names_the_task_as_picked(app_test):
    at = app_test("fit.py", query_params={"family": "pythia"})
    at.selectbox(key="fit-task-task").set_value("five-shot/arc_easy").run()
    _no_failure(at)
    refusal = _texts(at.warning)
    assert "No prediction" in refusal
    assert "five-shot/arc_easy" in refusal, refusal

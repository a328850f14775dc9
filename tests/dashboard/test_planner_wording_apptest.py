"""The Budget planner in AppTest: which loss each number is (the reference law's, the accuracy's), and one
sign convention for the over-training trade-off's inference cost (review 4)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture()
def with_meta(meta_db, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_META", str(meta_db))
    return meta_db


def _planner(app_test):
    at = app_test("planner.py", timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_two_predicted_losses_are_named_apart(app_test, with_meta):
    at = _planner(app_test)
    captions = " ".join(str(c.value) for c in at.caption).replace("\\", "")
    # Besiroglu et al. 2024's published fit at 70B, 1.4T: E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658.
    besiroglu = 1.8172 + 482.01 / 7e10**0.3478 + 2085.43 / 1.4e12**0.3658
    assert (
        f"Predicted target loss under besiroglu2024 (nats/token, the law's training data): {besiroglu:.3f}" in captions
    )
    assert "The 17-task average accuracy is read at another loss" in captions
    assert "val/c4_val/loss of overtrain-rpj's runs" in captions
    table = next(d.value for d in at.dataframe if "Tokens per parameter M" in d.value.columns)
    assert "Predicted loss under besiroglu2024 (nats/token)" in table.columns


def test_inference_cost_has_one_sign_in_the_chart_and_the_table(app_test, with_meta):
    at = _planner(app_test)
    table = next(d.value for d in at.dataframe if "Tokens per parameter M" in d.value.columns)
    column = next(c for c in table.columns if c.startswith("Inference"))
    chart = next(
        json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Inference" in json.dumps(json.loads(c.proto.spec))
    )
    labels = [t for trace in chart["data"] if trace.get("type") == "bar" for t in trace.get("text", [])]
    assert labels and list(table[column]) == labels
    # 70B on 1.4T is 20 tokens per parameter; the compute-optimal M* is 18: a model trained on fewer tokens
    # per parameter (M = 10) is larger, so it costs more per token at inference; one on more costs less.
    multipliers = [float(m) for m in table["Tokens per parameter M"]]
    for m, value in zip(multipliers, table[column]):
        if m < 18:
            assert value.startswith("+"), (m, value)
        elif m > 20:
            assert value.startswith("-"), (m, value)
    captions = " ".join(str(c.value) for c in at.caption)
    assert "+36%: 36% more" in captions


def test_a_next_rung_row_without_an_are_says_why(app_test, with_meta, tmp_path, monkeypatch):
    from scaleplan.core import formats, laws, studies

    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al.'s law
    lines = ["run_name,seed,num_params,tokens_seen,loss"]
    for n in (50e6, 100e6, 200e6, 400e6):
        for share in (0.5, 1.0):
            loss = float(laws.chinchilla_loss(n, 20 * n * share, **truth))
            lines.append(f"r{n:g},0,{n:g},{20 * n * share:g},{loss:.5f}")
    data = ("\n".join(lines) + "\n").encode()
    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    studies.save_study(store, "ladder", formats.parse_runs(data), sha256=studies.sha256_of(data))
    at = app_test("planner.py", timeout=180)
    at.selectbox(key="planner.from_study").set_value("ladder").run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "Add" in df.value.columns)
    blank = table[table["ARE median after"] == "–"]
    assert not blank.empty  # a 70B target from runs up to 400M: some additions stay beyond the error model
    captions = " ".join(str(c.value) for c in at.caption).replace("\\", "")
    assert "–: no expected ARE after that addition, because" in captions
    for label in blank["Add"]:
        assert label in captions


def test_a_budget_in_gpu_hours_is_shown_in_gpu_hours(app_test, with_meta, tmp_path, monkeypatch):
    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    store = tmp_path / "user.duckdb"
    monkeypatch.setenv("SCALEPLAN_USER_DB", str(store))
    at = app_test("planner.py", query_params={"unit": "gpu_hours", "amount": "10000", "price": "2"}, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    card = next(m for m in at.metric if m.label == "Study budget")
    assert card.value == "10k GPU-hours"
    captions = " ".join(str(c.value) for c in at.caption)
    assert "$20k · " in captions  # 10,000 GPU-hours at $2
    chart = next(c.proto.spec for c in at.get("plotly_chart") if "Study designs" in c.proto.spec)
    assert "Study budget 10k GPU-hours ($20k)" in chart
    at.text_input(key="scenarios.save_name").set_value("in GPU-hours")
    at.button(key="scenarios.save").click().run(timeout=180)
    with user_store(store, read_only=True) as con:
        saved = scenarios.get_scenario(con, "in GPU-hours").inputs
    assert (saved.budget_gpu_hours, saved.budget_dollars) == (10_000, None)
    assert dict(saved.rows())["Study budget"] == "10k GPU-hours ($20k)"

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

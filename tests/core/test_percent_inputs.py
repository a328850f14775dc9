"""MFU and the accuracy goal: one percentage rule (core.units.read_percent) and per-input cost checks."""

from __future__ import annotations

import math

import pytest

from scaleplan.core import planning, units


@pytest.mark.parametrize(
    ("typed", "percent", "converted"),
    [
        (40, 40.0, False),
        ("40", 40.0, False),
        (5, 5.0, False),
        (1, 1.0, False),
        (100, 100.0, False),
        (0.4, 40.0, True),
        (0.05, 5.0, True),
        ("0.5", 50.0, True),
    ],
)
def test_read_percent_takes_percent_and_converts_a_fraction_with_a_note(typed, percent, converted):
    reading = units.read_percent(typed, name="MFU")
    assert reading.percent == pytest.approx(percent)
    assert reading.fraction == pytest.approx(percent / 100)
    if converted:
        assert reading.note is not None and "fraction" in reading.note and "MFU" in reading.note
        assert f"{percent:g}%" in reading.note
    else:
        assert reading.note is None


@pytest.mark.parametrize("typed", [0, -5, math.nan, math.inf, 100.5, 500, "lots", None, True])
def test_read_percent_refuses_naming_the_input(typed):
    with pytest.raises(units.PercentError) as error:
        units.read_percent(typed, name="the accuracy needed")
    assert "the accuracy needed" in str(error.value)


def test_cost_model_problems_one_input_at_a_time():
    assert planning.cost_model_problems(2.0, 989e12, 0.4) == {}
    assert set(planning.cost_model_problems(0.0, 989e12, 0.4)) == {"price"}
    assert set(planning.cost_model_problems(2.0, -1.0, 0.4)) == {"peak"}
    assert set(planning.cost_model_problems(2.0, 989e12, 1.5)) == {"mfu"}
    assert set(planning.cost_model_problems(math.nan, 989e12, 0.0)) == {"price", "mfu"}
    assert "price per GPU-hour" in planning.cost_model_problems(0.0, 989e12, 0.4)["price"]

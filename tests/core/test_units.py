"""scaleplan.core.units: human-readable counts, tokens, FLOPs, dollars and percentages."""

from __future__ import annotations

import math

import pytest

from scaleplan.core import units
from scaleplan.core.units import (
    MISSING,
    NumberSyntaxError,
    axis_title,
    format_count,
    format_dollars,
    format_flops,
    format_interval,
    format_params,
    format_percent,
    format_tokens,
    log_axis_sensible,
    metric_unit,
    parse_number,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1.4e9, "1.4B"),
        (7.042662e7, "70M"),  # pythia-70m
        (1.623229e8, "162M"),
        (1.011782e9, "1B"),  # trailing .0 dropped
        (1.184607e10, "12B"),
        (1.75e11, "175B"),
        (6.5e13, "65T"),
        (1.2e15, "1.2e15"),  # beyond T: scientific
        (45_000, "45k"),
        (1234, "1.2k"),
        (1.25e9, "1.25B"),  # a design size: one more digit states it exactly, "1.2B" is another model
        (3.125e8, "312.5M"),
        (6.25e8, "625M"),
        (2.5e9, "2.5B"),
        (999.4, "999"),
        (999.5, "1k"),
        (999.7e6, "1B"),  # rounds up into the next suffix
        (9.96e9, "10B"),
        (950, "950"),
        (12, "12"),
        (2.5, "2.5"),
        (0.05, "0.05"),
        (0, "0"),
        (-3e6, "-3M"),
    ],
)
def test_format_count(value, expected):
    assert format_count(value) == expected


def test_format_count_decimals():
    assert format_count(1.234e9, decimals=2) == "1.23B"
    assert format_count(1.234e9, decimals=0) == "1B"


@pytest.mark.parametrize("bad", [None, float("nan"), "not a number", True, object()])
def test_missing_values_are_a_dash(bad):
    for formatter in (format_count, format_params, format_tokens, format_flops, format_dollars, format_percent):
        assert formatter(bad) == MISSING


def test_infinity():
    assert format_count(math.inf) == "\u221e"
    assert format_count(-math.inf) == "-\u221e"
    assert format_flops(math.inf) == "\u221e FLOPs"


def test_params_and_tokens_units():
    assert format_params(1.4e9) == "1.4B params"
    assert format_params(1.4e9, unit=False) == "1.4B"
    assert format_tokens(2e10) == "20B tokens"
    assert format_tokens(3e11, unit=False) == "300B"
    assert format_tokens(1.5e12) == "1.5T tokens"


@pytest.mark.parametrize(
    "value, expected",
    [
        (3e21, "3.0e21 FLOPs"),
        (1e6, "1.0e6 FLOPs"),
        (9.96e21, "1.0e22 FLOPs"),  # rounding carries into the exponent
        (5.76e23, "5.8e23 FLOPs"),
        (2.5e-3, "2.5e-3 FLOPs"),
        (0, "0 FLOPs"),
    ],
)
def test_format_flops(value, expected):
    assert format_flops(value) == expected


def test_format_flops_options():
    assert format_flops(3e21, unit=False) == "3.0e21"
    assert format_flops(1e21, unit=False, decimals=0) == "1e21"
    assert format_flops(3.14159e21, decimals=2) == "3.14e21 FLOPs"


@pytest.mark.parametrize(
    "value, expected",
    [
        (1.25e6, "$1.25M"),
        (1.234e6, "$1.2M"),
        (45_000, "$45k"),
        (2.4e9, "$2.4B"),
        (950, "$950"),
        (12.5, "$12.50"),
        (0, "$0.00"),
        (-5, "-$5.00"),
        (-2e6, "-$2M"),
    ],
)
def test_format_dollars(value, expected):
    assert format_dollars(value) == expected


@pytest.mark.parametrize(
    "value, decimals, expected",
    [
        (0.1234, 1, "12.3%"),
        (1, 1, "100.0%"),
        (0.5, 0, "50%"),
        (-0.021, 1, "-2.1%"),
        (0.00049, 2, "0.05%"),
    ],
)
def test_format_percent(value, decimals, expected):
    assert format_percent(value, decimals) == expected


def test_numpy_and_string_numbers_are_accepted():
    np = pytest.importorskip("numpy")
    assert format_count(np.float64(1.4e9)) == "1.4B"
    assert format_count(np.int64(70_000_000)) == "70M"
    assert format_count("2e10") == "20B"


def test_axis_helpers():
    assert metric_unit("loss") == "nats/token"
    assert metric_unit("error") == "error rate, fraction"
    assert metric_unit(None) == "value"
    assert metric_unit("unknown kind") == "value"
    assert axis_title("Tokens seen", "tokens", log=True) == "Tokens seen (tokens, log scale)"
    assert axis_title("Loss", "nats/token") == "Loss (nats/token)"


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (1.3, 20.3, True),
        (1.8, 3.5, False),
        (0, 10, False),
        (-1, 10, False),
        (None, 10, False),
        (1, math.inf, False),
        (1e19, 1e23, True),
    ],
)
def test_log_axis_sensible(low, high, expected):
    assert log_axis_sensible(low, high) is expected


def test_doctests():
    import doctest

    assert doctest.testmod(units).failed == 0


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (2.5, "250.0%"),  # the fitted runs cost two and a half times the target
        (9.99, "999.0%"),
        (12.34, "12.3x"),  # from 1,000% up: how many times the target's compute
        (7.2e17, "720,000,000,000,000,000x"),  # review4/5 saw it as "7.2e19%"
    ],
)
def test_a_share_above_1000_percent_is_a_factor_in_plain_digits(share, text):
    assert units.format_share(share) == text


def test_a_share_too_large_for_a_card_is_a_bound():
    assert units.format_share(7.2e17, at_most=1e6) == "> 1,000,000x"
    assert units.format_share(5.0, at_most=1e6) == "500.0%"
    assert units.format_share(0.5, at_most=1e6) == "50.0%"


def test_format_share_is_one_rule_for_page_and_report():
    assert units.format_share(0.38889) == "38.9%"
    assert units.format_share(0.0034) == "0.34%"
    assert units.format_share(0.0099) == "0.99%" and units.format_share(0.01) == "1.0%"
    assert units.format_share(None) == units.MISSING


# ---------------------------------------------------------------- issue 25: one number syntax


@pytest.mark.parametrize(
    "text, value",
    [("7B", 7e9), ("1.4T", 1.4e12), ("70 M", 7e7), ("2,000,000", 2e6), ("-70B", -7e10), ("0.4", 0.4), ("1e3k", 1e6)],
)
def test_parse_number_reads_suffixes(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "nan", "seven", "7X", "B", "1.2.3"])
def test_parse_number_refuses_what_is_not_a_number_quoting_it(text):
    with pytest.raises(NumberSyntaxError) as caught:
        parse_number(text, name="--predict-n")
    assert "--predict-n" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"), [("2,000,000", 2e6), ("1,500.5", 1500.5), ("1,400B", 1.4e12), ("-1,000", -1e3)]
)
def test_parse_number_reads_commas_that_group_thousands(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0,5B", "1,5", "1,2,3", "12,34", "1,0000", "0,500B", "00,500", "-0,100"])
def test_parse_number_refuses_a_comma_that_groups_no_thousands(text):
    # "0,5B" is a European half-billion: read without its comma it would be 5B, ten times too large.
    with pytest.raises(NumberSyntaxError, match="comma only groups thousands"):
        parse_number(text, name="target parameters")


def test_an_interval_of_zero_width_is_never_shown():
    assert format_interval(9.393e-09, 9.393e-09 * (1 + 1e-9)) == "not determined (every replicate: 0.000000009393)"
    assert format_interval(0.1, 0.2) == "0.1 \u2013 0.2"
    assert format_interval(None, 1.0) == "\u2013"


def test_an_interval_of_large_values_is_in_plain_digits():
    # a size coefficient's bootstrap interval: 210,300 to 452,100, as a reader writes them
    assert format_interval(2.103e5, 4.521e5) == "210,300 \u2013 452,100"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.487e5, "348,700"),  # Chinchilla's A on Pythia: 348.7 thousand
        (2554.0, "2,554"),
        (2.5e9, "2,500,000,000"),
        (0.63934, "0.6393"),
        (1.69, "1.69"),  # no padding zeros
        (406.4, "406.4"),
        (9.393e-9, "0.000000009393"),
        (999.96, "1,000"),  # rounds up to the next power of ten
        (-1234.6, "-1,235"),
        (0.0, "0"),
        (float("inf"), "\u221e"),
        (None, "\u2013"),
        (float("nan"), "\u2013"),
    ],
)
def test_a_number_is_four_significant_digits_in_plain_digits(value, text):
    assert units.format_number(value) == text


def test_a_plain_number_reads_back_as_the_number_to_its_digits():
    for value in (3.487e5, 7.2e10, 0.031415, 12.5, 6.02e23):
        shown = units.format_number(value)
        assert "e" not in shown
        assert parse_number(shown) == pytest.approx(value, rel=5e-4)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5760.3, "5,760x"),
        (1417.9, "1,420x"),
        (901234.0, "901,000x"),
        (1.2857, "1.29x"),
        (2.0, "2x"),
        (12.34, "12.3x"),
        (0.5, "0.5x"),
        (999.6, "1,000x"),
        (None, "\u2013"),
        (float("nan"), "\u2013"),
    ],
)
def test_a_ratio_is_three_significant_digits_in_plain_digits(value, text):
    assert units.format_ratio(value) == text


@pytest.mark.parametrize(
    ("level", "text"),
    [
        (0.9, "90%"),
        (0.5, "50%"),
        (0.995, "99.5%"),
        (0.9999, "99.99%"),
        (0.99999, "99.999%"),
        (0.95, "95%"),
        (0.123, "12.3%"),
        (None, "\u2013"),
    ],
)
def test_a_level_keeps_the_decimals_it_needs(level, text):
    assert units.format_level(level) == text

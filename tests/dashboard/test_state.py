"""scaleplan.dashboard.state: query-parameter parsing and validation (pure functions)."""

from __future__ import annotations

from scaleplan.dashboard.state import parse_choice, parse_choices, parse_number, read_param

FAMILIES = ["gpt3", "opt", "pythia"]


def test_choice_valid_missing_and_unknown():
    assert parse_choice("x", "flops", ["tokens", "flops"], "tokens").value == "flops"
    missing = parse_choice("x", None, ["tokens", "flops"], "tokens")
    assert missing.value == "tokens" and missing.notice is None and not missing.from_url
    bad = parse_choice("x", "sideways", ["tokens", "flops"], "tokens", label="x axis")
    assert bad.value == "tokens" and "x axis" in bad.notice and "sideways" in bad.notice
    assert bad.rejected == ("sideways",)


def test_choice_compares_as_text():
    assert parse_choice("n", "3", [1, 2, 3], 1).value == 3


def test_choices_keep_known_drop_unknown():
    result = parse_choices("family", ["opt", "nope", "opt", "gpt3"], FAMILIES, ["pythia"])
    assert result.value == ["opt", "gpt3"]
    assert "nope" in result.notice and "ignored" in result.notice


def test_choices_all_unknown_fall_back():
    result = parse_choices("family", ["nope"], FAMILIES, ["pythia"])
    assert result.value == ["pythia"] and "pythia" in result.notice
    assert parse_choices("family", [], FAMILIES, ["pythia"]).value == ["pythia"]
    assert parse_choices("family", None, FAMILIES, ["pythia"]).notice is None


def test_choices_capped():
    result = parse_choices("family", FAMILIES, FAMILIES, ["pythia"], max_count=2)
    assert result.value == ["gpt3", "opt"] and "2" in result.notice


def test_number_range_and_garbage():
    assert parse_number("b", "1e21", 1e20, minimum=1e18, maximum=1e27).value == 1e21
    assert parse_number("b", "1_000", 5, integer=True).value == 1000
    for raw in ("abc", "nan", "inf", "1e400"):
        result = parse_number("b", raw, 1e20)
        assert result.value == 1e20 and "not a number" in result.notice
    assert "below" in parse_number("b", "1", 1e20, minimum=1e18).notice
    assert "above" in parse_number("b", "1e30", 1e20, maximum=1e27).notice
    assert "whole" in parse_number("n", "2.5", 1, integer=True).notice
    assert parse_number("b", None, 7).value == 7


def test_notice_escapes_markdown_and_html():
    hostile = "<script>alert(1)</script>[x](javascript:alert(1)) **bold** " + "y" * 500
    notice = parse_choice("family", hostile, FAMILIES, "pythia").notice
    assert "<script>" not in notice and "](" not in notice and "**" not in notice
    assert len(notice) < 300  # the quoted value is shortened


def test_read_param_from_mapping():
    params = {"family": ["opt", "bad"], "x": "flops", "budget": "12"}
    assert read_param("family", allowed=FAMILIES, default=["pythia"], multi=True, query_params=params).value == ["opt"]
    assert read_param("x", allowed=["tokens", "flops"], default="tokens", query_params=params).value == "flops"
    assert read_param("budget", default=1.0, minimum=0, query_params=params).value == 12.0
    assert read_param("missing", default=3, query_params=params).value == 3

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


def _rendered(notice: str) -> str:
    """The notice as Markdown shows it (escapes removed)."""
    return notice.replace("\\", "")


def test_number_notice_states_values_as_the_page_shows_them():
    # Independent truths: 7e10 is "70B" and 1e6 is "1M" in the page's own count notation; a float's
    # repr ("70000000000.0", "1e+06") never reaches the user.
    notice = parse_number("n", "1", 70e9, minimum=1e6, label="target parameters").notice
    assert "“70B”" in notice and "minimum 1M" in notice
    assert "70000000000" not in notice and "e+" not in notice
    assert "“5.9e23”" in _rendered(parse_number("c", "x", 5.9e23).notice)
    assert "“20000”" in _rendered(parse_number("amount", "x", 20_000.0).notice)
    assert "“0.5”" in _rendered(parse_number("p", "x", 0.5).notice)


def test_number_in_a_link_reads_the_text_box_syntax():
    assert parse_number("n", "70B", 1.0).value == 70e9
    assert parse_number("d", "1.4T", 1.0).value == 1.4e12
    assert parse_number("d", "2,000", 1.0).value == 2000.0


def test_choice_notice_names_the_default_as_the_widget_shows_it():
    switch = {"0": "off", "1": "on"}
    notice = parse_choice("boot", "maybe", list(switch), "0", label="bootstrap", describe=switch.get).notice
    assert "“off”" in notice and "“0”" not in notice
    titles = {"chinchilla": "Chinchilla, Hoffmann et al"}
    notice = parse_choices("law", ["nope"], list(titles), ["chinchilla"], describe=titles.get).notice
    assert "Chinchilla, Hoffmann et al" in _rendered(notice) and "“chinchilla”" not in notice

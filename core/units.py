"""Human-readable numbers for the dashboard and reports: counts, tokens, FLOPs, dollars.

Pure functions, no dependencies beyond the standard library (and :class:`core.errors.UserError`).
Also the one parser of numbers typed by people (:func:`parse_number`, every CLI flag) and the
plausibility limits on parameters, tokens and compute (:data:`MAX_PARAMS`, ...). Missing values (None, NaN)
format as an en dash so tables and hover labels never show "nan".

>>> format_count(1.4e9)
'1.4B'
>>> format_params(7.04e7)
'70M params'
>>> format_tokens(2e10, unit=False)
'20B'
>>> format_flops(3e21)
'3.0e21 FLOPs'
>>> format_dollars(1.25e6)
'$1.25M'
>>> format_percent(0.1234)
'12.3%'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import SupportsFloat, cast

from scaleplan.core.errors import UserError

MISSING = "\u2013"  # en dash
_SUFFIXES = ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))

__all__ = [
    "MISSING",
    "MAX_PARAMS",
    "MAX_TOKENS",
    "MAX_FLOPS",
    "MIN_COUNT",
    "SUFFIX_HINT_PARAMS",
    "suffix_hint",
    "NumberSyntaxError",
    "parse_number",
    "PercentError",
    "Percent",
    "read_percent",
    "format_interval",
    "format_number",
    "format_count",
    "format_params",
    "format_tokens",
    "format_flops",
    "format_dollars",
    "format_percent",
    "SHARE_AS_RATIO",
    "format_share",
    "format_ratio",
    "format_level",
    "metric_unit",
    "axis_title",
    "log_axis_sensible",
]


# ---------------------------------------------------------------------------------------------
# Plausibility limits: the one definition, used by the planner (core.planning), the upload check
# (core.userdata) and the CLI's flags.

MAX_PARAMS = 1e15
"""Most parameters of any model scaleplan accepts (about 1,000x the largest dense model to date)."""
MAX_TOKENS = 1e17
"""Most training tokens scaleplan accepts (about 1,000x the largest training set to date)."""
MAX_FLOPS = 1e30
"""Largest compute accepted anywhere (about 100,000 times the largest training run to date)."""
MIN_COUNT = 1e3
"""Fewest parameters of a model, fewest tokens of a run: below it shares and costs underflow."""
SUFFIX_HINT_PARAMS = 1e5
"""Below this many parameters a target is no language model: likely a size typed without its suffix
(70 for 70B), which messages about such a target point out (:func:`suffix_hint`)."""


def suffix_hint(num_params: float, example: str = "70B is 70 billion") -> str:
    """ " (sizes take a suffix: 70B is 70 billion)" for a size below :data:`SUFFIX_HINT_PARAMS`, else ""."""
    return f" (sizes take a suffix: {example})" if num_params < SUFFIX_HINT_PARAMS else ""


class NumberSyntaxError(UserError, ValueError):
    """A number typed by a person could not be read (the message quotes what was typed)."""


_SUFFIX_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d*)?([eE][+-]?\d+)?[A-Za-z]?$")
"""Commas that group thousands ("2,000,000", "1,500.5", "1,400B"): the only commas a number may hold."""


def parse_number(text: object, *, name: str = "the value") -> float:
    """A number typed by a person: "7B", "1.4e9", "70 M", "2,000,000", "1.5T", "-3", "0.4" -> float.

    A comma may only group thousands: "0,5B" and "1,2" are refused, not read as 5B and 12.

    Suffixes k (1e3), M (1e6), B or G (1e9), T (1e12), P (1e15), case-insensitive; commas,
    underscores and spaces are ignored. Only the syntax is checked here (the result may be
    negative, zero or infinite: callers check the range and quote ``text``); NaN is refused.
    Raises :class:`NumberSyntaxError` naming ``name`` and quoting ``text``.

    >>> parse_number("7B"), parse_number("1.4T"), parse_number("2,000"), parse_number("-70B")
    (7000000000.0, 1400000000000.0, 2000.0, -70000000000.0)
    """
    raw = "" if text is None else str(text)
    spaced = raw.strip().replace("_", "").replace(" ", "")
    if "," in spaced and not _THOUSANDS.match(spaced):
        # A comma that does not group thousands is a decimal comma ("0,5B") or a list ("1,2"):
        # dropping it would read a number 10 or 100 times too large.
        raise NumberSyntaxError(
            f"{name}: cannot read {raw.strip()[:40]!r}; a comma only groups thousands (2,000,000): "
            "write a decimal point (0.5B)"
        )
    cleaned = spaced.replace(",", "")
    if not cleaned:
        raise NumberSyntaxError(f"{name} is empty; give a number like 7e9 or 7B")
    suffix = cleaned[-1].lower() if cleaned[-1].isalpha() and cleaned.lower() not in ("inf", "-inf") else ""
    body = cleaned[:-1] if suffix else cleaned
    if suffix not in _SUFFIX_SCALE or not body or body.lower() in ("nan", "+nan", "-nan"):
        raise NumberSyntaxError(f"{name}: cannot read {raw.strip()[:40]!r}; give a number like 7e9 or 7B")
    try:
        number = float(body)
    except ValueError:
        raise NumberSyntaxError(f"{name}: cannot read {raw.strip()[:40]!r}; give a number like 7e9 or 7B") from None
    if math.isnan(number):
        raise NumberSyntaxError(f"{name}: cannot read {raw.strip()[:40]!r}; give a number like 7e9 or 7B")
    return number * _SUFFIX_SCALE[suffix]


class PercentError(UserError, ValueError):
    """A percentage typed by a person is unusable (the message names the input and quotes the value)."""


@dataclass(frozen=True)
class Percent:
    """A percentage read by :func:`read_percent`: ``percent`` (40.0 for 40%) and, when the value typed
    was taken for a fraction and converted, ``note`` saying so."""

    percent: float
    note: str | None = None

    @property
    def fraction(self) -> float:
        """percent / 100 (0.4 for 40%)."""
        return self.percent / 100.0


def read_percent(value: object, *, name: str, maximum: float = 100.0) -> Percent:
    """The one rule for percentages people type (MFU, the accuracy goal), on the pages and in the CLI.

    ``value`` is in percent: 40 is 40%. A value in (0, 1) is read as a fraction written by mistake
    (0.4 for 40% MFU, 0.05 for a 5% goal) and converted, percent = 100 * value, with a note saying
    so; below 1% neither input plans anything (MFU under 1% or an error goal under 1% ARE are
    beyond any study), so the reading is never ambiguous in practice. Zero, negative, NaN,
    infinite, non-numeric values and values above ``maximum`` (percent) raise
    :class:`PercentError` naming ``name``.

    >>> read_percent(40, name="MFU").fraction, read_percent(0.4, name="MFU").percent
    (0.4, 40.0)
    """
    if value is None or isinstance(value, bool):
        raise PercentError(f"{name} is missing; give a percentage like 40")
    try:
        number = parse_number(value, name=name) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PercentError(f"{name}: cannot read {str(value)[:40]!r}; give a percentage like 40") from None
    if not math.isfinite(number):
        raise PercentError(f"{name} must be a finite percentage, got {number}")
    if number <= 0:
        raise PercentError(f"{name} must be greater than 0%, got {number:g}")
    if number > maximum:
        raise PercentError(f"{name} is a percentage, at most {maximum:g}; got {number:g}")
    if number < 1.0:
        converted = number * 100.0
        return Percent(
            converted,
            f"{name}: {number:g} was read as a fraction, {converted:g}%; {name} is in percent "
            f"(type {converted:g} for {converted:g}%)",
        )
    return Percent(number)


def format_interval(low: object, high: object, *, digits: int = 4, separator: str = " \u2013 ") -> str:
    """An interval "low – high" at ``digits`` significant digits in plain digits (:func:`format_number`:
    "210,300 – 452,100"), never one of zero width.

    When both ends print the same (the resampled values all agree to ``digits`` digits) the
    interval says nothing about the uncertainty, so the text says the parameter is not
    determined instead: "not determined (every replicate: 0.000000009393)". Missing ends give
    :data:`MISSING`.
    """
    lo, hi = _number(low), _number(high)
    if lo is None or hi is None:
        return MISSING
    low_text, high_text = format_number(lo, digits), format_number(hi, digits)
    if low_text == high_text:
        return f"not determined (every replicate: {low_text})"
    return f"{low_text}{separator}{high_text}"


def format_number(value: object, digits: int = 4) -> str:
    """A number without a unit of its own (a fitted coefficient, a loss, a factor) at ``digits``
    significant digits in plain digits, thousands separated, never in scientific notation:
    3.487e5 -> "348,700", 2554 -> "2,554", 0.63934 -> "0.6393", 1.69 -> "1.69", 9.393e-9 ->
    "0.000000009393" (trailing zeros dropped); missing -> the en dash."""
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return _infinite(number)
    if number == 0:
        return "0"
    decimals = digits - 1 - math.floor(math.log10(abs(number)))  # the decimals of ``digits`` significant ones
    rounded = round(number, decimals)
    if decimals <= 0:
        return f"{rounded:,.0f}"
    return _trim(f"{rounded:,.{decimals}f}")


def _number(value: object) -> float | None:
    """``value`` as a float, or None when it is missing (None, NaN, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        # Anything float() reads (NumPy scalars, Decimal, numeric text); the rest is missing.
        number = float(cast("SupportsFloat | str", value))
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _infinite(number: float) -> str:
    return "\u221e" if number > 0 else "-\u221e"


def format_count(value: object, decimals: int = 1) -> str:
    """A count with a k/M/B/T suffix: 1.4e9 -> "1.4B", 7.04e7 -> "70M", 950 -> "950".

    Mantissas below 10 keep ``decimals`` decimals (a trailing ".0" is dropped: 1.0e9 ->
    "1B"); larger ones are rounded to whole numbers. A half that one more digit states exactly
    (sizes halve and double) keeps that digit rather than being rounded to another size
    (1.25e9 -> "1.25B", 312.5e6 -> "312.5M", but 1.234e9 -> "1.2B"). A value that rounds up to 1000
    of a unit moves to the next one (999.7e6 -> "1B"). From 1000T upwards the result is
    in scientific notation ("1.2e15"); values below 1 keep two significant digits.
    """
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return _infinite(number)
    sign = "-" if number < 0 else ""
    magnitude = abs(number)
    if magnitude == 0:
        return "0"
    if magnitude < 999.5:
        if magnitude < 1:
            return f"{sign}{magnitude:.2g}"
        return f"{sign}{_mantissa(magnitude, decimals)}"
    for scale, suffix in _SUFFIXES:
        text = _mantissa(magnitude / scale, decimals)
        if float(text) < 1000:
            return f"{sign}{text}{suffix}"
    mantissa, exponent = f"{magnitude:.{decimals}e}".split("e")
    return f"{sign}{mantissa}e{int(exponent)}"


def _mantissa(mantissa: float, decimals: int) -> str:
    places = decimals if mantissa < 9.95 and decimals > 0 else 0
    finer = round(mantissa, places + 1)
    half = round(finer * 10 ** (places + 1)) % 10 == 5
    if half and abs(finer - mantissa) <= 1e-9 * mantissa:
        places += 1  # a half exactly stated by one more digit (1.25, 312.5): keep it
    return _trim(f"{mantissa:.{places}f}") if places else f"{mantissa:.0f}"


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_params(value: object, *, unit: bool = True, decimals: int = 1) -> str:
    """A parameter count: 1.4e9 -> "1.4B params" (``unit=False``: "1.4B")."""
    text = format_count(value, decimals)
    return f"{text} params" if unit and text != MISSING else text


def format_tokens(value: object, *, unit: bool = True, decimals: int = 1) -> str:
    """A token count: 2e10 -> "20B tokens" (``unit=False``: "20B")."""
    text = format_count(value, decimals)
    return f"{text} tokens" if unit and text != MISSING else text


def format_flops(value: object, *, unit: bool = True, decimals: int = 1) -> str:
    """Compute in scientific notation: 3e21 -> "3.0e21 FLOPs" (``unit=False``: "3.0e21")."""
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        text = _infinite(number)
    elif number == 0:
        text = "0"
    else:
        mantissa, exponent = f"{number:.{decimals}e}".split("e")
        text = f"{mantissa}e{int(exponent)}"
    return f"{text} FLOPs" if unit else text


def format_dollars(value: object) -> str:
    """US dollars: 1.25e6 -> "$1.25M", 1.234e6 -> "$1.2M", 45_000 -> "$45k", 950 -> "$950", 12.5 -> "$12.50"."""
    number = _number(value)
    if number is None:
        return MISSING
    if math.isinf(number):
        return _infinite(number).replace("\u221e", "$\u221e")
    sign = "-" if number < 0 else ""
    magnitude = abs(number)
    if magnitude >= 999.5:
        return f"{sign}${format_count(magnitude)}"
    if magnitude >= 100:
        return f"{sign}${magnitude:.0f}"
    return f"{sign}${magnitude:.2f}"


SHARE_AS_RATIO = 10.0
"""From this share up (1,000%) a share of compute is written as a factor (:func:`format_share`)."""


def format_share(value: object, *, at_most: float | None = None) -> str:
    """A share of compute as a percentage, the same on every page and report: two decimals below
    1% (0.00345 -> "0.35%"), one from 1% up (0.38889 -> "38.9%", 2.5 -> "250.0%"); from
    :data:`SHARE_AS_RATIO` (1,000%) up as a factor in plain digits (:func:`format_ratio`: 12.34 ->
    "12.3x", 7.2e17 -> "720,000,000,000,000,000x"), never as "7.2e19%". With ``at_most`` (a
    factor), a larger share is written as a bound, "> 1,000,000x", for a place too narrow for
    its digits (a card; say the factor next to it)."""
    number = _number(value)
    if number is not None and at_most is not None and number > at_most:
        return f"> {format_ratio(at_most)}"
    if number is not None and abs(number) >= SHARE_AS_RATIO:
        return format_ratio(number)
    return format_percent(value, 2 if number is not None and abs(number) < 0.01 else 1)


def format_ratio(value: object) -> str:
    """A factor ("how many times") to three significant digits with an ``x``, in plain digits with
    thousands separators rather than scientific notation: 5760.3 -> "5,760x", 901234 -> "901,000x",
    1.2857 -> "1.29x", 0.5 -> "0.5x"; missing -> the en dash."""
    text = format_number(value, 3)
    return text if text == MISSING else text + "x"


def format_level(level: object) -> str:
    """A confidence level as a percentage with as many decimals as it needs (up to six; a level below 1
    is never shown as "100%"): 0.9 -> "90%", 0.995 -> "99.5%", 0.9999 -> "99.99%", 0.99999 -> "99.999%"."""
    number = _number(level)
    if number is None:
        return MISSING
    percent = number * 100
    decimals = 0  # the fewest that state the level exactly (up to 6), and never 100% for a level below 1
    while decimals < 6 and (
        abs(round(percent, decimals) - percent) > 1e-9 * max(percent, 1.0)
        or (number < 1 and round(percent, decimals) >= 100)
    ):
        decimals += 1
    return _trim(f"{percent:.{decimals}f}") + "%"


def format_percent(value: object, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.1234 -> "12.3%"; from a million percent on in scientific
    notation (4.2e4 -> "4.2e6%"), so a runaway value stays short."""
    number = _number(value)
    if number is None:
        return MISSING
    percent = number * 100
    if math.isinf(percent):
        return _infinite(percent) + "%"
    if abs(percent) >= 1e6:
        mantissa, exponent = f"{percent:.{max(decimals, 1)}e}".split("e")
        return f"{mantissa}e{int(exponent)}%"
    return f"{percent:.{decimals}f}%"


# ---------------------------------------------------------------------------------------------
# Axis labelling helpers (units of the metrics in the collection).

_METRIC_UNITS = {
    "loss": "nats/token",
    "perplexity": "perplexity",
    "accuracy": "fraction correct",
    "error": "error rate, fraction",
    "other": "value",
}


def metric_unit(kind: str | None) -> str:
    """The unit of a metric of ``kind`` (the ``metrics.kind`` column): "loss" -> "nats/token"."""
    return _METRIC_UNITS.get(kind or "other", "value")


def axis_title(name: str, unit: str, *, log: bool = False) -> str:
    """An axis title with its unit: ("Tokens seen", "tokens", log=True) -> "Tokens seen (tokens, log scale)"."""
    return f"{name} ({unit}, log scale)" if log else f"{name} ({unit})"


def log_axis_sensible(low: object, high: object, *, min_decades: float = 1.0) -> bool:
    """Whether values from ``low`` to ``high`` are positive and span at least ``min_decades`` decades."""
    lo, hi = _number(low), _number(high)
    if lo is None or hi is None or lo <= 0 or hi <= 0 or math.isinf(hi):
        return False
    return math.log10(hi / lo) >= min_decades

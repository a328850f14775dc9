"""Page state in the URL: read, validate and write query parameters.

A page that keeps its state in ``st.query_params`` (so a view can be shared as a link) reads
each parameter once, when its widget is first drawn in the session, validates it against the
allowed values or a numeric range, and falls back to the default with a notice otherwise::

    from scaleplan.dashboard import state

    family = state.read_param("family", allowed=families, default=["pythia"], multi=True)
    x_axis = state.read_param("x", allowed=["tokens", "flops"], default="tokens")
    budget = state.read_param("budget", minimum=1e18, maximum=1e27, default=1e21)
    state.seed_widget("explore.family", family)   # first visit: the URL value becomes the widget's
    state.show_notices([family, x_axis, budget])  # st.info for any value that was rejected
    ...
    state.write_params({"family": chosen_families, "x": x})

The parsing functions (:func:`parse_choice`, :func:`parse_choices`, :func:`parse_number`) are
pure and take the raw value(s), so they are tested without Streamlit. A notice quotes the
rejected value escaped for markdown and shortened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from scaleplan.core import units
from scaleplan.dashboard.common import escape_md

MAX_SHOWN = 60  # characters of a rejected value quoted in a notice
SWITCH = {"0": "off", "1": "on"}  # an on/off choice as a link writes it, and as a notice names it


@dataclass(frozen=True)
class Param:
    """A parsed query parameter: the value to use and, if the URL's was rejected, why."""

    name: str
    value: Any
    notice: str | None = None
    from_url: bool = False  # the URL gave a valid value
    rejected: tuple[str, ...] = field(default=())


def _quote(raw: object) -> str:
    return f"“{escape_md(raw, MAX_SHOWN)}”"


def shown_number(number: float | int) -> str:
    """A number as a notice states it: counts with a suffix that reads back exactly ("70B",
    "1.4T", "5.9e23"), smaller ones in short decimal form ("0.5", "20000"), never a float's repr
    ("70000000000.0"); otherwise up to 12 significant digits ("23690000000", "1.5e30")."""
    value = float(number)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e5:
        for decimals in (1, 2, 3):
            text = units.format_count(value, decimals)
            try:
                if abs(units.parse_number(text) - value) <= 1e-9 * abs(value):
                    return text
            except ValueError:
                break
    text = f"{value:.12g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


Describe = Callable[[Any], str]


def parse_choice(
    name: str,
    raw: str | None,
    allowed: Sequence[Any],
    default: Any,
    *,
    label: str | None = None,
    describe: Describe | None = None,
) -> Param:
    """One value out of ``allowed`` (compared as strings); default + notice otherwise.

    ``describe`` turns an allowed value into what the page shows for it (a widget's
    ``format_func``), so the notice names the default as the user sees it, not its key."""
    if raw is None or raw == "":
        return Param(name, default)
    by_text = {str(option): option for option in allowed}
    if raw in by_text:
        return Param(name, by_text[raw], from_url=True)
    what = label or name
    shown = describe or str
    return Param(
        name,
        default,
        notice=f"Unknown {what} {_quote(raw)} in the link; showing {_quote(shown(default))} instead.",
        rejected=(raw,),
    )


def parse_choices(
    name: str,
    raw: Sequence[str] | None,
    allowed: Sequence[Any],
    default: Sequence[Any],
    *,
    label: str | None = None,
    max_count: int | None = None,
    describe: Describe | None = None,
) -> Param:
    """Several values out of ``allowed``: unknown ones are dropped with a notice.

    When none of the given values is known, the default is used. Duplicates are removed and
    the order of the link is kept; at most ``max_count`` values are kept.
    """
    values = [v for v in (raw or []) if v != ""]
    if not values:
        return Param(name, list(default))
    by_text = {str(option): option for option in allowed}
    known, unknown = [], []
    for value in values:
        if value in by_text:
            if by_text[value] not in known:
                known.append(by_text[value])
        elif value not in unknown:
            unknown.append(value)
    notice = None
    what = label or name
    if max_count is not None and len(known) > max_count:
        known = known[:max_count]
        notice = f"The link names more than {max_count} {what} values; showing the first {max_count}."
    if unknown:
        listed = ", ".join(_quote(v) for v in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        if known:
            notice = f"Unknown {what} {listed} in the link; ignored."
        else:
            shown = ", ".join(_quote((describe or str)(v)) for v in default) or "nothing"
            notice = f"Unknown {what} {listed} in the link; showing {shown} instead."
    if not known:
        return Param(name, list(default), notice=notice, rejected=tuple(unknown))
    return Param(name, known, notice=notice, from_url=True, rejected=tuple(unknown))


def parse_number(
    name: str,
    raw: str | None,
    default: float | int,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    label: str | None = None,
) -> Param:
    """A finite number within [minimum, maximum] (an integer if ``integer``); default + notice otherwise."""
    if raw is None or raw == "":
        return Param(name, default)
    what = label or name
    try:
        # The same syntax as the page's text boxes ("70B", "1.4e12", "2,000").
        number = units.parse_number(raw)
    except ValueError:
        number = math.nan
    problem = None
    if not math.isfinite(number):
        problem = "is not a number"
    elif integer and not number.is_integer():
        problem = "is not a whole number"
    elif minimum is not None and number < minimum:
        problem = f"is below the minimum {shown_number(minimum)}"
    elif maximum is not None and number > maximum:
        problem = f"is above the maximum {shown_number(maximum)}"
    if problem:
        return Param(
            name,
            default,
            notice=f"The {what} {_quote(raw)} in the link {problem}; using {_quote(shown_number(default))} instead.",
            rejected=(str(raw),),
        )
    return Param(name, int(number) if integer else number, from_url=True)


# ---------------------------------------------------------------------------------------------
# Streamlit side.


def read_param(
    name: str,
    *,
    default: Any,
    allowed: Sequence[Any] | None = None,
    multi: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    label: str | None = None,
    max_count: int | None = None,
    describe: Describe | None = None,
    query_params: Mapping[str, Any] | None = None,
) -> Param:
    """Read and validate ``st.query_params[name]`` (or ``query_params[name]``).

    With ``allowed``: one of those values (a list of them with ``multi=True``); otherwise a
    number, optionally within [minimum, maximum]. ``describe`` names an allowed value as the
    page shows it (the widget's ``format_func``) in a notice.
    """
    source = st.query_params if query_params is None else query_params
    if multi:
        if query_params is None:
            raw_list = st.query_params.get_all(name)
        else:
            raw = source.get(name)
            raw_list = [] if raw is None else ([raw] if isinstance(raw, str) else list(raw))
        return parse_choices(
            name, raw_list, allowed or [], default, label=label, max_count=max_count, describe=describe
        )
    raw = source.get(name)
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else None
    if allowed is not None:
        return parse_choice(name, raw, allowed, default, label=label, describe=describe)
    return parse_number(name, raw, default, minimum=minimum, maximum=maximum, integer=integer, label=label)


def seed_widget(key: str, param: Param) -> bool:
    """Give widget ``key`` the parsed value when it has none yet in this session.

    Returns True when it did (the first time the page is drawn), so notices are shown once.
    """
    if key in st.session_state:
        return False
    st.session_state[key] = param.value
    return True


def keep_valid(key: str, allowed: Iterable[Any], *, multi: bool = False) -> None:
    """Forget widget ``key``'s value when it is no longer among ``allowed``.

    Use before drawing a widget whose options depend on other widgets (a stale value would
    otherwise raise inside Streamlit): a single value, or a range tuple with any end outside
    ``allowed``, is removed so the widget falls back to its default; a list (``multi``) keeps
    only its allowed items.
    """
    if key not in st.session_state:
        return
    options = list(allowed)
    value = st.session_state[key]
    if multi:
        kept = [v for v in (value or []) if v in options]
        if kept != list(value or []):
            st.session_state[key] = kept
    elif isinstance(value, tuple):
        if not all(v in options for v in value):
            del st.session_state[key]
    elif value not in options:
        del st.session_state[key]


def show_notices(params: Iterable[Param | None]) -> None:
    """An ``st.info`` for each parameter whose URL value was rejected."""
    for param in params:
        if param is not None and param.notice:
            st.info(param.notice, icon=":material/link_off:")


def write_params(values: Mapping[str, Any]) -> None:
    """Put the page's state in the URL (lists as repeated parameters; None removes one)."""
    for name, value in values.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            if name in st.query_params:
                del st.query_params[name]
            continue
        text = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        current = st.query_params.get_all(name)
        if current != (text if isinstance(text, list) else [text]):
            st.query_params[name] = text

"""The one did-you-mean rule of the command line: a name typed nearly right (another case, stray
spaces, a letter off, a missing ``family/`` prefix) and the names it may have meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def close_names(typed: str, names: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``names`` that ``typed`` may have meant, the likeliest first: the same name in
    another case or with other spaces, then a name that ends with ``/typed`` (a run id without its
    family prefix), then :func:`difflib.get_close_matches` on the case-folded names."""
    pool = list(dict.fromkeys(str(name) for name in names))
    key = _key(typed)
    by_key: dict[str, str] = {}
    for name in pool:
        by_key.setdefault(_key(name), name)
    found = [name for name in pool if _key(name) == key]
    found += [name for name in pool if _key(name).endswith("/" + key) and name not in found]
    close = difflib.get_close_matches(key, list(by_key), n=n, cutoff=cutoff)
    found += [by_key[k] for k in close if by_key[k] not in found]
    return found[:n]


def did_you_mean(typed: str, names: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> str:
    """ "did you mean a, b?" naming :func:`close_names`, or "" when none is close."""
    close = close_names(typed, names, n=n, cutoff=cutoff)
    return f"did you mean {', '.join(close)}?" if close else ""


def with_hint(message: str, typed: str, names: Iterable[str]) -> str:
    """``message`` with " (did you mean ...?)" appended when it names no close name already and
    :func:`did_you_mean` finds one: for messages made where the names were compared as typed."""
    if "did you mean" in message:
        return message
    hint = did_you_mean(typed, names)
    return f"{message} ({hint})" if hint else message

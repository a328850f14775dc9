"""The sweep's design space: :class:`SweepConfig` (from a TOML/JSON file), its tasks and the families it covers."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeGuard

import duckdb
import numpy as np
import pandas as pd

from scaleplan.core import laws, storage
from scaleplan.core.errors import UserError
from scaleplan.core.selection import DEFAULT_MIN_TOKENS, MIN_SIZES_TO_SWEEP, Selection

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DEFAULT_CHECKPOINTS = (False, True)  # final_only: all intermediate checkpoints, then final losses only
DEFAULT_CUTOFFS = (DEFAULT_MIN_TOKENS, 0.0)
DEFAULT_WINDOW_SIZES = (3, 4, 6, 8, 12, 16, 24, 32)
MIN_FAMILY_SIZES = MIN_SIZES_TO_SWEEP + 1
"""Distinct model sizes a family needs to get any sweep task: its target's (the largest run's) and the
``MIN_SIZES_TO_SWEEP`` smaller ones of the smallest window. The sweep's one eligibility rule:
:func:`eligible_families` counts the sizes in the database, :func:`plan_tasks` in the family's curves
(a family of exactly 3 sizes has only 2 below its target, so no window and no task)."""
ELIGIBILITY = (
    f"a loss metric and at least {MIN_FAMILY_SIZES} model sizes (the largest, the target, and "
    f"{MIN_SIZES_TO_SWEEP} below it)"
)
"""The eligibility rule in words, for messages."""


@dataclass(frozen=True)
class SweepTask:
    """One fit of the sweep: a family, the runs to use and how much of them."""

    family: str
    run_ids: tuple[str, ...]
    fraction: float
    final_only: bool
    min_tokens: float
    objective: str = "huber"
    law: str = "chinchilla"

    def key(self, data_version: str) -> str:
        fields = asdict(self)
        if fields["law"] == "chinchilla":
            del fields["law"]  # Chinchilla's keys are those of the tasks before laws were named
        payload = json.dumps({**fields, "data_version": data_version}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()

    def selection(self) -> Selection:
        """The points this task fits: its runs, the token fraction, final-only and the cutoff."""
        return Selection(
            run_ids=self.run_ids, fraction=self.fraction, final_only=self.final_only, min_tokens=self.min_tokens
        )


class SweepConfigError(UserError, ValueError):
    """A sweep configuration file is unreadable or names invalid values."""


_CHECKPOINT_RULES = {"all": False, "final": True}


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SweepConfig:
    """The sweep's design space: which families and which designs of each.

    Every field has the built-in sweep's default, so a file only names what it changes.
    ``checkpoints`` holds rules: ``"all"`` (every intermediate checkpoint) and/or
    ``"final"`` (each run's final checkpoint only). ``cutoffs`` are token counts: checkpoints
    at or below them are dropped (0 keeps all). ``window_sizes`` are the numbers of
    consecutive model sizes k (at least 3) in a window; ``all_sizes`` adds the window of
    every size up to its end; ``max_windows_end`` caps how many window ends a family gets.
    """

    families: tuple[str, ...] | None = None  # None: every eligible family
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    checkpoints: tuple[str, ...] = ("all", "final")
    cutoffs: tuple[float, ...] = DEFAULT_CUTOFFS
    window_sizes: tuple[int, ...] = DEFAULT_WINDOW_SIZES
    all_sizes: bool = True
    max_windows_end: int = 6
    objective: str = "huber"
    law: str = "chinchilla"  # any of core.laws.loss_laws()

    def plan(self, family: str, curves: pd.DataFrame) -> list[SweepTask]:
        return plan_tasks(
            family,
            curves,
            fractions=self.fractions,
            checkpoints=tuple(_CHECKPOINT_RULES[c] for c in self.checkpoints),
            cutoffs=self.cutoffs,
            max_windows_end=self.max_windows_end,
            window_sizes=self.window_sizes,
            all_sizes=self.all_sizes,
            objective=self.objective,
            law=self.law,
        )

    @classmethod
    def from_mapping(cls, raw: object, source: str = "the sweep configuration") -> SweepConfig:
        """Validate a parsed TOML/JSON object; every problem is a :class:`SweepConfigError`."""
        if not isinstance(raw, dict):
            raise SweepConfigError(f"{source} must be a table/object of settings, got {type(raw).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SweepConfigError(
                f"{source}: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}

        def items(
            name: str, convert: Callable[[Any], object], check: Callable[[object], bool], rule: str
        ) -> tuple[object, ...]:
            value = raw[name]
            if not isinstance(value, list) or not value:
                raise SweepConfigError(f"{source}: {name} must be a non-empty list, got {value!r}")
            for item in value:
                if not check(item):
                    raise SweepConfigError(f"{source}: every entry of {name} must be {rule}, got {item!r}")
            return tuple(dict.fromkeys(convert(item) for item in value))

        if "families" in raw:
            values["families"] = items(
                "families", str, lambda v: isinstance(v, str) and bool(v.strip()), "a family name"
            )
        if "fractions" in raw:
            values["fractions"] = items(
                "fractions", float, lambda v: _is_number(v) and 0 < v <= 1, "a share of training in (0, 1]"
            )
        if "checkpoints" in raw:
            values["checkpoints"] = items(
                "checkpoints", str, lambda v: isinstance(v, str) and v in _CHECKPOINT_RULES, '"all" or "final"'
            )
        if "cutoffs" in raw:
            values["cutoffs"] = items(
                "cutoffs", float, lambda v: _is_number(v) and 0 <= v < float("inf"), "a token count >= 0"
            )
        if "window_sizes" in raw:
            values["window_sizes"] = items(
                "window_sizes",
                int,
                lambda v: _is_integer(v) and MIN_SIZES_TO_SWEEP <= v <= 10_000,
                f"a whole number of model sizes >= {MIN_SIZES_TO_SWEEP}",
            )
        if "all_sizes" in raw:
            if not isinstance(raw["all_sizes"], bool):
                raise SweepConfigError(f"{source}: all_sizes must be true or false, got {raw['all_sizes']!r}")
            values["all_sizes"] = raw["all_sizes"]
        if "max_windows_end" in raw:
            v = raw["max_windows_end"]
            if not (_is_integer(v) and 1 <= v <= 10_000):
                raise SweepConfigError(f"{source}: max_windows_end must be a whole number >= 1, got {v!r}")
            values["max_windows_end"] = v
        if "objective" in raw:
            if raw["objective"] not in ("huber", "least_squares"):
                raise SweepConfigError(
                    f'{source}: objective must be "huber" or "least_squares", got {raw["objective"]!r}'
                )
            values["objective"] = raw["objective"]
        if "law" in raw:
            if raw["law"] not in laws.loss_laws():
                raise SweepConfigError(
                    f"{source}: law must be one of {', '.join(map(repr, laws.loss_laws()))}, got {raw['law']!r}"
                )
            values["law"] = raw["law"]
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SweepConfig:
        """Read a ``.toml`` or ``.json`` file (see the README's "Scale-out with Dask")."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SweepConfigError(f"cannot read sweep configuration {path}: {error}") from None
        if path.suffix.lower() == ".toml":
            import tomllib

            try:
                raw = tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise SweepConfigError(f"{path} is not valid TOML: {error}") from None
            raw = raw.get("sweep", raw) if isinstance(raw.get("sweep"), dict) and len(raw) == 1 else raw
        elif path.suffix.lower() == ".json":
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                raise SweepConfigError(f"{path} is not valid JSON: {error}") from None
        else:
            raise SweepConfigError(f"sweep configuration must be a .toml or .json file, got {path.name!r}")
        return cls.from_mapping(raw, source=str(path))


def eligible_families(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The families the sweep covers: a loss as default metric and at least :data:`MIN_FAMILY_SIZES`
    model sizes with observations of it, i.e. exactly the loss families :func:`plan_tasks` gives tasks."""
    return storage.loss_families(con, MIN_FAMILY_SIZES)


def plan_tasks(
    family: str,
    curves: pd.DataFrame,
    *,
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    checkpoints: Iterable[bool] = DEFAULT_CHECKPOINTS,
    cutoffs: Iterable[float] = DEFAULT_CUTOFFS,
    max_windows_end: int = 6,
    window_sizes: Iterable[int] = DEFAULT_WINDOW_SIZES,
    all_sizes: bool = True,
    objective: str = "huber",
    law: str = "chinchilla",
) -> list[SweepTask]:
    """The sweep's tasks for one family: windows of model sizes below the target x options.

    Sizes below the target are sorted; a window is every run whose size lies among the k
    consecutive sizes ending at the j-th one (k >= ``MIN_SIZES_TO_SWEEP`` = 3, the fewest sizes
    that identify E, A and alpha; runs of equal size, e.g. seeds or token budgets, come together). To keep large
    families affordable, j takes at most ``max_windows_end`` values spread over the sizes
    (always the largest) and k takes ``window_sizes`` (3, 4, 6, 8, ...) and, with
    ``all_sizes``, "all sizes up to j". A family with fewer than :data:`MIN_FAMILY_SIZES` sizes gets
    no task (the rule :func:`eligible_families` applies in the database).
    """
    from scaleplan.core.selection import target_of

    target = target_of(curves)
    target_params = curves.loc[curves["run_id"] == target, "num_params"].iloc[0]
    pool = curves[curves["num_params"] < target_params].groupby("run_id")["num_params"].first()
    sizes = np.sort(pool.unique())
    if sizes.size + 1 < MIN_FAMILY_SIZES:  # the sizes below the target and the target's own
        return []
    first_end = MIN_SIZES_TO_SWEEP - 1  # index of the largest size of the first full window
    ends = np.unique(
        np.linspace(first_end, sizes.size - 1, min(max_windows_end, sizes.size - first_end)).round().astype(int)
    )
    windows: list[tuple[str, ...]] = []
    for end in ends:
        ks = sorted(
            {k for k in window_sizes if MIN_SIZES_TO_SWEEP <= k <= end + 1} | ({end + 1} if all_sizes else set())
        )
        for k in ks:
            lo, hi = sizes[end + 1 - k], sizes[end]
            windows.append(tuple(sorted(pool[(pool >= lo) & (pool <= hi)].index)))
    windows = list(dict.fromkeys(windows))
    return [
        SweepTask(family, window, float(p), bool(final), float(cut), objective, law)
        for window in windows
        for p in fractions
        for final in checkpoints
        for cut in cutoffs
    ]

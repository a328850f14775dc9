"""dashboard.fits.calibration_or_reason: the one loader of the calibration for the Fit page and the planner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaleplan.core import meta
from scaleplan.dashboard import common, fits, sweep


def _no_results(monkeypatch, data_version: str) -> None:
    monkeypatch.setattr(common, "meta_path", lambda: Path("/nonexistent/meta.duckdb"))
    monkeypatch.setattr(common, "db_version", lambda path=None: (1, 2, 3))
    monkeypatch.setattr(sweep, "meta_version", lambda: None)  # shipped results: no file to stat
    monkeypatch.setattr(sweep, "data_version", lambda version: data_version)
    monkeypatch.setattr(sweep, "results", lambda: (pd.DataFrame(columns=list(meta.RESULT_COLUMNS)), None))


def test_cache_key_changes_with_the_data_version(monkeypatch):
    """A rebuilt database (new data version) with no results file of its own must not reuse a calibration."""
    _no_results(monkeypatch, "old-data")
    *_, old_key = fits.calibration_or_reason()
    _no_results(monkeypatch, "new-data")
    *_, new_key = fits.calibration_or_reason()
    assert old_key != new_key and "new-data" in new_key


def test_missing_results_give_a_reason_pages_can_put_in_a_sentence(monkeypatch):
    _no_results(monkeypatch, "v")
    model, why, _ = fits.calibration_or_reason()
    assert model is None
    assert why.startswith("the meta-analysis has not been run") and "scaleplan meta run" in why


def test_a_database_without_data_version_gets_no_calibration(monkeypatch):
    """Without a data version, stored results of every build would mix: refuse, and say how to fix it."""
    _no_results(monkeypatch, None)
    monkeypatch.setattr(sweep, "results", lambda: (_ for _ in ()).throw(AssertionError("results read")))
    model, why, _ = fits.calibration_or_reason()
    assert model is None and "no data version" in why and "data build --force" in why

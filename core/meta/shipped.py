"""The results shipped with scaleplan: reading them (checked against their pinned sha256) and
exporting a full sweep's rows as the shippable artifact."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleplan.core.errors import UserError
from scaleplan.core.meta.store import (
    ADDED_COLUMNS,
    RESULT_COLUMNS,
    _with_law,
    finished_keys_of,
    load_results,
    read_shipped_rows,
)

#: The full sweep's results ship as package data of ``scaleplan.data``, pinned by the sha256 in
#: SHIPPED_INFO (with the data version they were computed for and the command that made them).
SHIPPED_RESULTS = "sweep_results.parquet"
SHIPPED_INFO = "sweep_results.json"


class ShippedResultsError(RuntimeError):
    """The shipped sweep results do not match their pinned checksum."""


def shipped_data_folder() -> Path:
    """The installed ``scaleplan.data`` package (the source tree's ``data/`` in an editable install),
    whose package data are the shipped results (:data:`SHIPPED_RESULTS`), their pin
    (:data:`SHIPPED_INFO`) and the data manifest (:data:`scaleplan.core.manifest.MANIFEST_PATH`)."""
    import importlib.resources

    return Path(str(importlib.resources.files("scaleplan.data")))


def shipped_file(name: str) -> Path:
    """The shipped file ``name`` (:data:`SHIPPED_RESULTS` or :data:`SHIPPED_INFO`) in :func:`shipped_data_folder`."""
    return shipped_data_folder() / name


def shipped_results_info() -> dict[str, Any] | None:
    """The pin of the shipped results: ``data_version``, ``sha256``, ``rows``, ``fitted``, ``command``."""
    path = shipped_file(SHIPPED_INFO)
    return json.loads(path.read_text()) if path.is_file() else None


def shipped_results(data_version: str) -> pd.DataFrame:
    """The shipped sweep rows if they were computed for ``data_version``; else an empty frame.

    The file's sha256 is checked against its pin first: a modified file raises
    :class:`ShippedResultsError` rather than feeding wrong numbers to the calibration.
    """
    info = shipped_results_info()
    path = shipped_file(SHIPPED_RESULTS)
    if info is None or info.get("data_version") != data_version or not path.is_file():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    if hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
        raise ShippedResultsError(
            f"the shipped sweep results {path} do not match their pinned sha256; "
            "reinstall scaleplan or run `scaleplan meta run`"
        )
    frame = read_shipped_rows(path, data_version)
    return _with_law(frame[[c for c in RESULT_COLUMNS if c in frame.columns]])


class ExportError(UserError):
    """An export that would lose data: ``--to`` holds files that are not scaleplan's export, or the sweep
    to export is incomplete or smaller than the export it would replace (the message says which)."""


_PIN_FIELDS = {"data_version": str, "sha256": str, "rows": int, "fitted": int}


def existing_export(dest_dir: Path) -> dict[str, Any] | None:
    """The pin (:data:`SHIPPED_INFO`) of the scaleplan export in ``dest_dir``, ``{}`` for an export whose
    pin is missing, None when ``dest_dir`` holds neither file.

    Recognised by content, not by name: the pin is a JSON object with the fields scaleplan writes
    (data version, sha256, rows, fitted), the results a Parquet file with exactly the results'
    columns (:data:`RESULT_COLUMNS`, or an earlier release's without the last of :data:`ADDED_COLUMNS`).
    Raises :class:`ExportError` naming a file that is neither.
    """
    pin_path, rows_path = Path(dest_dir) / SHIPPED_INFO, Path(dest_dir) / SHIPPED_RESULTS
    pin: dict[str, Any] | None = None
    if pin_path.exists() or pin_path.is_symlink():
        pin = _read_pin(pin_path)
        if pin is None:
            raise ExportError(_not_an_export(pin_path, "the pin of scaleplan's sweep export"))
    if (rows_path.exists() or rows_path.is_symlink()) and not _is_results_parquet(rows_path):
        raise ExportError(_not_an_export(rows_path, "scaleplan's sweep export"))
    if pin is None and not rows_path.exists():
        return None
    return pin or {}


def _not_an_export(path: Path, what: str) -> str:
    return (
        f"--to: {path} is not {what}; scaleplan will not write over it. Give another folder with --to, "
        "or move that file away"
    )


def _read_pin(path: Path) -> dict[str, Any] | None:
    try:
        pin = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(pin, dict):
        return None
    if not all(isinstance(pin.get(k), kind) and not isinstance(pin.get(k), bool) for k, kind in _PIN_FIELDS.items()):
        return None
    return pin


def _is_results_parquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    if not path.is_file():
        return False
    try:
        names = pq.read_schema(path).names
    except Exception:  # noqa: BLE001 - pyarrow raises several kinds for a file that is not Parquet
        return False
    # this release's columns, or an earlier release's: the first columns, without some of the added ones
    first = len(RESULT_COLUMNS) - len(ADDED_COLUMNS)
    return len(names) >= first and tuple(names) == RESULT_COLUMNS[: len(names)]


def export_results(
    meta_path: Path,
    data_version: str,
    dest_dir: Path,
    *,
    content_digests: dict[str, str] | None = None,
    planned: Collection[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the stored rows of ``data_version`` as the shippable artifact and its pin into ``dest_dir``.

    ``scaleplan meta export --to data`` after a full ``scaleplan meta run`` recomputes what ships.
    The pin records the database's per-source ``content_digests`` (a test compares them with a
    fresh build: an adapter whose output changed without a new ``VERSION`` fails it) and the
    Python/NumPy/SciPy versions the fits ran on (fitted minima move slightly between them).

    Nothing is lost: files in ``dest_dir`` that are not scaleplan's export (:func:`existing_export`)
    are never written over, ``force`` or not; without ``force`` an export is refused
    (:class:`ExportError`) when a task key of ``planned`` (the sweep's tasks,
    :func:`scaleplan.core.meta.sweep.planned_keys`) has no finished row, or when it has fewer fitted
    designs than the export it replaces. Both files are written beside their targets and moved into place.
    """
    dest_dir = Path(dest_dir)
    if dest_dir.exists() and not dest_dir.is_dir():
        raise ExportError(
            f"--to {dest_dir} is a file, not a folder; give the folder to write {SHIPPED_RESULTS} and {SHIPPED_INFO} into"
        )
    previous = existing_export(dest_dir) if dest_dir.is_dir() else None
    frame = load_results(meta_path, data_version, shipped=False)
    if frame.empty:
        raise ValueError(f"no stored results of data version {data_version[:12]} in {meta_path}")
    fitted = int((frame["status"] == "ok").sum())
    if not force and planned is not None:
        missing = len(set(planned) - finished_keys_of(meta_path, data_version))
        if missing:
            raise ExportError(
                f"the sweep in {meta_path} is incomplete: {missing:,} of the {len(set(planned)):,} fits it plans "
                f"are not stored ({fitted:,} fitted so far), so nothing was written to {dest_dir}. Finish it with "
                "`scaleplan meta run` (it resumes), or add --force to export it as it is"
            )
    old_fitted = (previous or {}).get("fitted")
    if not force and isinstance(old_fitted, int) and fitted < old_fitted:
        raise ExportError(
            f"{dest_dir / SHIPPED_RESULTS} holds an export of {old_fitted:,} fitted designs and this sweep has "
            f"{fitted:,}, so nothing was written. Add --force to replace it, or give another folder with --to"
        )
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"--to {dest_dir}: cannot create the folder ({error.strerror or error})") from error
    target = dest_dir / SHIPPED_RESULTS
    rows_temp = _temporary(target)
    try:
        frame.sort_values("key").reset_index(drop=True).to_parquet(rows_temp, compression="zstd", index=False)
    except BaseException:
        rows_temp.unlink(missing_ok=True)
        raise
    info = {
        "data_version": data_version,
        "sha256": hashlib.sha256(rows_temp.read_bytes()).hexdigest(),
        "rows": int(len(frame)),
        "fitted": fitted,
        "command": "scaleplan meta run --jobs 2 && scaleplan meta export --to data",
        "content_digests": dict(sorted((content_digests or {}).items())),
        "environment": _environment(),
    }
    pin_temp = _temporary(dest_dir / SHIPPED_INFO)
    try:
        pin_temp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(rows_temp, target)
        os.replace(pin_temp, dest_dir / SHIPPED_INFO)
    finally:
        for temp in (rows_temp, pin_temp):
            temp.unlink(missing_ok=True)
    return info


def _temporary(path: Path) -> Path:
    """A new file beside ``path`` to write it into before it is moved into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _environment() -> dict[str, str]:
    import platform

    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}

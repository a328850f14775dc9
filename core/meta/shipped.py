"""The results shipped with scaleplan: reading them (checked against their pinned sha256) and
exporting a full sweep's rows as the shippable artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleplan.core.meta.store import RESULT_COLUMNS, _with_law, load_results, read_shipped_rows

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


def export_results(
    meta_path: Path, data_version: str, dest_dir: Path, *, content_digests: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write the stored rows of ``data_version`` as the shippable artifact and its pin into ``dest_dir``.

    ``scaleplan meta export --to data`` after a full ``scaleplan meta run`` recomputes what ships.
    The pin records the database's per-source ``content_digests`` (a test compares them with a
    fresh build: an adapter whose output changed without a new ``VERSION`` fails it) and the
    Python/NumPy/SciPy versions the fits ran on (fitted minima move slightly between them).
    """
    frame = load_results(meta_path, data_version, shipped=False)
    if frame.empty:
        raise ValueError(f"no stored results of data version {data_version[:12]} in {meta_path}")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / SHIPPED_RESULTS
    frame.sort_values("key").reset_index(drop=True).to_parquet(target, compression="zstd", index=False)
    info = {
        "data_version": data_version,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "rows": int(len(frame)),
        "fitted": int((frame["status"] == "ok").sum()),
        "command": "scaleplan meta run --jobs 2 && scaleplan meta export --to data",
        "content_digests": dict(sorted((content_digests or {}).items())),
        "environment": _environment(),
    }
    (dest_dir / SHIPPED_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _environment() -> dict[str, str]:
    import platform

    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}

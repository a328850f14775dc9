"""``scaleplan reproduce downstream``'s report, computed once per data version and code and kept.

Every task interval (``fit --task``, ``plan --task``, the Fit page, the planner, scenarios) takes its
conformal quantile q from the targets that ``reproduce downstream`` predicts
(:func:`core.task_prediction.held_out_quantile`). That report is some 530 binomial link fits
(:func:`core.reproduce_downstream.downstream_report`, 4-9 s), and it depends only on

* the database's data: its stored data version (the manifest's file digests and how they are
  ingested, :func:`core.storage.data_version`) and the downstream table's version
  (:func:`core.storage.downstream_version`; a database whose stored one differs is stale and is
  rebuilt before the CLI or the dashboard reads it), and
* the code and libraries that compute it: every ``.py`` file of ``scaleplan.core`` (any edit
  recomputes), NumPy's, SciPy's, pandas' and DuckDB's versions (an upgrade may move an optimum in its
  last bits) and :data:`CACHE_VERSION` (the file format),

so :func:`report_json` computes it once per key, a sha256 over all of these and the interval level,
and keeps the JSON (:func:`core.reproduce_downstream.report_json`):

* in this process (the last :data:`KEEP_IN_MEMORY` keys), and
* in a file ``downstream-report-<key>.json`` under the user's cache folder (platformdirs'
  ``user_cache_dir``, subfolder ``downstream``), written atomically (a temporary file in the same
  folder, then a rename), so a later process reads it instead of refitting. A file that cannot be
  read, is not JSON, or names another key is ignored and replaced by a fresh computation; a folder
  that cannot be written leaves the result in memory only. Only files of this module's own name
  pattern are ever replaced or removed (the oldest beyond :data:`KEEP_FILES`).

Every call returns a new dict parsed from the same JSON text, so a hit and a fresh computation give
equal values (floats round-trip exactly through JSON) and no caller can alter what another gets.
A database that records no data version (a synthetic one) is never cached: it is computed each call.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import platformdirs

from scaleplan.core import reproduce_downstream, storage
from scaleplan.core.settings import APP_NAME

__all__ = ["CACHE_VERSION", "KEEP_FILES", "KEEP_IN_MEMORY", "cache_key", "default_cache_dir", "report_json"]

CACHE_VERSION = 1
"""The cache file's format; bumped when it changes (a change of the report's code needs no bump: the
source digest is part of the key)."""
KEEP_IN_MEMORY = 4
"""Keys whose report a process keeps (a few levels or databases at once)."""
KEEP_FILES = 8
"""Report files kept in the cache folder (several checkouts or data versions), the newest by mtime."""

_KIND = "scaleplan downstream report"
_PREFIX = "downstream-report-"
_NAME = re.compile(rf"{_PREFIX}[0-9a-f]{{64}}\.json")
_TEMPORARY = re.compile(rf"\.{_PREFIX}[0-9a-f]{{64}}\..+\.tmp")
_TEMPORARY_AGE = 3600.0  # seconds after which a temporary file is a dead writer's leftover

_memory: collections.OrderedDict[str, str] = collections.OrderedDict()
_lock = threading.Lock()  # guards _memory and _key_locks only (held briefly)
_key_locks: dict[str, threading.Lock] = {}  # held while a key's report is computed


def default_cache_dir() -> Path:
    """Where report files live: ``<platformdirs user_cache_dir("scaleplan")>/downstream``."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "downstream"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over every ``.py`` file of ``scaleplan.core`` (:func:`source_digest`) and the versions of the
    numerical libraries the report's fits run on."""
    import numpy
    import pandas
    import scipy

    digest = hashlib.sha256(source_digest(Path(__file__).resolve().parent).encode())
    for name, version in (("numpy", numpy.__version__), ("scipy", scipy.__version__)):
        digest.update(f"{name}={version};".encode())
    digest.update(f"pandas={pandas.__version__};duckdb={duckdb.__version__};".encode())
    return digest.hexdigest()


def source_digest(root: Path) -> str:
    """sha256 over the ``.py`` files under ``root`` (relative path and bytes, in path order). Without any
    (an install that ships no sources) the code cannot be told apart, so the digest is this process's
    own and no other process reuses its files."""
    digest = hashlib.sha256()
    paths = sorted(root.rglob("*.py"))
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    if not paths:
        digest.update(f"no sources: {uuid.uuid4()}".encode())
    return digest.hexdigest()


def cache_key(con: duckdb.DuckDBPyConnection, level: float = reproduce_downstream.LEVEL) -> str | None:
    """The report's key on this database at ``level`` (see the module docstring); None when the database
    records no data version, which is then never cached."""
    version = storage.stored_data_version(con)
    if version is None:
        return None
    parts = [f"v{CACHE_VERSION}", version, storage.downstream_version(), repr(float(level)), code_digest()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def report_json(
    con: duckdb.DuckDBPyConnection, level: float = reproduce_downstream.LEVEL, *, cache_dir: Path | None = None
) -> dict[str, Any]:
    """``reproduce_downstream.report_json(downstream_report(con, level))``, computed once per key.

    ``cache_dir``: the folder of report files (default :func:`default_cache_dir`). Returns a new dict
    each call; its values equal a fresh computation's.
    """
    key = cache_key(con, level)
    if key is None:
        return json.loads(_compute(con, level))  # type: ignore[no-any-return]
    with _lock:
        text = _memory.get(key)
        key_lock = _key_locks.setdefault(key, threading.Lock())
    if text is None:
        # One computation per key however many threads ask at once; other keys (and memory hits)
        # do not wait for it.
        with key_lock:
            with _lock:
                text = _memory.get(key)
            if text is None:
                folder = _folder(cache_dir)
                text = _read(folder, key) if folder is not None else None
                if text is None:
                    text = _compute(con, level)
                    if folder is not None:
                        _write(folder, key, text)
    with _lock:
        _memory[key] = text
        _memory.move_to_end(key)
        while len(_memory) > KEEP_IN_MEMORY:
            dropped, _ = _memory.popitem(last=False)
            _key_locks.pop(dropped, None)
    return json.loads(text)  # type: ignore[no-any-return]


def _folder(cache_dir: Path | None) -> Path | None:
    """The folder of report files, or None (memory only) when the user's cache folder cannot be found
    (platformdirs raises when there is no home directory and no XDG variable)."""
    if cache_dir is not None:
        return Path(cache_dir)
    try:
        return default_cache_dir()
    except (RuntimeError, OSError, KeyError):
        return None


def clear_memory() -> None:
    """Forget the reports kept in this process (the files stay): the next call reads a file or computes."""
    with _lock:
        _memory.clear()


def _compute(con: duckdb.DuckDBPyConnection, level: float) -> str:
    report = reproduce_downstream.report_json(reproduce_downstream.downstream_report(con, level))
    return json.dumps(report)


def _path(folder: Path, key: str) -> Path:
    return folder / f"{_PREFIX}{key}.json"


def _read(folder: Path, key: str) -> str | None:
    """The report text stored for ``key``, or None when the file is missing, unreadable or not ours."""
    try:
        document = json.loads(_path(folder, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON
        return None
    if not isinstance(document, dict) or document.get("kind") != _KIND or document.get("key") != key:
        return None
    if document.get("cache_version") != CACHE_VERSION:
        return None
    report = document.get("report")
    if not isinstance(report, dict) or not isinstance(report.get("tasks"), list) or "average" not in report:
        return None
    return json.dumps(report)


def _write(folder: Path, key: str, text: str) -> None:
    """Store the report atomically; a folder that cannot be written is left alone (memory only)."""
    payload = f'{{"kind": {json.dumps(_KIND)}, "cache_version": {CACHE_VERSION}, "key": "{key}", "report": {text}}}'
    temporary: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{_PREFIX}{key}.", suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.replace(temporary, _path(folder, key))
        temporary = None
    except OSError:
        return
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    _prune(folder, keep=_path(folder, key))


def _prune(folder: Path, keep: Path) -> None:
    """Remove this module's report files beyond the :data:`KEEP_FILES` newest and its dead temporaries;
    nothing else in the folder is touched."""
    try:
        entries = [(p, p.stat().st_mtime) for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return
    reports = sorted(((p, t) for p, t in entries if _NAME.fullmatch(p.name) and p != keep), key=lambda e: -e[1])
    now = time.time()
    stale = [p for p, _ in reports[KEEP_FILES - 1 :]]
    stale += [p for p, t in entries if _TEMPORARY.fullmatch(p.name) and now - t > _TEMPORARY_AGE]
    for path in stale:
        try:
            path.unlink()
        except OSError:
            pass

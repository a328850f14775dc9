"""The DuckDB database of the collection: schema, atomic build, health checks, queries.

The database file is a cache of the public sources (see :mod:`core.manifest`): it is
rebuilt when missing, stale (the manifest or the ingest code changed) or corrupt. A
build writes a temporary file next to the target and swaps it in with ``os.replace``,
so readers never see a half-written database and a failed build leaves the old one.

Schema (documented in ``data/SCHEMA.md``)::

    meta(key, value)                         data version, build time
    sources(source, repository, commit, license, paper, files, bytes, bad_rows, seconds)
    source_files(source, folder, path, sha256, bytes)
    bad_rows(source, reason, count)
    families(family, source, default_metric, description, architecture, domain, num_runs)
    runs(run_id, source, family, model_name, architecture, num_params, num_params_derived,
         training_data, seed, planned_tokens, source_paper, domain)
    metrics(metric, kind, higher_is_better, domain)
    observations(family, run_id, metric, tokens_seen, flops, flops_derived,
                 tokens_derived, value, source)   -- sorted by (family, run_id, metric, tokens_seen)
    downstream_evals(source, family, run_id, tokens_seen, flops, task, metric, shots, chance,
                     n_questions, value)           -- keyed by its own version (DOWNSTREAM_VERSION)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from scaleplan.core.errors import UserError
from scaleplan.core.manifest import MANIFEST_PATH, DataSourceError, Manifest, download, load_manifest, verify_mirror

SCHEMA_VERSION = "1"

SCHEMA_SQL = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE sources (
    source VARCHAR PRIMARY KEY, repository VARCHAR, "commit" VARCHAR, license VARCHAR, paper VARCHAR,
    files INTEGER, bytes BIGINT, bad_rows BIGINT, seconds DOUBLE);
CREATE TABLE source_files (source VARCHAR, folder VARCHAR, path VARCHAR, sha256 VARCHAR, bytes BIGINT);
CREATE TABLE bad_rows (source VARCHAR, reason VARCHAR, count BIGINT);
CREATE TABLE metrics (
    metric VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL
        CHECK (kind IN ('loss', 'perplexity', 'accuracy', 'error', 'other')),
    higher_is_better BOOLEAN NOT NULL, domain VARCHAR);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, family VARCHAR NOT NULL, model_name VARCHAR,
    architecture VARCHAR NOT NULL CHECK (architecture IN ('decoder', 'encoder-decoder', 'moe', 'ssm')),
    num_params DOUBLE NOT NULL CHECK (num_params > 0), num_params_derived BOOLEAN,
    training_data VARCHAR, seed BIGINT, planned_tokens DOUBLE, source_paper VARCHAR, domain VARCHAR,
    unique_tokens DOUBLE CHECK (unique_tokens > 0));
CREATE TABLE families (
    family VARCHAR PRIMARY KEY, source VARCHAR, default_metric VARCHAR, description VARCHAR,
    architecture VARCHAR, domain VARCHAR, num_runs INTEGER);
CREATE TABLE observations (
    family VARCHAR NOT NULL, run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    tokens_seen DOUBLE NOT NULL CHECK (tokens_seen > 0), flops DOUBLE CHECK (flops > 0),
    flops_derived BOOLEAN, tokens_derived BOOLEAN, value DOUBLE NOT NULL, source VARCHAR NOT NULL);
"""


# The benchmark scores with their task, shots, chance level and question count, from the adapters that
# define ``downstream_evals(mirror)``. Kept out of SCHEMA_SQL and ingest_digest() on purpose: the scores
# are the same values as the adapters' accuracy observations (plus per-task metadata), nothing the loss
# fits read, so adding or changing this table must not change the data version that keys the
# meta-analysis sweep and its shipped results. It has its own version, stored as meta
# 'downstream_version'; a database whose downstream version differs is stale (rebuilt).
DOWNSTREAM_SQL = """
CREATE TABLE downstream_evals (
    source VARCHAR NOT NULL, family VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
    tokens_seen DOUBLE NOT NULL CHECK (tokens_seen > 0), flops DOUBLE CHECK (flops > 0),
    task VARCHAR NOT NULL, metric VARCHAR NOT NULL, shots INTEGER, chance DOUBLE CHECK (chance >= 0 AND chance < 1),
    n_questions DOUBLE, value DOUBLE NOT NULL CHECK (value >= 0 AND value <= 1));
"""


def downstream_version() -> str:
    """sha256 over the downstream table's schema and each adapter's ``DOWNSTREAM_VERSION``."""
    from scaleplan.core.sources import adapters

    digest = hashlib.sha256(DOWNSTREAM_SQL.encode())
    for adapter in adapters():
        if hasattr(adapter, "downstream_evals") or hasattr(adapter, "downstream_from_frames"):
            digest.update(f"{adapter.NAME}={getattr(adapter, 'DOWNSTREAM_VERSION', 0)};".encode())
    return digest.hexdigest()


class DatabaseError(UserError, RuntimeError):
    """The database is missing, corrupt or stale and could not be (re)built."""


@dataclass
class BuildReport:
    path: Path
    seconds: float
    per_source: dict[str, dict[str, Any]] = field(default_factory=dict)
    moved_aside: Path | None = None  # where a corrupt previous file was moved, if any
    removed_temporaries: list[Path] = field(default_factory=list)  # dead builds' leftovers


def ingest_digest() -> str:
    """sha256 over what decides how files become tables: the schema and each adapter's declared ``VERSION``.

    Not the adapters' source bytes: a docstring or a refactor that yields the same rows must not
    mark every user's database stale (nor orphan the shipped sweep results). An adapter whose
    output changes bumps its ``VERSION``; :func:`content_digests` and the shipped-results test
    catch a change that forgot to.
    """
    from scaleplan.core.sources import adapters

    digest = hashlib.sha256((SCHEMA_VERSION + SCHEMA_SQL).encode())
    for adapter in adapters():
        digest.update(f"{adapter.NAME}={adapter.VERSION};".encode())
    return digest.hexdigest()


def data_version(manifest: Manifest) -> str:
    """The version of the data: the manifest's file digests (the inputs) and :func:`ingest_digest`."""
    return hashlib.sha256((manifest.digest + ingest_digest()).encode()).hexdigest()


# Per source, md5 over its runs and observations in a fixed order, values written with 17
# significant digits (exact for a double), so two builds agree exactly when their tables do.
_CONTENT_DIGEST_SQL = """
WITH r AS (
    SELECT source, string_agg(concat_ws('|', run_id, family, printf('%.17g', num_params), coalesce(seed, -1),
                                        coalesce(printf('%.17g', planned_tokens), ''),
                                        printf('%.17g', unique_tokens)), ';' ORDER BY run_id) AS t
    FROM runs GROUP BY source),
o AS (
    SELECT source, string_agg(concat_ws('|', run_id, metric, printf('%.17g', tokens_seen), printf('%.17g', value)),
                              ';' ORDER BY run_id, metric, tokens_seen) AS t
    FROM observations GROUP BY source)
SELECT s.source, md5(coalesce(r.t, '') || '#' || coalesce(o.t, ''))
FROM sources s LEFT JOIN r USING (source) LEFT JOIN o USING (source)
ORDER BY s.source
"""


def content_digests(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per source, a digest of the rows it contributed (runs and observations) to this database."""
    return dict(con.execute(_CONTENT_DIGEST_SQL).fetchall())


DUCKDB_MAGIC = b"DUCK"
"""Bytes 8-11 of every DuckDB database file (after an 8-byte checksum)."""
_MAGIC_OFFSET = 8


def is_duckdb_file(path: Path) -> bool:
    """True when ``path`` is a regular file that starts like a DuckDB database (its magic bytes)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError:
        return False
    return head[_MAGIC_OFFSET:] == DUCKDB_MAGIC


def has_table(path: Path, table: str) -> bool | None:
    """Whether the DuckDB file at ``path`` holds ``table``; None when it cannot be opened read-only
    (for instance while another process writes it: DuckDB locks the file)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.Error, OSError):
        return None
    try:
        row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
        return bool(row and row[0])
    except duckdb.Error:
        return None
    finally:
        con.close()


_LOCK_MARKERS = ("could not set lock", "conflicting lock")
#: What the CLI tells its user to do about a file in use (the dashboard says its own, see dashboard.common).
CLI_IN_USE_REMEDY = "close it, or point --db / --user-db elsewhere"


def is_lock_error(error: BaseException) -> bool:
    """True for DuckDB's file-lock error: another process holds the file.

    DuckDB allows several read-only processes on one file, or one writer and no one else; a
    connection that conflicts fails with "IO Error: Could not set lock on file ...: Conflicting
    lock is held in <program> (PID <n>)". The file is healthy and must be left alone.
    """
    return any(marker in str(error).lower() for marker in _LOCK_MARKERS)


def lock_pid(error: BaseException) -> int | None:
    """The holding process's id named in DuckDB's lock error, or None."""
    pid = re.search(r"PID (\d+)", str(error))
    return int(pid.group(1)) if pid else None


def in_use_reason(path: object, pid: int | None) -> str:
    """What every "in use" message says is wrong, without a remedy and without a full stop: ``path``
    (as the caller shows it: the dashboard passes it Markdown-escaped) is held by another program,
    the process ``pid`` when known. The CLI and the dashboard each add their own remedy."""
    holder = f" (PID {pid})" if pid is not None else ""
    return f"{path} is in use by another program{holder}, e.g. a running `scaleplan serve` or another scaleplan command"


def in_use_message(path: Path, error: BaseException, remedy: str = CLI_IN_USE_REMEDY) -> str | None:
    """The plain message for DuckDB's file-lock error on ``path`` (``None`` for any other error):
    :func:`in_use_reason`, then ``remedy`` (what the reader can do), then that the file was not touched."""
    return str(FileInUseError(path, error, remedy)) if is_lock_error(error) else None


class FileInUseError(UserError):
    """A scaleplan file that another process holds (DuckDB's lock, :func:`is_lock_error`): it is
    healthy, and nothing is done to it.

    ``path`` is the file, ``pid`` the holding process when DuckDB names it; the message is
    :func:`in_use_message` with ``remedy``. A user interface with a remedy of its own (the
    dashboard) builds its message from :func:`in_use_reason` with ``path`` and ``pid``.
    """

    def __init__(self, path: Path, error: BaseException, remedy: str = CLI_IN_USE_REMEDY) -> None:
        self.path = Path(path)
        self.pid = lock_pid(error)
        super().__init__(f"{in_use_reason(self.path, self.pid)}; {remedy}. The file was not touched.")


class DatabaseInUseError(DatabaseError, FileInUseError):
    """The database file is locked by another process (it is healthy; nothing is done to it)."""


def database_status(db_path: Path, manifest_path: Path = MANIFEST_PATH) -> str:
    """One of ``"ok"``, ``"missing"``, ``"corrupt"``, ``"stale"`` or ``"foreign"``.

    ``"foreign"``: the path holds something that is not recognisably scaleplan's database (a
    folder, a CSV, a DuckDB database without scaleplan's ``meta`` table); it is never built over.
    ``"corrupt"``: a DuckDB file that cannot be opened or lacks its data version; a build moves it
    aside (:func:`build_database`) rather than deleting it.
    Raises :class:`DatabaseInUseError` when another process holds a conflicting lock on the file
    (it is healthy, and is neither moved nor rebuilt).
    """
    db_path = Path(db_path)
    if not db_path.exists():
        return "missing"
    if not db_path.is_file() or not is_duckdb_file(db_path):
        return "foreign"
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except (duckdb.Error, OSError) as error:
        if is_lock_error(error):
            raise DatabaseInUseError(db_path, error) from error
        return "corrupt"
    try:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "meta" not in tables:
            return "foreign"  # a DuckDB database, but someone else's
        keys = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if "schema_version" not in keys and "data_version" not in keys:
            return "foreign"
        con.execute("SELECT count(*) FROM observations").fetchone()
        row = keys.get("data_version")
        downstream = keys.get("downstream_version")
    except (duckdb.Error, OSError, ValueError):
        return "corrupt"
    finally:
        con.close()
    if row is None:
        return "corrupt"
    if row != data_version(load_manifest(manifest_path)) or downstream != downstream_version():
        return "stale"
    return "ok"


def foreign_file_message(db_path: Path) -> str:
    """Why a build refuses ``db_path`` and what to do (one line)."""
    kind = "a folder" if Path(db_path).is_dir() else "a file that is not scaleplan's database"
    return (
        f"{db_path} is {kind}; scaleplan will not write over it. Give the database another path with "
        "--db (or $SCALEPLAN_DB), or move that file away"
    )


TMP_INFIX = ".tmp-"
"""A database build writes ``<db name>.tmp-<pid>`` (and its ``.wal``) beside the database, then renames it
into place: what :func:`remove_stale_temporaries` clears and the brief never writes over."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(db_path: Path) -> list[Path]:
    """Delete the temporary files of builds of ``db_path`` whose process is dead; return them.

    Only files named ``<db name>.tmp-<pid>`` (and their ``.wal``) that a build of this database
    writes, and only when no process ``<pid>`` runs on this machine: a live build keeps its file.
    """
    db_path = Path(db_path)
    removed: list[Path] = []
    prefix = db_path.name + TMP_INFIX
    try:
        candidates = list(db_path.parent.iterdir())
    except OSError:
        return removed
    for path in candidates:
        name = path.name
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].removesuffix(".wal")
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


CORRUPT_SUFFIX = ".corrupt-"
"""A corrupt database is moved aside to ``<name>.corrupt-<UTC time>`` (scaleplan's own file from then on)."""


def _move_aside(db_path: Path) -> Path:
    """Rename a corrupt database to ``<name>.corrupt-<UTC time>`` (never deleted); return the new path."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = db_path.with_name(f"{db_path.name}{CORRUPT_SUFFIX}{stamp}")
    os.replace(db_path, aside)
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.is_file():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    return aside


def build_database(
    db_path: Path,
    *,
    mirror: str | os.PathLike[str] | None = None,
    download_dir: Path | None = None,
    download_url: str | None = None,
    manifest_path: Path = MANIFEST_PATH,
    progress: bool = True,
    on_source: Callable[[str, int, int], None] | None = None,
) -> BuildReport:
    """Build the database from a mirror (or downloads) atomically; return what was read.

    ``on_source(name, index, total)`` is called before each adapter runs (for UI progress).
    Raises :class:`DatabaseError` before reading anything when ``db_path`` holds something that
    is not scaleplan's database (status ``"foreign"``): it is never written over. A corrupt
    DuckDB file is moved aside to ``<name>.corrupt-<time>`` (``BuildReport.moved_aside``), and
    the temporary files of dead builds are removed (``BuildReport.removed_temporaries``).
    """
    from tqdm.auto import tqdm

    from scaleplan.core.sources import adapters

    start = time.perf_counter()
    db_path = Path(db_path)
    prior = database_status(db_path, manifest_path)
    if prior == "foreign":
        raise DatabaseError(foreign_file_message(db_path))
    manifest = load_manifest(manifest_path)
    root = Path(mirror).expanduser().resolve() if mirror else None
    if root is None:
        root = download(
            manifest, download_dir or Path(db_path).parent / "downloads", progress=progress, template=download_url
        )
    elif not root.is_dir():
        raise DataSourceError(f"mirror folder {root} does not exist")
    verify_mirror(manifest, root)

    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = db_path.with_name(f"{db_path.name}{TMP_INFIX}{os.getpid()}")
    tmp_path.unlink(missing_ok=True)
    tmp_path.with_name(tmp_path.name + ".wal").unlink(missing_ok=True)
    report = BuildReport(path=db_path, seconds=0.0, removed_temporaries=remove_stale_temporaries(db_path))
    modules = adapters()
    try:
        con = duckdb.connect(str(tmp_path))
        try:
            con.execute(SCHEMA_SQL)
            con.execute(DOWNSTREAM_SQL)
            run_parts: list[pd.DataFrame] = []
            obs_parts: list[pd.DataFrame] = []
            metric_parts: list[pd.DataFrame] = []
            family_parts: list[pd.DataFrame] = []
            downstream_parts: list[pd.DataFrame] = []
            source_rows: list[dict[str, Any]] = []
            bad_rows: list[dict[str, Any]] = []
            bar = tqdm(modules, desc="ingesting sources", unit="source", disable=not progress)
            for index, module in enumerate(bar):
                bar.set_postfix_str(module.NAME)
                if on_source:
                    on_source(module.NAME, index, len(modules))
                t0 = time.perf_counter()
                try:
                    frames = module.read(root)
                except Exception as error:  # an unreadable file: name the source, keep the old database
                    raise DataSourceError(f"source '{module.NAME}' could not be read: {error}") from error
                if hasattr(module, "downstream_evals") or hasattr(module, "downstream_from_frames"):
                    try:
                        scores = (
                            module.downstream_evals(root)
                            if hasattr(module, "downstream_evals")
                            else module.downstream_from_frames(frames)
                        )
                        downstream_parts.append(scores.assign(source=module.NAME))
                    except Exception as error:
                        raise DataSourceError(
                            f"source '{module.NAME}' downstream scores could not be read: {error}"
                        ) from error
                seconds = time.perf_counter() - t0
                runs = frames.runs.assign(source=module.NAME)
                obs = frames.observations.assign(source=module.NAME)
                fams = frames.families.assign(source=module.NAME)
                run_parts.append(runs)
                obs_parts.append(obs)
                metric_parts.append(frames.metrics)
                family_parts.append(fams)
                files = manifest.files_of(module.NAME)
                repo = manifest.repositories[module.REPOSITORY]
                source_rows.append(
                    {
                        "source": module.NAME,
                        "repository": repo["repository"],
                        "commit": repo["commit"],
                        "license": repo["license"],
                        "paper": repo.get("paper"),
                        "files": len(files),
                        "bytes": sum(f.bytes for f in files),
                        "bad_rows": sum(frames.bad_rows.values()),
                        "seconds": seconds,
                    }
                )
                bad_rows += [{"source": module.NAME, "reason": r, "count": n} for r, n in frames.bad_rows.items()]
                report.per_source[module.NAME] = {"seconds": seconds, "bad_rows": dict(frames.bad_rows)}
            _insert_all(con, run_parts, obs_parts, metric_parts, family_parts, source_rows, bad_rows, manifest)
            _insert_downstream(con, downstream_parts)
            con.execute(
                "INSERT INTO meta VALUES ('data_version', ?), ('schema_version', ?), ('built_at', ?), "
                "('manifest_digest', ?), ('downstream_version', ?)",
                [
                    data_version(manifest),
                    SCHEMA_VERSION,
                    _dt.datetime.now(_dt.UTC).isoformat(),
                    manifest.digest,
                    downstream_version(),
                ],
            )
            con.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [[f"content_digest:{source}", digest] for source, digest in content_digests(con).items()],
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()
        # Checked again just before the swap: the file may have changed during the build.
        now = database_status(db_path, manifest_path)
        if now == "foreign":
            raise DatabaseError(foreign_file_message(db_path))
        if now == "corrupt":
            report.moved_aside = _move_aside(db_path)
        os.replace(tmp_path, db_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        tmp_path.with_name(tmp_path.name + ".wal").unlink(missing_ok=True)
        raise
    report.seconds = time.perf_counter() - start
    return report


def _insert_all(
    con: duckdb.DuckDBPyConnection,
    run_parts: list[pd.DataFrame],
    obs_parts: list[pd.DataFrame],
    metric_parts: list[pd.DataFrame],
    family_parts: list[pd.DataFrame],
    source_rows: list[dict[str, Any]],
    bad_rows: list[dict[str, Any]],
    manifest: Manifest,
) -> None:
    """Merge the adapters' frames (first description of a run/metric/family wins) and load them."""
    runs = pd.concat(run_parts, ignore_index=True).drop_duplicates("run_id", keep="first")
    runs["unique_tokens"] = runs["unique_tokens"].astype(float) if "unique_tokens" in runs else float("nan")
    metrics = pd.concat(metric_parts, ignore_index=True).drop_duplicates("metric", keep="first")
    families = pd.concat(family_parts, ignore_index=True).drop_duplicates("family", keep="first")
    observations = pd.concat(obs_parts, ignore_index=True)
    observations["source_rank"] = observations["source"].map({r["source"]: i for i, r in enumerate(source_rows)})
    for frame in (runs, metrics, families, observations):
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype).startswith("str"):
                frame[column] = frame[column].astype(object)
    sources = pd.DataFrame(source_rows)
    bad = pd.DataFrame(bad_rows, columns=["source", "reason", "count"])
    files = pd.DataFrame(
        [
            {"source": f.adapter, "folder": f.folder, "path": f.path, "sha256": f.sha256, "bytes": f.bytes}
            for f in manifest.files
        ]
    )
    con.register("runs_df", runs)
    con.register("obs_df", observations)
    con.register("metrics_df", metrics)
    con.register("families_df", families)
    con.register("sources_df", sources)
    con.register("bad_df", bad)
    con.register("files_df", files)
    con.execute("""
        INSERT INTO runs SELECT run_id, source, family, model_name, architecture, num_params,
            num_params_derived, training_data, TRY_CAST(seed AS BIGINT), planned_tokens, source_paper, domain,
            unique_tokens
        FROM runs_df""")
    con.execute("INSERT INTO metrics SELECT metric, kind, higher_is_better, domain FROM metrics_df")
    # Observations: first source wins on a duplicated (run, tokens, metric); sorted for fast family scans.
    con.execute("""
        INSERT INTO observations
        SELECT r.family, o.run_id, o.metric, o.tokens_seen, o.flops, o.flops_derived, o.tokens_derived,
               o.value, o.source
        FROM (SELECT *, row_number() OVER (PARTITION BY run_id, tokens_seen, metric ORDER BY source_rank) AS k
              FROM obs_df) o
        JOIN runs r USING (run_id)
        WHERE o.k = 1
        ORDER BY r.family, o.run_id, o.metric, o.tokens_seen""")
    con.execute("""
        INSERT INTO families
        SELECT f.family, f.source, f.default_metric, f.description,
               (SELECT mode(architecture) FROM runs r WHERE r.family = f.family),
               (SELECT mode(domain) FROM runs r WHERE r.family = f.family),
               (SELECT count(*) FROM runs r WHERE r.family = f.family)
        FROM families_df f""")
    con.execute("INSERT INTO sources SELECT * FROM sources_df")
    con.execute("INSERT INTO bad_rows SELECT * FROM bad_df")
    con.execute("INSERT INTO source_files SELECT * FROM files_df")
    con.execute("CREATE INDEX observations_run ON observations (run_id)")
    for name in ("runs_df", "obs_df", "metrics_df", "families_df", "sources_df", "bad_df", "files_df"):
        con.unregister(name)


def _insert_downstream(con: duckdb.DuckDBPyConnection, parts: list[pd.DataFrame]) -> None:
    """Load the adapters' downstream scores, each tied to its run (family, FLOPs = 6 N D from runs)."""
    if not parts:
        return
    frame = pd.concat(parts, ignore_index=True)
    for column in ("run_id", "task", "metric", "source"):
        frame[column] = frame[column].astype(object)
    frame["shots"] = frame["shots"].astype("float64")
    con.register("downstream_df", frame)
    con.execute("""
        INSERT INTO downstream_evals
        SELECT d.source, r.family, d.run_id, d.tokens_seen, 6 * r.num_params * d.tokens_seen, d.task, d.metric,
               TRY_CAST(d.shots AS INTEGER), d.chance, d.n_questions, d.value
        FROM downstream_df d JOIN runs r USING (run_id)
        WHERE d.chance IS NOT NULL AND isfinite(d.chance) AND d.chance >= 0 AND d.chance < 1
        ORDER BY r.family, d.run_id, d.task, d.metric, d.shots, d.tokens_seen""")
    con.unregister("downstream_df")


def ensure_database(
    db_path: Path, *, mirror: str | os.PathLike[str] | None = None, progress: bool = True, **kwargs: Any
) -> str:
    """Build the database if it is missing, stale or corrupt; return the status found."""
    status = database_status(db_path)
    if status == "foreign":
        raise DatabaseError(foreign_file_message(db_path))
    if status != "ok":
        build_database(db_path, mirror=mirror, progress=progress, **kwargs)
    return status


def connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection (queries never write; a rebuild swaps the file underneath)."""
    if not Path(db_path).exists():
        raise DatabaseError(f"no database at {db_path}: run `scaleplan data build`")
    try:
        return duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as error:
        if is_lock_error(error):
            raise DatabaseInUseError(Path(db_path), error) from error
        raise DatabaseError(
            f"the database at {db_path} cannot be opened ({error}); run `scaleplan data build --force`"
        ) from error


# ---------------------------------------------------------------------------------------------
# Queries. Every user-influenced value is a bound parameter.

# What the collection counts as a run, against the paper's count: shown on the Overview and quoted
# by the README. Its numbers are checked against the database (tests/core/test_storage.py).
RUN_COUNTING = (
    "A run here is one model's training curve on one data setting and token budget: 747 runs in 117 "
    'families. The paper\'s "485 models" counts published pretrained models; here each (size, data set, '
    "token budget) of the gzip study is its own run (150 runs of 6 model sizes), as is each repetition "
    "setting, IsoLoss contour point and code mix of datablations (285 runs of 23 sizes), each (size, data "
    "set, token multiplier) of the over-training testbed (104 runs of 6 sizes) and each (domain, task, "
    "model) curve of the Revisiting benchmark (92 runs); Pythia is rebuilt from EleutherAI's evaluation "
    "files (21 runs), and the paper's models whose files are not public are missing."
)


@dataclass(frozen=True)
class SourceSummary:
    """What one source adapter put in the database (counts of distinct values).

    ``models`` counts every run the source has observations of, its own and those of other sources
    it adds values to; ``runs`` counts only the runs it provides (``runs.source``), so the sources'
    ``runs`` add up to the collection's runs. A source that adds values to another source's runs
    (ColPret's over-training downstream evaluations) states them in ``added_*``.
    """

    source: str
    repository: str
    commit: str  # the pinned commit of the source's repository (40 hex digits)
    license: str
    files: int  # files read
    bad_rows: int  # rows skipped, by reason in ``bad_row_reasons``
    models: int  # runs it has observations of (its own and other sources')
    families: int
    observations: int  # (run, checkpoint, metric) values
    metrics: int
    checkpoints: int  # distinct (run, tokens seen)
    downstream_evals: int  # benchmark scores (task, shots) of its runs' checkpoints
    bad_row_reasons: dict[str, int] = field(default_factory=dict)
    runs: int = 0  # runs it provides (runs.source is this source)
    added_runs: int = 0  # runs of other sources it adds observations to
    added_to: tuple[str, ...] = ()  # those sources, sorted
    added_metrics: int = 0  # distinct metrics of those observations
    added_observations: int = 0  # (run, checkpoint, metric) values on other sources' runs

    def added_text(self) -> str:
        """What it adds to other sources' runs, in words ("" when nothing): e.g. "64 metrics (6,656 values)
        on 104 runs of overtrain"."""
        if not self.added_runs:
            return ""
        return (
            f"{self.added_metrics:,} metric{'s' if self.added_metrics != 1 else ''} "
            f"({self.added_observations:,} values) on {self.added_runs:,} run{'s' if self.added_runs != 1 else ''} "
            f"of {', '.join(self.added_to)}"
        )


@dataclass(frozen=True)
class CollectionSummary:
    """Counts per source and in total (distinct over the whole database, so not the sums of the sources')."""

    models: int
    families: int
    observations: int
    metrics: int
    checkpoints: int
    bad_rows: int
    downstream_evals: int
    built_at: str | None  # ISO 8601 UTC time of the build, None for a database without it
    sources: tuple[SourceSummary, ...]  # most observations first

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``scaleplan data summary --json`` (field names as above)."""
        return dataclasses.asdict(self) | {"sources": [dataclasses.asdict(s) for s in self.sources]}


def _added(row: tuple[Any, ...] | None) -> dict[str, Any]:
    """SourceSummary's added_* fields from (runs, sources, metrics, observations), none for None."""
    if row is None:
        return {}
    runs, sources, metrics, observations = row
    return {
        "added_runs": int(runs),
        "added_to": tuple(str(s) for s in sources),
        "added_metrics": int(metrics),
        "added_observations": int(observations),
    }


def summary(con: duckdb.DuckDBPyConnection) -> CollectionSummary:
    """Counts per source and in total: models, families, observations, metrics, checkpoints."""
    per_source = con.execute("""
        SELECT s.source, s.repository, s."commit", s.license, s.files, s.bad_rows,
               count(DISTINCT o.run_id) AS models, count(DISTINCT o.family) AS families,
               count(o.value) AS observations, count(DISTINCT o.metric) AS metrics,
               count(DISTINCT (o.run_id, o.tokens_seen)) AS checkpoints
        FROM sources s LEFT JOIN observations o ON o.source = s.source
        GROUP BY ALL ORDER BY observations DESC""").df()
    totals = con.execute("""
        SELECT count(DISTINCT run_id), count(DISTINCT family), count(*), count(DISTINCT metric),
               count(DISTINCT (run_id, tokens_seen)) FROM observations""").fetchone()
    assert totals is not None  # an aggregate without GROUP BY returns exactly one row
    bad = con.execute("SELECT source, reason, count FROM bad_rows ORDER BY source, count DESC").df()
    own = dict(con.execute("SELECT source, count(*) FROM runs GROUP BY source").fetchall())
    added = {
        str(row[0]): row[1:]
        for row in con.execute("""
            SELECT o.source, count(DISTINCT o.run_id), list(DISTINCT r.source ORDER BY r.source),
                   count(DISTINCT o.metric), count(*)
            FROM observations o JOIN runs r USING (run_id) WHERE r.source <> o.source
            GROUP BY o.source""").fetchall()
    }
    downstream = dict(downstream_counts(con))
    built = dict(con.execute("SELECT key, value FROM meta").fetchall())
    sources = tuple(
        SourceSummary(
            source=str(row["source"]),
            repository=str(row["repository"]),
            commit=str(row["commit"]),
            license=str(row["license"]),
            files=int(row["files"]),
            bad_rows=int(row["bad_rows"]),
            models=int(row["models"]),
            families=int(row["families"]),
            observations=int(row["observations"]),
            metrics=int(row["metrics"]),
            checkpoints=int(row["checkpoints"]),
            downstream_evals=int(downstream.get(row["source"], 0)),
            bad_row_reasons={
                str(r["reason"]): int(r["count"]) for r in bad[bad.source == row["source"]].to_dict("records")
            },
            runs=int(own.get(row["source"], 0)),
            **_added(added.get(str(row["source"]))),
        )
        for row in per_source.to_dict("records")
    )
    built_at = built.get("built_at")
    return CollectionSummary(
        models=int(totals[0]),
        families=int(totals[1]),
        observations=int(totals[2]),
        metrics=int(totals[3]),
        checkpoints=int(totals[4]),
        bad_rows=sum(s.bad_rows for s in sources),
        downstream_evals=int(sum(downstream.values())),
        built_at=None if built_at is None else str(built_at),
        sources=sources,
    )


def downstream_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(source, number of downstream scores) per source; empty for a database built before the table."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'downstream_evals'"
    ).fetchone()
    if not found or not found[0]:
        return []
    return [
        (str(s), int(n))
        for s, n in con.execute(
            "SELECT source, count(*) FROM downstream_evals GROUP BY source ORDER BY source"
        ).fetchall()
    ]


def downstream_tasks(con: duckdb.DuckDBPyConnection, families: list[str]) -> pd.DataFrame:
    """Tasks scored on ``families``: task, metric, shots, chance, median n_questions, runs, scores."""
    return con.execute(
        """
        SELECT task, metric, shots, any_value(chance) AS chance, median(n_questions) AS n_questions,
               count(DISTINCT run_id) AS runs, count(*) AS scores
        FROM downstream_evals WHERE list_contains($families, family)
        GROUP BY task, metric, shots ORDER BY task, metric, shots""",
        {"families": list(families)},
    ).df()


def downstream_family_scores(con: duckdb.DuckDBPyConnection, families: list[str]) -> pd.DataFrame:
    """Every score of ``families``: family, run_id, num_params, tokens_seen, flops, task, metric, shots,
    chance, n_questions, value (fraction)."""
    return con.execute(
        """
        SELECT d.family, d.run_id, r.num_params, d.tokens_seen, d.flops, d.task, d.metric, d.shots, d.chance,
               d.n_questions, d.value
        FROM downstream_evals d JOIN runs r USING (run_id)
        WHERE list_contains($families, d.family)
        ORDER BY d.family, d.task, r.num_params, d.run_id, d.tokens_seen""",
        {"families": list(families)},
    ).df()


def downstream_scores(
    con: duckdb.DuckDBPyConnection, families: list[str], task: str, metric: str = "acc", shots: int | None = None
) -> pd.DataFrame:
    """Scores of one task on ``families`` with each run's size: family, run_id, num_params, tokens_seen,
    flops, shots, chance, n_questions, value (fraction)."""
    return con.execute(
        """
        SELECT d.family, d.run_id, r.num_params, d.tokens_seen, d.flops, d.shots, d.chance, d.n_questions, d.value
        FROM downstream_evals d JOIN runs r USING (run_id)
        WHERE list_contains($families, d.family) AND d.task = $task AND d.metric = $metric
          AND ($shots::INTEGER IS NULL OR d.shots = $shots::INTEGER)
        ORDER BY d.family, r.num_params, d.run_id, d.tokens_seen""",
        {"families": list(families), "task": task, "metric": metric, "shots": shots},
    ).df()


def list_families(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Families with their default metric, run count and size range."""
    return con.execute("""
        SELECT f.family, f.source, f.architecture, f.domain, f.default_metric, f.num_runs,
               min(r.num_params) AS min_params, max(r.num_params) AS max_params,
               count(DISTINCT r.num_params) AS num_sizes, f.description
        FROM families f JOIN runs r USING (family)
        GROUP BY ALL ORDER BY f.family""").df()


def list_runs(con: duckdb.DuckDBPyConnection, family: str | None = None) -> pd.DataFrame:
    """Runs (of one family, or all), with their observed token range for the default metric."""
    return con.execute(
        """
        SELECT r.*, max(o.tokens_seen) AS max_tokens_seen, count(o.value) AS num_checkpoints
        FROM runs r JOIN families f USING (family)
        LEFT JOIN observations o ON o.run_id = r.run_id AND o.metric = f.default_metric
        WHERE ?::VARCHAR IS NULL OR r.family = ?
        GROUP BY ALL ORDER BY r.family, r.num_params, r.run_id""",
        [family, family],
    ).df()


def family_curves(con: duckdb.DuckDBPyConnection, family: str, metric: str | None = None) -> pd.DataFrame:
    """All observations of one metric (default: the family's loss metric) for one family."""
    return con.execute(
        """
        SELECT o.run_id, r.model_name, r.num_params, o.tokens_seen, o.flops, o.value, r.unique_tokens
        FROM observations o JOIN runs r USING (run_id)
        WHERE o.family = ? AND o.metric = coalesce(?, (SELECT default_metric FROM families WHERE family = ?))
        ORDER BY r.num_params, o.run_id, o.tokens_seen""",
        [family, metric, family],
    ).df()


def seed_replicates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Runs repeated with different seeds: one row per (family, num_params, planned_tokens, architecture,
    training_data) that has two or more runs with distinct known seeds, with its source and the counts
    (runs, seeds). Empty when the collection holds no multi-seed family (the planner then measures no
    seed gain)."""
    return con.execute("""
        SELECT family, any_value(source) AS source, num_params, planned_tokens,
               count(*) AS runs, count(DISTINCT seed) AS seeds
        FROM runs WHERE seed IS NOT NULL
        GROUP BY family, num_params, planned_tokens, architecture, training_data
        HAVING count(DISTINCT seed) >= 2
        ORDER BY family, num_params""").df()


def run_curve(con: duckdb.DuckDBPyConnection, run_id: str, metric: str) -> pd.DataFrame:
    """One run's curve of one metric, ordered by tokens seen."""
    return con.execute(
        """
        SELECT tokens_seen, flops, value FROM observations
        WHERE run_id = ? AND metric = ? ORDER BY tokens_seen""",
        [run_id, metric],
    ).df()


def final_metric_pairs(con: duckdb.DuckDBPyConnection, family: str, metric: str, paired: str) -> pd.DataFrame:
    """Each run of ``family`` with its ``metric`` observation and its ``paired`` one (NaN if none).

    For families whose runs hold one (final) observation per metric, as the over-training testbed's:
    the pairing is per run, not per checkpoint. Columns run_id, num_params, tokens_seen (of the
    ``metric`` observation), value, paired_value; ordered by size, then tokens.
    """
    return con.execute(
        """
        SELECT r.run_id, r.num_params, l.tokens_seen, l.value, e.value AS paired_value
        FROM runs r
        JOIN observations l ON l.run_id = r.run_id AND l.metric = ?
        LEFT JOIN observations e ON e.run_id = r.run_id AND e.metric = ?
        WHERE r.family = ? ORDER BY r.num_params, l.tokens_seen""",
        [metric, paired, family],
    ).df()


def tokens_per_param_quantiles(
    con: duckdb.DuckDBPyConnection, low: float, high: float
) -> tuple[float | None, float | None]:
    """The ``low`` and ``high`` quantiles (linear interpolation, DuckDB's ``quantile_cont``) of tokens
    per parameter, D / N, over the collection's runs, D a run's largest ``tokens_seen`` (its final
    checkpoint, any metric) and N its ``num_params``; (None, None) when no run has an observation."""
    row = con.execute(
        """
        SELECT quantile_cont(tpp, ?), quantile_cont(tpp, ?) FROM (
            SELECT max(o.tokens_seen) / any_value(r.num_params) AS tpp
            FROM runs r JOIN observations o ON o.run_id = r.run_id
            WHERE r.num_params > 0 GROUP BY r.run_id)""",
        [float(low), float(high)],
    ).fetchone()
    if row is None:
        return None, None
    return (None if row[0] is None else float(row[0])), (None if row[1] is None else float(row[1]))


# =============================================================================================
# Dashboard queries
#
# Read-only queries behind the Streamlit pages (dashboard/). Every user-influenced value is a
# bound parameter (lists are bound as VARCHAR[]); aggregation and downsampling run in DuckDB.

UNSPECIFIED = "(not stated)"  # how a run without training_data is shown and filtered


def family_metrics(con: duckdb.DuckDBPyConnection, families: list[str]) -> pd.DataFrame:
    """Metrics observed in ``families``: kind, description, point/run/family counts, default flag.

    Ordered with the families' default metrics first, then by how many runs report them.
    """
    return con.execute(
        """
        SELECT o.metric, m.kind, m.higher_is_better, m.domain AS description,
               count(*) AS num_points, count(DISTINCT o.run_id) AS num_runs,
               count(DISTINCT o.family) AS num_families,
               bool_or(o.metric = f.default_metric) AS is_default
        FROM observations o JOIN metrics m USING (metric) JOIN families f USING (family)
        WHERE list_contains(?::VARCHAR[], o.family)
        GROUP BY ALL
        ORDER BY is_default DESC, num_runs DESC, o.metric""",
        [list(families)],
    ).df()


def explore_runs(
    con: duckdb.DuckDBPyConnection,
    families: list[str],
    metric: str,
    *,
    architectures: list[str] | None = None,
    training_data: list[str] | None = None,
    min_params: float | None = None,
    max_params: float | None = None,
) -> pd.DataFrame:
    """Runs of ``families`` that report ``metric``, with optional filters (None = no filter).

    ``training_data`` matches :data:`UNSPECIFIED` for runs that do not state it. Columns: run_id,
    family, model_name, num_params, architecture, training_data, seed, num_points, min_tokens,
    max_tokens, max_flops, final_value (the value at the largest tokens_seen).
    """
    return con.execute(
        f"""
        SELECT r.run_id, r.family, r.model_name, r.num_params, r.architecture,
               coalesce(r.training_data, '{UNSPECIFIED}') AS training_data, r.seed,
               count(o.value) AS num_points, min(o.tokens_seen) AS min_tokens,
               max(o.tokens_seen) AS max_tokens, max(o.flops) AS max_flops,
               arg_max(o.value, o.tokens_seen) AS final_value
        FROM runs r JOIN observations o ON o.run_id = r.run_id AND o.metric = $metric
        WHERE list_contains($families::VARCHAR[], r.family)
          AND o.family = r.family
          AND ($architectures::VARCHAR[] IS NULL OR list_contains($architectures, r.architecture))
          AND ($training::VARCHAR[] IS NULL
               OR list_contains($training, coalesce(r.training_data, '{UNSPECIFIED}')))
          AND ($min_params::DOUBLE IS NULL OR r.num_params >= $min_params)
          AND ($max_params::DOUBLE IS NULL OR r.num_params <= $max_params)
        GROUP BY ALL
        ORDER BY r.num_params, r.family, r.run_id""",
        {
            "metric": metric,
            "families": list(families),
            "architectures": None if architectures is None else list(architectures),
            "training": None if training_data is None else list(training_data),
            "min_params": min_params,
            "max_params": max_params,
        },
    ).df()


def downsampled_curves(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], metric: str, *, max_points: int = 400
) -> pd.DataFrame:
    """The curves of ``metric`` for ``run_ids``, at most ``max_points`` points per run.

    A run with more points keeps the first point of each of ``max_points - 1`` equal-width
    buckets of log(tokens_seen) (so the curve stays even on a log axis) plus its last point.
    Columns: run_id, family, model_name, num_params, tokens_seen, flops, value, points_in_run.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    return con.execute(
        """
        WITH obs AS (
            SELECT o.run_id, o.tokens_seen, o.flops, o.value,
                   count(*) OVER run AS n,
                   row_number() OVER (PARTITION BY o.run_id ORDER BY o.tokens_seen DESC) AS from_end,
                   ln(o.tokens_seen) - ln(min(o.tokens_seen) OVER run) AS log_offset,
                   ln(max(o.tokens_seen) OVER run) - ln(min(o.tokens_seen) OVER run) AS log_span
            FROM observations o
            WHERE list_contains($runs::VARCHAR[], o.run_id) AND o.metric = $metric
            WINDOW run AS (PARTITION BY o.run_id)
        ), bucketed AS (
            SELECT *, CASE WHEN n <= $max_points OR log_span = 0 THEN from_end
                           ELSE floor(log_offset / log_span * ($max_points - 2)) END AS bucket
            FROM obs
        ), kept AS (
            SELECT *, row_number() OVER (PARTITION BY run_id, bucket ORDER BY tokens_seen) AS k
            FROM bucketed
        )
        SELECT r.run_id, r.family, r.model_name, r.num_params, x.tokens_seen, x.flops, x.value,
               x.n AS points_in_run
        FROM kept x JOIN runs r USING (run_id)
        WHERE x.k = 1 OR x.from_end = 1
        ORDER BY r.num_params, r.family, r.run_id, x.tokens_seen""",
        {"runs": list(run_ids), "metric": metric, "max_points": int(max_points)},
    ).df()


def source_group(adapter_name: str) -> str:
    """The source group of a family: the source adapter (``core.sources.<NAME>``) that yields it.

    The one rule for "which families share a source" (the build records each family's adapter in
    ``families.source``): everything one adapter yields is one group, e.g. all datablations
    families, all gzip-PCFG families, the three over-training families, Pythia standard and
    deduped. Families of one group share a lab's recipe, tokeniser and evaluation, so a
    calibration meant for a new lab's runs is measured holding whole groups out. (The rule lives
    here rather than in ``core/sources/``, whose files key the data version.)
    """
    return str(adapter_name)


def family_source_groups(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Family -> source group (:func:`source_group` of the adapter that yields it)."""
    return {
        family: source_group(source) for family, source in con.execute("SELECT family, source FROM families").fetchall()
    }


def loss_families(con: duckdb.DuckDBPyConnection, min_sizes: int) -> list[str]:
    """Families whose default metric is a loss and that have at least ``min_sizes`` distinct model sizes
    among their runs with observations of that metric (the runs :func:`family_curves` returns)."""
    rows = con.execute(
        """
        SELECT f.family FROM families f JOIN metrics m ON m.metric = f.default_metric
        JOIN runs r USING (family)
        WHERE m.kind = 'loss' AND EXISTS (
            SELECT 1 FROM observations o
            WHERE o.run_id = r.run_id AND o.family = f.family AND o.metric = f.default_metric)
        GROUP BY f.family HAVING count(DISTINCT r.num_params) >= ?
        ORDER BY f.family""",
        [min_sizes],
    ).fetchall()
    return [str(r[0]) for r in rows]


def stored_data_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The data version the database was built from (keys the meta-analysis rows), or None."""
    row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
    return None if row is None else str(row[0])

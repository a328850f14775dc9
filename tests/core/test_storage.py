"""The database: schema invariants, per-source counts, atomic/robust builds, queries."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import numpy as np
import pytest

from scaleplan.core import cli, storage
from scaleplan.core.manifest import ChecksumMismatchError, DataSourceError, load_manifest
from scaleplan.core.sources import adapters
from tests.helpers import replace_with_copy, symlink_mirror


def test_schema_invariants(con):
    assert con.execute("SELECT count(*) FROM observations WHERE NOT (tokens_seen > 0)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM runs WHERE NOT (num_params > 0)").fetchone()[0] == 0
    dup = con.execute("""SELECT count(*) FROM (SELECT run_id, tokens_seen, metric FROM observations
                         GROUP BY ALL HAVING count(*) > 1)""").fetchone()[0]
    assert dup == 0
    assert (
        con.execute("""SELECT count(*) FROM (SELECT DISTINCT metric FROM observations)
                          WHERE metric NOT IN (SELECT metric FROM metrics)""").fetchone()[0]
        == 0
    )
    assert con.execute("SELECT count(*) FROM metrics WHERE kind IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM observations WHERE NOT isfinite(value)").fetchone()[0] == 0
    assert (
        con.execute("""SELECT count(*) FROM observations o LEFT JOIN runs r USING (run_id)
                          WHERE r.run_id IS NULL OR r.family <> o.family""").fetchone()[0]
        == 0
    )
    # every family's default metric is a loss, or an error rate where the source has no loss
    bad = con.execute("""SELECT f.family, m.kind FROM families f JOIN metrics m ON m.metric = f.default_metric
                         WHERE m.kind NOT IN ('loss', 'error')
                            OR (m.kind = 'error' AND EXISTS (
                                SELECT 1 FROM observations o JOIN metrics k USING (metric)
                                WHERE o.family = f.family AND k.kind = 'loss'))""").fetchall()
    assert bad == []
    no_obs = con.execute("""SELECT family FROM families f WHERE NOT EXISTS (
                              SELECT 1 FROM observations o WHERE o.family = f.family
                              AND o.metric = f.default_metric)""").fetchall()
    assert no_obs == []


def test_summary_counts_every_source(con):
    result = storage.summary(con)
    names = {module.NAME for module in adapters()}
    per_source = {s.source: s for s in result.sources}
    assert set(per_source) == names
    for name, row in per_source.items():
        assert row.models > 0 and row.observations > 0 and row.metrics > 0, name
        assert len(row.commit) == 40
    assert result.models >= 300
    assert result.observations > 400_000
    assert result.families >= 30
    # Each run is provided by exactly one source (runs.source), so the sources' runs add up to the total;
    # a source whose observations land on another source's runs names them (counted here by run id prefix).
    assert sum(s.runs for s in result.sources) == result.models
    for row in result.sources:
        others = [run for run in _observed_runs(con, row.source) if run.split("/")[0] != row.source]
        assert set(row.added_to) == {run.split("/")[0] for run in others} and row.added_runs == len(others), row
    assert per_source["overtrain_downstreams"].runs == 0 and per_source["overtrain_downstreams"].added_runs == 104


def test_run_counting_statement_matches_the_database(con):
    """Every number in the Overview's (and README's) statement of what a run is comes from the database."""
    text = storage.RUN_COUNTING
    totals = storage.summary(con)
    assert f"{totals.models} runs in {totals.families} families" in text
    per_source = {
        source: (runs, sizes)
        for source, runs, sizes in con.execute(
            "SELECT source, count(*), count(DISTINCT num_params) FROM runs GROUP BY source"
        ).fetchall()
    }
    for source, with_sizes in (("gzip", "model sizes"), ("datablations", "sizes"), ("overtrain", "sizes")):
        runs, sizes = per_source[source]
        assert f"({runs} runs of {sizes} {with_sizes})" in text, source
    assert f"({per_source['revisiting'][0]} runs)" in text and f"({per_source['pythia'][0]} runs)" in text
    # gzip: one run per (size, data set, budget); datablations: repetition + contour + code runs.
    gzip = con.execute(
        "SELECT count(DISTINCT (num_params, family, planned_tokens)) FROM runs WHERE source = 'gzip'"
    ).fetchone()[0]
    assert gzip == per_source["gzip"][0]
    kinds = con.execute("""SELECT count(*) FILTER (WHERE run_id LIKE '%/contour-%'),
                                  count(*) FILTER (WHERE regexp_matches(run_id, '-[0-9]+ep$')),
                                  count(*) FILTER (WHERE family LIKE '%python')
                           FROM runs WHERE source = 'datablations'""").fetchone()
    assert all(k > 0 for k in kinds) and sum(kinds) == per_source["datablations"][0]
    assert '"485 models"' in text


def test_cli_summary_json(built_db, capsys):
    assert cli.main(["--db", str(built_db), "data", "summary", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"models", "families", "observations", "metrics", "sources"} <= set(doc)
    assert all(s["observations"] > 0 for s in doc["sources"])
    # The skipped rows per source (sources table) are the sum of their reasons (bad_rows table).
    assert all(s["bad_rows"] == sum(s["bad_row_reasons"].values()) for s in doc["sources"])
    assert doc["bad_rows"] == sum(s["bad_rows"] for s in doc["sources"])


def test_family_and_run_queries(con):
    pythia = storage.family_curves(con, "pythia-deduped")
    assert pythia["run_id"].nunique() == 8  # the eight Pythia sizes
    assert (pythia["value"] > 0).all()
    run = pythia["run_id"].iloc[0]
    curve = storage.run_curve(
        con, run, con.execute("SELECT default_metric FROM families WHERE family = 'pythia-deduped'").fetchone()[0]
    )
    assert curve["tokens_seen"].is_monotonic_increasing and len(curve) > 10


def test_hostile_family_name_is_harmless(con):
    hostile = "x'; DROP TABLE runs; --"
    assert storage.family_curves(con, hostile).empty
    assert storage.list_runs(con, hostile).empty
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0


def _copy_db(built_db, tmp_path):
    db = tmp_path / "scaleplan.duckdb"
    shutil.copyfile(built_db, db)
    return db


def test_interrupted_build_keeps_the_old_database(built_db, mirror, tmp_path, monkeypatch):
    db = _copy_db(built_db, tmp_path)
    before = db.read_bytes()
    module = adapters()[3]

    def boom(_mirror):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "read", boom)
    with pytest.raises(KeyboardInterrupt):
        storage.build_database(db, mirror=mirror, progress=False)
    assert db.read_bytes() == before
    assert storage.database_status(db) == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaleplan.duckdb"]


def test_failed_source_names_the_source_and_keeps_the_old_database(built_db, mirror, tmp_path, monkeypatch):
    db = _copy_db(built_db, tmp_path)
    module = adapters()[0]
    monkeypatch.setattr(module, "read", lambda _m: (_ for _ in ()).throw(ValueError("bad header")))
    with pytest.raises(DataSourceError, match=module.NAME):
        storage.build_database(db, mirror=mirror, progress=False)
    assert storage.database_status(db) == "ok"


def test_killed_build_process_keeps_the_old_database(built_db, mirror, tmp_path):
    db = _copy_db(built_db, tmp_path)
    code = (
        "import sys; from core import storage; "
        f"storage.build_database(__import__('pathlib').Path({str(db)!r}), mirror={str(mirror)!r}, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert storage.database_status(db) == "ok"
    con = storage.connect(db)
    assert con.execute("SELECT count(*) FROM observations").fetchone()[0] > 0
    con.close()


def test_checksum_mismatch_in_mirror_is_rejected(built_db, mirror, tmp_path):
    db = _copy_db(built_db, tmp_path)
    copy = symlink_mirror(mirror, tmp_path / "mirror")
    entry = load_manifest().files[0]
    changed = replace_with_copy(copy / entry.relative)
    changed.write_bytes(b"garbage," + changed.read_bytes())
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch"):
        storage.build_database(db, mirror=copy, progress=False)
    assert storage.database_status(db) == "ok"
    assert cli.main(["--db", str(db), "data", "build", "--force", "--quiet", "--mirror", str(copy)]) == 2


def test_corrupt_and_stale_databases_are_detected_and_rebuilt(built_db, mirror, tmp_path):
    db = _copy_db(built_db, tmp_path)
    with open(db, "r+b") as handle:
        handle.seek(4096)  # behind DuckDB's magic bytes: a damaged database, not someone else's file
        handle.write(b"\x00garbage" * 1024)
    assert storage.database_status(db) == "corrupt"
    with pytest.raises(storage.DatabaseError):
        storage.connect(db).execute("SELECT 1")
    assert storage.ensure_database(db, mirror=mirror, progress=False) == "corrupt"
    assert storage.database_status(db) == "ok"
    # a database built from another manifest is stale
    con = duckdb.connect(str(db))
    con.execute("UPDATE meta SET value = 'old' WHERE key = 'data_version'")
    con.close()
    assert storage.database_status(db) == "stale"


def test_missing_mirror_is_a_clear_cli_error(tmp_path, capsys):
    code = cli.main(["--db", str(tmp_path / "x.duckdb"), "data", "build", "--mirror", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_the_readme_quotes_the_run_counting_statement():
    """One statement of what a run is: the README's copy must match the Overview's word for word."""
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert " ".join(storage.RUN_COUNTING.split()) in readme


def _runs_db(runs: list[tuple[str, float, list[float]]]) -> duckdb.DuckDBPyConnection:
    """An in-memory database of the collection's schema holding ``runs``: (run_id, N, tokens_seen of
    each checkpoint)."""
    con = duckdb.connect()
    con.execute(storage.SCHEMA_SQL)
    for run_id, num_params, tokens in runs:
        con.execute(
            "INSERT INTO runs (run_id, source, family, architecture, num_params) VALUES (?, 's', 'f', 'decoder', ?)",
            [run_id, num_params],
        )
        for d in tokens:
            con.execute(
                "INSERT INTO observations (family, run_id, metric, tokens_seen, value, source) VALUES ('f', ?, 'loss', ?, 3.0, 's')",
                [run_id, d],
            )
    return con


def test_tokens_per_param_quantiles_use_each_runs_final_checkpoint():
    from scaleplan.core import planning

    rng = np.random.default_rng(3)
    sizes = 10.0 ** rng.uniform(7, 10, 40)
    ratios = 10.0 ** rng.uniform(-1, 3, 40)  # final D / N of each run
    runs = [(f"r{i}", n, sorted([m * n * 0.1, m * n * 0.5, m * n])) for i, (n, m) in enumerate(zip(sizes, ratios))]
    con = _runs_db(runs)
    low, high = storage.tokens_per_param_quantiles(con, 0.05, 0.95)
    assert (low, high) == pytest.approx(tuple(np.quantile(ratios, [0.05, 0.95])), rel=1e-9)
    assert planning.collection_tokens_per_param(con) == pytest.approx((low, high))
    empty = _runs_db([])
    assert storage.tokens_per_param_quantiles(empty, 0.05, 0.95) == (None, None)
    assert planning.collection_tokens_per_param(empty) == planning.DEFAULT_TPP_RANGE


def _observed_runs(con, source: str) -> list[str]:
    return [r for (r,) in con.execute("SELECT DISTINCT run_id FROM observations WHERE source = ?", [source]).fetchall()]


def test_cli_summary_counts_each_run_once(built_db, capsys):
    # the runs column adds up to the collection's runs (a source that only adds values to another
    # source's runs counts none of them), checked against the runs table
    assert cli.main(["--db", str(built_db), "data", "summary"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-")) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("-"))
    runs = [int(line.split()[1].replace(",", "")) for line in lines[start:end]]
    con = duckdb.connect(str(built_db), read_only=True)
    try:
        total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()
    assert sum(runs) == total

"""Faults: a killed sweep resumes with only complete rows; a rebuild under a reader is safe."""

import shutil
import signal
import subprocess
import sys
import time

import duckdb

from scaleplan.core import meta, storage


def test_killed_sweep_keeps_only_complete_rows_and_resumes(built_db, tmp_path):
    results_path = tmp_path / "meta.duckdb"
    code = (
        "from core import meta; import pathlib; "
        f"meta.run_sweep(pathlib.Path({str(built_db)!r}), pathlib.Path({str(results_path)!r}), "
        "families=['pythia-deduped'], fractions=(0.5, 1.0), n_jobs=1, chunk_size=8, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some rows are committed, then kill hard
        time.sleep(0.5)
        if results_path.exists():
            try:
                con = duckdb.connect(str(results_path), read_only=True)
                n = con.execute("SELECT count(*) FROM sweep_results").fetchone()[0]
                con.close()
            except duckdb.Error:
                continue
            if n >= 8:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = meta.load_results(results_path)
    assert len(partial) >= 8  # whole committed batches only, each row complete
    assert partial["status"].notna().all() and partial["key"].is_unique
    ok = partial[partial.status == "ok"]
    assert ok["are_mean"].notna().all()
    report = meta.run_sweep(
        built_db, results_path, families=["pythia-deduped"], fractions=(0.5, 1.0), n_jobs=1, progress=False
    )
    assert report.skipped == len(partial)
    final = meta.load_results(results_path)
    assert len(final) == report.planned and final["key"].is_unique


def test_rebuild_swaps_the_file_under_an_open_reader(built_db, mirror, tmp_path):
    db = tmp_path / "scaleplan.duckdb"
    shutil.copyfile(built_db, db)
    reader = storage.connect(db)
    before = reader.execute("SELECT value FROM meta WHERE key = 'built_at'").fetchone()[0]
    storage.build_database(db, mirror=mirror, progress=False)
    # the old connection keeps reading its (unlinked) file without errors
    assert reader.execute("SELECT count(*) FROM observations").fetchone()[0] > 0
    reader.close()
    fresh = storage.connect(db)
    after = fresh.execute("SELECT value FROM meta WHERE key = 'built_at'").fetchone()[0]
    fresh.close()
    assert after != before and storage.database_status(db) == "ok"

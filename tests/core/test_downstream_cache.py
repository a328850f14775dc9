"""core.downstream_cache: reproduce downstream's report computed once per data version, kept in the process
and in a cache file; a hit gives the values of a fresh computation, a changed data version or a corrupt
file computes afresh, and no file the cache did not write is touched."""

from __future__ import annotations

import json

import duckdb
import pytest

from scaleplan.core import downstream_cache, reproduce_downstream, storage, task_prediction
from scaleplan.core.reproduce_downstream import DownstreamReport, Refusal, TargetPrediction, TaskResult


def _target(family: str, predicted: float, actual: float) -> TargetPrediction:
    return TargetPrediction(
        family=family,
        target=f"{family}-big",
        predicted_loss=2.0 + 1e-13,
        actual_loss=0.1 + 0.2,  # 0.30000000000000004: a float that must survive the file exactly
        predicted_points=predicted,
        actual_points=actual,
        scale_points=1 / 3,
        direct_points=None,
        free_ceiling_points=predicted + 1e-9,
        lower_points=predicted - 2 / 3,
        upper_points=predicted + 2 / 3,
    )


FAKE = DownstreamReport(
    tasks=(
        TaskResult("overtrain", "arc_easy", 0, 0.25, (_target("overtrain-rpj", 61.23456789, 60.5),)),
        TaskResult(
            "pythia",
            "zero-shot/piqa",
            0,
            0.5,
            (_target("pythia", 70.1, 71.9),),
            (Refusal("pythia-deduped", "extrapolation", "too far", "12b"),),
        ),
    ),
    quantiles={"overtrain": 1.6448536269514722, "pythia": float("inf")},
    gadre_average=({"quantity": "avg_err_17", "predicted": 0.4, "actual": 0.41, "abs_error_points": 1.0},),
)


def _text(document: object) -> str:
    return json.dumps(document, sort_keys=True)


@pytest.fixture(autouse=True)
def _fresh_memory():
    downstream_cache.clear_memory()
    yield
    downstream_cache.clear_memory()


@pytest.fixture()
def computed(monkeypatch):
    """The report's computation replaced by FAKE; counts how often it runs."""
    calls: list[float] = []

    def fake(con, level=reproduce_downstream.LEVEL):
        calls.append(level)
        return FAKE

    monkeypatch.setattr(reproduce_downstream, "downstream_report", fake)
    return calls


@pytest.fixture()
def database():
    con = duckdb.connect(":memory:")
    con.execute(storage.SCHEMA_SQL)
    con.execute("INSERT INTO meta VALUES ('data_version', 'version-1')")
    yield con
    con.close()


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_hit_in_memory_or_from_the_file_gives_the_fresh_values(database, computed, tmp_path):
    expected = _text(reproduce_downstream.report_json(FAKE))
    first = downstream_cache.report_json(database, cache_dir=tmp_path)
    assert computed == [0.9] and _text(first) == expected
    [name] = _files(tmp_path)
    assert name == f"downstream-report-{downstream_cache.cache_key(database)}.json"
    second = downstream_cache.report_json(database, cache_dir=tmp_path)  # in memory
    assert second is not first and _text(second) == expected
    second["tasks"].clear()  # a caller's change reaches no other caller
    downstream_cache.clear_memory()  # a new process: the file
    third = downstream_cache.report_json(database, cache_dir=tmp_path)
    assert computed == [0.9] and _text(third) == expected
    assert third["tasks"][0]["targets"][0]["actual_loss"] == 0.1 + 0.2


def test_a_changed_data_version_or_level_misses(database, computed, tmp_path):
    downstream_cache.report_json(database, cache_dir=tmp_path)
    database.execute("UPDATE meta SET value = 'version-2' WHERE key = 'data_version'")
    downstream_cache.report_json(database, cache_dir=tmp_path)
    downstream_cache.report_json(database, 0.8, cache_dir=tmp_path)
    assert computed == [0.9, 0.9, 0.8]
    assert len(_files(tmp_path)) == 3  # one file per key; the older version's is kept, not read


def test_a_database_without_a_data_version_is_computed_every_call(database, computed, tmp_path):
    database.execute("DELETE FROM meta")
    assert downstream_cache.cache_key(database) is None
    downstream_cache.report_json(database, cache_dir=tmp_path)
    downstream_cache.report_json(database, cache_dir=tmp_path)
    assert len(computed) == 2 and _files(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"kind": "scaleplan downstream report", "key": "other"}'],
    ids=["empty", "truncated", "binary", "not-an-object", "another-key"],
)
def test_a_corrupt_file_is_ignored_and_replaced_without_a_traceback(database, computed, tmp_path, capsys, content):
    path = tmp_path / f"downstream-report-{downstream_cache.cache_key(database)}.json"
    path.write_bytes(content)
    got = downstream_cache.report_json(database, cache_dir=tmp_path)
    assert computed == [0.9] and _text(got) == _text(reproduce_downstream.report_json(FAKE))
    assert capsys.readouterr() == ("", "")
    assert json.loads(path.read_text())["report"]["average"]["conformal_quantile"]["overtrain"] == 1.6448536269514722


def test_an_unwritable_cache_folder_leaves_the_result_in_memory(database, computed, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    downstream_cache.report_json(database, cache_dir=blocked)
    downstream_cache.report_json(database, cache_dir=blocked)
    assert computed == [0.9] and blocked.read_text() == "not a folder"


def test_only_its_own_files_are_pruned(database, computed, tmp_path):
    foreign = ["notes.txt", "downstream-report-mine.json", "downstream-report-0.json.bak"]
    for name in foreign:
        (tmp_path / name).write_text("the user's")
    for version in range(downstream_cache.KEEP_FILES + 3):
        database.execute("UPDATE meta SET value = ? WHERE key = 'data_version'", [f"v{version}"])
        downstream_cache.report_json(database, cache_dir=tmp_path)
    names = _files(tmp_path)
    assert all((tmp_path / name).read_text() == "the user's" for name in foreign)
    assert len([n for n in names if n not in foreign]) == downstream_cache.KEEP_FILES
    assert f"downstream-report-{downstream_cache.cache_key(database)}.json" in names  # the newest kept


def test_on_the_collection_a_file_hit_is_reproduce_downstreams_report(con, tmp_path):
    """The real report: what a later process reads from the file equals a fresh downstream_report."""
    downstream_cache.report_json(con, cache_dir=tmp_path)
    downstream_cache.clear_memory()
    hit = downstream_cache.report_json(con, cache_dir=tmp_path)
    fresh = reproduce_downstream.report_json(reproduce_downstream.downstream_report(con))
    assert _text(hit) == _text(fresh) and hit["tasks"]


def test_held_out_quantile_computes_the_report_once_and_says_what_a_fresh_one_does(
    database, computed, tmp_path, monkeypatch
):
    monkeypatch.setattr(downstream_cache, "default_cache_dir", lambda: tmp_path)
    first = task_prediction.held_out_quantile(database, "pythia")
    again = task_prediction.held_out_quantile(database, "pythia")
    assert computed == [0.9]
    database.execute("DELETE FROM meta")  # no data version: computed afresh on every call
    fresh = task_prediction.held_out_quantile(database, "pythia")
    assert len(computed) == 2 and first == again == fresh
    assert "1 held-out errors of overtrain" in first[1]  # pythia's q is learned on the other source's


def test_the_source_digest_follows_every_edit_and_is_never_shared_without_sources(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = downstream_cache.source_digest(tmp_path)
    assert downstream_cache.source_digest(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert downstream_cache.source_digest(tmp_path) != before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert downstream_cache.source_digest(empty) != downstream_cache.source_digest(empty)


def test_without_a_home_folder_the_report_is_kept_in_memory(database, computed, monkeypatch):
    # platformdirs raises when it finds no home directory and no XDG variable: no file, no failure.
    def no_home():
        raise RuntimeError("could not determine the home directory")

    monkeypatch.setattr(downstream_cache, "default_cache_dir", no_home)
    first = downstream_cache.report_json(database)
    second = downstream_cache.report_json(database)
    assert computed == [0.9] and _text(first) == _text(second) == _text(reproduce_downstream.report_json(FAKE))


def test_a_computation_in_progress_does_not_hold_up_another_key(database, tmp_path, monkeypatch):
    # Level 0.8 computes slowly in one thread; level 0.9, already in memory, is answered meanwhile.
    import threading
    import time

    started, release = threading.Event(), threading.Event()

    def slow(con, level=reproduce_downstream.LEVEL):
        if level == 0.8:
            started.set()
            release.wait(10)
        return FAKE

    monkeypatch.setattr(reproduce_downstream, "downstream_report", slow)
    downstream_cache.report_json(database, 0.9, cache_dir=tmp_path)
    worker = threading.Thread(target=downstream_cache.report_json, args=(database, 0.8), kwargs={"cache_dir": tmp_path})
    worker.start()
    assert started.wait(10)
    t0 = time.perf_counter()
    hit = downstream_cache.report_json(database, 0.9, cache_dir=tmp_path)
    waited = time.perf_counter() - t0
    release.set()
    worker.join(10)
    assert waited < 1.0 and _text(hit) == _text(reproduce_downstream.report_json(FAKE))

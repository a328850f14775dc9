"""The Dask engine for real: a LocalCluster of 2 worker processes on the loopback interface.

The sweep and a leave-one-family-out map run on the cluster and locally; their results must
be identical (same code, same data, deterministic fits).
"""

import signal
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster

from scaleplan.core import meta

TIME_LIMIT_S = 240  # the whole module: cluster start, two small sweeps, the map


@contextmanager
def time_limit(seconds: int):
    def expire(signum, frame):
        raise TimeoutError(f"Dask test exceeded {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def cluster():
    with (
        time_limit(60),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as local,
    ):
        yield local


SMALL = meta.SweepConfig(
    families=("gpt3", "pythia-deduped"),
    fractions=(0.3, 1.0),
    window_sizes=(3, 4),
    all_sizes=False,
    max_windows_end=2,
    cutoffs=(10e9,),
)


def stored(path):
    rows = meta.load_results(path).drop(columns=["fit_seconds"])
    return rows.sort_values("key", ignore_index=True)


def test_sweep_on_a_cluster_matches_the_local_engine(built_db, tmp_path, cluster):
    with time_limit(TIME_LIMIT_S):
        local = meta.run_sweep(built_db, tmp_path / "local.duckdb", config=SMALL, n_jobs=1, progress=False)
        remote = meta.run_sweep(
            built_db,
            tmp_path / "dask.duckdb",
            config=SMALL,
            engine="dask",
            scheduler=cluster.scheduler_address,
            chunk_size=3,
            progress=False,
        )
    assert local.planned == remote.planned > 10
    assert (remote.fitted, remote.failed) == (local.fitted, local.failed) and local.fitted > 0
    a, b = stored(tmp_path / "local.duckdb"), stored(tmp_path / "dask.duckdb")
    assert set(a["family"]) == {"gpt3", "pythia-deduped"}
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the workers really ran the fits: every row is keyed and no fit was done twice
    assert b["key"].is_unique and len(b) == remote.planned


def held_out_spread(family: str, results: pd.DataFrame) -> tuple[str, int, float]:
    """A leave-one-family-out step: the median ARE of every *other* family's fits."""
    others = results[(results["family"] != family) & (results["status"] == "ok")]
    return family, len(others), float(np.median(others["are_mean"]))


def test_map_tasks_on_a_cluster_matches_local(cluster):
    rng = np.random.default_rng(7)
    families = ["a", "b", "c", "d", "e"]
    results = pd.DataFrame({"family": np.repeat(families, 40), "status": "ok", "are_mean": rng.lognormal(-3, 1, 200)})
    with time_limit(TIME_LIMIT_S):
        local = meta.map_tasks(held_out_spread, families, n_jobs=1, shared={"results": results})
        remote = meta.map_tasks(
            held_out_spread, families, engine="dask", scheduler=cluster.scheduler_address, shared={"results": results}
        )
    assert remote == local  # same values, in the order of the items
    # independent truth: the held-out median computed here directly
    for family, n_other, median in local:
        mask = results["family"] != family
        assert n_other == 160 and median == np.median(results.loc[mask, "are_mean"])


def test_map_tasks_rejects_an_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine"):
        meta.map_tasks(abs, [1], engine="spark")

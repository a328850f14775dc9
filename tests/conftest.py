import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    return Path(os.environ.get("SCALEPLAN_MIRROR", ROOT.parent / "shared" / "datasets")).resolve()


@pytest.fixture(scope="session", autouse=True)
def _user_cache_in_a_temporary_folder(tmp_path_factory):
    """The user's cache folder (platformdirs, e.g. core.downstream_cache's report files) points into the
    test run's temporary folder, for this process and the CLI processes tests start: tests never write
    into, evict from, or read a report computed with patched code out of, the real ~/.cache. Under
    pytest-xdist the folder above the workers' base temp dirs is shared, so they compute a report once."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / "user-cache"
    folder.mkdir(exist_ok=True)
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = mirror_path()
    if not path.is_dir():
        pytest.fail(f"data mirror not found at {path}; set SCALEPLAN_MIRROR")
    return path


def _shared(tmp_path_factory, name: str, make) -> Path:
    """``make(path)`` once per test run, however many xdist workers ask: the first builds, the rest wait.

    Under pytest-xdist every worker has its own session; the folder above their base temp dirs is
    common to the run, so a lock file there lets one worker build the database (or the small sweep)
    and the others reuse it. Without xdist this is just a build into the session's temp dir.
    """
    import fcntl
    import os

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        path = tmp_path_factory.mktemp(name) / f"{name}.duckdb"
        make(path)
        return path
    root = tmp_path_factory.getbasetemp().parent / f"shared-{name}"
    root.mkdir(exist_ok=True)
    path, done = root / f"{name}.duckdb", root / "done"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                make(path)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


@pytest.fixture(scope="session")
def built_db(mirror, tmp_path_factory) -> Path:
    """The database built once from the real mirror, shared (read-only) by the whole test run."""
    from scaleplan.core import storage

    return _shared(tmp_path_factory, "db", lambda path: storage.build_database(path, mirror=mirror, progress=False))


@pytest.fixture()
def con(built_db):
    from scaleplan.core import storage

    connection = storage.connect(built_db)
    yield connection
    connection.close()


META_FAMILIES = ["pythia", "pythia-deduped", "opt", "gpt3", "overtrain-c4"]


@pytest.fixture(scope="session")
def meta_db(built_db, tmp_path_factory) -> Path:
    """A small meta-analysis sweep (5 families, ~1,100 fits, about a minute), built once per test run."""
    from scaleplan.core import meta

    return _shared(
        tmp_path_factory,
        "meta",
        lambda path: meta.run_sweep(built_db, path, families=META_FAMILIES, n_jobs=2, progress=False),
    )

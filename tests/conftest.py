import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    return Path(os.environ.get("SCALEPLAN_MIRROR", ROOT.parent / "shared" / "datasets")).resolve()


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = mirror_path()
    if not path.is_dir():
        pytest.fail(f"data mirror not found at {path}; set SCALEPLAN_MIRROR")
    return path


@pytest.fixture(scope="session")
def built_db(mirror, tmp_path_factory) -> Path:
    """The database built once from the real mirror, shared (read-only) by the whole session."""
    from scaleplan.core import storage

    db = tmp_path_factory.mktemp("db") / "scaleplan.duckdb"
    storage.build_database(db, mirror=mirror, progress=False)
    return db


@pytest.fixture()
def con(built_db):
    from scaleplan.core import storage

    connection = storage.connect(built_db)
    yield connection
    connection.close()


META_FAMILIES = ["pythia", "pythia-deduped", "opt", "gpt3", "overtrain-c4"]


@pytest.fixture(scope="session")
def meta_db(built_db, tmp_path_factory) -> Path:
    """A small meta-analysis sweep (5 families, ~1,100 fits, about a minute) on the session database."""
    from scaleplan.core import meta

    path = tmp_path_factory.mktemp("meta") / "meta.duckdb"
    meta.run_sweep(built_db, path, families=META_FAMILIES, n_jobs=2, progress=False)
    return path

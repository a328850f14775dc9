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

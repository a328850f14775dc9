"""`scaleplan brief` never writes over scaleplan's own files, even with --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleplan.core import brief, cli, userstore


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "user.duckdb"
    userstore.open_user_store(path).close()
    return path


def _brief(tmp_path: Path, store: Path, *extra: str) -> int:
    base = ["--db", str(tmp_path / "scaleplan.duckdb"), "--user-db", str(store)]
    return cli.main([*base, "brief", "--scenario", "base", *extra, "--force", "--quiet"])


@pytest.mark.parametrize("target", ["user.duckdb", "scaleplan.duckdb", "sub/../user.duckdb", "user.duckdb.wal"])
def test_brief_refuses_scaleplan_files(tmp_path: Path, store: Path, target: str, capsys) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "scaleplan.duckdb").write_bytes(b"database bytes")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert _brief(tmp_path, store, "--pdf", str(tmp_path / target)) == 2
    assert "will not write a brief over it" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert userstore.is_user_store(store)


def test_brief_refuses_one_path_for_pdf_and_pptx(tmp_path: Path, store: Path, capsys) -> None:
    out = tmp_path / "out.bin"
    assert _brief(tmp_path, store, "--pdf", str(out), "--pptx", str(tmp_path / "." / "out.bin")) == 2
    assert "same file" in capsys.readouterr().err
    assert not out.exists()


def test_write_new_file_refuses_a_protected_path_even_forced(tmp_path: Path) -> None:
    own = tmp_path / "meta.duckdb"
    own.write_bytes(b"results")
    with pytest.raises(brief.BriefError, match="results file"):
        brief.write_new_file(own, b"pdf", force=True, protected={"the meta-analysis results file": own})
    assert own.read_bytes() == b"results"
    other = tmp_path / "brief.pdf"
    brief.write_new_file(other, b"pdf", force=True, protected={"the meta-analysis results file": own})
    assert other.read_bytes() == b"pdf"

"""`scaleplan brief`'s output paths: every target checked before anything is rendered, written all
or none and atomically, and never over scaleplan's own files, even with --force."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scaleplan.core import brief, cli, scenarios, userstore
from scaleplan.core.cli import brief as brief_cli
from scaleplan.core.meta import shipped


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "user.duckdb"
    userstore.open_user_store(path).close()
    return path


@pytest.fixture(autouse=True)
def _collection(built_db, tmp_path) -> None:
    # A database that exists (a copy, as the brief's --db): a --db that does not is refused before the
    # brief looks at its paths, which would make every "refused" below pass for the wrong reason.
    shutil.copyfile(built_db, tmp_path / "scaleplan.duckdb")


def _brief(tmp_path: Path, store: Path, *extra: str, force: bool = True) -> int:
    base = ["--db", str(tmp_path / "scaleplan.duckdb"), "--user-db", str(store), "--data-dir", str(tmp_path / "data")]
    return cli.main([*base, "brief", "--scenario", "base", *extra, *(["--force"] if force else []), "--quiet"])


@pytest.fixture
def rendered(monkeypatch) -> list[str]:
    """The brief's pipeline without a database or Chromium: records what is rendered (a PDF with a
    character its font lacks; a deck)."""
    calls: list[str] = []
    monkeypatch.setattr(brief_cli.scenario_cli, "load_named", lambda settings, names: {})
    monkeypatch.setattr(brief_cli.scenario_cli, "evaluate_all", lambda named, settings, **_: [])
    monkeypatch.setattr(scenarios, "compare", lambda outcomes: None)
    monkeypatch.setattr(brief, "build_brief", lambda comparison, **_: calls.append("brief") or "made")

    def pdf(made: object) -> brief.PdfBrief:
        calls.append("pdf")
        return brief.PdfBrief(b"%PDF-new", brief.MissingGlyphs(("模",), "\u25a1", "DejaVu Sans"))

    def pptx(made: object) -> bytes:
        calls.append("pptx")
        return b"PK-new"

    monkeypatch.setattr(brief, "brief_pdf", pdf)
    monkeypatch.setattr(brief, "brief_pptx", pptx)
    return calls


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the collection's copy (the brief only reads it)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p != _db(folder)}


def _db(folder: Path) -> Path:
    return folder / "scaleplan.duckdb"


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


@pytest.mark.parametrize("force", [False, True])
def test_write_files_refuses_two_outputs_that_are_one_file(tmp_path: Path, force: bool) -> None:
    """Review: only the CLI checked --pdf against --pptx; written as one file, the second output would
    replace the first (with force) or fail half-way. The rule is the core's: nothing is written."""
    out = tmp_path / "out.bin"
    (tmp_path / "sub").mkdir()
    os.symlink(out, tmp_path / "link.bin")  # a link to where the first output goes
    for second in (tmp_path / "sub" / ".." / "out.bin", tmp_path / "link.bin"):
        with pytest.raises(brief.SameTargetError, match="same file") as refused:
            brief.write_files([(out, b"pdf"), (second, b"pptx")], force=force)
        assert (refused.value.first, refused.value.second) == (out, second)
        assert not out.exists()
    out.write_bytes(b"the old brief")
    os.link(out, tmp_path / "hard.bin")  # one inode under two names
    with pytest.raises(brief.SameTargetError):
        brief.check_targets([out, tmp_path / "hard.bin"], force=True)
    with pytest.raises(brief.SameTargetError):
        brief.write_files([(out, b"pdf"), (tmp_path / "hard.bin", b"pptx")], force=True)
    assert out.read_bytes() == b"the old brief"
    brief.write_files([(out, b"pdf"), (tmp_path / "other.bin", b"pptx")], force=True)  # two files: written
    assert out.read_bytes() == b"pdf" and (tmp_path / "other.bin").read_bytes() == b"pptx"


def test_write_new_file_refuses_a_protected_path_even_forced(tmp_path: Path) -> None:
    own = tmp_path / "meta.duckdb"
    own.write_bytes(b"results")
    protected = [brief.Protected("the meta-analysis results file", own)]
    with pytest.raises(brief.BriefError, match="results file"):
        brief.write_new_file(own, b"pdf", force=True, protected=protected)
    assert own.read_bytes() == b"results"
    other = tmp_path / "brief.pdf"
    brief.write_new_file(other, b"pdf", force=True, protected=protected)
    assert other.read_bytes() == b"pdf"


# --- 1. one check, before anything is rendered or written ---------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_as_target_is_called_a_folder_before_anything_is_rendered(
    tmp_path: Path, store: Path, rendered: list[str], force: bool, capsys
) -> None:
    folder = tmp_path / "somedir"
    folder.mkdir()
    assert _brief(tmp_path, store, "--pdf", str(folder), force=force) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "exists already" not in err and "--force" not in err, err
    assert rendered == [] and list(folder.iterdir()) == []


def test_a_bad_second_target_leaves_the_first_unwritten(tmp_path: Path, store: Path, rendered: list[str], capsys):
    ok, folder = tmp_path / "ok.pdf", tmp_path / "somedir"
    folder.mkdir()
    assert _brief(tmp_path, store, "--pdf", str(ok), "--pptx", str(folder)) == 2
    assert "is a folder" in capsys.readouterr().err
    assert rendered == [] and not ok.exists() and list(folder.iterdir()) == []
    missing = tmp_path / "no-such-folder" / "b.pptx"
    assert _brief(tmp_path, store, "--pdf", str(ok), "--pptx", str(missing)) == 2
    assert "does not exist" in capsys.readouterr().err
    assert rendered == [] and not ok.exists()


def test_a_failing_second_render_writes_neither_and_keeps_the_old_files(
    tmp_path: Path, store: Path, rendered: list[str], monkeypatch, capsys
) -> None:
    pdf, pptx = tmp_path / "b.pdf", tmp_path / "b.pptx"
    pdf.write_bytes(b"old pdf")

    def no_chromium(made: object) -> bytes:
        raise brief.BriefError("the brief's charts need Chromium")

    monkeypatch.setattr(brief, "brief_pptx", no_chromium)
    assert _brief(tmp_path, store, "--pdf", str(pdf), "--pptx", str(pptx)) == 2
    assert "Chromium" in capsys.readouterr().err
    assert pdf.read_bytes() == b"old pdf" and not pptx.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".b", "b"))) == ["b.pdf"]  # no temp file


def test_both_files_written_and_the_missing_glyphs_warned_by_the_cli(tmp_path, store, rendered, capsys) -> None:
    pdf, pptx = tmp_path / "b.pdf", tmp_path / "b.pptx"
    pdf.write_bytes(b"old pdf")
    assert _brief(tmp_path, store, "--pdf", str(pdf), "--pptx", str(pptx)) == 0
    out, err = capsys.readouterr()
    assert pdf.read_bytes() == b"%PDF-new" and pptx.read_bytes() == b"PK-new"
    assert f"wrote {pdf}" in out and f"wrote {pptx}" in out
    assert "scaleplan: warning:" in err and "模" in err and "'\u25a1'" in err and "PowerPoint" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".b", "b"))) == ["b.pdf", "b.pptx"]


_FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from scaleplan.core import brief
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
    try:
        brief.write_new_file(Path(sys.argv[1]), b"x" * 5000, force=sys.argv[2] == "force")
    except brief.BriefError as error:
        print(error)
        sys.exit(2)
    """
)


@pytest.mark.parametrize("force", [False, True])
def test_a_write_that_fails_midway_leaves_no_half_file(tmp_path: Path, force: bool) -> None:
    target = tmp_path / "b.pdf"
    if force:
        target.write_bytes(b"the old brief")
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(target), "force" if force else "new"], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert f"cannot write {target}" in done.stdout and "nothing was written" in done.stdout
    assert _files(tmp_path) == ({"b.pdf": b"the old brief"} if force else {})


def test_without_force_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "b.pdf"
    target.write_bytes(b"theirs")
    with pytest.raises(brief.BriefError, match="exists already"):
        brief.write_new_file(target, b"ours")
    os.symlink(tmp_path / "gone", tmp_path / "link.pdf")  # a dangling link is something there, too
    with pytest.raises(brief.BriefError, match="exists already"):
        brief.write_new_file(tmp_path / "link.pdf", b"ours")
    assert _files(tmp_path) == {"b.pdf": b"theirs"}


# --- 3. scaleplan's own files, even with --force --------------------------------------------------


def _refused(tmp_path: Path, store: Path, target: Path, capsys) -> None:
    before = _files(tmp_path)
    assert _brief(tmp_path, store, "--pdf", str(target)) == 2
    err = capsys.readouterr().err
    assert "will not write a brief over it" in err, err
    assert _files(tmp_path) == before


@pytest.mark.parametrize("name", ["scaleplan.duckdb.corrupt-20261206T101112Z", "scaleplan.duckdb.corrupt-x.wal"])
def test_brief_refuses_a_corrupt_database_moved_aside(tmp_path, store, rendered, name, capsys) -> None:
    (tmp_path / name).write_bytes(b"the corrupt database, kept for the user")
    _refused(tmp_path, store, tmp_path / name, capsys)
    _refused(tmp_path, store, tmp_path / "scaleplan.duckdb.corrupt-20990101T000000Z", capsys)  # not there yet
    assert rendered == []


@pytest.mark.parametrize("name", ["scaleplan.duckdb.tmp-4242", "scaleplan.duckdb.tmp-4242.wal"])
def test_brief_refuses_a_database_builds_temporary_file(tmp_path, store, rendered, name, capsys) -> None:
    """Review: a build's temporary file (`<db>.tmp-<pid>`, README "Files") was not protected."""
    (tmp_path / name).write_bytes(b"a build in progress")
    _refused(tmp_path, store, tmp_path / name, capsys)
    _refused(tmp_path, store, tmp_path / "scaleplan.duckdb.tmp-99999", capsys)  # not there (yet)
    assert _brief(tmp_path, store, "--pdf", str(tmp_path / name)) == 2
    assert "a temporary file of a database build" in capsys.readouterr().err
    assert rendered == []


def test_brief_refuses_a_partial_download(tmp_path, store, rendered, capsys) -> None:
    """A partial download (`<file>.part` beside where the file goes) is inside the downloads folder."""
    part = tmp_path / "data" / "downloads" / "repo" / "aggregated_eval" / "runs.csv.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half a file")
    _refused(tmp_path, store, part, capsys)
    assert rendered == []


@pytest.mark.parametrize("inside", ["source.csv", "repo/commit/file.csv", "new.pdf"])
def test_brief_refuses_anything_inside_the_downloads_folder(tmp_path, store, rendered, inside, capsys) -> None:
    downloads = tmp_path / "data" / "downloads"  # Settings.download_dir of --data-dir
    (downloads / "repo" / "commit").mkdir(parents=True)
    (downloads / "source.csv").write_text("a,b\n1,2\n")
    (downloads / "repo" / "commit" / "file.csv").write_text("c\n3\n")
    _refused(tmp_path, store, downloads / inside, capsys)
    assert rendered == []


def test_the_shipped_data_folder_holds_the_manifest_and_the_sweep_results() -> None:
    from scaleplan.core import manifest

    folder = shipped.shipped_data_folder().resolve()
    assert manifest.MANIFEST_PATH.resolve().parent == folder
    assert shipped.shipped_file(shipped.SHIPPED_RESULTS).resolve().parent == folder
    assert shipped.shipped_file(shipped.SHIPPED_INFO).resolve().parent == folder
    assert {"manifest.json", "sweep_results.parquet", "sweep_results.json"} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("name", ["manifest.json", "sweep_results.parquet", "sweep_results.json"])
def test_brief_refuses_the_shipped_data(tmp_path, store, rendered, monkeypatch, name, capsys) -> None:
    copy = tmp_path / "shipped"  # a copy: the real files are never a target here
    copy.mkdir()
    shutil.copyfile(shipped.shipped_data_folder() / name, copy / name)
    monkeypatch.setattr(shipped, "shipped_data_folder", lambda: copy)
    _refused(tmp_path, store, copy / name, capsys)
    assert rendered == []


def test_a_read_only_file_is_not_replaced_even_forced(tmp_path: Path) -> None:
    kept = tmp_path / "signed-off.pdf"
    kept.write_bytes(b"the brief the board signed")
    kept.chmod(0o444)
    with pytest.raises(brief.BriefError, match="read-only"):
        brief.write_new_file(kept, b"new", force=True)
    assert kept.read_bytes() == b"the brief the board signed" and kept.stat().st_mode & 0o777 == 0o444


def test_a_long_non_ascii_name_is_written(tmp_path: Path) -> None:
    # 81 CJK characters: 243 bytes, within the 255-byte name limit; the temporary name must be too.
    target = tmp_path / ("漢" * 77 + ".pdf")
    brief.write_new_file(target, b"%PDF brief")
    assert target.read_bytes() == b"%PDF brief" and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

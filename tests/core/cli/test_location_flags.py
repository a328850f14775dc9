"""The location flags: an empty value is refused instead of silently meaning the default, and an error-log
folder that is a file is refused before the command runs (review 5: F21, F22)."""

from __future__ import annotations

import sys

import pytest

from scaleplan.core import cli
from scaleplan.core.cli import _common


def _main(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("flag", ["--data-dir", "--db", "--meta", "--mirror", "--user-db", "--log-dir"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_an_empty_location_flag_is_refused(tmp_path, capsys, monkeypatch, flag, where):
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path / "data"))
    argv = [flag, "", "data", "summary"] if where == "before" else ["data", "summary", flag, ""]
    code, out, err = _main(capsys, *argv)
    assert code == cli.EXIT_USER_ERROR, err
    assert (
        err == f"scaleplan: error: {flag} is empty; give it a path, or leave the flag out to use the default location\n"
    )
    assert not (tmp_path / "data").exists()  # nothing was built at the default location


@pytest.mark.parametrize("below", [False, True])
def test_a_log_dir_that_is_a_file_is_refused_up_front(tmp_path, capsys, monkeypatch, below):
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path / "data"))
    log_file = tmp_path / "notes.txt"
    log_file.write_text("mine\n")
    log_dir = log_file / "sub" if below else log_file
    code, out, err = _main(capsys, "--log-dir", str(log_dir), "data", "summary")
    assert code == cli.EXIT_USER_ERROR, err
    assert err.startswith(f"scaleplan: error: --log-dir {log_dir} ") and "not a folder" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert log_file.read_text() == "mine\n" and not (tmp_path / "data").exists()


def test_the_log_dir_from_the_environment_is_checked_too(tmp_path, capsys, monkeypatch):
    log_file = tmp_path / "notes.txt"
    log_file.write_text("mine\n")
    monkeypatch.setenv("SCALEPLAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCALEPLAN_LOG_DIR", str(log_file))
    code, out, err = _main(capsys, "data", "summary")
    assert code == cli.EXIT_USER_ERROR and "$SCALEPLAN_LOG_DIR" in err


def test_an_unwritable_log_prints_the_commands_traceback_once(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    try:
        raise RuntimeError("the command's own failure")
    except RuntimeError:
        where = cli._write_traceback(blocker / "log" / "scaleplan.log", ["data", "summary"])
    err = capsys.readouterr().err
    assert "no writable log folder" in str(where)
    assert err.count("Traceback") == 1 and "the command's own failure" in err
    assert "could not write the log file" in err


def test_the_location_flags_are_every_path_setting():
    parser = _common.Parser(prog="scaleplan")
    _common.add_settings_arguments(parser)
    paths = {a.dest for a in parser._actions if a.option_strings and a.dest not in ("help", "download_url")}
    assert paths == set(_common.LOCATION_FLAGS), sys.version

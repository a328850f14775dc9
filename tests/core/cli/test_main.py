"""The CLI's error policy: user errors are one line (exit 2); bugs keep their traceback in a log."""

from __future__ import annotations

from scaleplan.core import cli
from scaleplan.core.cli import data as data_commands


def test_a_user_error_is_one_line_on_stderr(tmp_path, capsys):
    code = cli.main(
        [
            "--db",
            str(tmp_path / "x.duckdb"),
            "--log-dir",
            str(tmp_path / "log"),
            "data",
            "build",
            "--mirror",
            str(tmp_path / "nope"),
        ]
    )
    err = capsys.readouterr().err
    assert code == cli.EXIT_USER_ERROR
    assert err.startswith("scaleplan: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "log").exists()


def test_an_unexpected_exception_keeps_its_traceback_in_a_log_file(tmp_path, capsys, monkeypatch):
    def broken(args, settings):
        raise ValueError("an internal invariant broke")  # a bug, not something the user did

    monkeypatch.setattr(data_commands, "cmd_summary", broken)
    code = cli.main(["--log-dir", str(tmp_path / "log"), "data", "summary"])
    err = capsys.readouterr().err
    log_file = tmp_path / "log" / "scaleplan.log"
    assert code == cli.EXIT_BUG
    assert str(log_file) in err and "Traceback" not in err
    text = log_file.read_text()
    assert "Traceback (most recent call last)" in text
    assert "ValueError: an internal invariant broke" in text and "data summary" in text


def test_settings_flags_are_accepted_before_and_after_the_command(tmp_path):
    parser = cli.build_parser()
    before = parser.parse_args(["--db", str(tmp_path / "a.duckdb"), "data", "summary"])
    after = parser.parse_args(["data", "summary", "--db", str(tmp_path / "b.duckdb")])
    assert before.db == str(tmp_path / "a.duckdb")
    assert after.db == str(tmp_path / "b.duckdb")


def test_command_modules_never_import_the_cli_package_back():
    """No cycle: the package imports its command modules; they import only the helper modules
    (``_common``, ``_names``, which import nothing of the package) and core,
    except that a command built on another (``scenario`` and ``brief`` print ``plan``'s JSON and take
    its flags; ``fit --runs`` reads a file as ``runs add`` does) may import that command module, which
    itself imports only ``_common``."""
    import ast
    from pathlib import Path

    folder = Path(cli.__file__).parent
    helpers = {"_common", "_names"}  # the private helper modules, which import nothing of the package
    built_on = {"scenario": {"plan"}, "brief": {"plan", "scenario"}, "fit": {"runs"}}
    for group in cli.COMMAND_GROUPS + tuple(sorted(helpers)):
        allowed = set() if group in helpers else helpers | built_on.get(group, set())
        tree = ast.parse((folder / f"{group}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "scaleplan.core.cli":
                assert {a.name for a in node.names} <= allowed, group
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scaleplan.core.cli."):
                assert node.module.rsplit(".", 1)[1] in allowed, group
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("scaleplan.core.cli") for a in node.names), group


def test_the_command_group_is_found_after_the_global_flags():
    assert cli.command_group(["--db", "fit", "data", "summary"]) == "data"  # a value named like a command
    assert cli.command_group(["fit", "--family", "pythia"]) == "fit"
    assert cli.command_group(["--data-dir", "/tmp/x", "serve", "--port", "8502"]) == "serve"
    assert cli.command_group(["--help"]) is None
    assert cli.command_group(["nonsense"]) is None
    assert cli.command_group(["--db"]) is None  # the real parser reports the missing value
    assert cli.command_group([]) is None


def test_top_level_help_is_the_same_without_the_command_modules():
    # The one-line helps listed without importing a command's module are those it registers itself.
    assert cli.build_parser(groups=()).format_help() == cli.build_parser().format_help()


def test_top_level_help_imports_no_numerical_library():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scaleplan.core import cli\n"
        "status = cli.main(['--help'])\n"
        "print(status, sorted(m for m in ('numpy', 'pandas', 'scipy', 'duckdb', 'streamlit') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_an_unknown_argument_points_to_the_help_of_the_command_it_was_given_to(tmp_path, capsys):
    where = ["--user-db", str(tmp_path / "user.duckdb"), "--log-dir", str(tmp_path / "log")]
    cases = {
        ("scenario", "list", "--quiet"): ("scaleplan scenario list", "--quiet"),
        ("meta", "run", "--bogus", "3"): ("scaleplan meta run", "--bogus 3"),
        ("data", "summary", "extra"): ("scaleplan data summary", "extra"),
        ("--bogus", "data", "summary"): ("scaleplan", "--bogus"),  # before the command: the top level's
    }
    for argv, (prog, typed) in cases.items():
        assert cli.main([*where, *argv]) == cli.EXIT_USER_ERROR
        err = capsys.readouterr().err
        assert err == f"{prog}: error: unrecognized arguments: {typed} (see `{prog} --help`)\n", err
    assert not (tmp_path / "user.duckdb").exists() and not (tmp_path / "log").exists()

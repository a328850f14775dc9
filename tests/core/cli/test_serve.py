"""``scaleplan serve`` as a stranger runs it: no terminal, another working directory, SIGTERM.

The server is started exactly like README command 1 run in the background: the installed
``scaleplan`` console script, stdin from /dev/null, no TTY, and a working directory outside the
repository. It must answer ``/_stcore/health`` (never wait at Streamlit's e-mail prompt), and a
SIGTERM to the process must leave nothing behind: no process and no listener on the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import free_port

# The installed console script, as README command 1 runs it; the module form where an install
# put no script next to this interpreter (the same entry point, main()).
_SCRIPT = Path(sys.executable).with_name("scaleplan")
SCALEPLAN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "scaleplan.core.cli"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes() -> dict[int, list[str]]:
    """Every live process's /proc/<pid>/stat fields after the command name (state, ppid, pgrp, sid, ...)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return found


def _descendants(pid: int) -> list[int]:
    """Every process whose parent chain leads to ``pid`` (from /proc)."""
    parents = {child: int(fields[1]) for child, fields in _processes().items()}
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def test_serve_without_a_terminal_answers_health_and_sigterm_leaves_nothing(built_db, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        SCALEPLAN_DB=str(built_db),
        SCALEPLAN_DATA_DIR=str(tmp_path / "data"),
        SCALEPLAN_LOG_DIR=str(tmp_path / "log"),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SCALEPLAN, "serve", "--port", str(port), "--address", "127.0.0.1"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _healthy(url):
                assert process.poll() is None, f"serve exited ({process.returncode}):\n{log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no health answer in 60 s:\n{log.read_text()[-2000:]}"
                time.sleep(0.3)
            children = _descendants(process.pid)
            process.send_signal(signal.SIGTERM)  # to the process only, as a service manager would
            assert process.wait(timeout=20) is not None
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = log.read_text()
    assert "Email" not in text and "Welcome to Streamlit" not in text
    assert not _listening(port), "something still listens on the port after SIGTERM"
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"processes left behind after SIGTERM: {alive}"


def _in_session(sid: int) -> list[int]:
    """Every live process of session ``sid`` (from /proc)."""
    return [pid for pid, fields in _processes().items() if int(fields[3]) == sid and fields[0] != "Z"]


def test_serve_on_a_busy_port_says_so_suggests_a_free_one_and_starts_nothing(built_db, tmp_path):
    env = dict(os.environ, SCALEPLAN_DB=str(built_db), SCALEPLAN_LOG_DIR=str(tmp_path / "log"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        process = subprocess.Popen(
            [*SCALEPLAN, "serve", "--port", str(port), "--address", "127.0.0.1"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        elapsed = time.monotonic() - started
        assert process.returncode == 2, err
        assert out == "" and err.count("\n") == 1, err
        assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err
        assert "dashboard on http" not in err  # it never said it was serving
        assert _in_session(process.pid) == [], "a process of the refused serve is still running"
        suggested = int(err.split("--port ")[-1].split()[0])
        assert suggested != port
    with socket.socket() as check:  # the port it suggests is one a server can listen on
        check.bind(("127.0.0.1", suggested))
    assert elapsed < 30

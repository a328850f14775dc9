"""Test helpers: a Range-capable static HTTP server on 127.0.0.1, symlinked mirrors."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import threading
from functools import partial
from pathlib import Path


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus single ``Range: bytes=N-`` requests (206 Partial Content)."""

    requests_seen: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        range_header = self.headers.get("Range")
        type(self).requests_seen.append((self.path, range_header))
        if not range_header:
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        start = int(range_header.split("=", 1)[1].split("-", 1)[0])
        size = path.stat().st_size
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        with open(path, "rb") as handle:
            handle.seek(start)
            shutil.copyfileobj(handle, self.wfile)


@contextlib.contextmanager
def serve_directory(directory: Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yield the base URL."""
    RangeRequestHandler.requests_seen = []
    handler = partial(RangeRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def symlink_mirror(mirror: Path, dest: Path) -> Path:
    """A cheap copy of the mirror: the same tree with every file a symlink to the original."""
    for root, _dirs, files in os.walk(mirror):
        rel = Path(root).relative_to(mirror)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.symlink(Path(root) / name, dest / rel / name)
    return dest


def replace_with_copy(path: Path) -> Path:
    """Turn a symlink from :func:`symlink_mirror` into a real, writable copy of its target."""
    target = path.resolve()
    path.unlink()
    shutil.copyfile(target, path)
    return path


class ServerError(RuntimeError):
    """The dashboard server exited or did not become healthy."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def dashboard_server(
    db: Path, *, meta: Path | None = None, port: int | None = None, log: Path | None = None, timeout: float = 120.0
):
    """Run ``scaleplan serve`` on 127.0.0.1 in its own process group; yield ``(url, process)``.

    Waits for ``/_stcore/health``; on exit stops exactly that process group (cli -> streamlit).
    Raises :class:`ServerError` (with the end of ``log`` when given) if the server dies or
    never becomes healthy.
    """
    import sys

    port = port or free_port()
    env = dict(os.environ, SCALEPLAN_DB=str(db))
    if meta is not None:
        env["SCALEPLAN_META"] = str(meta)
    command = [
        sys.executable,
        "-m",
        "scaleplan.core.cli",
        "--db",
        str(db),
        "serve",
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
    ]
    with streamlit_server(command, port, env=env, log=log, timeout=timeout) as served:
        yield served


@contextlib.contextmanager
def streamlit_server(
    command: list[str], port: int, *, env: dict[str, str] | None = None, log: Path | None = None, timeout: float = 120.0
):
    """Run ``command`` (a Streamlit server on 127.0.0.1:``port``) in its own process group.

    Yields ``(url, process)`` once ``/_stcore/health`` answers; on exit stops that process group.
    """
    import signal
    import subprocess
    import time
    import urllib.error
    import urllib.request

    root = Path(__file__).resolve().parents[1]
    env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
    out = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def tail() -> str:
        return Path(log).read_text(errors="replace")[-3000:] if log else ""

    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise ServerError(f"the dashboard server exited ({process.returncode}):\n{tail()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"the dashboard server did not become healthy in {timeout:.0f} s:\n{tail()}")
            time.sleep(0.3)
        yield url, process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if log:
            out.close()


def start_holder(path: Path):
    """Start another process that holds a writable DuckDB connection to ``path`` (DuckDB's exclusive
    file lock; the file is created if it is missing); returns it once it holds the lock."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(120)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    if holder.stdout is None or holder.stdout.readline().strip() != "held":
        holder.kill()
        holder.wait()
        raise AssertionError(f"the holder process did not take the lock on {path}")
    return holder


@contextlib.contextmanager
def held_for_writing(path: Path):
    """Another process holds a writable DuckDB connection to ``path`` while the block runs."""
    holder = start_holder(path)
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


def data_version_of(db_path: Path) -> str | None:
    """The data version a built database records (core.storage.stored_data_version)."""
    from scaleplan.core import storage

    con = storage.connect(db_path)
    try:
        return storage.stored_data_version(con)
    finally:
        con.close()


def store_results(path: Path, rows) -> None:
    """Write sweep ``rows`` (a DataFrame of results columns) into a results file as a sweep of this machine would."""
    from scaleplan.core import meta

    con = meta.open_results(path)
    try:
        con.register("rows", rows)
        con.execute(f"INSERT INTO sweep_results ({', '.join(rows.columns)}) SELECT * FROM rows")
    finally:
        con.close()

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

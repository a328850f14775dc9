"""The shipped nginx configuration (deploy/nginx/scaleplan.conf), run by Debian's nginx in front of two
small loopback backends: sticky sessions (one browser, one backend; browsers spread over both), the
Host allow-list (another Host is closed unanswered), websocket upgrade headers passed on."""

from __future__ import annotations

import http.client
import importlib.util
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), reason="nginx not installed"
)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_load_ws", ROOT / "benchmarks" / "bench_load_ws.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's hook
        body = f"{self.server.server_port} {self.headers.get('Upgrade')} {self.headers.get('Connection')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def proxy(tmp_path):
    bench = _bench()
    backends = [ThreadingHTTPServer(("127.0.0.1", 0), _Echo) for _ in range(2)]
    for server in backends:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with bench.nginx_proxy([s.server_port for s in backends], tmp_path) as port:
            yield port, [s.server_port for s in backends]
    finally:
        for server in backends:
            server.shutdown()
            server.server_close()


def _get(port: int, *, host: str = "localhost", headers: dict | None = None) -> tuple[int, str, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("Set-Cookie")
    finally:
        connection.close()


def test_sessions_stick_to_one_backend_and_spread_over_both(proxy):
    port, backends = proxy
    seen = set()
    for _ in range(24):  # 24 browsers
        status, body, cookie = _get(port)
        assert status == 200 and cookie and cookie.startswith("scaleplan_backend=")
        first = body.split()[0]
        key = cookie.split(";", 1)[0]
        for _ in range(5):  # the same browser's later requests carry the cookie
            assert _get(port, headers={"Cookie": key})[1].split()[0] == first
        seen.add(int(first))
    assert seen == set(backends)


def test_another_host_is_closed_unanswered(proxy):
    port, _ = proxy
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _get(port, host="attacker.example")
    assert _get(port, host="127.0.0.1")[0] == 200


def test_websocket_upgrade_headers_reach_the_backend(proxy):
    port, _ = proxy
    _, body, _ = _get(port, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert body.split()[1:] == ["websocket", "upgrade"]
    _, body, _ = _get(port)
    assert body.split()[1:] == ["None", "close"]


def test_the_shipped_file_is_what_is_run():
    bench = _bench()
    template = (ROOT / "deploy" / "nginx" / "scaleplan.conf").read_text()
    conf = bench.nginx_config(template, listen_port=9999, backend_ports=[1111, 2222, 3333], work_dir=Path("/tmp/x"))
    assert (
        "server 127.0.0.1:1111;" in conf and "server 127.0.0.1:3333;" in conf and "server 127.0.0.1:8501;" not in conf
    )
    assert conf.count("listen 127.0.0.1:9999") == 2 and "hash $scaleplan_sticky consistent;" in conf

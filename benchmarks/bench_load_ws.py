"""Load test without browsers: many dashboard sessions over Streamlit's websocket, with think time.

    python benchmarks/bench_load_ws.py --sessions 50 --think 10 [--servers 2 --nginx] [--duration 60]
    python benchmarks/bench_load_ws.py --url http://127.0.0.1:8501 --sessions 10   # a running server

Each session is what a browser tab does on the wire: it opens ``/_stcore/stream``, asks for a page
(sessions alternate between the Fit page and the Budget planner), waits for the page's run to
finish, then, ``--think`` seconds after each finished run, moves the page's first number input
(the Fit page's early-token cutoff, the planner's study budget) one step down or up, as a click on
the widget's step button sends it (the widget's fragment, if it is in one, as the browser does).
A rerun is timed from the message sent to the server's ``script_finished``; the time to open a page
is reported apart. Errors: exception elements in a page, a run that does not finish within
``--timeout``, a closed connection.

Without ``--url`` the script starts ``--servers`` ``scaleplan serve`` processes on free loopback
ports (and, with ``--nginx``, Debian's nginx in front of them with ``deploy/nginx/scaleplan.conf``,
sticky sessions), and samples the servers' resident memory (process trees, every 0.2 s).

Bounded: at most 200 sessions and 600 s, traffic to 127.0.0.1 only. The last line is one JSON
object: sessions, think_s, servers, nginx, reruns, reruns_per_s, rerun_median_s, rerun_p95_s,
open_median_s, open_p95_s, errors, peak_memory_mib, server_cpu_s (the servers' CPU seconds over the
load) and server_cpu_s_per_run (over reruns and page opens), wall_s, and the load average at the end (the
machine may be shared: read the figures with it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "scaleplan.conf"
MAX_SESSIONS = 200
MAX_DURATION_S = 600.0
PAGES = ("fit", "planner")
STICKY_COOKIE = "scaleplan_backend"


# ---------------------------------------------------------------------------------------------
# Servers: scaleplan serve processes and nginx, on loopback.


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy within {timeout_s:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    """Stop exactly the process group this script started."""
    import signal

    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def scaleplan_servers(count: int, db: Path, meta: Path | None, log_dir: Path) -> Iterator[list[tuple[int, int]]]:
    """``count`` ``scaleplan serve`` processes on free loopback ports; yields [(port, pid), ...]."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    processes: list[tuple[int, subprocess.Popen]] = []
    try:
        for index in range(count):
            port = free_port()
            command = [sys.executable, "-m", "scaleplan.core.cli", "--db", str(db), "--log-dir", str(log_dir)]
            if meta is not None:
                command += ["--meta", str(meta)]
            command += ["serve", "--port", str(port), "--address", "127.0.0.1"]
            log = open(log_dir / f"server-{index}.log", "wb")  # noqa: SIM115 - closed with the process
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            processes.append((port, process))
        for port, process in processes:
            _wait_healthy(f"http://127.0.0.1:{port}", process, 180.0)
        yield [(port, process.pid) for port, process in processes]
    finally:
        for _, process in processes:
            _stop(process)


def nginx_config(template: str, *, listen_port: int, backend_ports: list[int], work_dir: Path) -> str:
    """A complete nginx.conf running the shipped site file with our ports, in ``work_dir``.

    Only the ``listen`` ports and the upstream's ``server`` lines of the template change.
    """
    site = re.sub(r"listen 127\.0\.0\.1:\d+", f"listen 127.0.0.1:{listen_port}", template)
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in backend_ports)
    site = re.sub(r"(upstream scaleplan \{\n(?:.*\n)*?)((?:    server 127\.0\.0\.1:\d+;\n)+)", rf"\g<1>{servers}", site)
    temp = {name: work_dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    return (
        "worker_processes 1;\n"
        f"pid {work_dir / 'nginx.pid'};\n"
        f"error_log {work_dir / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log off;\n"
        f"    client_body_temp_path {temp['client_body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n" + site + "}\n"
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
    return found


@contextlib.contextmanager
def nginx_proxy(backend_ports: list[int], work_dir: Path, template: Path = NGINX_TEMPLATE) -> Iterator[int]:
    """Debian's nginx on a free loopback port in front of ``backend_ports``; yields its port."""
    port = free_port()
    conf = work_dir / "nginx.conf"
    conf.write_text(
        nginx_config(template.read_text(), listen_port=port, backend_ports=backend_ports, work_dir=work_dir)
    )
    binary = nginx_binary()
    check = subprocess.run([binary, "-t", "-c", str(conf), "-e", str(work_dir / "error.log")], capture_output=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr.decode(errors='replace')[-400:]}")
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-e", str(work_dir / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(work_dir / 'error.log').read_text()[-400:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not answer within 20 s") from None
                time.sleep(0.2)
        yield port
    finally:
        _stop(process)


def _tree_stat_sum(root_pid: int, value: Callable[[list[str]], float]) -> float:
    """Sum of ``value(stat fields)`` over a process and all its live descendants (Linux /proc;
    the fields after the command name: [1] ppid, [11] utime, [12] stime, [21] rss in pages)."""
    children: dict[int, list[int]] = {}
    values: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            values[int(entry)] = value(fields)
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += values.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    page = os.sysconf("SC_PAGE_SIZE")
    return int(_tree_stat_sum(root_pid, lambda fields: int(fields[21]) * page))


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system, seconds) used so far by a process and its live descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    return _tree_stat_sum(root_pid, lambda fields: (int(fields[11]) + int(fields[12])) / ticks)


# ---------------------------------------------------------------------------------------------
# One session on the wire.


@dataclass
class Results:
    reruns: list[float] = field(default_factory=list)
    opens: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rerun_times: list[float] = field(default_factory=list)  # monotonic end of each rerun


@dataclass
class NumberWidget:
    id: str
    value: float
    step: float
    is_int: bool
    fragment_id: str


class Session:
    """One browser tab's traffic: page requests and widget changes over Streamlit's websocket."""

    def __init__(self, url: str, timeout_s: float) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.url = url
        self.timeout_s = timeout_s
        self.ForwardMsg = ForwardMsg
        self.page_hash = ""
        self.widget: NumberWidget | None = None
        self.exceptions = 0
        self.ws = None

    def _cookie(self) -> str | None:
        """The sticky cookie a browser gets with the page (set by nginx; none without a proxy)."""
        with urllib.request.urlopen(self.url + "/", timeout=self.timeout_s) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                if header.startswith(STICKY_COOKIE + "="):
                    return header.split(";", 1)[0]
        return None

    async def connect(self) -> None:
        import websockets

        cookie = await asyncio.to_thread(self._cookie)
        ws_url = self.url.replace("http://", "ws://", 1) + "/_stcore/stream"
        headers = {"Cookie": cookie} if cookie else None
        self.ws = await websockets.connect(
            ws_url, subprotocols=["streamlit"], max_size=None, additional_headers=headers, open_timeout=self.timeout_s
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _run(self, page: str, change: tuple[NumberWidget, float] | None) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        state = message.rerun_script
        state.query_string = ""
        state.page_name = page
        state.page_script_hash = self.page_hash
        if change is not None:
            widget, value = change
            entry = state.widget_states.widgets.add()
            entry.id = widget.id
            if widget.is_int:
                entry.int_value = int(value)
            else:
                entry.double_value = value
            if widget.fragment_id:
                state.fragment_id = widget.fragment_id
        await self.ws.send(message.SerializeToString())
        done = (self.ForwardMsg.FINISHED_SUCCESSFULLY, self.ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the run did not finish within {self.timeout_s:.0f} s")
            data = await asyncio.wait_for(self.ws.recv(), timeout=remaining)
            if isinstance(data, str):
                continue
            forward = self.ForwardMsg.FromString(data)
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = forward.new_session.page_script_hash
            elif kind == "delta":
                self._read_delta(forward)
            elif kind == "script_finished":
                if forward.script_finished == self.ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise RuntimeError("the script did not compile")
                if forward.script_finished in done:
                    return

    def _read_delta(self, forward) -> None:
        delta = forward.delta
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            self.exceptions += 1
        elif kind == "number_input" and self.widget is None:
            w = element.number_input
            is_int = w.data_type == w.INT
            value = w.value if w.set_value else w.default
            self.widget = NumberWidget(w.id, float(value), float(w.step or 1), is_int, delta.fragment_id)

    async def open(self, page: str) -> float:
        t0 = time.monotonic()
        self.widget = None
        await self._run(page, None)
        return time.monotonic() - t0

    async def change(self, page: str, step: int) -> float:
        if self.widget is None:
            raise RuntimeError(f"the {page} page shows no number input")
        widget = self.widget
        value = widget.value - widget.step if step % 2 == 0 else widget.value + widget.step
        self.widget = None  # re-read from the rerun (its fragment and value)
        t0 = time.monotonic()
        await self._run(page, (widget, value))
        elapsed = time.monotonic() - t0
        if self.widget is None:  # a fragment rerun may not resend the widget: keep what we know
            self.widget = NumberWidget(widget.id, value, widget.step, widget.is_int, widget.fragment_id)
        return elapsed


async def _session(index: int, url: str, think_s: float, stop_at: float, timeout_s: float, results: Results) -> None:
    page = PAGES[index % len(PAGES)]
    session = Session(url, timeout_s)
    try:
        await asyncio.sleep(random.uniform(0, min(think_s, 5.0)) if think_s else 0.0)  # not all at once
        await session.connect()
        results.opens.append(await session.open(page))
        step = 0
        while time.monotonic() < stop_at:
            if think_s:
                await asyncio.sleep(random.uniform(0.5 * think_s, 1.5 * think_s))
                if time.monotonic() >= stop_at:
                    break
            results.reruns.append(await session.change(page, step))
            results.rerun_times.append(time.monotonic())
            step += 1
        if session.exceptions:
            results.errors.append(f"session {index} ({page}): {session.exceptions} exception element(s) shown")
    except Exception as error:  # noqa: BLE001 - every failure of a session is an error of the app under load
        results.errors.append(f"session {index} ({page}): {type(error).__name__}: {str(error)[:160]}")
    finally:
        with contextlib.suppress(Exception):
            await session.close()


async def drive(url: str, sessions: int, think_s: float, duration_s: float, timeout_s: float) -> Results:
    results = Results()
    stop_at = time.monotonic() + duration_s
    tasks = [_session(i, url, think_s, stop_at, timeout_s, results) for i in range(sessions)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration_s + timeout_s + 30)
    except TimeoutError:
        results.errors.append("the time budget ran out before every session finished")
    return results


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _inputs(db_arg: str | None, meta_arg: str | None, work: Path) -> tuple[Path, Path | None]:
    from scaleplan.core import storage
    from scaleplan.core.settings import resolve_settings

    settings = resolve_settings(db=db_arg, meta=meta_arg)
    db = settings.db_path
    if storage.database_status(db) != "ok":
        db = work / "bench.duckdb"
        mirror = settings.mirror or ROOT.parent / "shared" / "datasets"
        print(f"building a database from {mirror} into {db}...", file=sys.stderr)
        storage.build_database(db, mirror=mirror, progress=False)
    meta = settings.meta_path if settings.meta_path.exists() else None
    return db, meta


def _loopback_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--url must be http://127.0.0.1:PORT (loopback only), got {url!r}")
    return url.rstrip("/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help=f"concurrent sessions (1-{MAX_SESSIONS})")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between a finished run and the next change")
    parser.add_argument("--duration", type=float, default=60.0, help=f"seconds of load (at most {MAX_DURATION_S:.0f})")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before one run counts as an error")
    parser.add_argument("--url", help="a running server (loopback only); default: start servers here")
    parser.add_argument("--servers", type=int, default=1, help="scaleplan serve processes to start (1-4)")
    parser.add_argument("--nginx", action="store_true", help="put nginx (deploy/nginx/scaleplan.conf) in front")
    parser.add_argument("--db", help="database (default: the settings' database, built in a temp folder if needed)")
    parser.add_argument("--meta", help="meta-analysis results (default: the settings')")
    args = parser.parse_args()
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be within 1-{MAX_SESSIONS}")
    if not 0 < args.duration <= MAX_DURATION_S or args.think < 0 or args.timeout <= 0:
        parser.error(f"--duration must be within (0, {MAX_DURATION_S:.0f}], --think >= 0, --timeout > 0")
    if not 1 <= args.servers <= 4:
        parser.error("--servers must be within 1-4")
    random.seed(0)
    started = time.monotonic()
    peak = [0]
    stop = threading.Event()

    def sample(pids: list[int]) -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(tree_rss_bytes(pid) for pid in pids))
            time.sleep(0.2)

    server_cpu_s = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-load-ws-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if args.url:
                url, pids = _loopback_url(args.url), []
            else:
                db, meta = _inputs(args.db, args.meta, work)
                servers = stack.enter_context(scaleplan_servers(args.servers, db, meta, work))
                pids = [pid for _, pid in servers]
                url = f"http://127.0.0.1:{servers[0][0]}"
                if args.nginx:
                    url = f"http://127.0.0.1:{stack.enter_context(nginx_proxy([p for p, _ in servers], work))}"
            threading.Thread(target=sample, args=(pids,), daemon=True).start()
            cpu_before = sum(tree_cpu_seconds(pid) for pid in pids)
            load_started = time.monotonic()
            results = asyncio.run(drive(url, args.sessions, args.think, args.duration, args.timeout))
            load_s = time.monotonic() - load_started
            server_cpu_s = sum(tree_cpu_seconds(pid) for pid in pids) - cpu_before
            stop.set()
    window = [t for t in results.rerun_times]
    span = (max(window) - load_started) if window else load_s
    summary = {
        "sessions": args.sessions,
        "think_s": args.think,
        "servers": 0 if args.url else args.servers,
        "nginx": bool(args.nginx),
        "duration_s": args.duration,
        "reruns": len(results.reruns),
        "reruns_per_s": round(len(results.reruns) / span, 2) if span > 0 else None,
        "rerun_median_s": round(statistics.median(results.reruns), 3) if results.reruns else None,
        "rerun_p95_s": round(percentile(results.reruns, 0.95), 3) if results.reruns else None,
        "open_median_s": round(statistics.median(results.opens), 3) if results.opens else None,
        "open_p95_s": round(percentile(results.opens, 0.95), 3) if results.opens else None,
        "errors": len(results.errors),
        "peak_memory_mib": round(peak[0] / 2**20) if pids else None,
        # the servers' CPU over the load (page opens included) per rerun, and the opens' share of runs
        "server_cpu_s": round(server_cpu_s, 1) if pids else None,
        "server_cpu_s_per_run": (
            round(server_cpu_s / (len(results.reruns) + len(results.opens)), 3)
            if pids and (results.reruns or results.opens)
            else None
        ),
        "wall_s": round(time.monotonic() - started, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    for error in results.errors[:10]:
        print(f"error: {error}", file=sys.stderr)
    print(
        f"{summary['sessions']} sessions, think {args.think:g} s, {summary['servers']} server(s)"
        + (" behind nginx" if args.nginx else "")
        + f": {summary['reruns']} reruns ({summary['reruns_per_s']}/s), median {summary['rerun_median_s']} s, "
        f"p95 {summary['rerun_p95_s']} s; page open median {summary['open_median_s']} s; {summary['errors']} errors"
    )
    print(json.dumps(summary))
    return 0 if not results.errors else 1


if __name__ == "__main__":
    raise SystemExit(main())

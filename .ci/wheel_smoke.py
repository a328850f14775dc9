"""CI: a real install works. Build the wheel, install it into a fresh venv outside the repository,
and use it from another directory as a stranger would.

Checks, in order (each prints one line; any failure exits non-zero with the reason):
1. ``pip wheel`` builds scaleplan-*.whl; the wheel holds the manifest and the Streamlit config.
2. A fresh venv in a temporary folder installs the wheel (no editable install, no source tree).
3. In that venv ``import scaleplan.core`` works and ``import core`` / ``import dashboard`` fail.
4. ``scaleplan data build --mirror M`` builds the database into the per-user data folder
   (``SCALEPLAN_DATA_DIR`` points it into the temporary folder).
5. ``scaleplan serve`` with stdin from /dev/null and no terminal answers ``/_stcore/health``
   within 60 s.
6. Debian's Chromium renders /overview (the page's title and counts appear).
7. SIGTERM to the serve process leaves no process behind and nothing listening on the port.

Usage: ``python .ci/wheel_smoke.py --mirror ../shared/datasets`` (run with a Python that has
Playwright, e.g. the test venv).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(message: str) -> None:
    print(f"wheel smoke: {message}", flush=True)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, stdin=subprocess.DEVNULL, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", required=True, type=Path)
    args = parser.parse_args()
    mirror = args.mirror.resolve()

    with tempfile.TemporaryDirectory(prefix="scaleplan-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(ROOT)])
        wheel = next((tmp / "dist").glob("scaleplan-*.whl"))
        names = set(zipfile.ZipFile(wheel).namelist())
        for required in (
            "scaleplan/data/manifest.json",
            "scaleplan/streamlit_config/config.toml",
            "scaleplan/dashboard/app.py",
            "scaleplan/core/cli/__init__.py",
            "scaleplan/data/sweep_results.parquet",
            "scaleplan/data/sweep_results.json",
        ):
            assert required in names, f"{required} is missing from {wheel.name}"
        assert not any(n.startswith(("core/", "dashboard/")) for n in names), (
            "top-level core/ or dashboard/ in the wheel"
        )
        step(f"built {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB) with its package data")

        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
        step("installed the wheel into a fresh venv outside the repository")

        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        python = str(venv / "bin" / "python")
        run(
            [python, "-c", "import scaleplan.core, scaleplan.dashboard; print(scaleplan.core.__file__)"],
            cwd=elsewhere,
            stdout=subprocess.DEVNULL,
        )
        for name in ("core", "dashboard"):
            probe = subprocess.run([python, "-c", f"import {name}"], cwd=elsewhere, capture_output=True)
            assert probe.returncode != 0, f"`import {name}` works in the wheel's venv"
        step("`import scaleplan` works; `import core` and `import dashboard` fail")

        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALEPLAN_")}
        env["SCALEPLAN_DATA_DIR"] = str(tmp / "user-data")
        scaleplan = str(venv / "bin" / "scaleplan")
        run([scaleplan, "data", "build", "--mirror", str(mirror), "--quiet"], cwd=elsewhere, env=env)
        assert (tmp / "user-data" / "scaleplan.duckdb").is_file(), "the database is not in the data folder"
        step("`scaleplan data build` built the database in the per-user data folder")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [scaleplan, "serve", "--port", str(port), "--address", "127.0.0.1"],
                cwd=elsewhere,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                start = time.monotonic()
                while not healthy(url):
                    if server.poll() is not None:
                        raise AssertionError(f"serve exited with {server.returncode}:\n{log.read_text()[-2000:]}")
                    if time.monotonic() - start > 60:
                        raise AssertionError(f"no /_stcore/health answer in 60 s:\n{log.read_text()[-2000:]}")
                    time.sleep(0.3)
                step(
                    f"`scaleplan serve` without a terminal answered /_stcore/health in {time.monotonic() - start:.1f} s"
                )

                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    browser = p.chromium.launch(
                        executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-dev-shm-usage"]
                    )
                    page = browser.new_page()
                    page.goto(f"{url}/overview", timeout=120_000)
                    page.get_by_text("runs", exact=False).first.wait_for(timeout=120_000)
                    body = page.inner_text("body")
                    browser.close()
                assert "Page not found" not in body, "/overview is not found"
                step("Chromium rendered /overview")

                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
            finally:
                if server.poll() is None:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
        leftovers = subprocess.run(["pgrep", "-s", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert not leftovers, f"processes left after SIGTERM: {leftovers}"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port is still open after SIGTERM"
        step(f"SIGTERM stopped serve (exit {server.returncode}); no process left, port {port} closed")
    print("wheel-smoke: 7 passed, 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load test: concurrent browser sessions against `scaleplan serve` on 127.0.0.1.

    python benchmarks/bench_load.py [--sessions 20] [--moves 10] [--db data/scaleplan.duckdb]

Each session (its own browser context in one headless Debian Chromium, driven by
Playwright) opens the fit page and the planner page and moves a widget ``--moves`` times on
each (the step buttons of the page's first number input: the fit page's early-token cutoff,
the planner's study budget), waiting for every rerun to finish. Prints: errors (exception
elements, timeouts, crashes; target 0), the median and p95 time from the click to the end of
the rerun it triggers (the server's ``script_finished`` message, then two painted frames), and
the server's peak resident memory (the whole process tree, sampled every 0.2 s).
Traffic goes to 127.0.0.1 only, request loops are bounded, and the script stops by itself
within 5 minutes (``--budget``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import dashboard_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

# Resolves once the page has painted everything received so far (two animation frames).
PAINTED_JS = "() => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)))"


class RunWatcher:
    """Times of the end of every script run of one page, read from the websocket.

    The server ends each rerun with a ``script_finished`` ForwardMsg. (The DOM's script-state
    attribute is not enough: under load the browser can apply a whole rerun in one render, and
    the attribute never shows "running".)
    """

    def __init__(self, page) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._parse = ForwardMsg.FromString
        self._done = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
        self.finished: list[float] = []
        self.sent: list[float] = []
        self.changed = asyncio.Event()
        page.on("websocket", self._attach)

    def _attach(self, websocket) -> None:
        websocket.on("framereceived", self._received)
        websocket.on("framesent", lambda _payload: self.sent.append(time.monotonic()))

    def _received(self, payload) -> None:
        if isinstance(payload, str):
            return
        try:
            message = self._parse(payload)
        except Exception:  # not a ForwardMsg: ignore
            return
        if message.WhichOneof("type") == "script_finished" and message.script_finished in self._done:
            self.finished.append(time.monotonic())
            self.changed.set()

    async def wait_finished_after(self, t0: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(t > t0 for t in self.finished):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                sent = any(t > t0 for t in self.sent)
                raise RuntimeError("the rerun did not finish" if sent else "the change was not sent to the server")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=remaining)
            except TimeoutError:
                pass


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


async def _open(page, watcher: RunWatcher, url: str, timeout_ms: float) -> None:
    t0 = time.monotonic()
    await page.goto(url, timeout=timeout_ms)
    await watcher.wait_finished_after(t0, timeout_ms / 1e3)
    await page.wait_for_selector('[data-testid="stNumberInput"]', timeout=timeout_ms)
    await page.evaluate(PAINTED_JS)


async def _move_widget(page, watcher: RunWatcher, step: int, timeout_ms: float) -> float:
    """Click the step-down (even steps) or step-up button of the page's first number input, as a
    user does; seconds until the rerun it triggers has finished and been painted.

    Raises RuntimeError when the rerun does not finish within the timeout.
    """
    widget = page.locator('[data-testid="stNumberInput"]').first
    button = widget.locator(
        '[data-testid="stNumberInputStepDown"]' if step % 2 == 0 else '[data-testid="stNumberInputStepUp"]'
    )
    await button.wait_for(timeout=timeout_ms)
    t0 = time.monotonic()
    await button.click(timeout=timeout_ms)
    await watcher.wait_finished_after(t0, timeout_ms / 1e3)
    await page.evaluate(PAINTED_JS)
    return time.monotonic() - t0


async def _session(browser, url: str, moves: int, latencies: list, errors: list, timeout_ms: float) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    watcher = RunWatcher(page)
    try:
        for path in ("fit", "planner"):
            await _open(page, watcher, f"{url}/{path}", timeout_ms)
            for step in range(moves):
                try:
                    latencies.append(await _move_widget(page, watcher, step, timeout_ms))
                except Exception as error:  # a timeout is an error of the app under load
                    errors.append(f"{path}: {type(error).__name__}: {str(error)[:120]}")
                    break
            count = await page.locator('[data-testid="stException"]').count()
            if count:
                errors.append(f"{path}: {count} exception element(s) shown")
    except Exception as error:
        errors.append(f"session: {type(error).__name__}: {str(error)[:120]}")
    finally:
        await context.close()


async def _drive(url: str, sessions: int, moves: int, budget_s: float) -> tuple[list, list]:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tasks = [_session(browser, url, moves, latencies, errors, timeout_ms=60_000) for _ in range(sessions)]
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=budget_s)
            except TimeoutError:
                errors.append(f"time budget of {budget_s:.0f} s reached before all sessions finished")
        finally:
            await browser.close()
    return latencies, errors


def _ensure_inputs(db_arg: str | None) -> tuple[Path, Path, tempfile.TemporaryDirectory | None]:
    from scaleplan.core import meta, storage
    from scaleplan.core.settings import resolve_settings

    settings = resolve_settings(db=db_arg)
    tmp = None
    db = settings.db_path
    if storage.database_status(db) != "ok":
        tmp = tempfile.TemporaryDirectory()
        db = Path(tmp.name) / "bench.duckdb"
        mirror = settings.mirror or ROOT.parent / "shared" / "datasets"
        storage.build_database(db, mirror=mirror, progress=False)
    meta_path = settings.meta_path
    if not meta_path.exists():
        tmp = tmp or tempfile.TemporaryDirectory()
        meta_path = Path(tmp.name) / "meta.duckdb"
        meta.run_sweep(
            db, meta_path, families=["pythia", "pythia-deduped", "opt", "gpt3", "overtrain-c4"], progress=False
        )
    return db, meta_path, tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--db", help="database (default: the settings' database, built into a temp dir if needed)")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds before the sessions are stopped")
    args = parser.parse_args()
    started = time.monotonic()
    db, meta_path, tmp = _ensure_inputs(args.db)
    peak = [0]
    stop = threading.Event()

    def sample(pid: int) -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(pid))
            time.sleep(0.2)

    try:
        with dashboard_server(db, meta=meta_path) as (url, server):
            threading.Thread(target=sample, args=(server.pid,), daemon=True).start()
            budget = max(30.0, min(args.budget, 290.0 - (time.monotonic() - started)))
            latencies, errors = asyncio.run(_drive(url, args.sessions, args.moves, budget))
    finally:
        stop.set()
        if tmp is not None:
            tmp.cleanup()
    expected = args.sessions * 2 * args.moves
    print(f"sessions: {args.sessions} concurrent, {args.moves} widget changes on each of the fit and planner pages")
    print(f"widget changes completed: {len(latencies)} of {expected}")
    print(f"errors: {len(errors)}  (target 0)")
    for error in errors[:10]:
        print(f"  - {error}")
    if latencies:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        print(f"widget-to-update latency: median {statistics.median(ordered) * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms")
    print(f"server peak resident memory: {peak[0] / 2**20:.0f} MiB")
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 0 if not errors and len(latencies) == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())

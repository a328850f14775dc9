"""Load test: concurrent browser sessions against `scaleplan serve` on 127.0.0.1.

    python benchmarks/bench_load.py [--sessions 20] [--moves 10] [--db data/scaleplan.duckdb]

Each session (its own browser context in one headless Debian Chromium, driven by
Playwright) opens the fit page and the planner page and moves a widget ``--moves`` times on
each, waiting for every rerun to finish. Prints: errors (exception elements, timeouts,
crashes; target 0), the median and p95 time from a widget change to the end of the rerun,
and the server's peak resident memory (the whole process tree, sampled every 0.2 s).
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
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

# Records, in page time, every end of a script run (the app's data-test-script-state leaving "running").
OBSERVER_JS = """
() => {
  window.__runEnds = [];
  const app = document.querySelector('[data-testid="stApp"]');
  let last = app.getAttribute('data-test-script-state');
  new MutationObserver(() => {
    const now = app.getAttribute('data-test-script-state');
    if (last === 'running' && now !== 'running') window.__runEnds.push(performance.now());
    last = now;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}
"""


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


async def _wait_idle(page, timeout_ms: float) -> None:
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    await page.wait_for_function(
        """() => { const a = document.querySelector('[data-testid="stApp"]');
                   const m = document.querySelector('[data-testid="stMain"]');
                   return a && a.getAttribute('data-test-script-state') !== 'running' && m && m.innerText.length > 0; }""",
        timeout=timeout_ms)


async def _move_widget(page, step: int, timeout_ms: float) -> float:
    """Change the first slider (arrow key) or number input on the page; seconds until the rerun ends."""
    slider = page.locator('[data-testid="stSlider"] [role="slider"]').first
    t0 = await page.evaluate("performance.now()")
    if await slider.count():
        await slider.focus()
        await slider.press("ArrowLeft" if step % 2 else "ArrowRight")
    else:
        number = page.locator('[data-testid="stNumberInput"] input').first
        await number.focus()
        await number.press("ArrowUp" if step % 2 else "ArrowDown")
        await number.press("Enter")
    await page.wait_for_function("t0 => window.__runEnds.some(t => t > t0)", arg=t0, timeout=timeout_ms)
    ends = await page.evaluate("window.__runEnds")
    return (min(t for t in ends if t > t0) - t0) / 1e3


async def _session(browser, url: str, moves: int, latencies: list, errors: list, timeout_ms: float) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        for path in ("fit", "planner"):
            await page.goto(f"{url}/{path}", timeout=timeout_ms)
            await _wait_idle(page, timeout_ms)
            await page.evaluate(OBSERVER_JS)
            for step in range(moves):
                try:
                    latencies.append(await _move_widget(page, step, timeout_ms))
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
            except asyncio.TimeoutError:
                errors.append(f"time budget of {budget_s:.0f} s reached before all sessions finished")
        finally:
            await browser.close()
    return latencies, errors


def _ensure_inputs(db_arg: str | None) -> tuple[Path, Path, tempfile.TemporaryDirectory | None]:
    from core import meta, storage

    tmp = None
    db = Path(db_arg) if db_arg else storage.DEFAULT_DB_PATH
    if storage.database_status(db) != "ok":
        tmp = tempfile.TemporaryDirectory()
        db = Path(tmp.name) / "bench.duckdb"
        mirror = os.environ.get("SCALEPLAN_MIRROR", str(ROOT.parent / "shared" / "datasets"))
        storage.build_database(db, mirror=mirror, progress=False)
    meta_path = Path(os.environ.get("SCALEPLAN_META", meta.DEFAULT_META_PATH))
    if not meta_path.exists():
        tmp = tmp or tempfile.TemporaryDirectory()
        meta_path = Path(tmp.name) / "meta.duckdb"
        meta.run_sweep(db, meta_path, families=["pythia", "pythia-deduped", "opt", "gpt3", "overtrain-c4"],
                       progress=False)
    return db, meta_path, tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--db", help="database (default: data/scaleplan.duckdb, built into a temp dir if needed)")
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

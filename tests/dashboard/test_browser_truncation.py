"""The Budget planner and Scenarios at 1,400 px: no label, button, chip, checkbox or table column is cut
(review 4: "Compute budg", "GPU-hour", "IsoFLOP gri…", "Allow runs outside the collection's tokens/p…",
the compute-optimal table's "Interval fr…", the scenario list's last column)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.dashboard.conftest import wait_for_app
from tests.dashboard.test_browser_scenarios import served

pytestmark = pytest.mark.browser

WIDTH = 1400
SLOW = 240_000

CUT_TEXT = """
() => {
  const cut = [];
  const main = document.querySelector('[data-testid="stMain"]');
  main.querySelectorAll('*').forEach(el => {
    if (el.closest('.js-plotly-plot') || el.closest('[data-testid="stDataFrame"]')) return;
    const text = (el.innerText || el.value || '').trim();  // a selectbox shows its value in an input
    if (!text || el.clientWidth === 0) return;
    const style = getComputedStyle(el);
    const clips = style.textOverflow === 'ellipsis' || ['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX);
    if (clips && el.scrollWidth > el.clientWidth + 1) cut.push(`${el.getAttribute('data-testid') || el.tagName}: ${text.slice(0, 70)}`);
  });
  return [...new Set(cut)];
}
"""


def _cut(page, url: str) -> list[str]:
    page.goto(url)
    wait_for_app(page, timeout=SLOW)
    page.wait_for_timeout(800)
    return page.evaluate(CUT_TEXT)


def test_nothing_is_cut_at_1400_px(browser, built_db, meta_db, tmp_path):
    from scaleplan.core import scenarios
    from scaleplan.core.userstore import user_store

    user_db = tmp_path / "user.duckdb"
    base = scenarios.PlanInputs(target_params=7e10, target_tokens=1.4e12, budget_dollars=20_000, accuracy_percent=5)
    with user_store(user_db) as con:
        scenarios.save_scenario(con, "base-20k", base)
        scenarios.save_scenario(con, "c1e24-50k", scenarios.PlanInputs(target_flops=1e24, budget_dollars=50_000))
        scenarios.save_scenario(
            con,
            "gpuh-5000-hoff",
            dataclasses.replace(base, budget_dollars=None, budget_gpu_hours=5000, law="hoffmann2022"),
        )
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    found = {}
    try:
        with served(built_db, meta_db, user_db, tmp_path / "server.log") as url:
            for name, path in (
                ("planner", "/planner"),
                ("planner gpu-hours", "/planner?unit=gpu_hours&amount=10000"),
                ("planner compute", "/planner?mode=compute&c=1e24&amount=50000"),
                ("scenarios", "/scenarios?compare=base-20k&compare=c1e24-50k"),
            ):
                cut = _cut(page, url + path)
                if cut:
                    found[name] = cut
    finally:
        context.close()
    assert not found, found

"""Every page at 1,280 and 1,920 px: no chart text overlaps another (title, caption, legend, axis
titles, annotations) or leaves its chart, and no card or heading is cut off.

The check reads the element boxes the browser laid out (getBoundingClientRect): for each Plotly
chart, its title, subtitle, axis titles, legend, annotations and tick labels pairwise, and against
the chart's own frame; for Streamlit, metric labels and values and headings whose text is wider
than their box (an ellipsis).
"""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import wait_for_app
from tests.helpers import dashboard_server

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1920)
PAGES = ("overview", "explore", "your-runs", "fit", "planner", "reliability", "scenarios")
SLOW = 240_000

LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const overlap = (a, b) => {
    const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
    const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
    return (w > 2 && h > 2) ? w * h : 0;
  };
  document.querySelectorAll('.js-plotly-plot').forEach((plot, index) => {
    const svg = plot.querySelector('.main-svg'); if (!svg) return;
    const frame = box(svg);
    const title = (plot.querySelector('.gtitle') || {}).textContent || `chart ${index}`;
    const parts = [];
    const add = (sel, kind) => plot.querySelectorAll(sel).forEach(el => { const b = box(el); if (b.w > 0 && b.h > 0) parts.push({kind, b, text: (el.textContent || '').slice(0, 40)}); });
    add('.gtitle', 'title'); add('.gtitle-subtitle', 'subtitle'); add('.nsewdrag', 'plot'); add('.g-xtitle text', 'xtitle'); add('.g-ytitle text', 'ytitle');
    add('.legend .scrollbox', 'legend'); add('.annotation', 'annotation');
    add('.xtick text', 'xtick'); add('.ytick text', 'ytick');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.kind !== 'plot' && p.kind !== 'xtick' && p.kind !== 'ytick' && (p.b.x < frame.x - 1 || p.b.y < frame.y - 1 || p.b.x + p.b.w > frame.x + frame.w + 1 || p.b.y + p.b.h > frame.y + frame.h + 1))
        problems.push(`${title}: ${p.kind} '${p.text}' clipped`);
      for (let j = i + 1; j < parts.length; j++) {
        const q = parts[j];
        if ((p.kind.endsWith('tick') && q.kind.endsWith('tick'))) continue;
        if ((p.kind === 'plot' || q.kind === 'plot') && !['title', 'subtitle'].includes(p.kind === 'plot' ? q.kind : p.kind)) continue;
        if (overlap(p.b, q.b) > 0) problems.push(`${title}: ${p.kind} '${p.text}' overlaps ${q.kind} '${q.text}'`);
      }
    }
  });
  document.querySelectorAll('[data-testid="stMetricValue"] div, [data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div, h1, h2, h3, [data-testid="stHeadingWithActionElements"] span').forEach(el => {
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible') problems.push(`text truncated: '${el.textContent.slice(0, 60)}'`);
  });
  return problems;
}
"""


@pytest.fixture(scope="module")
def layout_url(built_db, meta_db, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("layout-server") / "streamlit.log"
    with dashboard_server(built_db, meta=meta_db, log=log_path, timeout=120) as (url, _process):
        yield url


def layout_problems(page) -> list[str]:
    """What overlaps or is cut off on the page as drawn."""
    return page.evaluate(LAYOUT_PROBLEMS)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_overlapping_or_truncated_text(browser, layout_url, artifacts, width):
    context = browser.new_context(viewport={"width": width, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    found = {}
    try:
        for name in PAGES:
            page.goto(f"{layout_url}/{name}")
            wait_for_app(page, timeout=SLOW)
            page.wait_for_timeout(1000)  # charts finish their responsive re-layout
            problems = layout_problems(page)
            if problems:
                found[name] = problems
                page.screenshot(path=str(artifacts / f"layout-{name}-{width}.png"), full_page=True)
    finally:
        context.close()
    assert not found, found

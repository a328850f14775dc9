"""The dashboard's page registry (used by dashboard/app.py; importable without running the app).

Adding a page: write ``dashboard/views/<file>.py`` (widgets -> core -> charts, ending with
``common.run_page(render)``). The planned pages already have an entry below and are registered
as soon as their file exists, so the app works before they are written. A new page gets a new
``PageSpec`` line. URLs: the default page is served at ``/``, every page at ``/<url_path>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "views"


@dataclass(frozen=True)
class PageSpec:
    section: str    # navigation group heading
    file: str       # file name under dashboard/views/
    title: str
    icon: str
    url_path: str   # the page's URL: http://host:port/<url_path>
    default: bool = False


# The dashboard's pages, in menu order. A page whose file does not exist yet is skipped.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("The collection", "overview.py", "Overview", ":material/dashboard:", "overview", default=True),
    PageSpec("The collection", "explore.py", "Explore the collection", ":material/query_stats:", "explore"),
    PageSpec("The collection", "your_runs.py", "Your runs", ":material/upload_file:", "your-runs"),
    # Planned pages, registered as soon as their file exists:
    PageSpec("Plan", "fit.py", "Fit and extrapolate", ":material/show_chart:", "fit"),
    PageSpec("Plan", "planner.py", "Budget planner", ":material/payments:", "planner"),
    PageSpec("Plan", "reliability.py", "How reliable are scaling laws?", ":material/fact_check:", "reliability"),
)


def registered_specs(pages_dir: Path = PAGES_DIR) -> list[PageSpec]:
    """The page specs whose files exist, in menu order."""
    return [spec for spec in PAGES if (pages_dir / spec.file).is_file()]


def navigation_pages(pages_dir: Path = PAGES_DIR) -> dict:
    """``{section: [st.Page, ...]}`` for ``st.navigation``, only pages whose files exist."""
    import streamlit as st

    sections: dict[str, list] = {}
    for spec in registered_specs(pages_dir):
        sections.setdefault(spec.section, []).append(
            st.Page(pages_dir / spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path,
                    default=spec.default))
    return sections

"""The dashboard's page registry (used by dashboard/app.py; importable without running the app).

Adding a page: write ``dashboard/views/<file>.py`` (widgets -> core -> charts, ending with
``common.run_page(render)``). The planned pages already have an entry below and are registered
as soon as their file exists, so the app works before they are written. A new page gets a new
``PageSpec`` line. URLs: every page is served at ``/<url_path>``; ``/`` (Streamlit's default page,
which has no other address) is a hidden page that switches to the page marked ``default``, so
both ``/`` and ``/overview`` show the Overview and the menu marks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "views"


@dataclass(frozen=True)
class PageSpec:
    section: str  # navigation group heading
    file: str  # file name under dashboard/views/
    title: str
    icon: str
    url_path: str  # the page's URL: http://host:port/<url_path>
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
    PageSpec("Plan", "scenarios.py", "Scenarios and brief", ":material/compare:", "scenarios"),
)


def registered_specs(pages_dir: Path = PAGES_DIR) -> list[PageSpec]:
    """The page specs whose files exist, in menu order."""
    return [spec for spec in PAGES if (pages_dir / spec.file).is_file()]


ROOT_URL_PATH = "start"  # internal name of the hidden page at "/" (Streamlit serves a default page only at "/")


def navigation_pages(pages_dir: Path = PAGES_DIR) -> dict:
    """``{section: [st.Page, ...]}`` for ``st.navigation``, only pages whose files exist.

    Streamlit serves its default page at ``/`` only (its own ``url_path`` gives "Page not found"),
    so every listed page is a normal page at ``/<url_path>`` and the default is a hidden page
    that switches to the ``default`` spec's page, keeping the query string.
    """
    import streamlit as st

    sections: dict[str, list] = {}
    landing = None
    for spec in registered_specs(pages_dir):
        page = st.Page(pages_dir / spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path)
        sections.setdefault(spec.section, []).append(page)
        if spec.default:
            landing = (spec, page)
    if landing is not None:
        spec, target = landing

        def go_to_default_page() -> None:
            st.switch_page(target, query_params={key: st.query_params.get_all(key) for key in st.query_params})

        root = st.Page(
            go_to_default_page,
            title=spec.title,
            icon=spec.icon,
            url_path=ROOT_URL_PATH,
            default=True,
            visibility="hidden",
        )
        sections.setdefault(spec.section, []).insert(0, root)
    return sections

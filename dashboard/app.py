"""scaleplan dashboard entry point: `streamlit run dashboard/app.py` (or `scaleplan serve`).

This file is the frame around every page: page config, navigation, static styling and a
last-resort error guard. The pages live in dashboard/views/ and are registered in
``dashboard/navigation.py`` (PAGES): Overview (default, at / and /overview), Explore the collection
(/explore), Your runs (/your-runs), and the planned Fit and extrapolate (/fit), Budget planner
(/planner) and How reliable are scaling laws? (/reliability), each registered only once its
file exists.

Adding a page
-------------
1. Write ``dashboard/views/<file>.py``: gather inputs with widgets, call ``core``, draw with
   ``dashboard.charts`` / Plotly, and end the file with ``common.run_page(render)`` (database
   check + short error messages instead of tracebacks). ``dashboard.state`` reads/validates
   URL query parameters; ``dashboard.uploads.uploaded_runs()`` gives the user's uploaded runs.
2. fit.py, planner.py and reliability.py already have an entry in ``navigation.PAGES``; a new
   page needs a new ``PageSpec`` line there.
3. Tests: ``tests/dashboard/conftest.py`` has ``app_test`` (Streamlit AppTest of this app on a
   built database) and ``server_url`` / ``page`` / ``open_page`` (served app, headless Chromium).
"""

from __future__ import annotations

import logging

import streamlit as st

from scaleplan.dashboard import navigation

# Static styling only (no user data): a tighter top margin and larger metric values.
STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1500px; }
[data-testid="stMetricValue"] { font-size: 2.1rem; }
</style>"""

st.set_page_config(
    page_title="scaleplan", page_icon=":material/insights:", layout="wide", initial_sidebar_state="expanded"
)
page = st.navigation(navigation.navigation_pages())
st.html(STYLE)
st.sidebar.caption("scaleplan · compute planning with scaling laws fitted on public training runs")
try:
    page.run()
except Exception as error:  # noqa: BLE001 - pages guard themselves; this is the last resort
    logging.getLogger("scaleplan.dashboard").exception("page failed")
    st.error(
        f"This page could not be drawn ({type(error).__name__}). Reload the page or pick another one.",
        icon=":material/error:",
    )

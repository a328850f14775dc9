"""scaleplan dashboard entry point: `streamlit run dashboard/app.py` (or `scaleplan serve`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard import common  # noqa: E402

st.set_page_config(page_title="scaleplan", page_icon="📈", layout="wide")

if common.ensure_database_ui():
    con = common.connection()
    st.title("scaleplan")
    st.caption("Scaling-law planning on the public collection of pretrained models.")
    summary = common.cached_summary()
    cols = st.columns(4)
    cols[0].metric("Training runs", f"{summary['models']:,}")
    cols[1].metric("Families", f"{summary['families']:,}")
    cols[2].metric("Observations", f"{summary['observations']:,}")
    cols[3].metric("Metrics", f"{summary['metrics']:,}")
    st.subheader("Families")
    st.dataframe(common.cached_families(), hide_index=True, use_container_width=True)

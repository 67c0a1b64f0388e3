"""Streamlit entry point (`streamlit run ui/app.py`): page setup and navigation; the pages render what `assistant` returns."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts only ui/ on sys.path; the repository root makes `assistant`, `ingest` and `ui` importable
# even where the package is not installed in editable mode.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Paper assistant", page_icon=":material/library_books:", layout="wide")
pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:"),
]
st.navigation(pages).run()

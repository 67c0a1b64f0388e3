"""Corpus page script for st.navigation; the page itself lives in ui/corpus.py."""

from ui.corpus import corpus_page

corpus_page()

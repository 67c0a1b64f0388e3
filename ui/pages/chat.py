"""Chat page script for st.navigation; the page itself lives in ui/chat.py."""

from ui.chat import chat_page

chat_page()

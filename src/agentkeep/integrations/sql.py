"""The adapters' own reads over the chat tables (placeholders as in ``chat/sql.py``).

An adapter needs two columns of a message to rebuild the framework's object: the text
and the metadata holding the exact copy (a message written by other means, without a
copy, is read through ``history()``). Reading two columns instead of the 17 records of
``history()`` is what it took to load a session faster than the frameworks' own stores
(docs/architecture.md, "Chat adapters").
"""

from __future__ import annotations

from ..chat.sql import LIVE_LINEAR_SESSION

# The newest N messages of a live linear session (every message on the active branch),
# newest first, off the (session_id, seq) index. No rows means "not that case" (absent,
# deleted, empty or branched): the caller falls back to ChatStore.history().
# The session is found as in chat's RECENT_LINEAR (a subquery, so PostgreSQL keeps the
# generic plan of the prepared statement).
RECENT_LINEAR = (
    f"SELECT m.content, m.metadata FROM messages m WHERE m.session_id = {LIVE_LINEAR_SESSION} "
    "ORDER BY m.seq DESC LIMIT ?"
)
# Every message of a live linear session, oldest first (the same, without reversing).
ALL_LINEAR = (
    f"SELECT m.content, m.metadata FROM messages m WHERE m.session_id = {LIVE_LINEAR_SESSION} "
    "ORDER BY m.seq"
)

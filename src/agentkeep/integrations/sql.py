"""The adapters' own reads over the chat tables (placeholders as in ``chat/sql.py``).

An adapter needs two columns of a message to rebuild the framework's object: the text
and the metadata holding the exact copy (a message written by other means, without a
copy, is read through ``history()``). Reading two columns instead of the 17 records of
``history()`` is what it took to load a session faster than the frameworks' own stores
(docs/architecture.md, "Chat adapters").
"""

from __future__ import annotations

# The newest N messages of a live linear session (every message on the active branch),
# newest first, off the (session_id, seq) index. No rows means "not that case" (absent,
# deleted, empty or branched): the caller falls back to ChatStore.history().
RECENT_LINEAR = (
    "SELECT m.content, m.metadata FROM sessions s JOIN messages m ON m.session_id = s.id "
    "WHERE s.id = ? AND s.status <> 'deleted' AND s.head_depth + 1 = s.message_count "
    "ORDER BY m.seq DESC LIMIT ?"
)
# Every message of a live linear session, oldest first (the same, without reversing).
ALL_LINEAR = (
    "SELECT m.content, m.metadata FROM sessions s JOIN messages m ON m.session_id = s.id "
    "WHERE s.id = ? AND s.status <> 'deleted' AND s.head_depth + 1 = s.message_count "
    "ORDER BY m.seq"
)

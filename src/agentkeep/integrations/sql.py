"""The adapters' own reads over the chat tables (placeholders as in ``chat/sql.py``).

An adapter needs two columns of a message to rebuild the framework's object (the text
and the metadata holding the exact copy) and two more for a message written by other
means. Reading these instead of the 17 of ``history()`` halves the cost of loading a
session (measured: a 2,000-message session, 4.9 ms for ``history()`` alone), which is what
it takes to read faster than the frameworks' own stores.
"""

from __future__ import annotations

#: Columns every adapter read returns, in this order.
VIEW_COLUMNS = "m.content, m.metadata, m.role, m.parts"

# The newest N messages of a live linear session (every message on the active branch),
# newest first, off the (session_id, seq) index. No rows means "not that case" (absent,
# deleted, empty or branched): the caller falls back to ChatStore.history().
RECENT_LINEAR = (
    f"SELECT {VIEW_COLUMNS} FROM sessions s JOIN messages m ON m.session_id = s.id "
    "WHERE s.id = ? AND s.status <> 'deleted' AND s.head_depth + 1 = s.message_count "
    "ORDER BY m.seq DESC LIMIT ?"
)

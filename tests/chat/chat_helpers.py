"""Helpers shared by the chat behaviour tests: snapshots, counters and a model of history.

Everything here goes through the public API, except :func:`blob_count`, which peeks at
the blob table because no public call says whether a blob is still stored.
"""

from __future__ import annotations

from typing import Any

import agentkeep

STATUSES = ("active", "archived", "deleted")


def all_sessions(store: agentkeep.Store) -> list[agentkeep.Session]:
    """Every session of the store, in every status, as list_sessions returns them."""
    return [s for status in STATUSES for s in store.chat.iter_sessions(status=status)]


def snapshot(store: agentkeep.Store) -> dict[str, Any]:
    """All the chat state a caller can read: sessions, histories, branches, tool calls, files."""
    sessions = all_sessions(store)
    state: dict[str, Any] = {"sessions": sessions, "tool_calls": store.chat.tool_calls()}
    for session in sessions:
        if session.status == "deleted":
            continue
        state[session.id] = {
            "history": store.chat.history(session.id),
            "branches": store.chat.branches(session.id),
            "files": store.chat.files(session.id),
            "recount": store.chat.recount(session.id),
        }
    return state


def counters(session: agentkeep.Session) -> tuple[int, int, int, float]:
    return (session.message_count, session.input_tokens, session.output_tokens, session.cost)


def assert_counters(store: agentkeep.Store, session_id: str) -> None:
    """The session's stored counters equal a recount from its messages."""
    session = store.chat.get_session(session_id, include_deleted=True)
    assert counters(session) == store.chat.recount(session_id)


def path_to(store: agentkeep.Store, message_id: str | None) -> list[agentkeep.Message]:
    """The root-to-``message_id`` path, walked through parent links with get_message."""
    path = []
    while message_id is not None:
        message = store.chat.get_message(message_id)
        path.append(message)
        message_id = message.parent_id
    return path[::-1]


def expected_history(path: list[agentkeep.Message], *, last: int | None = None,
                     first: int | None = None, before: str | None = None,
                     after: str | None = None, summary_id: str | None = None
                     ) -> list[agentkeep.Message]:
    """What history() must return for a branch ``path``, from the documented rules."""
    ids = [m.id for m in path]
    low, high = 0, len(path)
    if summary_id in ids:
        low = ids.index(summary_id)
    if after is not None:
        low = max(low, ids.index(after) + 1)
    if before is not None:
        high = ids.index(before)
    window = path[low:high]
    if first is not None:
        return window[:first]
    if last is not None:
        return window[-last:] if window else []
    return window


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def blob_count(store: agentkeep.Store) -> int:
    """How many blobs are stored. Not public API: a purge's blob clean-up is invisible
    through it, so this one helper reads the table directly."""
    with store._backend.read("chat") as conn:
        return conn.one("SELECT count(*) FROM blobs")[0]

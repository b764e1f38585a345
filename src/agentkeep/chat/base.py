"""What every part of the chat store shares: the backend, connections and lookups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..backend import Backend, Connection
from ..codec import second_of
from ..config import StoreConfig
from ..errors import InvalidInput, NotFound
from . import sql

CONCERN = "chat"
# PostgreSQL: batches of this many rows or more go in by COPY (executemany sends a
# statement per row; COPY measured 1.2-1.3x the throughput for batches of 500 messages).
COPY_FROM = 20


class ChatBase:
    """Plumbing for the chat store's parts (sessions and messages, tools, files, search)."""

    def __init__(self, backend: Backend, config: StoreConfig) -> None:
        self._backend = backend
        self._config = config
        self._dialect = backend.dialect

    def _read(self):
        return self._backend.read(CONCERN)

    def _write(self):
        return self._backend.write(CONCERN)

    def _time(self, value: datetime) -> Any:
        """A time as the dialect stores it: ISO text on SQLite, a datetime on PostgreSQL."""
        return value.isoformat() if self._dialect == "sqlite" else value

    def _second(self, value: datetime) -> Any:
        """The UTC second of a time as ``sessions.active_second`` holds it (chat_0004)."""
        return second_of(value, self._dialect)

    def transaction(self):
        """Group chat calls atomically: ``with store.chat.transaction(): ...``.

        Nested blocks are savepoints; an exception rolls back exactly its block.
        """
        return self._backend.transaction(CONCERN)

    def _live_session(self, conn: Connection, session_id: str, *, lock: bool = False) -> str:
        row = conn.one(sql.LOCK_SESSION_STATUS[self._dialect] if lock else sql.SESSION_EXISTS,
                       (session_id,))
        if row is None or row[0] == "deleted":
            raise NotFound(f"no session {session_id!r}")
        return row[0]

    def _message_position(self, conn: Connection, field: str, message_id: str,
                          session_id: str | None = None) -> tuple[str, int, int]:
        row = conn.one(sql.MESSAGE_POSITION, (message_id,))
        if row is None:
            raise NotFound(f"no message {message_id!r}")
        if session_id is not None and row[0] != session_id:
            raise InvalidInput(field, f"message {message_id!r} belongs to another session")
        return row


"""The chat concern's API: sessions, messages, branches, tool calls, files and search.

Data model. A session owns a tree of messages: every message has a parent (None for
the first) and the session's ``head_id`` picks the active branch, the path from the
root to the head. Appending adds a child of the head and moves the head; editing or
regenerating adds a sibling, so no row is ever copied or rewritten. Counters on the
session (messages, tokens, cost) change in the same transaction as the messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from ..backend import Connection
from ..codec import (
    check_choice,
    check_flag,
    check_id,
    check_limit,
    check_text,
    check_time,
    dump_json,
    new_id,
    new_ids,
    now,
)
from ..errors import Conflict, InvalidInput, NotFound
from . import sql
from .base import CONCERN, COPY_FROM, ChatBase
from .files import Files
from .models import (
    Branch,
    Message,
    Page,
    Session,
    stored_message,
)
from .rules import (
    MAX_NAME_LENGTH,
    SESSION_STATUSES,
    check_object,
    decode_cursor,
    encode_cursor,
    is_plain,
    prepare_fields,
    prepare_message,
)
from .search import Search
from .tools import ToolCalls

NO_LIMIT = 2**62
_UNSET: Any = object()
_HEAD: Any = object()


def _message_row(message_id: str, session_id: str, parent_id: str | None, seq: int,
                 depth: int, item: dict[str, Any], created: Any, plain: bool) -> tuple:
    """A message's values for INSERT_PLAIN_MESSAGE when ``plain``, else INSERT_MESSAGE."""
    if plain:
        return (message_id, session_id, parent_id, seq, depth, item["role"], item["content"],
                item["parts_json"], created)
    return (message_id, session_id, parent_id, seq, depth, item["role"], item["content"],
            item["parts_json"], item["provider"], item["model"], item["finish_reason"],
            item["input_tokens"], item["output_tokens"], item["usage"], item["cost_nanos"],
            item["metadata_json"], created)


def _chain(session_id: str, ids: list[str], prepared: list[dict[str, Any]], times: list[Any],
           parent: str | None, count: int, depth: int, plain: bool) -> list[tuple]:
    """The rows of messages appended one after another below ``parent`` (at ``depth``, the
    session holding ``count`` messages before them), each answering the one before."""
    rows = []
    for item, message_id, created in zip(prepared, ids, times, strict=True):
        depth += 1
        count += 1
        rows.append(_message_row(message_id, session_id, parent, count, depth, item, created,
                                 plain))
        parent = message_id
    return rows


# A PostgreSQL batch of more text than this goes in by COPY, row by row, in a transaction:
# one statement's arrays must stay under the protocol's 1 GiB message limit (a character
# is up to 4 bytes of UTF-8, and tool calls repeat their parts' arguments and outputs).
ONE_STATEMENT_MAX_CHARS = 64 * 1024 * 1024


def _fits_one_statement(prepared: list[dict[str, Any]]) -> bool:
    size = 0
    for item in prepared:
        size += len(item["content"]) + len(item["parts_json"]) + len(item["metadata_json"])
        if item["usage"] is not None:
            size += len(item["usage"])
    return size <= ONE_STATEMENT_MAX_CHARS


# A prepared message's rarely set fields, in the order of sql._BATCH_EXTRAS.
_EXTRA_FIELDS = ("provider", "model", "finish_reason", "input_tokens", "output_tokens",
                 "usage", "cost_nanos", "metadata_json")


def _batch_arrays(prepared: list[dict[str, Any]], ids: list[str], times: list[Any],
                  plain: bool, calls: list[list[Any]] | None) -> list[list[Any]]:
    """A PostgreSQL batch statement's arrays: one per message column (sql._BATCH_PLAIN,
    then sql._BATCH_EXTRAS unless ``plain``), the parents, one per tool-call column."""
    arrays = [ids, [item["role"] for item in prepared], [item["content"] for item in prepared],
              [item["parts_json"] for item in prepared], times]
    if not plain:
        arrays += [[item[name] for item in prepared] for name in _EXTRA_FIELDS]
    arrays.append([None, *ids[:-1]])
    if calls:
        arrays += map(list, zip(*calls, strict=True))
    return arrays


def _prepared_batch(messages: object, *, always_indexed: bool = False
                    ) -> tuple[list[dict[str, Any]], Any]:
    """append_many's items, validated: (the prepared messages, the first item's parent_id
    or _HEAD when it gives none). An error names the item (``messages[2].role``) unless
    the batch is one message and not ``always_indexed`` (then as append() names it)."""
    if isinstance(messages, (str, bytes, Mapping)):
        raise InvalidInput("messages", "must be a list of message dicts")
    try:  # a tuple or generator too: its first item's parent_id must not be lost
        messages = list(messages)
    except TypeError:
        raise InvalidInput("messages", "must be a list of message dicts") from None
    prepared, parent_id = [], _HEAD
    for index, fields in enumerate(messages):
        if not isinstance(fields, Mapping):
            raise InvalidInput(f"messages[{index}]", "must be a dict of message fields")
        if index and "parent_id" in fields:
            raise InvalidInput(f"messages[{index}].parent_id",
                               "only the first message of a batch may set parent_id")
        try:
            if not index and "parent_id" in fields:
                parent_id = check_id("parent_id", fields["parent_id"], optional=True)
            prepared.append(prepare_message(fields))
        except InvalidInput as exc:
            if always_indexed or index or len(messages) > 1:
                raise InvalidInput(f"messages[{index}].{exc.field}", exc.problem) from None
            raise
    return prepared, parent_id


def _batch_totals(prepared: list[dict[str, Any]], ids: list[str]) -> tuple:
    """What a batch adds to its session: input and output tokens, cost, and the id of its
    last summary message (or None)."""
    summary_id = None
    input_tokens = output_tokens = cost_nanos = 0
    for item, message_id in zip(prepared, ids, strict=True):
        input_tokens += item["input_tokens"]
        output_tokens += item["output_tokens"]
        cost_nanos += item["cost_nanos"]
        if item["summary"]:
            summary_id = message_id
    return input_tokens, output_tokens, cost_nanos, summary_id


class ChatStore(ToolCalls, Files, Search, ChatBase):
    """Conversations, reached as ``store.chat``. Thread-safe; every write is atomic."""

    # --- sessions ----------------------------------------------------------------------
    def create_session(self, *, title: str | None = None, provider: str | None = None,
                       model: str | None = None, system_prompt: str | None = None,
                       generation: Mapping[str, Any] | None = None,
                       metadata: Mapping[str, Any] | None = None,
                       parent_id: str | None = None, id: str | None = None,
                       messages: Iterable[Mapping[str, Any]] | None = None) -> Session:
        """Create a session (commits). ``parent_id`` makes it a sub-agent session.

        Args:
            id: your own id for the session (any string up to 200 characters, e.g. the
                session key of an agent framework); default: a new UUIDv7.
            messages: the session's first messages, as :meth:`append_many` takes them
                (without ``parent_id``), written with it in one transaction: a new
                conversation or an imported one costs one commit (on PostgreSQL usually
                one statement). Nothing is written if any is invalid.

        Raises:
            InvalidInput: a field is malformed.
            NotFound: ``parent_id`` names no live session.
            Conflict: a session (live or soft-deleted) already has this ``id``.
        """
        values = self._session_fields(title=title, provider=provider, model=model,
                                      system_prompt=system_prompt, generation=generation,
                                      metadata=metadata)
        check_id("parent_id", parent_id, optional=True)
        check_id("id", id, optional=True)
        prepared: list[dict[str, Any]] = []
        if messages is not None:
            prepared, first_parent = _prepared_batch(messages, always_indexed=True)
            if first_parent is not _HEAD:
                raise InvalidInput("messages[0].parent_id",
                                   "a new session has no message to answer; leave it out")
        if parent_id is None and self._dialect == "postgresql":
            if not prepared:
                return self._backend.alone(CONCERN, lambda conn: self._create_session_postgres(
                    conn, values, id))
            if _fits_one_statement(prepared):
                session_id, stamp, ids = id or new_id(), now(), new_ids(len(prepared))
                calls = self._batch_tool_calls(session_id, ids, prepared, stamp)
                if calls is not None:
                    return self._backend.alone(CONCERN, lambda conn: (
                        self._create_with_messages_postgres(conn, values, session_id,
                                                            prepared, stamp, ids, calls)))
        with self._write() as conn:
            if parent_id is not None:  # here, not in _insert_session: fork() keeps a binned parent
                self._live_session(conn, parent_id)
            if id is not None and conn.one(sql.SESSION_EXISTS, (id,)) is not None:
                raise Conflict(f"a session with id {id!r} already exists")
            try:
                session_id = self._insert_session(conn, values, parent_id, None, id)
            except Conflict as exc:  # PostgreSQL: taken since SESSION_EXISTS looked
                raise Conflict(f"a session with id {id!r} already exists") from exc
            if prepared:
                self._append_rows(conn, session_id, prepared, _HEAD)
            return self._get_session(conn, session_id)

    def _create_session_postgres(self, conn: Connection, values: dict[str, Any],
                                 session_id: str | None) -> Session:
        """A session without a parent in one self-committing statement."""
        row = conn.one(sql.CREATE_SESSION_POSTGRES,
                       self._session_row(values, None, None, session_id or new_id()))
        if row is None:
            raise Conflict(f"a session with id {session_id!r} already exists")
        return Session(row)

    def _create_with_messages_postgres(self, conn: Connection, values: dict[str, Any],
                                       session_id: str, prepared: list[dict[str, Any]],
                                       stamp: datetime, ids: list[str],
                                       calls: list[list[Any]]) -> Session:
        """A session and its first messages (and their tool calls) in one self-committing
        statement (see CREATE_WITH_MESSAGES_POSTGRES)."""
        plain = all(map(is_plain, prepared))
        input_tokens, output_tokens, cost_nanos, summary_id = _batch_totals(prepared, ids)
        row = conn.one(sql.CREATE_WITH_MESSAGES_POSTGRES[plain, bool(calls)], [
            *self._session_row(values, None, None, session_id, stamp), len(ids),
            input_tokens, output_tokens, cost_nanos, ids[-1], len(ids) - 1, summary_id,
            *_batch_arrays(prepared, ids, [stamp] * len(ids), plain, calls)])
        if row is None:
            raise Conflict(f"a session with id {session_id!r} already exists")
        return Session((*row, prepared[-1]["content"][:200]))  # SESSION_COLUMNS' preview

    def _insert_session(self, conn: Connection, values: dict[str, Any], parent_id: str | None,
                        forked_from_id: str | None, session_id: str | None = None) -> str:
        """Insert a new session's row; its id."""
        session_id = session_id or new_id()
        conn.run(sql.INSERT_SESSION, self._session_row(values, parent_id, forked_from_id,
                                                       session_id))
        return session_id

    def _session_row(self, values: dict[str, Any], parent_id: str | None,
                     forked_from_id: str | None, session_id: str,
                     created: datetime | None = None) -> tuple:
        """INSERT_SESSION's values for a new session created now (or at ``created``)."""
        stamp = self._time(created or now())
        return (session_id, values["title"], values["provider"], values["model"],
                values["system_prompt"], values["generation"], values["metadata"], parent_id,
                forked_from_id, stamp, stamp, stamp)

    @staticmethod
    def _session_fields(**fields: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in ("title", "provider", "model", "system_prompt"):
            if name in fields and fields[name] is not _UNSET:
                limit = MAX_NAME_LENGTH if name in ("provider", "model") else 100_000
                if name == "system_prompt":
                    limit = 10_000_000
                values[name] = check_text(name, fields[name], optional=True, max_length=limit)
        for name in ("generation", "metadata"):
            if name in fields and fields[name] is not _UNSET:
                values[name] = dump_json(name, check_object(name, fields[name]))
        return values

    def _get_session(self, conn: Connection, session_id: str,
                     include_deleted: bool = False) -> Session:
        row = conn.one(sql.SELECT_SESSION, (session_id,))
        if row is None or (row[2] == "deleted" and not include_deleted):
            raise NotFound(f"no session {session_id!r}")
        return Session(row)

    def get_session(self, session_id: str, *, include_deleted: bool = False) -> Session:
        """The session with its counters and head preview (read-only).

        Raises:
            NotFound: no such session (or it is soft-deleted and ``include_deleted`` is False).
        """
        check_id("session_id", session_id)
        check_flag("include_deleted", include_deleted)
        with self._read() as conn:
            return self._get_session(conn, session_id, include_deleted)

    def update_session(self, session_id: str, *, title: Any = _UNSET, provider: Any = _UNSET,
                       model: Any = _UNSET, system_prompt: Any = _UNSET,
                       generation: Any = _UNSET, metadata: Any = _UNSET) -> Session:
        """Change the given fields (commits); omitted fields keep their value."""
        check_id("session_id", session_id)
        values = self._session_fields(title=title, provider=provider, model=model,
                                      system_prompt=system_prompt, generation=generation,
                                      metadata=metadata)
        with self._write() as conn:
            self._live_session(conn, session_id)
            if values:
                # Column names come from the fixed list in _session_fields, never from input.
                assignments = ", ".join(f"{name} = ?" for name in values)
                conn.run(f"UPDATE sessions SET {assignments}, updated_at = ? WHERE id = ?",
                         (*values.values(), self._time(now()), session_id))
            return self._get_session(conn, session_id)

    def list_sessions(self, *, status: str | None = None, provider: str | None = None,
                      model: str | None = None, parent_id: str | None = None,
                      title: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, limit: int = 50,
                      cursor: str | None = None) -> Page[Session]:
        """Sessions, newest activity first, one page at a time (read-only).

        Args:
            status: ``active``, ``archived`` or ``deleted``; default: all but deleted.
            title: case-insensitive substring of the title.
            since, until: bounds on the last activity time (``since`` inclusive).
            cursor: ``next_cursor`` of the previous page.
        """
        clauses, params = [], []
        if status is None:
            clauses.append("s.status <> 'deleted'")
        else:
            clauses.append("s.status = ?")
            params.append(check_choice("status", status, SESSION_STATUSES))
        for column, value in (("provider", provider), ("model", model),
                              ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"s.{column} = ?")
                params.append(check_text(column, value))
        if title is not None:
            escaped = check_text("title", title).replace("\\", "\\\\")
            escaped = escaped.replace("%", "\\%").replace("_", "\\_")
            clauses.append(sql.TITLE_CONTAINS[self._dialect])
            params.append(f"%{escaped}%")
        if since is not None:
            since = check_time("since", since)
            clauses.append(sql.ACTIVE_SINCE)
            params += [self._second(since), self._time(since)]
        if until is not None:
            until = check_time("until", until)
            clauses.append(sql.ACTIVE_UNTIL)
            params += [self._second(until), self._time(until)]
        if cursor is not None:
            active_at, last_id = decode_cursor(cursor)
            clauses.append(sql.BEFORE_CURSOR)
            stamp = self._time(active_at)
            params += [self._second(active_at), stamp, stamp, last_id]
        limit = check_limit("limit", limit, optional=False, maximum=10_000)
        query = sql.LIST_SESSIONS.format(where=" AND ".join(clauses))
        with self._read() as conn:
            rows = conn.all(query, (*params, limit + 1))
        items = [Session(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].active_at, items[-1].id)
        return Page(items, next_cursor)

    def _set_status(self, session_id: str, status: str, *, allowed_from: tuple[str, ...]
                    ) -> Session:
        check_id("session_id", session_id)
        with self._write() as conn:
            # Locked on PostgreSQL: a delete racing an archive must not be undone by it.
            row = conn.one(sql.LOCK_SESSION_STATUS[self._dialect], (session_id,))
            if row is None:
                raise NotFound(f"no session {session_id!r}")
            if row[0] not in allowed_from:
                raise Conflict(f"session {session_id!r} is {row[0]}; cannot make it {status}")
            if row[0] == status == "deleted":  # deleting twice keeps the first time (grace)
                return self._get_session(conn, session_id, include_deleted=True)
            stamp = now()
            conn.run(sql.SET_SESSION_STATUS, (
                status, self._time(stamp) if status == "deleted" else None, self._time(stamp),
                session_id))
            return self._get_session(conn, session_id, include_deleted=True)

    def archive_session(self, session_id: str) -> Session:
        """Mark an active session archived (commits); it stays listed with status=archived."""
        return self._set_status(session_id, "archived", allowed_from=("active", "archived"))

    def delete_session(self, session_id: str) -> Session:
        """Soft-delete (commits): hidden from reads and search until restored or purged."""
        return self._set_status(session_id, "deleted",
                                allowed_from=("active", "archived", "deleted"))

    def restore_session(self, session_id: str) -> Session:
        """Make an archived or soft-deleted session active again (commits)."""
        return self._set_status(session_id, "active",
                                allowed_from=("active", "archived", "deleted"))

    def purge_session(self, session_id: str) -> None:
        """Delete a session and everything it owns for good (commits).

        Blobs that no other session refers to go too; sub-agent sessions stay, with
        their ``parent_id`` cleared.
        """
        check_id("session_id", session_id)
        with self._write() as conn:
            if conn.one(sql.SESSION_EXISTS, (session_id,)) is None:
                raise NotFound(f"no session {session_id!r}")
            blobs = [row[0] for row in conn.all(sql.SESSION_BLOBS, (session_id, session_id))]
            if self._dialect == "sqlite":
                conn.run(sql.UNINDEX_SESSION, (session_id,))
            conn.run(sql.DELETE_SESSION, (session_id,))
            if self._dialect == "sqlite":
                conn.run(sql.LOWER_HIGH_WATER)
            for sha in blobs:
                conn.run(sql.DELETE_UNREFERENCED_BLOB, (sha, sha, sha))

    # --- messages ----------------------------------------------------------------------
    def append(self, session_id: str, role: str, content: str | None = None, *,
               parts: list[dict[str, Any]] | None = None, parent_id: str | None = _HEAD,
               provider: str | None = None, model: str | None = None,
               finish_reason: str | None = None, usage: Mapping[str, Any] | None = None,
               cost: float | None = None, metadata: Mapping[str, Any] | None = None,
               summary: bool = False) -> Message:
        """Append a message to the active branch and make it the head (commits).

        Args:
            role: ``system``, ``user``, ``assistant`` or ``tool``.
            content: the text that search indexes; default: the text parts joined.
            parts: typed parts. ``{"type": "tool_call", "id", "name", "arguments"}`` records
                a pending tool call; ``{"type": "tool_result", "call_id", "output",
                "is_error"}`` finishes the newest call with that id (again, counting a
                retry, when its last result failed).
            parent_id: answer this message instead of the head: a new branch (regenerate).
                ``None`` starts a new root.
            usage: ``{"input_tokens": int, "output_tokens": int, ...}``, added to the
                session's counters.
            cost: US dollars, added to the session's cost.
            summary: mark this message as the session's summary (compaction point).

        Raises:
            InvalidInput: a field is malformed, or the parent is in another session.
            NotFound: no live session, or no such parent.
        """
        check_id("session_id", session_id)
        prepared = prepare_fields(role, content, parts, provider, model, finish_reason, usage,
                                  cost, metadata, summary)
        if parent_id is not _HEAD:
            parent_id = check_id("parent_id", parent_id, optional=True)
        return self._append_prepared(session_id, [prepared], parent_id)[0]

    def append_many(self, session_id: str, messages: Iterable[Mapping[str, Any]]
                    ) -> list[Message]:
        """Append several messages in one transaction, each answering the one before.

        Each item takes the keyword arguments of :meth:`append` (``role`` required). A
        ``parent_id`` in the first item places the chain; later items may not set one.
        Nothing is written if any item is invalid.
        """
        check_id("session_id", session_id)
        prepared, parent_id = _prepared_batch(messages)
        if not prepared:
            return []
        return self._append_prepared(session_id, prepared, parent_id)

    def _append_prepared(self, session_id: str, prepared: list[dict[str, Any]],
                         parent_id: Any) -> list[Message]:
        if parent_id is _HEAD and self._dialect == "postgresql":
            # One statement that commits by itself (APPEND_ONE_POSTGRES, APPEND_MANY_...),
            # unless tool parts need more than it writes.
            stamp = now()
            if len(prepared) == 1 and not prepared[0]["parts"]:
                return self._backend.alone(CONCERN, lambda conn: self._append_one_postgres(
                    conn, session_id, prepared[0], stamp, stamp))
            if _fits_one_statement(prepared):  # a message with tool calls too
                ids = new_ids(len(prepared))
                calls = self._batch_tool_calls(session_id, ids, prepared, stamp)
                if calls is not None:
                    return self._backend.alone(CONCERN, lambda conn: self._append_many_postgres(
                        conn, session_id, prepared, stamp, [stamp] * len(ids), ids, calls))
        with self._write() as conn:
            return self._append_rows(conn, session_id, prepared, parent_id)

    def _append_rows(self, conn: Connection, session_id: str, prepared: list[dict[str, Any]],
                     parent_id: Any, created_at: list[datetime] | None = None) -> list[Message]:
        stamp = now()
        stamp_value = self._time(stamp)
        times = [self._time(t) for t in created_at] if created_at else None
        if parent_id is _HEAD and self._dialect == "postgresql":
            if len(prepared) == 1:
                return self._append_one_postgres(conn, session_id, prepared[0], stamp,
                                                 times[0] if times else stamp_value)
            if _fits_one_statement(prepared):
                return self._append_many_postgres(conn, session_id, prepared, stamp,
                                                  times or [stamp_value] * len(prepared),
                                                  new_ids(len(prepared)), None)
        plain = all(map(is_plain, prepared))
        row = conn.one(sql.SESSION_FOR_APPEND[self._dialect], (session_id,))
        if row is None or row[0] == "deleted":
            raise NotFound(f"no session {session_id!r}")
        _, head_id, count, head_depth = row
        if parent_id is _HEAD:
            parent, depth = head_id, head_depth
        else:
            parent, depth = parent_id, -1
            if parent_id is not None:
                depth = self._message_position(conn, "parent_id", parent_id,
                                               session_id)[1]
        ids = [new_id()] if len(prepared) == 1 else new_ids(len(prepared))
        rows = _chain(session_id, ids, prepared, times or [stamp_value] * len(ids), parent,
                      count, depth, plain)
        parent, depth = ids[-1], rows[-1][4]
        if len(rows) == 1:
            conn.run(sql.INSERT_PLAIN_MESSAGE if plain else sql.INSERT_MESSAGE, rows[0])
        elif self._dialect == "postgresql" and len(rows) >= COPY_FROM:
            conn.copy(sql.COPY_PLAIN_MESSAGES if plain else sql.COPY_MESSAGES, rows)
        else:
            conn.many(sql.INSERT_PLAIN_MESSAGE if plain else sql.INSERT_MESSAGE, rows)
        input_tokens, output_tokens, cost_nanos, summary_id = _batch_totals(prepared, ids)
        conn.run(sql.ADD_TO_SESSION, (
            len(rows), input_tokens, output_tokens, cost_nanos, parent, depth, summary_id,
            stamp_value, stamp_value, session_id))
        return self._stored(conn, rows, prepared, plain, stamp)

    def _stored(self, conn: Connection, rows: list[tuple], prepared: list[dict[str, Any]],
                plain: bool, stamp: datetime, calls_written: bool = False) -> list[Message]:
        """The records of messages just written (their tool parts recorded too, unless
        the statement that wrote them wrote their calls)."""
        if plain:  # the record's extras are all defaults: None
            messages = [Message((*row, None)) for row in rows]
        else:
            messages = list(map(stored_message, rows))
        if not calls_written and any(item["parts"] for item in prepared):
            self._record_tool_parts(conn, messages, prepared, stamp)
        return messages

    def _append_many_postgres(self, conn: Connection, session_id: str,
                              prepared: list[dict[str, Any]], stamp: datetime,
                              times: list[Any], ids: list[str],
                              calls: list[list[Any]] | None) -> list[Message]:
        """A PostgreSQL batch at the head in one round trip (see APPEND_MANY_POSTGRES),
        with ``calls`` (the batch's tool calls, _batch_tool_calls) when not None."""
        plain = all(map(is_plain, prepared))
        input_tokens, output_tokens, cost_nanos, summary_id = _batch_totals(prepared, ids)
        inserted = conn.one(sql.APPEND_MANY_POSTGRES[plain, bool(calls)], [
            session_id, len(ids), input_tokens, output_tokens, cost_nanos, ids[-1], len(ids),
            summary_id, stamp, stamp, *_batch_arrays(prepared, ids, times, plain, calls)])
        if inserted is None:
            raise NotFound(f"no session {session_id!r}")
        rows = _chain(session_id, ids, prepared, times, *inserted, plain)
        return self._stored(conn, rows, prepared, plain, stamp, calls is not None)

    def _append_one_postgres(self, conn: Connection, session_id: str, item: dict[str, Any],
                             stamp: datetime, created: Any) -> list[Message]:
        """The common PostgreSQL append in one round trip (see APPEND_ONE_POSTGRES)."""
        message_id = new_id()
        fields = (item["role"], item["content"], item["parts_json"], item["provider"],
                  item["model"], item["finish_reason"], item["input_tokens"],
                  item["output_tokens"], item["usage"], item["cost_nanos"],
                  item["metadata_json"], created)
        inserted = conn.one(sql.APPEND_ONE_POSTGRES, (
            session_id, item["input_tokens"], item["output_tokens"], item["cost_nanos"],
            message_id, message_id if item["summary"] else None, stamp, stamp,
            message_id, session_id, *fields))
        if inserted is None:
            raise NotFound(f"no session {session_id!r}")
        parent, seq, depth = inserted
        messages = [stored_message((message_id, session_id, parent, seq, depth, *fields))]
        if item["parts"]:
            self._record_tool_parts(conn, messages, [item], stamp)
        return messages

    def get_message(self, message_id: str) -> Message:
        """One message by id (read-only). Raises NotFound."""
        check_id("message_id", message_id)
        with self._read() as conn:
            row = conn.one(sql.SELECT_MESSAGE[self._dialect], (message_id,))
            if row is None:
                raise NotFound(f"no message {message_id!r}")
            self._live_session(conn, row[1])
        return Message(row)

    def history(self, session_id: str, *, last: int | None = None, first: int | None = None,
                before: str | None = None, after: str | None = None,
                since_summary: bool = False) -> list[Message]:
        """Messages of the active branch, oldest first (read-only).

        Args:
            last: at most this many, the newest of the range.
            first: at most this many, the oldest of the range (page forward with ``after``).
            before, after: message ids on the active branch bounding the range (exclusive).
            since_summary: start at the session's summary message (compaction).

        Raises:
            InvalidInput: both ``first`` and ``last``, or a cursor not on the active branch.
            NotFound: no live session.
        """
        check_id("session_id", session_id)
        check_limit("last", last)
        check_limit("first", first)
        if first is not None and last is not None:
            raise InvalidInput("first", "give first or last, not both")
        check_id("before", before, optional=True)
        check_id("after", after, optional=True)
        check_flag("since_summary", since_summary)
        with self._read() as conn:
            if last is not None and before is None and after is None and not since_summary:
                rows = conn.all(sql.RECENT_LINEAR[self._dialect], (session_id, last))
                if rows:
                    rows.reverse()
                    return list(map(Message, rows))
            row = conn.one(sql.SESSION_FOR_READ, (session_id,))
            if row is None or row[0] == "deleted":
                raise NotFound(f"no session {session_id!r}")
            _, head_id, count, head_depth = row
            if head_id is None:
                return []
            low, high = 0, head_depth
            start = head_id
            if since_summary:
                summary_id = self._get_session(conn, session_id).summary_id
                if summary_id and self._on_branch(conn, head_id, summary_id):
                    low = self._message_position(conn, "summary", summary_id)[1]
            if after is not None:
                low = max(low, self._cursor_depth(conn, "after", after, session_id, head_id) + 1)
            if before is not None:
                high = self._cursor_depth(conn, "before", before, session_id, head_id) - 1
                start = conn.one(sql.SELECT_MESSAGE[self._dialect], (before,))[2]
            if high < low or start is None:
                return []
            if head_depth + 1 == count:  # linear: every message is on the branch
                if first is not None:
                    rows = conn.all(sql.LINEAR_HISTORY_OLDEST[self._dialect],
                                    (session_id, low + 1, high + 1, first))
                else:
                    rows = conn.all(sql.LINEAR_HISTORY_NEWEST[self._dialect],
                                    (session_id, low + 1, high + 1, last or NO_LIMIT))
                    rows.reverse()
            elif first is not None:
                rows = conn.all(sql.PATH_HISTORY_OLDEST[self._dialect],
                                (start, low, NO_LIMIT, low, first))
            else:
                rows = conn.all(sql.PATH_HISTORY_NEWEST[self._dialect],
                                (start, low, last or NO_LIMIT, low))
        return list(map(Message, rows))

    def _on_branch(self, conn: Connection, head_id: str, message_id: str) -> bool:
        _, depth, _ = self._message_position(conn, "message_id", message_id)
        row = conn.one(sql.ANCESTOR_AT_DEPTH, (head_id, depth, depth))
        return row is not None and row[0] == message_id

    def _cursor_depth(self, conn: Connection, field: str, message_id: str, session_id: str,
                      head_id: str) -> int:
        _, depth, _ = self._message_position(conn, field, message_id, session_id)
        if not self._on_branch(conn, head_id, message_id):
            raise InvalidInput(field, f"message {message_id!r} is not on the active branch")
        return depth

    def last_turns(self, session_id: str, turns: int) -> list[Message]:
        """The last ``turns`` turns of the active branch, oldest first (read-only).

        A turn starts at a user message (one carrying a ``tool_result`` part continues
        the turn), so an assistant's tool call and the tool's result are never
        separated. With fewer turns stored, the whole branch.
        """
        check_id("session_id", session_id)
        check_limit("turns", turns, optional=False)
        with self._read() as conn:
            head_id = self._get_session(conn, session_id).head_id
            if head_id is None:
                return []
            rows = conn.all(sql.LAST_TURNS[self._dialect], (head_id, turns))
        return [Message(r) for r in rows]

    def set_summary(self, session_id: str, message_id: str | None) -> Session:
        """Mark ``message_id`` as the summary that history(since_summary=True) starts at."""
        check_id("session_id", session_id)
        check_id("message_id", message_id, optional=True)
        with self._write() as conn:
            self._live_session(conn, session_id)
            if message_id is not None:
                self._message_position(conn, "message_id", message_id, session_id)
            conn.run(sql.UPDATE_SESSION_SUMMARY, (message_id, self._time(now()), session_id))
            return self._get_session(conn, session_id)

    # --- branches ------------------------------------------------------------------------
    def edit(self, message_id: str, *, content: str | None = None,
             parts: list[dict[str, Any]] | None = None,
             metadata: Mapping[str, Any] | None = None) -> Message:
        """Add an edited copy of a message as its sibling and make it the head (commits).

        The original stays on its own branch; fields not given are taken from it.
        """
        check_id("message_id", message_id)
        with self._write() as conn:
            row = conn.one(sql.SELECT_MESSAGE[self._dialect], (message_id,))
            if row is None:
                raise NotFound(f"no message {message_id!r}")
            original = Message(row)
            fields = {
                "role": original.role,
                "content": content if content is not None or parts is not None
                else original.content,
                "parts": original.parts if parts is None else parts,
                "provider": original.provider, "model": original.model,
                "metadata": original.metadata if metadata is None else metadata,
            }
            prepared = prepare_message(fields)
            return self._append_rows(conn, original.session_id, [prepared],
                                     original.parent_id)[0]

    def branches(self, session_id: str) -> list[Branch]:
        """Every branch of the session as its leaf message, oldest first (read-only)."""
        check_id("session_id", session_id)
        with self._read() as conn:
            head_id = self._get_session(conn, session_id).head_id
            rows = conn.all(sql.BRANCH_LEAVES[self._dialect], (session_id, session_id))
        return [Branch(Message(r), r[0] == head_id) for r in rows]

    def switch_branch(self, session_id: str, message_id: str) -> Session:
        """Make ``message_id`` the head: history then ends there (commits)."""
        check_id("session_id", session_id)
        check_id("message_id", message_id)
        with self._write() as conn:
            self._live_session(conn, session_id)
            depth = self._message_position(conn, "message_id", message_id, session_id)[1]
            conn.run(sql.UPDATE_SESSION_HEAD, (message_id, depth, self._time(now()), session_id))
            return self._get_session(conn, session_id)

    def fork(self, session_id: str, message_id: str | None = None, *,
             title: str | None = None) -> Session:
        """A new session holding the branch from the root to ``message_id`` (default: head).

        Messages are copied with new ids and their original times; tool calls named in
        their parts are recorded again. The new session's ``forked_from_id`` is
        ``message_id``.
        """
        check_id("session_id", session_id)
        check_id("message_id", message_id, optional=True)
        check_text("title", title, optional=True)
        with self._write() as conn:
            source = self._get_session(conn, session_id)
            at = message_id or source.head_id
            values = {
                "title": title if title is not None else source.title,
                "provider": source.provider, "model": source.model,
                "system_prompt": source.system_prompt,
                "generation": dump_json("generation", source.generation),
                "metadata": dump_json("metadata", source.metadata),
            }
            if at is not None:
                _, depth, _ = self._message_position(conn, "message_id", at, session_id)
            forked_id = self._insert_session(conn, values, source.parent_id, at)
            if at is None:
                return self._get_session(conn, forked_id)
            rows = conn.all(sql.PATH_HISTORY_NEWEST[self._dialect], (at, 0, NO_LIMIT, 0))
            path = [Message(r) for r in rows]
            prepared = [prepare_message({
                "role": m.role, "content": m.content, "parts": m.parts, "provider": m.provider,
                "model": m.model, "finish_reason": m.finish_reason, "usage": m.usage,
                "cost": m.cost, "metadata": m.metadata,
                "summary": m.id == source.summary_id}) for m in path]
            self._append_rows(conn, forked_id, prepared, None, [m.created_at for m in path])
            return self._get_session(conn, forked_id)

    def iter_sessions(self, **filters: Any) -> Iterator[Session]:
        """Every session matching the filters of :meth:`list_sessions`, page by page."""
        cursor = None
        while True:
            page = self.list_sessions(cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def recount(self, session_id: str) -> tuple[int, int, int, float]:
        """(messages, input tokens, output tokens, cost) recounted from the messages."""
        check_id("session_id", session_id)
        with self._read() as conn:
            count, input_tokens, output_tokens, cost = conn.one(sql.RECOUNT_SESSION,
                                                                (session_id,))
        return count, input_tokens, output_tokens, cost / 1e9

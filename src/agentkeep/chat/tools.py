"""Tool calls: recorded from message parts or explicitly; started, finished, retried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..backend import Connection
from ..codec import (
    check_choice,
    check_flag,
    check_id,
    check_limit,
    check_text,
    dump_json,
    new_id,
    now,
)
from ..errors import Conflict, InvalidInput, NotFound
from . import sql
from .base import COPY_FROM, ChatBase
from .models import Message, ToolCall
from .rules import MAX_NAME_LENGTH, TOOL_STATUSES


def _ask(calls: list[list[Any]], in_batch: dict[str, list[Any]], session_id: str,
         message_id: str, part: dict[str, Any], stamp_value: Any) -> None:
    """Add a tool_call part's row (INSERT_BATCH_TOOL_CALL's values), pending."""
    arguments = part.get("arguments", part.get("input", {}))
    call = [new_id(), session_id, message_id, part.get("id"), part["name"],
            dump_json("parts.arguments", arguments), "pending", None, None, 0, None,
            stamp_value, None, None]
    calls.append(call)
    if part.get("id") is not None:
        in_batch[part["id"]] = call


def _result(part: dict[str, Any]) -> tuple[str, str | None, str | None, Any]:
    """A tool_result part's status, encoded output, error and output."""
    output = part.get("output", part.get("content"))
    failed = bool(part.get("is_error"))
    encoded = None if output is None else dump_json("output", output)
    return "failed" if failed else "succeeded", encoded, str(output) if failed else None, output


def _answer(call: list[Any], result: tuple, message_id: str, stamp_value: Any) -> None:
    """Finish a call row of the same batch: no time has passed."""
    call[6:9] = result
    call[10], call[12], call[13] = message_id, stamp_value, 0


class ToolCalls(ChatBase):
    """The tool-call part of :class:`ChatStore`."""

    def _batch_tool_calls(self, session_id: str, ids: list[str],
                          prepared: list[dict[str, Any]], stamp: datetime
                          ) -> list[list[Any]] | None:
        """The rows of a batch's tool calls when the batch needs no other (every result
        answers a call of the same batch); None when a result may answer an older call."""
        stamp_value = self._time(stamp)
        calls: list[list[Any]] = []
        in_batch: dict[str, list[Any]] = {}
        for message_id, item in zip(ids, prepared, strict=True):
            for part in item["parts"]:
                kind = part.get("type")
                if kind == "tool_call":
                    _ask(calls, in_batch, session_id, message_id, part, stamp_value)
                elif kind == "tool_result":
                    call = in_batch.pop(part["call_id"], None)
                    if call is None:
                        return None
                    _answer(call, _result(part)[:3], message_id, stamp_value)
        return calls

    def _record_tool_parts(self, conn: Connection, messages: list[Message],
                           prepared: list[dict[str, Any]], stamp: datetime) -> None:
        """Record tool_call parts as pending calls; finish calls named by tool_result parts.

        A call answered in the same batch (a bulk import) is written finished: one row,
        no UPDATE after it. The batch's calls go in with one statement (COPY on PostgreSQL
        for a long batch).
        """
        stamp_value = self._time(stamp)
        calls: list[list[Any]] = []  # INSERT_BATCH_TOOL_CALL's values
        in_batch: dict[str, list[Any]] = {}  # provider call id -> its row, still unanswered
        written: dict[str, str] = {}  # provider call id -> tool call id, written unanswered
        for message, item in zip(messages, prepared, strict=True):
            for part in item["parts"]:
                kind = part.get("type")
                if kind == "tool_call":
                    _ask(calls, in_batch, message.session_id, message.id, part, stamp_value)
                elif kind == "tool_result":
                    status, encoded, error, output = _result(part)
                    call = in_batch.pop(part["call_id"], None)
                    if call is not None:  # asked in this batch: no time has passed
                        _answer(call, (status, encoded, error), message.id, stamp_value)
                        continue
                    tool_call_id = written.pop(part["call_id"], None)
                    if tool_call_id is not None:  # asked in this batch, already written
                        conn.run(sql.FINISH_TOOL_CALL, (status, encoded, error, stamp_value,
                                                        0, message.id, 0, tool_call_id))
                        continue
                    # The call may be older than this batch: bring the table up to date
                    # first.
                    self._insert_tool_calls(conn, calls)
                    written.update((name, call[0]) for name, call in in_batch.items())
                    calls, in_batch = [], {}
                    row = conn.one(sql.TOOL_CALL_BY_CALL_ID, (message.session_id,
                                                              part["call_id"]))
                    # Locked, and looked at again: another writer may have started or
                    # finished the call since (its status decides the retry count).
                    call = row and self._tool_call(conn, row[0], lock=True)
                    if call and call.status in ("pending", "running", "failed"):
                        self._finish(conn, call, status, output, error, message.id, stamp)
        self._insert_tool_calls(conn, calls)

    def _insert_tool_calls(self, conn: Connection, calls: list[list[Any]]) -> None:
        if len(calls) == 1:
            conn.run(sql.INSERT_BATCH_TOOL_CALL, calls[0])
        elif self._dialect == "postgresql" and len(calls) >= COPY_FROM:
            conn.copy(sql.COPY_BATCH_TOOL_CALLS, calls)
        elif calls:
            conn.many(sql.INSERT_BATCH_TOOL_CALL, calls)

    def record_tool_call(self, message_id: str, name: str, input: Any = None, *,
                         call_id: str | None = None) -> ToolCall:
        """Record a pending tool call asked for by ``message_id`` (commits).

        Appending a message with ``tool_call`` parts does this for you.
        """
        check_id("message_id", message_id)
        check_text("name", name, max_length=MAX_NAME_LENGTH)
        if not name:
            raise InvalidInput("name", "must not be empty")
        check_id("call_id", call_id, optional=True)
        encoded = dump_json("input", {} if input is None else input)
        with self._write() as conn:
            session_id, _, _ = self._message_position(conn, "message_id", message_id)
            self._live_session(conn, session_id)
            tool_call_id = new_id()
            conn.run(sql.INSERT_TOOL_CALL, (tool_call_id, session_id, message_id, call_id, name,
                                            encoded, self._time(now())))
            return ToolCall(conn.one(sql.SELECT_TOOL_CALL, (tool_call_id,)))

    def _tool_call(self, conn: Connection, tool_call_id: str, *, lock: bool = False
                   ) -> ToolCall:
        row = conn.one(sql.LOCK_TOOL_CALL[self._dialect] if lock else sql.SELECT_TOOL_CALL,
                       (tool_call_id,))
        if row is None:
            raise NotFound(f"no tool call {tool_call_id!r}")
        return ToolCall(row)

    def get_tool_call(self, tool_call_id: str) -> ToolCall:
        """One tool call by id (read-only). Raises NotFound."""
        check_id("tool_call_id", tool_call_id)
        with self._read() as conn:
            return self._tool_call(conn, tool_call_id)

    def start_tool_call(self, tool_call_id: str) -> ToolCall:
        """Mark a call running (commits). Starting a failed call again counts a retry.

        Raises:
            Conflict: the call is running, succeeded or cancelled.
        """
        check_id("tool_call_id", tool_call_id)
        with self._write() as conn:
            call = self._tool_call(conn, tool_call_id, lock=True)
            if call.status not in ("pending", "failed"):
                raise Conflict(f"tool call {tool_call_id!r} is {call.status}; only pending or "
                               "failed calls can start")
            conn.run(sql.START_TOOL_CALL, (self._time(now()), tool_call_id))
            return self._tool_call(conn, tool_call_id)

    def finish_tool_call(self, tool_call_id: str, *, output: Any = None, error: str | None = None,
                         cancelled: bool = False, result_message_id: str | None = None
                         ) -> ToolCall:
        """Finish a call (commits): succeeded with ``output``, failed with ``error``, or
        cancelled. The duration runs from start (or creation) to now.

        Raises:
            Conflict: the call already finished (start a failed call again to retry it).
        """
        check_id("tool_call_id", tool_call_id)
        check_text("error", error, optional=True)
        check_id("result_message_id", result_message_id, optional=True)
        check_flag("cancelled", cancelled)
        status = "cancelled" if cancelled else "failed" if error is not None else "succeeded"
        with self._write() as conn:
            call = self._tool_call(conn, tool_call_id, lock=True)
            if call.status not in ("pending", "running"):
                raise Conflict(f"tool call {tool_call_id!r} is already {call.status}")
            if result_message_id is not None:
                self._message_position(conn, "result_message_id", result_message_id,
                                       call.session_id)
            self._finish(conn, call, status, output, error, result_message_id, now())
            return self._tool_call(conn, tool_call_id)

    def _finish(self, conn: Connection, call: ToolCall, status: str, output: Any,
                error: str | None, result_message_id: str | None, stamp: datetime) -> None:
        """Finish ``call``, read under its row lock."""
        began = call.started_at or call.created_at
        duration = max(0, round((stamp - began).total_seconds() * 1000))
        encoded = None if output is None else dump_json("output", output)
        retried = 1 if call.status == "failed" else 0  # a tool message's result after a failure
        conn.run(sql.FINISH_TOOL_CALL, (status, encoded, error, self._time(stamp), duration,
                                        result_message_id, retried, call.id))

    def tool_calls(self, session_id: str | None = None, *, name: str | None = None,
                   status: str | None = None, message_id: str | None = None,
                   limit: int = 100) -> list[ToolCall]:
        """Tool calls, newest first, filtered by session, tool name, status or message."""
        clauses, params = [], []
        for column, value in (("session_id", session_id), ("name", name),
                              ("message_id", message_id)):
            if value is not None:
                check_text(column, value)
                clauses.append(f"t.{column} = ?")
                params.append(value)
        if status is not None:
            clauses.append("t.status = ?")
            params.append(check_choice("status", status, TOOL_STATUSES))
        limit = check_limit("limit", limit, optional=False, maximum=100_000)
        where = "".join(f" AND {clause}" for clause in clauses)
        with self._read() as conn:
            rows = conn.all(sql.LIST_TOOL_CALLS + where + sql.LIST_TOOL_CALLS_ORDER,
                            (*params, limit))
        return [ToolCall(r) for r in rows]


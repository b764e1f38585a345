"""agentkeep as an OpenAI Agents SDK session: ``AgentkeepSession``.

>>> from agentkeep.integrations.openai_agents import AgentkeepSession
>>> session = AgentkeepSession("user-42", path_or_url="./data")
>>> result = await Runner.run(agent, "Hello", session=session)

It implements the SDK's ``Session`` protocol (``get_items``, ``add_items``, ``pop_item``,
``clear_session``, ``session_settings``) with the semantics of the SDK's own
``SQLiteSession``. Each item is one agentkeep message in the session whose id is the SDK
session id: the item exactly as given (its JSON, in the message's metadata) plus a view
for agentkeep (role, searchable text, tool calls):

- messages (``{"role": ..., "content": ...}``, ``type: message``): that role
  (``developer`` → ``system``) and their text;
- ``function_call`` and other ``*_call`` items: an assistant message with a ``tool_call``
  part, so agentkeep records the tool call; ``*_output`` items: a tool message whose
  ``tool_result`` part finishes it;
- reasoning and any other item type: an assistant message with whatever text it has.

``pop_item`` moves the session's head back to the previous message, so the popped item
stays in the store as an abandoned branch (``agentkeep sessions show`` draws it) while
the SDK no longer sees it; ``clear_session`` purges the session for good.

The SDK itself is not imported here: the class satisfies the ``Session`` protocol
structurally, and ``session_settings`` imports ``agents`` only when first read.
"""

from __future__ import annotations

import json
from typing import Any

from ..aio import _call
from ..chat import sql as chat_sql
from ..chat.models import Message
from ..chat.store import NO_LIMIT
from ..codec import now
from ..errors import InvalidInput, NotFound
from ._support import (
    ExactCopy,
    NotSerialisable,
    SessionClosed,
    append_creating,
    arguments_of,
    check_session_id,
    clean_id,
    clean_name,
    clean_text,
    decode_all,
    prepare,
    read_in_thread,
    read_view,
    resolve_store,
    run_open,
    text_of_blocks,
    view_rows,
)

__all__ = ["AgentkeepSession", "NotSerialisable", "SessionClosed"]

#: The item, exactly, in the metadata of its message: ``openai_agents_item`` (or its JSON
#: text in ``openai_agents_item_json``), its text's place in ``openai_agents_item_text``.
_COPY = ExactCopy("openai_agents_item", ("content", "content.0.text", "output"))
_ROLES = {"user": "user", "assistant": "assistant", "system": "system",
          "developer": "system", "tool": "tool"}
_HISTORY_MAXIMUM = 1_000_000  # the chat store's largest ``last``


class AgentkeepSession:
    """An OpenAI Agents SDK session kept in agentkeep (SQLite or PostgreSQL).

    Args:
        session_id: the SDK session id; also the agentkeep session's id (at most 200
            characters), created on the first ``add_items``.
        store: an open ``agentkeep.Store`` or ``AsyncStore`` to use (shared by any number
            of sessions; not closed by :meth:`close`).
        path_or_url: where to open a store instead: a directory or a ``postgresql://``
            URL; default (no ``store`` either): the home store. Closed by :meth:`close`.
        session_settings: the SDK's ``SessionSettings`` (or a dict of them); its ``limit``
            is the default of :meth:`get_items`.
        **options: options of ``agentkeep.open`` for a store opened here.

    Raises:
        InvalidInput: the session id is empty, not a string or too long, or an option is
            wrong.
    """

    def __init__(self, session_id: str, store: Any = None, *, path_or_url: Any = None,
                 session_settings: Any = None, **options: Any) -> None:
        self.session_id = check_session_id(session_id)
        self._settings = None
        self.session_settings = session_settings
        self._store, self._owns_store = resolve_store(store, path_or_url, options)

    @property
    def session_settings(self) -> Any:
        """The SDK's ``SessionSettings``; ``limit`` is the default of ``get_items``."""
        if self._settings is None:
            from agents.memory.session_settings import SessionSettings

            self._settings = SessionSettings()
        return self._settings

    @session_settings.setter
    def session_settings(self, value: Any) -> None:
        if value is None:
            self._settings = None
            return
        from agents.memory.session_settings import SessionSettings

        if isinstance(value, dict):
            unknown = sorted(map(str, set(value) - {"limit"}))
            if unknown:
                raise InvalidInput("session_settings", f"has no option {unknown[0]!r} "
                                                       "(SessionSettings has: limit)")
            limit = value.get("limit")
        elif isinstance(value, SessionSettings):
            limit = value.limit
        else:
            raise InvalidInput("session_settings", "must be the SDK's SessionSettings or a "
                                                   f"dict of them, got {type(value).__name__}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidInput("session_settings.limit",
                               f"must be a non-negative integer or None, got {limit!r:.40}")
        self._settings = value if isinstance(value, SessionSettings) \
            else SessionSettings(limit=limit)

    @property
    def store(self) -> Any:
        """The agentkeep store the items live in."""
        return self._store

    # --- the Session protocol -------------------------------------------------------------
    async def get_items(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The session's items, oldest first: the latest ``limit`` of them, or all.

        Args:
            limit: at most this many (0 gives none); default: ``session_settings.limit``,
                and without one every item.

        Raises:
            InvalidInput: ``limit`` is negative or not an integer.
        """
        if limit is None and self._settings is not None:
            limit = self._settings.limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidInput("limit", f"must be a non-negative integer or None, got {limit!r}")
        if limit == 0:
            run_open(self._store, lambda: None)
            return []
        return await read_in_thread(self._store, self._get_items, limit)

    async def add_items(self, items: list[dict[str, Any]]) -> None:
        """Append items in one transaction, in order (commits); all or none are written.

        Raises:
            NotSerialisable: an item is not JSON-serialisable (also a ``TypeError``, like
                ``SQLiteSession``'s); nothing was written.
            Conflict: the agentkeep session was soft-deleted (restore or purge it).
        """
        if self._store.is_closed:
            raise SessionClosed("the store of this session was closed")
        if not items:
            return
        if isinstance(items, (str, bytes, dict)):
            raise InvalidInput("items", "must be a list of items")
        await _call(run_open, self._store, self._add_items, items)

    async def pop_item(self) -> dict[str, Any] | None:
        """Remove the latest item and return it; None when the session is empty (commits).

        The message stays in agentkeep as an abandoned branch: the head moves back to the
        message before it.
        """
        return await _call(run_open, self._store, self._pop_item)

    async def clear_session(self) -> None:
        """Delete the session with every item for good (commits); a no-op when absent."""
        await _call(run_open, self._store, self._clear)

    def close(self) -> None:
        """Close the store if this session opened it. Later calls raise SessionClosed."""
        if self._owns_store:
            self._store.close()

    # --- sync bodies, run in a worker thread ----------------------------------------------
    def _get_items(self, limit: int | None) -> list[Any]:
        chat = self._store.chat
        if limit is not None and limit > NO_LIMIT:
            limit = None
        rows = read_view(chat, self.session_id, limit)
        items = None if rows is None else decode_all(_COPY, rows)
        if items is not None:
            return items
        # Absent, empty, soft-deleted, branched by pop_item, or written by other means.
        try:
            if limit is None or limit > _HISTORY_MAXIMUM:
                messages = chat.history(self.session_id)
                messages = messages[-limit:] if limit is not None else messages
            else:
                messages = chat.history(self.session_id, last=limit)
        except NotFound:
            return []
        return [_item_of(row) for row in view_rows(messages)]

    def _add_items(self, items: list[Any]) -> None:
        messages = [_message_of(item, index) for index, item in enumerate(items)]
        append_creating(self._store.chat, self.session_id, messages, "openai-agents")

    def _pop_item(self) -> dict[str, Any] | None:
        chat = self._store.chat
        # Under the lock that serialises appends (SQLite: the write lock; PostgreSQL: the
        # session row), so concurrent pops take distinct items.
        with chat._write() as conn:
            row = conn.one(chat_sql.SESSION_FOR_APPEND[chat._dialect], (self.session_id,))
            if row is None or row[0] == "deleted" or row[1] is None:
                return None
            _, head_id, _, head_depth = row
            message = Message(conn.one(chat_sql.SELECT_MESSAGE[chat._dialect], (head_id,)))
            conn.run(chat_sql.UPDATE_SESSION_HEAD, (message.parent_id, head_depth - 1,
                                                    chat._time(now()), self.session_id))
        return _item_of(view_rows([message])[0])

    def _clear(self) -> None:
        try:
            self._store.chat.purge_session(self.session_id)
        except NotFound:
            pass

    def __repr__(self) -> str:
        return f"<AgentkeepSession {self.session_id!r} in {self._store.location}>"


def _message_of(item: Any, index: int) -> dict[str, Any]:
    """One SDK item as a prepared agentkeep message (its exact copy in the metadata)."""
    field = f"items[{index}]"
    text, metadata = _COPY.encode(field, item)
    role, content, parts = _view(item, text)
    # The copy's text is put back from the content column: it must be exactly that text.
    return prepare(field, {"role": role, "content": content if text is None else text,
                           "parts": parts}, metadata)


def _view(item: Any, text: str | None = None) -> tuple[str, str, list[dict[str, Any]] | None]:
    """(role, searchable text, parts) of an item as agentkeep shows it; ``text``, when
    given, is the item's main text, already found."""
    if not isinstance(item, dict):
        return "assistant", clean_text(item), None
    kind = item.get("type")
    kind = kind if isinstance(kind, str) else ""
    role = item.get("role")
    if isinstance(role, str) and kind in ("", "message"):
        parts = None
        if role == "assistant" and isinstance(item.get("tool_calls"), list):  # chat format
            parts = [_tool_call_part(call.get("id"), call.get("function", call))
                     for call in item["tool_calls"] if isinstance(call, dict)]
        elif role == "tool":
            parts = _tool_result_parts(item.get("tool_call_id"))
        content = text if text is not None else text_of_blocks(item.get("content"))
        return _ROLES.get(role, "assistant"), content, parts
    if kind.endswith("_output"):
        if text is None:
            output = item.get("output")
            text = clean_text(output) if isinstance(output, str) else text_of_blocks(output)
        return "tool", text, _tool_result_parts(item.get("call_id"))
    if kind.endswith("_call"):
        call_id = item.get("call_id", item.get("id"))
        return "assistant", text or "", [_tool_call_part(call_id, item, default_name=kind)]
    if kind == "reasoning":
        return "assistant", text_of_blocks(item.get("summary")), None
    return "assistant", text if text is not None else text_of_blocks(item.get("content")), None


def _tool_call_part(call_id: Any, call: Any, default_name: str = "function") -> dict[str, Any]:
    call = call if isinstance(call, dict) else {}
    part = {"type": "tool_call", "name": clean_name(call.get("name"), default_name),
            "arguments": arguments_of(call.get("arguments", call.get("input", {})))}
    if clean_id(call_id) is not None:
        part["id"] = call_id
    return part


def _tool_result_parts(call_id: Any) -> list[dict[str, Any]] | None:
    if clean_id(call_id) is None:
        return None
    return [{"type": "tool_result", "call_id": call_id}]


def _item_of(row: tuple) -> Any:
    """The SDK item of a (content, metadata, role, parts) row; a message written by other
    means as an input item."""
    content, metadata, role, parts = row
    found, item = _COPY.decode(metadata, content)
    if found:
        return item
    if role == "tool":
        for part in json.loads(parts) if parts and parts != "[]" else ():
            if part.get("type") == "tool_result":
                return {"type": "function_call_output", "call_id": part["call_id"],
                        "output": content}
        role = "assistant"
    return {"role": role, "content": content}

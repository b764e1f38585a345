"""agentkeep as a LangChain chat message history: ``AgentkeepChatMessageHistory``.

>>> from agentkeep.integrations.langchain import AgentkeepChatMessageHistory
>>> chain = RunnableWithMessageHistory(
...     prompt | model, lambda session_id: AgentkeepChatMessageHistory(session_id, store),
...     input_messages_key="question", history_messages_key="history")

A ``BaseChatMessageHistory`` with the sync and async methods (``messages``,
``add_messages``, ``clear`` and ``aget_messages``, ``aadd_messages``, ``aclear``). Each
LangChain message is one agentkeep message in the session whose id is the history's
session id: the message exactly as given (``message_to_dict`` JSON, in the message's
metadata; every type, chunks included, comes back equal) plus a view for agentkeep —
human → ``user``, AI → ``assistant`` with its tool calls as ``tool_call`` parts and its
``usage_metadata`` as the message's usage (so the session's token counters add up),
tool → ``tool`` finishing the call, system → ``system``.

``clear`` purges the session for good.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core import messages as lc
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from ..aio import _call
from ..chat.rules import check_usage
from ..errors import InvalidInput, NotFound
from ._support import (
    MAX_NAME_LENGTH,
    ExactCopy,
    NotSerialisable,
    SessionClosed,
    append_creating,
    arguments_of,
    check_session_id,
    clean_id,
    clean_name,
    decode_all,
    is_clean_text,
    prepare,
    read_in_thread,
    read_view,
    resolve_store,
    run_open,
    text_of_blocks,
    view_rows,
)

__all__ = ["AgentkeepChatMessageHistory", "NotSerialisable", "SessionClosed"]

#: ``message_to_dict`` of the message, exactly, in the metadata of its agentkeep message:
#: ``langchain_message`` (or its JSON text in ``langchain_message_json``), its text's place
#: in ``langchain_message_text``.
_COPY = ExactCopy("langchain_message", ("data.content", "data.content.0.text"))
#: LangChain's own message classes: messages_from_dict rebuilds each from its dict.
_LANGCHAIN_CLASSES = frozenset({
    lc.AIMessage, lc.AIMessageChunk, lc.ChatMessage,
    lc.ChatMessageChunk, lc.FunctionMessage, lc.FunctionMessageChunk,
    lc.HumanMessage, lc.HumanMessageChunk, lc.RemoveMessage,
    lc.SystemMessage, lc.SystemMessageChunk, lc.ToolMessage,
    lc.ToolMessageChunk,
})
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "tool"}
_CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
               "system": "system", "developer": "system", "tool": "tool"}


class AgentkeepChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat message history kept in agentkeep (SQLite or PostgreSQL).

    Args:
        session_id: the conversation's id; also the agentkeep session's id (at most 200
            characters), created by the first ``add_messages``.
        store: an open ``agentkeep.Store`` or ``AsyncStore`` (shared by any number of
            histories; not closed by :meth:`close`).
        path_or_url: where to open a store instead: a directory or a ``postgresql://``
            URL; default (no ``store`` either): the home store. Closed by :meth:`close`.
        **options: options of ``agentkeep.open`` for a store opened here.

    Raises:
        InvalidInput: the session id is empty, not a string or too long, or an option is
            wrong.
    """

    def __init__(self, session_id: str, store: Any = None, *, path_or_url: Any = None,
                 **options: Any) -> None:
        self.session_id = check_session_id(session_id)
        self._store, self._owns_store = resolve_store(store, path_or_url, options)

    @property
    def store(self) -> Any:
        """The agentkeep store the messages live in."""
        return self._store

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the conversation, oldest first (read-only)."""
        return run_open(self._store, self._messages)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async :attr:`messages`."""
        return await read_in_thread(self._store, self._messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in one transaction, in order (commits); all or none are written.

        Raises:
            InvalidInput: an entry is not a LangChain message.
            NotSerialisable: a message holds a value JSON cannot (also a ``TypeError``, as
                from LangChain's SQL history); nothing was written.
        """
        run_open(self._store, self._add, messages)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages`."""
        await _call(run_open, self._store, self._add, messages)

    def clear(self) -> None:
        """Delete the conversation for good (commits); a no-op when there is none."""
        run_open(self._store, self._clear)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await _call(run_open, self._store, self._clear)

    def close(self) -> None:
        """Close the store if this history opened it. Later calls raise SessionClosed."""
        if self._owns_store:
            self._store.close()

    # --- sync bodies ----------------------------------------------------------------------
    def _messages(self) -> list[BaseMessage]:
        rows = read_view(self._store.chat, self.session_id, None)
        values = None if rows is None else decode_all(_COPY, rows)
        if values is None:  # absent, empty, soft-deleted, branched, or written by other means
            try:
                history = self._store.chat.history(self.session_id)
            except NotFound:
                return []
            values = [_dict_of(row) for row in view_rows(history)]
        return messages_from_dict(values)

    def _add(self, messages: Sequence[BaseMessage]) -> None:
        prepared = _prepare(messages)
        if prepared:
            append_creating(self._store.chat, self.session_id, prepared, "langchain")

    def _clear(self) -> None:
        try:
            self._store.chat.purge_session(self.session_id)
        except NotFound:
            pass

    def __repr__(self) -> str:
        return f"<AgentkeepChatMessageHistory {self.session_id!r} in {self._store.location}>"


def _prepare(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    if isinstance(messages, (BaseMessage, str, bytes, dict)) \
            or not hasattr(messages, "__iter__"):
        raise InvalidInput("messages", "must be a list of LangChain messages")
    prepared = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, BaseMessage):
            raise InvalidInput(field, f"must be a LangChain message (BaseMessage), got "
                                      f"{type(message).__name__}")
        prepared.append(_message_of(message, field))
    return prepared


def _readable(message: BaseMessage, as_dict: dict[str, Any], field: str) -> None:
    """Refuse a message LangChain could not rebuild from what is stored: a class of the
    caller's own with a ``type`` that ``messages_from_dict`` does not know would be
    written, then make the whole history unreadable (ValueError on every read)."""
    if type(message) in _LANGCHAIN_CLASSES:
        return
    try:
        messages_from_dict([as_dict])
    except Exception as exc:  # noqa: BLE001 - whatever LangChain's rebuilding raises
        raise InvalidInput(f"{field}.type", f"LangChain cannot rebuild a {type(message).__name__}"
                                            f" of type {message.type!r} from storage "
                                            f"({type(exc).__name__}: {exc}); use one of "
                                            "LangChain's message classes") from None


def _message_of(message: BaseMessage, field: str) -> dict[str, Any]:
    """The agentkeep message fields for one LangChain message (its exact JSON in metadata)."""
    as_dict = message_to_dict(message)
    _readable(message, as_dict, field)
    text, metadata = _COPY.encode(field, as_dict)
    kind = message.type.removesuffix("MessageChunk").lower()
    if kind == "chat":
        role = _CHAT_ROLES.get(getattr(message, "role", None), "assistant")
    else:
        role = _ROLES.get(kind, "assistant")
    fields: dict[str, Any] = {
        "role": role,
        "content": text if text is not None else text_of_blocks(message.content),
    }
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        fields["parts"] = [_tool_call_part(call) for call in tool_calls]
    elif kind == "tool" and clean_id(getattr(message, "tool_call_id", None)):
        result = {"type": "tool_result", "call_id": message.tool_call_id}
        if getattr(message, "status", None) == "error":  # the call failed with this text
            result.update(is_error=True, output=fields["content"])
        fields["parts"] = [result]
    usage = getattr(message, "usage_metadata", None)
    if usage:
        try:
            check_usage(usage)
            fields["usage"] = dict(usage)
        except InvalidInput:  # the view goes without; the exact copy keeps it
            pass
    response = message.response_metadata if isinstance(message.response_metadata, dict) else {}
    for name, keys in (("model", ("model_name", "model")),
                       ("finish_reason", ("finish_reason", "stop_reason"))):
        for key in keys:
            value = response.get(key)
            if is_clean_text(value) and 0 < len(value) <= MAX_NAME_LENGTH:
                fields[name] = value
                break
    return prepare(field, fields, metadata)


def _tool_call_part(call: dict[str, Any]) -> dict[str, Any]:
    part = {"type": "tool_call", "name": clean_name(call.get("name"), "tool"),
            "arguments": arguments_of(call.get("args", {}))}
    if clean_id(call.get("id")) is not None:
        part["id"] = call["id"]
    return part


def _dict_of(row: tuple) -> dict[str, Any]:
    """The ``message_to_dict`` form of a (content, metadata, role, parts) row; a message
    written by other means as the LangChain message of its role."""
    content, metadata, role, parts = row
    found, value = _COPY.decode(metadata, content)
    if found:
        return value
    if role == "tool":
        for part in json.loads(parts) if parts and parts != "[]" else ():
            if part.get("type") == "tool_result":
                return {"type": "tool", "data": {"content": content,
                                                 "tool_call_id": part["call_id"]}}
        return {"type": "chat", "data": {"content": content, "role": "tool"}}
    kind = {"user": "human", "assistant": "ai", "system": "system"}[role]
    return {"type": kind, "data": {"content": content}}

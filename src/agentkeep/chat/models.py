"""What the chat store returns: read-only records, decoded lazily from their rows.

Field order follows the column lists in ``sql.py``; keep the two in step.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Generic, TypeVar

from ..records import (
    Record,
    column,
    decode_json,
    json_column,
    nanos_column,
    time_column,
)

T = TypeVar("T")


class Session(Record):
    """A conversation. Counters cover every message of the session, on every branch."""

    __slots__ = ()
    _fields = ("id", "title", "status", "provider", "model", "system_prompt", "generation",
               "metadata", "parent_id", "forked_from_id", "head_id", "summary_id",
               "message_count", "input_tokens", "output_tokens", "cost", "created_at",
               "updated_at", "active_at", "deleted_at", "preview")
    id = column(0)
    title = column(1)
    status = column(2, "active, archived or deleted")
    provider = column(3)
    model = column(4)
    system_prompt = column(5)
    generation = json_column(6, "generation settings (temperature, max_tokens, ...)")
    metadata = json_column(7)
    parent_id = column(8, "the session that spawned this sub-agent session")
    forked_from_id = column(9, "the message this session was forked at")
    head_id = column(10, "the last message of the active branch")
    summary_id = column(11)
    message_count = column(12)
    input_tokens = column(13)
    output_tokens = column(14)
    cost = nanos_column(15, "US dollars")
    created_at = time_column(16)
    updated_at = time_column(17)
    active_at = time_column(18, "when the last message was appended")
    deleted_at = time_column(19)
    preview = column(20, "the first 200 characters of the head message")


# A message row packs its rarely set fields into one value (sql.MESSAGE_COLUMNS): None
# when all are unset, the JSON array text the database built, or this tuple when the
# store built the record itself. usage and metadata stay JSON text until read.
_UNSET_EXTRAS = (None, None, None, 0, 0, None, 0, "{}")


def _extra(index: int, doc: str | None = None) -> property:
    return property(lambda self: self._extras[index], doc=doc)


def _extra_json(index: int, doc: str | None = None) -> cached_property:
    def decode(self):
        return decode_json(self._extras[index])
    decode.__doc__ = doc
    return cached_property(decode)


class Message(Record):
    """One node of a session's message tree."""

    __slots__ = ()
    _fields = ("id", "session_id", "parent_id", "seq", "depth", "role", "content", "parts",
               "provider", "model", "finish_reason", "input_tokens", "output_tokens", "usage",
               "cost", "metadata", "created_at")
    id = column(0)
    session_id = column(1)
    parent_id = column(2, "the message this one answers (None for a root)")
    seq = column(3, "1, 2, 3, ... in append order within the session")
    depth = column(4, "distance from the root")
    role = column(5)
    content = column(6, "plain text; what search indexes")
    parts = json_column(7, "typed parts: text, tool_call, tool_result, image, ...")
    created_at = time_column(8)
    provider = _extra(0)
    model = _extra(1)
    finish_reason = _extra(2)
    input_tokens = _extra(3)
    output_tokens = _extra(4)
    usage = _extra_json(5)
    cost = property(lambda self: self._extras[6] / 1_000_000_000, doc="US dollars")
    metadata = _extra_json(7)

    @cached_property
    def _extras(self) -> tuple:
        value = self._row[9]
        if value is None:
            return _UNSET_EXTRAS
        if isinstance(value, str):
            return tuple(json.loads(value))
        return value

    @property
    def _metadata_text(self) -> str:
        """The metadata as stored (JSON text), for callers that decode it their own way."""
        return self._extras[7]


def stored_message(values: tuple) -> Message:
    """The record of a message the store just wrote, from its INSERT_MESSAGE values."""
    (message_id, session_id, parent_id, seq, depth, role, content, parts, provider, model,
     finish_reason, input_tokens, output_tokens, usage, cost_nanos, metadata,
     created_at) = values
    extras = (provider, model, finish_reason, input_tokens, output_tokens, usage, cost_nanos,
              metadata)
    return Message((message_id, session_id, parent_id, seq, depth, role, content, parts,
                    created_at, None if extras == _UNSET_EXTRAS else extras))


class ToolCall(Record):
    """A tool invocation requested by an assistant message."""

    __slots__ = ()
    _fields = ("id", "session_id", "message_id", "call_id", "name", "input", "output",
               "status", "error", "retry_count", "result_message_id", "created_at",
               "started_at", "finished_at", "duration_ms")
    id = column(0)
    session_id = column(1)
    message_id = column(2, "the assistant message that asked")
    call_id = column(3, "the provider's call id")
    name = column(4)
    input = json_column(5)
    output = json_column(6)
    status = column(7, "pending, running, succeeded, failed or cancelled")
    error = column(8)
    retry_count = column(9)
    result_message_id = column(10, "the tool message that answered")
    created_at = time_column(11)
    started_at = time_column(12)
    finished_at = time_column(13)
    duration_ms = column(14)


class Attachment(Record):
    __slots__ = ()
    _fields = ("id", "session_id", "message_id", "sha256", "filename", "media_type", "size",
               "created_at")
    id = column(0)
    session_id = column(1)
    message_id = column(2)
    sha256 = column(3)
    filename = column(4)
    media_type = column(5)
    size = column(6)
    created_at = time_column(7)


class FileVersion(Record):
    """One saved version of a file a session worked on."""

    __slots__ = ()
    _fields = ("id", "session_id", "path", "version", "sha256", "size", "media_type",
               "message_id", "created_at")
    id = column(0)
    session_id = column(1)
    path = column(2)
    version = column(3)
    sha256 = column(4)
    size = column(5)
    media_type = column(6)
    message_id = column(7)
    created_at = time_column(8)


class _Plain:
    """A small immutable value with named fields (no row behind it)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init__(self, *values) -> None:
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict:
        """Every field, in declaration order."""
        return {n: getattr(self, n) for n in self._fields}

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({fields})"


class Branch(_Plain):
    """A leaf of the message tree, i.e. the end of one branch."""

    __slots__ = ("leaf", "is_active")
    _fields = ("leaf", "is_active")

    @property
    def length(self) -> int:
        return self.leaf.depth + 1


class SearchHit(_Plain):
    """A search result: the message, its session's title, a snippet and a score."""

    __slots__ = ("message", "session_title", "snippet", "score")
    _fields = ("message", "session_title", "snippet", "score")


class Page(_Plain, Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` to get the next."""

    __slots__ = ("items", "next_cursor")
    _fields = ("items", "next_cursor")

    def __init__(self, items: list[T] | None = None, next_cursor: str | None = None) -> None:
        super().__init__([] if items is None else items, next_cursor)

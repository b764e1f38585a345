"""What the chat store returns: plain, immutable dataclasses (cheap to build and import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Session:
    """A conversation. Counters cover every message of the session, on every branch."""

    id: str
    title: str | None
    status: str
    provider: str | None
    model: str | None
    system_prompt: str | None
    generation: dict[str, Any]
    metadata: dict[str, Any]
    parent_id: str | None
    forked_from_id: str | None
    head_id: str | None
    summary_id: str | None
    message_count: int
    input_tokens: int
    output_tokens: int
    cost: float
    created_at: datetime
    updated_at: datetime
    active_at: datetime
    deleted_at: datetime | None
    #: The first 200 characters of the head message (the active branch's last message).
    preview: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One node of a session's message tree."""

    id: str
    session_id: str
    parent_id: str | None
    seq: int
    depth: int
    role: str
    content: str
    parts: list[dict[str, Any]]
    provider: str | None
    model: str | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    usage: dict[str, Any] | None
    cost: float
    metadata: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool invocation requested by an assistant message."""

    id: str
    session_id: str
    message_id: str
    call_id: str | None
    name: str
    input: Any
    output: Any
    status: str
    error: str | None
    retry_count: int
    result_message_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    session_id: str
    message_id: str
    sha256: str
    filename: str
    media_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One saved version of a file a session worked on."""

    id: str
    session_id: str
    path: str
    version: int
    sha256: str
    size: int
    media_type: str | None
    message_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Branch:
    """A leaf of the message tree, i.e. the end of one branch."""

    leaf: Message
    is_active: bool

    @property
    def length(self) -> int:
        return self.leaf.depth + 1


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: Message
    session_title: str | None
    snippet: str
    #: Higher is better; comparable only within one result list.
    score: float


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` to get the next."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None

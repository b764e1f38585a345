"""The chat concern's domain rules, without I/O: validation and row encoding/decoding."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..codec import (
    UTC,
    check_choice,
    check_count,
    check_id,
    check_text,
    dump_json,
    shown,
)
from ..errors import InvalidInput

ROLES = ("system", "user", "assistant", "tool")
MAX_TOKENS = 10**12  # per message and direction (usage.input_tokens, usage.output_tokens)
SESSION_STATUSES = ("active", "archived", "deleted")
TOOL_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
MAX_NAME_LENGTH = 1000
PREVIEW_LENGTH = 200
NANOS = 1_000_000_000

MESSAGE_FIELDS = frozenset({
    "role", "content", "parts", "provider", "model", "finish_reason", "usage", "cost",
    "metadata", "parent_id", "summary",
})


def encode_cost(field: str, cost: object) -> int:
    if cost is None:
        return 0
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not \
            0 <= cost < 9e9 or cost != cost:
        problem = ("must be less than 9,000,000,000 US dollars" if cost == cost and
                   not isinstance(cost, bool) and isinstance(cost, (int, float)) and cost > 0
                   else "must be a non-negative number of US dollars")
        raise InvalidInput(field, f"{problem}, got {shown(cost, 40)}")
    return round(cost * NANOS)


def check_object(field: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be a dict, got {type(value).__name__}")
    return dict(value)


def check_usage(usage: object) -> tuple[int, int, str | None]:
    """(input_tokens, output_tokens, usage JSON) from a usage dict."""
    if usage is None:
        return 0, 0, None
    usage = check_object("usage", usage)
    input_tokens = check_count("usage.input_tokens", usage.get("input_tokens", 0))
    output_tokens = check_count("usage.output_tokens", usage.get("output_tokens", 0))
    for field, tokens in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if tokens > MAX_TOKENS:  # so that a session's sums stay far inside 63 bits
            raise InvalidInput(f"usage.{field}", f"must be at most {MAX_TOKENS:,} a message, "
                                                 f"got {tokens:,}")
    for key, value in usage.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise InvalidInput(f"usage.{key}", "must not be negative")
    return input_tokens, output_tokens, dump_json("usage", usage)


def check_parts(parts: object) -> list[dict[str, Any]]:
    if parts is None:
        return []
    if not isinstance(parts, (list, tuple)):
        raise InvalidInput("parts", f"must be a list of dicts, got {type(parts).__name__}")
    checked = []
    for index, part in enumerate(parts):
        field = f"parts[{index}]"
        if not isinstance(part, Mapping):
            raise InvalidInput(field, f"must be a dict with a 'type', got {type(part).__name__}")
        kind = part.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidInput(f"{field}.type", "must be a non-empty string")
        if kind == "tool_call":
            check_text(f"{field}.name", part.get("name"), max_length=MAX_NAME_LENGTH)
            if not part["name"]:
                raise InvalidInput(f"{field}.name", "must not be empty")
            check_id(f"{field}.id", part.get("id"), optional=True)
        elif kind == "tool_result":
            check_id(f"{field}.call_id", part.get("call_id"))
            flag = part.get("is_error")
            if flag is not None and flag is not True and flag is not False:  # not 1 or 0.0
                raise InvalidInput(f"{field}.is_error", f"must be True or False, got {shown(flag)}")
        elif kind == "text":
            check_text(f"{field}.text", part.get("text"))
        checked.append(dict(part))
    return checked


def text_of_parts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(part["text"] for part in parts if part.get("type") == "text")


def _object_json(field: str, value: object) -> str:
    return "{}" if value is None else dump_json(field, check_object(field, value))


def prepare_message(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one message's fields; return them encoded for INSERT_MESSAGE."""
    if not MESSAGE_FIELDS.issuperset(fields):
        unknown = set(fields) - MESSAGE_FIELDS
        # A caller's dict may have keys of mixed types (sorted() would raise TypeError)
        # or an empty key (an InvalidInput naming no field): name the field by repr.
        key = min(unknown, key=repr)
        field = key if isinstance(key, str) and key else "message"
        raise InvalidInput(field, f"{shown(key, 40)} is not a message field; known: "
                                  + ", ".join(sorted(MESSAGE_FIELDS)))
    get = fields.get
    return prepare_fields(get("role"), get("content"), get("parts"), get("provider"),
                          get("model"), get("finish_reason"), get("usage"), get("cost"),
                          get("metadata"), get("summary", False))


def prepare_fields(role: object, content: object, parts: object, provider: object,
                   model: object, finish_reason: object, usage: object, cost: object,
                   metadata: object, summary: object) -> dict[str, Any]:
    """prepare_message's work on fields given one by one (ChatStore.append)."""
    # Runs for every message written: fields left out (the usual case for all but role
    # and content) skip their checks rather than pass None through them.
    role = check_choice("role", role, ROLES)
    parts = check_parts(parts) if parts is not None else []
    if content is None:
        content = text_of_parts(parts)
    check_text("content", content)
    input_tokens, output_tokens, usage = check_usage(usage) if usage is not None \
        else (0, 0, None)
    if summary is not False and summary is not True:
        raise InvalidInput("summary", "must be True or False")
    return {
        "role": role,
        "content": content,
        "parts": parts,
        "parts_json": dump_json("parts", parts) if parts else "[]",
        "provider": None if provider is None else check_text(
            "provider", provider, max_length=MAX_NAME_LENGTH),
        "model": None if model is None else check_text(
            "model", model, max_length=MAX_NAME_LENGTH),
        "finish_reason": None if finish_reason is None else check_text(
            "finish_reason", finish_reason, max_length=MAX_NAME_LENGTH),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "usage": usage,
        "cost_nanos": 0 if cost is None else encode_cost("cost", cost),
        "metadata_json": "{}" if metadata is None else _object_json("metadata", metadata),
        "summary": summary,
    }


def is_plain(item: dict[str, Any]) -> bool:
    """True when a prepared message's rarely set fields all hold their defaults, so
    INSERT_PLAIN_MESSAGE writes it (the encoded values decide: callers may amend them)."""
    return (item["metadata_json"] == "{}" and item["usage"] is None
            and item["provider"] is None and item["model"] is None
            and item["finish_reason"] is None and not item["cost_nanos"]
            and not item["input_tokens"] and not item["output_tokens"])


def encode_cursor(active_at: datetime, session_id: str) -> str:
    raw = json.dumps([active_at.isoformat(), session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object) -> tuple[datetime, str]:
    try:
        assert isinstance(cursor, str)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        active_at, session_id = json.loads(raw)
        when = datetime.fromisoformat(active_at)
        if when.utcoffset() is None:  # list_sessions writes UTC times
            raise ValueError("no time zone")
        return when.astimezone(UTC), str(session_id)
    except Exception:
        raise InvalidInput("cursor", "is not a cursor returned by list_sessions") from None


def check_marks(marks: object) -> tuple[str, str]:
    if not (isinstance(marks, (tuple, list)) and len(marks) == 2
            and all(isinstance(m, str) and 0 < len(m) <= 16 for m in marks)):
        raise InvalidInput("marks", "must be a pair of short strings, e.g. ('[', ']')")
    for mark in marks:
        check_text("marks", mark)
        if any(c in mark for c in '",='):
            raise InvalidInput("marks", 'must not contain ", comma or =')
    return marks[0], marks[1]


def check_blob(field: str, data: object, limit: int) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(field, "contains a lone surrogate; text must be valid Unicode") \
                from None
    if not isinstance(data, bytes):
        raise InvalidInput(field, f"must be bytes or str, got {type(data).__name__}")
    if len(data) > limit:
        raise InvalidInput(field, f"is {len(data)} bytes, over the limit of {limit} bytes "
                                  "(max_blob_size)")
    return data

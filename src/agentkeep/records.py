"""Read-only records over database rows, decoded lazily.

A record keeps the row tuple as the database returned it and decodes a field (JSON,
times) the first time it is read. Reading the last 50 messages then costs about
0.2 µs per message instead of the ~5 µs of decoding every field up front, which
matters when history is read on every turn (see docs/performance.md).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

UTC = timezone.utc
_EMPTY_LIST = "[]"
_EMPTY_OBJECT = "{}"


class Record:
    """Base of the model classes: immutable, equal when their rows are equal."""

    __slots__ = ("_row", "__dict__")
    _fields: tuple[str, ...] = ()

    def __init__(self, row: tuple, _set_row: Any = None) -> None:
        _set_row(self, row)  # the slot's own setter: ~2.5 µs less per 50 records

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._row[0]))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self):
        return (type(self), (self._row,))

    def to_dict(self) -> dict[str, Any]:
        """Every field, decoded, in declaration order."""
        return {name: getattr(self, name) for name in self._fields}


# Bound as a default so that __init__ finds it without a global lookup; the slot's setter
# bypasses __setattr__, which refuses every write.
Record.__init__.__defaults__ = (Record.__dict__["_row"].__set__,)


def column(index: int, doc: str | None = None) -> property:
    """A field read straight from the row."""
    return property(lambda self: self._row[index], doc=doc)


def decode_json(text: str | None) -> Any:
    """Stored JSON text as a value ([] and {} without the parser)."""
    if text is None:
        return None
    if text == _EMPTY_LIST:
        return []
    if text == _EMPTY_OBJECT:
        return {}
    return json.loads(text)


def json_column(index: int, doc: str | None = None) -> cached_property:
    """A JSON field, decoded on first read."""
    def decode(self):
        return decode_json(self._row[index])
    decode.__doc__ = doc
    return cached_property(decode)


def time_column(index: int, doc: str | None = None) -> cached_property:
    """A time field: ISO text or a datetime, as an aware UTC datetime."""
    def decode(self):
        value = self._row[index]
        if value is None:
            return None
        if not isinstance(value, datetime):
            value = parse_time(value)
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    decode.__doc__ = doc
    return cached_property(decode)


# PostgreSQL's ISO text of a timestamptz: the fraction trimmed of trailing zeros (or
# absent) and the offset in hours.
_SERVER_TIME = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?([+-]\d\d)(:\d\d)?")


def parse_time(text: str) -> datetime:
    """A stored time's text as a datetime: SQLite's ISO form, or PostgreSQL's (which
    Python 3.10's fromisoformat does not read)."""
    match = _SERVER_TIME.fullmatch(text) if text[10:11] == " " else None
    if match is None:
        return datetime.fromisoformat(text)
    day, clock, fraction, hours, minutes = match.groups()
    return datetime.fromisoformat(f"{day}T{clock}.{(fraction or '').ljust(6, '0')}"
                                  f"{hours}{minutes or ':00'}")


def nanos_column(index: int, doc: str | None = None) -> property:
    """An amount stored in 10^-9 units (exact sums), read as a float."""
    return property(lambda self: self._row[index] / 1_000_000_000, doc=doc)


"""Validation and encoding of values shared by every concern (ids, text, JSON, times)."""

from __future__ import annotations

import json
import os
import random
import reprlib
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidInput

UTC = timezone.utc
MAX_JSON_DEPTH = 64
MAX_TEXT_LENGTH = 64 * 1024 * 1024

_id_lock = threading.Lock()
_last_stamp = 0  # the newest id's stamp (see _reserve)
# Random bits from a PRNG seeded by the OS (reseeded in forked children, which would
# otherwise repeat the parent's sequence): os.urandom per id is a system call.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


# repr() of a value nested thousands deep raises RecursionError, and of a 10 MB string
# builds 10 MB: error messages show caller values through shown(), which bounds both
# (found by tests/reliability/test_hostile_input.py).
_short_repr = reprlib.Repr()
_short_repr.maxlevel = 4
_short_repr.maxstring = _short_repr.maxother = 200


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, safe for any size and nesting."""
    if isinstance(value, str):
        return repr(value[:limit])[:limit]
    if isinstance(value, (list, tuple, dict, set, frozenset, bytes, bytearray)):
        return _short_repr.repr(value)[:limit]
    try:
        return repr(value)[:limit]
    except Exception:  # noqa: BLE001 - a caller's object whose __repr__ fails
        return f"<{type(value).__name__}>"


def _reserve(count: int) -> int:
    """Claim ``count`` consecutive id stamps (milliseconds << 12 | a 12-bit counter); the
    first. A new millisecond starts the counter at a random value below 512; within the
    same millisecond (or when the clock went back) the stamps keep counting on, into the
    next millisecond when the counter runs out, so ids keep increasing."""
    global _last_stamp
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        first = (ms << 12 | _random.getrandbits(9) if ms > _last_stamp >> 12
                 else _last_stamp + 1)
        _last_stamp = first + count - 1
    return first


def _uuid7(stamp: int, rand: int) -> str:
    # 48 bits of milliseconds, version 7, 12 bits of counter, variant 0b10, 62 random bits;
    # %-formatting: half the time of the f-string with five format specs.
    return "%08x-%04x-%04x-%04x-%012x" % (  # noqa: UP031
        stamp >> 28, stamp >> 12 & 0xFFFF, 0x7000 | stamp & 0xFFF, 0x8000 | rand >> 48,
        rand & 0xFFFFFFFFFFFF)


def new_id() -> str:
    """A UUIDv7 string: time-ordered, unique across processes and machines."""
    return _uuid7(_reserve(1), _random.getrandbits(62))


def new_ids(count: int) -> list[str]:
    """``count`` UUIDv7 strings in increasing order, for a batch: one clock read and one
    lock for all (~0.55 µs an id in a batch of 100, ~1.25 µs each one by one)."""
    if count < 1:
        return []
    first, bits = _reserve(count), _random.getrandbits
    ids, prefix, prefix_ms = [], "", -1
    append = ids.append
    for stamp in range(first, first + count):
        if stamp >> 12 != prefix_ms:  # the millisecond's part, formatted once for all of it
            prefix_ms = stamp >> 12
            prefix = "%08x-%04x-7" % (prefix_ms >> 16, prefix_ms & 0xFFFF)  # noqa: UP031
        rand = bits(62)
        append("%s%03x-%04x-%012x" % (  # noqa: UP031 - as in _uuid7
            prefix, stamp & 0xFFF, 0x8000 | rand >> 48, rand & 0xFFFFFFFFFFFF))
    return ids


def now() -> datetime:
    return datetime.now(UTC)


def check_id(field: str, value: object, *, optional: bool = False) -> str | None:
    """An id is any non-empty string without NUL of at most 200 characters."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, f"must be a non-empty id string, got {shown(value)}")
    if len(value) > 200:
        raise InvalidInput(field, f"must be at most 200 characters, got {len(value):,} "
                                  f"({shown(value, 30)}…)")
    check_text(field, value)
    return value


def check_text(field: str, value: object, *, optional: bool = False,
               max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """Text must be a str without NUL characters or lone surrogates."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidInput(field, f"is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidInput(field, "contains a NUL character, which cannot be stored")
    if not value.isascii():  # ASCII text cannot hold a surrogate; skip the copy
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(field, "contains a lone surrogate; text must be valid "
                                      "Unicode") from None
    return value


def check_count(field: str, value: object) -> int:
    """A non-negative integer that fits in 63 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        problem = "must be less than 2^63" if isinstance(value, int) and value > 0 \
            and not isinstance(value, bool) else "must be a non-negative integer"
        raise InvalidInput(field, f"{problem}, got {shown(value)}")
    return value


def check_flag(field: str, value: object) -> bool:
    """Exactly True or False: a truthy "no" or 1 must not pass for True."""
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be True or False, got {shown(value)}")
    return value


def check_limit(field: str, value: object, *, optional: bool = True,
                maximum: int = 1_000_000) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(field, f"must be an integer between 1 and {maximum}, got {shown(value)}")
    return value


def check_choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInput(field, f"must be one of {', '.join(choices)}; got {shown(value)}")
    return value  # type: ignore[return-value]


def check_time(field: str, value: object, *, optional: bool = True) -> datetime | None:
    """A timezone-aware datetime (naive ones are refused: their zone is a guess)."""
    if value is None and optional:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must be timezone-aware (e.g. datetime.now(timezone.utc))")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at +05:00 is before year 1 in UTC
        raise InvalidInput(field, "is out of range in UTC") from None


def second_of(value: datetime, dialect: str) -> Any:
    """The UTC second of an aware time as ``sessions.active_second`` holds it (chat_0004):
    ``YYYY-MM-DDTHH:MM:SS`` text on SQLite, a naive UTC datetime on PostgreSQL."""
    second = value.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return second.isoformat() if dialect == "sqlite" else second


MAX_JSON_INT_BITS = 13_287  # 4,000 decimal digits


def _check_json_value(field: str, value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(field, f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        # Python converts at most 4,300 digits between int and text (a ValueError past
        # them, in dumps and in loads): keep well inside.
        if value.bit_length() > MAX_JSON_INT_BITS:
            raise InvalidInput(field, "holds an integer of more than 4,000 digits")
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(field, "contains NaN or infinity, which JSON cannot hold")
        return
    if isinstance(value, str):
        check_text(field, value)
        return
    if isinstance(value, list):
        for item in value:
            _check_json_value(field, item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(field, f"has a non-string key {shown(key, 40)}; "
                                          "JSON object keys are strings")
            check_text(field, key)
            _check_json_value(field, item, depth + 1)
        return
    raise InvalidInput(field, f"holds a {type(value).__name__}, which is not JSON-serialisable "
                              "(use dict, list, str, int, float, bool or None)")


def dump_json(field: str, value: Any) -> str:
    """Validate ``value`` as JSON that reads back identical, and serialise it."""
    _check_json_value(field, value, 0)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def load_time(value: Any) -> datetime | None:
    """Decode a stored time: ISO text from SQLite or a datetime from PostgreSQL."""
    if value is None:
        return None
    if isinstance(value, datetime):  # PostgreSQL hands back the session's zone
        return value.astimezone(UTC)
    return datetime.fromisoformat(value)


def human_size(size: int | None) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 3.2 MiB, ... (``-`` for None)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - unreachable

"""What the framework adapters share: opening the store, exact encoding, the derived view.

An adapter keeps two things per framework object (an Agents SDK item, a LangChain
message): the object itself, exactly as the framework handed it over, and a *view* of it
as an ordinary agentkeep message (role, searchable text, tool-call parts) so that search,
``agentkeep sessions show`` and the tool-call table see the conversation. The exact copy
is the JSON text the framework's own store would write, kept in the message's metadata;
the view is derived from it and may be lossy (NUL characters and lone surrogates, which
agentkeep text cannot hold, are dropped or replaced there, never in the copy).

The copy is a JSON object in the metadata when agentkeep's JSON can hold it exactly, and
otherwise (NUL characters, lone surrogates, NaN, non-string keys, very deep nesting) the
ASCII JSON text ``json.dumps`` makes of it, which reads back as the frameworks' stores
read theirs. When the object's main text can be put back from the message's ``content``
column, the copy keeps ``null`` in its place, so the text is stored once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable
from typing import Any

from ..chat import sql as chat_sql
from ..chat import store as chat_store
from ..chat.rules import prepare_message
from ..codec import MAX_TEXT_LENGTH, _check_json_value, check_id, dump_json
from ..errors import Conflict, InvalidInput, StoreClosed
from ..store import Store
from ..store import open as open_store
from . import sql

MAX_NAME_LENGTH = 1000
_MISSING = object()
_TOP_LEVEL = frozenset({"content", "output"})  # slots that are a key of the object itself
_raw_decode = json.JSONDecoder().raw_decode
_dump_strict = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                separators=(",", ":")).encode


def _storable(field: str, value: Any, dumped: str) -> bool:
    """Whether agentkeep's JSON rules (``dump_json``) accept ``value``, given its dump."""
    if "\\u0000" in dumped:  # an escaped NUL (or a backslash before u0000: a false alarm)
        return False
    if not dumped.isascii():
        try:
            dumped.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            return False
    if dumped.count("[") + dumped.count("{") > 60:  # might be nested too deeply: look
        try:
            _check_json_value(field, value, 1)
        except InvalidInput:
            return False
    return True


class NotSerialisable(InvalidInput, TypeError):
    """An item or message cannot be stored as JSON (also the ``TypeError`` the frameworks'
    own stores raise for it). Nothing was written."""

    __module__ = "agentkeep.integrations"


class SessionClosed(StoreClosed, RuntimeError):
    """The adapter's store was closed (also the ``RuntimeError`` ``SQLiteSession`` raises)."""

    __module__ = "agentkeep.integrations"


def resolve_store(store: Any, path_or_url: Any, options: dict[str, Any]) -> tuple[Store, bool]:
    """(the sync store to use, whether the adapter opened it and so must close it)."""
    if store is not None:
        if path_or_url is not None or options:
            raise InvalidInput("store", "give an open store or where to open one, not both")
        sync = getattr(store, "sync", store)  # an AsyncStore wraps a Store
        if not isinstance(sync, Store):
            raise InvalidInput("store", f"must be an agentkeep Store or AsyncStore, got "
                                        f"{type(store).__name__}")
        return sync, False
    if path_or_url is not None and not isinstance(path_or_url, (str, os.PathLike)):
        raise InvalidInput("path_or_url", "must be a directory path or a postgresql:// URL")
    return open_store(path_or_url, **options), True


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str):
        raise InvalidInput("session_id", f"must be a string, got {type(session_id).__name__}")
    check_id("session_id", session_id)
    return session_id  # type: ignore[return-value]


async def read_in_thread(store: Store, function: Callable[..., Any], *args: Any) -> Any:
    """Run a read in a worker thread. Unlike writes (``aio._call``) a cancelled read need
    not wait for its thread: it changes nothing, and the thread returns its connection."""
    return await asyncio.to_thread(run_open, store, function, *args)


def run_open(store: Store, function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function`` unless the store is closed; report a closed store as SessionClosed."""
    if store.is_closed:
        raise SessionClosed("the store of this session was closed")
    try:
        return function(*args)
    except SessionClosed:
        raise
    except StoreClosed as exc:
        raise SessionClosed(str(exc)) from exc


def encode_exact(field: str, value: Any) -> str:
    """The JSON text of ``value`` as the frameworks' stores write it (``json.dumps``).

    ASCII-only (``ensure_ascii``), so NUL characters and lone surrogates survive inside
    agentkeep's metadata as escapes and read back identical.
    """
    try:
        return json.dumps(value, separators=(",", ":"))
    except TypeError as exc:
        raise NotSerialisable(field, f"is not JSON-serialisable: {exc}") from None
    except ValueError as exc:  # a circular reference
        raise InvalidInput(field, f"cannot be stored as JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput(field, "is nested too deeply to be stored as JSON") from None


def clean_text(value: Any) -> str:
    """Text for the view: a str agentkeep can store (no NUL, valid Unicode, bounded)."""
    if not isinstance(value, str):
        return ""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:MAX_TEXT_LENGTH]


def is_clean_text(value: Any) -> bool:
    """Whether ``value`` can be stored as message content unchanged."""
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_TEXT_LENGTH:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_id(value: Any) -> str | None:
    """A provider call id usable in a part, or None when agentkeep could not store it."""
    if isinstance(value, str) and 0 < len(value) <= 200 and is_clean_text(value):
        return value
    return None


def clean_name(value: Any, default: str) -> str:
    name = clean_text(value)[:MAX_NAME_LENGTH] if isinstance(value, str) else ""
    return name or default


def arguments_of(value: Any) -> Any:
    """Tool-call arguments for the view: parsed JSON when it is, else the cleaned text."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return clean_text(value)
        value = parsed
    try:
        dump_json("arguments", value)
    except InvalidInput:
        return clean_text(json.dumps(value, default=str))
    return value


def text_of_blocks(content: Any) -> str:
    """The text of a content value: a str, or a list of str / ``{"text": ...}`` blocks."""
    if isinstance(content, str):
        return clean_text(content)
    if not isinstance(content, list):
        return ""
    texts = []
    for block in content:
        if isinstance(block, str):
            texts.append(clean_text(block))
        elif isinstance(block, dict):
            for key in ("text", "refusal"):
                if isinstance(block.get(key), str):
                    texts.append(clean_text(block[key]))
                    break
    return "\n".join(text for text in texts if text)


@functools.lru_cache(maxsize=64)
def _path(slot: str) -> tuple[Any, ...]:
    return tuple(int(step) if step.isdigit() else step for step in slot.split("."))


def take_text(value: dict[str, Any], slots: tuple[str, ...]) -> tuple[str | None, Any, str | None]:
    """Find the first slot (a dotted path like ``content`` or ``content.0.text``) holding
    clean text; return (that text, a copy of ``value`` with ``None`` there, the slot).

    Without one: (None, ``value``, None). Only the containers on the path are copied.
    """
    for slot in slots:
        steps = _path(slot)
        if len(steps) == 1:  # the common case, a key of the object itself
            candidate = value.get(slot)
            if is_clean_text(candidate):
                skeleton = dict(value)
                skeleton[slot] = None
                return candidate, skeleton, slot
            continue
        node: Any = value
        for step in steps[:-1]:
            if isinstance(step, int):
                if not (isinstance(node, list) and len(node) == 1):
                    break
            elif not isinstance(node, dict):
                break
            node = node[step] if isinstance(step, int) or step in node else None
        else:
            if isinstance(node, dict) and is_clean_text(node.get(steps[-1])):
                text = node[steps[-1]]
                return text, _replaced(value, steps, None), slot
    return None, value, None


def _replaced(node: Any, steps: tuple[Any, ...], new: Any) -> Any:
    if not steps:
        return new
    copy = list(node) if isinstance(node, list) else dict(node)
    copy[steps[0]] = _replaced(node[steps[0]], steps[1:], new)
    return copy


def put_text(value: Any, slot: str, text: str) -> Any:
    """Put ``text`` back at ``slot`` of a freshly decoded ``value`` (in place)."""
    steps = _path(slot)
    node = value
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = text
    return value


class ExactCopy:
    """Keeps framework objects exactly in message metadata, under keys named ``prefix``.

    ``prefix`` holds the object (or ``prefix_json`` its JSON text), ``prefix_text`` the
    slot whose text lives in the message's content.
    """

    def __init__(self, prefix: str, slots: tuple[str, ...]) -> None:
        self.object_key, self.json_key = prefix, f"{prefix}_json"
        self.text_key, self.slots = f"{prefix}_text", slots
        self._object_head, self._json_head = f'{{"{prefix}":', f'{{"{prefix}_json":'
        self._tails = {None: "}", **{slot: f',"{prefix}_text":"{slot}"}}' for slot in slots}}

    def encode(self, field: str, value: Any) -> tuple[str | None, str]:
        """(the text moved to the content column or None, the message's metadata JSON).

        Raises:
            NotSerialisable: ``value`` is not JSON-serialisable.
        """
        text, skeleton, slot = (take_text(value, self.slots) if isinstance(value, dict)
                                else (None, value, None))
        # The metadata JSON is put together as text around one C-speed dump (a Python walk
        # of each copy cost a third of an import); what agentkeep's JSON cannot hold (NUL,
        # lone surrogates, NaN, deep nesting) goes as the text json.dumps makes instead.
        try:
            body = _dump_strict(skeleton)
        except (TypeError, ValueError, RecursionError):
            body = None
        if body is not None and _storable(field, skeleton, body):
            return text, self._object_head + body + self._tails[slot]
        exact = json.dumps(encode_exact(field, skeleton))
        return text, self._json_head + exact + self._tails[slot]

    def decode(self, metadata: str | None, content: str) -> tuple[bool, Any]:
        """(whether the metadata JSON holds a copy, the object as it was given)."""
        if not metadata or metadata == "{}":
            return False, None
        try:  # raw_decode skips json.loads' two whitespace scans: 40 % of a small decode
            decoded = _raw_decode(metadata)[0]
        except ValueError:
            decoded = json.loads(metadata)
        value = decoded.get(self.object_key, _MISSING)
        if value is _MISSING:
            text = decoded.get(self.json_key)
            if text is None:
                return False, None
            value = json.loads(text)
        slot = decoded.get(self.text_key)
        if slot is not None:
            if slot in _TOP_LEVEL:
                value[slot] = content
            else:
                put_text(value, slot, content)
        return True, value


def decode_all(copy: ExactCopy, rows: list[tuple]) -> list[Any] | None:
    """The objects of (content, metadata) rows, or None when a row holds no copy."""
    # One loop with locals: loading a 20,000-message session is this loop.
    object_key, json_key, text_key = copy.object_key, copy.json_key, copy.text_key
    values = []
    append = values.append
    for content, metadata in rows:
        try:
            decoded = _raw_decode(metadata)[0]
        except (TypeError, ValueError):  # None, or whitespace first (not written here)
            return None
        value = decoded.get(object_key, _MISSING)
        if value is _MISSING:
            if json_key not in decoded:
                return None
            value = json.loads(decoded[json_key])
        slot = decoded.get(text_key)
        if slot is not None:
            if slot in _TOP_LEVEL:
                value[slot] = content
            else:
                put_text(value, slot, content)
        append(value)
    return values


def prepare(field: str, fields: dict[str, Any], metadata_json: str) -> dict[str, Any]:
    """A message validated by the chat rules, with metadata JSON already checked here."""
    try:
        prepared = prepare_message(fields)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}.{exc.field}", exc.problem) from None
    prepared["metadata_json"] = metadata_json
    return prepared


def append_creating(chat: Any, session_id: str, prepared: list[dict[str, Any]],
                    framework: str) -> None:
    """Append prepared messages at the session's head, creating the session (titled with
    its first user message) when there is none: one transaction either way (commits).

    This is the chat store's own append path, entered after validation: ``append_many``
    would walk each copy a second time (a third of an import's time, measured), and an
    append that fails on a missing session before a create cost each new session a
    transaction (a new session per call is the bulk-import case).

    Raises:
        Conflict: the session is soft-deleted.
    """
    try:
        _append_creating(chat, session_id, prepared, framework)
    except Conflict:
        # PostgreSQL: another connection created the session between the check and the
        # insert (the unique key said so, and rolled this transaction back): append.
        _append_creating(chat, session_id, prepared, framework)


def _append_creating(chat: Any, session_id: str, prepared: list[dict[str, Any]],
                     framework: str) -> None:
    with chat._write() as conn:
        row = conn.one(chat_sql.SESSION_EXISTS, (session_id,))
        if row is None:
            fields = chat._session_fields(title=title_of(prepared), provider=None, model=None,
                                          system_prompt=None, generation=None,
                                          metadata={"framework": framework})
            chat._insert_session(conn, fields, None, None, session_id)
        elif row[0] == "deleted":
            raise Conflict(f"session {session_id!r} was deleted in agentkeep; restore it "
                           "(agentkeep sessions restore) or clear it first")
        chat._append_rows(conn, session_id, prepared, chat_store._HEAD)


def read_view(chat: Any, session_id: str, last: int | None) -> list[tuple] | None:
    """(content, metadata) of the last ``last`` (or all) messages of a live linear
    session, oldest first; None when the session is not that (use history())."""
    with chat._read() as conn:
        if last is None:
            return conn.all(sql.ALL_LINEAR, (session_id,)) or None
        rows = conn.all(sql.RECENT_LINEAR, (session_id, last))
    if not rows:
        return None
    rows.reverse()
    return rows


def view_rows(messages: list[Any]) -> list[tuple]:
    """The (content, metadata, role, parts) rows of message records."""
    # A record keeps the row the driver returned: take the raw JSON, decoded once later.
    return [(m.content, m._metadata_text, m.role, m._row[7]) for m in messages]


def title_of(prepared: list[dict[str, Any]]) -> str | None:
    """A new session's title: the start of its first user message, on one line."""
    for message in prepared:
        if message["role"] == "user" and message["content"].strip():
            text = " ".join(message["content"].split())
            return text if len(text) <= 80 else text[:79] + "…"
    return None

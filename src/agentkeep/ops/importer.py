"""Import: check every record of an export file and write it in one transaction.

The file is read once, line by line. Each concern's rows are written inside one
transaction (opened at the concern's first record, committed only after the footer
has checked out), in batches, so a bad record anywhere, or a truncated file, leaves the
store exactly as it was, and memory stays flat in the messages: what is kept is one
batch of rows, the ids of the current session's messages, and per file the keys of the
blobs and the sessions seen with each session's parent (~100 bytes a session).

Checks, each reported as ``FILE:LINE: kind.column: problem``:

- the line is UTF-8 JSON; the first record is the header, of a known format, written by
  an agentkeep whose schema revisions this one knows; the last is the footer, whose
  counts match the records read;
- a record has a known kind and version, only known columns, every required column,
  and values of the column's type (text, integers, ISO-8601 times with a zone, JSON,
  base64 blobs whose SHA-256 and size match); a role or status is one the API takes;
- the rows a session owns follow its session record; a message's parent is an earlier
  message of the session, one deeper; tool calls, attachments and file versions refer
  to messages of the file or the store, and to blobs of the file or the store;
- a session's counters (messages, tokens, cost) and head agree with its messages;
- whatever the database still refuses (a duplicate id, say) is reported with the line
  of the row it refused.

Rows already in the store are never changed: an identical session (with everything it
owns), setting or blob is skipped, so importing a file twice imports it once; a session
or setting that exists with different content is a Conflict and nothing is imported.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import os
import stat
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from ..app.store import check_key, namespace_of
from ..backend import quote_name as quote
from ..chat.rules import MAX_TOKENS, ROLES, SESSION_STATUSES, TOOL_STATUSES, check_parts
from ..codec import check_id, check_text, dump_json, shown
from ..concerns import CONCERNS
from ..errors import AgentkeepError, Conflict, InvalidInput
from ..migrations import known_revisions
from .transfer import (
    CONTENT_ADDRESSED,
    FOOTER_KIND,
    FORMAT,
    HEADER_KIND,
    RECORD_VERSION,
    REQUIRED,
    ImportSummary,
    Progress,
    TableSpec,
    parse_time,
    store_plan,
)

UTC = timezone.utc
BATCH_ROWS = 5000  # rows buffered before they are written
# A store holding up to KNOWN_ROOTS sessions (root rows) has their keys read in one
# query at the import's first session (25-60 MB at most, by the ids' length; 0.12-0.16 s for
# 200,000 on PostgreSQL here, paid by a one-session import too) instead of a lookup per
# session of the file: a round trip each (10,000 sessions: 14.1-16.5 s -> 13.4-14.9 s on
# a local PostgreSQL, alternating runs; a network's round trips cost more).
KNOWN_ROOTS = 200_000
PROGRESS_LINES = 4096
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_COST_NANOS = 9 * 10**18  # the API takes costs below 9e9 dollars (rules.encode_cost)

#: The message tree: (parent column, depth column) of a table whose rows form a tree
#: within their session, parents first.
TREES = {"chat.messages": ("parent_id", "depth")}
#: Columns unique among the rows a session owns: kind -> column.
UNIQUE_IN_SESSION = {"chat.messages": "seq"}


#: Columns the API derives from another of the row: kind -> (column, how, from column).
#: A setting listed under another namespace than its key's would be missed by
#: settings.list(namespace=...).
DERIVED = {"app.settings": ("namespace", namespace_of, "key")}
#: Session counters and what they count: column -> (owned kind, summed column or None).
COUNTERS = {
    "chat.sessions": {
        "message_count": ("chat.messages", None),
        "input_tokens": ("chat.messages", "input_tokens"),
        "output_tokens": ("chat.messages", "output_tokens"),
        "cost_nanos": ("chat.messages", "cost_nanos"),
    },
}
#: Columns of a root row naming one of its own messages: column -> (kind, depth column).
HEADS = {"chat.sessions": {"head_id": ("chat.messages", "head_depth"),
                           "summary_id": ("chat.messages", None)}}

_MISSING: Any = object()


class _Bad(Exception):
    """A value's problem, turned into InvalidInput with the line and column."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_loads = json.JSONDecoder(parse_constant=_refuse_constant).decode
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# --- values: file -> database ------------------------------------------------------------

def _an_object(value: Any) -> None:
    if value.__class__ is not dict:
        raise _Bad(f"must be an object, got {_type(value)}")


def _parts(value: Any) -> None:
    if value.__class__ is not list:
        raise _Bad(f"must be an array of parts, got {_type(value)}")
    if value:
        try:
            check_parts(value)
        except InvalidInput as exc:
            raise _Bad(f"{exc.field}: {exc.problem}") from None


def _one_of(*choices: str) -> Any:
    def check(value: str) -> None:
        if value not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}, got {shown(value, 40)}")
    return check


def _as_shape(check: Any) -> Any:
    """A SHAPES check from one of the API's ``check(field, value)`` validators."""
    def shape(value: Any) -> None:
        try:
            check("", value)
        except InvalidInput as exc:
            raise _Bad(exc.problem) from None
    return shape


_an_id = _as_shape(check_id)


def _not_empty(value: str) -> None:
    if not value:
        raise _Bad("must not be empty")


def _between(low: int, high: int) -> Any:
    def check(value: int) -> None:
        if not low <= value <= high:
            raise _Bad(f"must be between {low:,} and {high:,}, got {value:,}")
    return check


#: Columns whose values the API accepts only in one shape ("concern.table.column"): a
#: file may hold nothing a reader of the store would trip over (an id the API refuses
#: makes a session nothing can show or delete), and a value the schema's CHECK would
#: refuse is named as the API names it. Rows of the same import are told apart by
#: their key; references to them are checked against the rows, not shaped again.
SHAPES = {
    "chat.sessions.generation": _an_object, "chat.sessions.metadata": _an_object,
    "chat.messages.parts": _parts, "chat.messages.usage": _an_object,
    "chat.messages.metadata": _an_object, "checkpoints.checkpoints.metadata": _an_object,
    "chat.sessions.status": _one_of(*SESSION_STATUSES), "chat.messages.role": _one_of(*ROLES),
    "chat.tool_calls.status": _one_of(*TOOL_STATUSES),
    "chat.sessions.id": _an_id, "chat.sessions.forked_from_id": _an_id,
    "chat.messages.id": _an_id, "chat.tool_calls.id": _an_id, "chat.attachments.id": _an_id,
    "chat.file_versions.id": _an_id, "chat.tool_calls.call_id": _an_id,
    "chat.tool_calls.name": _not_empty, "chat.file_versions.path": _not_empty,
    "app.settings.key": _as_shape(check_key),
    "chat.messages.seq": _between(1, INT_MAX),
    "chat.messages.input_tokens": _between(0, MAX_TOKENS),
    "chat.messages.output_tokens": _between(0, MAX_TOKENS),
    "chat.messages.cost_nanos": _between(0, MAX_COST_NANOS),
    # INTEGER columns: 32 bits on PostgreSQL, so the same bound on both backends.
    "chat.tool_calls.retry_count": _between(0, INT32_MAX),
    "chat.file_versions.version": _between(1, INT32_MAX),
    "chat.tool_calls.duration_ms": _between(0, INT_MAX),
}


def _converter(kind: str, nullable: bool, dialect: str, careful: bool,
               shape: Any = None) -> Any:
    """A function from a file value to the stored value; raises _Bad. ``shape`` checks a
    JSON value further (SHAPES).

    ``careful`` is for lines holding ``\\u`` escapes, the only way a NUL or a lone
    surrogate can reach a parsed string: those get the store's full text checks.
    """
    def null() -> Any:
        if nullable:
            return None
        raise _Bad("must not be null")

    if kind == "text":
        def text(value: Any) -> Any:
            if value.__class__ is str:
                if careful:
                    try:
                        check_text("", value)
                    except InvalidInput as exc:
                        raise _Bad(exc.problem) from None
                if shape is not None:
                    shape(value)
                return value
            if value is None:
                return null()
            raise _Bad(f"must be a string, got {_type(value)}")
        return text
    if kind in ("int", "float", "bool"):
        def number(value: Any) -> Any:
            if value.__class__ is int and kind != "bool":
                if not INT_MIN <= value <= INT_MAX:
                    raise _Bad("is out of the 64-bit integer range")
                if shape is not None:
                    shape(value)
                return value
            if value.__class__ is float and kind == "float":
                return value
            if value.__class__ is bool and kind == "bool":
                return value
            if value is None:
                return null()
            raise _Bad(f"must be {'an integer' if kind == 'int' else 'a ' + kind}, "
                       f"got {_type(value)}")
        return number
    if kind == "time":
        def moment(value: Any) -> Any:
            if value.__class__ is str:
                try:
                    if len(value) in (25, 32) and value[10] == "T" and value.endswith("+00:00"):
                        # Likely the stored form already (isoformat() of a UTC time). Stored
                        # re-formatted all the same: fromisoformat also reads other shapes
                        # of that length (week dates, a comma, no colons), which would sort
                        # wrongly as text and break the session list's second.
                        parsed = datetime.fromisoformat(value)
                        return parsed.isoformat() if dialect == "sqlite" else parsed
                    parsed = parse_time(value)
                except ValueError:
                    raise _Bad(f"must be an ISO-8601 time with a time zone, got {shown(value, 40)}"
                               ) from None
                try:
                    parsed = parsed.astimezone(UTC)
                except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
                    raise _Bad(f"is out of range in UTC, got {shown(value, 40)}") from None
                return parsed.isoformat() if dialect == "sqlite" else parsed
            if value is None:
                return null()
            raise _Bad(f"must be an ISO-8601 time string, got {_type(value)}")
        return moment
    if kind == "json":
        def document(value: Any) -> Any:
            # JSON null is SQL NULL in a nullable column (the store writes None so).
            if value is None and nullable:
                return None
            if shape is not None:
                shape(value)
            if careful:
                try:
                    return dump_json("", value)
                except InvalidInput as exc:
                    raise _Bad(exc.problem) from None
            if not value and value.__class__ in (dict, list):
                return "{}" if value.__class__ is dict else "[]"
            return _dumps(value)
        return document
    if kind == "blob":
        def blob(value: Any) -> Any:
            if value.__class__ is str:
                try:
                    return base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise _Bad("must be base64 text (RFC 4648, with padding)") from None
            if value is None:
                return null()
            raise _Bad(f"must be base64 text, got {_type(value)}")
        return blob
    raise AssertionError(kind)  # pragma: no cover


class _Slow(Exception):
    """The fast path cannot take this row: the careful path will say what is wrong."""


def _fast_converter(spec: TableSpec, dialect: str) -> Any:
    """A function from a row object to the stored values, for rows with every column and
    plain values; anything else raises _Slow (or KeyError) and takes the careful path.

    Generated for the table (each column's check inline): measured, it halves the time an
    import spends turning rows into values, which was a third of the import.
    """
    lines = ["def convert(row):", f"    if len(row) != {len(spec.columns)}: raise SLOW"]
    helpers: dict[str, Any] = {"SLOW": _Slow, "MIN": INT_MIN, "MAX": INT_MAX, "BAD": _Bad}
    names = []
    for i, column in enumerate(spec.columns):
        name = f"c{i}"
        names.append(name)
        lines.append(f"    {name} = row[{column.name!r}]")
        nullable = f" and {name} is not None" if column.nullable else ""
        shape = SHAPES.get(f"{spec.concern}.{spec.name}.{column.name}")
        if column.kind == "text" and shape is None:
            lines.append(f"    if {name}.__class__ is not str{nullable}: raise SLOW")
        elif column.kind == "int" and shape is None:
            lines.append(f"    if {name}.__class__ is int:")
            lines.append(f"        if not MIN <= {name} <= MAX: raise SLOW")
            lines.append(f"    elif {name} is not None or {not column.nullable}: raise SLOW")
        else:
            helpers[f"F{i}"] = _converter(column.kind, column.nullable, dialect, False, shape)
            lines.append(f"    {name} = F{i}({name})")
    lines.append(f"    return [{', '.join(names)}]")
    exec("\n".join(lines), helpers)  # noqa: S102 - generated from declared column names
    return helpers["convert"]


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(
        type(value), type(value).__name__)


def canonical(spec: TableSpec, values: Any) -> bytes:
    """A digest of a row as stored, the same on both dialects (times in UTC, JSON parsed)."""
    parts = []
    for column, value in zip(spec.columns, values, strict=True):
        if value is not None:
            if column.kind == "time":
                value = (parse_time(value) if isinstance(value, str) else value
                         ).astimezone(UTC).isoformat()
            elif column.kind == "json":
                value = _dumps(json.loads(value))
            elif column.kind == "blob":
                value = bytes(value)
        parts.append(value)
    return hashlib.sha256(repr(parts).encode()).digest()


# --- the import ----------------------------------------------------------------------------

class _Table:
    """A table's plan plus the statements and converters the import needs for it."""

    def __init__(self, spec: TableSpec, dialect: str) -> None:
        self.spec = spec
        self.names = [c.name for c in spec.columns]
        # [0]: plain lines; [1]: lines with \u escapes (full text checks)
        self.converters = tuple(
            [_converter(c.kind, c.nullable, dialect, careful,
                        SHAPES.get(f"{spec.concern}.{spec.name}.{c.name}"))
             for c in spec.columns]
            for careful in (False, True))
        columns = ", ".join(quote(n) for n in self.names)
        conflict = (f" ON CONFLICT ({', '.join(map(quote, spec.key))}) DO NOTHING"
                    if spec.kind in CONTENT_ADDRESSED else "")
        self.insert = (f"INSERT INTO {quote(spec.name)} ({columns}) VALUES "
                       f"({', '.join('?' * len(self.names))}){conflict}")
        self.copy = f"COPY {quote(spec.name)} ({columns}) FROM STDIN"
        keys = " AND ".join(f"{quote(k)} = ?" for k in spec.key)
        self.select = f"SELECT {columns} FROM {quote(spec.name)} WHERE {keys}"
        self.exists = f"SELECT 1 FROM {quote(spec.name)} WHERE {keys}"
        self.some_keys = f"SELECT {quote(spec.key[0])} FROM {quote(spec.name)} LIMIT ?"
        self.owned_rows = "" if spec.owner is None else (
            f"SELECT {columns} FROM {quote(spec.name)} WHERE {quote(spec.owner)} = ?")
        self.key_index = [self.names.index(k) for k in spec.key]
        self.fast = _fast_converter(spec, dialect)
        index = spec.positions
        self.owner_index = index.get(spec.owner) if spec.owner else None
        tree = TREES.get(spec.kind)
        self.tree = None if tree is None else (tree[0], index[tree[0]], tree[1], index[tree[1]])
        unique = UNIQUE_IN_SESSION.get(spec.kind)
        self.unique = None if unique is None else (unique, index[unique])
        derived = DERIVED.get(spec.kind)
        self.derived = None if derived is None else (
            derived[0], index[derived[0]], derived[1], index[derived[2]])
        # (position, column, target kind, target column) of the references to check
        self.references = [(index[column], column, f"{spec.concern}.{target}", target_column)
                           for column, target, target_column in spec.references
                           if column != spec.owner and target != spec.name]
        # (counter, position of the summed column or None for a count) this table feeds
        self.counters = [((spec.kind, summed), None if summed is None else index[summed])
                         for counters in COUNTERS.values()
                         for counted, summed in counters.values() if counted == spec.kind]

    def key(self, values: list[Any]) -> Any:
        if len(self.key_index) == 1:
            return values[self.key_index[0]]
        return tuple(values[i] for i in self.key_index)


@dataclass
class _Group:
    """The session being read: its line, whether it is new, and what its rows must match."""

    table: _Table
    key: str
    line: int
    values: list[Any]
    is_new: bool
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> key -> depth
    totals: dict[tuple[str, str | None], int] = field(default_factory=dict)
    digests: dict[str, list[int]] = field(default_factory=dict)  # kind -> [count, sum]
    unique: dict[str, set[Any]] = field(default_factory=dict)  # kind -> UNIQUE_IN_SESSION's


class Importer:
    def __init__(self, store: Any, *, concerns: Any = None,
                 progress: Progress | None = None) -> None:
        self.store = store
        self.backend = store._backend
        self.dialect = self.backend.dialect
        self.progress = progress
        if concerns is None:
            self.concerns = CONCERNS
        else:
            chosen = {concerns} if isinstance(concerns, str) else set(concerns)
            if not chosen or chosen - set(CONCERNS):
                raise InvalidInput("concerns", f"must name some of {', '.join(CONCERNS)}")
            self.concerns = tuple(c for c in CONCERNS if c in chosen)

    # --- reading the source ---------------------------------------------------------------
    def _open(self, source: Any, stack: ExitStack) -> tuple[Any, str, int | None]:
        if isinstance(source, (str, os.PathLike)):
            name = os.fspath(source)
            stream = stack.enter_context(open(name, "rb"))  # noqa: SIM115
            total: int | None = os.fstat(stream.fileno()).st_size
        else:
            stream = source
            name = getattr(source, "name", None)
            name = name if isinstance(name, str) else "<stream>"
            total = None
            try:  # an open regular file: its size is known
                status = os.fstat(stream.fileno())
                if stat.S_ISREG(status.st_mode):
                    total = status.st_size
            except (AttributeError, OSError, ValueError):
                pass
        if isinstance(stream, io.TextIOBase):
            return stream, name, total
        if not hasattr(stream, "peek"):
            stream = io.BufferedReader(stream)  # type: ignore[arg-type]
        if stream.peek(2)[:2] == b"\x1f\x8b":
            stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
            total = None
        return stream, name, total

    def _error(self, line: int, where: str, problem: str) -> InvalidInput:
        error = InvalidInput(f"{self.name}:{line}: {where}" if where else f"{self.name}:{line}",
                             problem)
        error.path, error.line = self.name, line  # type: ignore[attr-defined]
        return error

    def run(self, source: Any) -> ImportSummary:
        began = time.perf_counter()
        with ExitStack() as files:
            stream, self.name, total = self._open(source, files)
            self.summary = ImportSummary(self.name)
            with ExitStack() as transactions:
                self.transactions = transactions
                self._read(stream, total)
                if self.summary.written.get("chat.messages") and self.dialect == "sqlite":
                    # Inside the import's transaction: the imported messages are
                    # searchable the moment they are committed.
                    self.summary.indexed = self.store.chat.catch_up_index()
            if self.summary.written.get("chat.messages") and self.dialect == "postgresql":
                self._index_committed()
        self.summary.seconds = round(time.perf_counter() - began, 3)
        return self.summary

    def _index_committed(self) -> None:
        """PostgreSQL, after the commit: a long queue is indexed on several connections
        at once, which cannot see rows before they are committed (110,000 messages on two
        cores: 10.5 s in the import's transaction, 5.7 s after it). Should indexing fail
        or be interrupted, the import stands and its messages stay queued for the next
        search."""
        try:
            self.summary.indexed = self.store.chat.catch_up_index()
        except Exception as exc:  # noqa: BLE001 - reported in the summary, lost nothing
            self.summary.index_error = str(exc) or type(exc).__name__
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                "after the import was committed, while its messages were being indexed for "
                "search; the next search or `agentkeep optimize` indexes them") from None

    def _lines(self, stream: IO[Any]) -> Iterator[Any]:
        """The stream's lines; a damaged gzip stream is the file's fault, said as such."""
        number = 0
        try:
            for line in stream:
                number += 1
                yield line
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            cut = isinstance(exc, EOFError)
            raise self._error(number + 1, "", "the gzip data ends too soon: the file is "
                              "truncated; nothing was imported" if cut else
                              f"the gzip data is damaged ({exc}); nothing was imported"
                              ) from None

    def _read(self, stream: IO[Any], total: int | None) -> None:
        self.header: dict[str, Any] | None = None
        self.footer_line = 0
        self.counts: dict[str, int] = {}
        self.records = 0
        done = number = 0
        for number, raw in enumerate(self._lines(stream), 1):
            done += len(raw)
            if self.progress is not None and number % PROGRESS_LINES == 0:
                self.progress(done, total)
            if isinstance(raw, bytes):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._error(number, "", f"is not UTF-8 text (byte {exc.start + 1})"
                                      ) from None
            else:
                text = raw
            if not text.strip():
                continue
            if self.footer_line:
                raise self._error(number, "", f"comes after the footer record (line "
                                              f"{self.footer_line}); the file was altered")
            try:
                record = _loads(text)
            except RecursionError:
                raise self._error(number, "", "is nested too deeply to be an agentkeep "
                                              "record") from None
            except ValueError as exc:
                problem = getattr(exc, "msg", str(exc))
                column = getattr(exc, "colno", None)
                at = " column" if problem.endswith(" at") else " at column"
                raise self._error(number, "", f"is not JSON ({problem}"
                                  + (f"{at} {column})" if column else ")")) from None
            if record.__class__ is not dict:
                raise self._error(number, "", f"must be a JSON object, got {_type(record)}")
            if self.header is None:
                self._read_header(number, record)
            else:
                self._read_record(number, record, "\\u" in text)
        if self.header is None:
            raise self._error(max(number, 1), "", "the file is empty: no agentkeep export "
                                                  "header")
        if not self.footer_line:
            raise self._error(number, "", "the file ends without its footer record "
                                          f"({FOOTER_KIND}): it is truncated; nothing was "
                                          "imported")
        if self.progress is not None:
            self.progress(done, total)

    # --- header and footer ------------------------------------------------------------------
    def _read_header(self, number: int, record: dict[str, Any]) -> None:
        if record.get("kind") != HEADER_KIND:
            raise self._error(number, "kind", f"the first record must be the header "
                                              f"({HEADER_KIND!r}); this is not an agentkeep "
                                              "export file, or its start is missing")
        file_format = record.get("format")
        if file_format.__class__ is not int or file_format != FORMAT:
            raise self._error(number, "format", f"format {file_format!r} is not one this "
                                                f"agentkeep reads (it reads {FORMAT}); a newer "
                                                "agentkeep wrote it")
        revisions = record.get("revisions")
        if revisions.__class__ is not dict:
            raise self._error(number, "revisions", "must be an object of concern: revision")
        for concern, revision in revisions.items():
            if concern not in CONCERNS:
                raise self._error(number, f"revisions.{concern}", "is a concern this agentkeep "
                                  "does not know; a newer agentkeep wrote the file")
            if revision is not None and revision not in known_revisions(concern):
                raise self._error(number, f"revisions.{concern}", f"revision {revision!r} is "
                                  "newer than this agentkeep knows; upgrade agentkeep to import "
                                  "this file")
        self.header = record
        self.plans = {plan.concern: plan for plan in store_plan(self.backend, CONCERNS)}
        self.tables = {spec.kind: _Table(spec, self.dialect)
                       for plan in self.plans.values() for spec in plan.tables}
        self.conns: dict[str, Any] = {}
        self.buffers: dict[str, list[tuple[int, list[Any]]]] = {k: [] for k in self.tables}
        self.buffered = 0
        self.group: _Group | None = None
        # Keys of the rows that owned rows refer to (blobs): seen in the file, or found in
        # the store (a cache of lookups).
        self.referenced = {f"{spec.concern}.{target}" for table in self.tables.values()
                           for spec in [table.spec] if spec.role == "owned"
                           for _, target, _ in spec.references}
        self.file_keys: dict[str, set[Any]] = {kind: set() for kind in self.referenced}
        self.store_keys: dict[str, set[Any]] = {kind: set() for kind in self.referenced}
        self.buffered_roots: set[str] = set()
        self.stored_roots: dict[str, set[Any] | None] = {}  # see _stored_roots
        self.orphans: dict[str, list[tuple[str, str, int]]] = {}  # parent -> children
        self.fixups: list[tuple[str, str, str]] = []  # (column, child, parent)
        self.root_parents: dict[str, str | None] = {}  # a file session -> its parent

    def _read_footer(self, number: int, record: dict[str, Any]) -> None:
        self._end_group()
        records, counts = record.get("records"), record.get("counts")
        if records.__class__ is not int or counts.__class__ is not dict:
            raise self._error(number, "counts", "the footer needs 'records' (an integer) and "
                                                "'counts' (an object)")
        if records != self.records:
            raise self._error(number, "records", f"the footer counts {records} records but the "
                                                 f"file holds {self.records}; it was altered")
        mine = {k: n for k, n in self.counts.items() if n}
        theirs = {k: n for k, n in counts.items() if n}
        if mine != theirs:
            wrong = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise self._error(number, "counts", "the footer's counts differ from the records "
                                                f"of {', '.join(wrong)}; the file was altered")
        self._flush()
        for children in self.orphans.values():  # parents neither in the file nor the store
            self.summary.detached_sessions += [child for child, _, _ in children]
        self.footer_line = number
        self.summary.records = self.records

    # --- records ------------------------------------------------------------------------------
    def _read_record(self, number: int, record: dict[str, Any], careful: bool) -> None:
        kind = record.get("kind")
        table = self.tables.get(kind) if kind.__class__ is str else None
        if table is None:
            if kind == FOOTER_KIND:
                self._read_footer(number, record)
                return
            known = ", ".join(self.tables)
            raise self._error(number, "kind", f"unknown record kind {shown(kind)} (this "
                                              f"agentkeep knows {known})")
        version = record.get("v")
        if version.__class__ is not int or version != RECORD_VERSION:
            raise self._error(number, f"{kind}.v", f"unknown record version {shown(version, 40)} "
                                                   f"(this agentkeep reads {RECORD_VERSION})")
        row = record.get("row")
        if row.__class__ is not dict:
            raise self._error(number, f"{kind}.row", "must be an object of column: value")
        if len(record) != 3:
            extra = sorted(set(record) - {"kind", "v", "row"})
            raise self._error(number, f"{kind}.{extra[0]}", "is not a key of a record "
                                                             "(kind, v, row)")
        self.records += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        spec = table.spec
        if spec.concern not in self.concerns:
            return
        if careful:
            values = self._values(number, table, row, careful)
        else:
            try:
                values = table.fast(row)
            except (_Slow, _Bad, KeyError):  # the careful path names the problem
                values = self._values(number, table, row, careful)
        if table.derived is not None:
            column, position, derive, source = table.derived
            if values[position] != derive(values[source]):
                raise self._error(number, f"{spec.kind}.{column}",
                                  f"is {values[position]!r:.80}, but its row's "
                                  f"{spec.columns[source].name} makes it "
                                  f"{derive(values[source])!r:.80}")
        role = spec.role
        if role == "owned":
            self._owned_row(number, table, values)
        elif role == "root":
            self._end_group()
            self._root_row(number, table, values)
        else:
            self._end_group()
            self._keyed_row(number, table, values)
        if self.buffered >= BATCH_ROWS:
            self._flush()

    def _values(self, number: int, table: _Table, row: dict[str, Any], careful: bool
                ) -> list[Any]:
        values = []
        found = 0
        get = row.get
        for column, convert in zip(table.spec.columns, table.converters[careful], strict=True):
            value = get(column.name, _MISSING)
            if value is _MISSING:
                if column.default is REQUIRED:
                    raise self._error(number, f"{table.spec.kind}.{column.name}",
                                      "is required but missing")
                values.append(column.default)
                continue
            found += 1
            try:
                values.append(convert(value))
            except _Bad as exc:
                raise self._error(number, f"{table.spec.kind}.{column.name}", str(exc)
                                  ) from None
        if found != len(row):
            extra = sorted(set(row) - set(table.names))
            raise self._error(number, f"{table.spec.kind}.{extra[0]}",
                              f"is not a column of {table.spec.kind}")
        return values

    def _conn(self, concern: str) -> Any:
        """The concern's write transaction, opened at its first row and held to the end."""
        conn = self.conns.get(concern)
        if conn is None:
            conn = self.transactions.enter_context(self.backend.write(concern))
            self.conns[concern] = conn
        return conn

    def _stored(self, table: _Table, key: Any) -> tuple | None:
        conn = self._conn(table.spec.concern)
        return conn.one(table.select, key if isinstance(key, tuple) else (key,))

    def _buffer(self, number: int, table: _Table, values: list[Any]) -> None:
        self.buffers[table.spec.kind].append((number, values))
        self.buffered += 1

    def _keyed_row(self, number: int, table: _Table, values: list[Any]) -> None:
        """A shared or flat row: written if new, skipped if identical, else a Conflict."""
        spec = table.spec
        key = table.key(values)
        content = CONTENT_ADDRESSED.get(spec.kind)
        if content is not None:
            key_column, data_column, size_column = content
            data = values[spec.index(data_column)]
            if hashlib.sha256(data).hexdigest() != key:
                raise self._error(number, f"{spec.kind}.{key_column}",
                                  "is not the SHA-256 of the data")
            if values[spec.index(size_column)] != len(data):
                raise self._error(number, f"{spec.kind}.{size_column}",
                                  f"is not the size of the data ({len(data)} bytes)")
        seen = self.file_keys.get(spec.kind)
        if seen is not None:
            if key in seen:
                raise self._error(number, spec.kind, f"row {key!r:.80} appears twice in the "
                                                     "file")
            seen.add(key)
        stored = self._conn(spec.concern).one(table.select if content is None else table.exists,
                                              key if isinstance(key, tuple) else (key,))
        if stored is None:
            self._buffer(number, table, values)
            return
        if content is None and canonical(spec, stored) != canonical(spec, values):
            raise Conflict(f"{self.name}:{number}: {spec.kind} {key!r:.80} already exists in "
                           f"{self.backend.location(spec.concern)} with a different value; "
                           "nothing was imported (delete it there, or import without the "
                           f"{spec.concern} concern)")
        self._skip(spec.kind)

    def _skip(self, kind: str, count: int = 1) -> None:
        self.summary.skipped[kind] = self.summary.skipped.get(kind, 0) + count

    # --- sessions and what they own ---------------------------------------------------------
    def _root_row(self, number: int, table: _Table, values: list[Any]) -> None:
        spec = table.spec
        key = table.key(values)
        conn = self._conn(spec.concern)
        if key in self.buffered_roots:  # not written yet (after a write the database says it)
            raise self._error(number, spec.kind, f"session {key!r:.80} appears twice in the "
                                                 "file")
        stored = self._stored_roots(table, conn)
        # A key the set holds is asked about again (rare: a file meeting its store), as
        # another writer may have purged it since the set was read.
        is_new = ((stored is not None and key not in stored)
                  or conn.one(table.exists, (key,)) is None)
        # A reference to another root row (a sub-agent's parent session): kept when that
        # session is in the store or earlier in the file, set when it comes later in the
        # file, else left null, as if the parent had been deleted (ON DELETE SET NULL).
        for column, target, _ in spec.references:
            index = spec.index(column)
            parent = values[index]
            if target != spec.name or parent is None or parent in self.buffered_roots \
                    or (stored is not None and parent in stored) \
                    or conn.one(table.exists, (parent,)) is not None:
                continue
            values[index] = None
            if is_new:
                self.orphans.setdefault(parent, []).append((key, column, number))
        for column, target, _ in spec.references:
            if target == spec.name:
                self.root_parents[key] = values[spec.index(column)]
        self.group = _Group(table, key, number, values, is_new)
        if is_new:
            for child, column, line in self.orphans.pop(key, ()):
                if self._is_ancestor(child, key):
                    raise self._error(line, f"{spec.kind}.{column}",
                                      f"{key!r:.80} would make session {child!r:.80} its own "
                                      "ancestor")
                self.root_parents[child] = key
                self.fixups.append((column, child, key))
            self.buffered_roots.add(key)
            self._buffer(number, table, values)
        else:
            self._digest(table, values)

    def _stored_roots(self, table: _Table, conn: Any) -> set[Any] | None:
        """The keys of the store's rows of a root table, read once, at the import's first
        row of it; None when the store holds more than KNOWN_ROOTS. The set is not updated
        as the import writes: a session the file holds twice (or one another writer
        creates meanwhile) is refused by the database when it is written (a Conflict
        naming its line), and nothing is imported."""
        kind = table.spec.kind
        if kind not in self.stored_roots:
            rows = conn.all(table.some_keys, (KNOWN_ROOTS + 1,))
            self.stored_roots[kind] = ({row[0] for row in rows} if len(rows) <= KNOWN_ROOTS
                                       else None)
        return self.stored_roots[kind]

    def _digest(self, table: _Table, values: list[Any]) -> None:
        assert self.group is not None
        entry = self.group.digests.setdefault(table.spec.kind, [0, 0])
        entry[0] += 1
        entry[1] = (entry[1] + int.from_bytes(canonical(table.spec, values), "big")) % 2**256

    def _owned_row(self, number: int, table: _Table, values: list[Any]) -> None:
        spec = table.spec
        group = self.group
        owner = values[table.owner_index]
        if group is None or owner != group.key:
            raise self._error(number, f"{spec.kind}.{spec.owner}",
                              f"session {owner!r:.80} has no chat.sessions record before this "
                              "line (the rows of a session follow its record)")
        kind = spec.kind
        key = values[table.key_index[0]] if len(table.key_index) == 1 else table.key(values)
        ids = group.ids.get(kind)
        if ids is None:
            ids = group.ids[kind] = {}
        depth = 0
        if table.tree is not None:
            parent_column, parent_index, depth_column, depth_index = table.tree
            parent = values[parent_index]
            depth = values[depth_index]
            expected = 0 if parent is None else ids.get(parent)
            if expected is None:
                raise self._error(number, f"{kind}.{parent_column}",
                                  f"{parent!r:.80} is not an earlier row of the session")
            if parent is not None:
                expected += 1
            if depth != expected:
                raise self._error(number, f"{kind}.{depth_column}",
                                  f"is {depth}, but the row is at depth {expected}")
        if key in ids:
            raise self._error(number, kind, f"row {key!r:.80} appears twice in the session")
        if table.unique is not None:
            column, position = table.unique
            seen = group.unique.setdefault(kind, set())
            if values[position] in seen:
                raise self._error(number, f"{kind}.{column}",
                                  f"{values[position]!r:.80} appears twice in the session")
            seen.add(values[position])
        ids[key] = depth
        for index, column, target_kind, target_column in table.references:
            value = values[index]
            if value is not None:
                self._check_reference(number, spec, column, target_kind, target_column, value)
        totals = group.totals
        for counter, index in table.counters:
            totals[counter] = totals.get(counter, 0) + (1 if index is None else values[index])
        if group.is_new:
            self.buffers[kind].append((number, values))
            self.buffered += 1
        else:
            self._digest(table, values)

    def _is_ancestor(self, candidate: str, key: str) -> bool:
        """Whether ``candidate`` is ``key`` or one of its parents among the file's root
        rows (a stored session's parents are stored, so never a row of the file)."""
        seen: set[str] = set()
        node: str | None = key
        while node is not None and node not in seen:
            if node == candidate:
                return True
            seen.add(node)
            node = self.root_parents.get(node)
        return False

    def _check_reference(self, number: int, spec: TableSpec, column: str, target_kind: str,
                         target_column: str, value: Any) -> None:
        assert self.group is not None
        target_table = self.tables[target_kind]
        target = target_table.spec.name
        owned = target_table.spec.role == "owned"
        if owned and value in self.group.ids.get(target_kind, ()):
            return
        if not owned and (value in self.file_keys[target_kind]
                          or value in self.store_keys[target_kind]):
            return
        sql = f"SELECT 1 FROM {quote(target)} WHERE {quote(target_column)} = ?"
        if self._conn(spec.concern).one(sql, (value,)) is not None:
            if not owned:
                self.store_keys[target_kind].add(value)
            return
        raise self._error(number, f"{spec.kind}.{column}",
                          f"{target_kind} {shown(value, 80)} is neither earlier in the file nor in "
                          "the store")

    def _end_group(self) -> None:
        """Check the session just read against its rows; skip or refuse an existing one."""
        group, self.group = self.group, None
        if group is None:
            return
        spec = group.table.spec
        plan = self.plans[spec.concern]
        for column, (counted_kind, summed) in COUNTERS.get(spec.kind, {}).items():
            stored = group.values[spec.index(column)]
            actual = group.totals.get((counted_kind, summed), 0)
            if stored != actual:
                what = "rows" if summed is None else f"{summed} summed"
                raise self._error(group.line, f"{spec.kind}.{column}",
                                  f"is {stored}, but the file's {counted_kind} {what} for "
                                  f"this session give {actual}")
        for column, (head_kind, depth_column) in HEADS.get(spec.kind, {}).items():
            head = group.values[spec.index(column)]
            ids = group.ids.get(head_kind, {})
            if head is not None and head not in ids:
                raise self._error(group.line, f"{spec.kind}.{column}",
                                  f"{head!r:.80} is not a {head_kind} row of this session")
            if depth_column is not None:
                expected = -1 if head is None else ids[head]
                if group.values[spec.index(depth_column)] != expected:
                    raise self._error(group.line, f"{spec.kind}.{depth_column}",
                                      f"is {group.values[spec.index(depth_column)]}, but the "
                                      f"head is at depth {expected}")
        if group.is_new:
            return
        stored: dict[str, list[int]] = {}
        conn = self._conn(plan.concern)
        for spec_ in [spec] + plan.with_role("owned"):
            table = self.tables[spec_.kind]
            sql = table.select if spec_.role == "root" else table.owned_rows
            entry = stored.setdefault(spec_.kind, [0, 0])
            for row in conn.all(sql, (group.key,)):
                entry[0] += 1
                entry[1] = (entry[1] + int.from_bytes(canonical(spec_, row), "big")) % 2**256
        stored = {k: v for k, v in stored.items() if v[0]}
        if stored != group.digests:
            raise Conflict(f"{self.name}:{group.line}: session {group.key!r} already exists in "
                           f"{self.backend.location(plan.concern)} with different content; "
                           "nothing was imported (purge it there, or export without it)")
        for kind, (count, _) in group.digests.items():
            self._skip(kind, count)

    # --- writing --------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write the buffered rows, parents first (the plan's order)."""
        if not self.buffered:
            return
        for plan in self.plans.values():
            for spec in plan.tables:
                rows = self.buffers[spec.kind]
                if rows:
                    self._write(self.tables[spec.kind], rows)
                    self.summary.written[spec.kind] = (self.summary.written.get(spec.kind, 0)
                                                       + len(rows))
                    rows.clear()
                if spec.role == "root" and self.fixups:
                    conn = self._conn(spec.concern)
                    for column, child, parent in self.fixups:
                        conn.run(f"UPDATE {quote(spec.name)} SET {quote(column)} = ? "
                                 f"WHERE {quote(spec.key[0])} = ?", (parent, child))
                    self.fixups.clear()
        self.buffered = 0
        self.buffered_roots.clear()

    def _insert(self, conn: Any, table: _Table, rows: list[list[Any]]) -> None:
        if self.dialect == "postgresql" and table.spec.kind not in CONTENT_ADDRESSED:
            # COPY: several times faster than INSERT for a batch; new rows only, which
            # these are (existing ones were compared and skipped above).
            conn.copy(table.copy, rows)
        elif len(rows) == 1:
            conn.run(table.insert, rows[0])
        else:
            conn.many(table.insert, rows)

    def _write(self, table: _Table, rows: list[tuple[int, list[Any]]]) -> None:
        concern = table.spec.concern
        self._conn(concern)
        try:
            with self.backend.write(concern) as conn:  # a savepoint
                self._insert(conn, table, [values for _, values in rows])
            return
        except AgentkeepError as exc:
            if exc.__cause__ is None:
                raise
            batch_error = exc
        # Find the row the database refused, to name its line.
        for number, values in rows:
            try:
                with self.backend.write(concern) as conn:
                    self._insert(conn, table, [values])
            except AgentkeepError as exc:
                text = str(exc.__cause__ or exc).strip().splitlines()[0]
                if isinstance(exc, Conflict) and any(word in text.lower() for word in
                                                     ("unique", "duplicate")):
                    raise Conflict(f"{self.name}:{number}: {table.spec.kind} "
                                   f"{table.key(values)!r:.80} already exists in the store or "
                                   f"the file ({text}); nothing was imported") from exc
                raise self._error(number, table.spec.kind,
                                  f"the database refused the row: {text}") from exc
        raise batch_error


__all__ = ["Importer", "canonical"]

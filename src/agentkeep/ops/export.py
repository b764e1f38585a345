"""Export: stream a store's rows into the JSON Lines format of :mod:`agentkeep.ops.transfer`.

Each concern is read inside one read transaction (a snapshot: SQLite ``BEGIN``,
PostgreSQL ``REPEATABLE READ``), one cursor per table, fetched in batches (server-side
cursors on PostgreSQL), so memory stays flat however large the store is.

A grouped concern (chat) is written session by session without a query per session:
the sessions and every table they own are each read once, ordered by session id (the
owned tables by ``(session_id, ...)``, off their indexes), and merged as they stream.

Lines are built by string concatenation rather than ``json.dumps`` of a dict: JSON
columns are copied as the stored JSON text (already compact JSON, written by the store's
own encoder), which saves a parse and a serialisation per column; this is what makes the
export run at over 100,000 messages a second (see ``docs/export-format.md``).
"""

from __future__ import annotations

import binascii
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import IO, Any

from .. import __version__
from ..backend import quote_name as quote
from ..codec import check_id, check_time, second_of, shown
from ..concerns import CONCERNS
from ..errors import AgentkeepError, InvalidInput, NotFound
from ..migrations import current_revision
from .transfer import (
    FOOTER_KIND,
    FORMAT,
    HEADER_KIND,
    RECORD_VERSION,
    ConcernPlan,
    ExportSummary,
    Progress,
    TableSpec,
    parse_time,
    store_plan,
)

UTC = timezone.utc
FETCH_SIZE = {"sqlite": 2000, "postgresql": 10000}  # rows per fetch (a round trip on PG)
BLOB_FETCH_SIZE = 16  # rows per fetch of a table with a blob column (up to 64 MB a row)
WRITE_LINES = 2000  # lines per write to the output

_encode_str = json.encoder.encode_basestring  # C: quotes and escapes, keeps non-ASCII as is


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _any(value: Any) -> str:
    """A value of an unexpected type (SQLite is dynamically typed): exported as is, so that
    an import reports it with its line instead of the export failing half way."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return '"' + binascii.b2a_base64(bytes(value), newline=False).decode("ascii") + '"'
    if isinstance(value, datetime):
        return _encode_str(_utc_iso(value))
    try:
        return _dumps(value)
    except ValueError:  # NaN or infinity
        return _encode_str(str(value))


def _utc_iso(value: Any) -> str:
    if isinstance(value, str):
        value = parse_time(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _text(value: Any) -> str:
    if type(value) is str:
        return _encode_str(value)
    return "null" if value is None else _any(value)


def _int(value: Any) -> str:
    if type(value) is int:
        return str(value)
    return "null" if value is None else _any(value)


def _bool(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool or (type(value) is int and value in (0, 1)):
        return "true" if value else "false"
    return _any(value)


def _json(value: Any) -> str:
    if type(value) is str:
        return value  # the stored JSON text; see the module docstring
    return "null" if value is None else _any(value)


def _blob(value: Any) -> str:
    return "null" if value is None else _any(value)


def _time_sqlite(value: Any) -> str:
    # Stored by the store as isoformat() of a UTC time: 25 or 32 characters, "+00:00".
    if type(value) is str and len(value) in (25, 32) and value.endswith("+00:00"):
        return _encode_str(value)
    if value is None:
        return "null"
    try:
        return _encode_str(_utc_iso(value))
    except (ValueError, TypeError):
        return _any(value)


def _time_postgres(value: Any) -> str:
    if type(value) is datetime:
        return '"' + value.astimezone(UTC).isoformat() + '"'
    return "null" if value is None else _any(value)


_ENCODERS: dict[str, Callable[[Any], str]] = {
    "text": _text, "int": _int, "float": _any, "bool": _bool, "json": _json, "blob": _blob,
}


def _inline(kind: str, dialect: str, name: str) -> str:
    """The expression encoding the local ``name`` of a column of ``kind``: the common type
    is handled inline and anything else (None, an unexpected type) by a helper."""
    if kind == "text":
        return f"(S({name}) if {name}.__class__ is str else TEXT({name}))"
    if kind == "int":
        return f"(str({name}) if {name}.__class__ is int else INT({name}))"
    if kind == "json":
        return f"({name} if {name}.__class__ is str else JSON({name}))"
    if kind == "time" and dialect == "sqlite":
        return (f"(S({name}) if {name}.__class__ is str and {name}.endswith(UTC_SUFFIX) "
                f"else TIME({name}))")
    if kind == "time":  # the export's transaction sets TimeZone to UTC
        return (f"(Q + {name}.isoformat() + Q if {name}.__class__ is datetime "
                f"and {name}.tzinfo is UTC else TIME({name}))")
    return {"bool": f"BOOL({name})", "blob": f"BLOB({name})"}.get(kind, f"ANY({name})")


def line_encoder(spec: TableSpec, dialect: str) -> Callable[[tuple], str]:
    """A function turning a row (in ``spec.columns`` order) into one record line.

    The function is generated for the table (one f-string, each column inline): measured
    on the messages table, 2.5x faster than a loop over per-column encoders, which took
    most of the export's time.
    """
    names = [f"c{i}" for i in range(len(spec.columns))]
    literals: dict[str, str] = {}
    parts = []
    for i, (column, name) in enumerate(zip(spec.columns, names, strict=True)):
        prefix = ('{"kind":' + _encode_str(spec.kind) + ',"v":' + str(RECORD_VERSION)
                  + ',"row":{') if i == 0 else ","
        literals[f"L{i}"] = prefix + _encode_str(column.name) + ":"
        parts.append(f"{{L{i}}}{{{_inline(column.kind, dialect, name)}}}")
    literals["END"] = "}}\n"
    source = (f"def encode(row):\n    {', '.join(names)}, = row\n"
              f"    return f'{''.join(parts)}{{END}}'\n")
    namespace: dict[str, Any] = {
        **literals, "S": _encode_str, "TEXT": _text, "INT": _int, "JSON": _json,
        "TIME": _time_sqlite if dialect == "sqlite" else _time_postgres, "BOOL": _bool,
        "BLOB": _blob, "ANY": _any, "UTC_SUFFIX": "+00:00", "Q": '"',
        "datetime": datetime, "UTC": UTC}
    exec(source, namespace)  # noqa: S102 - generated from the declared column names only
    fast = namespace["encode"]
    json_columns = [i for i, c in enumerate(spec.columns) if c.kind == "json"]
    if not json_columns:
        return fast

    def encode(row: tuple) -> str:
        line = fast(row)
        # Stored JSON text is copied as is; text that was not written compactly (a newline
        # between tokens) would break the one-record-per-line rule, so re-serialise it.
        if line.count("\n") != 1 or "\r" in line:
            row = list(row)
            for i in json_columns:
                if isinstance(row[i], str):
                    try:
                        row[i] = _dumps(json.loads(row[i]))
                    except ValueError:  # not JSON at all: export it as a string
                        row[i] = _encode_str(row[i])
            line = fast(tuple(row))
        return line

    return encode


class _Writer:
    """Buffers lines and writes them in batches to a binary or a text stream."""

    def __init__(self, out: IO[Any], progress: Progress | None, total: int | None) -> None:
        self.out = out
        self.is_text = isinstance(out, io.TextIOBase)
        self.lines: list[str] = []
        self.bytes = 0
        self.records = 0
        self.progress = progress
        self.total = total

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= WRITE_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        text = "".join(self.lines)
        self.records += len(self.lines)
        self.lines.clear()  # in place: the export loops hold its append method
        data = text.encode("utf-8")
        self.bytes += len(data)
        self.out.write(text if self.is_text else data)
        if self.progress is not None:
            self.progress(self.records, self.total)


class _Snapshot:
    """One concern's read transaction and the cursors opened in it."""

    def __init__(self, backend: Any, concern: str) -> None:
        self.backend = backend
        self.concern = concern
        self.dialect = backend.dialect
        self.cursors: list[Any] = []

    def __enter__(self) -> _Snapshot:
        self._context = self.backend.read(self.concern)
        self.conn = self._context.__enter__()
        self.owns_transaction = not self.backend.in_transaction(self.concern)
        try:
            with self.backend.translated(self.concern):
                if self.owns_transaction and self.dialect == "sqlite":
                    self.conn.raw.execute("BEGIN")
                elif self.owns_transaction:
                    self.conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    # Times then arrive in UTC and are written without a conversion.
                    self.conn.raw.execute("SET LOCAL TimeZone = 'UTC'")
        except BaseException as exc:
            self._context.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def query(self, sql: str, params: tuple = (), *, size: int | None = None
              ) -> Iterator[tuple]:
        with self.backend.translated(self.concern):
            if self.dialect == "sqlite":
                cursor = self.conn.raw.execute(sql, params)
            else:
                from ..backend.postgres import to_psycopg

                # A server-side cursor: rows come FETCH_SIZE at a time, not all at once.
                cursor = self.conn.raw.cursor(name=f"agentkeep_export_{len(self.cursors)}")
                cursor.execute(to_psycopg(sql), params)
        self.cursors.append(cursor)
        return self._rows(cursor, size or FETCH_SIZE[self.dialect])

    def _rows(self, cursor: Any, size: int) -> Iterator[tuple]:
        with self.backend.translated(self.concern):
            while True:
                batch = cursor.fetchmany(size)
                if not batch:
                    return
                yield from batch

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self.conn.one(sql, params)

    def __exit__(self, *exc_info: Any) -> None:
        try:
            for cursor in self.cursors:
                try:
                    cursor.close()
                except Exception:  # noqa: BLE001 - closing; the transaction ends next
                    pass
            with self.backend.translated(self.concern):
                if self.owns_transaction:
                    self.conn.raw.execute("ROLLBACK")  # read-only: nothing to keep
        finally:
            self._context.__exit__(*exc_info)


class Exporter:
    """One export: the selection, then :meth:`run` to write it."""

    def __init__(self, store: Any, *, session_ids: Any = None, since: Any = None,
                 concerns: Any = None, progress: Progress | None = None) -> None:
        self.store = store
        self.backend = store._backend
        self.dialect = self.backend.dialect
        self.progress = progress
        self.session_ids = self._check_ids(session_ids)
        self.since = self._check_since(since)
        self.selected = self.session_ids is not None or self.since is not None
        self.concerns = self._check_concerns(concerns)

    # --- the selection ---------------------------------------------------------------
    @staticmethod
    def _check_ids(session_ids: Any) -> list[str] | None:
        if session_ids is None:
            return None
        if isinstance(session_ids, (str, bytes)):
            raise InvalidInput("session_ids", "must be a list of session ids, not one string")
        try:
            ids = list(session_ids)
        except TypeError:
            raise InvalidInput("session_ids", "must be a list of session ids") from None
        if not ids:
            raise InvalidInput("session_ids", "must name at least one session")
        for index, value in enumerate(ids):
            check_id(f"session_ids[{index}]", value)
        return list(dict.fromkeys(ids))

    @staticmethod
    def _check_since(since: Any) -> datetime | None:
        if since is None:
            return None
        if isinstance(since, str):
            try:
                since = parse_time(since.strip())
            except ValueError:
                raise InvalidInput("since", f"must be an ISO-8601 time with a time zone, e.g. "
                                            f"2025-06-01T00:00:00Z; got {shown(since)}") from None
        if not isinstance(since, datetime):
            raise InvalidInput("since", f"must be a datetime, got {type(since).__name__}")
        if since.tzinfo is None or since.utcoffset() is None:
            raise InvalidInput("since", "must be timezone-aware (e.g. 2025-06-01T00:00:00Z)")
        return check_time("since", since)

    def _check_concerns(self, concerns: Any) -> tuple[str, ...]:
        if concerns is None:
            return ("chat",) if self.selected else CONCERNS
        if isinstance(concerns, str):
            concerns = [concerns]
        chosen = set(concerns)
        unknown = chosen - set(CONCERNS)
        if unknown or not chosen:
            raise InvalidInput("concerns", f"must name some of {', '.join(CONCERNS)}; "
                                           f"got {', '.join(sorted(map(str, unknown))) or 'none'}")
        if self.selected and "chat" not in chosen:
            raise InvalidInput("concerns", "a selection of sessions needs the chat concern")
        return tuple(c for c in CONCERNS if c in chosen)

    def _selection(self, root: TableSpec) -> tuple[str, tuple]:
        """A WHERE condition on the root table and its parameters ('' for everything)."""
        clauses, params = [], []
        if self.session_ids is not None:
            clauses.append(f"{quote(root.key[0])} IN ({', '.join('?' * len(self.session_ids))})")
            params += self.session_ids
        if self.since is not None:  # the bound on the indexed second lets it use the index
            clauses.append("active_second >= ? AND active_at >= ?")
            params += [second_of(self.since, self.dialect),
                       self.since.isoformat() if self.dialect == "sqlite" else self.since]
        return " AND ".join(clauses), tuple(params)

    # --- writing ------------------------------------------------------------------------
    def run(self, out: IO[Any]) -> ExportSummary:
        began = time.perf_counter()
        plans = store_plan(self.backend, self.concerns)
        summary = ExportSummary(self.dialect)
        for plan in plans:
            for spec in plan.tables:
                summary.counts[spec.kind] = 0
        writer = _Writer(out, self.progress, None)
        revisions = {concern: current_revision(self.backend, concern)
                     for concern in self.concerns}
        header = {"kind": HEADER_KIND, "format": FORMAT, "agentkeep": __version__,
                  "dialect": self.dialect, "revisions": revisions,
                  "created_at": datetime.now(UTC).isoformat(),
                  "selection": None if not self.selected else {
                      "session_ids": self.session_ids,
                      "since": self.since.isoformat() if self.since else None},
                  "concerns": list(self.concerns)}
        first = True
        for plan in plans:
            with _Snapshot(self.backend, plan.concern) as snapshot:
                if first:
                    self._check_selected(snapshot, plan)
                    if self.progress is not None:
                        writer.total = self._total(plans, snapshot)
                    writer.add(_dumps(header) + "\n")
                    first = False
                self._export_concern(snapshot, plan, writer, summary.counts)
        footer = {"kind": FOOTER_KIND, "records": sum(summary.counts.values()),
                  "counts": summary.counts}
        writer.add(_dumps(footer) + "\n")
        writer.flush()
        out.flush()
        summary.records = footer["records"]
        summary.bytes = writer.bytes
        summary.seconds = round(time.perf_counter() - began, 3)
        return summary

    def _check_selected(self, snapshot: _Snapshot, plan: ConcernPlan) -> None:
        if self.session_ids is None or plan.root is None:
            return
        root = plan.root
        marks = ", ".join("?" * len(self.session_ids))
        found = {row[0] for row in snapshot.conn.all(
            f"SELECT {quote(root.key[0])} FROM {quote(root.name)} "
            f"WHERE {quote(root.key[0])} IN ({marks})", tuple(self.session_ids))}
        missing = [i for i in self.session_ids if i not in found]
        if missing:
            raise NotFound(f"no session {', '.join(map(repr, missing[:5]))}"
                           + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))

    def _total(self, plans: list[ConcernPlan], snapshot: _Snapshot) -> int:
        """Rows to export, for the progress bar (counted in the first snapshot)."""
        total = 2
        for plan in plans:
            for spec in plan.tables:
                sql, params = self._table_query(plan, spec, "count(*)")
                if plan.concern == snapshot.concern:
                    total += snapshot.one(sql, params)[0]
                else:
                    with self.backend.read(plan.concern) as conn:
                        total += conn.one(sql, params)[0]
        return total

    def _table_query(self, plan: ConcernPlan, spec: TableSpec, columns: str | None = None
                     ) -> tuple[str, tuple]:
        """The SELECT of ``spec``'s exported rows in file order."""
        select = columns or ", ".join(quote(c.name) for c in spec.columns)
        sql = f"SELECT {select} FROM {quote(spec.name)}"
        root = plan.root
        where, params = ("", ()) if root is None or not self.selected else self._selection(root)
        if where and spec.role == "root":
            sql += f" WHERE {where}"
        elif where and spec.role == "owned":
            sql += (f" WHERE {quote(spec.owner)} IN (SELECT {quote(root.key[0])} "
                    f"FROM {quote(root.name)} WHERE {where})")
        elif where and spec.role == "shared":
            # Only the rows that the selected sessions' rows refer to (their blobs).
            users = [f"SELECT {quote(column)} FROM {quote(owned.name)} WHERE "
                     f"{quote(owned.owner)} IN (SELECT {quote(root.key[0])} FROM "
                     f"{quote(root.name)} WHERE {where})"
                     for owned in plan.with_role("owned")
                     for column, target, _ in owned.references if target == spec.name]
            if not users:
                return sql + " WHERE 1 = 0", ()
            sql += f" WHERE {quote(spec.key[0])} IN ({' UNION '.join(users)})"
            params = params * len(users)
        if columns is None:
            sql += " ORDER BY " + ", ".join(quote(name) for name in spec.order)
        return sql, tuple(params)

    def _export_concern(self, snapshot: _Snapshot, plan: ConcernPlan, writer: _Writer,
                        counts: dict[str, int]) -> None:
        add = writer.add
        lines, append = writer.lines, writer.lines.append
        for spec in plan.tables:
            if spec.role in ("flat", "shared"):
                encode = line_encoder(spec, self.dialect)
                count = 0
                size = BLOB_FETCH_SIZE if any(c.kind == "blob" for c in spec.columns) else None
                for row in snapshot.query(*self._table_query(plan, spec), size=size):
                    add(encode(row))
                    count += 1
                counts[spec.kind] += count
        root = plan.root
        if root is None:
            return
        owned = plan.with_role("owned")
        root_encode = line_encoder(root, self.dialect)
        root_key = root.index(root.key[0])
        streams = [snapshot.query(*self._table_query(plan, spec)) for spec in owned]
        encoders = [line_encoder(spec, self.dialect) for spec in owned]
        owners = [spec.index(spec.owner) for spec in owned]
        pending = [next(stream, None) for stream in streams]
        written = [0] * len(owned)
        roots = 0
        # Every stream is ordered by session id by the database (same collation), so the
        # rows of a session are the next ones in each stream: a merge, no per-session query.
        for root_row in snapshot.query(*self._table_query(plan, root)):
            append(root_encode(root_row))
            roots += 1
            session_id = root_row[root_key]
            for i, stream in enumerate(streams):
                row, owner, encode = pending[i], owners[i], encoders[i]
                count = 0
                while row is not None and row[owner] == session_id:
                    append(encode(row))
                    count += 1
                    row = next(stream, None)
                    if count % WRITE_LINES == 0:
                        writer.flush()
                pending[i] = row
                written[i] += count
            if len(lines) >= WRITE_LINES:
                writer.flush()
        for i, row in enumerate(pending):
            if row is not None:  # pragma: no cover - only if the orders ever disagree
                raise AgentkeepError(f"export of {owned[i].kind} stopped at a row of session "
                                     f"{row[owners[i]]!r} that is not in the session order; "
                                     "nothing complete was written")
        counts[root.kind] += roots
        for spec, count in zip(owned, written, strict=True):
            counts[spec.kind] += count

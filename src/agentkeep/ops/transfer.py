"""Export a store to JSON Lines and import it back, on either backend.

The file format is documented in ``docs/export-format.md``; in short::

    {"kind": "agentkeep-export", "format": 1, "agentkeep": "0.1.0", ...}   header
    {"kind": "chat.blobs", "v": 1, "row": {...}}                            shared rows
    {"kind": "chat.sessions", "v": 1, "row": {...}}                         a session,
    {"kind": "chat.messages", "v": 1, "row": {...}}                         then what it
    ...                                                                     owns
    {"kind": "app.settings", "v": 1, "row": {...}}                          other concerns
    {"kind": "agentkeep-export-end", "records": N, "counts": {...}}         footer

The tables and columns come from each concern's declared schema (``tables.py``),
checked against the live database, so a column added by a migration is exported and
imported without a change here. Derived data is left out and rebuilt: the search index
and its high-water mark (``search_state``), ``messages.pk`` (the internal row key,
renumbered on import) and ``alembic_version``.

This module holds what export and import share (the table plan, the record kinds, the
summaries); the work is in :mod:`agentkeep.ops.export` and :mod:`agentkeep.ops.importer`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import IO, Any

from ..errors import StoreCorrupt

#: The version of the file layout (header, records, footer). A reader refuses others.
FORMAT = 1
#: The version of a record's row shape; per record so that one table can change alone.
RECORD_VERSION = 1
HEADER_KIND = "agentkeep-export"
FOOTER_KIND = "agentkeep-export-end"

#: A concern whose rows are grouped under a root table: each root row is followed by the
#: rows that belong to it, so that an import can check and write one session at a time.
GROUP_ROOTS = {"chat": "sessions"}
#: Derived tables, rebuilt by the store (the FTS5 high-water mark).
DERIVED_TABLES = frozenset({"chat.search_state"})
#: Derived columns: ``messages.pk`` is the row key of the search index, renumbered on import;
#: ``sessions.active_second`` follows ``active_at`` (chat_0004).
DERIVED_COLUMNS = {"chat.messages": frozenset({"pk"}),
                   "chat.sessions": frozenset({"active_second"})}
#: Tables keyed by a hash of their content: an existing row is the same row.
CONTENT_ADDRESSED = {"chat.blobs": ("sha256", "data", "size")}

REQUIRED: Any = object()

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class ColumnSpec:
    """A column as the format sees it: ``kind`` is text, int, float, bool, time, json or blob."""

    name: str
    kind: str
    nullable: bool
    default: Any = REQUIRED  # the stored value when a row leaves the column out


@dataclass(frozen=True)
class TableSpec:
    """An exported table and its place in the file."""

    concern: str
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]  # identifies a row (primary key, or the unique id if that is derived)
    order: tuple[str, ...]  # the order of rows in the file
    role: str  # "root", "owned" (by a root row), "shared" (in a grouped concern), "flat"
    owner: str | None = None  # the column naming the root row, for "owned" tables
    # (column, target table, target column) of every foreign key
    references: tuple[tuple[str, str, str], ...] = ()

    @cached_property
    def kind(self) -> str:
        return f"{self.concern}.{self.name}"

    @cached_property
    def positions(self) -> dict[str, int]:
        return {c.name: i for i, c in enumerate(self.columns)}

    def index(self, column: str) -> int:
        return self.positions[column]


@dataclass(frozen=True)
class ConcernPlan:
    """The tables of one concern in file order."""

    concern: str
    tables: tuple[TableSpec, ...]

    @property
    def root(self) -> TableSpec | None:
        return next((t for t in self.tables if t.role == "root"), None)

    def with_role(self, role: str) -> list[TableSpec]:
        return [t for t in self.tables if t.role == role]


@dataclass
class ExportSummary:
    """What :func:`export_store` wrote."""

    dialect: str
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0

    @property
    def sessions(self) -> int:
        return self.counts.get("chat.sessions", 0)

    @property
    def messages(self) -> int:
        return self.counts.get("chat.messages", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "records": self.records, "counts": self.counts,
                "sessions": self.sessions, "messages": self.messages, "bytes": self.bytes,
                "seconds": self.seconds}


@dataclass
class ImportSummary:
    """What :func:`import_store` did. ``written`` and ``skipped`` count rows per kind."""

    source: str
    records: int = 0
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    #: sessions whose parent session is neither in the file nor in the store: imported
    #: with ``parent_id`` null, as if the parent had been deleted
    detached_sessions: list[str] = field(default_factory=list)
    indexed: int = 0  # messages added to the search index
    #: PostgreSQL: why indexing the committed messages failed (they stay queued and the
    #: next search, or ``agentkeep optimize``, indexes them); None when it did not
    index_error: str | None = None
    seconds: float = 0.0

    @property
    def sessions(self) -> int:
        return self.written.get("chat.sessions", 0)

    @property
    def messages(self) -> int:
        return self.written.get("chat.messages", 0)

    @property
    def sessions_skipped(self) -> int:
        return self.skipped.get("chat.sessions", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "records": self.records, "written": self.written,
                "skipped": self.skipped, "sessions": self.sessions,
                "messages": self.messages, "sessions_skipped": self.sessions_skipped,
                "detached_sessions": self.detached_sessions, "indexed": self.indexed,
                "index_error": self.index_error, "seconds": self.seconds}


# --- the table plan ----------------------------------------------------------------------

# The live columns of a table, to check the declared schema against the database.
_SQLITE_COLUMNS = "SELECT name FROM pragma_table_info(?)"
_POSTGRES_COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = ?"
)


def _column_kind(column: Any) -> str:
    from sqlalchemy.dialects import postgresql

    name = column.type.compile(dialect=postgresql.dialect()).upper()
    if name.startswith("TIMESTAMP"):
        return "time"
    if name.startswith("JSON"):
        return "json"
    if name == "BYTEA":
        return "blob"
    if name in ("BIGINT", "INTEGER", "SMALLINT"):
        return "int"
    if name == "BOOLEAN":
        return "bool"
    if name.startswith(("FLOAT", "DOUBLE", "REAL", "NUMERIC")):
        return "float"
    return "text"


def _default(column: Any, kind: str) -> Any:
    """The value stored when a row leaves the column out (its server default)."""
    default = column.server_default
    arg = getattr(default, "arg", None)
    if isinstance(arg, str):
        if kind == "int":
            return int(arg)
        if kind == "bool":
            return arg.lower() in ("1", "true")
        if kind == "json":
            json.loads(arg)
        return arg
    return None if column.nullable else REQUIRED


def _declared(concern: str) -> Any:
    return importlib.import_module(f"agentkeep.{concern}.tables").metadata


def concern_plan(concern: str, live_columns: Callable[[str], set[str]]) -> ConcernPlan:
    """The exported tables of ``concern`` in file order, from its declared schema.

    ``live_columns(table)`` gives the columns the database has; a declared column that is
    missing there means the store is not at the schema this agentkeep declares.
    """
    metadata = _declared(concern)
    root_name = GROUP_ROOTS.get(concern)
    specs = []
    for table in metadata.sorted_tables:  # parents before children (foreign keys)
        kind = f"{concern}.{table.name}"
        if kind in DERIVED_TABLES:
            continue
        derived = DERIVED_COLUMNS.get(kind, frozenset())
        live = live_columns(table.name)
        missing = [c.name for c in table.columns if c.name not in live and c.name not in derived]
        if missing:
            raise StoreCorrupt(f"table {kind} lacks the declared columns {', '.join(missing)}; "
                               "run `agentkeep migrate check`")
        columns = []
        for column in table.columns:
            if column.name in derived:
                continue
            col_kind = _column_kind(column)
            columns.append(ColumnSpec(column.name, col_kind, bool(column.nullable),
                                      _default(column, col_kind)))
        names = {c.name for c in columns}
        key = tuple(c.name for c in table.primary_key.columns)
        uniques = [tuple(c.name for c in constraint.columns)
                   for constraint in table.constraints
                   if type(constraint).__name__ == "UniqueConstraint"]
        uniques += [(c.name,) for c in table.columns if c.unique]
        if not set(key) <= names:
            key = next(u for u in uniques if len(u) == 1)
        references = tuple((fk.parent.name, fk.column.table.name, fk.column.name)
                           for fk in table.foreign_keys)
        owner = next((col for col, target, _ in references if target == root_name
                      and not table.columns[col].nullable), None) if root_name else None
        if root_name is None:
            role, order = "flat", key
        elif table.name == root_name:
            role, order = "root", key
        elif owner is not None:
            role = "owned"
            # Within a session, the owner's own unique order when there is one (messages:
            # (session_id, seq), which puts every parent before its children).
            order = next((u for u in uniques if u[0] == owner and len(u) > 1),
                         (owner, *key))
        else:
            role, order = "shared", key
        specs.append(TableSpec(concern, table.name, tuple(columns), key, tuple(order), role,
                               owner, references))
    if root_name is not None:
        rank = {"shared": 0, "root": 1, "owned": 2}
        specs.sort(key=lambda spec: rank[spec.role])  # stable: keeps foreign-key order
    return ConcernPlan(concern, tuple(specs))


def store_plan(backend: Any, concerns: tuple[str, ...]) -> list[ConcernPlan]:
    """The plan of every concern in ``concerns``, checked against the live database."""
    plans = []
    for concern in concerns:
        with backend.read(concern) as conn:
            sql = _SQLITE_COLUMNS if backend.dialect == "sqlite" else _POSTGRES_COLUMNS

            def live(table: str, conn: Any = conn, sql: str = sql) -> set[str]:
                return {row[0] for row in conn.all(sql, (table,))}

            plans.append(concern_plan(concern, live))
    return plans


def parse_time(value: str) -> datetime:
    """An ISO-8601 time with a zone (``Z`` accepted), or ValueError."""
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("has no time zone")
    return moment


# --- the public functions ------------------------------------------------------------------

def export_store(store: Any, out: IO[Any], *, session_ids: Any = None, since: Any = None,
                 concerns: Any = None, progress: Progress | None = None) -> ExportSummary:
    """Write the store (or a selection of sessions) to ``out`` as JSON Lines (read-only).

    Each concern is read in one snapshot (one read transaction); rows stream from the
    database to ``out`` in batches, so memory does not grow with the store.

    Args:
        out: a binary or text stream; the file is UTF-8 either way.
        session_ids: export only these sessions (with everything they own and the blobs
            they use). Raises NotFound when one does not exist.
        since: a timezone-aware datetime or ISO-8601 text: only the sessions active since
            then (``active_at``). With ``session_ids`` too, a session must match both.
        concerns: the concerns to export. Default: every concern, or only ``chat`` when
            sessions are selected.
        progress: called as ``progress(records_written, records_total)`` now and then.

    Returns:
        An :class:`ExportSummary`.

    Raises:
        InvalidInput: a bad selection. NotFound: a selected session does not exist.
    """
    from .export import Exporter

    return Exporter(store, session_ids=session_ids, since=since, concerns=concerns,
                    progress=progress).run(out)


def import_store(store: Any, source: Any, *, concerns: Any = None,
                 progress: Progress | None = None) -> ImportSummary:
    """Import an export file into ``store`` (commits once, at the end).

    Every record is checked (kind, version, columns and their types, references to
    sessions, messages and blobs, session counters) before the file's rows are committed:
    the whole file is written in one transaction per concern, so a bad or truncated file
    leaves the store exactly as it was. Rows already in the store are never changed:
    an identical session, setting or blob is skipped, a different one is a Conflict.
    The imported messages are indexed for search: on SQLite in the same transaction; on
    PostgreSQL right after the commit (a large import on several connections at once; a
    failure there leaves the import committed and is reported in ``index_error``).

    Args:
        source: a path, or a binary stream (gzip-compressed files are recognised).
        concerns: import only these concerns' records (the others are still checked
            for kind and version).
        progress: called as ``progress(bytes_read, bytes_total or None)`` now and then.

    Returns:
        An :class:`ImportSummary`.

    Raises:
        InvalidInput: a bad record; the message starts with ``FILE:LINE:`` and names the
            field. Conflict: a session or setting exists with different content.
    """
    from .importer import Importer

    return Importer(store, concerns=concerns, progress=progress).run(source)


__all__ = [
    "FORMAT",
    "RECORD_VERSION",
    "ExportSummary",
    "ImportSummary",
    "export_store",
    "import_store",
]

"""Storage statistics of a whole store, and the catalogue reads the other operations share.

``stats(store)`` reports, per concern: the rows of every table (exact ``count(*)``) and
the room each takes, and for the chat concern the messages of each of the last 30 days,
the largest sessions and the token and cost totals by provider and model.

- SQLite: bytes per table and per index from the ``dbstat`` virtual table when SQLite
  was built with it (else ``None``); an FTS5 index is one row (``kind: "search index"``)
  summing its shadow tables. Per concern: ``page_count × page_size``, the free pages,
  the file and its ``-wal`` on disk.
- PostgreSQL: ``pg_table_size`` (TOAST included) and ``pg_indexes_size`` of every table
  in the concern's schema.

Table names come from the database catalogue, not from a list in the code, so a table
added by a migration shows up without a change here. Read-only.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from ..backend import quote_name as quote
from ..codec import check_limit, load_time
from ..errors import AgentkeepError

UTC = timezone.utc
ACTIVITY_DAYS = 30
LARGEST_SESSIONS = 10

# --- catalogue ---------------------------------------------------------------------------
# Every table and index with the table it belongs to; `sql` tells virtual tables apart.
SQLITE_OBJECTS = ("SELECT type, name, tbl_name, sql FROM sqlite_master "
                  "WHERE type IN ('table', 'index') ORDER BY name")
# Bytes per table or index, from the pages each one owns.
SQLITE_DBSTAT = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
POSTGRES_TABLES = (
    "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = ? AND c.relkind IN ('r', 'p') ORDER BY c.relname"
)
# Foreign keys of the concern's schema: (child table, child column, parent table, parent
# column), one row per column pair.
POSTGRES_FOREIGN_KEYS = (
    "SELECT child.relname, ca.attname, parent.relname, pa.attname "
    "FROM pg_constraint k "
    "JOIN pg_class child ON child.oid = k.conrelid "
    "JOIN pg_class parent ON parent.oid = k.confrelid "
    "JOIN pg_namespace n ON n.oid = child.relnamespace "
    "CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS cols(child_col, parent_col) "
    "JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = cols.child_col "
    "JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = cols.parent_col "
    "WHERE k.contype = 'f' AND n.nspname = ? ORDER BY child.relname, k.conname"
)
POSTGRES_COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = ? AND table_name = ?"
)

# --- chat activity -----------------------------------------------------------------------
# Day of a message in UTC: ISO text starts with the date on SQLite.
MESSAGES_PER_DAY = {
    "sqlite": ("SELECT substr(created_at, 1, 10), count(*) FROM messages "
               "WHERE created_at >= ? GROUP BY 1"),
    "postgresql": ("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) "
                   "FROM messages WHERE created_at >= ? GROUP BY 1"),
}
# By the message counter (no index on it: one pass over sessions, which are few).
LARGEST = (
    "SELECT id, title, status, provider, model, message_count, input_tokens, output_tokens, "
    "cost_nanos, active_at FROM sessions ORDER BY message_count DESC, id LIMIT ?"
)
# A message without its own provider/model counts under its session's. Only messages
# that carry usage or cost are read; sum() of a bigint is numeric on PostgreSQL.
USAGE_BY_MODEL = (
    "SELECT COALESCE(m.provider, s.provider), COALESCE(m.model, s.model), count(*), "
    "CAST(sum(m.input_tokens) AS BIGINT), CAST(sum(m.output_tokens) AS BIGINT), "
    "CAST(sum(m.cost_nanos) AS BIGINT) FROM messages m JOIN sessions s ON s.id = m.session_id "
    "WHERE m.input_tokens <> 0 OR m.output_tokens <> 0 OR m.cost_nanos <> 0 "
    "GROUP BY COALESCE(m.provider, s.provider), COALESCE(m.model, s.model)"
)
NANOS = 1_000_000_000


def sqlite_layout(conn: Any) -> tuple[list[str], set[str], dict[str, str]]:
    """(tables, virtual tables, shadow table → its virtual table) of a SQLite file."""
    objects = conn.all(SQLITE_OBJECTS)
    tables = [name for kind, name, _, _ in objects
              if kind == "table" and not name.startswith("sqlite_")]
    virtual = {name for kind, name, _, sql in objects
               if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")}
    owner = {name: v for name in tables for v in virtual if name.startswith(v + "_")}
    return tables, virtual, owner


def plain_tables(backend: Any, concern: str) -> list[str]:
    """The ordinary tables of a concern (no search index shadow tables), by name."""
    with backend.read(concern) as conn:
        if backend.dialect == "sqlite":
            tables, virtual, owner = sqlite_layout(conn)
            return [t for t in tables if t not in virtual and t not in owner]
        return [row[0] for row in conn.all(POSTGRES_TABLES, (backend.schema(concern),))]


def foreign_keys(backend: Any, concern: str) -> list[tuple[str, str, str, str]]:
    """Every foreign key of a concern as (table, column, parent table, parent column)."""
    if backend.dialect == "postgresql":
        with backend.read(concern) as conn:
            return [tuple(row) for row in conn.all(POSTGRES_FOREIGN_KEYS,
                                                   (backend.schema(concern),))]
    keys = []
    with backend.read(concern) as conn:
        for table in plain_tables(backend, concern):
            for row in conn.all(f"PRAGMA foreign_key_list({quote(table)})"):
                keys.append((table, row[3], row[2], row[4]))
    return keys


def columns(backend: Any, concern: str, table: str) -> set[str]:
    """The column names of one table."""
    with backend.read(concern) as conn:
        if backend.dialect == "sqlite":
            return {row[1] for row in conn.all(f"PRAGMA table_info({quote(table)})")}
        return {row[0] for row in conn.all(POSTGRES_COLUMNS, (backend.schema(concern), table))}


# --- stats -------------------------------------------------------------------------------
def stats(store: Any, *, days: int = ACTIVITY_DAYS, largest: int = LARGEST_SESSIONS
          ) -> dict[str, Any]:
    """Rows and sizes of every concern, and the chat activity (read-only).

    Returns:
        ``{"dialect", "location", "concerns": [...]}``; each concern has ``concern``,
        ``location``, ``tables`` (``name``, ``kind``, ``rows``, ``table_bytes``,
        ``index_bytes``) and its sizes; the chat concern also ``messages_per_day``
        (``days`` entries, oldest first, UTC days), ``largest_sessions`` and ``usage``
        (token and cost totals per provider and model, costliest first). The layout is
        documented with ``agentkeep stats`` in ``docs/cli.md``.
    """
    days = check_limit("days", days, optional=False, maximum=3660)
    largest = check_limit("largest", largest, optional=False, maximum=10_000)
    backend = store._backend
    gather = _sqlite_concern if store.dialect == "sqlite" else _postgres_concern
    concerns = []
    for concern in backend.concerns:
        data = gather(backend, concern)
        if concern == "chat":
            data.update(chat_activity(backend, days=days, largest=largest))
        concerns.append(data)
    return {"dialect": store.dialect, "location": store.location, "concerns": concerns}


def _sqlite_concern(backend: Any, concern: str) -> dict[str, Any]:
    path = backend.path(concern)
    with backend.read(concern) as conn:
        objects = conn.all(SQLITE_OBJECTS)
        tables, virtual, owner = sqlite_layout(conn)
        page_size = conn.one("PRAGMA page_size")[0]
        page_count = conn.one("PRAGMA page_count")[0]
        free_pages = conn.one("PRAGMA freelist_count")[0]
        try:
            sizes: dict[str, int] | None = dict(conn.all(SQLITE_DBSTAT))
        except AgentkeepError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            sizes = None
        indexes: dict[str, list[str]] = {}
        for kind, name, table, _ in objects:
            if kind == "index":
                indexes.setdefault(owner.get(table, table), []).append(name)

        def size(names: list[str]) -> int | None:
            return None if sizes is None else sum(sizes.get(name, 0) for name in names)

        rows = []
        for name in tables:
            if name in owner:
                continue
            if name in virtual:
                shadows = [shadow for shadow, parent in owner.items() if parent == name]
                rows.append({"name": name, "kind": "search index", "rows": None,
                             "table_bytes": size(shadows),
                             "index_bytes": size(indexes.get(name, []))})
                continue
            count = conn.one(f"SELECT count(*) FROM {quote(name)}")[0]
            rows.append({"name": name, "kind": "table", "rows": count,
                         "table_bytes": size([name]),
                         "index_bytes": size(indexes.get(name, []))})
    wal = path.with_name(path.name + "-wal")
    index_total = None if sizes is None else sum(r["index_bytes"] or 0 for r in rows)
    return {"concern": concern, "location": str(path), "tables": rows,
            "file_bytes": os.path.getsize(path) if path.exists() else 0,
            "wal_bytes": os.path.getsize(wal) if wal.exists() else 0,
            "total_bytes": page_count * page_size, "index_bytes": index_total,
            "free_bytes": free_pages * page_size,
            "page_size": page_size, "pages": page_count, "free_pages": free_pages}


def _postgres_concern(backend: Any, concern: str) -> dict[str, Any]:
    schema = backend.schema(concern)
    rows = []
    with backend.read(concern) as conn:
        for name, table_bytes, index_bytes in conn.all(POSTGRES_TABLES, (schema,)):
            count = conn.one(f"SELECT count(*) FROM {quote(schema)}.{quote(name)}")[0]
            rows.append({"name": name, "kind": "table", "rows": count,
                         "table_bytes": table_bytes, "index_bytes": index_bytes})
    index_total = sum(row["index_bytes"] for row in rows)
    return {"concern": concern, "location": backend.location(concern), "schema": schema,
            "tables": rows, "file_bytes": None, "wal_bytes": None,
            "total_bytes": index_total + sum(row["table_bytes"] for row in rows),
            "index_bytes": index_total, "free_bytes": None}


def chat_activity(backend: Any, *, days: int = ACTIVITY_DAYS,
                  largest: int = LARGEST_SESSIONS) -> dict[str, Any]:
    """Messages per UTC day, the largest sessions and usage by provider/model (read-only)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days - 1)
    since = first.isoformat() if backend.dialect == "sqlite" else first
    with backend.read("chat") as conn:
        per_day = dict(conn.all(MESSAGES_PER_DAY[backend.dialect], (since,)))
        biggest = conn.all(LARGEST, (largest,))
        usage = conn.all(USAGE_BY_MODEL)
    calendar = [(first + timedelta(days=n)).date().isoformat() for n in range(days)]
    usage_rows = sorted(
        ({"provider": provider, "model": model, "messages": count, "input_tokens": tokens_in,
          "output_tokens": tokens_out, "cost": cost / NANOS}
         for provider, model, count, tokens_in, tokens_out, cost in usage),
        key=lambda row: (-row["cost"], -row["messages"], row["provider"] or "",
                         row["model"] or ""))
    return {
        "messages_per_day": [{"day": day, "messages": per_day.get(day, 0)}
                             for day in calendar],
        "largest_sessions": [
            {"id": row[0], "title": row[1], "status": row[2], "provider": row[3],
             "model": row[4], "message_count": row[5], "input_tokens": row[6],
             "output_tokens": row[7], "cost": row[8] / NANOS, "active_at": load_time(row[9])}
            for row in biggest],
        "usage": usage_rows,
        "usage_totals": {
            "messages": sum(row[2] for row in usage),
            "input_tokens": sum(row[3] for row in usage),
            "output_tokens": sum(row[4] for row in usage),
            "cost": sum(row[5] for row in usage) / NANOS},
    }

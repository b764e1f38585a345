"""``agentkeep stats``: rows per table and storage sizes, per concern.

SQLite: the size of each table and of its indexes from the ``dbstat`` virtual table
when SQLite was built with it (else only the totals, ``page_count * page_size``), the
file and its ``-wal``. An FTS5 index is one row, ``kind: "search index"``, summing its
shadow tables. PostgreSQL: ``pg_table_size`` and ``pg_indexes_size`` of every table in
the concern's schema. Row counts are exact (``count(*)``).

This reaches into the store's backend (``store._backend``); it moves to ``agentkeep.ops``
when that package exists.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import AgentkeepError
from .app import get_state
from .output import console, human_size, number, print_json

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


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def quote(name: str) -> str:
    """An SQL identifier, double-quoted (names come from the catalogue, never from users)."""
    return '"' + name.replace('"', '""') + '"'


def gather_stats(store: Any) -> dict[str, Any]:
    """Rows and sizes of every concern of ``store`` (read-only)."""
    backend = store._backend
    gather = _sqlite_concern if store.dialect == "sqlite" else _postgres_concern
    return {"dialect": store.dialect, "location": store.location,
            "concerns": [gather(backend, concern) for concern in backend.concerns]}


def _sqlite_concern(backend: Any, concern: str) -> dict[str, Any]:
    path = backend.path(concern)
    with backend.read(concern) as conn:
        objects = conn.all(SQLITE_OBJECTS)
        page_size = conn.one("PRAGMA page_size")[0]
        page_count = conn.one("PRAGMA page_count")[0]
        free_pages = conn.one("PRAGMA freelist_count")[0]
        try:
            sizes: dict[str, int] | None = dict(conn.all(SQLITE_DBSTAT))
        except AgentkeepError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            sizes = None
        tables = [name for kind, name, _, _ in objects
                  if kind == "table" and not name.startswith("sqlite_")]
        virtual = {name for kind, name, _, sql in objects
                   if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")}
        owner = {name: v for name in tables for v in virtual if name.startswith(v + "_")}
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
            "index_bytes": index_total}


def render_stats(data: dict[str, Any]) -> Group:
    """One table per concern, with the totals in its caption."""
    parts = []
    for concern in data["concerns"]:
        parts.append(Text.assemble((concern["concern"], "bold"), "  ", concern["location"]))
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        table.add_column("table")
        table.add_column("rows", justify="right")
        table.add_column("data", justify="right")
        table.add_column("indexes", justify="right")
        for row in concern["tables"]:
            name = Text(row["name"])
            if row["kind"] != "table":
                name.append(f" ({row['kind']})", style="dim")
            table.add_row(name, "-" if row["rows"] is None else number(row["rows"]),
                          human_size(row["table_bytes"]), human_size(row["index_bytes"]))
        totals = f"size {human_size(concern['total_bytes'])}"
        if concern["index_bytes"] is not None:
            totals += f" (indexes {human_size(concern['index_bytes'])})"
        if concern["file_bytes"] is not None:
            totals += (f" · file {human_size(concern['file_bytes'])}"
                       f" · WAL {human_size(concern['wal_bytes'])}")
        parts += [table, Text(totals, style="dim"), Text()]
    return Group(*parts[:-1])


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")
                       ] = False,
) -> None:
    """Rows per table and storage sizes (file, WAL, indexes) of every concern."""
    with get_state(ctx).open() as store:
        data = gather_stats(store)
    if as_json:
        print_json(data)
        return
    console().print(render_stats(data))

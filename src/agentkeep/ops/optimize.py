"""Keep a store fast and small: configured retention, statistics, index merges, VACUUM.

``optimize(store)`` does, in order:

1. **Retention**: when the setting ``retention.chat`` is configured (see
   :mod:`agentkeep.ops.prune`), prune by it first, so that VACUUM can reclaim the room.
2. **SQLite**, per concern file: index the search backlog, merge the FTS5 index into one
   segment in small steps (``'merge'`` with a negative page count, one short transaction
   each, so writers wait at most one step), ``PRAGMA optimize``, and ``VACUUM`` when the
   free pages are at least :data:`VACUUM_MIN_FREE_RATIO` of the file *and* at least
   :data:`VACUUM_MIN_FREE_BYTES` (``vacuum=True``/``False`` forces it either way). VACUUM
   rewrites the file: it needs free disk space of about the size after VACUUM, holds the
   write lock while it runs, and is followed by a WAL checkpoint that truncates the -wal.
3. **PostgreSQL**, per concern schema: index the search backlog (chat), merge the pending
   lists of GIN indexes
   (``gin_clean_pending_list``), and ``ANALYZE`` every table (``VACUUM (ANALYZE)`` with
   ``vacuum=True``; PostgreSQL's autovacuum reclaims dead rows on its own).

:func:`estimate` reports the sizes and what VACUUM would do, without changing anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..codec import human_size, shown
from ..errors import InvalidInput
from . import prune
from .stats import plain_tables, quote

#: VACUUM runs when the free pages are at least this share of the file ...
VACUUM_MIN_FREE_RATIO = 0.25
#: ... and at least this many bytes.
VACUUM_MIN_FREE_BYTES = 1024 * 1024
#: FTS5 pages merged per step (one transaction each; ~0.1 s here).
MERGE_PAGES = 1000
FTS_TABLES = ("messages_fts",)

SQLITE_PAGES = ("PRAGMA page_count", "PRAGMA freelist_count", "PRAGMA page_size")
# A merge that did no work still rewrites one record (the index structure), so a step
# that changes at most one row means the index is fully merged.
FTS_MERGE = "INSERT INTO {table}({table}, rank) VALUES('merge', ?)"
FTS_DATA_ROWS = "SELECT count(*) FROM {table}_data"
PG_GIN_INDEXES = (
    "SELECT c.relname, c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = ? AND am.amname = 'gin' ORDER BY c.relname"
)
PG_DEAD_ROWS = (
    "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = ?"
)


def _check_vacuum(vacuum: object) -> bool | None:
    if vacuum is not None and not isinstance(vacuum, bool):
        raise InvalidInput("vacuum", "must be True, False or None (automatic), "
                                     f"got {shown(vacuum, 40)}")
    return vacuum


def _sqlite_sizes(backend: Any, concern: str) -> dict[str, Any]:
    path = backend.path(concern)
    with backend.read(concern) as conn:
        pages, free, page_size = (conn.one(pragma)[0] for pragma in SQLITE_PAGES)
    wal = path.with_name(path.name + "-wal")
    return {"pages": pages, "free_pages": free, "page_size": page_size,
            "file_bytes": os.path.getsize(path) if path.exists() else 0,
            "wal_bytes": os.path.getsize(wal) if wal.exists() else 0}


def _vacuum_plan(sizes: dict[str, Any], vacuum: bool | None) -> dict[str, Any]:
    free_bytes = sizes["free_pages"] * sizes["page_size"]
    used_bytes = (sizes["pages"] - sizes["free_pages"]) * sizes["page_size"]
    worth = (sizes["pages"] > 0 and free_bytes >= VACUUM_MIN_FREE_BYTES
             and sizes["free_pages"] >= VACUUM_MIN_FREE_RATIO * sizes["pages"])
    if vacuum is None:
        reason = ("the free pages are at least 25 % of the file and 1 MiB" if worth else
                  "too few free pages (VACUUM runs at 25 % of the file and 1 MiB)")
    else:
        reason = "forced with vacuum=True" if vacuum else "skipped with vacuum=False"
    return {"will_run": worth if vacuum is None else vacuum, "reason": reason,
            "free_bytes": free_bytes, "bytes_before": sizes["pages"] * sizes["page_size"],
            "estimated_bytes_after": used_bytes}


def estimate(store: Any, *, vacuum: bool | None = None) -> list[dict[str, Any]]:
    """Per concern: its sizes and whether (and why) optimize would VACUUM it (read-only).

    On SQLite each entry has ``pages``, ``free_pages``, ``page_size``, ``file_bytes``,
    ``wal_bytes`` and ``vacuum`` (``will_run``, ``reason``, ``free_bytes``,
    ``bytes_before``, ``estimated_bytes_after``: the pages in use, what VACUUM leaves).
    On PostgreSQL: live and dead rows per table.
    """
    vacuum = _check_vacuum(vacuum)
    backend = store._backend
    result = []
    for concern in backend.concerns:
        entry: dict[str, Any] = {"concern": concern, "location": backend.location(concern)}
        if backend.dialect == "sqlite":
            sizes = _sqlite_sizes(backend, concern)
            entry.update(sizes, vacuum=_vacuum_plan(sizes, vacuum))
        else:
            with backend.read(concern) as conn:
                rows = conn.all(PG_DEAD_ROWS, (backend.schema(concern),))
            entry["tables"] = [{"name": name, "live_rows": live, "dead_rows": dead}
                               for name, live, dead in sorted(rows)]
            entry["vacuum"] = {"will_run": bool(vacuum),
                               "reason": "forced with vacuum=True" if vacuum else
                               "left to autovacuum (vacuum=True runs VACUUM (ANALYZE))"}
        result.append(entry)
    return result


def optimize(store: Any, *, vacuum: bool | None = None, retention: bool = True,
             say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Apply the configured retention, then tune every concern (commits).

    Args:
        vacuum: None (default) to VACUUM SQLite files only when the free list is large
            (see the module docstring); True to force it (on PostgreSQL: VACUUM
            (ANALYZE) instead of ANALYZE); False never to.
        retention: apply the retention configured in ``retention.chat``, if any.
        say: called with one line before each long step (the size estimate before a
            VACUUM, for instance).

    Returns:
        ``{"dialect", "location", "retention", "concerns": [...]}``: ``retention`` is
        None or ``{"criteria", "plan", "result"}``; each concern lists its ``actions``
        and, on SQLite, ``vacuum`` (the estimate, ``ran``, ``bytes_after``) and the file
        sizes before and after.

    Raises:
        InvalidInput: ``vacuum`` is not None/True/False, or the retention setting is
            malformed (checked before anything changes).
    """
    vacuum = _check_vacuum(vacuum)
    if not isinstance(retention, bool):
        raise InvalidInput("retention", f"must be True or False, got {shown(retention, 40)}")
    tell = say or (lambda line: None)
    backend = store._backend
    rules = prune.retention(store) if retention else None  # validated before any change
    report: dict[str, Any] = {"dialect": store.dialect, "location": store.location,
                              "retention": None, "concerns": []}
    if rules is not None:
        tell(f"chat: applying the configured retention ({_describe(rules)})")
        applied = prune.apply_retention(store)
        if applied is not None:
            planned, result = applied
            report["retention"] = {"criteria": rules.to_dict(),
                                   "sessions": len(result.purged),
                                   "skipped": len(result.skipped), "rows": result.rows,
                                   "blobs": result.blobs, "blob_bytes": result.blob_bytes}
    for concern in backend.concerns:
        if backend.dialect == "sqlite":
            report["concerns"].append(_sqlite(store, concern, vacuum, tell))
        else:
            report["concerns"].append(_postgres(store, concern, vacuum, tell))
    return report


def _describe(rules: prune.Criteria) -> str:
    return ", ".join(f"{key} {value}" for key, value in rules.to_dict().items()
                     if value is not None)


def _sqlite(store: Any, concern: str, vacuum: bool | None,
            tell: Callable[[str], None]) -> dict[str, Any]:
    backend = store._backend
    actions: list[str] = []
    if concern == "chat":
        indexed = store.chat.catch_up_index()
        if indexed:
            actions.append(f"indexed {indexed} new message(s) for search")
        for table in _fts_tables(backend, concern):
            steps = _merge_fts(backend, concern, table)
            actions.append(f"merged the full-text index {table} ({steps} step(s))")
    with backend.read(concern) as conn:
        conn.run("PRAGMA analysis_limit=1000")  # bounded ANALYZE work on big tables
        conn.run("PRAGMA optimize=0x10002")  # 0x10000: every table (SQLite >= 3.46)
        conn.run("PRAGMA analysis_limit=0")
    actions.append("PRAGMA optimize")
    before = _sqlite_sizes(backend, concern)
    plan = _vacuum_plan(before, vacuum)
    entry: dict[str, Any] = {"concern": concern, "location": backend.location(concern),
                             "actions": actions, "file_bytes_before": before["file_bytes"],
                             "vacuum": {**plan, "ran": False, "bytes_after": None}}
    if plan["will_run"]:
        tell(f"{concern}: VACUUM {backend.location(concern)}: {human_size(plan['bytes_before'])} "
             f"now, about {human_size(plan['estimated_bytes_after'])} after "
             f"({human_size(plan['free_bytes'])} free)")
        _vacuum(backend, concern)
        after = _sqlite_sizes(backend, concern)
        entry["vacuum"].update(ran=True, bytes_after=after["pages"] * after["page_size"])
        actions.append(f"VACUUM: {human_size(plan['bytes_before'])} → "
                       f"{human_size(entry['vacuum']['bytes_after'])}")
    entry["file_bytes_after"] = _sqlite_sizes(backend, concern)["file_bytes"]
    return entry


def _fts_tables(backend: Any, concern: str) -> list[str]:
    with backend.read(concern) as conn:
        names = {row[0] for row in conn.all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE "
            "'CREATE VIRTUAL TABLE%USING fts5%'")}
    return [name for name in FTS_TABLES if name in names]


def _merge_fts(backend: Any, concern: str, table: str) -> int:
    """Merge the FTS5 index in steps of MERGE_PAGES pages, one transaction each."""
    with backend.read(concern) as conn:
        rows = conn.one(FTS_DATA_ROWS.format(table=table))[0]
    limit = 4 * rows // MERGE_PAGES + 10  # each page is rewritten at most a few times
    statement = FTS_MERGE.format(table=table)
    steps = 0
    while steps < limit:
        with backend.write(concern) as conn:
            before = conn.raw.total_changes
            conn.run(statement, (-MERGE_PAGES,))
            changed = conn.raw.total_changes - before
        steps += 1
        if changed <= 1:
            break
    return steps


def _vacuum(backend: Any, concern: str) -> None:
    with backend.read(concern) as conn:
        # The store's connections keep temporary data in memory; VACUUM builds a copy of
        # the whole database there, so let it use a temporary file instead.
        conn.run("PRAGMA temp_store=FILE")
        try:
            conn.run("VACUUM")
        finally:
            conn.run("PRAGMA temp_store=MEMORY")
        conn.one("PRAGMA wal_checkpoint(TRUNCATE)")


def _postgres(store: Any, concern: str, vacuum: bool | None,
              tell: Callable[[str], None]) -> dict[str, Any]:
    backend = store._backend
    schema = backend.schema(concern)
    actions: list[str] = []
    if concern == "chat":
        indexed = store.chat.catch_up_index()
        if indexed:
            actions.append(f"indexed {indexed} new message(s) for search")
    with backend.read(concern) as conn:
        for name, oid in conn.all(PG_GIN_INDEXES, (schema,)):
            pages = conn.one("SELECT gin_clean_pending_list(CAST(CAST(? AS bigint) AS oid))",
                             (oid,))[0]
            actions.append(f"merged the pending list of {name} ({pages} page(s))")
    command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    tables = plain_tables(backend, concern)
    tell(f"{concern}: {command} {len(tables)} table(s) in schema {schema}")
    with backend.read(concern) as conn:
        for table in tables:
            # Utility statements cannot be prepared: run them unprepared, outside a
            # transaction (the pool's connections are in autocommit mode).
            conn.raw.execute(f"{command} {quote(schema)}.{quote(table)}", prepare=False)
    actions.append(f"{command} on {len(tables)} table(s)")
    return {"concern": concern, "location": backend.location(concern), "actions": actions,
            "vacuum": {"will_run": bool(vacuum), "ran": bool(vacuum)}}



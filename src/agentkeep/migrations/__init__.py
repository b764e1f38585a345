"""Schema versions: a cheap check on open, Alembic only when something must change.

Each concern has its own Alembic version chain (``versions/<concern>/``) and its own
``alembic_version`` table (in its SQLite file or its PostgreSQL schema). Opening a
store reads that one row; SQLAlchemy and Alembic are imported only to migrate or check.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..backend import Backend, quote_name
from ..backend.base import postgres_lock_timeout
from ..config import StoreConfig
from ..errors import SchemaOutOfDate, StoreCorrupt


def known_revisions(concern: str) -> tuple[str, ...]:
    return importlib.import_module(f"agentkeep.{concern}").REVISIONS


def head_revision(concern: str) -> str:
    return known_revisions(concern)[-1]


# How long a migration waits at least for another process's migration (or a long write)
# to end; a longer busy_timeout of the store's is kept.
MIGRATION_LOCK_TIMEOUT = 120.0


def migration_lock_timeout(config: StoreConfig) -> float:
    return max(config.busy_timeout, MIGRATION_LOCK_TIMEOUT)


def lock_postgres_schema(execute: Callable[..., Any], schema: str, timeout: float) -> None:
    """Inside a transaction: take the schema's migration lock (an advisory lock held to
    the end of the transaction), create the schema if need be and put it on the
    transaction's search path. Every lock wait of the transaction, this one included, is
    bounded by ``timeout`` seconds (then StoreBusy). ``execute`` runs driver SQL (``%s``
    parameters)."""
    execute("SELECT set_config('lock_timeout', %s, true)", (postgres_lock_timeout(timeout),))
    execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agentkeep-migrate:{schema}",))
    execute(f"CREATE SCHEMA IF NOT EXISTS {quote_name(schema)}")
    execute(f"SET LOCAL search_path TO {quote_name(schema)}")


# Whether the file or schema holds anything at all (to tell a new store from a foreign one).
SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
POSTGRES_TABLES = ("SELECT table_name FROM information_schema.tables "
                   "WHERE table_schema = current_schema()")
STORED_REVISION = "SELECT version_num FROM alembic_version"


def current_revision(backend: Backend, concern: str) -> str | None:
    """The revision stored for ``concern``, or None for a new, empty store.

    Raises:
        StoreCorrupt: the file or schema holds tables that agentkeep did not write.
    """
    with backend.read(concern) as conn:
        sql = SQLITE_TABLES if backend.dialect == "sqlite" else POSTGRES_TABLES
        tables = {row[0] for row in conn.all(sql)}
        if "alembic_version" not in tables:
            if tables:
                raise StoreCorrupt(f"{backend.location(concern)} holds tables that agentkeep "
                                   f"did not create ({', '.join(sorted(tables)[:5])}); "
                                   "point agentkeep at an empty directory or schema")
            return None
        row = conn.one(STORED_REVISION)
        return row[0] if row else None


def check_revision(concern: str, revision: str | None, location: str) -> bool:
    """True when up to date; False when older; SchemaOutOfDate when unknown (newer)."""
    known = known_revisions(concern)
    if revision == known[-1]:
        return True
    if revision is not None and revision not in known:
        raise SchemaOutOfDate(
            f"{location} has {concern} schema revision {revision!r}, which this agentkeep "
            f"does not know (it knows up to {known[-1]!r}): it was written by a newer "
            "agentkeep; upgrade agentkeep instead of downgrading the store")
    return False


def ensure_current(backend: Backend, *, migrate: bool) -> None:
    """Bring every concern to its head revision, or say why not."""
    for concern in backend.concerns:
        revision = current_revision(backend, concern)
        if check_revision(concern, revision, backend.location(concern)):
            continue
        if not migrate:
            raise SchemaOutOfDate(
                f"{backend.location(concern)} is at {concern} revision {revision or 'none'}, "
                f"this agentkeep needs {head_revision(concern)}; run `agentkeep migrate up` "
                "or open with migrate=True")
        if revision is None:
            from .snapshot import create_from_snapshot

            # Not created here: another process may have created it meanwhile.
            if create_from_snapshot(backend, concern) or \
                    check_revision(concern, current_revision(backend, concern),
                                   backend.location(concern)):
                continue
        from .alembic_ops import upgrade

        upgrade(backend, concern, "head")

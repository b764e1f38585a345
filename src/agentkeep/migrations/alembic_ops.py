"""Alembic-driven operations: upgrade, downgrade, status and drift check.

Imported only when the schema must change or be inspected. Every run happens inside
one transaction on one connection that first takes the concern's migration lock: on
SQLite ``BEGIN IMMEDIATE`` on the concern's file, on PostgreSQL a transaction-level
advisory lock. So several processes opening a new store at once migrate it exactly
once; the others wait, then find it current.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.pool import NullPool

from ..backend import Backend, quote_name
from ..errors import AgentkeepError, InvalidInput, MigrationError
from . import (
    check_revision,
    current_revision,
    head_revision,
    known_revisions,
    lock_postgres_schema,
    migration_lock_timeout,
)

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ConcernStatus:
    concern: str
    location: str
    current: str | None
    head: str
    pending: tuple[str, ...]

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def _sqlite_engine(path: Path, timeout: float, begin: str = "BEGIN IMMEDIATE"):
    import sqlite3

    from ..backend.sqlite import enable_wal

    # A creator, not a sqlite:/// URL: a path with ? or % in it must not be parsed as one.
    engine = create_engine("sqlite://", poolclass=NullPool,
                           creator=lambda: sqlite3.connect(path, timeout=timeout))

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # pragma: no cover - trivial
        # Let SQLAlchemy, not the driver, decide where transactions start so that DDL is
        # transactional and the first statement is BEGIN IMMEDIATE (the migration lock).
        dbapi_connection.isolation_level = None
        enable_wal(dbapi_connection, timeout)

    @event.listens_for(engine, "begin")
    def _begin(conn):  # pragma: no cover - trivial
        conn.exec_driver_sql(begin)

    return engine


@contextmanager
def locked_connection(backend: Backend, concern: str, *, lock: bool = True
                      ) -> Iterator[SAConnection]:
    """A SQLAlchemy connection inside a transaction holding the concern's migration lock.

    ``lock=False`` is for reading the schema only (drift): a plain read transaction that
    neither waits for the app's writers nor blocks them.
    """
    from ..backend.sqlite import create_private_file

    if backend.dialect == "sqlite":
        path = backend.path(concern)  # type: ignore[attr-defined]
        create_private_file(path)
        if lock:
            engine = _sqlite_engine(path, migration_lock_timeout(backend.config))
        else:
            engine = _sqlite_engine(path, backend.config.busy_timeout, "BEGIN")
    else:
        url = backend.url.replace("postgres://", "postgresql://", 1)  # type: ignore[attr-defined]
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                               poolclass=NullPool)
    try:
        with backend.translated(concern), engine.connect() as conn, conn.begin():
            if backend.dialect == "postgresql":
                schema = backend.schema(concern)  # type: ignore[attr-defined]
                if lock:
                    lock_postgres_schema(conn.exec_driver_sql, schema,
                                         migration_lock_timeout(backend.config))
                else:
                    conn.exec_driver_sql(f"SET LOCAL search_path TO {quote_name(schema)}")
            yield conn
    finally:
        engine.dispose()


def _config(backend: Backend, concern: str, conn: SAConnection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("version_locations", str(HERE / "versions" / concern))
    config.set_main_option("path_separator", "os")
    config.attributes.update(connection=conn, concern=concern, dialect=backend.dialect,
                             schema=getattr(backend, "schema", lambda c: None)(concern))
    return config


def _metadata(concern: str):
    return importlib.import_module(f"agentkeep.{concern}.tables").metadata


# Tables and indexes outside the declared schema: Alembic's own, and the search
# structures that differ per dialect (PostgreSQL: chat_0001 put a generated column and an
# index on messages; chat_0003 moved them to tables of their own).
UNDECLARED_TABLES = ("alembic_version", "message_search", "search_backlog")
SEARCH_INDEXES = ("messages_search", "message_search_vector")


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    # Search structures are dialect-specific and created by hand in the migrations.
    if type_ == "table" and name and (name.startswith("messages_fts") or name in UNDECLARED_TABLES):
        return False
    if type_ == "column" and name == "search_vector":
        return False
    return not (type_ == "index" and name in SEARCH_INDEXES)


def run_in_context(context) -> None:
    """Body of env.py: configure Alembic on our connection and run the migrations."""
    attributes = context.config.attributes
    context.configure(
        connection=attributes["connection"],
        target_metadata=_metadata(attributes["concern"]),
        include_object=_include_object,
        version_table_schema=attributes["schema"],
        render_as_batch=attributes["dialect"] == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(backend: Backend, concern: str, action: str, target: str) -> None:
    with locked_connection(backend, concern) as conn:
        check_revision(concern, MigrationContext.configure(conn).get_current_revision(),
                       backend.location(concern))
        config = _config(backend, concern, conn)
        try:
            if action == "upgrade":
                command.upgrade(config, target)
            else:
                command.downgrade(config, target)
        except AgentkeepError:
            raise
        except Exception as exc:
            raise MigrationError(f"{action} of {concern} at {backend.location(concern)} to "
                                 f"{target} failed and was rolled back: {exc}") from exc


def _check_target(concern: str, target: str, *, direction: str) -> str:
    known = known_revisions(concern)
    allowed = {"head"} if direction == "upgrade" else {"base", "-1"}
    if target in allowed or target in known:
        return target
    named = ["head"] if direction == "upgrade" else ["base", "-1 (one step down)"]
    raise InvalidInput("to", f"{target!r} is not a {concern} revision; known: "
                             f"{', '.join(named + list(known))}")


def upgrade(backend: Backend, concern: str, target: str = "head") -> None:
    """Upgrade ``concern`` to ``target`` (default: head). Commits or rolls back whole."""
    _run(backend, concern, "upgrade", _check_target(concern, target, direction="upgrade"))


def downgrade(backend: Backend, concern: str, target: str = "-1") -> None:
    """Downgrade ``concern`` one step (default) or to ``target`` (a revision or ``base``)."""
    target = _check_target(concern, target, direction="downgrade")
    if target == "-1":
        current = current_revision(backend, concern)
        if current is None:
            return
        check_revision(concern, current, backend.location(concern))
        known = known_revisions(concern)
        target = known[known.index(current) - 1] if known.index(current) > 0 else "base"
    _run(backend, concern, "downgrade", target)


def status(backend: Backend, concern: str) -> ConcernStatus:
    current = current_revision(backend, concern)
    known = known_revisions(concern)
    check_revision(concern, current, backend.location(concern))
    done = known.index(current) + 1 if current else 0
    return ConcernStatus(concern, backend.location(concern), current, head_revision(concern),
                         known[done:])


def drift(backend: Backend, concern: str) -> list[str]:
    """Differences between the database and the declared schema, one line each."""
    findings: list[str] = []
    state = status(backend, concern)
    if not state.is_current:
        findings.append(f"{concern}: at revision {state.current or 'none'}, "
                        f"head is {state.head}")
        return findings
    with locked_connection(backend, concern, lock=False) as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": _include_object, "compare_type": True,
            "target_metadata": _metadata(concern)})
        try:
            diffs = compare_metadata(context, _metadata(concern))
        except CommandError as exc:  # pragma: no cover - defensive
            raise MigrationError(str(exc)) from exc
        conn.rollback()
    for diff in diffs:
        findings.append(f"{concern}: {_describe(diff)}")
    return findings


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in diff)
    kind, *rest = diff
    names = []
    for item in rest:
        name = getattr(item, "name", None)
        table = getattr(getattr(item, "table", None), "name", None)
        if name:
            names.append(f"{table}.{name}" if table and table != name else str(name))
        elif isinstance(item, str):
            names.append(item)
    return f"{kind.replace('_', ' ')} {' '.join(names)}".strip()

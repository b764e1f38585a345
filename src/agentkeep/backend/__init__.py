"""Database backends: connections, transactions and driver-error translation.

A backend owns one connection source per concern (a SQLite file or a PostgreSQL
schema) and runs every statement of the concern stores. SQL is written once with
``?`` placeholders; the PostgreSQL backend rewrites them for psycopg.
"""

from __future__ import annotations

from ..config import StoreConfig
from .base import Backend, Connection


def create_backend(config: StoreConfig, concerns: tuple[str, ...]) -> Backend:
    """The backend for ``config``; imports the PostgreSQL driver only when needed."""
    if config.url:
        from .postgres import PostgresBackend

        return PostgresBackend(config, concerns)
    from .sqlite import SqliteBackend

    return SqliteBackend(config, concerns)


__all__ = ["Backend", "Connection", "create_backend"]

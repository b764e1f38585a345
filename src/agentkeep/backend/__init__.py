"""Database backends: connections, transactions and driver-error translation.

A backend owns one connection source per concern (a SQLite file or a PostgreSQL
schema) and runs every statement of the concern stores. SQL is written once with
``?`` placeholders; the PostgreSQL backend rewrites them for psycopg.
"""

from __future__ import annotations

from ..config import StoreConfig
from ..errors import StoreUnavailable
from .base import Backend, Connection, quote_name


def create_backend(config: StoreConfig, concerns: tuple[str, ...]) -> Backend:
    """The backend for ``config``; imports the PostgreSQL driver only when needed."""
    if config.url:
        try:
            from .postgres import PostgresBackend
        except ImportError as exc:
            raise StoreUnavailable(
                f"PostgreSQL support is not installed ({exc.name} is missing); install it with "
                "pip install 'agentkeep[postgres]'") from exc

        return PostgresBackend(config, concerns)
    from .sqlite import SqliteBackend

    return SqliteBackend(config, concerns)


__all__ = ["Backend", "Connection", "create_backend", "quote_name"]

"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL tests use the server named by AGENTKEEP_TEST_PG_URL (default: the local
one). Each test gets its own schemas (a random prefix) and drops them afterwards.
Without a server they skip with the reason; with AGENTKEEP_REQUIRE_PG=1 (CI) they fail.
"""

from __future__ import annotations

import os
import uuid

import pytest

import agentkeep

PG_URL = os.environ.get("AGENTKEEP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("AGENTKEEP_REQUIRE_PG") == "1"
BACKENDS = ("sqlite", "postgres")

_pg_error: str | None = None
_pg_checked = False


def postgres_or_skip() -> str:
    """The test server's URL, or skip (fail in CI) when it does not answer."""
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            import psycopg

            psycopg.connect(PG_URL, connect_timeout=5).close()
        except Exception as exc:  # noqa: BLE001 - any failure means "no server"
            _pg_error = f"PostgreSQL at {PG_URL} does not answer: {exc}"
    if _pg_error:
        if REQUIRE_PG:
            pytest.fail(_pg_error)
        pytest.skip(_pg_error)
    return PG_URL


def drop_schemas(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            (prefix + "\\_%",)).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


class StoreFactory:
    """Opens stores on one backend; every store of a test shares one location."""

    def __init__(self, backend: str, tmp_path) -> None:
        self.backend = backend
        self.home = tmp_path / "store"
        self.prefix = f"t{uuid.uuid4().hex[:12]}"
        self.opened: list = []
        if backend == "postgres":
            postgres_or_skip()

    @property
    def target(self):
        return PG_URL if self.backend == "postgres" else self.home

    def options(self, **options):
        if self.backend == "postgres":
            options.setdefault("schema_prefix", self.prefix)
        return options

    def open(self, **options) -> agentkeep.Store:
        store = agentkeep.open(self.target, **self.options(**options))
        self.opened.append(store)
        return store

    async def open_async(self, **options) -> agentkeep.AsyncStore:
        store = await agentkeep.open_async(self.target, **self.options(**options))
        self.opened.append(store.sync)
        return store

    def cleanup(self) -> None:
        for store in self.opened:
            store.close()
        if self.backend == "postgres":
            drop_schemas(self.prefix)


@pytest.fixture(params=BACKENDS)
def stores(request, tmp_path):
    """A StoreFactory for the parametrized backend."""
    factory = StoreFactory(request.param, tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture
def store(stores) -> agentkeep.Store:
    """An empty, migrated store on each backend."""
    return stores.open()

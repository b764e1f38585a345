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


def damage_sqlite(path, *, far_child: bool = False) -> None:
    """Damage a closed SQLite file as a stray write does, keeping its header: 2,000 bytes
    overwritten in the middle of three of the ``messages`` table's leaf pages, as a new
    user's test did to a copy of a demo store. With ``far_child``, instead, the table's
    root page points its right child at page 0xFFFFFFF0, past the largest page a file may
    have: SQLite answers some reads (``dbstat``) with "database or disk is full" then."""
    import random
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [n for (n,) in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' "
            "ORDER BY pageno")]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'"
                            ).fetchone()[0]
    finally:
        conn.close()
    assert len(leaves) >= 4, "too few messages to damage the table in several places"
    with open(path, "r+b") as handle:
        if far_child:
            handle.seek((root - 1) * page_size)
            assert handle.read(1) == b"\x05", "the messages table has a single page"
            handle.seek((root - 1) * page_size + 8)  # an interior page's right child
            handle.write((0xFFFFFFF0).to_bytes(4, "big"))
            return
        noise = random.Random(2000)
        for page in leaves[len(leaves) // 4::len(leaves) // 4][:3]:
            handle.seek((page - 1) * page_size + page_size // 2 - 1000)
            handle.write(noise.randbytes(2000))

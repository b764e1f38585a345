"""The systems under test: the raw drivers (the floor) and agentkeep, on each backend.

Every system takes the same calls with the same caller-chosen session keys. A message
is ``{"role", "content"}`` plus ``tool_call`` (an assistant asking) or
``tool_call_id`` (a tool answering). Raw systems store the tool data as JSON in a
``meta`` column; agentkeep records real tool calls from typed parts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

PG_URL = os.environ.get("AGENTKEEP_BENCH_PG_URL",
                        os.environ.get("AGENTKEEP_TEST_PG_URL",
                                       "postgresql://postgres@127.0.0.1:5432/test"))


def _meta(message: dict) -> str | None:
    extra = {k: v for k, v in message.items() if k not in ("role", "content")}
    return json.dumps(extra) if extra else None


def parts_of(message: dict) -> list | None:
    if "tool_call" in message:
        call = message["tool_call"]
        return [{"type": "tool_call", "id": call["id"], "name": call["name"],
                 "arguments": call["arguments"]}]
    if "tool_call_id" in message:
        return [{"type": "tool_result", "call_id": message["tool_call_id"]}]
    return None


class RawSqlite:
    """Plain sqlite3 set up as a careful hand-written store is (WAL, synchronous=NORMAL,
    foreign keys, a busy timeout, SQLite's other defaults): the floor. agentkeep's own
    tuning (its page cache, its checkpoint interval) is part of what is measured."""

    name = "raw"
    backend = "sqlite"
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created_at REAL NOT NULL,
                                         updated_at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      role TEXT NOT NULL, content TEXT NOT NULL, meta TEXT, created_at REAL NOT NULL);
    CREATE INDEX IF NOT EXISTS messages_session_id ON messages(session_id, id);
    """
    UPSERT = ("INSERT INTO sessions(id, created_at, updated_at) VALUES (?, ?, ?) "
              "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at")
    INSERT = ("INSERT INTO messages(session_id, role, content, meta, created_at) "
              "VALUES (?, ?, ?, ?, ?)")
    LAST_N = ("SELECT id, role, content, meta, created_at FROM messages WHERE session_id = ? "
              "ORDER BY id DESC LIMIT ?")
    ALL = ("SELECT id, role, content, meta, created_at FROM messages WHERE session_id = ? "
           "ORDER BY id")
    SEARCH = ("SELECT m.id, m.session_id, bm25(messages_fts), "
              "snippet(messages_fts, 0, '[', ']', '…', 16) FROM messages_fts "
              "JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? "
              "ORDER BY bm25(messages_fts) LIMIT ?")

    def __init__(self, location: Path) -> None:
        self.location = Path(location)
        self.conn = None

    def open(self) -> None:
        import sqlite3

        self.location.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.location / "raw.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=10000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(self.SCHEMA)
        self.conn = conn

    def append(self, key: str, message: dict) -> None:
        now = time.time()
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(self.UPSERT, (key, now, now))
            c.execute(self.INSERT, (key, message["role"], message["content"], _meta(message),
                                    now))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def append_many(self, key: str, messages: list[dict]) -> None:
        now = time.time()
        rows = [(key, m["role"], m["content"], _meta(m), now) for m in messages]
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(self.UPSERT, (key, now, now))
            c.executemany(self.INSERT, rows)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def last_n(self, key: str, n: int) -> list:
        rows = self.conn.execute(self.LAST_N, (key, n)).fetchall()
        rows.reverse()
        return rows

    def all(self, key: str) -> list:
        return self.conn.execute(self.ALL, (key,)).fetchall()

    def build_search(self) -> float:
        """Add an FTS5 index over the finished store (raw-fts); returns seconds."""
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5("
                          "content, content='messages', content_rowid='id', "
                          "tokenize='porter unicode61 remove_diacritics 2')")
        start = time.perf_counter()
        self.conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        return time.perf_counter() - start

    def search(self, query: str, limit: int) -> list:
        match = " ".join('"' + word.replace('"', '""') + '"' for word in query.split())
        return self.conn.execute(self.SEARCH, (match, limit)).fetchall()

    def content_of(self, row) -> str:
        return row[2]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.location.glob("raw.db*"))


class RawPostgres(RawSqlite):
    """Plain psycopg 3 on one connection, prepared statements, same schema."""

    name = "raw"
    backend = "postgres"
    SCHEMA_PG = """
    CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created_at DOUBLE PRECISION
        NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
    CREATE TABLE IF NOT EXISTS messages (
      id BIGSERIAL PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      role TEXT NOT NULL, content TEXT NOT NULL, meta TEXT,
      created_at DOUBLE PRECISION NOT NULL);
    CREATE INDEX IF NOT EXISTS messages_session_id ON messages(session_id, id);
    """
    SEARCH_PG = ("SELECT m.id, m.session_id, ts_rank_cd(m.tsv, q), "
                 "ts_headline('english', m.content, q, 'StartSel=[, StopSel=]') "
                 "FROM messages m, plainto_tsquery('english', %s) q "
                 "WHERE m.tsv @@ q ORDER BY 3 DESC LIMIT %s")

    def __init__(self, location: str) -> None:
        self.location = location  # a schema name
        self.conn = None

    def open(self) -> None:
        import psycopg

        conn = psycopg.connect(PG_URL, autocommit=True, prepare_threshold=0)
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.location}"')
        conn.execute(f'SET search_path TO "{self.location}"')
        for statement in filter(str.strip, self.SCHEMA_PG.split(";")):
            conn.execute(statement)
        self.conn = conn

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def append(self, key: str, message: dict) -> None:
        now = time.time()
        with self.conn.transaction():
            self.conn.execute(self._q(self.UPSERT), (key, now, now))
            self.conn.execute(self._q(self.INSERT), (key, message["role"], message["content"],
                                                     _meta(message), now))

    def append_many(self, key: str, messages: list[dict]) -> None:
        now = time.time()
        rows = [(key, m["role"], m["content"], _meta(m), now) for m in messages]
        with self.conn.transaction():
            self.conn.execute(self._q(self.UPSERT), (key, now, now))
            with self.conn.cursor() as cursor:
                cursor.executemany(self._q(self.INSERT), rows)

    def last_n(self, key: str, n: int) -> list:
        rows = self.conn.execute(self._q(self.LAST_N), (key, n)).fetchall()
        rows.reverse()
        return rows

    def all(self, key: str) -> list:
        return self.conn.execute(self._q(self.ALL), (key,)).fetchall()

    def build_search(self) -> float:
        # The same structure as agentkeep's: a stored tsvector and a GIN index (ranking
        # from an expression index would re-parse every matching document per query).
        start = time.perf_counter()
        self.conn.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS tsv tsvector "
                          "GENERATED ALWAYS AS (to_tsvector('english', content)) STORED")
        self.conn.execute("CREATE INDEX IF NOT EXISTS messages_fts ON messages USING gin (tsv)")
        return time.perf_counter() - start

    def search(self, query: str, limit: int) -> list:
        return self.conn.execute(self.SEARCH_PG, (query, limit)).fetchall()

    def size_bytes(self) -> int:
        return schema_bytes(self.location)


class Agentkeep:
    """agentkeep through its public API, search enabled."""

    name = "agentkeep"

    def __init__(self, backend: str, location) -> None:
        self.backend = backend
        self.location = location  # a directory, or a schema prefix on PostgreSQL
        self.store = None
        self.known: set[str] = set()

    def open(self) -> None:
        import agentkeep

        if self.backend == "sqlite":
            self.store = agentkeep.open(self.location)
        else:
            self.store = agentkeep.open(PG_URL, schema_prefix=self.location)
        self.chat = self.store.chat

    def _ensure(self, key: str, first: list[dict] | None = None) -> bool:
        """Create session ``key`` on first use, with ``first`` as its first messages (one
        commit, as raw's upsert and inserts); False when it existed (``first`` unwritten)."""
        if key in self.known:
            return False
        try:
            self.chat.create_session(id=key, messages=first)
        except Exception as exc:  # an existing session from an earlier handle
            if type(exc).__name__ != "Conflict":
                raise
            created = False
        else:
            created = True
        self.known.add(key)
        return created

    def append(self, key: str, message: dict) -> None:
        self._ensure(key)
        self.chat.append(key, message["role"], message["content"], parts=parts_of(message))

    def append_many(self, key: str, messages: list[dict]) -> None:
        items = [{"role": m["role"], "content": m["content"], "parts": parts_of(m)}
                 for m in messages]
        if not self._ensure(key, items):
            self.chat.append_many(key, items)

    def last_n(self, key: str, n: int) -> list:
        return self.chat.history(key, last=n)

    def all(self, key: str) -> list:
        return self.chat.history(key)

    def build_search(self) -> float:
        start = time.perf_counter()
        self.chat.catch_up_index()
        return time.perf_counter() - start

    def search(self, query: str, limit: int) -> list:
        return self.chat.search(query, limit=limit)

    def content_of(self, message) -> str:
        return message.content

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def size_bytes(self) -> int:
        if self.backend == "sqlite":
            return sum(p.stat().st_size for p in Path(self.location).glob("*.db*"))
        return schema_bytes(self.location + "\\_%")


def schema_bytes(pattern: str) -> int:
    """Bytes of every table (with its indexes and TOAST) in the schemas matching ``pattern``."""
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE %s "
            "AND c.relkind IN ('r', 'm')", (pattern,)).fetchone()
    return int(row[0])


def make(system: str, backend: str, location) -> RawSqlite | Agentkeep:
    if system == "agentkeep":
        return Agentkeep(backend, location)
    return RawSqlite(location) if backend == "sqlite" else RawPostgres(location)


def drop_location(backend: str, location) -> None:
    """Remove a store: its directory, or its PostgreSQL schemas."""
    if backend == "sqlite":
        import shutil

        shutil.rmtree(location, ignore_errors=True)
        return
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = %s "
                            "OR nspname LIKE %s", (location, location + "\\_%")).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')

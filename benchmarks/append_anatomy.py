"""Where a single-commit SQLite append's time goes: agentkeep's append SQL run by
``sqlite3`` directly on copies of agentkeep's schema with indexes removed, beside the
raw baseline of W1, in one run (docs/performance.md, "Where the time goes")::

    python -m benchmarks.append_anatomy [--commits 6000]

Besides the median time it reports the pages each commit writes to the WAL (the WAL's
growth over 1,000 further commits with checkpoints held off, after the timed ones): a
count, so it does not move with the machine's load the way the times do.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import agentkeep
from agentkeep.chat import sql
from agentkeep.codec import new_id

SESSIONS = 200
TEXT = "hello world this is a message of moderate length " * 4
RAW_SCHEMA = (
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at REAL NOT NULL, "
    "updated_at REAL NOT NULL)",
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES "
    "sessions(id) ON DELETE CASCADE, role TEXT NOT NULL, content TEXT NOT NULL, meta TEXT, "
    "created_at REAL NOT NULL)",
    "CREATE INDEX messages_session_id ON messages(session_id, id)",
)
VARIANTS = {
    "agentkeep schema as shipped": (),
    "without sessions_by_activity": ("activity",),
    "without it and the message-id index": ("activity", "message id"),
    "without those and (session_id, seq)": ("activity", "message id", "session seq"),
}


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _agentkeep_ddl(directory: Path) -> list[str]:
    agentkeep.open(directory).close()
    with sqlite3.connect(directory / "chat.db") as conn:
        return [text for (text,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('sessions', 'messages') "
            "AND sql IS NOT NULL")]


def _timed(conn: sqlite3.Connection, path: Path, commits: int, one) -> tuple[float, float]:
    """(median µs over ``commits`` commits after a warm-up, as W1 runs them: checkpoints
    on; WAL pages written per commit over 1,000 more commits, checkpoints held off so
    the WAL's growth counts the pages)."""
    for i in range(500):
        one(i)
    times = []
    for i in range(500, 500 + commits):
        started = time.perf_counter()
        one(i)
        times.append(time.perf_counter() - started)
    counted = 1000
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(500 + commits, 500 + commits + counted):
        one(i)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    frames = (os.path.getsize(f"{path}-wal") - 32) / (page + 24)  # WAL header, frame headers
    return statistics.median(times) * 1e6, frames / counted


def raw(directory: Path, commits: int) -> tuple[float, float]:
    conn = _connect(directory / "raw.db")
    for statement in RAW_SCHEMA:
        conn.execute(statement)
    ids = [new_id() for _ in range(SESSIONS)]

    def one(i: int) -> None:
        now, session_id = time.time(), ids[i % SESSIONS]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO sessions (id, created_at, updated_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                     (session_id, now, now))
        conn.execute("INSERT INTO messages (session_id, role, content, meta, created_at) "
                     "VALUES (?, ?, ?, ?, ?)", (session_id, "user", TEXT, None, now))
        conn.execute("COMMIT")

    return _timed(conn, directory / "raw.db", commits, one)


def variant(directory: Path, ddl: list[str], without: tuple[str, ...],
            commits: int) -> tuple[float, float]:
    conn = _connect(directory / "variant.db")
    for statement in ddl:
        if "activity" in without and "sessions_by_activity" in statement:
            continue
        if "message id" in without:
            statement = statement.replace("UNIQUE (id), ", "")
        if "session seq" in without:
            statement = statement.replace(
                ", \n\tCONSTRAINT messages_session_seq UNIQUE (session_id, seq)", "")
        conn.execute(statement)
    ids = [new_id() for _ in range(SESSIONS)]
    for session_id in ids:
        conn.execute("INSERT INTO sessions (id, created_at, updated_at, active_at) "
                     "VALUES (?, '2026', '2026', '2026')", (session_id,))

    def one(i: int) -> None:
        session_id, message_id = ids[i % SESSIONS], new_id()
        stamp = datetime.now(UTC).isoformat()  # as appends stamp them: the clock's second
        conn.execute("BEGIN IMMEDIATE")
        _, head_id, count, depth = conn.execute(sql.SESSION_FOR_APPEND["sqlite"],
                                                (session_id,)).fetchone()
        conn.execute(sql.INSERT_PLAIN_MESSAGE, (
            message_id, session_id, head_id, count + 1, depth + 1, "user", TEXT, "[]", stamp))
        conn.execute(sql.ADD_TO_SESSION, (1, 0, 0, 0, message_id, depth + 1, None, stamp,
                                          stamp, session_id))
        conn.execute("COMMIT")

    return _timed(conn, directory / "variant.db", commits, one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=6000)
    commits = parser.parse_args().commits
    with tempfile.TemporaryDirectory() as scratch:
        ddl = _agentkeep_ddl(Path(scratch) / "schema")
        results = {"raw sqlite3 (W1's baseline)": raw(Path(tempfile.mkdtemp(dir=scratch)),
                                                      commits)}
        for name, without in VARIANTS.items():
            results[name] = variant(Path(tempfile.mkdtemp(dir=scratch)), ddl, without, commits)
    base = results["raw sqlite3 (W1's baseline)"][0]
    print("| append SQL, one commit each | p50 | ÷ raw | WAL pages per commit |\n"
          "|---|---|---|---|")
    for name, (value, pages) in results.items():
        print(f"| {name} | {value:.1f} µs | ×{value / base:.2f} | {pages:.2f} |")


if __name__ == "__main__":
    main()

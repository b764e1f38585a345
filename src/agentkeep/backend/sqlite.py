"""Embedded SQLite: one file per concern in the home directory.

Every connection gets WAL, ``synchronous=NORMAL`` (or FULL), foreign keys, a bounded
busy wait and a sized page cache. Writes start with ``BEGIN IMMEDIATE`` so a
lock wait happens at the start of a transaction and never as a mid-transaction
"database is locked".
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from ..codec import human_size
from ..errors import (
    AgentkeepError,
    Conflict,
    StoreBusy,
    StoreCorrupt,
    StoreUnavailable,
)
from .base import Backend, Connection

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

MAX_IDLE_CONNECTIONS = 8

# Applied to every new connection after journal_mode=WAL (see enable_wal).
PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-16000",  # 16 MB page cache per connection
    # No mmap: it made no measurable difference to warm reads (last 50 of a 1M-message
    # store: 102 vs 104 µs) but counted every touched page of the file in the process's
    # RSS (a 1M-message import peaked at 330 MB instead of ~100 MB).
    "PRAGMA mmap_size=0",
    "PRAGMA temp_store=MEMORY",
    # A checkpoint every 4,000 WAL pages (16 MB), not SQLite's 1,000: the commit that
    # crosses the mark copies the pages back into the file and syncs it, and over a
    # longer stretch more of the pages were rewritten since (the session rows, the index
    # edges), so there is less to copy per commit. Single-commit appends to 200 sessions,
    # interleaved in one process: 8,253 → 9,291 msg/s, p99 370 → 259 µs; 8,000 pages
    # added 2 % more but a 34 ms longest stall (docs/performance.md).
    "PRAGMA wal_autocheckpoint=4000",
)

# SQLite's primary result code for "database or disk is full".
SQLITE_FULL = 13
#: SQLite also answers SQLITE_FULL for a page number beyond the largest a file may have
#: (``max_page_count``), which only a damaged file holds: the demo store overwritten with
#: 2,000 random bytes in a few places gave "database or disk is full" to ``agentkeep
#: stats`` (its dbstat query reads pages without the B-tree's own bound check). With at
#: least this much free space, and the file's size plus its -wal, on the store's file
#: system, the error is taken for damage: a write that really ran out of space leaves what
#: it wrote in the -wal (a rollback does not shrink it) and the space stays taken, and no
#: statement needs more room than the store's size to give back (VACUUM writes about the
#: file's size; temporary tables stay in memory, temp_store=MEMORY).
FULL_DISK_MARGIN = 64 * 1024 * 1024
DAMAGE_HINT = ("`agentkeep check` lists the damage; restore a backup (`agentkeep restore`) "
               "to repair it")


def _lower(value: object) -> object:
    """``lower()`` for every script, as PostgreSQL's (sql.TITLE_CONTAINS)."""
    return value.lower() if isinstance(value, str) else value


def prepare_home(home: Path) -> None:
    """Create the home directory (0700) or fail clearly if it cannot be one."""
    # os.path's tests answer False where Path's raise (a parent that cannot be searched)
    if os.path.exists(home) and not os.path.isdir(home):
        raise StoreUnavailable(f"{home} is a file, not a directory; "
                               "give agentkeep a directory for its store")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create or enter the store directory {home}: "
                               f"{exc.strerror or exc}") from exc


def enable_wal(raw: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL, waiting up to ``timeout`` seconds for other openers.

    journal_mode=WAL is persistent, so asking again costs nothing once it is set. But
    the first switch of a new file needs an exclusive lock, and SQLite answers a
    conflicting lock there with SQLITE_BUSY at once, without calling the busy handler:
    processes opening a new store at the same moment would fail instead of waiting.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            lowered = str(exc).lower()
            if ("locked" not in lowered and "busy" not in lowered) \
                    or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def create_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if it does not exist (SQLite copies the mode to -wal).

    Never opens an existing file: closing any descriptor of a file drops every POSIX lock
    the process holds on it, including the shared lock of its open SQLite connections.
    Another process closing its last connection then believed it was the last one,
    checkpointed and deleted the WAL while this process kept committing into it, and
    those commits were lost (one run in fifteen of six processes opening a new store at
    once; tests/reliability/test_concurrent_mix.py).
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreUnavailable(f"cannot create {path}: {exc.strerror or exc}") from exc
    os.close(fd)


class SqliteBackend(Backend):
    dialect = "sqlite"
    begin_sql = "BEGIN IMMEDIATE"

    def __init__(self, config, concerns) -> None:
        super().__init__(config, concerns)
        assert config.home is not None
        self.home = config.home
        prepare_home(self.home)
        self._idle: dict[str, list[Connection]] = {c: [] for c in concerns}
        self._synchronous = "FULL" if config.durability == "full" else "NORMAL"

    def path(self, concern: str) -> Path:
        return self.home / f"{concern}.db"

    def location(self, concern: str) -> str:
        return str(self.path(concern))

    def connect(self, concern: str) -> sqlite3.Connection:
        path = self.path(concern)
        if not os.path.exists(path):
            create_private_file(path)
        raw = sqlite3.connect(path, timeout=self.config.busy_timeout, isolation_level=None,
                              check_same_thread=False, cached_statements=256)
        try:
            enable_wal(raw, self.config.busy_timeout)
            for pragma in PRAGMAS:
                raw.execute(pragma)
            raw.execute(f"PRAGMA synchronous={self._synchronous}")
            # SQLite's lower() folds ASCII only: "ÉCOLE" would not match "école".
            raw.create_function("agentkeep_lower", 1, _lower, deterministic=True)
        except BaseException:
            raw.close()
            raise
        return raw

    def checkout(self, concern: str) -> Connection:
        with self._lock:
            idle = self._idle[concern]
            if idle:
                return idle.pop()
        return Connection(self.connect(concern))

    def checkin(self, concern: str, conn: Connection, *, broken: bool = False) -> None:
        if broken and conn.raw.in_transaction:
            try:
                conn.raw.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        with self._lock:
            if not self.closed and not conn.raw.in_transaction \
                    and len(self._idle[concern]) < MAX_IDLE_CONNECTIONS:
                self._idle[concern].append(conn)
                return
        conn.raw.close()

    def close_pools(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            for conns in self._idle.values():
                conns.clear()
        for conn in idle:
            conn.raw.close()

    def translate(self, exc: Exception, concern: str) -> AgentkeepError | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        path = self.path(concern)
        text = str(exc)
        lowered = text.lower()
        if isinstance(exc, sqlite3.IntegrityError):
            return Conflict(f"{path}: {text}")
        if "locked" in lowered or "busy" in lowered:
            from ..migrations import migration_lock_timeout  # it imports this package

            return StoreBusy(f"{path} is locked by another writer; gave up after "
                             f"{self.config.busy_timeout:g} s (busy_timeout; "
                             f"{migration_lock_timeout(self.config):g} s while migrating, as "
                             "when an upgraded agentkeep opens an older store)")
        if "not a database" in lowered:
            return StoreCorrupt(f"{path} is not a valid agentkeep database: {text}")
        if "malformed" in lowered or "corrupt" in lowered:
            return StoreCorrupt(f"{path} is damaged ({text}). {DAMAGE_HINT}")
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_FULL \
                or "database or disk is full" in lowered:
            return self._full_or_damaged(path, text)
        if any(word in lowered for word in ("readonly", "unable to open", "disk i/o",
                                            "full", "read-only")):
            # SQLite says "unable to open database file" for a read-only directory (it
            # cannot create the -wal and -shm files): say what the user can fix.
            if os.path.isdir(path):
                return StoreUnavailable(f"{path}: {text} (it is a directory, not a database "
                                        "file)")
            if not os.access(self.home, os.W_OK):
                return StoreUnavailable(f"{path}: {text} (the store directory {self.home} "
                                        "is read-only; SQLite needs to write its -wal and "
                                        "-shm files there even to read)")
            if os.path.exists(path) and not os.access(path, os.R_OK):
                return StoreUnavailable(f"{path}: {text} (this user may not read the file; "
                                        "check its owner and mode)")
            if os.path.exists(path) and not os.access(path, os.W_OK):
                return StoreUnavailable(f"{path}: {text} (the file is read-only)")
            return StoreUnavailable(f"{path}: {text}")
        return AgentkeepError(f"{path}: {text}")

    def _full_or_damaged(self, path: Path, text: str) -> AgentkeepError:
        """SQLITE_FULL: a full disk or file size limit, or a damaged file (see
        FULL_DISK_MARGIN); when unsure, the disk is full."""
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1
        if resource and limit != resource.RLIM_INFINITY:
            return StoreUnavailable(f"{path}: {text} (this process may write files of at "
                                    f"most {human_size(limit)}, RLIMIT_FSIZE)")
        try:
            free = shutil.disk_usage(self.home).free
            size = sum(os.path.getsize(name) for name in (path, f"{path}-wal")
                       if os.path.exists(name))
        except OSError:
            return StoreUnavailable(f"{path}: {text}")
        if free < max(FULL_DISK_MARGIN, size):
            return StoreUnavailable(f"{path}: {text} ({human_size(free)} free in {self.home})")
        return StoreCorrupt(f"{path} is probably damaged: SQLite said \"{text}\", but its "
                            f"disk has {human_size(free)} free. {DAMAGE_HINT}")

"""What both backends share: transaction nesting, connection pinning, closing."""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

from ..config import StoreConfig
from ..errors import AgentkeepError, StoreClosed

T = TypeVar("T")


def quote_name(name: str) -> str:
    """An SQL identifier, double-quoted (names from the catalogue or agentkeep's own
    schema, never from users)."""
    return '"' + name.replace('"', '""') + '"'


def postgres_lock_timeout(seconds: float) -> str:
    """PostgreSQL's lock_timeout for a wait of ``seconds`` (0 there would mean forever)."""
    return f"{max(1, round(seconds * 1000))}ms"


class Connection:
    """A driver connection with the four calls the stores need. Rows are tuples."""

    # release_due: a savepoint whose block succeeded, released with the next command that
    # goes to the server anyway (Backend.combines_commands).
    __slots__ = ("raw", "release_due")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.release_due: str | None = None

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.raw.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.raw.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.raw.execute(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)


class Frame:
    """One open transaction block: the outermost owns the connection."""

    # A plain class, not a dataclass: importing dataclasses (and inspect with it) was
    # a fifth of `import agentkeep`'s cold-start time.
    __slots__ = ("concern", "conn", "savepoint")

    def __init__(self, concern: str, conn: Connection, savepoint: str | None) -> None:
        self.concern, self.conn, self.savepoint = concern, conn, savepoint


class Backend(ABC):
    """Connection pools per concern plus nested transactions.

    The transaction in progress is kept in a ContextVar, not a thread-local, so that
    the async store (which runs each call in a worker thread with the caller's
    context copied) sees the transaction its task opened.
    """

    dialect = ""
    begin_sql = "BEGIN"
    # True when one round trip can carry several parameterless commands (PostgreSQL's
    # simple query protocol). A nested block's RELEASE SAVEPOINT then waits and goes with
    # the next SAVEPOINT, or not at all when an enclosing block ends first (its release,
    # rollback or commit covers it): a call inside store.transaction() costs one round
    # trip of savepoint bookkeeping instead of two. At most one savepoint waits at a time.
    combines_commands = False

    def __init__(self, config: StoreConfig, concerns: tuple[str, ...]) -> None:
        self.config = config
        self.concerns = concerns
        self.closed = False
        self._lock = threading.Lock()
        self._savepoints = itertools.count(1)
        # Never mutated in place: each transaction sets a new mapping, so contexts copied
        # into worker threads cannot see each other's transactions.
        self._pinned: ContextVar[Mapping[str, Connection]] = ContextVar(
            f"agentkeep_tx_{id(self)}", default=MappingProxyType({}))

    # --- to be provided by a dialect -------------------------------------------------
    @abstractmethod
    def checkout(self, concern: str) -> Connection:
        """A connection of the concern's pool (created if none is idle)."""

    @abstractmethod
    def checkin(self, concern: str, conn: Connection, *, broken: bool = False) -> None:
        """Give a connection back; a broken one is rolled back or closed."""

    @abstractmethod
    def translate(self, exc: Exception, concern: str) -> AgentkeepError | None:
        """The agentkeep error for a driver exception, or None if it is not one."""

    @abstractmethod
    def close_pools(self) -> None:
        """Close every idle connection and the pools."""

    @abstractmethod
    def location(self, concern: str) -> str:
        """Where the concern lives, as shown to users (a file, or a server and schema)."""

    def is_lost(self, conn: Connection) -> bool:
        """True when the connection is dead (dropped by the server or the network)."""
        return False

    def is_aborted(self, conn: Connection) -> bool:
        """True when a failed statement has spoiled the connection's open transaction."""
        return False  # SQLite keeps a transaction usable after a failed statement

    def check_committable(self, frame: Frame) -> None:
        """Raise if the transaction can no longer commit."""
        # PostgreSQL's COMMIT of an aborted transaction rolls back without an error: a
        # caller who caught the failure inside the block would lose its writes silently.
        if self.is_aborted(frame.conn):
            raise AgentkeepError(f"{self.location(frame.concern)}: a statement failed inside "
                                 "this transaction, so it was rolled back instead of committed")

    # --- shared ------------------------------------------------------------------------
    def ensure_open(self) -> None:
        if self.closed:
            raise StoreClosed("the store is closed; open it again with agentkeep.open() "
                              "(agentkeep.open_async() for the async API)")

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.close_pools()

    def in_transaction(self, concern: str) -> bool:
        return concern in self._pinned.get()

    @contextmanager
    def translated(self, concern: str) -> Iterator[None]:
        try:
            yield
        except AgentkeepError:
            raise
        except Exception as exc:
            # SQLAlchemy (migrations) wraps the driver's exception in .orig.
            error = self.translate(getattr(exc, "orig", None) or exc, concern)
            if error is None:
                raise
            raise error from exc

    def read(self, concern: str) -> _Read:
        """A connection for reading: the one of the open transaction, else a pooled one."""
        return _Read(self, concern)

    def start(self, concern: str) -> Frame:
        """Open a transaction, or a savepoint inside the one already open."""
        if self.closed:
            self.ensure_open()
        pinned = self._pinned.get().get(concern)
        try:
            if pinned is not None:
                name = f"agentkeep_sp{next(self._savepoints)}"
                due, pinned.release_due = pinned.release_due, None
                self._run_commands(pinned, ([f"RELEASE SAVEPOINT {due}"] if due else [])
                                   + [f"SAVEPOINT {name}"])
                return Frame(concern, pinned, name)
            conn = self.checkout(concern)
            try:
                conn.raw.execute(self.begin_sql)
            except BaseException as exc:
                self.checkin(concern, conn, broken=True)
                if not (isinstance(exc, Exception) and self.is_lost(conn)):
                    raise
                # A pooled connection the server or the network had dropped: nothing was
                # done yet, so one retry on a fresh connection is safe (checkin has made
                # the pool test its other idle connections).
                conn = self.checkout(concern)
                try:
                    conn.raw.execute(self.begin_sql)
                except BaseException:
                    self.checkin(concern, conn, broken=True)
                    raise
            return Frame(concern, conn, None)
        except Exception as exc:
            error = self._translated(exc, concern)
            if error is None:
                raise
            raise error from exc

    def _run_commands(self, conn: Connection, commands: list[str]) -> None:
        """Parameterless commands in order (in one round trip where the dialect can)."""
        for command in commands:
            conn.raw.execute(command)

    def _translated(self, exc: Exception, concern: str) -> AgentkeepError | None:
        """agentkeep's error for a driver exception; None to re-raise ``exc`` as it is."""
        if isinstance(exc, AgentkeepError):
            return None
        return self.translate(getattr(exc, "orig", None) or exc, concern)

    def finish(self, frame: Frame, ok: bool) -> None:
        """Commit (or release) the frame when ``ok``, else roll it back."""
        conn = frame.conn
        raw = conn.raw
        # A savepoint waiting for its release was made inside this frame: this frame's
        # release, rollback or commit covers it.
        conn.release_due = None
        if frame.savepoint is not None:
            if ok and self.combines_commands and not self.is_aborted(conn):
                conn.release_due = frame.savepoint
                return
            undo = [] if ok else [f"ROLLBACK TO SAVEPOINT {frame.savepoint}"]
            try:
                self._run_commands(conn, undo + [f"RELEASE SAVEPOINT {frame.savepoint}"])
            except Exception as exc:
                error = self._translated(exc, frame.concern)
                if error is None:
                    raise
                raise error from exc
            return
        broken = False
        try:
            if ok:
                self.check_committable(frame)
            raw.execute("COMMIT" if ok else "ROLLBACK")
        except Exception as exc:
            broken = True
            try:
                raw.execute("ROLLBACK")
            except Exception:
                pass
            error = self._translated(exc, frame.concern)
            if error is None:
                raise
            raise error from exc
        finally:
            self.checkin(frame.concern, frame.conn, broken=broken)

    def pin(self, frame: Frame) -> object:
        return self._pinned.set({**self._pinned.get(), frame.concern: frame.conn})

    def unpin(self, token: object) -> None:
        self._pinned.reset(token)  # type: ignore[arg-type]

    def alone(self, concern: str, statement: Callable[[Connection], T]) -> T:
        """Run ``statement(conn)``, one self-contained SQL statement, as a transaction.

        Here: inside write(). PostgreSQL runs it without BEGIN and COMMIT when no
        transaction is open (a statement commits by itself in autocommit mode).
        """
        with self.write(concern) as conn:
            return statement(conn)

    def write(self, concern: str) -> _Write:
        """A transaction (or a savepoint when nested); commits on success, rolls back on error."""
        return _Write(self, concern)


# Class-based context managers: read() and write() run on every call of every store
# method, and a generator-based @contextmanager costs ~1.5 µs more per use.
class _Read:
    __slots__ = ("backend", "concern", "conn", "pinned")

    def __init__(self, backend: Backend, concern: str) -> None:
        self.backend = backend
        self.concern = concern

    def __enter__(self) -> Connection:
        backend = self.backend
        if backend.closed:
            backend.ensure_open()
        pinned = backend._pinned.get().get(self.concern)
        self.pinned = pinned is not None
        if self.pinned:
            self.conn = pinned
            return pinned
        try:
            self.conn = backend.checkout(self.concern)
        except Exception as exc:
            error = backend._translated(exc, self.concern)
            if error is None:
                raise
            raise error from exc
        return self.conn

    def __exit__(self, kind, exc, traceback) -> None:
        error = None
        if isinstance(exc, Exception):
            error = self.backend._translated(exc, self.concern)  # a driver error
        if not self.pinned:
            self.backend.checkin(self.concern, self.conn, broken=error is not None)
        if error is not None:
            raise error from exc


class _Write:
    __slots__ = ("backend", "concern", "frame", "token")

    def __init__(self, backend: Backend, concern: str) -> None:
        self.backend = backend
        self.concern = concern

    def __enter__(self) -> Connection:
        self.frame = self.backend.start(self.concern)
        self.token = self.backend.pin(self.frame)
        return self.frame.conn

    def __exit__(self, kind, exc, traceback) -> None:
        backend = self.backend
        backend.unpin(self.token)
        backend.finish(self.frame, exc is None)
        if isinstance(exc, Exception):
            error = backend._translated(exc, self.concern)
            if error is not None:
                raise error from exc

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
from ..errors import AgentkeepError, StoreBusy, StoreClosed

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
    # frames: the open transaction's blocks, outermost first. lock: held by the call
    # using the connection. Async tasks share a transaction through their copied
    # contexts, so calls of concurrent tasks take turns, and a call is refused unless it
    # belongs to the innermost open block (Backend.enter_shared).
    __slots__ = ("raw", "release_due", "frames", "lock")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.release_due: str | None = None
        self.frames: list[Frame] = []
        self.lock = threading.RLock()

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
        self._pinned: ContextVar[Mapping[str, Frame]] = ContextVar(
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

    def enter_shared(self, frame: Frame) -> Connection:
        """Take the lock of ``frame``'s connection for a call or block inside ``frame``.

        Refused (lock released) unless ``frame`` is the innermost open block: a task
        whose transaction has ended, or which runs beside a task that has a nested block
        open, would otherwise write into a transaction or savepoint that is not its own
        (rolled back with another task's block, or committed after its own failed).
        """
        conn = frame.conn
        # Calls of one transaction take milliseconds; a longer wait is a task or thread
        # sharing the transaction that waits for this one (a progress callback of an
        # export, say): an error then, not a hang.
        if not conn.lock.acquire(timeout=max(1.0, self.config.busy_timeout)):
            raise StoreBusy(
                f"{self.location(frame.concern)}: another call in this transaction held its "
                f"connection for over {max(1.0, self.config.busy_timeout):g} s (does it wait "
                "for this one? a task or thread sharing a transaction must not)")
        frames = conn.frames
        if frames and frames[-1] is frame:
            return conn
        conn.lock.release()
        if frame not in frames:
            raise AgentkeepError(
                f"{self.location(frame.concern)}: the transaction this call was made in has "
                "already ended (a task or thread started inside the block outlived it)")
        raise AgentkeepError(
            f"{self.location(frame.concern)}: another task has a nested transaction block "
            "open inside this transaction; concurrent tasks may share a transaction only "
            "while none of them is inside a nested block (give each task its own "
            "transaction, or finish the nested block first)")

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
        return self._start(concern, self._pinned.get().get(concern))

    def _start(self, concern: str, pinned: Frame | None) -> Frame:
        if self.closed:
            self.ensure_open()
        try:
            if pinned is not None:
                shared = self.enter_shared(pinned)
                try:
                    name = f"agentkeep_sp{next(self._savepoints)}"
                    due, shared.release_due = shared.release_due, None
                    self._run_commands(shared, ([f"RELEASE SAVEPOINT {due}"] if due else [])
                                       + [f"SAVEPOINT {name}"])
                    frame = Frame(concern, shared, name)
                    shared.frames.append(frame)
                    return frame
                finally:
                    shared.lock.release()
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
            frame = Frame(concern, conn, None)
            conn.frames[:] = [frame]
            return frame
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
        with frame.conn.lock:  # after the call of another task sharing the transaction
            self._finish(frame, ok)

    def _finish(self, frame: Frame, ok: bool) -> None:
        """finish() for a caller holding the connection's lock, or needing none."""
        frames = frame.conn.frames
        left_open = not frames or frames[-1] is not frame
        if not left_open:
            frames.pop()
        elif frame not in frames:  # ended with an enclosing block another task closed
            raise AgentkeepError(
                f"{self.location(frame.concern)}: this transaction block had already "
                "ended: another task closed the block it was opened in first")
        else:
            # Blocks still open inside this one were opened by other tasks (a task's own
            # blocks close first): roll them back with this one rather than commit them
            # half done.
            del frames[frames.index(frame):]
            ok = False
        self._end(frame, ok)
        if left_open:
            raise AgentkeepError(
                f"{self.location(frame.concern)}: a nested transaction block of another "
                "task was still open when this block ended, so this block was rolled back; "
                "finish concurrent tasks' blocks before the block they run in")

    def _end(self, frame: Frame, ok: bool) -> None:
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
        return self._pinned.set({**self._pinned.get(), frame.concern: frame})

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
        """A transaction (or a savepoint when nested) for one call of a store: commits on
        success, rolls back on error; the call holds the connection until it returns."""
        return _Write(self, concern)

    def transaction(self, concern: str) -> _Block:
        """A caller's ``with store.transaction():`` block: as write(), but the connection
        is held per call inside it, so async tasks sharing the block take turns."""
        return _Block(self, concern)

    def scratch(self, concern: str) -> _Scratch:
        """As write(), but always rolled back: work to look at, then undo."""
        return _Scratch(self, concern)


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
            self.conn = backend.enter_shared(pinned)
            return self.conn
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
        if self.pinned:
            self.conn.lock.release()
        else:
            self.backend.checkin(self.concern, self.conn, broken=error is not None)
        if error is not None:
            raise error from exc


class _Write:
    __slots__ = ("backend", "concern", "frame", "token", "held")

    holds_connection = True  # for the whole block (a store call); see _Block
    commits = True

    def __init__(self, backend: Backend, concern: str) -> None:
        self.backend = backend
        self.concern = concern

    def __enter__(self) -> Connection:
        backend = self.backend
        pinned = backend._pinned.get().get(self.concern)
        held = None
        if pinned is not None and self.holds_connection:
            held = backend.enter_shared(pinned)  # after another task's call, if one runs
        try:
            frame = backend._start(self.concern, pinned)
        except BaseException:
            if held is not None:
                held.lock.release()
            raise
        self.frame, self.held = frame, held
        self.token = backend.pin(frame)
        return frame.conn

    def __exit__(self, kind, exc, traceback) -> None:
        backend = self.backend
        backend.unpin(self.token)
        try:
            ok = exc is None and self.commits
            if self.holds_connection:
                # A call: it holds the lock of a shared transaction; a transaction of its
                # own is out of every other task's reach (no lock needed).
                backend._finish(self.frame, ok)
            else:
                backend.finish(self.frame, ok)
        finally:
            if self.held is not None:
                self.held.lock.release()
        if isinstance(exc, Exception):
            error = backend._translated(exc, self.concern)
            if error is not None:
                raise error from exc


class _Block(_Write):
    """A caller's transaction block: each call inside it holds the connection in turn,
    so concurrent tasks sharing the block never interleave their statements."""

    __slots__ = ()
    holds_connection = False


class _Scratch(_Write):
    __slots__ = ()
    commits = False

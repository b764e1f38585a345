"""What both backends share: transaction nesting, connection pinning, closing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..config import StoreConfig
from ..errors import AgentkeepError, StoreClosed


class Connection:
    """A driver connection with the four calls the stores need. Rows are tuples."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.raw.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.raw.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.raw.execute(sql, params).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)


@dataclass
class Frame:
    """One open transaction block: the outermost owns the connection."""

    concern: str
    conn: Connection
    savepoint: str | None


class Backend:
    """Connection pools per concern plus nested transactions.

    The transaction in progress is kept in a ContextVar, not a thread-local, so that
    the async store (which runs each call in a worker thread with the caller's
    context copied) sees the transaction its task opened.
    """

    dialect = ""
    begin_sql = "BEGIN"

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
    def checkout(self, concern: str) -> Connection:
        raise NotImplementedError

    def checkin(self, concern: str, conn: Connection, *, broken: bool = False) -> None:
        raise NotImplementedError

    def translate(self, exc: Exception, concern: str) -> AgentkeepError | None:
        """The agentkeep error for a driver exception, or None if it is not one."""
        raise NotImplementedError

    def close_pools(self) -> None:
        raise NotImplementedError

    def location(self, concern: str) -> str:
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------
    def ensure_open(self) -> None:
        if self.closed:
            raise StoreClosed("the store is closed; open it again with agentkeep.open()")

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
            error = self.translate(exc, concern)
            if error is None:
                raise
            raise error from exc

    @contextmanager
    def read(self, concern: str) -> Iterator[Connection]:
        """A connection for reading: the one of the open transaction, else a pooled one."""
        self.ensure_open()
        pinned = self._pinned.get().get(concern)
        if pinned is not None:
            with self.translated(concern):
                yield pinned
            return
        with self.translated(concern):
            conn = self.checkout(concern)
        broken = False
        try:
            with self.translated(concern):
                yield conn
        except AgentkeepError as exc:
            broken = exc.__cause__ is not None
            raise
        finally:
            self.checkin(concern, conn, broken=broken)

    def start(self, concern: str) -> Frame:
        """Open a transaction, or a savepoint inside the one already open."""
        self.ensure_open()
        pinned = self._pinned.get().get(concern)
        with self.translated(concern):
            if pinned is not None:
                name = f"agentkeep_sp{next(self._savepoints)}"
                pinned.raw.execute(f"SAVEPOINT {name}")
                return Frame(concern, pinned, name)
            conn = self.checkout(concern)
            try:
                conn.raw.execute(self.begin_sql)
            except BaseException:
                self.checkin(concern, conn, broken=True)
                raise
            return Frame(concern, conn, None)

    def finish(self, frame: Frame, ok: bool) -> None:
        """Commit (or release) the frame when ``ok``, else roll it back."""
        raw = frame.conn.raw
        if frame.savepoint is not None:
            with self.translated(frame.concern):
                if not ok:
                    raw.execute(f"ROLLBACK TO SAVEPOINT {frame.savepoint}")
                raw.execute(f"RELEASE SAVEPOINT {frame.savepoint}")
            return
        broken = False
        try:
            with self.translated(frame.concern):
                raw.execute("COMMIT" if ok else "ROLLBACK")
        except BaseException:
            broken = True
            try:
                raw.execute("ROLLBACK")
            except Exception:
                pass
            raise
        finally:
            self.checkin(frame.concern, frame.conn, broken=broken)

    def pin(self, frame: Frame) -> object:
        return self._pinned.set({**self._pinned.get(), frame.concern: frame.conn})

    def unpin(self, token: object) -> None:
        self._pinned.reset(token)  # type: ignore[arg-type]

    @contextmanager
    def write(self, concern: str) -> Iterator[Connection]:
        """A transaction (or a savepoint when nested); commits on success, rolls back on error."""
        frame = self.start(concern)
        token = self.pin(frame)
        ok = False
        try:
            with self.translated(concern):
                yield frame.conn
            ok = True
        finally:
            self.unpin(token)
            self.finish(frame, ok)

"""PostgreSQL: one schema per concern in one database, a connection pool per schema.

Connections run in autocommit mode and transactions are opened with explicit
``BEGIN`` so that the transaction code is the same as SQLite's. Statements are
prepared on first use. ``json`` columns come back as text, exactly as written.
"""

from __future__ import annotations

import functools
import re
import select

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from ..errors import (
    AgentkeepError,
    Conflict,
    StoreBusy,
    StoreUnavailable,
)
from ..migrations import migration_lock_timeout
from .base import Backend, Connection, postgres_lock_timeout

CONNECT_TIMEOUT = 10

@functools.lru_cache(maxsize=1024)  # bounded: search builds statements from user queries
def to_psycopg(sql: str) -> str:
    """Rewrite ``?`` placeholders as ``%s`` and ``?b`` (sent in binary) as ``%b``, and
    escape literal ``%``; cached."""
    return sql.replace("%", "%%").replace("?b", "%b").replace("?", "%s")


class PostgresConnection(Connection):
    __slots__ = ()

    def one(self, sql, params=()):
        return self.raw.execute(to_psycopg(sql), params).fetchone()

    def all(self, sql, params=()):
        return self.raw.execute(to_psycopg(sql), params).fetchall()

    def run(self, sql, params=()):
        return self.raw.execute(to_psycopg(sql), params).rowcount

    def many(self, sql, rows):
        with self.raw.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), rows)

    def copy(self, sql, rows):
        """``COPY ... FROM STDIN`` of new rows: several times faster than INSERT for a
        batch (no statement per row)."""
        with self.raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)


def _closed_by_server(raw: psycopg.Connection) -> bool:
    """Whether an idle pooled connection has something to read, without a round trip:
    the server closed it or sent a termination notice while it sat in the pool.

    poll, not select: select() refuses descriptors numbered 1024 and above, which a busy
    server process has. When the check itself fails, the answer is "not known to be
    closed" and the statement is sent as it would be without the check.
    """
    if raw.closed or raw.broken:
        return True
    try:
        poller = select.poll()
        poller.register(raw.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return False


def schema_name(prefix: str, concern: str) -> str:
    return f"{prefix}_{concern}"


def _configure(conn: psycopg.Connection) -> None:
    # json is stored as the caller's text; loading it ourselves keeps float forms and
    # key order exactly as they were on both backends.
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)
    # UTC and ISO whatever the server's, the role's or the environment's (PGTZ,
    # PGDATESTYLE) defaults: times read as text (sql.MESSAGE_COLUMNS) have one form.
    conn.execute("SELECT set_config('TimeZone', 'UTC', false), "
                 "set_config('DateStyle', 'ISO', false)")


class PostgresBackend(Backend):
    dialect = "postgresql"
    begin_sql = "BEGIN"
    combines_commands = True

    def __init__(self, config, concerns) -> None:
        super().__init__(config, concerns)
        assert config.url is not None
        self.url = config.url
        self.probe()
        self._pools: dict[str, psycopg_pool.ConnectionPool] = {}
        for concern in concerns:
            schema = self.schema(concern)
            pool = psycopg_pool.ConnectionPool(
                self.url, min_size=1, max_size=config.pool_size, open=False,
                configure=_configure, name=f"agentkeep-{concern}",
                timeout=max(config.busy_timeout, 1.0),
                kwargs={"autocommit": True, "prepare_threshold": 0,
                        "connect_timeout": CONNECT_TIMEOUT,
                        # Named so that restore (and DBAs) can find the app's connections.
                        "application_name": f"agentkeep {config.schema_prefix}",
                        # Every lock wait bounded as on SQLite (then StoreBusy).
                        "options": f"-c search_path={schema} -c lock_timeout="
                                   f"{postgres_lock_timeout(config.busy_timeout)}"})
            pool.open(wait=False)
            self._pools[concern] = pool

    def probe(self) -> None:
        """Connect once so that a wrong URL fails at open() with a clear message."""
        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            raise StoreUnavailable(f"cannot connect to PostgreSQL at "
                                   f"{self.config.describe()}: {reason}") from exc

    def schema(self, concern: str) -> str:
        return schema_name(self.config.schema_prefix, concern)

    def location(self, concern: str) -> str:
        return f"{self.config.describe()} (schema {self.schema(concern)})"

    def checkout(self, concern: str) -> Connection:
        try:
            raw = self._pools[concern].getconn()
        except psycopg_pool.PoolTimeout as exc:
            # The pool cannot tell "every connection busy" from "server unreachable";
            # one direct connection attempt can, and only on this slow path.
            self.probe()
            raise StoreBusy(f"no PostgreSQL connection free at {self.config.describe()} "
                            f"within {self.config.busy_timeout:g} s") from exc
        except psycopg_pool.PoolClosed:
            self.ensure_open()  # the store was closed while this call began: StoreClosed
            raise
        return PostgresConnection(raw)

    def is_lost(self, conn: Connection) -> bool:
        return conn.raw.broken or conn.raw.closed

    def checkin(self, concern: str, conn: Connection, *, broken: bool = False) -> None:
        raw = conn.raw
        if broken and not raw.closed and raw.info.transaction_status != 0:
            try:
                raw.execute("ROLLBACK")
            except psycopg.Error:
                pass
        pool = self._pools.get(concern)
        if pool is None or pool.closed:
            raw.close()
            return
        lost = broken and self.is_lost(conn)
        pool.putconn(raw)  # the pool discards a dead connection
        if lost:
            # When the server restarts, terminates our backends or the network drops,
            # every idle connection of the pool is dead too, and each would fail one more
            # call. Test them now (one round trip each) and replace the dead ones, so the
            # next call works (tests/reliability/test_failing_storage.py).
            pool.check()

    def alone(self, concern, statement):
        """Run one self-committing statement in autocommit mode: one round trip instead
        of three (BEGIN, statement, COMMIT), ~30 % of a single append.

        Without BEGIN there is no harmless first statement to find a dead pooled
        connection with, so the statement is retried on another connection only when it
        certainly did not commit: the connection was closed by the server before it was
        sent (seen in the socket), or the server answered that it terminated the backend
        (57P01: the statement's implicit transaction was rolled back).
        """
        if self.closed:
            self.ensure_open()
        if self.in_transaction(concern):
            return super().alone(concern, statement)
        for attempt in range(3):
            try:
                conn = self.checkout(concern)
            except Exception as exc:  # the pool closed by another thread, say
                error = self._translated(exc, concern)
                if error is None:
                    raise
                raise error from exc
            try:
                if _closed_by_server(conn.raw):
                    conn.raw.close()
                    self.checkin(concern, conn, broken=True)  # and test the pool's others
                    continue
                result = statement(conn)
            except AgentkeepError:  # the statement's own verdict (say, NotFound)
                self.checkin(concern, conn)
                raise
            except BaseException as exc:
                self.checkin(concern, conn, broken=True)
                if isinstance(exc, pg_errors.AdminShutdown) and attempt < 2:
                    continue  # terminated: the statement's transaction was rolled back
                error = self._translated(exc, concern) if isinstance(exc, Exception) \
                    else None
                if error is None:
                    raise
                raise error from exc
            self.checkin(concern, conn)
            return result
        raise StoreUnavailable(f"lost every pooled connection to {self.location(concern)}")

    def close_pools(self) -> None:
        for pool in self._pools.values():
            pool.close()

    def _run_commands(self, conn, commands):
        # One simple-protocol query; never prepared (a prepared statement holds one command).
        conn.raw.execute("; ".join(commands), prepare=False)

    def is_aborted(self, conn) -> bool:
        return conn.raw.info.transaction_status == TransactionStatus.INERROR

    def translate(self, exc: Exception, concern: str) -> AgentkeepError | None:
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return StoreBusy(f"no PostgreSQL connection free at {self.location(concern)}")
        if not isinstance(exc, psycopg.Error):
            return None
        text = re.sub(r"\s+", " ", str(exc)).strip()
        where = self.location(concern)
        if isinstance(exc, psycopg.IntegrityError):
            return Conflict(f"{where}: {text}")
        if isinstance(exc, pg_errors.LockNotAvailable):  # lock_timeout (agentkeep has no NOWAIT)
            return StoreBusy(f"{where}: a lock another transaction held was not free in time "
                             f"({self.config.busy_timeout:g} s, busy_timeout; "
                             f"{migration_lock_timeout(self.config):g} s while migrating); "
                             "retry later")
        if isinstance(exc, (pg_errors.DeadlockDetected, pg_errors.SerializationFailure,
                            pg_errors.QueryCanceled)):
            return StoreBusy(f"{where}: {text}")
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return StoreUnavailable(f"{where} is read-only: {text}")
        if isinstance(exc, (pg_errors.DiskFull, pg_errors.InsufficientResources)):
            return StoreUnavailable(f"{where} is out of space or resources: {text}")
        if isinstance(exc, pg_errors.ProgramLimitExceeded):  # an OperationalError too
            return AgentkeepError(f"{where}: over a PostgreSQL limit: {text}")
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailable(f"lost the connection to {where}: {text}")
        return AgentkeepError(f"{where}: {text}")

"""Full-text search: FTS5 fed from a high-water mark on SQLite, a tsvector table fed from a
queue on PostgreSQL; both indexed by the next search, off the append path."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from ..codec import check_choice, check_id, check_limit, check_time
from . import sql
from .base import CONCERN, ChatBase
from .models import Message, SearchHit
from .rules import ROLES, check_marks

# A hit's columns after the message's: the session title, the snippet, then the score
# (PostgreSQL) or the FTS5 rowid (SQLite, whose scores come from SEARCH_TOP).
TITLE, SNIPPET = sql.MESSAGE_WIDTH, sql.MESSAGE_WIDTH + 1
SCORE = ROWID = sql.MESSAGE_WIDTH + 2
VACUUM_QUEUE_AFTER = 10_000  # messages indexed at once (PostgreSQL)
PARALLEL_QUEUE = 20_000  # a queue spanning this many pks is indexed on several connections
PARALLEL_HELPERS = 4


class Search(ChatBase):
    """The search part of :class:`ChatStore`."""

    def catch_up_index(self) -> int:
        """Index the messages appended since the last search; returns how many.

        ``search`` does this itself; call it (or ``agentkeep optimize``) to move the
        indexing cost off the first search after a bulk import.
        """
        if self._dialect == "postgresql":
            alone = not self._backend.in_transaction(CONCERN)
            with self._write() as conn:
                conn.one(sql.LOCK_BACKLOG_POSTGRES)  # held while helpers work, if any
                low, high = conn.one(sql.BACKLOG_SPAN_POSTGRES) if alone else (None, None)
                # Helpers need connections besides this one: a pool of one or two
                # would leave them waiting on it.
                if low is not None and high - low >= PARALLEL_QUEUE \
                        and self._backend.config.pool_size > 2:
                    indexed = self._index_ranges(low, high)
                else:
                    indexed = conn.run(sql.INDEX_BACKLOG_POSTGRES)
            if indexed >= VACUUM_QUEUE_AFTER and alone:
                self._reclaim_queue()
            return indexed
        with self._read() as conn:
            newest, indexed, _ = conn.one(sql.SEARCH_BACKLOG)
        return self._index_backlog() if newest > indexed else 0

    def _index_ranges(self, low: int, high: int) -> int:
        """PostgreSQL: index the queued pks low..high in ranges, each in its own
        transaction on its own connection, at once (a thread each). Outside any caller's
        transaction only: the helpers cannot see uncommitted rows."""
        helpers = min(PARALLEL_HELPERS, self._backend.config.pool_size - 1)
        step = (high - low) // helpers + 1
        counts: list[int] = []
        errors: list[BaseException] = []

        def index(start: int) -> None:
            try:
                with self._write() as conn:  # a new thread: a connection of its own
                    counts.append(conn.run(sql.INDEX_BACKLOG_RANGE_POSTGRES,
                                           (start, min(start + step - 1, high))))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller below
                errors.append(exc)

        threads = [threading.Thread(target=index, args=(start,), daemon=True)
                   for start in range(low, high + 1, step)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:  # the ranges that committed stay indexed; the rest stay queued
            raise errors[0]
        return sum(counts)

    def _reclaim_queue(self) -> None:
        """PostgreSQL, outside a transaction: an emptied queue is all dead rows until
        autovacuum comes by, ~60 bytes per message on disk after a bulk import."""
        with self._read() as conn:
            conn.raw.execute(sql.VACUUM_BACKLOG_POSTGRES, prepare=False)

    def _index_backlog(self) -> int:
        with self._write() as conn:
            newest, indexed, _ = conn.one(sql.SEARCH_BACKLOG)
            if newest > indexed:
                conn.run(sql.INDEX_BACKLOG, (indexed, newest))
                conn.run(sql.SET_HIGH_WATER, (newest,))
            return max(0, newest - indexed)

    def search(self, query: str, *, session_id: str | None = None, role: str | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int = 20,
               marks: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Full-text search over message content, best hits first (read-only).

        Syntax, the same on both backends: words (all must match), ``"a phrase"``,
        ``OR`` between words, ``-word`` to exclude, ``prefix*``. Snippets wrap matches in
        ``marks``. Soft-deleted sessions are left out.

        Raises:
            InvalidInput: the query is empty or malformed (the message explains the syntax).
        """
        from .search_syntax import parse_query, to_fts5  # ~7 ms: on first use

        parsed = parse_query(query)
        start, stop = check_marks(marks)
        limit = check_limit("limit", limit, optional=False, maximum=10_000)
        clauses, params = [], []
        if session_id is not None:
            clauses.append("m.session_id = ?")
            params.append(check_id("session_id", session_id))
        if role is not None:
            clauses.append("m.role = ?")
            params.append(check_choice("role", role, ROLES))
        if since is not None:
            clauses.append("m.created_at >= ?")
            params.append(self._time(check_time("since", since)))
        if until is not None:
            clauses.append("m.created_at < ?")
            params.append(self._time(check_time("until", until)))
        filters = "".join(f" AND {clause}" for clause in clauses)
        if self._dialect == "sqlite":
            return self._search_sqlite(to_fts5(parsed), filters, params, limit, start, stop)
        return self._search_postgres(parsed, filters, params, limit, start, stop)

    def _search_postgres(self, parsed: Any, filters: str, params: list, limit: int,
                         start: str, stop: str) -> list[SearchHit]:
        from .search_syntax import to_tsquery_sql

        expression, query_params = to_tsquery_sql(parsed, sql.SEARCH_CONFIG_POSTGRES)
        options = (f'StartSel="{start}", StopSel="{stop}", MaxWords=24, MinWords=8, '
                   'MaxFragments=2, FragmentDelimiter=" … "')
        with self._read() as conn:
            queued, any_deleted = conn.one(sql.SEARCH_PENDING_POSTGRES)
        if queued:  # a committed message is always findable by the next search
            self.catch_up_index()
        variant = "filtered" if filters or any_deleted else "plain"
        statement = sql.SEARCH_POSTGRES[variant].replace("{tsquery}", expression).replace(
            "{filters}", filters)
        with self._read() as conn:
            rows = conn.all(statement, (*query_params, *params, limit, options))
        return [SearchHit(Message(r), r[TITLE], r[SNIPPET], float(r[SCORE])) for r in rows]

    def _search_sqlite(self, match: str, filters: str, params: list, limit: int, start: str,
                       stop: str) -> list[SearchHit]:
        with self._read() as conn:
            newest, indexed, any_deleted = conn.one(sql.SEARCH_BACKLOG)
        if newest > indexed:  # a committed message is always findable by the next search
            self._index_backlog()
        if filters or any_deleted:
            top = sql.SEARCH_TOP["filtered"].replace(
                "{filters}", " AND s.status <> 'deleted'" + filters)
            top_params = (match, *params, limit)
        else:
            top, top_params = sql.SEARCH_TOP["plain"], (match, limit)
        with self._read() as conn:
            scores = dict(conn.all(top, top_params))  # rowid -> score, best first
            if not scores:
                return []
            statement = sql.SEARCH_SQLITE.replace("{rowids}", ", ".join("?" * len(scores)))
            rows = {r[ROWID]: r for r in conn.all(statement, (start, stop, match, *scores))}
        return [SearchHit(Message(rows[rowid]), rows[rowid][TITLE], rows[rowid][SNIPPET],
                          float(score))
                for rowid, score in scores.items() if rowid in rows]


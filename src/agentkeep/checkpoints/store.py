"""Checkpoints of agent frameworks: serialized graph state per thread, with retention.

The data model is LangGraph's, kept framework-neutral: a **thread** (a conversation or
run history) has checkpoints in one or more **namespaces** (``""`` for the graph,
others for subgraphs); a checkpoint has an id that sorts by time, a parent, the
framework's serialized state (``type`` + bytes, never decoded here), JSON metadata (for
filtering) and the **pending writes** tasks made against it. ``AgentkeepSaver``
(``agentkeep.integrations.langgraph``) is the LangGraph face of this store.

Checkpoint tables are where long-running agents grow without bound, so retention is
built in: :meth:`CheckpointStore.prune` keeps the newest N checkpoints of each thread
and namespace and/or drops those older than an age, and :meth:`CheckpointStore.threads`
lists the threads with their sizes and last activity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..backend import Backend, Connection
from ..codec import check_id, check_limit, check_text, check_time, dump_json, now
from ..errors import Conflict, InvalidInput
from . import sql
from .models import CheckpointPruneResult, CheckpointThread, CheckpointWrite, StoredCheckpoint

CONCERN = "checkpoints"
MAX_NAMESPACE_LENGTH = 4096
MAX_TYPE_LENGTH = 200
#: Checkpoints fetched per query by :meth:`CheckpointStore.list`.
PAGE_SIZE = 100
#: Keys per ``IN (VALUES ...)`` list: 3 parameters each, far below SQLite's bound of 32,766.
KEY_CHUNK = 300
# Metadata keys that a SQLite JSON path can name without quoting; others are filtered in Python.
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]{1,200}$")
_MISSING: Any = object()


# --- validation (plain functions: the async twin and the saver share them) -----------------

def check_namespace(value: object) -> str:
    """A checkpoint namespace: any string without NUL (``""`` is the root graph)."""
    return check_text("checkpoint_ns", value, max_length=MAX_NAMESPACE_LENGTH)  # type: ignore


def check_payload(field: str, value: object) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise InvalidInput(field, f"must be bytes (the serialized value), got "
                                  f"{type(value).__name__}")
    return value


def check_type(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, f"must be a non-empty string naming the encoding, got "
                                  f"{value!r:.60}")
    return check_text(field, value, max_length=MAX_TYPE_LENGTH)  # type: ignore[return-value]


def _lists(value: Any) -> Any:
    """Tuples as lists, as JSON stores them (LangGraph puts tuples in its metadata)."""
    if isinstance(value, (list, tuple)):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value


def encode_metadata(value: object) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise InvalidInput("metadata", f"must be a mapping, got {type(value).__name__}")
    return dump_json("metadata", _lists(dict(value)))


def check_filter(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidInput("metadata", f"must be a mapping of metadata keys to values, got "
                                       f"{value!r:.60}")
    return dict(value)


def check_count_limit(field: str, value: object) -> int | None:
    """A limit that may be 0 (nothing) or None (everything)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(field, f"must be a non-negative integer or None, got {value!r:.60}")
    return value


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(value == metadata.get(key) for key, value in wanted.items())


def _keys_sql(count: int) -> str:
    return ", ".join(["(?, ?, ?)"] * count)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CheckpointStore:
    """Framework checkpoints and pending writes, reached as ``store.checkpoints``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._dialect = backend.dialect

    def _time(self, value: datetime) -> Any:
        if self._dialect == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def transaction(self):
        """Group checkpoint calls atomically; nested blocks are savepoints."""
        return self._backend.transaction(CONCERN)

    # --- writing -----------------------------------------------------------------------
    def put(self, thread_id: str, checkpoint_id: str, *, type: str, data: bytes,  # noqa: A002
            checkpoint_ns: str = "", parent_checkpoint_id: str | None = None,
            metadata: Mapping[str, Any] | None = None, run_id: str | None = None,
            created_at: datetime | None = None) -> None:
        """Store a checkpoint, replacing one with the same thread, namespace and id (commits).

        Args:
            thread_id: the thread (any non-empty id string).
            checkpoint_id: the checkpoint's id; ids must sort by creation (LangGraph's do).
            type: the encoding of ``data`` (e.g. ``msgpack``), given back as is.
            data: the serialized checkpoint.
            checkpoint_ns: the namespace (``""`` for the root graph).
            parent_checkpoint_id: the checkpoint this one follows.
            metadata: JSON metadata, filterable in :meth:`list` (tuples are stored as lists).
            run_id: the run that made it, for :meth:`delete_runs`.
            created_at: when it was made (default: now); retention by age uses it.

        Raises:
            InvalidInput: a bad argument; nothing is written.
        """
        row = (check_id("thread_id", thread_id), check_namespace(checkpoint_ns),
               check_id("checkpoint_id", checkpoint_id),
               check_id("parent_checkpoint_id", parent_checkpoint_id, optional=True),
               check_id("run_id", run_id, optional=True), check_type("type", type),
               check_payload("data", data), encode_metadata(metadata),
               self._time(check_time("created_at", created_at) or now()))
        with self._backend.write(CONCERN) as conn:
            conn.run(sql.UPSERT_CHECKPOINT, row)

    def put_writes(self, thread_id: str, checkpoint_id: str, task_id: str,
                   writes: Iterable[tuple[int, str, str, bytes]], *, checkpoint_ns: str = "",
                   task_path: str = "") -> None:
        """Store a task's pending writes against a checkpoint, all or none (commits).

        Args:
            writes: ``(idx, channel, type, value)`` each. A write whose ``(task_id, idx)``
                is already stored is kept as it was, except special writes (negative
                ``idx``: errors, interrupts), which are replaced.
            task_path: the task's path, which orders writes with ``task_id`` and ``idx``.

        Raises:
            InvalidInput: a bad argument or write; nothing is written.
        """
        key = (check_id("thread_id", thread_id), check_namespace(checkpoint_ns),
               check_id("checkpoint_id", checkpoint_id))
        check_id("task_id", task_id)
        check_text("task_path", task_path, max_length=MAX_NAMESPACE_LENGTH)
        if isinstance(writes, (str, bytes, Mapping)):
            raise InvalidInput("writes", "must be a sequence of (idx, channel, type, value)")
        keep, replace = [], []
        for position, write in enumerate(writes):
            field = f"writes[{position}]"
            if not isinstance(write, (tuple, list)) or len(write) != 4:
                raise InvalidInput(field, f"must be (idx, channel, type, value), got {write!r:.60}")
            idx, channel, kind, value = write
            if isinstance(idx, bool) or not isinstance(idx, int) or not -2**31 <= idx < 2**31:
                raise InvalidInput(f"{field}.idx", f"must be a 32-bit integer, got {idx!r:.60}")
            row = (*key, task_id, idx,
                   check_text(f"{field}.channel", channel, max_length=MAX_NAMESPACE_LENGTH),
                   check_type(f"{field}.type", kind), check_payload(f"{field}.value", value),
                   task_path)
            (replace if idx < 0 else keep).append(row)
        if not keep and not replace:
            return
        with self._backend.write(CONCERN) as conn:
            if keep:
                conn.many(sql.INSERT_WRITE_KEEP, keep)
            if replace:
                conn.many(sql.INSERT_WRITE_REPLACE, replace)

    # --- reading -----------------------------------------------------------------------
    def get(self, thread_id: str, *, checkpoint_ns: str = "",
            checkpoint_id: str | None = None) -> StoredCheckpoint | None:
        """The checkpoint ``checkpoint_id`` of the thread and namespace, or its newest one
        when no id is given; None when there is none (read-only)."""
        key = (check_id("thread_id", thread_id), check_namespace(checkpoint_ns))
        check_id("checkpoint_id", checkpoint_id, optional=True)
        with self._backend.read(CONCERN) as conn:
            if checkpoint_id is None:
                row = conn.one(sql.SELECT_LATEST, key)
            else:
                row = conn.one(sql.SELECT_CHECKPOINT, (*key, checkpoint_id))
            if row is None:
                return None
            writes = conn.all(sql.SELECT_WRITES, row[:3])
        return StoredCheckpoint((*row, tuple(CheckpointWrite(w) for w in writes)))

    def list(self, thread_id: str | None = None, *, checkpoint_ns: str | None = None,
             checkpoint_id: str | None = None, before: str | None = None,
             metadata: Mapping[str, Any] | None = None,
             limit: int | None = None) -> Iterator[StoredCheckpoint]:
        """Checkpoints newest first (by id), with their writes (read-only).

        Args:
            thread_id: only this thread (default: every thread).
            checkpoint_ns: only this namespace (default: every namespace).
            checkpoint_id: only the checkpoint with this id.
            before: only checkpoints whose id sorts before this one.
            metadata: only checkpoints whose metadata has each of these keys with an equal
                value (a key given as None also matches a missing key).
            limit: at most this many (0: none; default: all).

        Yields:
            :class:`StoredCheckpoint`, fetched a page at a time as the caller iterates.

        Raises:
            InvalidInput: a bad argument (when iteration starts).
        """
        conditions, params = [], []
        for column, value, check in (
                ("thread_id", thread_id, lambda v: check_id("thread_id", v)),
                ("checkpoint_ns", checkpoint_ns, check_namespace),
                ("checkpoint_id", checkpoint_id, lambda v: check_id("checkpoint_id", v))):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(check(value))
        if before is not None:
            conditions.append("checkpoint_id < ?")
            params.append(check_id("before", before))
        wanted = check_filter(metadata)
        for key, value in wanted.items():
            if isinstance(value, str) and _PLAIN_KEY.fullmatch(key):
                conditions.append(sql.METADATA_TEXT[self._dialect])
                params += [f"$.{key}" if self._dialect == "sqlite" else key, value]
        limit = check_count_limit("limit", limit)
        yield from self._pages(conditions, params, wanted, limit)

    def _pages(self, conditions: list[str], params: list[Any], wanted: dict[str, Any],
               limit: int | None) -> Iterator[StoredCheckpoint]:
        remaining = limit
        cursor: tuple | None = None
        while remaining is None or remaining > 0:
            where = conditions + ([sql.PAGE_CURSOR] if cursor else [])
            statement = sql.LIST_CHECKPOINTS.format(
                where=" WHERE " + " AND ".join(where) if where else "")
            size = PAGE_SIZE if remaining is None or wanted else min(remaining, PAGE_SIZE)
            with self._backend.read(CONCERN) as conn:
                page = conn.all(statement, (*params, *(cursor or ()), size))
                rows = page
                if wanted:
                    rows = [row for row in page
                            if _matches(json.loads(row[7]) if row[7] else {}, wanted)]
                if remaining is not None:
                    rows = rows[:remaining]
                writes = self._page_writes(conn, [row[:3] for row in rows])
            for row in rows:
                yield StoredCheckpoint((*row, writes.get(tuple(row[:3]), ())))
            if remaining is not None:
                remaining -= len(rows)
            if len(page) < size:
                return
            last = page[-1]
            cursor = (last[2], last[0], last[1])

    def _page_writes(self, conn: Connection, keys: list[tuple]) -> dict[tuple, tuple]:
        found: dict[tuple, list[CheckpointWrite]] = {}
        for chunk in _chunks(keys, KEY_CHUNK):
            rows = conn.all(sql.SELECT_PAGE_WRITES.format(keys=_keys_sql(len(chunk))),
                            [part for key in chunk for part in key])
            for row in rows:
                found.setdefault(tuple(row[:3]), []).append(CheckpointWrite(row[3:]))
        return {key: tuple(writes) for key, writes in found.items()}

    def threads(self, *, limit: int | None = None) -> list[CheckpointThread]:
        """Threads that have checkpoints, most recently active first (read-only)."""
        limit = check_limit("limit", limit)
        with self._backend.read(CONCERN) as conn:
            rows = conn.all(sql.LIST_THREADS, (limit if limit is not None else 2**62,))
        return [CheckpointThread(row) for row in rows]

    # --- deleting and copying --------------------------------------------------------------
    def delete_thread(self, thread_id: str) -> int:
        """Delete every checkpoint and write of a thread (commits); the checkpoints deleted."""
        check_id("thread_id", thread_id)
        with self._backend.write(CONCERN) as conn:
            conn.run(sql.DELETE_THREAD_WRITES, (thread_id,))
            return conn.run(sql.DELETE_THREAD, (thread_id,))

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete the checkpoints (and their writes) made by these runs (commits); the
        checkpoints deleted."""
        if isinstance(run_ids, (str, bytes)) or not isinstance(run_ids, Iterable):
            raise InvalidInput("run_ids", "must be a list of run ids")
        ids = [check_id(f"run_ids[{i}]", run_id) for i, run_id in enumerate(run_ids)]
        deleted = 0
        with self._backend.write(CONCERN) as conn:
            for chunk in _chunks(ids, KEY_CHUNK):
                marks = ", ".join("?" * len(chunk))
                conn.run(sql.DELETE_RUN_WRITES.format(ids=marks), chunk)
                deleted += conn.run(sql.DELETE_RUNS.format(ids=marks), chunk)
        return deleted

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> int:
        """Copy every checkpoint and write of a thread to a new thread (commits); the
        checkpoints copied (0 when the source has none).

        Raises:
            Conflict: the target thread already has checkpoints or writes.
        """
        check_id("source_thread_id", source_thread_id)
        check_id("target_thread_id", target_thread_id)
        if source_thread_id == target_thread_id:
            raise InvalidInput("target_thread_id", "must differ from source_thread_id")
        with self._backend.write(CONCERN) as conn:
            if conn.one(sql.THREAD_EXISTS, (target_thread_id, target_thread_id)):
                raise Conflict(f"thread {target_thread_id!r} already has checkpoints; delete "
                               "it first or copy to a new thread id")
            copied = conn.run(sql.COPY_THREAD, (target_thread_id, source_thread_id))
            conn.run(sql.COPY_THREAD_WRITES, (target_thread_id, source_thread_id))
        return copied

    def prune(self, *, keep_last: int | None = None, older_than: timedelta | str | None = None,
              thread_ids: Sequence[str] | None = None,
              dry_run: bool = False) -> CheckpointPruneResult:
        """Retention: delete old checkpoints (and their writes) of every thread or of some.

        The ``keep_last`` newest checkpoints of each thread and namespace are always kept;
        of the others, those stored more than ``older_than`` ago go (all of them without
        ``older_than``). ``keep_last=1, older_than="30d"`` trims history but keeps every
        thread resumable; ``older_than`` alone also removes threads idle that long.

        Args:
            keep_last: checkpoints to keep per thread and namespace (1 or more).
            older_than: a ``timedelta`` or ``90d``, ``12h``, ``30m``, ``2w``.
            thread_ids: only these threads (default: every thread).
            dry_run: count what would go and delete nothing (read-only).

        Returns:
            A :class:`CheckpointPruneResult` with the checkpoints, writes and threads.

        Raises:
            InvalidInput: neither criterion is given, or one is malformed.
        """
        from ..ops.prune import parse_duration

        keep_last = check_limit("keep_last", keep_last)
        cutoff = None
        if older_than is not None:
            cutoff = now() - parse_duration("older_than", older_than)
        if keep_last is None and cutoff is None:
            raise InvalidInput("criteria", "give keep_last, older_than or both")
        if not isinstance(dry_run, bool):
            raise InvalidInput("dry_run", f"must be True or False, got {dry_run!r:.60}")
        params: list[Any] = []
        threads = ""
        if thread_ids is not None:
            if isinstance(thread_ids, (str, bytes)) or not isinstance(thread_ids, Iterable):
                raise InvalidInput("thread_ids", "must be a list of thread ids")
            params = [check_id(f"thread_ids[{i}]", t) for i, t in enumerate(thread_ids)]
            if not params:
                return CheckpointPruneResult((0, 0, 0, dry_run))
            threads = f" WHERE thread_id IN ({', '.join('?' * len(params))})"
        params.append(keep_last or 0)
        older = ""
        if cutoff is not None:
            older = " AND created_at < ?"
            params.append(self._time(cutoff))
        statement = sql.PRUNE_CANDIDATES.format(threads=threads, older=older)
        checkpoints = writes = 0
        session = self._backend.read if dry_run else self._backend.write
        with session(CONCERN) as conn:
            keys = [tuple(row) for row in conn.all(statement, params)]
            for chunk in _chunks(keys, KEY_CHUNK):
                values = _keys_sql(len(chunk))
                flat = [part for key in chunk for part in key]
                if dry_run:
                    writes += conn.one(sql.COUNT_KEYS_WRITES.format(keys=values), flat)[0]
                    checkpoints += len(chunk)
                else:
                    writes += conn.run(sql.DELETE_KEYS_WRITES.format(keys=values), flat)
                    checkpoints += conn.run(sql.DELETE_KEYS.format(keys=values), flat)
        return CheckpointPruneResult((checkpoints, writes, len({key[0] for key in keys}),
                                      dry_run))

"""Retention: purge old sessions for good, in small batches, exactly as planned.

Two rules choose the sessions that go; a session goes when either rule picks it:

- **Retention** (``older_than``, ``keep_last``, ``status``): among the sessions of
  ``status`` (every status when it is not given), ranked by last activity (newest
  first), the ``keep_last`` newest are always kept; of the rest, those whose last
  activity (``active_at``) is older than ``older_than`` go (all of them without
  ``older_than``).
- **Grace** (``grace``): soft-deleted sessions deleted (``deleted_at``) longer ago than
  ``grace`` go, whatever their activity; ``keep_last`` does not protect them.

:func:`plan` is read-only and returns exactly the sessions that would go, with the rows
and blobs that go with them. :func:`apply` purges a plan through
``store.chat.purge_session`` (which keeps the search index and shared blobs consistent),
``batch_size`` sessions per transaction so writers are never blocked for long, and skips
any planned session that changed after it was planned (a new message, a restore): a
dry run lists exactly what a run removes, never more. Blobs nothing refers to any more
are deleted last.

Retention can be stored as the setting ``retention.chat`` (see :data:`RETENTION_KEY`)
and is then applied by :func:`agentkeep.ops.optimize.optimize`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ..codec import check_limit, load_time, shown
from ..errors import InvalidInput, NotFound
from .check import blob_references, delete_orphaned_blobs, orphaned_blobs_sql
from .stats import columns, foreign_keys, quote

UTC = timezone.utc
#: The setting that holds the configured retention of the chat concern.
RETENTION_KEY = "retention.chat"
RETENTION_FIELDS = ("older_than", "keep_last", "status", "deleted_grace")
STATUSES = ("archived", "deleted")
DEFAULT_BATCH = 100
#: Ids per ``IN (...)`` list (far below SQLite's 32,766 bound variables).
ID_CHUNK = 500
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION = timedelta(days=100 * 366)
_DURATION = re.compile(r"([0-9]+)([mhdw])")

SESSION_FIELDS = "id, title, status, active_at, deleted_at, message_count, updated_at"
# Newest activity first on the sessions_by_activity index (by second, then the exact time:
# the session list's order); the first keep_last are skipped.
# LIMIT before OFFSET because SQLite requires it.
RETENTION_CANDIDATES = (
    f"SELECT {SESSION_FIELDS} FROM (SELECT {SESSION_FIELDS} FROM sessions{{status}} "
    "ORDER BY active_second DESC, active_at DESC, id DESC LIMIT ? OFFSET ?) ranked{older}"
)
GRACE_CANDIDATES = (
    f"SELECT {SESSION_FIELDS} FROM sessions WHERE status = 'deleted' AND deleted_at < ?"
)
# What a batch checks before purging: the session is still as planned (see _fingerprints).
# On PostgreSQL the rows stay locked until the purge: a write into a session (a message,
# an attachment, a tool call: their foreign keys lock the session row) waits, then fails.
SESSION_VERSIONS = {
    "sqlite": "SELECT id, updated_at FROM sessions WHERE id IN ({ids})",
    "postgresql": "SELECT id, updated_at FROM sessions WHERE id IN ({ids}) ORDER BY id FOR UPDATE",
}
ROWS_PER_SESSION = (
    "SELECT {column}, count(*) FROM {table} WHERE {column} IN ({ids}) GROUP BY {column}"
)
# A tool call that starts or finishes sets one of its times to now, past all of them.
TOOL_CALLS_MOVED = (
    "SELECT session_id, max(COALESCE(finished_at, started_at, created_at)) FROM tool_calls "
    "WHERE session_id IN ({ids}) GROUP BY session_id"
)
READ_SNAPSHOT = {
    "sqlite": "BEGIN",
    "postgresql": "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
}


def parse_duration(field_name: str, value: object) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``2w`` (or a non-negative ``timedelta``) as a timedelta.

    Raises:
        InvalidInput: anything else (``90``, ``1.5d``, ``-3d``, ``90 days``, ``3y``).
    """
    if isinstance(value, timedelta):
        if not timedelta(0) <= value <= MAX_DURATION:
            raise InvalidInput(field_name, f"must be between 0 and 100 years, got {value}")
        return value
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(field_name, "must be a duration like 90d, 12h, 30m or 2w "
                                       f"(minutes, hours, days, weeks); got {shown(value, 40)}")
    digits = match.group(1).lstrip("0") or "0"
    # checked before int() (which refuses 4,300 digits) and timedelta() (which overflows)
    seconds = int(digits) * UNITS[match.group(2)] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(field_name, f"must be at most 100 years, got {shown(value, 40)}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact ``90d``/``12h``/``30m``/``2w`` spelling of a duration."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


@dataclass(frozen=True)
class Criteria:
    """What to prune, validated. Durations are timedeltas."""

    older_than: timedelta | None = None
    keep_last: int | None = None
    status: str | None = None
    grace: timedelta | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"older_than": None if self.older_than is None else
                format_duration(self.older_than),
                "keep_last": self.keep_last, "status": self.status,
                "grace": None if self.grace is None else format_duration(self.grace)}


def criteria(*, older_than: object = None, keep_last: object = None, status: object = None,
             grace: object = None) -> Criteria:
    """Validate prune criteria (at least one is needed).

    Raises:
        InvalidInput: a malformed duration, a negative or non-integer ``keep_last``, a
            status other than ``archived``/``deleted``, or no criterion at all.
    """
    older = None if older_than is None else parse_duration("older_than", older_than)
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)
                                  or not 0 <= keep_last < 2**62):
        too_large = type(keep_last) is int and keep_last >= 2**62
        problem = "must be less than 2^62" if too_large else "must be a non-negative integer"
        raise InvalidInput("keep_last", f"{problem}, got {shown(keep_last, 40)}")
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be archived or deleted; got {shown(status, 40)} "
                                     "(use older_than or keep_last for every status)")
    grace_period = None if grace is None else parse_duration("grace", grace)
    if older is None and keep_last is None and status is None and grace_period is None:
        raise InvalidInput("criteria", "give at least one of older_than, keep_last, status "
                                       "or grace; pruning needs a rule")
    return Criteria(older, keep_last, status, grace_period)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PlannedSession:
    """A session a plan would purge, and why (``retention`` or ``grace``)."""

    id: str
    title: str | None
    status: str
    active_at: datetime
    deleted_at: datetime | None
    message_count: int
    reason: str
    version: Any = field(repr=False, compare=False, default=None)  # see _fingerprints

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status,
                "active_at": self.active_at, "deleted_at": self.deleted_at,
                "message_count": self.message_count, "reason": self.reason}


@dataclass(frozen=True)
class PrunePlan:
    """Exactly what :func:`apply` would remove, as of ``planned_at``.

    Attributes:
        sessions: the sessions, newest activity first.
        rows: rows that go with them, per table (``messages``, ``tool_calls``, ...).
        blobs, blob_bytes: blobs nothing would refer to any more (including blobs that
            are already orphaned), and their size.
    """

    criteria: Criteria
    planned_at: datetime
    sessions: tuple[PlannedSession, ...]
    rows: dict[str, int]
    blobs: int
    blob_bytes: int

    @property
    def session_ids(self) -> list[str]:
        return [session.id for session in self.sessions]

    def to_dict(self) -> dict[str, Any]:
        return {"criteria": self.criteria.to_dict(), "planned_at": self.planned_at,
                "sessions": [s.to_dict() for s in self.sessions], "rows": dict(self.rows),
                "blobs": self.blobs, "blob_bytes": self.blob_bytes}


@dataclass(frozen=True)
class PruneResult:
    """What :func:`apply` did.

    Attributes:
        purged: ids of the sessions purged.
        skipped: ``(id, why)`` of planned sessions left alone: ``changed`` since the plan
            (e.g. a new message or a restore) or already ``gone``.
        rows: rows deleted with the sessions, per table.
        blobs, blob_bytes: blobs deleted (the purged sessions' and orphaned ones).
        batches: transactions used.
    """

    purged: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    rows: dict[str, int]
    blobs: int
    blob_bytes: int
    batches: int

    def to_dict(self) -> dict[str, Any]:
        return {"purged": list(self.purged), "skipped": [list(s) for s in self.skipped],
                "rows": dict(self.rows), "blobs": self.blobs, "blob_bytes": self.blob_bytes,
                "batches": self.batches}


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _stamp(dialect: str, moment: datetime) -> Any:
    return moment.isoformat() if dialect == "sqlite" else moment


def session_tables(backend: Any) -> list[tuple[str, str]]:
    """(table, column) of every table whose rows belong to a session (foreign key to
    ``sessions``), from the catalogue; the rows a purge removes with the session."""
    return [(table, column) for table, column, parent, _ in foreign_keys(backend, "chat")
            if parent == "sessions" and table != "sessions"]


def session_blob_references(backend: Any) -> list[tuple[str, str, bool]]:
    """(table, column, whether the table has session_id) of every reference to a blob."""
    return [(table, column, "session_id" in columns(backend, "chat", table))
            for table, column, _ in blob_references(backend)]


def plan(store: Any, *, older_than: object = None, keep_last: object = None,
         status: object = None, grace: object = None, now: datetime | None = None
         ) -> PrunePlan:
    """The sessions a prune would purge, and what goes with them (read-only).

    Args:
        older_than: a duration (``90d``, ``12h``, ``30m``, ``2w``): sessions whose last
            activity is older go.
        keep_last: the number of most recently active sessions (of ``status``) to keep.
        status: ``archived`` or ``deleted``: only sessions with this status.
        grace: a duration: soft-deleted sessions deleted longer ago go.
        now: the reference time (default: now).

    Raises:
        InvalidInput: bad criteria (see :func:`criteria`); nothing is read or changed.
    """
    rules = criteria(older_than=older_than, keep_last=keep_last, status=status, grace=grace)
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return _plan(store._backend, rules, moment)


def _plan(backend: Any, rules: Criteria, moment: datetime) -> PrunePlan:
    dialect = backend.dialect
    chosen: dict[str, PlannedSession] = {}
    references = session_blob_references(backend)
    owned = session_tables(backend)
    orphans_sql = orphaned_blobs_sql(backend)
    with backend.read("chat") as conn, _snapshot(backend, conn):
        if rules.older_than is not None or rules.keep_last is not None or \
                rules.status is not None:
            statement = RETENTION_CANDIDATES.replace(
                "{status}", "" if rules.status is None else " WHERE status = ?").replace(
                "{older}", "" if rules.older_than is None else " WHERE active_at < ?")
            params: list[Any] = [] if rules.status is None else [rules.status]
            params += [2**62, rules.keep_last or 0]
            if rules.older_than is not None:
                params.append(_stamp(dialect, moment - rules.older_than))
            for row in conn.all(statement, params):
                chosen[row[0]] = _planned(row, "retention")
        if rules.grace is not None:
            for row in conn.all(GRACE_CANDIDATES, (_stamp(dialect, moment - rules.grace),)):
                chosen.setdefault(row[0], _planned(row, "grace"))
        ids = sorted(chosen)
        prints, rows = _fingerprints(conn, owned, ids)
        sessions = sorted((replace(chosen[i], version=prints[i]) for i in ids),
                          key=lambda s: (s.active_at, s.id), reverse=True)
        freed = _freed_blobs(conn, references, set(ids))
        if orphans_sql is not None:
            freed.update(conn.all(orphans_sql))
    return PrunePlan(rules, moment, tuple(sessions), rows, len(freed), sum(freed.values()))


class _snapshot:
    """Run the block's reads in one snapshot (skipped inside a caller's transaction)."""

    def __init__(self, backend: Any, conn: Any) -> None:
        self.conn = conn
        self.active = not backend.in_transaction("chat")
        self.begin = READ_SNAPSHOT[backend.dialect]

    def __enter__(self) -> None:
        if self.active:
            self.conn.run(self.begin)

    def __exit__(self, *exc_info: object) -> None:
        if self.active:
            self.conn.run("ROLLBACK")


def _planned(row: tuple, reason: str) -> PlannedSession:
    return PlannedSession(row[0], row[1], row[2], load_time(row[3]), load_time(row[4]),
                          row[5], reason)


def _fingerprints(conn: Any, owned: list[tuple[str, str]], ids: Sequence[str]
                  ) -> tuple[dict[str, tuple], dict[str, int]]:
    """What each live session of ``ids`` holds, to tell whether it changed since: its
    ``updated_at`` (a message, a status), how many rows of each owned table it has (an
    attachment, a file version, a tool call recorded on its own) and when its tool calls
    last started or finished; and the rows per table in all."""
    prints: dict[str, list[Any]] = {}
    rows = {table: 0 for table, _ in owned}
    for chunk in _chunks(ids, ID_CHUNK):
        marks = _marks(len(chunk))
        found = {session_id: [updated_at] for session_id, updated_at in conn.all(
            SESSION_VERSIONS["sqlite"].replace("{ids}", marks), chunk)}
        for table, column in owned:
            counts = dict(conn.all(ROWS_PER_SESSION.format(
                table=quote(table), column=quote(column), ids=marks), chunk))
            rows[table] += sum(counts.values())
            for session_id, values in found.items():
                values.append(counts.get(session_id, 0))
        if any(table == "tool_calls" for table, _ in owned):
            moved = dict(conn.all(TOOL_CALLS_MOVED.replace("{ids}", marks), chunk))
            for session_id, values in found.items():
                values.append(moved.get(session_id))
        prints.update(found)
    return {session_id: tuple(values) for session_id, values in prints.items()}, rows


def _freed_blobs(conn: Any, referrers: list[tuple[str, str, bool]], doomed: set[str]
                 ) -> dict[str, int]:
    """sha256 → size of the blobs that only ``doomed`` sessions refer to."""
    if not doomed or not referrers:
        return {}
    candidates: set[str] = set()
    for table, column, has_session in referrers:
        if not has_session:
            continue
        for chunk in _chunks(sorted(doomed), ID_CHUNK):
            candidates.update(row[0] for row in conn.all(
                f"SELECT DISTINCT {quote(column)} FROM {quote(table)} "
                f"WHERE session_id IN ({_marks(len(chunk))})", chunk))
    kept: set[str] = set()
    for chunk in _chunks(sorted(candidates), ID_CHUNK):
        marks = _marks(len(chunk))
        for table, column, has_session in referrers:
            if not has_session:  # cannot tell whose it is: assume a kept row refers to it
                kept.update(row[0] for row in conn.all(
                    f"SELECT {quote(column)} FROM {quote(table)} "
                    f"WHERE {quote(column)} IN ({marks})", chunk))
                continue
            for sha, session_id in conn.all(
                    f"SELECT {quote(column)}, session_id FROM {quote(table)} "
                    f"WHERE {quote(column)} IN ({marks})", chunk):
                if session_id not in doomed:
                    kept.add(sha)
    freed: dict[str, int] = {}
    for chunk in _chunks(sorted(candidates - kept), ID_CHUNK):
        freed.update(conn.all(f"SELECT sha256, size FROM blobs "
                              f"WHERE sha256 IN ({_marks(len(chunk))})", chunk))
    return freed


def apply(store: Any, plan: PrunePlan | None = None, *, older_than: object = None,
          keep_last: object = None, status: object = None, grace: object = None,
          batch_size: int = DEFAULT_BATCH,
          progress: Callable[[int, int], None] | None = None) -> PruneResult:
    """Purge the sessions of ``plan`` (or of a plan made from the criteria) (commits).

    Each batch of ``batch_size`` sessions is one transaction: writers wait at most one
    batch. A planned session that changed since it was planned (a new message, a status
    change, an attachment, a file version, a tool call recorded, started or finished) or
    is gone is skipped, never purged. Blobs nothing
    refers to any more are deleted at the end.

    Args:
        plan: a plan from :func:`plan`; or give the criteria instead.
        batch_size: sessions per transaction (1–10,000).
        progress: called as ``progress(done, total)`` after each committed batch.

    Raises:
        InvalidInput: bad criteria, both a plan and criteria, or a bad ``batch_size``;
            nothing is changed.
    """
    batch_size = check_limit("batch_size", batch_size, optional=False, maximum=10_000)
    given = {"older_than": older_than, "keep_last": keep_last, "status": status,
             "grace": grace}
    backend = store._backend
    if plan is None:
        if all(value is None for value in given.values()):
            raise InvalidInput("plan", "give a plan from prune.plan(), or the criteria (at "
                                       "least one of older_than, keep_last, status or grace)")
        plan = _plan(backend, criteria(**given), datetime.now(UTC))
    elif any(value is not None for value in given.values()):
        raise InvalidInput("plan", "give either a plan or criteria, not both")
    elif not isinstance(plan, PrunePlan):
        raise InvalidInput("plan", f"must be a PrunePlan from ops.prune.plan(), "
                                   f"got {type(plan).__name__}")
    references = session_blob_references(backend)
    owned = session_tables(backend)
    purged: list[str] = []
    skipped: list[tuple[str, str]] = []
    rows = {table: 0 for table, _ in owned}
    blobs = blob_bytes = batches = 0
    total = len(plan.sessions)
    for batch in _chunks(plan.sessions, batch_size):
        with backend.write("chat") as conn:
            ids = [s.id for s in batch]
            conn.all(SESSION_VERSIONS[backend.dialect].replace("{ids}", _marks(len(ids))),
                     ids)  # on PostgreSQL: lock them first
            versions, _ = _fingerprints(conn, owned, ids)
            ready = []
            for session in batch:
                if session.id not in versions:
                    skipped.append((session.id, "gone"))
                elif versions[session.id] != session.version:
                    skipped.append((session.id, "changed"))
                else:
                    ready.append(session.id)
            if ready:  # a fingerprint holds the session's rows per owned table
                for index, (table, _) in enumerate(owned, start=1):
                    rows[table] += sum(versions[session_id][index] for session_id in ready)
                shas = _blobs_of(conn, references, ready)
                for session_id in ready:
                    try:
                        store.chat.purge_session(session_id)
                    except NotFound:  # pragma: no cover - locked above; defensive
                        skipped.append((session_id, "gone"))
                        continue
                    purged.append(session_id)
                left = _existing(conn, list(shas))
                blobs += len(shas) - len(left)
                blob_bytes += sum(size for sha, size in shas.items() if sha not in left)
        batches += 1
        if progress is not None:
            progress(min(batches * batch_size, total), total)
    orphans, orphan_bytes = delete_orphaned_blobs(backend)
    return PruneResult(tuple(purged), tuple(skipped), rows, blobs + orphans,
                       blob_bytes + orphan_bytes, batches)


def _blobs_of(conn: Any, references: list[tuple[str, str, bool]], session_ids: list[str]
              ) -> dict[str, int]:
    """sha256 → size of every blob the sessions' rows refer to."""
    shas: set[str] = set()
    marks = _marks(len(session_ids))
    for table, column, has_session in references:
        if has_session:
            shas.update(row[0] for row in conn.all(
                f"SELECT {quote(column)} FROM {quote(table)} WHERE session_id IN ({marks})",
                session_ids))
    sizes: dict[str, int] = {}
    for chunk in _chunks(sorted(shas), ID_CHUNK):
        sizes.update(conn.all(f"SELECT sha256, size FROM blobs "
                              f"WHERE sha256 IN ({_marks(len(chunk))})", chunk))
    return sizes


def _existing(conn: Any, shas: list[str]) -> set[str]:
    left: set[str] = set()
    for chunk in _chunks(sorted(shas), ID_CHUNK):
        left.update(row[0] for row in conn.all(
            f"SELECT sha256 FROM blobs WHERE sha256 IN ({_marks(len(chunk))})", chunk))
    return left


# --- configured retention ------------------------------------------------------------------
def validate_retention(value: object) -> Criteria:
    """Check a ``retention.chat`` setting value and return its criteria.

    The value is an object with any of ``older_than`` (duration string), ``keep_last``
    (integer ≥ 0), ``status`` (``archived`` or ``deleted``) and ``deleted_grace``
    (duration string), at least one of them.

    Raises:
        InvalidInput: naming the setting and the field that is wrong.
    """
    if not isinstance(value, Mapping):
        raise InvalidInput(RETENTION_KEY, "must be an object like {\"older_than\": \"90d\", "
                                          "\"keep_last\": 1000, \"deleted_grace\": \"30d\"}; "
                                          f"got {shown(value)}")
    unknown = sorted(set(value) - set(RETENTION_FIELDS))
    if unknown:
        raise InvalidInput(RETENTION_KEY, f"unknown field {unknown[0]!r}; the fields are "
                                          f"{', '.join(RETENTION_FIELDS)}")
    for name in ("older_than", "deleted_grace"):
        if name in value and not isinstance(value[name], str):
            raise InvalidInput(f"{RETENTION_KEY}.{name}", "must be a duration string like "
                                                          f"'90d'; got {shown(value[name], 40)}")
    try:
        return criteria(older_than=value.get("older_than"), keep_last=value.get("keep_last"),
                        status=value.get("status"), grace=value.get("deleted_grace"))
    except InvalidInput as exc:
        name = "deleted_grace" if exc.field == "grace" else exc.field
        raise InvalidInput(f"{RETENTION_KEY}.{name}", exc.problem) from None


def retention(store: Any) -> Criteria | None:
    """The configured retention (setting ``retention.chat``), validated; None if unset.

    Raises:
        InvalidInput: the stored setting is malformed.
    """
    value = store.settings.get(RETENTION_KEY)
    return None if value is None else validate_retention(value)


def set_retention(store: Any, value: Mapping[str, Any] | None) -> None:
    """Store (or with None, remove) the configured retention after validating it (commits).

    Raises:
        InvalidInput: ``value`` is malformed; the setting is unchanged.
    """
    if value is None:
        store.settings.delete(RETENTION_KEY)
        return
    validate_retention(value)
    store.settings.set(RETENTION_KEY, dict(value))


def apply_retention(store: Any, *, batch_size: int = DEFAULT_BATCH,
                    progress: Callable[[int, int], None] | None = None,
                    now: datetime | None = None) -> tuple[PrunePlan, PruneResult] | None:
    """Prune by the configured retention (commits); None when none is configured.

    Raises:
        InvalidInput: the setting is malformed; nothing is changed.
    """
    rules = retention(store)
    if rules is None:
        return None
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    planned = _plan(store._backend, rules, moment)
    return planned, apply(store, planned, batch_size=batch_size, progress=progress)

"""Check a whole store for damage and inconsistency, and repair what is safe to repair.

``check(store)`` returns a :class:`CheckReport`: a list of :class:`Finding` (empty when the
store is clean) with ``notes`` on checks that could not run and, after ``repair=True``,
``repairs`` saying what was done. What is checked:

==================  =================================================  =============
kind                what                                               repair
==================  =================================================  =============
integrity           SQLite ``PRAGMA integrity_check``; PostgreSQL       no
                    invalid indexes, and amcheck (``bt_index_check``,
                    ``verify_heapam``) when the extension is installed
foreign_key         SQLite ``PRAGMA foreign_key_check``; PostgreSQL     no
                    rows violating a foreign key, constraints not
                    validated or with their triggers disabled
search_index        SQLite: FTS5 ``integrity-check`` against the        rebuild (SQLite),
                    messages, high-water mark above the newest         queue the
                    message; PostgreSQL: the vector table, its index   missing
                    and trigger exist, every message is indexed or     (PostgreSQL),
                    queued, the text search configuration exists and   re-make the
                    folds accents (a note where the unaccent           configuration
                    extension is not on the server), the function      or function
                    that indexes long messages exists                  (PostgreSQL)
drift               the live schema against ``tables.py``               no
counters            session counters against a recount (one query)     recount
head_depth          ``sessions.head_depth`` against the head's depth   recompute
activity_order      SQLite: ``sessions.active_second`` (the session    re-create,
                    list's index) against ``active_at``, and the       recompute
                    triggers that keep it in step (present and as
                    defined)
orphaned_blob       blobs that no row refers to                        delete
dangling_reference  ``head_id``/``summary_id``/``parent_id``/            no
                    ``result_message_id`` naming a missing message
                    or one of another session
orphaned_tool_call  tool calls whose message is missing (or in          no
                    another session)
==================  =================================================  =============

The full-text index may legitimately lag behind the messages (SQLite feeds it from a
high-water mark, see ``docs/architecture.md``): the check indexes the backlog inside its
own transaction, runs FTS5's integrity check and rolls back, so lag is never reported.
Without ``repair`` nothing is changed, except that a backlog of more than
:data:`MAX_ROLLED_BACK_BACKLOG` messages is indexed for good first (as the next search
would), so that the check's transaction, which holds the write lock, stays short.

Which tables refer to blobs is read from the foreign keys in the database catalogue, so a
new table that stores blobs is covered without a change here.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..chat import sql as chat_sql
from ..codec import check_flag
from ..errors import AgentkeepError, StoreCorrupt
from .stats import columns, foreign_keys, plain_tables, quote

#: At most this many findings of one kind per concern are listed one by one.
MAX_LISTED = 50
#: Orphaned blobs deleted per transaction.
BLOB_BATCH = 500
#: A search backlog up to this size is indexed inside the check's rolled-back transaction;
#: a larger one is indexed for good first, so the write lock is held briefly (the check
#: itself takes ~0.2 s per 100,000 indexed messages here).
MAX_ROLLED_BACK_BACKLOG = 10_000

# --- SQLite ------------------------------------------------------------------------------
# integrity_check stops after this many problems: a file overwritten in a few places lists
# thousands, and one more than is listed tells that there are more.
INTEGRITY_CHECK = f"PRAGMA integrity_check({MAX_LISTED + 1})"
# Tables stored as B-trees (the search index's shadow tables too, not the virtual table):
# what integrity_check can check one by one when the whole-file check stops at damage.
BTREE_TABLES = ("SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
FTS_TABLE = "messages_fts"
FTS_CHECK = "INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)"
# Rebuild reads every message again; the mark then covers exactly what it read.
FTS_REBUILD = "INSERT INTO messages_fts(messages_fts) VALUES('rebuild')"
NEWEST_MESSAGE = "SELECT COALESCE(max(pk), 0) FROM messages"

# --- PostgreSQL ----------------------------------------------------------------------------
PG_INVALID_INDEXES = (
    "SELECT t.relname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = ? AND (NOT i.indisvalid OR NOT i.indisready)"
)
# Each foreign key with its column lists, in order, and whether it is validated.
PG_FOREIGN_KEYS = (
    "SELECT k.conname, child.relname, parent.relname, k.convalidated, "
    "ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(num, pos) "
    "      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.pos), "
    "ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(num, pos) "
    "      JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.pos) "
    "FROM pg_constraint k JOIN pg_class child ON child.oid = k.conrelid "
    "JOIN pg_class parent ON parent.oid = k.confrelid "
    "JOIN pg_namespace n ON n.oid = child.relnamespace "
    "WHERE k.contype = 'f' AND n.nspname = ? ORDER BY child.relname, k.conname"
)
# Foreign keys are enforced by internal triggers; ALTER TABLE ... DISABLE TRIGGER ALL
# (or session_replication_role) turns them off.
PG_DISABLED_FK_TRIGGERS = (
    "SELECT DISTINCT c.relname, k.conname FROM pg_trigger g "
    "JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_constraint k ON k.oid = g.tgconstraint "
    "WHERE n.nspname = ? AND g.tgisinternal AND k.contype = 'f' AND g.tgenabled = 'D'"
)
PG_EXTENSION_SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'amcheck'"
)
PG_BTREE_INDEXES = (
    "SELECT t.relname, c.relname, c.oid FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
    "JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = ? AND am.amname = 'btree' AND i.indisvalid ORDER BY c.relname"
)
PG_HAS_FUNCTION = (
    "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = ? AND p.proname = ?"
)
# PostgreSQL's search structures (chat_0003; created by the migration, outside the
# declared schema, so drift does not look at them): the vector table, its GIN index and
# the trigger that queues new messages.
PG_SEARCH_STRUCTURES = (
    "SELECT to_regclass(quote_ident(?) || '.message_search') IS NOT NULL, "
    "to_regclass(quote_ident(?) || '.message_search_vector') IS NOT NULL, "
    "EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? "
    "AND c.relname = 'messages' AND t.tgname = 'messages_queue_for_search' "
    "AND t.tgenabled <> 'D')"
)
LONG_TEXT_FUNCTION = "search_vector_of_long_text"  # chat_0008
# The store's text search configuration (chat_0008): present; folding accents (its
# words mapped through agentkeep's unaccent dictionary); whether this role can use that
# dictionary; whether it could make it (the extension on the server, the dictionary not
# made yet, CREATE on the database: ENSURE_UNACCENT may still be refused, e.g. where the
# extension is not trusted, before PostgreSQL 13); and whether the function that
# indexes long messages exists.
PG_SEARCH_CONFIG = (
    "SELECT cfg IS NOT NULL, EXISTS (SELECT 1 FROM pg_ts_config_map m "
    "JOIN pg_ts_dict d ON d.oid = m.mapdict JOIN pg_namespace n ON n.oid = d.dictnamespace "
    "WHERE m.mapcfg = cfg AND n.nspname || '.' || d.dictname = ? AND m.maptokentype = "
    "(SELECT tokid FROM ts_token_type('default') WHERE alias = 'word')), "
    f"{chat_sql.UNACCENT_USABLE}, "
    "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') "
    "AND has_database_privilege(current_database(), 'CREATE') "
    f"AND NOT {chat_sql.UNACCENT_EXISTS}, "
    "EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    f"WHERE n.nspname = ? AND p.proname = '{LONG_TEXT_FUNCTION}') "
    "FROM (SELECT (SELECT c.oid FROM pg_ts_config c JOIN pg_namespace n "
    "ON n.oid = c.cfgnamespace WHERE n.nspname = ? AND c.cfgname = ?) AS cfg) AS config"
)
# Messages neither indexed nor queued: search would never find them.
_UNSEARCHABLE = (
    "FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_search x WHERE x.pk = m.pk) "
    "AND NOT EXISTS (SELECT 1 FROM search_backlog b WHERE b.pk = m.pk)"
)
PG_UNSEARCHABLE = "SELECT count(*) " + _UNSEARCHABLE
PG_QUEUE_UNSEARCHABLE = "INSERT INTO search_backlog (pk) SELECT m.pk " + _UNSEARCHABLE
# The trigger that queues new messages, as chat_0006 creates it (unqualified names: the
# concern's schema through search_path); a repair makes it again.
PG_QUEUE_TRIGGER = (
    "DROP TRIGGER IF EXISTS messages_queue_for_search ON messages",
    "CREATE OR REPLACE FUNCTION queue_messages_for_search() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO search_backlog (pk) SELECT pk FROM "
    "new_messages; RETURN NULL; END $$",
    "CREATE TRIGGER messages_queue_for_search AFTER INSERT ON messages "
    "REFERENCING NEW TABLE AS new_messages "
    "FOR EACH STATEMENT EXECUTE FUNCTION queue_messages_for_search()",
)

# SQLite: sessions whose indexed second is not their active_at's (chat_0004), and the
# triggers that keep it in step. PostgreSQL computes the column: nothing to check.
WRONG_ACTIVE_SECOND = (
    "SELECT id, active_second, active_at FROM sessions "
    "WHERE active_second IS NOT substr(active_at, 1, 19) ORDER BY id"
)
FIX_ACTIVE_SECOND = (
    "UPDATE sessions SET active_second = substr(active_at, 1, 19) "
    "WHERE active_second IS NOT substr(active_at, 1, 19)"
)
SQLITE_TRIGGERS = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?"

# --- chat consistency (both dialects) --------------------------------------------------------
# Recounts of every session in one pass over messages (GROUP BY on the session index).
# sum() of a bigint is numeric on PostgreSQL: cast back so both dialects return ints.
_RECOUNTS = (
    "SELECT session_id, count(*) AS n, CAST(sum(input_tokens) AS BIGINT) AS tokens_in, "
    "CAST(sum(output_tokens) AS BIGINT) AS tokens_out, CAST(sum(cost_nanos) AS BIGINT) AS cost "
    "FROM messages GROUP BY session_id"
)
_COUNTERS_DIFFER = (
    "s.message_count <> COALESCE(c.n, 0) OR s.input_tokens <> COALESCE(c.tokens_in, 0) "
    "OR s.output_tokens <> COALESCE(c.tokens_out, 0) OR s.cost_nanos <> COALESCE(c.cost, 0)"
)
WRONG_COUNTERS = (
    "SELECT s.id, s.message_count, COALESCE(c.n, 0), s.input_tokens, COALESCE(c.tokens_in, 0), "
    "s.output_tokens, COALESCE(c.tokens_out, 0), s.cost_nanos, COALESCE(c.cost, 0) "
    f"FROM sessions s LEFT JOIN ({_RECOUNTS}) c ON c.session_id = s.id "
    f"WHERE {_COUNTERS_DIFFER} ORDER BY s.id"
)
_WRONG_COUNTER_IDS = (
    f"SELECT s.id FROM sessions s LEFT JOIN ({_RECOUNTS}) c ON c.session_id = s.id "
    f"WHERE {_COUNTERS_DIFFER}"
)
# PostgreSQL: lock the sessions first, so that an append committing meanwhile cannot be
# overwritten by a recount made from an older snapshot (appends lock the session row).
LOCK_WRONG_COUNTERS = f"SELECT id FROM sessions WHERE id IN ({_WRONG_COUNTER_IDS}) FOR UPDATE"
RECOUNT_COUNTERS = (
    "UPDATE sessions SET "
    "message_count = (SELECT count(*) FROM messages m WHERE m.session_id = sessions.id), "
    "input_tokens = (SELECT COALESCE(CAST(sum(m.input_tokens) AS BIGINT), 0) FROM messages m "
    "WHERE m.session_id = sessions.id), "
    "output_tokens = (SELECT COALESCE(CAST(sum(m.output_tokens) AS BIGINT), 0) FROM messages m "
    "WHERE m.session_id = sessions.id), "
    "cost_nanos = (SELECT COALESCE(CAST(sum(m.cost_nanos) AS BIGINT), 0) FROM messages m "
    "WHERE m.session_id = sessions.id) "
    f"WHERE id IN ({_WRONG_COUNTER_IDS})"
)
# A head of the same session whose depth differs, or no head and a depth other than -1.
_HEAD_DEPTH_WRONG = (
    "FROM sessions s LEFT JOIN messages m ON m.id = s.head_id AND m.session_id = s.id "
    "WHERE (s.head_id IS NULL AND s.head_depth <> -1) "
    "OR (m.id IS NOT NULL AND s.head_depth <> m.depth)"
)
WRONG_HEAD_DEPTH = f"SELECT s.id, s.head_depth, m.depth {_HEAD_DEPTH_WRONG} ORDER BY s.id"
LOCK_WRONG_HEAD_DEPTH = (
    f"SELECT id FROM sessions WHERE id IN (SELECT s.id {_HEAD_DEPTH_WRONG}) FOR UPDATE"
)
FIX_HEAD_DEPTH = (
    "UPDATE sessions SET head_depth = COALESCE((SELECT m.depth FROM messages m "
    "WHERE m.id = sessions.head_id AND m.session_id = sessions.id), -1) "
    f"WHERE id IN (SELECT s.id {_HEAD_DEPTH_WRONG})"
)
# (table, row id, column, the id it names, the session that message belongs to or NULL).
DANGLING_REFERENCES = (
    "SELECT 'sessions', s.id, 'head_id', s.head_id, m.session_id FROM sessions s "
    "LEFT JOIN messages m ON m.id = s.head_id "
    "WHERE s.head_id IS NOT NULL AND (m.id IS NULL OR m.session_id <> s.id) "
    "UNION ALL "
    "SELECT 'sessions', s.id, 'summary_id', s.summary_id, m.session_id FROM sessions s "
    "LEFT JOIN messages m ON m.id = s.summary_id "
    "WHERE s.summary_id IS NOT NULL AND (m.id IS NULL OR m.session_id <> s.id) "
    "UNION ALL "
    "SELECT 'messages', c.id, 'parent_id', c.parent_id, p.session_id FROM messages c "
    "LEFT JOIN messages p ON p.id = c.parent_id "
    "WHERE c.parent_id IS NOT NULL AND (p.id IS NULL OR p.session_id <> c.session_id) "
    "UNION ALL "
    "SELECT 'tool_calls', t.id, 'result_message_id', t.result_message_id, m.session_id "
    "FROM tool_calls t LEFT JOIN messages m ON m.id = t.result_message_id "
    "WHERE t.result_message_id IS NOT NULL AND (m.id IS NULL OR m.session_id <> t.session_id)"
)
ORPHANED_TOOL_CALLS = (
    "SELECT t.id, t.message_id, m.session_id FROM tool_calls t "
    "LEFT JOIN messages m ON m.id = t.message_id "
    "WHERE m.id IS NULL OR m.session_id <> t.session_id ORDER BY t.id"
)


@dataclass(frozen=True)
class Finding:
    """One problem found in a store.

    Attributes:
        concern: ``chat``, ``app``, ...
        kind: what was checked (see the table in this module's docstring).
        table: the table concerned, when there is one.
        detail: one line saying what is wrong, naming the rows.
        repairable: whether ``check(store, repair=True)`` fixes it.
        repaired: whether it was fixed (and a second look found it gone).
    """

    concern: str
    kind: str
    table: str | None
    detail: str
    repairable: bool = False
    repaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckReport(list):
    """The findings of :func:`check` (a list of :class:`Finding`).

    Attributes:
        notes: checks that were skipped and why (not findings).
        repairs: what ``repair=True`` did, one line each.
    """

    def __init__(self, findings=()) -> None:
        super().__init__(findings)
        self.notes: list[str] = []
        self.repairs: list[str] = []

    @property
    def is_clean(self) -> bool:
        """True when nothing is wrong any more (every finding, if any, was repaired)."""
        return all(finding.repaired for finding in self)

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.is_clean, "findings": [f.to_dict() for f in self],
                "notes": list(self.notes), "repairs": list(self.repairs)}


def _listed(findings: list[Finding], concern: str, kind: str, table: str | None,
            repairable: bool, more: int) -> list[Finding]:
    """Cut a long list of findings to MAX_LISTED, with one line counting the rest."""
    if more > 0:
        findings = findings[:MAX_LISTED] + [Finding(
            concern, kind, table, f"... and {more} more like these", repairable)]
    return findings


# --- the generic checks -------------------------------------------------------------------
def _sqlite_integrity(backend: Any, concern: str) -> list[Finding]:
    """``integrity_check``, then (on a sound file only) ``foreign_key_check``.

    A damaged file is reported, never raised: the problems integrity_check lists, or the
    error that stopped it, are ``integrity`` findings.
    """
    try:
        with backend.read(concern) as conn:
            problems = _problems(conn.all(INTEGRITY_CHECK))
            rows = [] if problems else conn.all("PRAGMA foreign_key_check")
    except StoreCorrupt as exc:
        return _integrity_by_table(backend, concern, exc)
    if problems:
        return _bounded([Finding(concern, "integrity", None, line) for line in problems])
    findings = []
    groups: dict[tuple[str, str], list[Any]] = {}
    for table, rowid, parent, _ in rows:
        groups.setdefault((table, parent), []).append(rowid)
    for (table, parent), rowids in groups.items():
        shown = ", ".join(str(r) for r in rowids[:10]) + (", ..." if len(rowids) > 10 else "")
        findings.append(Finding(
            concern, "foreign_key", table,
            f"{len(rowids)} row(s) of {table} refer to missing rows of {parent} "
            f"(rowid {shown})"))
    return findings


def _integrity_by_table(backend: Any, concern: str, stopped: StoreCorrupt) -> list[Finding]:
    """The whole-file check stopped at damage it cannot step over (SQLite raises
    "malformed" for a page number past the end of the file, for one): check each table
    on its own, so that the findings name the damaged ones."""
    whole = _unreadable(concern, None, "integrity_check", stopped)
    try:
        with backend.read(concern) as conn:
            tables = [name for (name,) in conn.all(BTREE_TABLES)]
    except StoreCorrupt:
        return [whole]
    findings = []
    for table in tables:
        try:
            with backend.read(concern) as conn:
                problems = _problems(conn.all(f"PRAGMA integrity_check({quote(table)})"))
        except StoreCorrupt as exc:
            findings.append(_unreadable(concern, table, f"integrity_check of {table}", exc))
            continue
        findings += [Finding(concern, "integrity", table, line) for line in problems]
    return _bounded(findings or [whole])


def _problems(rows: list[Any]) -> list[str]:
    """integrity_check's answer as one problem a line (SQLite may put several lines in
    one row, under a ``*** in database main ***`` heading); none for ``ok``."""
    return [line for (text,) in rows for line in str(text).splitlines()
            if line.strip() and line != "ok" and not line.startswith("*** ")]


def _bounded(findings: list[Finding]) -> list[Finding]:
    """At most MAX_LISTED integrity findings, and a line saying there were more."""
    if len(findings) <= MAX_LISTED:
        return findings
    first = findings[0]
    return findings[:MAX_LISTED] + [Finding(
        first.concern, "integrity", None,
        f"... and more: integrity_check stops after {MAX_LISTED} problems")]


def _unreadable(concern: str, table: str | None, what: str, exc: StoreCorrupt) -> Finding:
    """An ``integrity`` finding for a check that a damaged file stopped (SQLite's own error,
    without the advice to run check that the StoreCorrupt message carries)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return Finding(concern, "integrity", table, f"{what} stopped at damage: {cause}")


def _postgres_integrity(backend: Any, concern: str, notes: list[str]) -> list[Finding]:
    schema = backend.schema(concern)
    findings = []
    with backend.read(concern) as conn:
        for table, index in conn.all(PG_INVALID_INDEXES, (schema,)):
            findings.append(Finding(concern, "integrity", table,
                                    f"index {index} is invalid (a failed build); REINDEX it"))
        for table, name in conn.all(PG_DISABLED_FK_TRIGGERS, (schema,)):
            findings.append(Finding(concern, "foreign_key", table,
                                    f"foreign key {name} is not enforced: its triggers are "
                                    "disabled"))
        keys = conn.all(PG_FOREIGN_KEYS, (schema,))
        for name, table, parent, validated, cols, parent_cols in keys:
            if not validated:
                findings.append(Finding(concern, "foreign_key", table,
                                        f"foreign key {name} was added NOT VALID and never "
                                        "validated"))
            present = " AND ".join(f"c.{quote(col)} IS NOT NULL" for col in cols)
            match = " AND ".join(f"p.{quote(pc)} = c.{quote(col)}"
                                 for col, pc in zip(cols, parent_cols, strict=True))
            missing = conn.one(
                f"SELECT count(*) FROM {quote(table)} c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote(parent)} p WHERE {match})")[0]
            if missing:
                findings.append(Finding(
                    concern, "foreign_key", table,
                    f"{missing} row(s) of {table} refer to missing rows of {parent} "
                    f"({', '.join(cols)}; foreign key {name})"))
        row = conn.one(PG_EXTENSION_SCHEMA)
    if row is None:
        notes.append(f"{concern}: the amcheck extension is not installed in this database; "
                     "skipped the index and table structure checks (CREATE EXTENSION amcheck "
                     "enables them)")
        return findings
    findings += _amcheck(backend, concern, row[0], notes)
    return findings


def _amcheck(backend: Any, concern: str, ext_schema: str, notes: list[str]) -> list[Finding]:
    schema = backend.schema(concern)
    findings: list[Finding] = []
    with backend.read(concern) as conn:
        indexes = conn.all(PG_BTREE_INDEXES, (schema,))
        has_heap_check = conn.one(PG_HAS_FUNCTION, (ext_schema, "verify_heapam")) is not None
    for table, index, oid in indexes:
        try:
            with backend.read(concern) as conn:
                conn.one(f"SELECT {quote(ext_schema)}.bt_index_check(CAST(? AS oid))", (oid,))
        except AgentkeepError as exc:
            if "permission denied" in str(exc):
                notes.append(f"{concern}: no permission to run amcheck; skipped the index and "
                             "table structure checks")
                return findings
            findings.append(Finding(concern, "integrity", table,
                                    f"index {index}: {_one_line(str(exc))}"))
    if not has_heap_check:
        notes.append(f"{concern}: this amcheck has no verify_heapam (PostgreSQL < 14); "
                     "checked the indexes only")
        return findings
    for table in plain_tables(backend, concern):
        qualified = f"{quote(schema)}.{quote(table)}"
        try:
            with backend.read(concern) as conn:
                rows = conn.all(f"SELECT blkno, offnum, msg FROM {quote(ext_schema)}."
                                "verify_heapam(CAST(? AS regclass))", (qualified,))
        except AgentkeepError as exc:
            rows = [(None, None, _one_line(str(exc)))]
        for block, offset, message in rows[:MAX_LISTED]:
            where = f" (block {block}, item {offset})" if block is not None else ""
            findings.append(Finding(concern, "integrity", table, f"{message}{where}"))
    return findings


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _drift(backend: Any, concern: str) -> list[Finding]:
    from ..migrations.alembic_ops import drift

    findings = []
    for line in drift(backend, concern):
        detail = line.split(": ", 1)[1] if line.startswith(f"{concern}: ") else line
        table = re.search(r"\b([A-Za-z_][A-Za-z0-9_]*)\.[A-Za-z_]", detail)
        findings.append(Finding(concern, "drift", table.group(1) if table else None,
                                f"{_explain_drift(detail)} (not repaired: migrate, or undo "
                                "the change by hand)"))
    return findings


def _explain_drift(detail: str) -> str:
    """Alembic's ``remove column t t.c`` as a sentence saying which side has what."""
    match = re.fullmatch(r"(add|remove) (table|column|index|unique constraint|foreign key"
                         r"|constraint) .*?([A-Za-z0-9_.]+)", detail)
    if match is None:
        return f"the schema differs from the declared one: {detail}"
    action, kind, name = match.groups()
    if action == "remove":
        return f"the database has {kind} {name}, which this agentkeep does not declare"
    return f"{kind} {name} is declared but missing from the database"


# --- the chat concern ---------------------------------------------------------------------
def _search_index_sqlite(store: Any) -> list[Finding]:
    """FTS5 against the messages it indexed, inside a transaction that is rolled back."""
    backend = store._backend
    with backend.read("chat") as conn:
        exists = conn.one("SELECT 1 FROM sqlite_master WHERE name = ?", (FTS_TABLE,))
        newest, indexed, _ = conn.one(chat_sql.SEARCH_BACKLOG)
    if exists is None:
        return [Finding("chat", "search_index", FTS_TABLE,
                        "the full-text index table is missing (not repaired: migrate the "
                        "store again)")]
    if newest - indexed > MAX_ROLLED_BACK_BACKLOG:
        store.chat.catch_up_index()  # commits, as the next search would
    findings = []
    with backend.scratch("chat") as conn:  # rolled back: it indexes only to compare
        with backend.translated("chat"):
            newest, indexed, _ = conn.one(chat_sql.SEARCH_BACKLOG)
        if indexed > newest:
            findings.append(Finding(
                "chat", "search_index", FTS_TABLE,
                f"the index high-water mark ({indexed}) is above the newest message "
                f"({newest}): messages that reuse those row keys would never be indexed",
                repairable=True))
        try:
            if newest > indexed:  # the legitimate backlog: index it here, then roll back
                conn.run(chat_sql.INDEX_BACKLOG, (indexed, newest))
            conn.run(FTS_CHECK)
        except sqlite3.DatabaseError as exc:
            findings.append(Finding(
                "chat", "search_index", FTS_TABLE,
                # FTS5's integrity-check says "database disk image is malformed" for
                # any mismatch: the index's, not the file's (integrity checks that)
                "the full-text index does not match the messages it indexed"
                + ("" if "malformed" in str(exc) else f" ({exc})"),
                repairable=True))
    return findings


def _search_config(conn: Any, schema: str) -> tuple[bool, bool, bool, bool]:
    """PostgreSQL: (the configuration exists, it folds accents, a repair could make it
    fold, the function that indexes long messages exists)."""
    config, folds, usable, makeable, function = conn.one(PG_SEARCH_CONFIG, (
        chat_sql.UNACCENT_DICTIONARY, schema, schema, chat_sql.SEARCH_CONFIG_POSTGRES))
    return config, folds, usable or makeable, function


def _search_index_postgres(backend: Any, notes: list[str]) -> list[Finding]:
    schema = backend.schema("chat")
    with backend.read("chat") as conn:
        table, index, trigger = conn.one(PG_SEARCH_STRUCTURES, (schema, schema, schema))
        missing = conn.one(PG_UNSEARCHABLE)[0] if table else 0
        config, folds, available, function = _search_config(conn, schema)
    findings = []
    for present, what in ((table, "the message_search table is missing"),
                          (index, "the GIN index message_search_vector is missing: search "
                                  "reads every vector")):
        if not present:
            findings.append(Finding("chat", "search_index", "messages",
                                    f"{what} (not repaired: restore a backup, or export "
                                    "and import the store into a new one)"))
    if table and not trigger:
        findings.append(Finding("chat", "search_index", "messages",
                                "the trigger messages_queue_for_search is missing or disabled: "
                                "new messages are not queued for search", repairable=True))
    if missing:
        findings.append(Finding("chat", "search_index", "message_search",
                                f"{missing} message(s) neither indexed nor queued for search: "
                                "search does not find them", repairable=True))
    if not function:
        findings.append(Finding("chat", "search_index", None,
                                f"the function {LONG_TEXT_FUNCTION} is missing: search fails "
                                "once a message over 256 KB is queued", repairable=True))
    name = chat_sql.SEARCH_CONFIG_POSTGRES
    if not config:
        findings.append(Finding("chat", "search_index", None,
                                f"the text search configuration {name} is missing: every "
                                "search fails", repairable=True))
    elif not folds and available:
        findings.append(Finding("chat", "search_index", None,
                                f"search does not fold accents ('cafe' does not find 'café'): "
                                f"the text search configuration {name} does not use the "
                                f"unaccent dictionary {chat_sql.UNACCENT_DICTIONARY} (if "
                                "--repair cannot make it, an administrator can run: "
                                f"{chat_sql.UNACCENT_SETUP})", repairable=True))
    elif not folds:
        note = ("chat: search does not fold accents ('cafe' does not find 'café'): "
                f"agentkeep's dictionary {chat_sql.UNACCENT_DICTIONARY} is not there or not "
                "open to this role, and this role cannot make it (PostgreSQL's unaccent "
                "extension, a contrib module, is not on the server, or the role lacks the "
                f"CREATE privilege on the database). An administrator can run: "
                f"{chat_sql.UNACCENT_SETUP}; then `agentkeep check --repair` folds them")
        if note not in notes:  # the check runs again after a repair
            notes.append(note)
    return findings


def _counters(backend: Any) -> list[Finding]:
    with backend.read("chat") as conn:
        rows = conn.all(WRONG_COUNTERS)
    findings = []
    names = ("message_count", "input_tokens", "output_tokens", "cost_nanos")
    for row in rows[:MAX_LISTED]:
        session_id, values = row[0], row[1:]
        wrong = [f"{name} {values[2 * n]} (recount {values[2 * n + 1]})"
                 for n, name in enumerate(names) if values[2 * n] != values[2 * n + 1]]
        findings.append(Finding("chat", "counters", "sessions",
                                f"session {session_id}: {', '.join(wrong)}", repairable=True))
    return _listed(findings, "chat", "counters", "sessions", True, len(rows) - MAX_LISTED)


def _head_depth(backend: Any) -> list[Finding]:
    if "head_depth" not in columns(backend, "chat", "sessions"):
        return []
    with backend.read("chat") as conn:
        rows = conn.all(WRONG_HEAD_DEPTH)
    findings = [Finding("chat", "head_depth", "sessions",
                        f"session {session_id}: head_depth {stored}, the head's depth is "
                        f"{-1 if actual is None else actual}", repairable=True)
                for session_id, stored, actual in rows[:MAX_LISTED]]
    return _listed(findings, "chat", "head_depth", "sessions", True, len(rows) - MAX_LISTED)


def _activity_order(backend: Any) -> list[Finding]:
    if backend.dialect != "sqlite" or "active_second" not in columns(backend, "chat",
                                                                     "sessions"):
        return []
    with backend.read("chat") as conn:
        wrong = _wrong_triggers(conn)
        rows = conn.all(WRONG_ACTIVE_SECOND)
    findings = [Finding("chat", "activity_order", "sessions",
                        f"trigger {name} is {state}: the session list may fall out of order",
                        repairable=True)
                for name, state in wrong.items()]
    findings += [Finding("chat", "activity_order", "sessions",
                         f"session {session_id}: active_second {second!r}, active_at "
                         f"{active_at!r}: listed out of order", repairable=True)
                 for session_id, second, active_at in rows[:MAX_LISTED]]
    return _listed(findings, "chat", "activity_order", "sessions", True,
                   len(rows) - MAX_LISTED)


def blob_references(backend: Any) -> list[tuple[str, str, str]]:
    """(table, column, blob column) of every foreign key that points at ``blobs``."""
    return [(table, column, parent_column)
            for table, column, parent, parent_column in foreign_keys(backend, "chat")
            if parent == "blobs"]


def orphaned_blobs_sql(backend: Any) -> str | None:
    """``SELECT sha256, size FROM blobs`` of the blobs no row refers to, or None when the
    catalogue shows no reference to blobs at all (then nothing can be called orphaned)."""
    references = blob_references(backend)
    if not references:
        return None
    keys = {blob_column for _, _, blob_column in references}
    if len(keys) != 1:  # pragma: no cover - blobs have one key
        return None
    key = quote(keys.pop())
    unreferenced = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {quote(table)} r WHERE r.{quote(column)} = b.{key})"
        for table, column, _ in references)
    return f"SELECT b.{key}, b.size FROM blobs b WHERE {unreferenced}"


def _orphaned_blobs(backend: Any, notes: list[str]) -> list[Finding]:
    query = orphaned_blobs_sql(backend)
    if query is None:
        notes.append("chat: no table refers to blobs in the catalogue; skipped the orphaned "
                     "blob check")
        return []
    with backend.read("chat") as conn:
        rows = conn.all(query + " ORDER BY 1")
    findings = [Finding("chat", "orphaned_blob", "blobs",
                        f"blob {sha} ({size} bytes) is referred to by nothing", repairable=True)
                for sha, size in rows[:MAX_LISTED]]
    return _listed(findings, "chat", "orphaned_blob", "blobs", True, len(rows) - MAX_LISTED)


def _dangling_references(backend: Any) -> list[Finding]:
    with backend.read("chat") as conn:
        rows = conn.all(DANGLING_REFERENCES)
    findings = []
    for table, row_id, column, target, owner in rows[:MAX_LISTED]:
        problem = "which does not exist" if owner is None else f"of session {owner}"
        findings.append(Finding("chat", "dangling_reference", table,
                                f"{table} {row_id}: {column} names message {target}, {problem}"))
    return _listed(findings, "chat", "dangling_reference", None, False,
                   len(rows) - MAX_LISTED)


def _orphaned_tool_calls(backend: Any) -> list[Finding]:
    with backend.read("chat") as conn:
        rows = conn.all(ORPHANED_TOOL_CALLS)
    findings = []
    for call_id, message_id, owner in rows[:MAX_LISTED]:
        problem = "does not exist" if owner is None else f"is in another session ({owner})"
        findings.append(Finding("chat", "orphaned_tool_call", "tool_calls",
                                f"tool call {call_id}: its message {message_id} {problem}"))
    return _listed(findings, "chat", "orphaned_tool_call", "tool_calls", False,
                   len(rows) - MAX_LISTED)


# --- repairs --------------------------------------------------------------------------------
def _repair_search_index(backend: Any) -> str:
    if backend.dialect == "postgresql":
        schema = backend.schema("chat")
        made = []
        with backend.write("chat") as conn:
            table, _, trigger = conn.one(PG_SEARCH_STRUCTURES, (schema, schema, schema))
            if table and not trigger:
                for statement in PG_QUEUE_TRIGGER:
                    conn.run(statement)
                made.append("re-created the trigger messages_queue_for_search")
            config, folds, _, function = _search_config(conn, schema)
            if not function:
                conn.run(chat_sql.LONG_TEXT_VECTOR_POSTGRES)
                made.append(f"made the function {LONG_TEXT_FUNCTION}")
            queued = 0
            if not (config and folds):
                conn.run(chat_sql.ENSURE_UNACCENT_POSTGRES)
                conn.run(chat_sql.MAKE_SEARCH_CONFIG_POSTGRES)
                folds = _search_config(conn, schema)[1]
                if folds or not config:  # else nothing changed: the dictionary is not there
                    made.append(f"made the text search configuration "
                                f"{chat_sql.SEARCH_CONFIG_POSTGRES} "
                                f"({'folding' if folds else 'not folding'} accents)")
                if table and folds:  # messages with accents index differently now
                    queued += conn.run(chat_sql.REQUEUE_ACCENTED_POSTGRES)
            queued += conn.run(PG_QUEUE_UNSEARCHABLE) if table else 0
        made.append(f"queued {queued} message(s) for search (indexed by the next search "
                    "or optimize)")
        return "chat: " + ", ".join(made)
    with backend.write("chat") as conn:
        conn.run(FTS_REBUILD)
        newest = conn.one(NEWEST_MESSAGE)[0]
        conn.run(chat_sql.SET_HIGH_WATER, (newest,))
    return (f"chat: rebuilt the full-text index from the messages and set its high-water "
            f"mark to {newest}")


def _repair_with_lock(backend: Any, lock_sql: str, update_sql: str) -> int:
    with backend.write("chat") as conn:
        if backend.dialect == "postgresql":
            conn.all(lock_sql)
        return conn.run(update_sql)


def _repair_counters(backend: Any) -> str:
    changed = _repair_with_lock(backend, LOCK_WRONG_COUNTERS, RECOUNT_COUNTERS)
    return f"chat: recounted the message, token and cost counters of {changed} session(s)"


def _repair_head_depth(backend: Any) -> str:
    changed = _repair_with_lock(backend, LOCK_WRONG_HEAD_DEPTH, FIX_HEAD_DEPTH)
    return f"chat: set head_depth from the head message in {changed} session(s)"


def _wrong_triggers(conn: Any) -> dict[str, str]:
    """SQLite: the active_second triggers that are missing or not as this agentkeep
    defines them, by name -> "missing" or "altered"."""
    present = dict(conn.all(SQLITE_TRIGGERS, ("sessions",)))
    return {name: "missing" if name not in present else "altered"
            for name, definition in chat_sql.ACTIVE_SECOND_TRIGGERS.items()
            if present.get(name) != definition}


def _repair_activity_order(backend: Any) -> str:
    with backend.write("chat") as conn:
        wrong = _wrong_triggers(conn)
        for name in wrong:
            conn.run(f"DROP TRIGGER IF EXISTS {name}")
            conn.run(chat_sql.ACTIVE_SECOND_TRIGGERS[name])
        changed = conn.run(FIX_ACTIVE_SECOND)
    return (f"chat: re-created {len(wrong)} trigger(s) and put {changed} session(s) back "
            "in the session list's order")


def delete_orphaned_blobs(backend: Any, *, batch: int = BLOB_BATCH) -> tuple[int, int]:
    """Delete every blob nothing refers to, ``batch`` per transaction (commits).

    Returns:
        (blobs deleted, their bytes).
    """
    query = orphaned_blobs_sql(backend)
    if query is None:
        return 0, 0
    deleted = size = 0
    while True:
        with backend.write("chat") as conn:
            rows = conn.all(f"{query} LIMIT ?", (batch,))
            if rows:
                conn.many("DELETE FROM blobs WHERE sha256 = ?", [(sha,) for sha, _ in rows])
        deleted += len(rows)
        size += sum(row[1] for row in rows)
        if len(rows) < batch:
            return deleted, size


def _repair_orphaned_blobs(backend: Any) -> str:
    deleted, size = delete_orphaned_blobs(backend)
    return f"chat: deleted {deleted} orphaned blob(s), {size} bytes"


# kind -> (find, repair); the finders that need notes take them as a second argument.
def _chat_checks(store: Any, notes: list[str]) -> dict[str, Any]:
    backend = store._backend

    def search() -> list[Finding]:
        if backend.dialect == "sqlite":
            return _search_index_sqlite(store)
        return _search_index_postgres(backend, notes)

    return {
        "search_index": (search, lambda: _repair_search_index(backend)),
        "counters": (lambda: _counters(backend), lambda: _repair_counters(backend)),
        "head_depth": (lambda: _head_depth(backend), lambda: _repair_head_depth(backend)),
        "activity_order": (lambda: _activity_order(backend),
                           lambda: _repair_activity_order(backend)),
        "orphaned_blob": (lambda: _orphaned_blobs(backend, notes),
                          lambda: _repair_orphaned_blobs(backend)),
        "dangling_reference": (lambda: _dangling_references(backend), None),
        "orphaned_tool_call": (lambda: _orphaned_tool_calls(backend), None),
    }


def check(store: Any, *, repair: bool = False) -> CheckReport:
    """Check every concern of ``store``; with ``repair``, fix what is safe to fix.

    Read-only unless ``repair`` is True. Safe while the application is running: the
    repairs run in short transactions and lock what they change.

    A damaged SQLite file is reported, not raised: what ``integrity_check`` lists (or the
    error that stopped it) as ``integrity`` findings; the file's other checks are skipped
    and nothing in it is repaired (a note says so: restore a backup).

    Args:
        repair: rebuild a damaged full-text index (SQLite), recount wrong session
            counters (one UPDATE), recompute a wrong ``head_depth``, put sessions back in
            the session list's order (SQLite), delete orphaned blobs. Damage (integrity,
            foreign keys), drift and dangling references are only reported.

    Returns:
        A :class:`CheckReport`: the findings (empty when clean), ``notes`` on checks that
        were skipped, and ``repairs`` (what was done). A repaired finding has
        ``repaired=True`` only when a second look no longer finds it.

    Raises:
        InvalidInput: ``repair`` is not a bool.
        StoreCorrupt: PostgreSQL reports damaged data outside the chat checks.
    """
    check_flag("repair", repair)
    backend = store._backend
    report = CheckReport()
    damaged = []
    for concern in backend.concerns:
        if backend.dialect == "sqlite":
            findings = _sqlite_integrity(backend, concern)
            report += findings
            if any(f.kind == "integrity" for f in findings):
                damaged.append(concern)
                continue
        else:
            report += _postgres_integrity(backend, concern, report.notes)
        report += _drift(backend, concern)
    if "chat" in backend.concerns and "chat" not in damaged:
        _check_chat(store, report, repair, damaged)
    for concern in damaged:
        where = f"{concern}: {backend.location(concern)} is damaged"
        report.notes.append(
            f"{where}; its other checks were skipped and nothing in it was repaired (a repair "
            "would write into damaged pages): restore a backup (`agentkeep restore`)"
            if repair else
            f"{where}; its other checks were skipped. Restore a backup (`agentkeep "
            "restore`): --repair does not mend a damaged file")
    return report


def _check_chat(store: Any, report: CheckReport, repair: bool, damaged: list[str]) -> None:
    """The chat concern's checks and, with ``repair``, their repairs; a check that finds
    the file damaged after all ends the checks and prevents every repair."""
    checks = _chat_checks(store, report.notes)
    found = {}
    for kind, (find, _) in checks.items():
        try:
            found[kind] = find()
        except StoreCorrupt as exc:  # damage integrity_check did not see
            found[kind] = [_unreadable("chat", None, f"the {kind} check", exc)]
            damaged.append("chat")
            break
    for kind, (_, fix) in checks.items():
        findings = found.get(kind, [])
        if repair and "chat" not in damaged and fix is not None \
                and any(f.repairable for f in findings):
            report.repairs.append(fix())
            # what the repair cannot fix (reported as such) does not make it a failure
            if any(f.repairable for f in checks[kind][0]()):
                report.notes.append(f"chat: the {kind} repair did not fix everything; "
                                    "run the check again")
            else:
                findings = [replace(f, repaired=True) if f.repairable else f
                            for f in findings]
        report += findings

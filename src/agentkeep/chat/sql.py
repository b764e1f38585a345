"""Every SQL statement of the chat concern, with dialect variants side by side.

Placeholders are ``?`` on both dialects (the PostgreSQL backend rewrites them).
Column lists are shared with the row decoders in ``store.py``: keep them in step.
"""

from __future__ import annotations

# A session row as the records read it (models.Session): the stored columns, then the
# head message's preview.
_SESSION_STORED = (
    "id", "title", "status", "provider", "model", "system_prompt", "generation", "metadata",
    "parent_id", "forked_from_id", "head_id", "summary_id", "message_count", "input_tokens",
    "output_tokens", "cost_nanos", "created_at", "updated_at", "active_at", "deleted_at",
)
SESSION_COLUMNS = ", ".join(f"s.{name}" for name in _SESSION_STORED) + ", substr(h.content, 1, 200)"
# A message row as the records read it (models.Message): the fields every read needs,
# then the rarely set ones (provider, model, finish_reason, tokens, usage, cost,
# metadata) packed by the database into one JSON array, or NULL when all hold their
# defaults. Each column costs the driver a Python object per row; 10 instead of 17
# made reading 20,000 messages ~25 % faster (docs/performance.md).
_MESSAGE_EXTRAS_UNSET = (
    "m.provider IS NULL AND m.model IS NULL AND m.finish_reason IS NULL AND m.usage IS NULL "
    "AND m.input_tokens = 0 AND m.output_tokens = 0 AND m.cost_nanos = 0 "
    "AND CAST(m.metadata AS TEXT) = '{}'"
)
_MESSAGE_EXTRAS = {  # usage and metadata go in as their JSON text, decoded on first read
    "sqlite": (
        "json_array(m.provider, m.model, m.finish_reason, m.input_tokens, m.output_tokens, "
        "m.usage, m.cost_nanos, m.metadata)"
    ),
    "postgresql": (
        "CAST(json_build_array(m.provider, m.model, m.finish_reason, m.input_tokens, "
        "m.output_tokens, CAST(m.usage AS TEXT), m.cost_nanos, CAST(m.metadata AS TEXT)) "
        "AS TEXT)"
    ),
}
# created_at as text on PostgreSQL too, parsed on first read: psycopg building a datetime
# per row cost ~0.5-1.3 µs, a tenth to a quarter of reading the last 50 messages. The
# server's own text form (agentkeep's connections pin TimeZone=UTC and DateStyle=ISO:
# "2026-01-02 03:04:05.123456+00") costs it ~0.3 µs a row less than to_char() into
# SQLite's form; records.parse_time reads both.
_MESSAGE_CREATED = {
    "sqlite": "m.created_at",
    "postgresql": "CAST(m.created_at AS TEXT)",
}
MESSAGE_COLUMNS = {
    dialect: (
        "m.id, m.session_id, m.parent_id, m.seq, m.depth, m.role, m.content, m.parts, "
        f"{_MESSAGE_CREATED[dialect]}, "
        f"CASE WHEN {_MESSAGE_EXTRAS_UNSET} THEN NULL ELSE {extras} END"
    )
    for dialect, extras in _MESSAGE_EXTRAS.items()
}
MESSAGE_WIDTH = 10  # columns in MESSAGE_COLUMNS; a search hit's own columns follow


def _reading_messages(statement: str) -> dict[str, str]:
    """A statement selecting {message_columns}, for each dialect."""
    return {dialect: statement.replace("{message_columns}", columns)
            for dialect, columns in MESSAGE_COLUMNS.items()}


TOOL_CALL_COLUMNS = (
    "t.id, t.session_id, t.message_id, t.call_id, t.name, t.input, t.output, t.status, "
    "t.error, t.retry_count, t.result_message_id, t.created_at, t.started_at, t.finished_at, "
    "t.duration_ms"
)
ATTACHMENT_COLUMNS = (
    "a.id, a.session_id, a.message_id, a.blob_sha256, a.filename, a.media_type, a.size, "
    "a.created_at"
)
FILE_COLUMNS = (
    "f.id, f.session_id, f.path, f.version, f.blob_sha256, f.size, f.media_type, f.message_id, "
    "f.created_at"
)

# --- sessions -------------------------------------------------------------------------
INSERT_SESSION = (
    "INSERT INTO sessions (id, title, status, provider, model, system_prompt, generation, "
    "metadata, parent_id, forked_from_id, created_at, updated_at, active_at) "
    "VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The preview is the head message's text, joined rather than copied so it follows
# branch switches for free.
SELECT_SESSION = (
    f"SELECT {SESSION_COLUMNS} FROM sessions s LEFT JOIN messages h ON h.id = s.head_id "
    "WHERE s.id = ?"
)
# PostgreSQL, create_session without a parent in one round trip (instead of BEGIN, a check
# for the id, the INSERT, SELECT_SESSION, COMMIT): the new row as SELECT_SESSION reads it,
# no preview (no head yet); no row back when the id is taken.
CREATE_SESSION_POSTGRES = (
    INSERT_SESSION + " ON CONFLICT (id) DO NOTHING RETURNING "
    + ", ".join(_SESSION_STORED) + ", NULL"
)
SESSION_EXISTS = "SELECT status FROM sessions WHERE id = ?"
# save_file reads the latest version and writes the next one: on PostgreSQL it holds the
# session row lock meanwhile, so concurrent saves cannot pick the same version (SQLite's
# BEGIN IMMEDIATE already serialises them).
LOCK_SESSION_STATUS = {
    "sqlite": SESSION_EXISTS,
    "postgresql": SESSION_EXISTS + " FOR UPDATE",
}
# Newest activity first; (active_at, id) is the keyset so pages never skip or repeat. The
# index holds the second (active_second, chat_0004): the database walks it newest first
# and sorts only the sessions active within the same second by the exact time, and joins
# the previews of the page only. {where}: the filters.
_NEWEST_FIRST = " ORDER BY s.active_second DESC, s.active_at DESC, s.id DESC"
LIST_SESSIONS = (
    f"SELECT {SESSION_COLUMNS} FROM (SELECT * FROM sessions s WHERE {{where}}"
    f"{_NEWEST_FIRST} LIMIT ?) s LEFT JOIN messages h ON h.id = s.head_id{_NEWEST_FIRST}"
)
# SQLite keeps sessions.active_second in step with active_at (chat_0004): UTC ISO text,
# whose first 19 characters are the second. Only when the second changes, so an append
# within the same second leaves the index alone.
_ACTIVE_SECOND = "substr(NEW.active_at, 1, 19)"
ACTIVE_SECOND_TRIGGERS = {
    "sessions_second_on_insert": (
        "CREATE TRIGGER sessions_second_on_insert AFTER INSERT ON sessions FOR EACH ROW "
        f"BEGIN UPDATE sessions SET active_second = {_ACTIVE_SECOND} "
        "WHERE rowid = NEW.rowid; END"),
    "sessions_second_on_update": (
        "CREATE TRIGGER sessions_second_on_update AFTER UPDATE OF active_at ON sessions "
        f"FOR EACH ROW WHEN NEW.active_second IS NOT {_ACTIVE_SECOND} "
        f"BEGIN UPDATE sessions SET active_second = {_ACTIVE_SECOND} "
        "WHERE rowid = NEW.rowid; END"),
}
# Filters on active_at, each with its bound on the indexed second.
ACTIVE_SINCE = "s.active_second >= ? AND s.active_at >= ?"
ACTIVE_UNTIL = "s.active_second <= ? AND s.active_at < ?"
BEFORE_CURSOR = "s.active_second <= ? AND (s.active_at < ? OR (s.active_at = ? AND s.id < ?))"
SET_SESSION_STATUS = (
    "UPDATE sessions SET status = ?, deleted_at = ?, updated_at = ? WHERE id = ?"
)
DELETE_SESSION = "DELETE FROM sessions WHERE id = ?"
UPDATE_SESSION_HEAD = (
    "UPDATE sessions SET head_id = ?, head_depth = ?, updated_at = ? WHERE id = ?"
)
UPDATE_SESSION_SUMMARY = "UPDATE sessions SET summary_id = ?, updated_at = ? WHERE id = ?"
# Counters move in the same transaction as the messages they count.
ADD_TO_SESSION = (
    "UPDATE sessions SET message_count = message_count + ?, input_tokens = input_tokens + ?, "
    "output_tokens = output_tokens + ?, cost_nanos = cost_nanos + ?, head_id = ?, "
    "head_depth = ?, summary_id = COALESCE(?, summary_id), updated_at = ?, active_at = ? "
    "WHERE id = ?"
)
# sum() of a bigint is numeric on PostgreSQL: cast back so both dialects return ints.
RECOUNT_SESSION = (
    "SELECT count(*), CAST(COALESCE(sum(input_tokens), 0) AS BIGINT), "
    "CAST(COALESCE(sum(output_tokens), 0) AS BIGINT), "
    "CAST(COALESCE(sum(cost_nanos), 0) AS BIGINT) FROM messages WHERE session_id = ?"
)

# What an append needs to know, read under the lock that serialises appends to a session
# (SQLite: the BEGIN IMMEDIATE write lock; PostgreSQL: the session row lock). head_depth
# lives on the session so no join is needed; a join in a FOR UPDATE query would return
# the head row seen before waiting for the lock under READ COMMITTED.
SESSION_FOR_APPEND = {
    "sqlite": "SELECT status, head_id, message_count, head_depth FROM sessions WHERE id = ?",
    "postgresql": (
        "SELECT status, head_id, message_count, head_depth FROM sessions WHERE id = ? "
        "FOR UPDATE"
    ),
}
SESSION_FOR_READ = SESSION_FOR_APPEND["sqlite"]
# list_sessions(title=...): a case-insensitive substring, in every script (SQLite's own
# lower() folds ASCII only; agentkeep registers agentkeep_lower on its connections).
TITLE_CONTAINS = {
    "sqlite": "agentkeep_lower(s.title) LIKE agentkeep_lower(?) ESCAPE '\\'",
    "postgresql": "lower(s.title) LIKE lower(?) ESCAPE '\\'",
}
# The columns a message is written with, in the order of INSERT_MESSAGE's values (and of
# models.stored_message).
_WRITTEN_COLUMNS = (
    "id, session_id, parent_id, seq, depth, role, content, parts, provider, model, "
    "finish_reason, input_tokens, output_tokens, usage, cost_nanos, metadata, created_at"
)
# PostgreSQL: one message at the head in ONE round trip. Lock the session row, move its
# counters and head, and insert the message, in one statement (data-modifying CTEs).
# Parameters: session id; input, output tokens, cost; new head id; summary id or NULL;
# updated_at, active_at; then the message's id, session id and fields as INSERT_MESSAGE.
APPEND_ONE_POSTGRES = (
    "WITH old AS (SELECT id, head_id, message_count, head_depth FROM sessions "
    "WHERE id = ? AND status <> 'deleted' FOR UPDATE), "
    "moved AS (UPDATE sessions s SET message_count = old.message_count + 1, "
    "input_tokens = s.input_tokens + ?, output_tokens = s.output_tokens + ?, "
    "cost_nanos = s.cost_nanos + ?, head_id = ?, head_depth = old.head_depth + 1, "
    "summary_id = COALESCE(?, s.summary_id), updated_at = ?, active_at = ? FROM old "
    "WHERE s.id = old.id RETURNING old.head_id AS parent_id, old.message_count + 1 AS seq, "
    "old.head_depth + 1 AS depth) "
    f"INSERT INTO messages ({_WRITTEN_COLUMNS}) "
    "SELECT ?, ?, parent_id, seq, depth, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    "FROM moved RETURNING parent_id, seq, depth"
)

# PostgreSQL: a batch at the head in ONE round trip, as APPEND_ONE_POSTGRES: the session
# row moves, the messages go in from one array per column (unnest: the server's cost of
# COPY, without COPY's extra round trip and the separate session read and update around
# it), and so do the batch's tool calls when every result answers a call of the same
# batch (APPEND_MANY_POSTGRES[plain, True]). Arrays are sent in binary (?b): text arrays
# in text form cost the client ~2x more. Parameters: session id; message count, input,
# output tokens, cost; new head id; message count again; summary id or NULL;
# updated_at, active_at; one array per column of _BATCH_PLAIN (and of _BATCH_EXTRAS
# unless plain); the parent ids (the first is not read: the head's, under the row lock,
# is used); then one array per column of _BATCH_CALLS. Parents are sent rather than
# found with lag(), which sorted the batch's rows, contents and all, on the server.
# Nothing is written when the session is missing or deleted.
_BATCH_PLAIN = (("id", "text"), ("role", "text"), ("content", "text"), ("parts", "json"),
                ("created_at", "timestamptz"))
_BATCH_EXTRAS = (("provider", "text"), ("model", "text"), ("finish_reason", "text"),
                 ("input_tokens", "bigint"), ("output_tokens", "bigint"), ("usage", "json"),
                 ("cost_nanos", "bigint"), ("metadata", "json"))
# A tool call of a batch, pending or already answered (INSERT_BATCH_TOOL_CALL's values).
_BATCH_CALLS = (("id", "text"), ("session_id", "text"), ("message_id", "text"),
                ("call_id", "text"), ("name", "text"), ("input", "json"), ("status", "text"),
                ("output", "json"), ("error", "text"), ("retry_count", "integer"),
                ("result_message_id", "text"), ("created_at", "timestamptz"),
                ("finished_at", "timestamptz"), ("duration_ms", "bigint"))


def _from_arrays(columns: tuple[tuple[str, str], ...], alias: str) -> tuple[str, str]:
    """The values of rows sent as one binary array per column, and the unnest() of them."""
    values = ", ".join(f"CAST({alias}.{name} AS json)" if kind == "json" else f"{alias}.{name}"
                       for name, kind in columns)
    arrays = ", ".join(f"CAST(?b AS {'text' if kind == 'json' else kind}[])"
                       for _, kind in columns)
    return values, f"unnest({arrays})"


def _batch_postgres(columns: tuple[tuple[str, str], ...], calls: bool, new_session: bool
                    ) -> str:
    """APPEND_MANY_POSTGRES (a batch at an existing session's head) or, with
    ``new_session``, CREATE_WITH_MESSAGES_POSTGRES (a new session and its first messages)."""
    values = _from_arrays(columns, "b")[0]
    unnest = _from_arrays((*columns, ("parent_id", "text")), "b")[1]
    names = ", ".join(name for name, _ in columns)
    if new_session:
        # The session row goes in with its final counters and head; the messages and calls
        # only when it did (its id was free). The first parent sent is NULL: a root.
        head = (
            "moved AS (INSERT INTO sessions (id, title, status, provider, model, "
            "system_prompt, generation, metadata, parent_id, forked_from_id, created_at, "
            "updated_at, active_at, message_count, input_tokens, output_tokens, cost_nanos, "
            "head_id, head_depth, summary_id) "
            "VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (id) DO NOTHING RETURNING {', '.join(_SESSION_STORED)})"
        )
        chained = "moved.id, b.parent_id, b.n, b.n - 1"
        result = f"SELECT {', '.join(_SESSION_STORED)} FROM moved"
    else:
        head = (
            "prior AS (SELECT id, head_id, message_count, head_depth FROM sessions "
            "WHERE id = ? AND status <> 'deleted' FOR UPDATE), "
            "moved AS (UPDATE sessions s SET message_count = prior.message_count + ?, "
            "input_tokens = s.input_tokens + ?, output_tokens = s.output_tokens + ?, "
            "cost_nanos = s.cost_nanos + ?, head_id = ?, head_depth = prior.head_depth + ?, "
            "summary_id = COALESCE(?, s.summary_id), updated_at = ?, active_at = ? FROM prior "
            "WHERE s.id = prior.id RETURNING prior.id, prior.head_id, prior.message_count, "
            "prior.head_depth)"
        )
        chained = ("moved.id, CASE WHEN b.n = 1 THEN moved.head_id ELSE b.parent_id END, "
                   "moved.message_count + b.n, moved.head_depth + b.n")
        result = "SELECT head_id, message_count, head_depth FROM moved"
    statement = (
        f"WITH {head}, "
        f"added AS (INSERT INTO messages (session_id, parent_id, seq, depth, {names}) "
        f"SELECT {chained}, {values} "
        f"FROM moved, {unnest} WITH ORDINALITY AS b({names}, parent_id, n))"
    )
    if calls:
        call_values, call_unnest = _from_arrays(_BATCH_CALLS, "c")
        call_names = ", ".join(name for name, _ in _BATCH_CALLS)
        statement += (
            f", called AS (INSERT INTO tool_calls ({call_names}) SELECT {call_values} "
            f"FROM moved, {call_unnest} AS c({call_names}))"
        )
    return f"{statement} {result}"


APPEND_MANY_POSTGRES = {
    (plain, calls): _batch_postgres(_BATCH_PLAIN if plain else _BATCH_PLAIN + _BATCH_EXTRAS,
                                    calls, new_session=False)
    for plain in (True, False) for calls in (True, False)
}
# PostgreSQL: create_session(messages=...) in ONE round trip: the session row (INSERT_SESSION's
# values, then its message count, input and output tokens, cost, head id, head depth and
# summary id or NULL), then the arrays of APPEND_MANY_POSTGRES. Returns the new session's
# stored columns; no row when the id is taken (nothing written).
CREATE_WITH_MESSAGES_POSTGRES = {
    (plain, calls): _batch_postgres(_BATCH_PLAIN if plain else _BATCH_PLAIN + _BATCH_EXTRAS,
                                    calls, new_session=True)
    for plain in (True, False) for calls in (True, False)
}

# --- messages -------------------------------------------------------------------------
INSERT_MESSAGE = (
    f"INSERT INTO messages ({_WRITTEN_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A message none of whose rarely set fields is given: the columns every read needs, in
# MESSAGE_COLUMNS' order, the rest left to their defaults. 9 values instead of 17 cost
# SQLite ~4 µs less per row (docs/performance.md, "Import").
_PLAIN_COLUMNS = "id, session_id, parent_id, seq, depth, role, content, parts, created_at"
INSERT_PLAIN_MESSAGE = (
    f"INSERT INTO messages ({_PLAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# PostgreSQL, a batch: the same columns by COPY (see base.COPY_FROM).
COPY_MESSAGES = f"COPY messages ({_WRITTEN_COLUMNS}) FROM STDIN"
COPY_PLAIN_MESSAGES = f"COPY messages ({_PLAIN_COLUMNS}) FROM STDIN"
SELECT_MESSAGE = _reading_messages("SELECT {message_columns} FROM messages m WHERE m.id = ?")
MESSAGE_POSITION = "SELECT session_id, depth, seq FROM messages WHERE id = ?"
# Every message of a session, all branches, in append order.
SESSION_MESSAGES = _reading_messages(
    "SELECT {message_columns} FROM messages m WHERE m.session_id = ? AND m.seq > ? "
    "ORDER BY m.seq LIMIT ?"
)

# A linear session (every message on the head's path) reads its history straight off the
# (session_id, seq) index; seq = depth + 1 there.
# The common read, the newest N of a live linear session, in one statement: no rows means
# "not that case" and the general path runs. The session is checked in a scalar subquery,
# not a join: PostgreSQL's planner cannot see which session the index scan is for, so a
# prepared statement's generic plan is costed like a custom one and kept. With a join, a
# session much longer than the average made the server plan the read anew on every call
# (~0.15 ms here, more than running it). SQLite runs both forms alike. The limit must stay
# a parameter: written as a number, the kept plan could be one made for short sessions
# (read the whole session, then sort), run on a long one (docs/performance.md).
LIVE_LINEAR_SESSION = (
    "(SELECT s.id FROM sessions s WHERE s.id = ? AND s.status <> 'deleted' "
    "AND s.head_depth + 1 = s.message_count)"
)
RECENT_LINEAR = _reading_messages(
    "SELECT {message_columns} FROM messages m WHERE m.session_id = "
    f"{LIVE_LINEAR_SESSION} ORDER BY m.seq DESC LIMIT ?"
)
LINEAR_HISTORY_NEWEST = _reading_messages(
    "SELECT {message_columns} FROM messages m WHERE m.session_id = ? AND m.seq >= ? "
    "AND m.seq <= ? ORDER BY m.seq DESC LIMIT ?"
)
LINEAR_HISTORY_OLDEST = _reading_messages(
    "SELECT {message_columns} FROM messages m WHERE m.session_id = ? AND m.seq >= ? "
    "AND m.seq <= ? ORDER BY m.seq LIMIT ?"
)
# A branched session walks from a start message up through parent links, stopping at
# the lower depth bound or after `limit` messages: cost is the window, not the history.
PATH_WALK = (
    "WITH RECURSIVE path(id, parent_id, depth, n) AS ("
    " SELECT id, parent_id, depth, 1 FROM messages WHERE id = ?"
    " UNION ALL"
    " SELECT m.id, m.parent_id, m.depth, path.n + 1 FROM messages m"
    " JOIN path ON m.id = path.parent_id WHERE path.depth > ? AND path.n < ?)"
)
PATH_HISTORY_NEWEST = _reading_messages(
    PATH_WALK + " SELECT {message_columns} FROM path JOIN messages m ON m.id = path.id "
    "WHERE m.depth >= ? ORDER BY m.depth"
)
PATH_HISTORY_OLDEST = _reading_messages(
    PATH_WALK + " SELECT {message_columns} FROM path JOIN messages m ON m.id = path.id "
    "WHERE m.depth >= ? ORDER BY m.depth LIMIT ?"
)
# The ancestor of a start message at a given depth (is a message on the active branch?).
ANCESTOR_AT_DEPTH = (
    "WITH RECURSIVE path(id, parent_id, depth) AS ("
    " SELECT id, parent_id, depth FROM messages WHERE id = ?"
    " UNION ALL"
    " SELECT m.id, m.parent_id, m.depth FROM messages m JOIN path ON m.id = path.parent_id"
    " WHERE path.depth > ?)"
    " SELECT id FROM path WHERE depth = ?"
)
# Walk up from the head until the n-th user message: whole turns, so a tool call is never
# separated from its result. A user message carrying a tool_result part (how Anthropic
# returns tool output) continues the turn rather than starting one; parts are stored as
# compact JSON, so the part's type reads exactly '"type":"tool_result"'.
TURN_START = (
    "CASE WHEN {m}role = 'user' AND CAST({m}parts AS TEXT) NOT LIKE "
    "'%\"type\":\"tool_result\"%' THEN 1 ELSE 0 END"
)
LAST_TURNS = _reading_messages(
    "WITH RECURSIVE path(id, parent_id, users) AS ("
    f" SELECT id, parent_id, {TURN_START.format(m='')} FROM messages WHERE id = ?"
    " UNION ALL"
    f" SELECT m.id, m.parent_id, path.users + {TURN_START.format(m='m.')}"
    " FROM messages m JOIN path ON m.id = path.parent_id WHERE path.users < ?)"
    " SELECT {message_columns} FROM path JOIN messages m ON m.id = path.id ORDER BY m.depth"
)
# Leaves: messages nothing answers. The parent index makes NOT EXISTS a lookup.
# Leaves: messages no other message of the session answers. One pass over the session's
# rows (parent_id has no index: it would cost every append a page write).
BRANCH_LEAVES = _reading_messages(
    "SELECT {message_columns} FROM messages m WHERE m.session_id = ? AND m.id NOT IN "
    "(SELECT c.parent_id FROM messages c WHERE c.session_id = ? AND c.parent_id IS NOT NULL) "
    "ORDER BY m.seq"
)

# --- tool calls -------------------------------------------------------------------------
INSERT_TOOL_CALL = (
    "INSERT INTO tool_calls (id, session_id, message_id, call_id, name, input, status, "
    "retry_count, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
)
# The tool calls of an appended batch, each pending or, when the batch also holds its
# result (a bulk import), already finished: one row each, no UPDATE after the INSERT.
_BATCH_TOOL_CALL_COLUMNS = ", ".join(name for name, _ in _BATCH_CALLS)
INSERT_BATCH_TOOL_CALL = (
    f"INSERT INTO tool_calls ({_BATCH_TOOL_CALL_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
COPY_BATCH_TOOL_CALLS = f"COPY tool_calls ({_BATCH_TOOL_CALL_COLUMNS}) FROM STDIN"
SELECT_TOOL_CALL = f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls t WHERE t.id = ?"
# start/finish check the status under the row lock on PostgreSQL, so of two callers racing
# to start (or finish) one call exactly one wins and the other gets Conflict.
LOCK_TOOL_CALL = {
    "sqlite": SELECT_TOOL_CALL,
    "postgresql": SELECT_TOOL_CALL + " FOR UPDATE",
}
# A result finishes the newest unfinished call with that id (a finished one is left alone).
# An OR chain, not IN (...): SQLite builds a temporary index of a list of three or more
# values on every run (11.6 against 15.5 µs here; docs/performance.md, "Import").
TOOL_CALL_BY_CALL_ID = (
    "SELECT id FROM tool_calls WHERE session_id = ? AND call_id = ? "
    "AND (status = 'pending' OR status = 'running' OR status = 'failed') "
    "ORDER BY created_at DESC, id DESC LIMIT 1"
)
START_TOOL_CALL = (
    "UPDATE tool_calls SET status = 'running', started_at = ?, finished_at = NULL, "
    "duration_ms = NULL, error = NULL, "
    "retry_count = retry_count + CASE WHEN status = 'pending' THEN 0 ELSE 1 END WHERE id = ?"
)
# The last parameter adds to retry_count: 1 when a result finishes a call that had failed.
FINISH_TOOL_CALL = (
    "UPDATE tool_calls SET status = ?, output = ?, error = ?, finished_at = ?, duration_ms = ?, "
    "result_message_id = COALESCE(?, result_message_id), retry_count = retry_count + ? "
    "WHERE id = ?"
)
# Calls of soft-deleted sessions are hidden, like the sessions' messages.
LIST_TOOL_CALLS = (
    f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls t JOIN sessions s ON s.id = t.session_id "
    "WHERE s.status <> 'deleted'"
)
LIST_TOOL_CALLS_ORDER = " ORDER BY t.created_at DESC, t.id DESC LIMIT ?"

# --- blobs, attachments, files ------------------------------------------------------------
# On PostgreSQL an existing blob is locked (DO UPDATE), so a concurrent orphan cleanup
# cannot delete it between this statement and the row that will refer to it.
INSERT_BLOB = {
    "sqlite": (
        "INSERT INTO blobs (sha256, size, data, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (sha256) DO NOTHING"
    ),
    "postgresql": (
        "INSERT INTO blobs (sha256, size, data, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (sha256) DO UPDATE SET size = excluded.size"
    ),
}
SELECT_BLOB = "SELECT data FROM blobs WHERE sha256 = ?"
INSERT_ATTACHMENT = (
    "INSERT INTO attachments (id, session_id, message_id, blob_sha256, filename, media_type, "
    "size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_ATTACHMENT = f"SELECT {ATTACHMENT_COLUMNS} FROM attachments a WHERE a.id = ?"
LIST_ATTACHMENTS = (
    f"SELECT {ATTACHMENT_COLUMNS} FROM attachments a WHERE a.message_id = ? ORDER BY a.id"
)
LATEST_FILE_VERSION = (
    "SELECT version, blob_sha256 FROM file_versions WHERE session_id = ? AND path = ? "
    "ORDER BY version DESC LIMIT 1"
)
INSERT_FILE_VERSION = (
    "INSERT INTO file_versions (id, session_id, path, version, blob_sha256, size, media_type, "
    "message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_FILE_VERSION = (
    f"SELECT {FILE_COLUMNS} FROM file_versions f WHERE f.session_id = ? AND f.path = ? "
    "AND f.version = ?"
)
SELECT_LATEST_FILE = (
    f"SELECT {FILE_COLUMNS} FROM file_versions f WHERE f.session_id = ? AND f.path = ? "
    "ORDER BY f.version DESC LIMIT 1"
)
LIST_FILE_VERSIONS = (
    f"SELECT {FILE_COLUMNS} FROM file_versions f WHERE f.session_id = ? AND f.path = ? "
    "ORDER BY f.version"
)
# The newest version of every path of a session.
LIST_FILES = (
    f"SELECT {FILE_COLUMNS} FROM file_versions f WHERE f.session_id = ? AND f.version = "
    "(SELECT max(v.version) FROM file_versions v WHERE v.session_id = f.session_id "
    "AND v.path = f.path) ORDER BY f.path"
)
SESSION_BLOBS = (
    "SELECT blob_sha256 FROM attachments WHERE session_id = ? "
    "UNION SELECT blob_sha256 FROM file_versions WHERE session_id = ?"
)
# Blobs are shared between sessions; one goes only when nothing refers to it.
DELETE_UNREFERENCED_BLOB = (
    "DELETE FROM blobs WHERE sha256 = ? "
    "AND NOT EXISTS (SELECT 1 FROM attachments WHERE blob_sha256 = ?) "
    "AND NOT EXISTS (SELECT 1 FROM file_versions WHERE blob_sha256 = ?)"
)

# --- search -------------------------------------------------------------------------------
# SQLite feeds FTS5 outside the append transaction: messages above the high-water mark are
# indexed by the next search (or optimize), so appends stay cheap and a committed message
# is always findable by the next search.
SEARCH_BACKLOG = (
    "SELECT COALESCE((SELECT max(pk) FROM messages), 0), "
    "COALESCE((SELECT value FROM search_state WHERE name = 'fts'), 0), "
    "EXISTS (SELECT 1 FROM sessions WHERE status = 'deleted')"
)
INDEX_BACKLOG = (
    "INSERT INTO messages_fts (rowid, content) SELECT pk, content FROM messages "
    "WHERE pk > ? AND pk <= ?"
)
SET_HIGH_WATER = (
    "INSERT INTO search_state (name, value) VALUES ('fts', ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
# External-content FTS5 must be told the old text of rows it indexed before they go.
UNINDEX_SESSION = (
    "INSERT INTO messages_fts (messages_fts, rowid, content) SELECT 'delete', pk, content "
    "FROM messages WHERE session_id = ? AND pk <= "
    "COALESCE((SELECT value FROM search_state WHERE name = 'fts'), 0)"
)
# After a purge the highest pks may be gone and SQLite reuses them: lower the mark so a
# new message with a reused pk is still indexed.
LOWER_HIGH_WATER = (
    "UPDATE search_state SET value = (SELECT COALESCE(max(pk), 0) FROM messages) "
    "WHERE name = 'fts' AND value > (SELECT COALESCE(max(pk), 0) FROM messages)"
)
# SQLite searches in two steps: rank every match and keep the top rowids with their
# scores (SEARCH_TOP), then build snippets for those hits only, named by a literal list
# of rowids, in the order of the first step. snippet() re-reads and re-tokenizes each
# document, and a sorted single query builds it for every match before LIMIT applies;
# bm25() in the second step costs more than the snippets (rowid-constrained, it is
# recomputed per row). Measured, 20-hit queries on 100,000 messages: single query
# 2.4 ms, two steps with bm25 again 3.5 ms, two steps as here 1.8 ms.
SEARCH_SQLITE = (
    f"SELECT {MESSAGE_COLUMNS['sqlite']}, s.title, "
    "snippet(messages_fts, 0, ?, ?, '…', 16), messages_fts.rowid FROM messages_fts "
    "JOIN messages m ON m.pk = messages_fts.rowid JOIN sessions s ON s.id = m.session_id "
    "WHERE messages_fts MATCH ? AND messages_fts.rowid IN ({rowids})"
)
# PostgreSQL: new messages are queued by a trigger (search_backlog) and indexed into
# message_search by the next search, in one statement (chat_0003). ON CONFLICT: a row
# indexed already (the queue is only ever appended to by the trigger) stays as it is.
SEARCH_PENDING_POSTGRES = (
    "SELECT EXISTS (SELECT 1 FROM search_backlog), "
    "EXISTS (SELECT 1 FROM sessions WHERE status = 'deleted')"
)
# Searches that catch up at once take turns (a transaction-scoped lock per schema): the
# second then finds the queue emptied by the first, committed, instead of deadlocking on
# its rows or skipping rows the first has not committed yet.
LOCK_BACKLOG_POSTGRES = (
    "SELECT pg_advisory_xact_lock(hashtext('agentkeep search ' || current_schema()))"
)
# PostgreSQL's parser keeps e-mail addresses, hosts, file names, versions and decimals
# whole (user@example.com, app.py, 4.1, 3.14) where SQLite's unicode61 splits them into
# words: "example", "app.py" or "3.14" found nothing there. Messages are indexed with
# ASCII punctuation turned into spaces (chat_0007), so both backends split words alike
# (~8 % more to_tsvector time). Final sigma is indexed as sigma (chat_0008), as FTS5
# folds it: PostgreSQL lowers "ΟΔΟΣ" to "οδοσ" and keeps the "ς" of "οδός".
SEARCH_TEXT_POSTGRES = (
    "translate(regexp_replace(m.content, '[!-/:-@[-`{-~]+', ' ', 'g'), 'ς', 'σ')"
)


def regconfig_sql(config: str) -> str:
    """The text search configuration ``config`` as an SQL expression looked up each time
    the statement runs (once per statement: a subquery), not when it is prepared: a
    quoted name is resolved to the configuration's OID at parse time, and a pooled
    connection's prepared statement would keep that OID after the configuration is made
    again (``check --repair``, a restore): "cache lookup failed" on every search."""
    return f"(SELECT CAST(CAST('{config}' AS text) AS regconfig))"


# Messages are indexed, queries parsed and snippets marked with the store's text search
# configuration (chat_0008): a copy of `english` in which words holding letters beyond
# ASCII go through the `unaccent` dictionary first, so accents fold as FTS5's
# remove_diacritics folds them ("cafe" finds "café", "Café" is marked). The dictionary
# is always agentkeep_unaccent.unaccent, a fixed name that a backup's configuration
# refers to on any server: the extension's own when agentkeep installs it there (it is
# a trusted extension: the CREATE privilege on the database is enough), else one made
# from the template of the extension installed elsewhere. Without it (the extension not
# on the server, or not permitted) the configuration is plain `english`; `check` says so.
SEARCH_CONFIG_POSTGRES = "search_english"
_SEARCH_CONFIG_SQL = regconfig_sql(SEARCH_CONFIG_POSTGRES)
UNACCENT_DICTIONARY = "agentkeep_unaccent.unaccent"
# What an administrator runs where agentkeep's role may not (checks and errors say it).
UNACCENT_SETUP = ("CREATE SCHEMA agentkeep_unaccent; CREATE EXTENSION unaccent SCHEMA "
                  "agentkeep_unaccent; GRANT USAGE ON SCHEMA agentkeep_unaccent TO PUBLIC")
_UNACCENT = (
    "SELECT 1 FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace "
    "WHERE n.nspname = 'agentkeep_unaccent' AND d.dictname = 'unaccent'"
)
UNACCENT_EXISTS = f"EXISTS ({_UNACCENT})"
# Usable: there, and its schema open to this role (every role's stores share it).
UNACCENT_USABLE = f"EXISTS ({_UNACCENT} AND has_schema_privilege(n.oid, 'USAGE'))"
ENSURE_UNACCENT_POSTGRES = f"""DO $agentkeep$
DECLARE home text;
BEGIN
  IF NOT {UNACCENT_EXISTS} THEN
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'agentkeep_unaccent') THEN
        CREATE SCHEMA agentkeep_unaccent;
        GRANT USAGE ON SCHEMA agentkeep_unaccent TO PUBLIC;
      END IF;
      SELECT n.nspname INTO home FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent';
      IF home IS NULL THEN
        CREATE EXTENSION unaccent SCHEMA agentkeep_unaccent;
      ELSE
        EXECUTE 'CREATE TEXT SEARCH DICTIONARY agentkeep_unaccent.unaccent (TEMPLATE = '
          || quote_ident(home) || '.unaccent, RULES = unaccent)';
      END IF;
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- not on this server, or not permitted: accents are not folded
    END;
  END IF;
END $agentkeep$"""
# Made in the concern's schema (the first on search_path); folds when the dictionary is
# there, and leaves a folding configuration as it is when it is not.
MAKE_SEARCH_CONFIG_POSTGRES = f"""DO $agentkeep$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n
                 ON n.oid = c.cfgnamespace WHERE n.nspname = current_schema()
                 AND c.cfgname = '{SEARCH_CONFIG_POSTGRES}') THEN
    CREATE TEXT SEARCH CONFIGURATION {SEARCH_CONFIG_POSTGRES} (COPY = pg_catalog.english);
  END IF;
  IF {UNACCENT_USABLE} THEN
    ALTER TEXT SEARCH CONFIGURATION {SEARCH_CONFIG_POSTGRES}
      ALTER MAPPING FOR word, hword, hword_part WITH {UNACCENT_DICTIONARY}, english_stem;
    ALTER TEXT SEARCH CONFIGURATION {SEARCH_CONFIG_POSTGRES}
      ALTER MAPPING FOR numword, numhword, hword_numpart WITH {UNACCENT_DICTIONARY}, simple;
  END IF;
END $agentkeep$"""
# Only a message with a character beyond ASCII can index differently once accents fold:
# its vector is dropped and it is queued, indexed again by the next search or optimize.
REQUEUE_ACCENTED_POSTGRES = (
    "WITH accented AS (DELETE FROM message_search x USING messages m WHERE m.pk = x.pk "
    "AND m.content ~ '[^\\x01-\\x7f]' RETURNING x.pk) "
    "INSERT INTO search_backlog (pk) SELECT pk FROM accented ON CONFLICT (pk) DO NOTHING"
)
# A tsvector holds at most 1 MB: one message of ~1.3 MB of distinct words (a log of ids)
# failed every catch-up, and so every search, for good. A message over 256 KB (whose
# vector always fits below it: at most ~3.3 bytes a character for ASCII, ~6.5 for other
# scripts) is indexed by this function (chat_0008): all of it when its vector fits, else
# as much of its start as fits. The CASE keeps the exception block's subtransaction off
# the ordinary messages.
LONG_TEXT_LIMIT = 262_144
LONG_TEXT_VECTOR_POSTGRES = f"""CREATE OR REPLACE FUNCTION search_vector_of_long_text(body text)
RETURNS tsvector LANGUAGE plpgsql AS $agentkeep$
DECLARE kept integer := length(body);
BEGIN
  LOOP
    BEGIN
      RETURN to_tsvector({_SEARCH_CONFIG_SQL}, left(body, kept));
    EXCEPTION WHEN program_limit_exceeded THEN
      kept := kept * 3 / 4;  -- over 1 MB: index less of the start
    END;
  END LOOP;
END $agentkeep$"""
_INDEX_QUEUED = (
    "INSERT INTO message_search (pk, search_vector) "
    f"SELECT m.pk, CASE WHEN octet_length(m.content) <= {LONG_TEXT_LIMIT} "
    f"THEN to_tsvector({_SEARCH_CONFIG_SQL}, {SEARCH_TEXT_POSTGRES}) "
    f"ELSE search_vector_of_long_text({SEARCH_TEXT_POSTGRES}) END "
    "FROM queued JOIN messages m ON m.pk = queued.pk ON CONFLICT (pk) DO NOTHING"
)
INDEX_BACKLOG_POSTGRES = f"WITH queued AS (DELETE FROM search_backlog RETURNING pk) {_INDEX_QUEUED}"
# A long queue (a bulk import) is indexed in pk ranges on several connections at once:
# to_tsvector is the work, and one statement runs on one server core.
BACKLOG_SPAN_POSTGRES = "SELECT min(pk), max(pk) FROM search_backlog"
INDEX_BACKLOG_RANGE_POSTGRES = (
    "WITH queued AS (DELETE FROM search_backlog WHERE pk BETWEEN ? AND ? RETURNING pk) "
    f"{_INDEX_QUEUED}"
)
VACUUM_BACKLOG_POSTGRES = "VACUUM search_backlog"  # outside a transaction
# Rank the matches of message_search alone (joined to messages only when a filter or a
# soft-deleted session needs it), then join sessions and build headlines for the top
# hits only: as fast as ranking a bare table (docs/performance.md, W5). The outer status
# test covers a session deleted since the caller looked for deleted ones.
_SEARCH_HITS_POSTGRES = (
    f"SELECT {MESSAGE_COLUMNS['postgresql']}, s.title, "
    f"ts_headline({_SEARCH_CONFIG_SQL}, m.content, top.query, ?), top.rank "
    "FROM top "
    "JOIN messages m ON m.pk = top.pk JOIN sessions s ON s.id = m.session_id "
    "WHERE s.status <> 'deleted' ORDER BY top.rank DESC, top.pk DESC"
)
# OFFSET 0 keeps the query a subquery of its own, computed once: flattened, its tsquery
# (not a constant, its configuration being looked up as the statement runs) was parsed
# again for every matching row (W5 ×2 in an A/B run).
SEARCH_POSTGRES = {
    "plain": (
        "WITH top AS (SELECT x.pk, ts_rank_cd(x.search_vector, q.query) AS rank, q.query "
        "FROM (SELECT {tsquery} AS query OFFSET 0) q, message_search x "
        "WHERE x.search_vector @@ q.query ORDER BY rank DESC, x.pk DESC LIMIT ?) "
        + _SEARCH_HITS_POSTGRES
    ),
    "filtered": (
        "WITH top AS (SELECT x.pk, ts_rank_cd(x.search_vector, q.query) AS rank, q.query "
        "FROM (SELECT {tsquery} AS query OFFSET 0) q, message_search x "
        "JOIN messages m ON m.pk = x.pk WHERE x.search_vector @@ q.query "
        "AND NOT EXISTS (SELECT 1 FROM sessions d WHERE d.id = m.session_id "
        "AND d.status = 'deleted'){filters} "
        "ORDER BY rank DESC, x.pk DESC LIMIT ?) " + _SEARCH_HITS_POSTGRES
    ),
}
# The top-ranked rowids for SEARCH["sqlite"]; joins only when a filter needs them.
SEARCH_TOP = {
    "plain": (
        "SELECT rowid, -bm25(messages_fts) FROM messages_fts WHERE messages_fts MATCH ? "
        "ORDER BY bm25(messages_fts), rowid DESC LIMIT ?"
    ),
    "filtered": (
        "SELECT messages_fts.rowid, -bm25(messages_fts) FROM messages_fts "
        "JOIN messages m ON m.pk = messages_fts.rowid JOIN sessions s ON s.id = m.session_id "
        "WHERE messages_fts MATCH ?{filters} ORDER BY bm25(messages_fts), "
        "messages_fts.rowid DESC LIMIT ?"
    ),
}

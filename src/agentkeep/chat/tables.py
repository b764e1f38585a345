"""The chat concern's schema, declared for migrations and drift checks.

Not imported at run time: the stores use the SQL in ``sql.py``. Search structures are
dialect-specific and live only in the migrations: an FTS5 table ``messages_fts`` on
SQLite, a generated ``search_vector`` column with a GIN index on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ..schema_types import Json, RowId, Time

metadata = MetaData()


def one_of(column: str, *values: str) -> str:
    """A CHECK that ``column`` holds one of ``values``, as an OR chain (chat_0005): SQLite
    builds a temporary index for every row it checks against an IN list of 3+ values."""
    return " OR ".join(f"{column} = '{value}'" for value in values)

sessions = Table(
    "sessions", metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text),
    Column("status", Text, nullable=False, server_default="active"),
    Column("provider", Text),
    Column("model", Text),
    Column("system_prompt", Text),
    Column("generation", Json, nullable=False, server_default="{}"),
    Column("metadata", Json, nullable=False, server_default="{}"),
    Column("parent_id", Text, ForeignKey("sessions.id", ondelete="SET NULL")),
    Column("forked_from_id", Text),
    Column("head_id", Text),
    # The head's depth, kept beside head_id so an append needs no join (-1: no head).
    Column("head_depth", BigInteger, nullable=False, server_default="-1"),
    Column("summary_id", Text),
    Column("message_count", BigInteger, nullable=False, server_default="0"),
    Column("input_tokens", BigInteger, nullable=False, server_default="0"),
    Column("output_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_nanos", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("active_at", Time, nullable=False),
    Column("deleted_at", Time),
    # active_at truncated to the UTC second, kept by the database (chat_0004: SQLite
    # triggers, a generated column on PostgreSQL). It orders the session list, and an
    # append moves it at most once a second, not every time.
    Column("active_second", Text().with_variant(TIMESTAMP(timezone=False), "postgresql")),
    CheckConstraint(one_of("status", "active", "archived", "deleted"), name="sessions_status"),
    # The session list: newest activity first, keyset-paginated on (active_at, id).
    Index("sessions_by_activity", "active_second"),
    Index("sessions_by_parent", "parent_id"),
    # Tiny (soft-deleted sessions only): tells search whether it must filter them out.
    Index("sessions_deleted", "id", sqlite_where=text("status = 'deleted'"),
          postgresql_where=text("status = 'deleted'")),
)

messages = Table(
    "messages", metadata,
    # An integer key for the search index (FTS5 content_rowid) and cheap joins.
    Column("pk", RowId, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    # No foreign key and no index on parent_id: messages only go with their session, and
    # each index costs every append a page write (measured: ~9 µs of a ~40 µs commit).
    Column("parent_id", Text),
    Column("seq", BigInteger, nullable=False),
    Column("depth", BigInteger, nullable=False),
    Column("role", Text, nullable=False),
    Column("content", Text, nullable=False, server_default=""),
    Column("parts", Json, nullable=False, server_default="[]"),
    Column("provider", Text),
    Column("model", Text),
    Column("finish_reason", Text),
    Column("input_tokens", BigInteger, nullable=False, server_default="0"),
    Column("output_tokens", BigInteger, nullable=False, server_default="0"),
    Column("usage", Json),
    Column("cost_nanos", BigInteger, nullable=False, server_default="0"),
    Column("metadata", Json, nullable=False, server_default="{}"),
    Column("created_at", Time, nullable=False),
    CheckConstraint(one_of("role", "system", "user", "assistant", "tool"), name="messages_role"),
    # History of a linear session reads (session_id, seq) in order.
    UniqueConstraint("session_id", "seq", name="messages_session_seq"),
)

tool_calls = Table(
    "tool_calls", metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", Text, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("call_id", Text),
    Column("name", Text, nullable=False),
    Column("input", Json, nullable=False, server_default="{}"),
    Column("output", Json),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("error", Text),
    Column("retry_count", Integer, nullable=False, server_default="0"),
    Column("result_message_id", Text),
    Column("created_at", Time, nullable=False),
    Column("started_at", Time),
    Column("finished_at", Time),
    Column("duration_ms", BigInteger),
    CheckConstraint(
        one_of("status", "pending", "running", "succeeded", "failed", "cancelled"),
        name="tool_calls_status"),
    Index("tool_calls_by_session", "session_id", "call_id"),
    Index("tool_calls_by_message", "message_id"),
    Index("tool_calls_by_name", "name", "status"),
)

blobs = Table(
    "blobs", metadata,
    Column("sha256", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Time, nullable=False),
)

attachments = Table(
    "attachments", metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", Text, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("blob_sha256", Text, ForeignKey("blobs.sha256"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Time, nullable=False),
    Index("attachments_by_message", "message_id"),
    Index("attachments_by_blob", "blob_sha256"),
    Index("attachments_by_session", "session_id"),
)

file_versions = Table(
    "file_versions", metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("blob_sha256", Text, ForeignKey("blobs.sha256"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", Text),
    Column("message_id", Text, ForeignKey("messages.id", ondelete="SET NULL")),
    Column("created_at", Time, nullable=False),
    UniqueConstraint("session_id", "path", "version", name="file_versions_path_version"),
    Index("file_versions_by_blob", "blob_sha256"),
    Index("file_versions_by_message", "message_id"),
)

# SQLite only uses this: the highest messages.pk already fed to the FTS5 index.
search_state = Table(
    "search_state", metadata,
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

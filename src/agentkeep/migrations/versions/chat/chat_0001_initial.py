"""Create the chat concern: sessions, messages, tool calls, blobs, attachments,
file versions and the search index.

Revision ID: chat_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "chat_0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types at this revision (never import live table code here).
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSON(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "search_state",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("generation", JSON, server_default="{}", nullable=False),
        sa.Column("metadata", JSON, server_default="{}", nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("forked_from_id", sa.Text(), nullable=True),
        sa.Column("head_id", sa.Text(), nullable=True),
        sa.Column("head_depth", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("summary_id", sa.Text(), nullable=True),
        sa.Column("message_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("active_at", TIME, nullable=False),
        sa.Column("deleted_at", TIME, nullable=True),
        sa.CheckConstraint("status IN ('active', 'archived', 'deleted')", name="sessions_status"),
        sa.ForeignKeyConstraint(["parent_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("sessions_by_activity", "sessions", ["active_at", "id"], unique=False)
    op.create_index("sessions_by_parent", "sessions", ["parent_id"], unique=False)
    op.create_index(
        "sessions_deleted",
        "sessions",
        ["id"],
        unique=False,
        sqlite_where=sa.text("status = 'deleted'"),
        postgresql_where=sa.text("status = 'deleted'"),
    )
    op.create_table(
        "messages",
        sa.Column("pk", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("parts", JSON, server_default="[]", nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("finish_reason", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("usage", JSON, nullable=True),
        sa.Column("cost_nanos", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("metadata", JSON, server_default="{}", nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint("role IN ('system', 'user', 'assistant', 'tool')", name="messages_role"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("session_id", "seq", name="messages_session_seq"),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("blob_sha256", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_sha256"],
            ["blobs.sha256"],
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("attachments_by_blob", "attachments", ["blob_sha256"], unique=False)
    op.create_index("attachments_by_message", "attachments", ["message_id"], unique=False)
    op.create_index("attachments_by_session", "attachments", ["session_id"], unique=False)
    op.create_table(
        "file_versions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("blob_sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_sha256"],
            ["blobs.sha256"],
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "path", "version", name="file_versions_path_version"),
    )
    op.create_index("file_versions_by_blob", "file_versions", ["blob_sha256"], unique=False)
    op.create_index("file_versions_by_message", "file_versions", ["message_id"], unique=False)
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("input", JSON, server_default="{}", nullable=False),
        sa.Column("output", JSON, nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_message_id", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')",
            name="tool_calls_status",
        ),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("tool_calls_by_message", "tool_calls", ["message_id"], unique=False)
    op.create_index("tool_calls_by_name", "tool_calls", ["name", "status"], unique=False)
    op.create_index("tool_calls_by_session", "tool_calls", ["session_id", "call_id"], unique=False)

    # Search, outside the declared schema because it differs per dialect.
    if op.get_bind().dialect.name == "sqlite":
        # External-content FTS5 over messages.content, fed in batches from a high-water
        # mark (search_state) rather than by triggers: triggers made a single-commit
        # append 4.7x slower on this machine kind (see docs/architecture.md).
        op.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', "
            "content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', content)) STORED"
        )
        op.execute("CREATE INDEX messages_search ON messages USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE messages_fts")
    op.drop_table("tool_calls")
    op.drop_table("file_versions")
    op.drop_table("attachments")
    op.drop_table("messages")
    op.drop_table("sessions")
    op.drop_table("search_state")
    op.drop_table("blobs")

"""Create the checkpoints concern: checkpoints and their pending writes.

For agent-framework checkpointers (LangGraph's ``AgentkeepSaver``): one row per checkpoint
(the framework's serialized state as bytes, its metadata as JSON for filtering) and one
per pending write. Ids use the "C" collation on PostgreSQL so that they sort the way the
framework compares them.

Revision ID: checkpoints_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "checkpoints_0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types at this revision (never import live table code here).
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSON(), "postgresql")
KEY = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("thread_id", KEY, nullable=False),
        sa.Column("checkpoint_ns", KEY, server_default="", nullable=False),
        sa.Column("checkpoint_id", KEY, nullable=False),
        sa.Column("parent_checkpoint_id", KEY, nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        sa.Column("metadata", JSON, server_default="{}", nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "checkpoint_ns", "checkpoint_id"),
    )
    op.create_index("checkpoints_by_run", "checkpoints", ["run_id"], unique=False)
    op.create_index("checkpoints_by_time", "checkpoints", ["created_at"], unique=False)
    op.create_table(
        "checkpoint_writes",
        sa.Column("thread_id", KEY, nullable=False),
        sa.Column("checkpoint_ns", KEY, server_default="", nullable=False),
        sa.Column("checkpoint_id", KEY, nullable=False),
        sa.Column("task_id", KEY, nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("task_path", KEY, server_default="", nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"),
    )


def downgrade() -> None:
    op.drop_table("checkpoint_writes")
    op.drop_index("checkpoints_by_time", table_name="checkpoints")
    op.drop_index("checkpoints_by_run", table_name="checkpoints")
    op.drop_table("checkpoints")

"""The checkpoints concern's schema, declared for migrations and drift checks.

Not imported at run time: the store uses the SQL in ``sql.py``.

There is no foreign key from ``checkpoint_writes`` to ``checkpoints``: LangGraph stores a
task's writes from a background thread and may do so before the checkpoint they belong
to is committed (durability "async" and "exit"), so a write may briefly precede its
checkpoint. Deleting a checkpoint deletes its writes in the same transaction instead.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, Table, Text
from sqlalchemy.dialects import postgresql

from ..schema_types import Json, Time

metadata = MetaData()

# Ids compare and sort by code point on both backends (PostgreSQL's "C" collation, SQLite's
# BINARY): LangGraph orders checkpoints by id ("newest first", ``before``) and writes by
# (task_path, task_id, idx) the way Python compares strings, not the way a locale does.
Key = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

checkpoints = Table(
    "checkpoints", metadata,
    Column("thread_id", Key, primary_key=True),
    Column("checkpoint_ns", Key, primary_key=True, server_default=""),
    Column("checkpoint_id", Key, primary_key=True),
    Column("parent_checkpoint_id", Key),
    Column("run_id", Text),
    Column("type", Text, nullable=False),
    Column("checkpoint", LargeBinary, nullable=False),
    Column("metadata", Json, nullable=False, server_default="{}"),
    Column("created_at", Time, nullable=False),
    Index("checkpoints_by_run", "run_id"),
    Index("checkpoints_by_time", "created_at"),
)

checkpoint_writes = Table(
    "checkpoint_writes", metadata,
    Column("thread_id", Key, primary_key=True),
    Column("checkpoint_ns", Key, primary_key=True, server_default=""),
    Column("checkpoint_id", Key, primary_key=True),
    Column("task_id", Key, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("task_path", Key, nullable=False, server_default=""),
)

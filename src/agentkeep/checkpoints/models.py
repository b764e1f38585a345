"""What the checkpoints concern returns."""

from __future__ import annotations

from ..records import Record, column, json_column, time_column


class CheckpointWrite(Record):
    """A pending write of a task against a checkpoint: ``value`` is the framework's
    serialized bytes, ``type`` names their encoding."""

    __slots__ = ()
    _fields = ("task_id", "idx", "channel", "type", "value", "task_path")
    task_id = column(0)
    idx = column(1)
    channel = column(2)
    type = column(3)
    value = column(4)
    task_path = column(5)


class StoredCheckpoint(Record):
    """One checkpoint of a thread and namespace, with its pending writes.

    ``data`` is the framework's serialized checkpoint and ``type`` its encoding;
    ``metadata`` is JSON; ``writes`` are ordered by (task_path, task_id, idx).
    """

    __slots__ = ()
    _fields = ("thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id",
               "run_id", "type", "data", "metadata", "created_at", "writes")
    thread_id = column(0)
    checkpoint_ns = column(1)
    checkpoint_id = column(2)
    parent_checkpoint_id = column(3)
    run_id = column(4)
    type = column(5)
    data = column(6)
    metadata = json_column(7)
    created_at = time_column(8)
    writes = column(9, "tuple of :class:`CheckpointWrite`")

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._row[0], self._row[1], self._row[2]))


class CheckpointThread(Record):
    """A thread that has checkpoints: how many, in how many namespaces, and when."""

    __slots__ = ()
    _fields = ("thread_id", "checkpoints", "namespaces", "first_at", "last_at")
    thread_id = column(0)
    checkpoints = column(1)
    namespaces = column(2)
    first_at = time_column(3, "when its oldest remaining checkpoint was stored")
    last_at = time_column(4, "when its newest checkpoint was stored (its last activity)")


class CheckpointPruneResult(Record):
    """What :meth:`CheckpointStore.prune` deleted (or would delete, in a dry run)."""

    __slots__ = ()
    _fields = ("checkpoints", "writes", "threads", "dry_run")
    checkpoints = column(0)
    writes = column(1)
    threads = column(2, "threads that lost at least one checkpoint")
    dry_run = column(3)

"""LangGraph checkpointer on agentkeep: :class:`AgentkeepSaver` (``pip install
'agentkeep[langgraph]'``).

>>> from agentkeep.integrations.langgraph import AgentkeepSaver
>>> graph = builder.compile(checkpointer=AgentkeepSaver())   # the home store
>>> graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})

Checkpoints live in the store's ``checkpoints`` concern (``store.checkpoints``), on SQLite
or PostgreSQL alike: one row per checkpoint holding the serializer's bytes (channel
values included, as LangGraph's SQLite saver stores them) and its metadata as JSON, one
row per pending write. The sync methods use the store directly; the async ones run the
same calls in worker threads (``AsyncStore``), so the event loop never waits on the
database. Beyond LangGraph's interface the saver offers retention (:meth:`retain`) and
:meth:`threads`, which are also ``store.checkpoints.prune`` and ``.threads``.

Thread ids are strings; an int or UUID thread id is stored as its text, as LangGraph's
own SQLite and PostgreSQL savers do. A bad argument (an empty thread id, a config without
``configurable``, a negative ``limit``, metadata JSON cannot hold) raises
:class:`agentkeep.InvalidInput` (a ``ValueError``) and writes nothing.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..aio import AsyncStore
from ..checkpoints.models import CheckpointPruneResult, CheckpointThread, StoredCheckpoint
from ..codec import check_id
from ..errors import InvalidInput
from ..store import Store
from ..store import open as open_store

__all__ = ["AgentkeepSaver"]

STRATEGIES = ("keep_latest", "delete")


# --- reading LangGraph's configs -------------------------------------------------------------

def _text_id(field: str, value: object) -> str:
    """A thread or run id as text: a string, or an int or UUID (stored as its text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        raise InvalidInput(field, f"must be a non-empty string, got {type(value).__name__}")
    return check_id(field, str(value))  # type: ignore[return-value]


def _configurable(config: object, field: str = "config") -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise InvalidInput(field, f"must be a RunnableConfig dict, got {type(config).__name__}")
    configurable = config.get("configurable")
    if not isinstance(configurable, Mapping):
        raise InvalidInput(field, "has no 'configurable' dict; pass "
                                  "{'configurable': {'thread_id': ...}}")
    return configurable


def _where(config: object) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id or None) of a config naming a thread."""
    configurable = _configurable(config)
    if "thread_id" not in configurable:
        raise InvalidInput("thread_id", "config['configurable'] has no thread_id; pass "
                                        "{'configurable': {'thread_id': ...}}")
    thread_id = _text_id("thread_id", configurable["thread_id"])
    return thread_id, _namespace(configurable), _checkpoint_id(configurable)


def _namespace(configurable: Mapping[str, Any]) -> str:
    namespace = configurable.get("checkpoint_ns", "")
    if namespace is None:
        return ""
    if not isinstance(namespace, str):
        raise InvalidInput("checkpoint_ns", f"must be a string, got {type(namespace).__name__}")
    return namespace


def _checkpoint_id(configurable: Mapping[str, Any]) -> str | None:
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is None or checkpoint_id == "":
        return None
    if not isinstance(checkpoint_id, str):
        raise InvalidInput("checkpoint_id", f"must be a string, got "
                                            f"{type(checkpoint_id).__name__}")
    return checkpoint_id


def _config(thread_id: Any, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace,
                             "checkpoint_id": checkpoint_id}}


def _resolve(store: Any, path_or_url: Any, options: dict[str, Any]) -> tuple[Store, bool]:
    """(the sync store, whether the saver opened it and so closes it)."""
    if store is not None:
        if path_or_url is not None or options:
            raise InvalidInput("store", "give an open store or where to open one, not both")
        sync = store.sync if isinstance(store, AsyncStore) else store
        if not isinstance(sync, Store):
            raise InvalidInput("store", f"must be an agentkeep Store or AsyncStore, got "
                                        f"{type(store).__name__}")
        return sync, False
    if path_or_url is not None and not isinstance(path_or_url, (str, os.PathLike)):
        raise InvalidInput("path_or_url", "must be a directory path or a postgresql:// URL")
    return open_store(path_or_url, **options), True


class AgentkeepSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that keeps checkpoints in an agentkeep store.

    Args:
        store: an open :class:`agentkeep.Store` or :class:`agentkeep.AsyncStore` (the
            caller closes it), or None to open ``path_or_url``.
        path_or_url: a store directory or ``postgresql://`` URL to open (default: the home
            store); the saver closes what it opened in :meth:`close`.
        serde: LangGraph's serializer (default: its ``JsonPlusSerializer``).
        **options: options of :func:`agentkeep.open` when the saver opens the store.
    """

    def __init__(self, store: Any = None, *, path_or_url: Any = None,
                 serde: SerializerProtocol | None = None, **options: Any) -> None:
        super().__init__(serde=serde)
        self.store, self._owns_store = _resolve(store, path_or_url, options)
        self._checkpoints = self.store.checkpoints
        async_store = store if isinstance(store, AsyncStore) else AsyncStore(self.store)
        self._async_checkpoints = async_store.checkpoints

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if the saver opened it (an open store given to it stays open)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> AgentkeepSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> AgentkeepSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # --- encoding (shared by the sync and async methods) -------------------------------------
    def _put_args(self, config: RunnableConfig, checkpoint: Checkpoint,
                  metadata: CheckpointMetadata) -> tuple[dict[str, Any], RunnableConfig]:
        thread_id, namespace, parent_id = _where(config)
        if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("id"), str):
            raise InvalidInput("checkpoint", "must be a LangGraph Checkpoint with a string 'id'")
        if not isinstance(metadata, Mapping):
            raise InvalidInput("metadata", f"must be a dict, got {type(metadata).__name__}")
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        run_id = stored_metadata.get("run_id")
        kind, data = self.serde.dumps_typed(checkpoint)
        arguments = dict(thread_id=thread_id, checkpoint_id=checkpoint["id"], type=kind,
                         data=data, checkpoint_ns=namespace, parent_checkpoint_id=parent_id,
                         metadata=stored_metadata,
                         run_id=None if run_id is None else _text_id("run_id", run_id))
        returned = _config(config["configurable"]["thread_id"], namespace, checkpoint["id"])
        return arguments, returned

    def _writes_args(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                     task_id: str, task_path: str) -> dict[str, Any]:
        thread_id, namespace, checkpoint_id = _where(config)
        if checkpoint_id is None:
            raise InvalidInput("checkpoint_id", "put_writes needs "
                                                "config['configurable']['checkpoint_id']")
        if isinstance(writes, (str, bytes, Mapping)):
            raise InvalidInput("writes", "must be a sequence of (channel, value) pairs")
        rows = []
        for position, write in enumerate(writes):
            if not isinstance(write, (tuple, list)) or len(write) != 2:
                raise InvalidInput(f"writes[{position}]", f"must be a (channel, value) pair, "
                                                          f"got {write!r:.60}")
            channel, value = write
            kind, data = self.serde.dumps_typed(value)
            rows.append((WRITES_IDX_MAP.get(channel, position), channel, kind, data))
        return dict(thread_id=thread_id, checkpoint_id=checkpoint_id, task_id=task_id,
                    writes=rows, checkpoint_ns=namespace, task_path=task_path)

    def _tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        thread_id, namespace = stored.thread_id, stored.checkpoint_ns
        parent = stored.parent_checkpoint_id
        return CheckpointTuple(
            config=_config(thread_id, namespace, stored.checkpoint_id),
            checkpoint=self.serde.loads_typed((stored.type, stored.data)),
            metadata=stored.metadata,
            parent_config=_config(thread_id, namespace, parent) if parent else None,
            pending_writes=[(write.task_id, write.channel,
                             self.serde.loads_typed((write.type, write.value)))
                            for write in stored.writes],
        )

    @staticmethod
    def _list_args(config: RunnableConfig | None, filter: dict[str, Any] | None,  # noqa: A002
                   before: RunnableConfig | None, limit: int | None) -> dict[str, Any]:
        thread_id = namespace = checkpoint_id = None
        if config is not None:
            configurable = _configurable(config)
            if configurable.get("thread_id") is not None:
                thread_id = _text_id("thread_id", configurable["thread_id"])
            if "checkpoint_ns" in configurable:
                namespace = _namespace(configurable)
            checkpoint_id = _checkpoint_id(configurable)
        before_id = None if before is None else _checkpoint_id(_configurable(before, "before"))
        return dict(thread_id=thread_id, checkpoint_ns=namespace, checkpoint_id=checkpoint_id,
                    before=before_id, metadata=filter, limit=limit)

    @staticmethod
    def _run_ids(run_ids: Sequence[str]) -> list[str]:
        if isinstance(run_ids, (str, bytes)):
            raise InvalidInput("run_ids", "must be a list of run ids, not one string")
        return [_text_id(f"run_ids[{i}]", run_id) for i, run_id in enumerate(run_ids)]

    @staticmethod
    def _prune_args(thread_ids: Sequence[str], strategy: str) -> list[str]:
        if strategy not in STRATEGIES:
            raise InvalidInput("strategy", f"must be one of {', '.join(STRATEGIES)}; "
                                           f"got {strategy!r:.60}")
        if isinstance(thread_ids, (str, bytes)):
            raise InvalidInput("thread_ids", "must be a list of thread ids, not one string")
        return [_text_id(f"thread_ids[{i}]", t) for i, t in enumerate(thread_ids)]

    # --- sync ----------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint the config names, or the thread's newest (read-only)."""
        thread_id, namespace, checkpoint_id = _where(config)
        stored = self._checkpoints.get(thread_id, checkpoint_ns=namespace,
                                       checkpoint_id=checkpoint_id)
        return None if stored is None else self._tuple(stored)

    def list(self, config: RunnableConfig | None, *,  # noqa: A003
             filter: dict[str, Any] | None = None, before: RunnableConfig | None = None,
             limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of the config's thread (and namespace, if given), or
        of every thread; ``filter`` matches metadata keys (read-only)."""
        arguments = self._list_args(config, filter, before, limit)
        for stored in self._checkpoints.list(**arguments):
            yield self._tuple(stored)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint,
            metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint (commits); the config that names it."""
        arguments, returned = self._put_args(config, checkpoint, metadata)
        self._checkpoints.put(**arguments)
        return returned

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        """Store a task's writes against the config's checkpoint, all or none (commits)."""
        self._checkpoints.put_writes(**self._writes_args(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of the thread (commits)."""
        self._checkpoints.delete_thread(_text_id("thread_id", thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) these runs made (commits)."""
        self._checkpoints.delete_runs(self._run_ids(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints and writes to a new thread id (commits).

        Raises:
            agentkeep.Conflict: the target thread already has checkpoints.
        """
        self._checkpoints.copy_thread(_text_id("source_thread_id", source_thread_id),
                                      _text_id("target_thread_id", target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint of each namespace of these threads
        (``keep_latest``) or delete the threads (``delete``) (commits)."""
        threads = self._prune_args(thread_ids, strategy)
        if strategy == "keep_latest":
            self._checkpoints.prune(keep_last=1, thread_ids=threads)
            return
        with self._checkpoints.transaction():
            for thread_id in threads:
                self._checkpoints.delete_thread(thread_id)

    def retain(self, *, keep_last: int | None = None, older_than: timedelta | str | None = None,
               thread_ids: Sequence[str] | None = None,
               dry_run: bool = False) -> CheckpointPruneResult:
        """Retention over every thread (or some): keep the ``keep_last`` newest checkpoints
        of each thread and namespace, delete the others older than ``older_than`` (all of
        them without it). See :meth:`agentkeep.checkpoints.store.CheckpointStore.prune`."""
        return self._checkpoints.prune(keep_last=keep_last, older_than=older_than,
                                       thread_ids=thread_ids, dry_run=dry_run)

    def threads(self, *, limit: int | None = None) -> list[CheckpointThread]:
        """Threads with checkpoints, most recently active first (read-only)."""
        return self._checkpoints.threads(limit=limit)

    # --- async: the same calls, the database work in worker threads ---------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, namespace, checkpoint_id = _where(config)
        stored = await self._async_checkpoints.get(thread_id, checkpoint_ns=namespace,
                                                   checkpoint_id=checkpoint_id)
        return None if stored is None else self._tuple(stored)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None, before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        arguments = self._list_args(config, filter, before, limit)
        async for stored in self._async_checkpoints.list(**arguments):
            yield self._tuple(stored)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions) -> RunnableConfig:
        arguments, returned = self._put_args(config, checkpoint, metadata)
        await self._async_checkpoints.put(**arguments)
        return returned

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await self._async_checkpoints.put_writes(
            **self._writes_args(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._async_checkpoints.delete_thread(_text_id("thread_id", thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._async_checkpoints.delete_runs(self._run_ids(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._async_checkpoints.copy_thread(
            _text_id("source_thread_id", source_thread_id),
            _text_id("target_thread_id", target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        threads = self._prune_args(thread_ids, strategy)
        if strategy == "keep_latest":
            await self._async_checkpoints.prune(keep_last=1, thread_ids=threads)
            return
        async with self._async_checkpoints.transaction():
            for thread_id in threads:
                await self._async_checkpoints.delete_thread(thread_id)

    async def aretain(self, *, keep_last: int | None = None,
                      older_than: timedelta | str | None = None,
                      thread_ids: Sequence[str] | None = None,
                      dry_run: bool = False) -> CheckpointPruneResult:
        return await self._async_checkpoints.prune(keep_last=keep_last, older_than=older_than,
                                                   thread_ids=thread_ids, dry_run=dry_run)

    async def athreads(self, *, limit: int | None = None) -> list[CheckpointThread]:
        return await self._async_checkpoints.threads(limit=limit)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Versions as LangGraph's own savers make them: a zero-padded counter and a random
        fraction, so that they compare as strings."""
        if current is None:
            current_version = 0
        elif isinstance(current, int):
            current_version = current
        else:
            current_version = int(current.split(".")[0])
        return f"{current_version + 1:032}.{random.random():016}"

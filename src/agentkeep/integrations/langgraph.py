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

The conversation is also kept as an agentkeep chat session (the *chat view*): when a root
checkpoint (namespace ``""``) holds a ``messages`` channel of LangChain messages (the
``MessagesState`` convention; ``messages_channel=`` names another, ``None`` turns the view
off), the messages not yet mirrored are appended to the chat session whose id is the
thread id, mapped as :class:`~agentkeep.integrations.langchain.AgentkeepChatMessageHistory`
maps them, so ``store.chat.history(thread_id)``, search and ``agentkeep sessions show``
see the graph's conversation. Each mirrored message keeps its LangChain id in its metadata
(``langgraph_message_id``); a checkpoint whose list is the same as, or a prefix of, what
is mirrored changes nothing, and one that diverges (time travel, ``RemoveMessage``) adds
a branch at the common prefix and makes it the active one. The checkpoint is the source
of truth: a failed view write is logged (logger ``agentkeep.integrations.langgraph``) and
caught up by the next put of the thread, or by :meth:`AgentkeepSaver.mirror_chat`.

Thread ids are strings; an int or UUID thread id is stored as its text, as LangGraph's
own SQLite and PostgreSQL savers do. A bad argument (an empty thread id, a config without
``configurable``, a negative ``limit``, metadata JSON cannot hold) raises
:class:`agentkeep.InvalidInput` (a ``ValueError``) and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from langchain_core.messages import BaseMessage, message_to_dict
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

from ..aio import AsyncStore, _call
from ..chat import sql as chat_sql
from ..chat import store as chat_store
from ..checkpoints.models import CheckpointPruneResult, CheckpointThread, StoredCheckpoint
from ..codec import check_id
from ..errors import Conflict, InvalidInput, NotFound
from ..store import Store
from ._support import clean_id, resolve_store, title_of
from .langchain import _message_of

__all__ = ["AgentkeepSaver"]

STRATEGIES = ("keep_latest", "delete")
logger = logging.getLogger(__name__)


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


class AgentkeepSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that keeps checkpoints in an agentkeep store.

    Args:
        store: an open :class:`agentkeep.Store` or :class:`agentkeep.AsyncStore` (the
            caller closes it), or None to open ``path_or_url``.
        path_or_url: a store directory or ``postgresql://`` URL to open (default: the home
            store); the saver closes what it opened in :meth:`close`.
        serde: LangGraph's serializer (default: its ``JsonPlusSerializer``).
        messages_channel: the channel of root checkpoints mirrored to the thread's chat
            session (the chat view); None turns the view off.
        **options: options of :func:`agentkeep.open` when the saver opens the store.

    Raises:
        InvalidInput: both a store and where to open one, or a bad ``messages_channel``.
    """

    def __init__(self, store: Any = None, *, path_or_url: Any = None,
                 serde: SerializerProtocol | None = None,
                 messages_channel: str | None = "messages", **options: Any) -> None:
        if messages_channel is not None and (not isinstance(messages_channel, str)
                                             or not messages_channel):
            raise InvalidInput("messages_channel", "must be a channel name or None")
        super().__init__(serde=serde)
        self.store, self._owns_store = resolve_store(store, path_or_url, options)
        self.messages_channel = messages_channel
        self._view = None if messages_channel is None else _ChatView(self.store,
                                                                     messages_channel)
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
        if isinstance(writes, (str, bytes, Mapping)) or not isinstance(writes, Iterable):
            raise InvalidInput("writes", "must be a sequence of (channel, value) pairs, got "
                                         f"{type(writes).__name__}")
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
        self._mirror_logged(arguments, checkpoint)
        return returned

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        """Store a task's writes against the config's checkpoint, all or none (commits)."""
        self._checkpoints.put_writes(**self._writes_args(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of the thread, and its chat view (commits)."""
        thread_id = _text_id("thread_id", thread_id)
        self._checkpoints.delete_thread(thread_id)
        _purge_view(self.store, thread_id, self._view)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) these runs made (commits)."""
        self._checkpoints.delete_runs(self._run_ids(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints and writes to a new thread id (commits).

        The target's chat view is built from its newest root checkpoint (the active
        conversation; earlier branches of the source's view are not copied).

        Raises:
            agentkeep.Conflict: the target thread already has checkpoints.
        """
        target = _text_id("target_thread_id", target_thread_id)
        self._checkpoints.copy_thread(_text_id("source_thread_id", source_thread_id), target)
        self._rebuild_logged(target)

    def mirror_chat(self, thread_id: str) -> int:
        """Bring the thread's chat view up to date with its newest root checkpoint
        (commits): for threads stored before the view existed, or after a failed view
        write. Returns how many messages it appended.

        Raises:
            InvalidInput: the view is off (``messages_channel=None``), or a message in the
                channel is not a LangChain message.
            agentkeep.Conflict: the chat session was deleted in agentkeep (restore it).
        """
        thread_id = _text_id("thread_id", thread_id)
        if self._view is None:
            raise InvalidInput("messages_channel", "the chat view is off for this saver")
        stored = self._checkpoints.get(thread_id, checkpoint_ns="")
        if stored is None:
            return 0
        return self._view.mirror(thread_id, self.serde.loads_typed((stored.type, stored.data)),
                                 strict=True)

    # --- the chat view -------------------------------------------------------------------
    def _mirror_logged(self, arguments: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Mirror a stored checkpoint's messages; a failure is logged, never raised (the
        checkpoint is stored, and the next put of the thread catches the view up)."""
        if self._view is None or arguments["checkpoint_ns"] != "":
            return
        thread_id = arguments["thread_id"]
        try:
            self._view.mirror(thread_id, checkpoint)
        except Exception:  # noqa: BLE001 - the view is derived; the checkpoint is stored
            self._view.forget(thread_id)
            logger.warning("agentkeep: the chat view of LangGraph thread %r was not updated "
                           "(the checkpoint is stored; the next put retries)", thread_id,
                           exc_info=True)

    def _rebuild_logged(self, thread_id: str) -> None:
        if self._view is None:
            return
        stored = self._checkpoints.get(thread_id, checkpoint_ns="")
        if stored is not None:
            self._mirror_logged({"thread_id": thread_id, "checkpoint_ns": ""},
                                self.serde.loads_typed((stored.type, stored.data)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint of each namespace of these threads
        (``keep_latest``) or delete the threads (``delete``) (commits)."""
        threads = self._prune_args(thread_ids, strategy)
        if strategy == "keep_latest":
            self._checkpoints.prune(keep_last=1, thread_ids=threads)
            return
        self._delete_threads(threads)

    def _delete_threads(self, threads: Sequence[str]) -> None:
        """Delete the threads' checkpoints in one transaction, then their chat views. One
        call: it holds the connection throughout (calls of tasks sharing a caller's
        transaction take turns; a block of its own would refuse theirs)."""
        with self.store._backend.write("checkpoints"):
            for thread_id in threads:
                self._checkpoints.delete_thread(thread_id)
        for thread_id in threads:
            _purge_view(self.store, thread_id, self._view)

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
        if self._view is not None and arguments["checkpoint_ns"] == "":
            await _call(self._mirror_logged, arguments, checkpoint)
        return returned

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await self._async_checkpoints.put_writes(
            **self._writes_args(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        thread_id = _text_id("thread_id", thread_id)
        await self._async_checkpoints.delete_thread(thread_id)
        await _call(_purge_view, self.store, thread_id, self._view)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._async_checkpoints.delete_runs(self._run_ids(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        target = _text_id("target_thread_id", target_thread_id)
        await self._async_checkpoints.copy_thread(
            _text_id("source_thread_id", source_thread_id), target)
        await _call(self._rebuild_logged, target)

    async def amirror_chat(self, thread_id: str) -> int:
        """Async :meth:`mirror_chat`."""
        return await _call(self.mirror_chat, thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        threads = self._prune_args(thread_ids, strategy)
        if strategy == "keep_latest":
            await self._async_checkpoints.prune(keep_last=1, thread_ids=threads)
            return
        await _call(self._delete_threads, threads)

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


# --- the chat view: a root checkpoint's messages as an agentkeep chat session ----------------

#: Every mirrored message's metadata starts with its key, so reading the keys back needs no
#: decoding of the exact copy that follows (``_support.ExactCopy``; it ignores this key).
_KEY_HEAD = '{"langgraph_message_id":'
_raw_decode = json.JSONDecoder().raw_decode
#: Threads whose mirrored branch a saver remembers (a put reads only the session's head).
_REMEMBERED_THREADS = 1024


def _key_of_message(message: BaseMessage) -> str:
    """What a mirrored message is known by: its LangChain id, or (rare: LangGraph's
    ``add_messages`` gives every message one) a hash of the message."""
    if clean_id(message.id) is not None:
        return message.id  # type: ignore[return-value]
    dumped = json.dumps(message_to_dict(message), sort_keys=True, default=repr)
    return "sha256:" + hashlib.sha256(dumped.encode("utf-8", "surrogatepass")).hexdigest()


def _key_of_row(metadata: str | None) -> str | None:
    """The key of a stored message, or None for one the view did not write."""
    if metadata and metadata.startswith(_KEY_HEAD):
        try:
            key = _raw_decode(metadata, len(_KEY_HEAD))[0]
        except ValueError:
            return None
        return key if isinstance(key, str) else None
    return None


def _common_prefix(first: Sequence[Any], second: Sequence[Any]) -> int:
    length = min(len(first), len(second))
    if first[:length] == second[:length]:  # the usual case, compared at C speed
        return length
    return next(i for i in range(length) if first[i] != second[i])


def _purge_view(store: Store, thread_id: str, view: _ChatView | None) -> None:
    """Purge the thread's chat session if the view made it (commits)."""
    if view is not None:
        view.forget(thread_id)
    chat = store.chat
    with store._backend.write("chat"):  # one call (see AgentkeepSaver._delete_threads)
        try:
            session = chat.get_session(thread_id, include_deleted=True)
        except NotFound:
            return
        if isinstance(session.metadata, dict) and \
                session.metadata.get("framework") == "langgraph":
            chat.purge_session(thread_id)


class _ChatView:
    """Mirrors root checkpoints' messages into the chat session named by the thread id."""

    def __init__(self, store: Store, channel: str) -> None:
        self.chat = store.chat
        self.channel = channel
        # thread id -> (head id, message ids, keys) of the session's active branch, valid
        # while the session's head is that id (checked by one read per put).
        self._known: dict[str, tuple[str | None, list[str], list[str | None]]] = {}

    def forget(self, thread_id: str) -> None:
        self._known.pop(thread_id, None)

    def _messages(self, checkpoint: Any) -> list[BaseMessage] | None:
        values = checkpoint.get("channel_values") if isinstance(checkpoint, Mapping) else None
        messages = values.get(self.channel) if isinstance(values, Mapping) else None
        if not isinstance(messages, (list, tuple)):
            return None  # no such channel in this graph's state: nothing to mirror
        for index, message in enumerate(messages):
            if not isinstance(message, BaseMessage):
                raise InvalidInput(f"channel_values[{self.channel!r}][{index}]",
                                   f"must be a LangChain message, got "
                                   f"{type(message).__name__}; pass messages_channel=None "
                                   f"to turn the chat view off")
        return list(messages)

    def mirror(self, thread_id: str, checkpoint: Any, *, strict: bool = False) -> int:
        """Append the checkpoint's messages not yet mirrored (commits); how many.

        A session deleted in agentkeep is left alone (``strict``: Conflict).
        """
        messages = self._messages(checkpoint)
        if not messages:
            return 0
        keys = [_key_of_message(message) for message in messages]
        # The cheap path, every put: one read of the session row, nothing new to write.
        try:
            session = self.chat.get_session(thread_id, include_deleted=True)
        except NotFound:
            session = None
        if session is not None:
            if session.status == "deleted":
                return self._deleted(thread_id, strict)
            known = self._known.get(thread_id)
            if known is not None and known[0] == session.head_id and \
                    _common_prefix(known[2], keys) == len(keys):
                return 0
        try:
            return self._write(thread_id, messages, keys, strict)
        except Conflict:
            if session is not None:
                raise
            # PostgreSQL: another process created the session first (its unique key
            # said so and rolled this transaction back): mirror against its session.
            return self._write(thread_id, messages, keys, strict)

    def _write(self, thread_id: str, messages: list[BaseMessage], keys: list[str],
               strict: bool) -> int:
        chat = self.chat
        with chat._write() as conn:
            # Under the session row's lock (PostgreSQL; SQLite's BEGIN IMMEDIATE holds the
            # file's) the head is current: other writers of the thread wait here.
            row = conn.one(chat_sql.SESSION_FOR_APPEND[chat._dialect], (thread_id,))
            if row is not None and row[0] == "deleted":
                return self._deleted(thread_id, strict)
            head_id = None if row is None else row[1]
            known = self._known.get(thread_id)
            if known is None or known[0] != head_id:
                known = (head_id, [], []) if head_id is None else self._load(thread_id, head_id)
            _, ids, mirrored = known
            start = _common_prefix(mirrored, keys)
            if start == len(keys):
                self._remember(thread_id, known)
                return 0
            prepared = []
            for index in range(start, len(messages)):
                fields = _message_of(messages[index], f"{self.channel}[{index}]")
                fields["metadata_json"] = (f"{_KEY_HEAD}{json.dumps(keys[index])},"
                                           f"{fields['metadata_json'][1:]}")
                prepared.append(fields)
            if row is None:
                values = chat._session_fields(
                    title=title_of(prepared), provider=None, model=None, system_prompt=None,
                    generation=None, metadata={"framework": "langgraph"})
                chat._insert_session(conn, values, None, None, thread_id)
            # Diverged (time travel, RemoveMessage): a branch from the common prefix.
            parent = (chat_store._HEAD if start == len(mirrored)
                      else ids[start - 1] if start else None)
            written = chat._append_rows(conn, thread_id, prepared, parent)
        new_ids = ids[:start] + [message.id for message in written]
        self._remember(thread_id, (new_ids[-1], new_ids, keys))
        return len(written)

    def _load(self, thread_id: str, head_id: str) -> tuple[str, list[str], list[str | None]]:
        """The active branch's ids and keys (inside the write transaction)."""
        history = self.chat.history(thread_id)
        return (head_id, [message.id for message in history],
                [_key_of_row(message._metadata_text) for message in history])

    def _remember(self, thread_id: str, known: tuple[Any, list[str], list[Any]]) -> None:
        self._known.pop(thread_id, None)
        if len(self._known) >= _REMEMBERED_THREADS:
            self._known.pop(next(iter(self._known)))
        self._known[thread_id] = known

    def _deleted(self, thread_id: str, strict: bool) -> int:
        self.forget(thread_id)
        if strict:
            raise Conflict(f"session {thread_id!r} was deleted in agentkeep; restore it "
                           "(agentkeep sessions restore) to mirror the thread again")
        return 0

"""The async API: ``AsyncStore`` and ``open_async``, imported only when used.

One body of logic: every async method runs its sync twin in a worker thread, with the
task's context copied, so the event loop never blocks and transactions opened by
``async with store.transaction()`` are seen by the calls inside them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from contextlib import asynccontextmanager
from typing import Any

from .app.store import SettingsStore
from .chat.store import ChatStore
from .checkpoints.store import CheckpointStore
from .concerns import CONCERNS
from .config import resolve
from .errors import InvalidInput
from .store import Store


async def _to_completion(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, bool]:
    """Run ``function`` in a worker thread and wait for it even if this task is cancelled.

    Returns ``(result, cancelled)``. A cancelled await cannot stop the thread, which would
    go on using a connection its caller has already handed back (half a batch committed,
    a write lock never released); so the task waits for the thread, then the caller
    re-raises the cancellation once the store is consistent.
    """
    future = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
    cancelled = False
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            cancelled = True


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    result, cancelled = await _to_completion(function, *args, **kwargs)
    if cancelled:
        raise asyncio.CancelledError
    return result


def _async_method(name: str, sync_function: Any) -> Any:
    @functools.wraps(sync_function)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await _call(getattr(self._sync, name), *args, **kwargs)

    return method


def _async_generator(name: str, sync_function: Any) -> Any:
    # A sync generator would load its pages on the event loop: fetch each item in a thread.
    @functools.wraps(sync_function)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        iterator = await _call(getattr(self._sync, name), *args, **kwargs)
        done = object()
        while (item := await _call(next, iterator, done)) is not done:
            yield item

    return method


def _async_twin(sync_class: type) -> type:
    namespace: dict[str, Any] = {"__doc__": f"Async twin of {sync_class.__name__}."}
    members = {}
    for klass in reversed(sync_class.__mro__):  # the store is assembled from mixins
        members.update(vars(klass))
    for name, member in members.items():
        if name.startswith("_") or name == "transaction" or not inspect.isfunction(member):
            continue
        wrap = _async_generator if inspect.isgeneratorfunction(member) else _async_method
        namespace[name] = wrap(name, member)
    namespace["__init__"] = lambda self, sync, backend, concern: (
        setattr(self, "_sync", sync), setattr(self, "_backend", backend),
        setattr(self, "_concern", concern), None)[-1]
    namespace["transaction"] = lambda self: _async_transaction(self._backend, self._concern)
    return type(f"Async{sync_class.__name__}", (), namespace)


@asynccontextmanager
async def _async_transaction(backend: Any, concern: str):
    frame, cancelled = await _to_completion(backend.start, concern)
    if cancelled:  # the transaction began after all: end it before giving up
        await _to_completion(backend.finish, frame, False)
        raise asyncio.CancelledError
    token = backend.pin(frame)
    ok = False
    try:
        yield
        ok = True
    finally:
        backend.unpin(token)
        _, cancelled = await _to_completion(backend.finish, frame, ok)
        if cancelled:
            raise asyncio.CancelledError


AsyncChatStore = _async_twin(ChatStore)
AsyncSettingsStore = _async_twin(SettingsStore)
AsyncCheckpointStore = _async_twin(CheckpointStore)


class AsyncStore:
    """The async face of a :class:`Store`: the same methods, awaited."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.config = store.config
        backend = store._backend
        self.chat = AsyncChatStore(store.chat, backend, "chat")
        self.settings = AsyncSettingsStore(store.settings, backend, "app")
        self.checkpoints = AsyncCheckpointStore(store.checkpoints, backend, "checkpoints")

    @property
    def dialect(self) -> str:
        return self.sync.dialect

    @property
    def location(self) -> str:
        return self.sync.location

    def transaction(self, concern: str = "chat"):
        """``async with store.transaction(): ...`` — atomic, nested blocks are savepoints."""
        if concern not in CONCERNS:
            raise InvalidInput("concern", f"must be one of {', '.join(CONCERNS)}")
        return _async_transaction(self.sync._backend, concern)

    async def close(self) -> None:
        await _call(self.sync.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<agentkeep.AsyncStore {self.dialect} {self.location}>"


async def open_async(target: Any = None, *, migrate: bool = True, **options: Any) -> AsyncStore:
    """Like :func:`open`, for asyncio code: ``store = await agentkeep.open_async()``."""
    config = resolve(target, **options)
    store, cancelled = await _to_completion(Store, config, migrate=migrate)
    if cancelled:
        await _to_completion(store.close)
        raise asyncio.CancelledError
    return AsyncStore(store)

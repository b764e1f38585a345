"""The store objects: ``Store`` (sync) and ``AsyncStore`` (the same API, awaited)."""

from __future__ import annotations

import asyncio
import functools
import inspect
from contextlib import asynccontextmanager
from typing import Any

from .app.store import SettingsStore
from .backend import create_backend
from .chat.store import ChatStore
from .concerns import CONCERNS
from .config import StoreConfig, resolve
from .errors import InvalidInput
from .migrations import ensure_current


class Store:
    """An open agentkeep store. Safe to share between threads; close it when done.

    Attributes:
        chat: conversations (:class:`~agentkeep.chat.store.ChatStore`).
        settings: application settings (:class:`~agentkeep.app.store.SettingsStore`).
    """

    def __init__(self, config: StoreConfig, *, migrate: bool = True) -> None:
        self.config = config
        self._backend = create_backend(config, CONCERNS)
        try:
            ensure_current(self._backend, migrate=migrate)
        except BaseException:
            self._backend.close()
            raise
        self.chat = ChatStore(self._backend, config)
        self.settings = SettingsStore(self._backend)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.dialect

    @property
    def location(self) -> str:
        """The home directory or the URL (without password) the store lives in."""
        return self.config.describe()

    @property
    def is_closed(self) -> bool:
        return self._backend.closed

    def transaction(self, concern: str = "chat"):
        """Group calls on one concern atomically; nested blocks are savepoints.

        ``with store.transaction(): ...`` commits when the block ends and rolls back
        exactly the block when it raises.
        """
        if concern not in CONCERNS:
            raise InvalidInput("concern", f"must be one of {', '.join(CONCERNS)}")
        return self._backend.write(concern)

    def close(self) -> None:
        """Close every connection. Later calls raise StoreClosed. Idempotent."""
        self._backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<agentkeep.Store {self.dialect} {self.location}>"


def open(target: Any = None, *, migrate: bool = True, **options: Any) -> Store:  # noqa: A001
    """Open (creating and migrating if needed) the store at ``target``.

    Args:
        target: None for the home directory (``$AGENTKEEP_HOME`` or the platform's data
            dir), a directory path, or a ``postgresql://`` URL.
        migrate: upgrade an older schema on open; when False, raise SchemaOutOfDate.
        **options: ``schema_prefix``, ``busy_timeout`` (seconds), ``max_blob_size``
            (bytes), ``durability`` (``normal`` or ``full``), ``pool_size``.

    Raises:
        InvalidInput, StoreUnavailable, StoreCorrupt, SchemaOutOfDate, MigrationError.
    """
    return Store(resolve(target, **options), migrate=migrate)


# --- async ---------------------------------------------------------------------------------
# One body of logic: every async method runs its sync twin in a worker thread, with the
# task's context copied, so the event loop never blocks and transactions opened by
# `async with store.transaction()` are seen by the calls inside them.

def _async_method(name: str, sync_function: Any) -> Any:
    @functools.wraps(sync_function)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self._sync, name), *args, **kwargs)

    return method


def _async_twin(sync_class: type) -> type:
    namespace: dict[str, Any] = {"__doc__": f"Async twin of {sync_class.__name__}."}
    for name, member in vars(sync_class).items():
        if name.startswith("_") or name == "transaction" or not inspect.isfunction(member):
            continue
        namespace[name] = _async_method(name, member)
    namespace["__init__"] = lambda self, sync, backend, concern: (
        setattr(self, "_sync", sync), setattr(self, "_backend", backend),
        setattr(self, "_concern", concern), None)[-1]
    namespace["transaction"] = lambda self: _async_transaction(self._backend, self._concern)
    return type(f"Async{sync_class.__name__}", (), namespace)


@asynccontextmanager
async def _async_transaction(backend: Any, concern: str):
    frame = await asyncio.to_thread(backend.start, concern)
    token = backend.pin(frame)
    ok = False
    try:
        yield
        ok = True
    finally:
        backend.unpin(token)
        await asyncio.shield(asyncio.to_thread(backend.finish, frame, ok))


AsyncChatStore = _async_twin(ChatStore)
AsyncSettingsStore = _async_twin(SettingsStore)


class AsyncStore:
    """The async face of a :class:`Store`: the same methods, awaited."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.config = store.config
        backend = store._backend
        self.chat = AsyncChatStore(store.chat, backend, "chat")
        self.settings = AsyncSettingsStore(store.settings, backend, "app")

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
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<agentkeep.AsyncStore {self.dialect} {self.location}>"


async def open_async(target: Any = None, *, migrate: bool = True, **options: Any) -> AsyncStore:
    """Like :func:`open`, for asyncio code: ``store = await agentkeep.open_async()``."""
    config = resolve(target, **options)
    store = await asyncio.to_thread(Store, config, migrate=migrate)
    return AsyncStore(store)

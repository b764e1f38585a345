"""The store object: ``Store``. Its async face, ``AsyncStore``, is in ``aio.py``."""

from __future__ import annotations

from typing import Any

from .app.store import SettingsStore
from .backend import create_backend
from .chat.store import ChatStore
from .checkpoints.store import CheckpointStore
from .concerns import CONCERNS
from .config import StoreConfig, resolve
from .errors import InvalidInput
from .migrations import ensure_current


class Store:
    """An open agentkeep store. Safe to share between threads; close it when done.

    Attributes:
        chat: conversations (:class:`~agentkeep.chat.store.ChatStore`).
        settings: application settings (:class:`~agentkeep.app.store.SettingsStore`).
        checkpoints: agent-framework checkpoints
            (:class:`~agentkeep.checkpoints.store.CheckpointStore`).
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
        self.checkpoints = CheckpointStore(self._backend)

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
        return self._backend.transaction(concern)

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

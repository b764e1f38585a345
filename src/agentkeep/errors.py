"""The one error hierarchy of agentkeep.

Every exception agentkeep raises on purpose derives from :class:`AgentkeepError`;
driver exceptions (``sqlite3``, ``psycopg``) are translated at the backend boundary
and chained with ``raise ... from``, so callers never need to import a driver.

::

    AgentkeepError
    ├── InvalidInput (also ValueError)   the call's arguments are wrong; nothing changed
    ├── NotFound (also LookupError)      the id names nothing (or something deleted)
    ├── Conflict                         the write clashes with what is stored
    ├── StoreBusy                        the lock wait timed out; retry later
    ├── StoreClosed                      the store was closed
    ├── StoreUnavailable                 the store cannot be reached or created
    ├── StoreCorrupt                     the file or schema is not what agentkeep wrote
    ├── SchemaOutOfDate                  migrations are needed, or the store is newer
    └── MigrationError                   a migration failed; the store was rolled back
"""

from __future__ import annotations

__all__ = [
    "AgentkeepError",
    "Conflict",
    "InvalidInput",
    "MigrationError",
    "NotFound",
    "SchemaOutOfDate",
    "StoreBusy",
    "StoreClosed",
    "StoreCorrupt",
    "StoreUnavailable",
]


class AgentkeepError(Exception):
    """Base class of every error agentkeep raises."""

    __module__ = "agentkeep"


class InvalidInput(AgentkeepError, ValueError):
    """An argument is wrong; the message names the field and the problem."""

    __module__ = "agentkeep"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(AgentkeepError, LookupError):
    """No live record has the given id."""

    __module__ = "agentkeep"


class Conflict(AgentkeepError):
    """The write clashes with the stored state (a duplicate id, a wrong session)."""

    __module__ = "agentkeep"


class StoreBusy(AgentkeepError):
    """Another writer held the lock for longer than the configured timeout."""

    __module__ = "agentkeep"


class StoreClosed(AgentkeepError):
    """The store was closed; open a new one."""

    __module__ = "agentkeep"


class StoreUnavailable(AgentkeepError):
    """The store cannot be reached or created (server down, path not writable)."""

    __module__ = "agentkeep"


class StoreCorrupt(AgentkeepError):
    """The database is damaged or was not written by agentkeep."""

    __module__ = "agentkeep"


class SchemaOutOfDate(AgentkeepError):
    """The schema is older than this agentkeep (migrate) or newer (upgrade agentkeep)."""

    __module__ = "agentkeep"


class MigrationError(AgentkeepError):
    """A migration failed; its transaction was rolled back."""

    __module__ = "agentkeep"

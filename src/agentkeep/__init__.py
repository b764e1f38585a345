"""agentkeep: the persistence layer for AI assistant and agent applications.

>>> import agentkeep
>>> with agentkeep.open("./data") as store:          # or a postgresql:// URL
...     session = store.chat.create_session(title="Trip")
...     store.chat.append(session.id, "user", "Flights to Lisbon?")
"""

from .app.models import Setting
from .chat.models import (
    Attachment,
    Branch,
    FileVersion,
    Message,
    Page,
    SearchHit,
    Session,
    ToolCall,
)
from .errors import (
    AgentkeepError,
    Conflict,
    InvalidInput,
    MigrationError,
    NotFound,
    SchemaOutOfDate,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    StoreUnavailable,
)
from .store import Store, open

__version__ = "0.1.0"


def __getattr__(name: str):
    # The async API pulls in asyncio (~30 ms); plain sync users never pay for it.
    if name in ("AsyncStore", "open_async"):
        from . import aio

        return getattr(aio, name)
    raise AttributeError(f"module 'agentkeep' has no attribute {name!r}")

__all__ = [
    "AgentkeepError",
    "AsyncStore",
    "Attachment",
    "Branch",
    "Conflict",
    "FileVersion",
    "InvalidInput",
    "Message",
    "MigrationError",
    "NotFound",
    "Page",
    "SchemaOutOfDate",
    "SearchHit",
    "Session",
    "Setting",
    "Store",
    "StoreBusy",
    "StoreClosed",
    "StoreCorrupt",
    "StoreUnavailable",
    "ToolCall",
    "open",
    "open_async",
]

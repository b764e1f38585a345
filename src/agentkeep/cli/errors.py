"""How the CLI reports failures: one line on stderr and an exit code per kind of error.

Exit codes (documented in ``docs/cli.md``):

====  ==========================================================================
0     success
1     a generic failure: NotFound, Conflict, an OS error, drift found by
      ``migrate check``, an aborted confirmation, an internal error
2     a usage error: a wrong option or argument, or ``InvalidInput``
3     the store cannot be used right now: ``StoreBusy``, ``StoreUnavailable``,
      ``StoreClosed``
4     the store needs attention: ``SchemaOutOfDate``, ``MigrationError``,
      ``StoreCorrupt``
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import re
import sys
import traceback

from ..errors import (
    AgentkeepError,
    InvalidInput,
    MigrationError,
    SchemaOutOfDate,
    StoreBusy,
    StoreClosed,
    StoreCorrupt,
    StoreUnavailable,
)

OK = 0
FAILURE = 1
USAGE = 2
UNAVAILABLE = 3
NEEDS_ATTENTION = 4
INTERRUPTED = 130

# Most specific first: InvalidInput is checked before the AgentkeepError catch-all.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidInput, USAGE),
    ((StoreBusy, StoreUnavailable, StoreClosed), UNAVAILABLE),  # type: ignore[misc]
    ((SchemaOutOfDate, MigrationError, StoreCorrupt), NEEDS_ATTENTION),  # type: ignore[misc]
    (AgentkeepError, FAILURE),
)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return re.sub(r"\s+", " ", text).strip()


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception raised by a command."""
    if isinstance(exc, KeyboardInterrupt):  # agentkeep's own say what was done by then
        return INTERRUPTED, one_line(f"interrupted {exc}") if str(exc) else "interrupted"
    for kinds, code in _CODES:
        if isinstance(exc, kinds):
            return code, one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return FAILURE, one_line(f"{exc.strerror or exc}{where}")
    return FAILURE, one_line(f"internal error: {type(exc).__name__}: {exc} "
                             "(run with --debug for the traceback)")


def report(message: str) -> None:
    """Write ``error: <message>`` as one line on stderr."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def print_traceback(exc: BaseException) -> None:
    """The full traceback on stderr (``--debug``)."""
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)

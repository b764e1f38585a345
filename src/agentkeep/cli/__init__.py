"""The ``agentkeep`` command line: Typer commands over the public API, rendered with rich.

One module per command group (``init``, ``demo``, ``migrate``, ``sessions``, ``search``,
``stats``); each has a ``register(app)`` that adds its commands to the root :data:`app`.
Global options, the store target and the single error handler live in
:mod:`agentkeep.cli.app`; the exit codes in :mod:`agentkeep.cli.errors`.
"""

from __future__ import annotations

import typer

from . import (
    backup,
    check,
    checkpoints,
    demo,
    init,
    maintenance,
    migrate,
    search,
    sessions,
    stats,
    transfer,
)
from .app import app

__all__ = ["app", "main"]

for _module in (init, demo, migrate, sessions, search, stats, check, maintenance, backup,
                transfer, checkpoints):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (the ``agentkeep`` console script) and exit with the command's code."""
    typer.main.get_command(app).main(args=argv, prog_name="agentkeep")

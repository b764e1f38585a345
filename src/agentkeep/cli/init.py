"""``agentkeep init``: create or migrate the store and say where it is."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..migrations import current_revision, ensure_current
from .app import get_state
from .output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create the store (or bring an older one up to date) and print where it is.

    Safe to run again: an up-to-date store is left as it is.
    """
    state = get_state(ctx)
    config = state.config()
    with state.backend(create=True) as backend:
        concerns = backend.concerns
        before = {concern: current_revision(backend, concern) for concern in concerns}
        ensure_current(backend, migrate=True)
        after = {concern: current_revision(backend, concern) for concern in concerns}
        locations = {concern: backend.location(concern) for concern in concerns}
    if all(revision is None for revision in before.values()):
        outcome = "created"
    elif before != after:
        outcome = "migrated"
    else:
        outcome = "up to date"
    if as_json:
        print_json({"location": state.describe(config), "dialect": config.dialect,
                    "outcome": outcome,
                    "concerns": [{"concern": c, "location": locations[c], "before": before[c],
                                  "after": after[c]} for c in concerns]})
        return
    verb = {"created": "Created a new", "migrated": "Migrated the",
            "up to date": "Up to date:"}[outcome]
    out = console()
    out.print(Text(f"{verb} agentkeep store at {state.describe(config)}", style="bold"))
    grid = Table.grid(padding=(0, 2))
    for concern in concerns:
        change = after[concern] if before[concern] == after[concern] else \
            f"{before[concern] or 'none'} → {after[concern]}"
        grid.add_row(Text(concern, style="bold"), Text(locations[concern]), Text(str(change)))
    out.print(grid)

"""``agentkeep check [--repair]``: integrity, foreign keys, search index, drift, counters,
orphaned blobs and dangling references, over :func:`agentkeep.ops.check.check`.

Exits 0 when the store is clean (or every finding was repaired), 1 when something is
still wrong.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from ..ops import check as ops_check
from .app import get_state
from .output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Fix what is safe to fix: rebuild the search index, recount "
                         "session counters, delete orphaned blobs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")
                       ] = False,
) -> None:
    """Check every concern for damage and inconsistencies; exit 1 if any remain."""
    state = get_state(ctx)
    with state.open() as store:
        report = ops_check.check(store, repair=repair)
        concerns = ", ".join(store._backend.concerns)
    if as_json:
        print_json(report.to_dict())
    else:
        out = console()
        for finding in report:
            mark = Text("repaired ", style="green") if finding.repaired else \
                Text("problem  ", style="bold red")
            where = f"{finding.concern}.{finding.table}" if finding.table else finding.concern
            out.print(Text.assemble(mark, (f"{where} ", "bold"), (f"{finding.kind}: ", "dim"),
                                    finding.detail))
        for line in report.repairs:
            out.print(Text.assemble(("did ", "green"), line))
        for line in report.notes:
            out.print(Text(f"note: {line}", style="dim"))
        left = [f for f in report if not f.repaired]
        if not left:
            out.print(Text(f"Clean: no problems left in {concerns}." if report else
                           f"Clean: no problems found in {concerns}.", style="green"))
        else:
            fixable = sum(1 for f in left if f.repairable)
            hint = (f" ({fixable} repairable: run `{state.command('check', '--repair')}`)"
                    if fixable and not repair else "")
            out.print(Text(f"{len(left)} problem(s) found{hint}.", style="bold red"),
                      soft_wrap=True)
    if not report.is_clean:
        raise typer.Exit(1)

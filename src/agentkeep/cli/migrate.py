"""``agentkeep migrate status|up|down|check``: the schema revisions of each concern.

These commands work on a bare backend, never through ``agentkeep.open()``, which would
migrate (or refuse) before anything could be inspected. Without ``--concern``, ``up``
upgrades every concern to its head and ``down`` takes every concern one step back
(in reverse registry order); ``--to`` needs ``--concern``, as revisions belong to one
concern. ``down`` asks for confirmation, since a downgrade can drop tables and data.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..concerns import CONCERNS
from ..migrations import check_revision, current_revision, known_revisions
from .app import AgentkeepTyper, UsageError, get_state
from .output import console, print_json

migrate_app = AgentkeepTyper(help="Show, apply, undo and check schema migrations.",
                             no_args_is_help=True)

ConcernOption = Annotated[str | None, typer.Option(
    "--concern", metavar="NAME", help=f"Only this concern ({', '.join(CONCERNS)}).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    app.add_typer(migrate_app, name="migrate")


def _concerns(concern: str | None, to: str | None) -> tuple[str, ...]:
    if concern is not None and concern not in CONCERNS:
        raise typer.BadParameter(f"must be one of {', '.join(CONCERNS)}; got {concern!r}",
                                 param_hint="--concern")
    if to is not None and concern is None:
        raise typer.BadParameter("needs --concern: revisions belong to one concern",
                                 param_hint="--to")
    return CONCERNS if concern is None else (concern,)


def _status_json(state: Any) -> dict[str, Any]:
    return {"concern": state.concern, "location": state.location, "current": state.current,
            "head": state.head, "pending": list(state.pending), "is_current": state.is_current}


@migrate_app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Current and head revision of each concern, and the migrations pending."""
    from ..migrations.alembic_ops import status as concern_status

    with get_state(ctx).backend() as backend:
        states = [concern_status(backend, concern) for concern in backend.concerns]
    if as_json:
        print_json([_status_json(state) for state in states])
        return
    table = Table(header_style="bold", pad_edge=False)
    for column in ("concern", "location", "current", "head", "pending"):
        table.add_column(column)
    for state in states:
        pending = Text(", ".join(state.pending), style="yellow") if state.pending else \
            Text("up to date", style="green")
        table.add_row(state.concern, Text(state.location), state.current or "none",
                      state.head, pending)
    console().print(table)


@migrate_app.command("up")
def up(
    ctx: typer.Context,
    concern: ConcernOption = None,
    to: Annotated[str | None, typer.Option(
        metavar="REV", help="Stop at this revision (needs --concern). Default: head.")] = None,
) -> None:
    """Upgrade every concern (or one) to its newest revision, creating the store if needed."""
    from ..migrations.alembic_ops import upgrade

    concerns = _concerns(concern, to)
    out = console()
    with get_state(ctx).backend(create=True) as backend:
        for name in concerns:
            before = current_revision(backend, name)
            upgrade(backend, name, to or "head")
            after = current_revision(backend, name)
            change = f"already at {after}" if before == after else \
                f"{before or 'none'} → {after}"
            out.print(Text(f"{name}: {change}"))


@migrate_app.command("down")
def down(
    ctx: typer.Context,
    concern: ConcernOption = None,
    to: Annotated[str | None, typer.Option(
        metavar="REV", help="Go back to this revision, or 'base' to remove the concern's "
                            "tables (needs --concern). Default: one step.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
) -> None:
    """Downgrade every concern (or one) by one revision, or to --to REV / base."""
    from ..migrations.alembic_ops import downgrade

    concerns = _concerns(concern, to)
    out = console()
    with get_state(ctx).backend() as backend:
        plan = []
        for name in reversed(concerns):
            current = current_revision(backend, name)
            check_revision(name, current, backend.location(name))
            if current is None:
                out.print(Text(f"{name}: nothing to downgrade (no schema)"))
                continue
            known = known_revisions(name)
            if to is not None and to in known and known.index(to) >= known.index(current):
                if to != current:
                    raise UsageError(f"{name} is at {current}, older than {to}: "
                                     "`agentkeep migrate up` upgrades")
                out.print(Text(f"{name}: already at {current}"))
                continue
            step = known[known.index(current) - 1] if known.index(current) else "base"
            plan.append((name, current, to or step))
        if plan and not yes:
            steps = ", ".join(f"{name} {current} → {target}" for name, current, target in plan)
            typer.confirm(f"Downgrade {steps}? This can drop tables and the data in them.",
                          abort=True)
        for name, current, target in plan:
            downgrade(backend, name, target)
            out.print(Text(f"{name}: {current} → {current_revision(backend, name) or 'none'}"))


@migrate_app.command("check")
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Compare the database with the schema this agentkeep declares; exit 1 on drift."""
    from ..migrations.alembic_ops import drift

    with get_state(ctx).backend() as backend:
        findings = [line for concern in backend.concerns for line in drift(backend, concern)]
    if as_json:
        print_json({"clean": not findings, "findings": findings})
    elif findings:
        out = console()
        for line in findings:
            out.print(Text(line, style="yellow"))
    else:
        console().print(Text("No drift: every concern matches its declared schema.",
                             style="green"))
    if findings:
        raise typer.Exit(1)

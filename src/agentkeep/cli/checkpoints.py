"""``agentkeep checkpoints threads|prune``: the agent-framework checkpoints of a store
(LangGraph's ``AgentkeepSaver``), thin over ``store.checkpoints``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..checkpoints.models import CheckpointPruneResult
from ..errors import InvalidInput
from .app import AgentkeepTyper, UsageError, get_state
from .maintenance import check_age
from .output import console, number, print_json, when

checkpoints_app = AgentkeepTyper(help="List the threads of agent-framework checkpoints "
                                      "and apply retention to them.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    app.add_typer(checkpoints_app, name="checkpoints")


@checkpoints_app.command("threads")
def threads(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=1_000_000,
                                       help="Show at most N threads.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the threads that have checkpoints, most recently active first."""
    with get_state(ctx).open() as store:
        found = store.checkpoints.threads(limit=limit)
    if as_json:
        print_json([thread.to_dict() for thread in found])
        return
    out = console()
    if not found:
        out.print(Text("No checkpoints."))
        return
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for name, justify in (("thread", "left"), ("checkpoints", "right"),
                          ("namespaces", "right"), ("first", "left"), ("last active", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for thread in found:
        table.add_row(thread.thread_id, number(thread.checkpoints), number(thread.namespaces),
                      when(thread.first_at), when(thread.last_at))
    out.print(table)


@checkpoints_app.command("prune")
def prune(
    ctx: typer.Context,
    keep_last: Annotated[int | None, typer.Option(
        "--keep-last", metavar="N",
        help="Always keep the N newest checkpoints of each thread and namespace.")] = None,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE",
        help="Of the others, delete only those stored more than AGE ago (90d, 12h, 30m, "
             "2w).")] = None,
    thread_ids: Annotated[list[str] | None, typer.Option(
        "--thread", metavar="ID", help="Only this thread (repeatable). Default: every "
                                       "thread.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be deleted, and change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete old checkpoints and their pending writes (retention); --dry-run counts them."""
    check_age("--older-than", older_than)
    criteria = dict(keep_last=keep_last, older_than=older_than, thread_ids=thread_ids or None)
    with get_state(ctx).open() as store:
        try:
            planned = store.checkpoints.prune(**criteria, dry_run=True)
            if not dry_run and planned.checkpoints and not yes:
                typer.confirm(f"Delete {number(planned.checkpoints)} checkpoint(s) of "
                              f"{number(planned.threads)} thread(s) for good?", abort=True,
                              err=as_json)
            if dry_run:
                result = planned
            elif planned.checkpoints:
                result = store.checkpoints.prune(**criteria)
            else:  # nothing to delete: no write, and not reported as a dry run either
                result = CheckpointPruneResult((0, 0, 0, False))
        except InvalidInput as exc:
            if exc.field == "criteria":
                raise UsageError("give --keep-last, --older-than or both") from exc
            raise
    if as_json:
        print_json(result.to_dict())
        return
    verb = "Would delete" if result.dry_run else "Deleted"
    console().print(Text(f"{verb} {number(result.checkpoints)} checkpoint(s) and "
                         f"{number(result.writes)} pending write(s) of "
                         f"{number(result.threads)} thread(s)."))

"""``agentkeep optimize`` and ``agentkeep prune``: keep a store fast, small and within its
retention. Thin layers over :mod:`agentkeep.ops.optimize` and :mod:`agentkeep.ops.prune`.

``prune`` plans first (read-only), shows the plan (``--dry-run`` stops there), asks, then
purges exactly the planned sessions that did not change meanwhile, in batches.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..errors import InvalidInput
from ..ops import optimize as ops_optimize
from ..ops import prune as ops_prune
from .app import UsageError, get_state, in_cli_words
from .output import console, error_console, human_size, number, one_line, print_json, when

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
    app.command("prune")(prune)


# --- optimize -----------------------------------------------------------------------------
def optimize(
    ctx: typer.Context,
    vacuum: Annotated[bool | None, typer.Option(
        "--vacuum/--no-vacuum", show_default=False,
        help="Force VACUUM (PostgreSQL: VACUUM (ANALYZE)) or never run it. Default: VACUUM "
             "a SQLite file when at least 25 % of it (and 1 MiB) is free pages.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the configured retention, merge the search index, update planner statistics
    and VACUUM when much space is free."""
    out = console()
    say = None if as_json else (lambda line: out.print(Text(line, style="dim")))
    with get_state(ctx).open() as store:
        report = ops_optimize.optimize(store, vacuum=vacuum, say=say)
    if as_json:
        print_json(report)
        return
    retention = report["retention"]
    if retention is not None:
        out.print(Text(f"retention: purged {number(retention['sessions'])} session(s), "
                       f"{_rows(retention['rows'])}, {number(retention['blobs'])} blob(s) "
                       f"({human_size(retention['blob_bytes'])})"))
    for concern in report["concerns"]:
        out.print(Text.assemble((concern["concern"], "bold"), "  ", concern["location"]))
        for action in concern["actions"]:
            out.print(Text(f"  {action}"))
        plan = concern["vacuum"]
        if not plan["ran"] and "reason" in plan:
            out.print(Text(f"  no VACUUM: {in_cli_words(ctx, plan['reason'])}", style="dim"))
    out.print(Text("Optimized.", style="green"))


# --- prune --------------------------------------------------------------------------------
def _rows(rows: dict[str, int]) -> str:
    return ", ".join(f"{number(count)} {table.replace('_', ' ')}" for table, count in
                     sorted(rows.items(), key=lambda item: (item[0] != "messages", item[0])))


def _plan_text(plan: ops_prune.PrunePlan, *, listing: bool) -> list[Text]:
    lines = []
    if listing:
        for session in plan.sessions:
            why = (f"deleted {when(session.deleted_at)}" if session.reason == "grace"
                   else f"last active {when(session.active_at)}")
            lines.append(Text.assemble(
                (session.id, "bold"), f"  {session.status:<8}  {why}  ",
                f"{number(session.message_count)} msgs  ",
                Text(one_line(session.title, 50) or "untitled", style="dim")))
    verb = "Would purge" if listing else "Purge"
    lines.append(Text(f"{verb} {number(len(plan.sessions))} session(s) ({_rows(plan.rows)}) "
                      f"and {number(plan.blobs)} unreferenced blob(s) "
                      f"({human_size(plan.blob_bytes)}).", style="bold"))
    return lines


def _apply(store: Any, plan: ops_prune.PrunePlan, batch_size: int) -> ops_prune.PruneResult:
    """Purge with a progress bar when stderr is a terminal, silently otherwise."""
    err = error_console()
    if not err.is_terminal or not plan.sessions:
        return ops_prune.apply(store, plan, batch_size=batch_size)
    columns = (TextColumn("purging sessions"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("prune", total=len(plan.sessions))
        return ops_prune.apply(store, plan, batch_size=batch_size,
                               progress=lambda done, _: progress.update(task, completed=done))


_AGE = re.compile(r"([0-9]+)([mhdw])")


def check_age(option: str, value: str | None) -> None:
    """Refuse a well-formed AGE beyond the library's maximum as too large: the library
    calls a number of more than 9 digits malformed, and one that overflows an error."""
    match = _AGE.fullmatch(value) if value is not None else None
    seconds = int(match[1]) * ops_prune.UNITS[match[2]] if match else 0
    if seconds > ops_prune.MAX_DURATION.total_seconds():
        raise typer.BadParameter(
            f"is too large: at most {ops_prune.format_duration(ops_prune.MAX_DURATION)} "
            f"(100 years); got {value!r}", param_hint=option)


def _make_plan(store: Any, **criteria: Any) -> ops_prune.PrunePlan:
    """The library's plan; no criterion at all is a usage error naming the options."""
    try:
        return ops_prune.plan(store, **criteria)
    except InvalidInput as exc:
        if exc.field == "criteria":
            raise UsageError("give at least one of --older-than, --keep-last, --status or "
                             "--grace") from exc
        raise


def prune(
    ctx: typer.Context,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE",
        help="Purge sessions whose last activity is older than AGE (90d, 12h, 30m, 2w).")
    ] = None,
    keep_last: Annotated[int | None, typer.Option(
        "--keep-last", metavar="N",
        help="Always keep the N most recently active sessions (of --status).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="STATUS", help="Only sessions with this status: archived or "
                                           "deleted.")] = None,
    grace: Annotated[str | None, typer.Option(
        "--grace", metavar="AGE",
        help="Purge soft-deleted sessions deleted more than AGE ago.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List exactly what would be purged, and change nothing.")] = False,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", metavar="N", min=1, max=10_000,
        help="Sessions purged per transaction (1–10,000).")
    ] = ops_prune.DEFAULT_BATCH,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
    as_json: JsonOption = False,
) -> None:
    """Purge old sessions for good (retention), in small batches; --dry-run lists them."""
    check_age("--older-than", older_than)
    check_age("--grace", grace)
    out = console()
    with get_state(ctx).open() as store:
        plan = _make_plan(store, older_than=older_than, keep_last=keep_last, status=status,
                          grace=grace)
        if dry_run:
            if as_json:
                print_json({"dry_run": True, **plan.to_dict()})
            else:
                for line in _plan_text(plan, listing=True):
                    out.print(line)
            return
        if not plan.sessions and not plan.blobs:
            if as_json:
                print_json({"dry_run": False, "plan": plan.to_dict(), "result": None})
            else:
                out.print(Text("Nothing to prune."))
            return
        if not yes:  # with --json the question goes to stderr, so stdout stays JSON
            question = _plan_text(plan, listing=False)[-1].plain.rstrip(".")
            typer.confirm(f"{question} for good?", abort=True, err=as_json)
        result = _apply(store, plan, batch_size)
    if as_json:
        print_json({"dry_run": False, "plan": plan.to_dict(), "result": result.to_dict()})
        return
    out.print(Text(f"Purged {number(len(result.purged))} session(s) ({_rows(result.rows)}) "
                   f"and {number(result.blobs)} blob(s) ({human_size(result.blob_bytes)}) in "
                   f"{number(result.batches)} batch(es)."))
    if result.skipped:
        out.print(Text(f"Left {number(len(result.skipped))} planned session(s) alone: they "
                       "changed or went away after the plan was made.", style="yellow"))

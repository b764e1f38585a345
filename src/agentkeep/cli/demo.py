"""``agentkeep demo``: fill the store with a realistic sample and show it off.

The sample comes from :mod:`agentkeep.demo`. Running the command again with the same
``--sessions``, ``--messages-per-session`` and ``--seed`` reuses the sample already in
the store (nothing is written) and shows it again; ``--new`` adds another sample, as
does any other combination of those options.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule
from rich.text import Text

from ..demo import (
    DEFAULT_MESSAGES_PER_SESSION,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    DemoSummary,
    find_sample,
    generate,
)
from .app import get_state
from .output import console, error_console, marked_search, number, when
from .search import render_hits
from .sessions import WIDE, sessions_table
from .stats import gather_stats, render_stats
from .tree import load_view, render_session

#: How many messages of the showcase session's active branch the demo draws.
SHOWCASE_MESSAGES = 14
#: The width of the section rules when the output is not a terminal.
PIPED_RULE_WIDTH = 80


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _generate(store: Any, sessions: int, messages_per_session: int, seed: int) -> DemoSummary:
    """Generate with a progress bar when stderr is a terminal, silently otherwise."""
    err = error_console()
    if not err.is_terminal:
        return generate(store, sessions=sessions, messages_per_session=messages_per_session,
                        seed=seed)
    columns = (TextColumn("generating sessions"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("demo", total=sessions)
        return generate(store, sessions=sessions, messages_per_session=messages_per_session,
                        seed=seed, progress=lambda done, _: progress.update(task, completed=done))


def _section(out: Console, title: str = "", style: str = "rule.line") -> None:
    """A rule with ``title`` at its left, across the terminal (80 columns when piped)."""
    out.print(Rule(title, align="left", style=style),
              width=out.width if out.is_terminal else min(out.width, PIPED_RULE_WIDTH))


def _summary_line(summary: DemoSummary) -> Text:
    what = (f"{number(summary.sessions)} sessions, {number(summary.messages)} messages "
            f"({number(summary.branch_messages)} on side branches), "
            f"{number(summary.tool_calls)} tool calls ({number(summary.failed_tool_calls)} "
            f"failed), {number(summary.attachments)} attachments, "
            f"{number(summary.file_versions)} file versions")
    if summary.reused:
        made = when(datetime.fromisoformat(summary.created_at))
        return Text(f"Reusing the demo sample made on {made} with seed "
                    f"{summary.seed}: {what}. Pass --new to add another.", style="bold")
    return Text(f"Generated a demo sample in {summary.seconds:.1f} s (seed {summary.seed}): "
                f"{what}.", style="bold")


def demo(
    ctx: typer.Context,
    sessions: Annotated[int, typer.Option(
        min=1, max=100_000, metavar="N", help="Sessions to generate, sub-agent sessions included.")
    ] = DEFAULT_SESSIONS,
    messages_per_session: Annotated[int, typer.Option(
        min=1, max=10_000, metavar="M", help="Average messages on a session's main branch.")
    ] = DEFAULT_MESSAGES_PER_SESSION,
    seed: Annotated[int, typer.Option(metavar="S", help="Seed of the text generator.")
                    ] = DEFAULT_SEED,
    new: Annotated[bool, typer.Option(
        "--new", help="Add another sample even if one with these options exists.")] = False,
) -> None:
    """Fill the store with a realistic sample, then show it off.

    Shows a session list, one session's branch tree, a search and the stats. The same
    options again reuse the sample already made (nothing is written); --new adds one.
    """
    state = get_state(ctx)
    started = time.perf_counter()
    out = console()
    with state.open(create=True) as store:
        summary = None if new else find_sample(
            store, sessions=sessions, messages_per_session=messages_per_session, seed=seed)
        if summary is None:
            summary = _generate(store, sessions, messages_per_session, seed)
        out.print(_summary_line(summary))
        _section(out, "Recently active sessions")
        out.print(sessions_table(store.chat.list_sessions(limit=8).items,
                                 wide=out.width >= WIDE))
        _section(out, "One session's branch tree")
        out.print(render_session(load_view(store, summary.showcase_id, SHOWCASE_MESSAGES)))
        _section(out, f"search {summary.query}")
        out.print(render_hits(*marked_search(store, summary.query, limit=5)))
        _section(out, "stats")
        out.print(render_stats(gather_stats(store)))
    _section(out, style="dim")
    out.print(Text(f"Done in {time.perf_counter() - started:.1f} s. Try:\n"
                   f"  {state.command('sessions', 'show', summary.showcase_id)}\n"
                   f"  {state.command('search', summary.query + ' -train')}\n"
                   f"  {state.command('sessions', 'list', '--status', 'archived')}",
                   style="dim"),
              soft_wrap=True)  # no line breaks inside the commands, so they copy-paste

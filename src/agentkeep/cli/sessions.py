"""``agentkeep sessions list|show|rm|restore``: browse, inspect and delete conversations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .app import AgentkeepTyper, get_state
from .output import console, money, number, one_line, print_json, when
from .tree import load_view, render_session, view_json

sessions_app = AgentkeepTyper(help="List, show, delete and restore sessions.",
                              no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: Terminal width from which the session list shows every column.
WIDE = 120
SessionId = Annotated[str, typer.Argument(metavar="ID", help="The session id.")]


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")


def sessions_table(sessions: Iterable[Any], *, wide: bool = True) -> Table:
    """The session list. Narrow terminals get the id under the title and fewer columns."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    if wide:
        table.add_column("id", no_wrap=True, style="dim")
    table.add_column("title" if wide else "session", overflow="ellipsis", no_wrap=True,
                     max_width=48 if wide else 40)
    if wide:
        table.add_column("model", overflow="ellipsis", no_wrap=True, max_width=24)
    table.add_column("msgs", justify="right", no_wrap=True)
    if wide:
        table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("last active", no_wrap=True)
    for session in sessions:
        label = Text("↳ " if session.parent_id else "", style="dim")
        label.append(one_line(session.title, 200) or "(untitled)",
                     style=None if session.title else "dim")
        if session.status != "active":
            label.append(f" [{session.status}]", style="yellow")
        counts = [number(session.message_count), money(session.cost), when(session.active_at)]
        if wide:
            table.add_row(session.id, label, Text(one_line(session.model or "-", 60)),
                          counts[0], number(session.input_tokens + session.output_tokens),
                          *counts[1:])
        else:
            label.append("\n" + session.id, style="dim")
            table.add_row(label, *counts)
    return table


@sessions_app.command("list")
def list_sessions(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", help="Only sessions with this status: active, archived or deleted. "
             "Default: every status but deleted.")] = None,
    provider: Annotated[str | None, typer.Option(metavar="NAME", help="Only this provider.")
                        ] = None,
    model: Annotated[str | None, typer.Option(metavar="NAME", help="Only this model.")] = None,
    parent_id: Annotated[str | None, typer.Option(
        "--parent", metavar="ID", help="Only the sub-agent sessions of this session.")] = None,
    title: Annotated[str | None, typer.Option(
        metavar="TEXT", help="Only titles containing TEXT (case-insensitive).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, metavar="N",
                                       help="Sessions per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(
        metavar="CURSOR", help="Continue after the previous page (its next_cursor).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List sessions, most recently active first, one page at a time."""
    state = get_state(ctx)
    with state.open() as store:
        page = store.chat.list_sessions(status=status, provider=provider, model=model,
                                        parent_id=parent_id, title=title, limit=limit,
                                        cursor=cursor)
    if as_json:
        print_json({"items": page.items, "next_cursor": page.next_cursor})
        return
    out = console()
    if not page.items:
        out.print("No sessions.", style="dim")
        return
    out.print(sessions_table(page.items, wide=out.width >= WIDE))
    if page.next_cursor:
        # The next page of the same list: the store, the filters and the page size again.
        words = ["sessions", "list"]
        for option, value in (("--status", status), ("--provider", provider),
                              ("--model", model), ("--parent", parent_id), ("--title", title)):
            if value is not None:
                words += [option, value]
        if limit != 20:
            words += ["--limit", str(limit)]
        words += ["--cursor", page.next_cursor]
        out.print(Text(f"More: {state.command(*words)}", style="dim"), soft_wrap=True)


@sessions_app.command("show")
def show(
    ctx: typer.Context,
    session_id: SessionId,
    last: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="Only the last N messages of the active branch (and the "
                                 "branches that fork among them).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a session: its counters and its message tree, the active branch highlighted.

    Tool calls appear after the assistant message that asked for them, with their
    status and duration; attachments after their message.
    """
    with get_state(ctx).open() as store:
        view = load_view(store, session_id, last)
    if as_json:
        print_json(view_json(view))
        return
    console().print(render_session(view))


@sessions_app.command("rm")
def remove(
    ctx: typer.Context,
    session_id: SessionId,
    purge: Annotated[bool, typer.Option(
        "--purge", help="Delete for good, with its messages, tool calls and files "
                        "(asks first). Default: a soft delete that can be restored.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
) -> None:
    """Delete a session: hidden from lists and search (soft), or gone for good (--purge)."""
    out, state = console(), get_state(ctx)
    with state.open() as store:
        if not purge:
            store.chat.delete_session(session_id)
            out.print(Text(f"Deleted session {session_id} (restore it with "
                           f"`{state.command('sessions', 'restore', session_id)}`)."),
                      soft_wrap=True)
            return
        session = store.chat.get_session(session_id, include_deleted=True)
        if not yes:
            typer.confirm(f"Purge session {session_id} ({one_line(session.title, 60) or 'untitled'}"
                          f", {session.message_count} messages) for good?", abort=True)
        store.chat.purge_session(session_id)
    out.print(Text(f"Purged session {session_id}."))


@sessions_app.command("archive")
def archive(ctx: typer.Context, session_id: SessionId) -> None:
    """Archive a session: still listed (marked archived) and searchable."""
    state = get_state(ctx)
    with state.open() as store:
        session = store.chat.archive_session(session_id)
    console().print(Text(f"Archived session {session.id} "
                         f"({one_line(session.title, 60) or 'untitled'}); make it active again "
                         f"with `{state.command('sessions', 'restore', session.id)}`."),
                    soft_wrap=True)


@sessions_app.command("restore")
def restore(ctx: typer.Context, session_id: SessionId) -> None:
    """Make a soft-deleted or archived session active again."""
    with get_state(ctx).open() as store:
        session = store.chat.restore_session(session_id)
    console().print(Text(f"Restored session {session.id} "
                         f"({one_line(session.title, 60) or 'untitled'})."))

"""``agentkeep search``: full-text search over messages, with highlighted snippets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from .app import get_state
from .output import (
    MARK_PAIRS,
    ROLE_STYLES,
    console,
    highlighted,
    marked_search,
    one_line,
    print_json,
    snippet_spans,
    when,
)


def register(app: typer.Typer) -> None:
    app.command("search")(search)


def hit_json(hit: Any, marks: tuple[str, str] = MARK_PAIRS[0]) -> dict[str, Any]:
    """One hit as JSON: the snippet as plain text plus the [start, end) of each match."""
    snippet, spans = snippet_spans(hit.snippet, marks)
    message = hit.message
    return {"message_id": message.id, "session_id": message.session_id,
            "session_title": hit.session_title, "role": message.role,
            "created_at": message.created_at.isoformat(), "score": hit.score,
            "snippet": snippet, "highlights": [list(span) for span in spans]}


def render_hits(hits: Iterable[Any], marks: tuple[str, str] = MARK_PAIRS[0]) -> Group:
    """Each hit as a heading (session, role, time, session id) over its snippet."""
    parts: list[Any] = []
    for hit in hits:
        message = hit.message
        head = Text(one_line(hit.session_title, 60) or "(untitled)", style="bold")
        head.append(" · ", style="dim")
        head.append(message.role, style=ROLE_STYLES.get(message.role, "bold"))
        head.append(f" · {when(message.created_at)} · {message.session_id}", style="dim")
        parts += [head, Padding(highlighted(hit.snippet, marks), (0, 0, 0, 4), expand=False)]
    return Group(*parts)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(
        metavar="QUERY", help='Words (all must match), "a phrase", OR, -exclude, prefix*.')],
    session_id: Annotated[str | None, typer.Option(
        "--session", metavar="ID", help="Only messages of this session.")] = None,
    role: Annotated[str | None, typer.Option(
        metavar="ROLE", help="Only messages with this role: system, user, assistant or tool.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, metavar="N",
                                       help="At most this many hits.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")
                       ] = False,
) -> None:
    """Search message text, best hits first, with the matches highlighted."""
    with get_state(ctx).open() as store:
        if session_id is not None:  # the library filters by it: an unknown id finds nothing
            store.chat.get_session(session_id)
        hits, marks = marked_search(store, query, session_id=session_id, role=role,
                                    limit=limit)
    if as_json:
        print_json([hit_json(hit, marks) for hit in hits])
        return
    out = console()
    if not hits:
        out.print(Text(f"No messages match {query!r}.", style="dim"))
        return
    out.print(render_hits(hits, marks))

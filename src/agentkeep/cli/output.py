"""Output helpers shared by the commands: consoles, JSON, and safe one-line text.

Text that comes from the store (titles, message content, snippets) is always wrapped in
``rich.text.Text``, never formatted into markup, so ``[bold]`` in a message prints as
typed; control characters are replaced so stored text cannot drive the terminal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ..codec import human_size  # noqa: F401 - re-exported for the commands

#: Snippet delimiters passed to ``store.chat.search``: STX / ETX, which real text
#: practically never holds (and which are stripped from it before display anyway).
#: Match markers for snippets, in order of preference. A message may hold any character,
#: so a pair found in a hit's text is swapped for the next one (marked_search): a marker
#: in the text itself was read as a match (a bogus highlight).
MARK_PAIRS = (("\x02", "\x03"), ("\x0e", "\x0f"), ("\ue000", "\ue001"),
              ("\U000f0000", "\U000f0001"))
HIGHLIGHT_STYLE = "bold black on yellow"
ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "bold yellow",
               "system": "bold magenta"}

#: The width of output that is not a terminal: wider than any line the commands print.
PIPED_WIDTH = 1_000

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")


def console() -> Console:
    """A console on stdout. Markup is used only in our own literal strings.

    Piped or redirected (and without ``$COLUMNS``), it is :data:`PIPED_WIDTH` wide rather
    than rich's 80 columns, so no table cuts an id or a path and no line breaks.
    """
    out = Console(highlight=False, emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPED_WIDTH
    return out


def error_console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: records as objects, datetimes as ISO-8601."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout, and nothing else."""
    sys.stdout.write(json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def clean(text: str | None) -> str:
    """Stored text made safe for a terminal: control characters become spaces."""
    return _CONTROL.sub(" ", text or "")


def one_line(text: str | None, width: int = 80) -> str:
    """``text`` on one line, whitespace collapsed, cut to ``width`` with an ellipsis."""
    flat = _SPACE.sub(" ", clean(text)).strip()
    return flat if len(flat) <= width else flat[: max(1, width - 1)].rstrip() + "…"


def marked_search(store: Any, query: str, **options: Any) -> tuple[list[Any], tuple[str, str]]:
    """``store.chat.search`` with the first pair of MARK_PAIRS that occurs in none of the
    hits' text; the hits and that pair."""
    for marks in MARK_PAIRS:
        hits = store.chat.search(query, marks=marks, **options)
        if not any(mark in hit.message.content for hit in hits for mark in marks):
            break
    return hits, marks


def snippet_spans(snippet: str, marks: tuple[str, str] = MARK_PAIRS[0]
                  ) -> tuple[str, list[tuple[int, int]]]:
    """Split a marked snippet into its plain text and the [start, end) spans of matches."""
    text, spans, start = "", [], None
    start_mark, end_mark = marks
    for piece in re.split(f"({re.escape(start_mark)}|{re.escape(end_mark)})", snippet):
        if piece == start_mark:
            start = len(text)
        elif piece == end_mark:
            if start is not None and len(text) > start:
                spans.append((start, len(text)))
            start = None
        else:
            text += _SPACE.sub(" ", clean(piece))
    lead = len(text) - len(text.lstrip())
    plain = text.strip()
    return plain, [(max(0, a - lead), min(len(plain), b - lead)) for a, b in spans
                   if b - lead > 0 and a - lead < len(plain)]


def highlighted(snippet: str, marks: tuple[str, str] = MARK_PAIRS[0]) -> Text:
    """A marked snippet as rich Text with the matches highlighted."""
    plain, spans = snippet_spans(snippet, marks)
    text = Text(plain)
    for start, end in spans:
        text.stylize(HIGHLIGHT_STYLE, start, end)
    return text


def when(moment: datetime | None) -> str:
    """A time in the local zone, to the minute."""
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def money(cost: float) -> str:
    return f"${cost:,.4f}" if cost < 1 else f"${cost:,.2f}"


def number(value: int) -> str:
    return f"{value:,}"


def role_text(role: str) -> Text:
    return Text(role, style=ROLE_STYLES.get(role, "bold"))

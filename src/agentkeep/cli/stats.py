"""``agentkeep stats``: rows per table, storage sizes and chat activity, per concern.

A thin layer over :func:`agentkeep.ops.stats.stats`, which gathers everything; this
module only renders it (tables on a terminal, or ``--json``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..ops import stats as ops_stats
from .app import get_state
from .output import console, human_size, money, number, one_line, print_json

SPARK = "▁▂▃▄▅▆▇█"
#: Largest sessions and provider/model rows shown as text (JSON has them all).
TEXT_ROWS = 5


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def gather_stats(store: Any) -> dict[str, Any]:
    """Rows, sizes and activity of every concern of ``store`` (read-only)."""
    return ops_stats.stats(store)


def _sizes_table(concern: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("data", justify="right")
    table.add_column("indexes", justify="right")
    for row in concern["tables"]:
        name = Text(row["name"])
        if row["kind"] != "table":
            name.append(f" ({row['kind']})", style="dim")
        table.add_row(name, "-" if row["rows"] is None else number(row["rows"]),
                      human_size(row["table_bytes"]), human_size(row["index_bytes"]))
    return table


def _totals(concern: dict[str, Any]) -> Text:
    totals = f"size {human_size(concern['total_bytes'])}"
    if concern["index_bytes"] is not None:
        totals += f" (indexes {human_size(concern['index_bytes'])})"
    if concern["file_bytes"] is not None:
        totals += (f" · file {human_size(concern['file_bytes'])}"
                   f" · WAL {human_size(concern['wal_bytes'])}"
                   f" · free {human_size(concern['free_bytes'])}")
    return Text(totals, style="dim")


def _activity(concern: dict[str, Any]) -> list[Any]:
    days = concern["messages_per_day"]
    counts = [day["messages"] for day in days]
    peak = max(counts, default=0)
    spark = "".join(" " if n == 0 else SPARK[min(len(SPARK) - 1, n * len(SPARK) // (peak + 1))]
                    for n in counts)
    parts: list[Any] = [Text.assemble(
        (f"messages per day, last {len(days)} days ", "bold"),
        (f"({days[0]['day']} … {days[-1]['day']}, UTC): " if days else "", "dim"),
        f"{number(sum(counts))} in all, at most {number(peak)} a day"),
        Text(f"  {spark}", style="cyan")]
    if concern["largest_sessions"]:
        largest = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
                        title="largest sessions", title_justify="left", title_style="bold")
        for column in ("session", "status", "msgs", "tokens", "cost"):
            largest.add_column(column, justify="left" if column in ("session", "status")
                               else "right")
        for row in concern["largest_sessions"][:TEXT_ROWS]:
            largest.add_row(Text(one_line(row["title"], 40) or "untitled") + Text(
                f"  {row['id']}", style="dim"), row["status"], number(row["message_count"]),
                number(row["input_tokens"] + row["output_tokens"]), money(row["cost"]))
        parts.append(largest)
    if concern["usage"]:
        usage = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
                      title="usage by provider/model", title_justify="left", title_style="bold")
        for column in ("provider/model", "msgs", "input", "output", "cost"):
            usage.add_column(column, justify="left" if column == "provider/model" else "right")
        for row in concern["usage"]:
            name = f"{row['provider'] or '-'}/{row['model'] or '-'}"
            usage.add_row(Text(one_line(name, 50)), number(row["messages"]),
                          number(row["input_tokens"]), number(row["output_tokens"]),
                          money(row["cost"]))
        totals = concern["usage_totals"]
        usage.add_row(Text("total", style="bold"), number(totals["messages"]),
                      number(totals["input_tokens"]), number(totals["output_tokens"]),
                      money(totals["cost"]))
        parts.append(usage)
    return parts


def render_stats(data: dict[str, Any]) -> Group:
    """One table per concern with the totals below it; the chat activity after chat's."""
    parts: list[Any] = []
    for concern in data["concerns"]:
        parts.append(Text.assemble((concern["concern"], "bold"), "  ", concern["location"]))
        parts += [_sizes_table(concern), _totals(concern)]
        if "messages_per_day" in concern:
            parts += [Text(), *_activity(concern)]
        parts.append(Text())
    return Group(*parts[:-1])


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")
                       ] = False,
) -> None:
    """Rows per table, storage sizes (file, WAL, indexes) and chat activity per concern."""
    with get_state(ctx).open() as store:
        data = gather_stats(store)
    if as_json:
        print_json(data)
        return
    console().print(render_stats(data))

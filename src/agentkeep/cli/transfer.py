"""``agentkeep export`` and ``agentkeep import``: the store as JSON Lines, and back.

Thin layers over :func:`agentkeep.ops.transfer.export_store` and ``import_store``; the
format is in ``docs/export-format.md``. Data goes to stdout (or ``--output FILE``) and
comes from a file or stdin (``-``); a progress bar runs on stderr when it is a terminal.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..errors import InvalidInput
from .app import get_state, not_empty
from .output import error_console, human_size, jsonable, number

#: gzip level for ``--output FILE.gz``: level 1 compresses an export about 5x at several
#: times the speed of the default level 9, which would make gzip the bottleneck.
GZIP_LEVEL = 1


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)


@contextlib.contextmanager
def _progress(label: str, *, in_bytes: bool, show: bool) -> Iterator[Any]:
    """A ``progress(done, total)`` callback drawing a bar on stderr, or None."""
    err = error_console()
    if not show or not err.is_terminal:
        yield None
        return
    counter = DownloadColumn() if in_bytes else MofNCompleteColumn()
    with Progress(TextColumn(label), BarColumn(), counter, TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _counts_text(counts: dict[str, int], verb: str) -> str:
    labels = {"chat.sessions": "sessions", "chat.messages": "messages",
              "chat.tool_calls": "tool calls", "chat.attachments": "attachments",
              "chat.file_versions": "file versions", "chat.blobs": "blobs",
              "app.settings": "settings", "checkpoints.checkpoints": "checkpoints",
              "checkpoints.checkpoint_writes": "checkpoint writes"}
    parts = [f"{number(counts.get(kind, 0))} {label}" for kind, label in labels.items()
             if kind in counts]
    parts += [f"{number(n)} {kind}" for kind, n in counts.items() if kind not in labels]
    return f"{verb} " + (", ".join(parts) if parts else "nothing")


def _since_time(text: str) -> datetime:
    """``--since`` as a datetime: an ISO-8601 date or time, in UTC when it names no zone."""
    value = text.strip()
    if value.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read Z
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"must be an ISO-8601 date or time, e.g. 2025-06-01 or "
                                 f"2025-06-01T12:00:00Z; got {text!r}",
                                 param_hint="--since") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _is_stdout(output: str) -> bool:
    """Whether ``output`` names this process's standard output (``/dev/stdout``,
    ``/proc/self/fd/1``): then the export is written as with ``-``."""
    try:
        named, stdout = os.stat(output), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return False
    return (named.st_dev, named.st_ino) == (stdout.st_dev, stdout.st_ino)


@contextlib.contextmanager
def _output_file(given: str) -> Iterator[IO[bytes]]:
    """Write to a temporary name next to the file ``given`` names, renamed over it only
    on success.

    The file is private (0600) like the store's own files: it holds the same data. A
    symbolic link is followed (the file it names is replaced, the link stays). What is
    not a regular file (a FIFO, a device) is written in place: a rename would put a plain
    file where it was. A name under /dev or /proc that leads to a regular file (another
    process's or descriptor's file) is refused: neither replacing nor overwriting it is
    what was meant.
    """
    path = Path(given)
    if path.is_dir():
        raise InvalidInput("--output", f"cannot write {given}: it is a directory")
    if given.endswith(os.sep):
        raise InvalidInput("--output", f"cannot write {given}: a file name cannot end "
                                       f"with {os.sep}")
    in_place = path.exists() and not path.is_file()  # both follow symbolic links
    if not in_place and given.startswith(("/dev/", "/proc/")) and path.exists():
        raise InvalidInput("--output", f"cannot write {given}: it leads to the file "
                                       f"{os.path.realpath(path)}; give that file's own "
                                       "name, or '-' for stdout")
    if not in_place:
        path = Path(os.path.realpath(path))
        if path.parent.exists() and not path.parent.is_dir():
            raise InvalidInput("--output", f"cannot write {given}: {path.parent} is a "
                                           "file, not a directory")
        if not path.parent.is_dir():
            raise InvalidInput("--output", f"cannot write {given}: the directory "
                                           f"{path.parent} does not exist")
    temporary = path if in_place else path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        flags = os.O_WRONLY if in_place else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with open(os.open(temporary, flags, 0o600), "wb") as raw:
            if given.endswith(".gz"):
                with gzip.GzipFile(filename=path.stem, mode="wb", fileobj=raw,
                                   compresslevel=GZIP_LEVEL) as out:
                    yield out
            else:
                yield raw
            raw.flush()
            if not in_place:
                os.fsync(raw.fileno())
        if not in_place:
            os.replace(temporary, path)
    except OSError as exc:  # named as asked for, not after the temporary file
        if exc.strerror is None:
            raise
        raise OSError(exc.errno, exc.strerror, given) from exc
    finally:
        if not in_place:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


def export(
    ctx: typer.Context,
    session_ids: Annotated[list[str] | None, typer.Option(
        "--session", metavar="ID", help="Export only this session (repeatable), with "
        "everything it owns and the blobs it uses.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", help="Export only sessions active since this ISO-8601 "
        "date or time (e.g. 2025-06-01 or 2025-06-01T12:00:00Z; UTC when no zone is given).")
    ] = None,
    concerns: Annotated[list[str] | None, typer.Option(
        "--concern", metavar="NAME", help="Export only this concern (chat, app or "
        "checkpoints; repeatable). Default: all, or only chat with --session/--since.")] = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE", callback=not_empty,
        help="Write to FILE (gzip when it ends in .gz) instead of stdout ('-').")] = "-",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON (on stdout with --output, else on "
        "stderr).")] = False,
) -> None:
    """Write the store, or some sessions, as JSON Lines (stdout by default)."""
    from ..ops.transfer import export_store

    since_value = None if since is None else _since_time(since)
    to_stdout = output == "-" or _is_stdout(output)
    with get_state(ctx).open() as store:
        show = not to_stdout or not sys.stdout.isatty()
        with _progress("exporting", in_bytes=False, show=show) as progress:
            if to_stdout:
                out = sys.stdout.buffer
                summary = export_store(store, out, session_ids=session_ids, since=since_value,
                                       concerns=concerns, progress=progress)
            else:
                with _output_file(output) as out:
                    summary = export_store(store, out, session_ids=session_ids,
                                           since=since_value, concerns=concerns,
                                           progress=progress)
    data = {**summary.to_dict(), "output": output}
    if as_json:
        text = json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n"
    else:
        where = "stdout" if to_stdout else output
        text = (f"{_counts_text(summary.counts, 'Exported')} "
                f"({number(summary.records)} records, {human_size(summary.bytes)}) to {where} "
                f"in {summary.seconds:.1f} s\n")
    stream = sys.stderr if to_stdout else sys.stdout
    stream.write(text)
    stream.flush()


def import_(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        metavar="FILE", callback=not_empty,
        help="An export file (gzip or not), or '-' for stdin.")],
    concerns: Annotated[list[str] | None, typer.Option(
        "--concern", metavar="NAME", help="Import only this concern's records (chat, app or "
        "checkpoints; repeatable). Default: all.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
) -> None:
    """Import an export file; all or nothing, and importing it twice imports it once."""
    from ..ops.transfer import import_store

    with contextlib.ExitStack() as stack:
        if source == "-":
            stream: Any = sys.stdin.buffer
        else:  # opened before the store, so that a mistyped name creates no empty store
            stream = stack.enter_context(open(source, "rb"))  # noqa: SIM115
        store = stack.enter_context(get_state(ctx).open(create=True))
        with _progress("importing", in_bytes=True, show=True) as progress:
            summary = import_store(store, stream, concerns=concerns, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(jsonable(summary.to_dict()), ensure_ascii=False, indent=2)
                         + "\n")
        return
    skipped = sum(summary.skipped.values())
    text = (f"{_counts_text(summary.written, 'Imported')} from "
            f"{'stdin' if source == '-' else source} in {summary.seconds:.1f} s")
    if skipped:
        text += (f"; skipped {number(skipped)} rows already in the store "
                 f"({number(summary.sessions_skipped)} identical sessions)")
    if summary.detached_sessions:
        text += (f"; {number(len(summary.detached_sessions))} sub-agent sessions imported "
                 "without their parent session, which is in neither the file nor the store")
    if summary.index_error:
        text += (f"; indexing them for search failed ({summary.index_error}): they are "
                 "imported, and the next search or `agentkeep optimize` indexes them")
    sys.stdout.write(text + "\n")

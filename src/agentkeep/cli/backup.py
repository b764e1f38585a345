"""``agentkeep backup`` and ``agentkeep restore``: thin layers over :mod:`agentkeep.ops`.

``backup`` writes a new backup directory under DEST (default ``<home>/backups`` on SQLite,
the current directory on PostgreSQL) and prints where it is; ``restore`` verifies a backup
and replaces the store with it. Both show their steps with a spinner on a terminal (on
stderr) and only their report when piped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..concerns import CONCERNS
from ..ops.backup import COMPRESSIONS, BackupResult, Manifest, backup, check_concerns
from ..ops.restore import RestoreResult, restore
from .app import State, get_state, non_empty_path
from .output import console, error_console, human_size, number, print_json, when

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


@contextmanager
def _steps(title: str) -> Iterator[Callable[[str], None] | None]:
    """A progress callback showing each step under a spinner when stderr is a terminal."""
    err = error_console()
    if not err.is_terminal:
        yield None
        return
    with err.status(title) as status:
        yield lambda step: status.update(f"{title}: {step}")


def _concern_table(manifest: Manifest, *, with_files: bool) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2))
    table.add_column("concern")
    table.add_column("revision")
    table.add_column("rows", justify="right")
    table.add_column("messages", justify="right")
    if with_files:
        table.add_column("file")
        table.add_column("size", justify="right")
    for name, entry in manifest.concerns.items():
        messages = entry.tables.get("messages")
        row = [Text(name, style="bold"), Text(entry.revision),
               number(sum(entry.tables.values())),
               "-" if messages is None else number(messages)]
        if with_files:
            row += [Text(entry.file), human_size(manifest.files[entry.file].size)]
        table.add_row(*row)
    return table


def render_backup(result: BackupResult, state: State) -> None:
    manifest = result.manifest
    out = console()
    packed = f", {manifest.compression}" if manifest.compression else ""
    out.print(Text.assemble(("Backed up ", "bold"), (manifest.source, "bold"),
                            f" in {result.seconds:.1f} s to ", (str(result.path), "bold green"),
                            (f" ({human_size(manifest.size)}{packed})", "dim")),
              soft_wrap=True)
    out.print(_concern_table(manifest, with_files=True))
    for path in result.removed:
        out.print(Text(f"Removed the older backup {path} (--keep)", style="dim"),
                  soft_wrap=True)
    for warning in result.warnings:
        out.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    # The store it came from holds data, so restoring into it needs --force.
    out.print(Text(f"Restore it with: {state.command('restore', str(result.path), '--force')}"
                   " (the store it replaces is kept aside)", style="dim"), soft_wrap=True)


def render_restore(result: RestoreResult) -> None:
    manifest = result.manifest
    out = console()
    out.print(Text.assemble(("Restored ", "bold"), (result.location, "bold"),
                            f" in {result.seconds:.1f} s from ",
                            (str(result.backup), "bold green"),
                            (f" (taken {when(manifest.created_at)} from {manifest.source}, "
                             f"agentkeep {manifest.agentkeep_version})", "dim")),
              soft_wrap=True)
    out.print(_concern_table(manifest, with_files=False))
    if result.previous:
        out.print(Text(f"The replaced store is kept in {result.previous}; delete it when "
                       "you no longer need it.", style="dim"), soft_wrap=True)


def backup_command(
    ctx: typer.Context,
    dest: Annotated[Path | None, typer.Argument(
        metavar="DEST", show_default=False, parser=non_empty_path,
        help="Directory to write the backup into (created if missing). Default: "
             "<home>/backups for SQLite, the current directory for PostgreSQL.")] = None,
    compress: Annotated[str | None, typer.Option(
        "--compress", metavar="gzip|zstd",
        help="Compress each file (zstd needs the zstandard package).")] = None,
    concerns: Annotated[str | None, typer.Option(
        "--concern", metavar="NAMES",
        help=f"Only these concerns, comma-separated ({','.join(CONCERNS)}).")] = None,
    keep: Annotated[int | None, typer.Option(
        "--keep", metavar="N", min=1,
        help="Afterwards keep only the newest N backups of this store and these concerns "
             "in DEST.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Back up the store while it is in use: a consistent snapshot of each concern."""
    if compress is not None and compress not in COMPRESSIONS:
        raise typer.BadParameter(f"must be gzip or zstd; got {compress!r}",
                                 param_hint="--compress")
    if concerns is not None:  # before the store is opened
        check_concerns(concerns)
    state = get_state(ctx)
    with state.open() as store, _steps("backing up") as progress:
        result = backup(store, dest, compress=compress, concerns=concerns, keep=keep,
                        progress=progress)
    if as_json:
        print_json(result.to_dict())
        return
    render_backup(result, state)


def restore_command(
    ctx: typer.Context,
    backup_dir: Annotated[Path, typer.Argument(
        metavar="BACKUP", show_default=False, parser=non_empty_path,
        help="The backup directory (as printed by `agentkeep backup`).")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a store that holds data (it is kept aside).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Verify a backup, then replace the store with it (the store is unchanged on error)."""
    state = get_state(ctx)
    config = state.config()
    with _steps("restoring") as progress:
        result = restore(config, backup_dir, force=force, progress=progress)
    if as_json:
        print_json(result.to_dict())
        return
    render_restore(result)

"""Backups of a whole store, taken while the application keeps writing.

A backup is a directory named ``agentkeep-backup-<UTC time>Z`` (plus ``-<concern>`` when
only some concerns were taken) holding one file per concern and ``manifest.json``:

- **SQLite**: ``chat.db``, ``app.db``, ... made with SQLite's online backup API in one
  step, i.e. inside one read transaction of the source. In WAL mode that read sees one
  committed state and never blocks the writers. Each copy is switched to
  ``journal_mode=DELETE`` so that it is one self-contained file, and must pass
  ``PRAGMA integrity_check``, as restore requires: a damaged source fails the backup.
- **PostgreSQL**: ``store.dump``, one ``pg_dump --format=custom`` of every concern's
  schema. Row counts and revisions are read in a ``REPEATABLE READ`` transaction whose
  snapshot pg_dump shares (``--snapshot``), so the manifest describes exactly the dump
  and every concern is taken at the same instant.

With ``compress="gzip"`` or ``"zstd"`` each file is compressed (``chat.db.gz``,
``store.dump.zst``; pg_dump then writes its archive uncompressed). The manifest holds the
agentkeep version, the dialect, each concern's schema revision and row count per table,
and the size and SHA-256 of every file, compressed and not.

Nothing is ever visible under the final name before it is complete: the files are written
into ``.tmp-agentkeep-backup-...`` in the destination, fsynced, and the directory is then
renamed. On any failure the temporary directory is removed.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from ..backend import quote_name as quote
from ..backend.base import postgres_lock_timeout
from ..concerns import CONCERNS
from ..errors import (
    AgentkeepError,
    InvalidInput,
    SchemaOutOfDate,
    StoreBusy,
    StoreCorrupt,
    StoreUnavailable,
)
from ..migrations import STORED_REVISION, check_revision

FORMAT = "agentkeep-backup"
#: The manifest layout this agentkeep writes; a backup with a higher number is refused.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
NAME_PREFIX = "agentkeep-backup-"
TMP_PREFIX = ".tmp-"
#: Where a SQLite store's backups go by default, inside its home directory.
DEFAULT_SQLITE_DIR = "backups"
COMPRESSIONS = {"gzip": ".gz", "zstd": ".zst"}
PG_DUMP_FILE = "store.dump"
# Every SQLite copy is checked as restore checks it, so that a backup that exists can be
# restored; restore reads at most 20 problems too. Measured on the copy (2-core machine):
# +0.03-0.04 s for the demo store (14.5 MB; the copy itself 0.04-0.06 s), +1.4-2.0 s for
# a 1.05 GB chat.db (copy 1.4-2.2 s). quick_check took 1.0-1.3 s there but skips the
# index-against-table comparison restore's integrity_check makes.
VERIFY_COPY = "PRAGMA integrity_check(20)"
# SQLite's primary result codes for a damaged file (FULL: a page number past any file).
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 11, 13, 26
CHUNK = 1 << 20
GZIP_LEVEL = 6  # level 9 is ~3x slower for ~2 % smaller files on database pages
ZSTD_LEVEL = 3

Progress = Callable[[str], None]

# Names the manifest may use: plain file names, lowercase SQL identifiers and revision
# ids. Everything in a manifest is untrusted input, so nothing outside these shapes ever
# reaches a path or an SQL statement.
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_REVISION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Tables of a store, the search index aside (it is derived from `messages`): SQLite's
# virtual tables and their shadow tables are left out of row counts by the caller,
# PostgreSQL's vector table and queue (chat_0003) here.
SQLITE_TABLES = ("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                 "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
POSTGRES_TABLES = ("SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                   "ON n.oid = c.relnamespace WHERE n.nspname = %s "
                   "AND c.relkind IN ('r', 'p') "
                   "AND c.relname NOT IN ('message_search', 'search_backlog') "
                   "ORDER BY c.relname")


# --- the manifest --------------------------------------------------------------------
@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: as stored (``size``, ``sha256``) and as restored
    (``content_size``, ``content_sha256``; equal to the former without compression)."""

    name: str
    size: int
    sha256: str
    compression: str | None
    content_size: int
    content_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "compression": self.compression,
                "content_size": self.content_size, "content_sha256": self.content_sha256}


@dataclass(frozen=True)
class BackupConcern:
    """One concern in a backup: its schema revision, its file and rows per table."""

    name: str
    revision: str
    file: str
    schema: str | None
    tables: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "file": self.file, "schema": self.schema,
                "tables": dict(self.tables)}


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says about a backup; ``path`` is the backup directory."""

    path: Path
    format_version: int
    agentkeep_version: str
    dialect: str
    created_at: datetime
    source: str
    compression: str | None
    tool: str
    concerns: dict[str, BackupConcern]
    files: dict[str, BackupFile]

    @property
    def size(self) -> int:
        """Bytes of the backup's data files (the manifest aside)."""
        return sum(entry.size for entry in self.files.values())

    @property
    def messages(self) -> int | None:
        chat = self.concerns.get("chat")
        return None if chat is None else chat.tables.get("messages")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``manifest.json``."""
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "agentkeep_version": self.agentkeep_version,
            "dialect": self.dialect,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "compression": self.compression,
            "tool": self.tool,
            "concerns": {name: entry.to_dict() for name, entry in self.concerns.items()},
            "files": {name: entry.to_dict() for name, entry in self.files.items()},
        }


@dataclass(frozen=True)
class BackupResult:
    """A finished backup: where it is, its manifest, and the old backups ``keep`` removed."""

    path: Path
    manifest: Manifest
    seconds: float
    removed: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size": self.manifest.size,
                "seconds": round(self.seconds, 3), "removed": [str(p) for p in self.removed],
                "warnings": list(self.warnings), "manifest": self.manifest.to_dict()}


def corrupt(where: Path, problem: str) -> StoreCorrupt:
    return StoreCorrupt(f"{where}: {problem}")


def _field(data: Any, key: str, kind: type | tuple[type, ...], where: Path,
           context: str = "") -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        label = f"{context}{key}"
        raise corrupt(where, f"field {label!r} is missing or malformed; the manifest is "
                              "damaged or was not written by agentkeep")
    return value


def parse_manifest(data: Any, path: Path) -> Manifest:
    """A :class:`Manifest` from the parsed JSON of ``path/manifest.json``.

    Raises:
        StoreCorrupt: a field is missing or has the wrong shape.
        SchemaOutOfDate: the backup was written in a newer backup format.
    """
    where = path / MANIFEST
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise corrupt(where, f"not an agentkeep backup manifest (no \"format\": \"{FORMAT}\")")
    version = _field(data, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise SchemaOutOfDate(f"{path} is in backup format {version}, written by a newer "
                              f"agentkeep ({data.get('agentkeep_version')}); this one reads "
                              f"format {FORMAT_VERSION}: upgrade agentkeep to restore it")
    dialect = _field(data, "dialect", str, where)
    if dialect not in ("sqlite", "postgresql"):
        raise corrupt(where, f"unknown dialect {dialect!r}")
    try:
        created_at = datetime.fromisoformat(_field(data, "created_at", str, where))
    except ValueError:
        raise corrupt(where, "field 'created_at' is not an ISO-8601 time") from None
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=timezone.utc)
    compression = data.get("compression")
    if compression is not None and compression not in COMPRESSIONS:
        raise corrupt(where, f"unknown compression {compression!r}")

    files: dict[str, BackupFile] = {}
    for name, entry in _field(data, "files", dict, where).items():
        if not _FILE_NAME.match(name):
            raise corrupt(where, f"file name {name!r} is not a plain file name")
        context = f"files.{name}."
        file_compression = entry.get("compression") if isinstance(entry, dict) else None
        if file_compression is not None and file_compression not in COMPRESSIONS:
            raise corrupt(where, f"{name}: unknown compression {file_compression!r}")
        digests = [_field(entry, key, str, where, context)
                   for key in ("sha256", "content_sha256")]
        if not all(_SHA256.match(digest) for digest in digests):
            raise corrupt(where, f"{name}: a sha256 is not 64 hex digits")
        sizes = [_field(entry, key, int, where, context) for key in ("size", "content_size")]
        files[name] = BackupFile(name, sizes[0], digests[0], file_compression, sizes[1],
                                 digests[1])

    concerns: dict[str, BackupConcern] = {}
    for name, entry in _field(data, "concerns", dict, where).items():
        if name not in CONCERNS:
            raise SchemaOutOfDate(f"{path} holds the concern {name!r}, which this agentkeep "
                                  f"does not know ({', '.join(CONCERNS)}): it was written "
                                  "by a newer agentkeep; upgrade agentkeep to restore it")
        context = f"concerns.{name}."
        revision = _field(entry, "revision", str, where, context)
        file = _field(entry, "file", str, where, context)
        schema = entry.get("schema")
        tables = _field(entry, "tables", dict, where, context)
        if not _REVISION.match(revision):
            raise corrupt(where, f"{name}: revision {revision!r} is malformed")
        if file not in files:
            raise corrupt(where, f"{name}: its file {file!r} is not listed under 'files'")
        if dialect == "postgresql" and not (isinstance(schema, str)
                                            and _IDENTIFIER.match(schema)):
            raise corrupt(where, f"{name}: 'schema' is missing or not an identifier")
        for table, count in tables.items():
            if not _IDENTIFIER.match(table) or not isinstance(count, int) \
                    or isinstance(count, bool) or count < 0:
                raise corrupt(where, f"{name}: table entry {table!r}: {count!r} is malformed")
        concerns[name] = BackupConcern(name, revision, file, schema, dict(tables))
    if not concerns:
        raise corrupt(where, "the backup holds no concern")
    return Manifest(path=path, format_version=version,
                    agentkeep_version=str(data.get("agentkeep_version", "?")),
                    dialect=dialect, created_at=created_at,
                    source=str(data.get("source", "")), compression=compression,
                    tool=str(data.get("tool", "")), concerns=concerns, files=files)


def read_manifest(backup: str | os.PathLike[str]) -> Manifest:
    """Read and check the shape of a backup's manifest (no file is read but the manifest).

    ``backup`` is the backup directory, or its ``manifest.json``.

    Raises:
        InvalidInput: nothing is at ``backup``, or it is a file other than a manifest.
        StoreCorrupt: the directory has no manifest, or it is not valid JSON or malformed.
        SchemaOutOfDate: the backup was written in a newer backup format.
    """
    path = Path(backup).expanduser()
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    if not path.exists():
        raise InvalidInput("backup", f"nothing at {path}; a backup is the directory that "
                                     "`agentkeep backup` printed")
    if not path.is_dir():
        raise InvalidInput("backup", f"{path} is a file; a backup is a directory holding "
                                     f"{MANIFEST} and one file per concern")
    where = path / MANIFEST
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreCorrupt(f"{path} has no {MANIFEST}: it is not an agentkeep backup, or "
                           "the backup did not finish") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise corrupt(where, f"cannot be read: {reason_of(exc)}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise corrupt(where, f"is not valid JSON ({exc.msg} at line {exc.lineno} column "
                              f"{exc.colno}); the manifest is damaged") from exc
    except RecursionError:
        raise corrupt(where, "is nested too deeply to be a manifest; the manifest is "
                             "damaged") from None
    return parse_manifest(data, path)


# --- checks shared with restore ------------------------------------------------------
def check_revisions(manifest: Manifest) -> None:
    """SchemaOutOfDate when a concern's revision is newer than this agentkeep knows."""
    for name, entry in manifest.concerns.items():
        check_revision(name, entry.revision, f"backup {manifest.path}")


def sqlite_tables(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of a SQLite file, search index (virtual tables) aside."""
    rows = conn.execute(SQLITE_TABLES).fetchall()
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL")]
    counts = {}
    for name, _ in rows:
        if name in virtual or any(name.startswith(v + "_") for v in virtual):
            continue
        counts[name] = conn.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
    return counts


def sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute(STORED_REVISION).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


# --- taking a backup -----------------------------------------------------------------
def backup(store: Any, dest: str | os.PathLike[str] | None = None, *,
           compress: str | None = None, concerns: Iterable[str] | str | None = None,
           keep: int | None = None, progress: Progress | None = None) -> BackupResult:
    """Back up ``store`` into a new directory under ``dest``, safely while others write.

    Args:
        store: an open :class:`agentkeep.Store`.
        dest: the directory that holds the backups (created if missing). Default:
            ``<home>/backups`` for SQLite, the current directory for PostgreSQL.
        compress: None, ``"gzip"`` or ``"zstd"`` (needs the ``zstandard`` package).
        concerns: the concerns to back up (names or ``"chat,app"``); default all.
        keep: afterwards keep only the newest ``keep`` backups of the same store and
            concerns in ``dest`` (recognised by their manifest); others are not touched.
        progress: called with a short description of each step.

    Returns:
        A :class:`BackupResult`; ``result.path`` is the new backup directory.

    Raises:
        InvalidInput: a bad argument. StoreUnavailable: ``dest`` cannot be written (not a
        directory, read-only, disk full) or pg_dump is missing or fails. StoreCorrupt:
        the source database is damaged (SQLite: each copy must pass
        ``integrity_check``, as restore requires). Nothing is left under the final name on
        failure, and the temporary directory is removed.
    """
    started = time.monotonic()
    compress = check_compress(compress)
    names = check_concerns(concerns)
    keep = check_keep(keep)
    backend = store._backend
    backend.ensure_open()
    dialect = backend.dialect
    if dest is None:
        dest = backend.home / DEFAULT_SQLITE_DIR if dialect == "sqlite" else Path.cwd()
    if not isinstance(dest, (str, os.PathLike)) or not str(dest).strip() \
            or "\x00" in str(dest):
        raise InvalidInput("dest", f"must be a directory path; got {dest!r}")
    dest = Path(dest).expanduser()
    prepare_dest(dest)

    created_at = datetime.now(timezone.utc)
    name = NAME_PREFIX + created_at.strftime("%Y%m%dT%H%M%SZ")
    if names != CONCERNS:
        name += "-" + "-".join(names)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=dest))
    except OSError as exc:
        raise write_error(dest, exc) from exc
    try:
        if dialect == "sqlite":
            concern_entries, files, tool = _sqlite_backup(backend, names, tmp, compress,
                                                          progress)
            source = str(backend.home.resolve())
        else:
            concern_entries, files, tool = _postgres_backup(backend, names, tmp, compress,
                                                            progress)
            source = f"{backend.config.describe()} (schemas {backend.config.schema_prefix}_*)"
        from .. import __version__

        manifest = Manifest(path=tmp, format_version=FORMAT_VERSION,
                            agentkeep_version=__version__, dialect=dialect,
                            created_at=created_at, source=source, compression=compress,
                            tool=tool, concerns=concern_entries, files=files)
        _write_manifest(tmp, manifest)
        final = _publish(tmp, dest, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = dataclasses.replace(manifest, path=final)
    removed: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    if keep is not None:
        removed, warnings = prune_backups(dest, manifest, keep)
    return BackupResult(final, manifest, time.monotonic() - started, removed, warnings)


def check_compress(compress: Any) -> str | None:
    if compress is None:
        return None
    if not isinstance(compress, str) or compress not in COMPRESSIONS:
        raise InvalidInput("compress", f"must be 'gzip', 'zstd' or None; got {compress!r}")
    if compress == "zstd" and zstd_module() is None:
        raise InvalidInput("compress", "zstd needs the zstandard package (pip install "
                                       "'agentkeep[zstd]'); use gzip, or no compression")
    return compress


def check_concerns(concerns: Any) -> tuple[str, ...]:
    if concerns is None:
        return CONCERNS
    if isinstance(concerns, str):
        concerns = [part.strip() for part in concerns.split(",")]
    try:
        wanted = [str(item).strip() for item in concerns]
    except TypeError:
        raise InvalidInput("concerns", "must be a list of concern names") from None
    unknown = [item for item in wanted if item not in CONCERNS]
    if unknown or not wanted:
        raise InvalidInput("concerns", f"must name one or more of {', '.join(CONCERNS)}; "
                                       f"got {', '.join(map(repr, unknown or wanted)) or 'none'}")
    return tuple(c for c in CONCERNS if c in wanted)


def check_keep(keep: Any) -> int | None:
    if keep is None:
        return None
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InvalidInput("keep", f"must be a whole number of backups, 1 or more; got {keep!r}")
    return keep


def prepare_dest(dest: Path) -> None:
    """Create the destination directory (0700) or say clearly why it cannot be written."""
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreUnavailable(f"cannot write backups to {dest}: it is a file, not a "
                               "directory") from None
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the backup directory {dest}: "
                               f"{reason_of(exc)}") from exc
    if not dest.is_dir():
        raise StoreUnavailable(f"cannot write backups to {dest}: not a directory")


def _sqlite_backup(backend: Any, names: tuple[str, ...], tmp: Path, compress: str | None,
                   progress: Progress | None):
    concerns: dict[str, BackupConcern] = {}
    files: dict[str, BackupFile] = {}
    for concern in names:
        raw = tmp / f"{concern}.db"
        if progress:
            progress(f"copying and checking {concern}")
        revision, tables = _sqlite_snapshot(backend, concern, raw)
        entry = _finish_file(raw, compress, progress)
        files[entry.name] = entry
        concerns[concern] = BackupConcern(concern, revision, entry.name, None, tables)
    return concerns, files, f"sqlite {sqlite3.sqlite_version}"


def _sqlite_snapshot(backend: Any, concern: str, out: Path) -> tuple[str, dict[str, int]]:
    """Copy one concern's file to ``out`` in one read transaction; its revision and rows."""
    source = backend.path(concern)
    try:
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(out, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise write_error(out.parent.parent, exc) from exc
    try:
        with backend.read(concern) as conn:
            try:
                # pages=-1: the whole file in one step, i.e. one read transaction of the
                # source, so the copy is one committed state even while others write.
                conn.raw.backup(target, pages=-1)
            except sqlite3.Error as exc:
                raise _sqlite_copy_error(source, out.parent.parent, exc) from exc
        try:
            # A backup is one self-contained file: no -wal beside it.
            target.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise _sqlite_copy_error(source, out.parent.parent, exc) from exc
        _verify_copy(target, source, out.parent.parent)
        try:
            revision = sqlite_revision(target)
            tables = sqlite_tables(target)
        except sqlite3.Error as exc:
            raise _sqlite_copy_error(source, out.parent.parent, exc) from exc
    finally:
        target.close()
    if revision is None:
        raise StoreCorrupt(f"{source} has no schema revision; it is not an agentkeep store")
    return revision, tables


def _verify_copy(target: sqlite3.Connection, source: Path, dest: Path) -> None:
    """StoreCorrupt naming ``source`` when its copy fails the check restore makes.

    The copy is a page-for-page image of one committed state of the source, so damage in
    it is damage in the source; checking the copy holds no transaction on the store.
    """
    try:
        problems = [line for (text,) in target.execute(VERIFY_COPY)
                    for line in str(text).splitlines()
                    if line.strip() and line != "ok" and not line.startswith("*** ")]
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (SQLITE_CORRUPT, SQLITE_FULL,
                                                           SQLITE_NOTADB):
            raise _damaged(source, str(exc)) from exc  # FULL: a page number past any file
        raise _sqlite_copy_error(source, dest, exc) from exc
    if problems:
        raise _damaged(source, "; ".join(problems[:3])
                       + ("; ..." if len(problems) > 3 else ""))


def _damaged(source: Path, problem: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"{source} is damaged: its backup copy fails SQLite's integrity_check ({problem}), "
        "so it could never be restored and was not kept. `agentkeep check` lists the "
        "damage; restore an earlier backup (`agentkeep restore`) to repair it")


def _postgres_backup(backend: Any, names: tuple[str, ...], tmp: Path, compress: str | None,
                     progress: Progress | None):
    import psycopg

    pg_dump = find_tool("pg_dump")
    conninfo, env = pg_connection(backend.url)
    schemas = {concern: backend.schema(concern) for concern in names}
    raw = tmp / PG_DUMP_FILE
    where = backend.location(names[0])
    with backend.translated(names[0]):
        conn = psycopg.connect(backend.url, autocommit=True)
    try:
        with backend.translated(names[0]):
            # The dump and the counts share this snapshot (pg_dump --snapshot): the manifest
            # describes exactly what is in the archive, and all concerns are one instant.
            # A table another transaction holds exclusively (ALTER TABLE, VACUUM FULL, a
            # LOCK) is waited for as long as any agentkeep lock: busy_timeout, then StoreBusy.
            timeout = backend.config.busy_timeout
            conn.execute(f"SET lock_timeout = '{postgres_lock_timeout(timeout)}'")
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            described = {c: _describe_postgres(conn, schemas[c], where) for c in names}
        if progress:
            progress(f"running pg_dump ({', '.join(names)})")
        args = [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={raw}",
                f"--lock-wait-timeout={postgres_lock_timeout(timeout)}",
                *[f"--schema={schemas[c]}" for c in names], f"--dbname={conninfo}"]
        if compress:
            args.append("--compress=0")  # compressed once, by us
        result = run_tool(args, env=env, check=False)
        if result.returncode != 0:
            if "could not obtain lock" in result.stderr:
                raise StoreBusy(f"{where}: a table of the store stayed locked by another "
                                f"transaction for {timeout:g} s (busy_timeout); nothing was "
                                "backed up, retry later")
            raise tool_error("pg_dump", result.stderr, tmp.parent)
        version = run_tool([pg_dump, "--version"], env=env, check=False).stdout.strip()
    finally:
        conn.close()
    entry = _finish_file(raw, compress, progress)
    concerns = {c: BackupConcern(c, described[c][0], entry.name, schemas[c], described[c][1])
                for c in names}
    return concerns, {entry.name: entry}, version or "pg_dump"


def _describe_postgres(conn: Any, schema: str, where: str) -> tuple[str, dict[str, int]]:
    tables = [row[0] for row in conn.execute(POSTGRES_TABLES, (schema,)).fetchall()]
    if "alembic_version" not in tables:
        raise StoreCorrupt(f"{where}: schema {schema} has no alembic_version table; "
                           "it is not an agentkeep store")
    counts = {table: conn.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}"
                                  ).fetchone()[0] for table in tables}
    row = conn.execute(f"SELECT version_num FROM {quote(schema)}.alembic_version").fetchone()
    if row is None:
        raise StoreCorrupt(f"{where}: schema {schema} has no schema revision")
    return row[0], counts


def _finish_file(raw: Path, compress: str | None, progress: Progress | None) -> BackupFile:
    """Compress ``raw`` if asked (removing it), fsync, and describe the stored file."""
    try:
        if compress is None:
            content_digest, content_size = sha256_of(raw, with_size=True)
            fsync_path(raw)
            return BackupFile(raw.name, content_size, content_digest, None, content_size,
                              content_digest)
        if progress:
            progress(f"compressing {raw.name} ({compress})")
        out = raw.with_name(raw.name + COMPRESSIONS[compress])
        content = hashlib.sha256()
        content_size = 0
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            sink = _HashingSink(handle)
            writer = _compressor(compress, sink)
            with raw.open("rb") as source:
                while chunk := source.read(CHUNK):
                    content.update(chunk)
                    content_size += len(chunk)
                    writer.write(chunk)
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        raw.unlink()
        return BackupFile(out.name, sink.size, sink.digest.hexdigest(), compress,
                          content_size, content.hexdigest())
    except OSError as exc:
        raise write_error(raw.parent.parent, exc) from exc


def _write_manifest(tmp: Path, manifest: Manifest) -> None:
    path = tmp / MANIFEST
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_path(tmp)
    except OSError as exc:
        raise write_error(tmp.parent, exc) from exc


def _publish(tmp: Path, dest: Path, name: str) -> Path:
    """Rename the finished directory to its final name (never over another backup)."""
    for attempt in range(1, 100):
        final = dest / (name if attempt == 1 else f"{name}-{attempt}")
        if final.exists():
            continue
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise write_error(dest, exc) from exc
        try:
            fsync_path(dest)
        except OSError as exc:
            shutil.rmtree(final, ignore_errors=True)
            raise write_error(dest, exc) from exc
        return final
    raise StoreUnavailable(f"cannot name the backup in {dest}: {name} and 98 variants exist")


def list_backups(dest: str | os.PathLike[str]) -> list[Manifest]:
    """The agentkeep backups directly in ``dest`` (those with a readable manifest),
    newest first. Read-only."""
    found = []
    try:
        entries = list(Path(dest).iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            found.append(read_manifest(entry))
        except AgentkeepError:
            continue
    found.sort(key=lambda m: (m.created_at, m.path.name), reverse=True)
    return found


def prune_backups(dest: Path, newest: Manifest, keep: int
                  ) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """Remove all but the newest ``keep`` backups of ``newest``'s store and concerns.

    Backups of another store, or of another set of concerns (a chat-only schedule next
    to a full one), are never counted nor removed. Each removal first renames the
    directory to a hidden name, so a crash never leaves a half-deleted backup that still
    looks like one.
    """
    group = (newest.dialect, newest.source, tuple(sorted(newest.concerns)))
    others = [m for m in list_backups(dest) if m.path != newest.path
              and (m.dialect, m.source, tuple(sorted(m.concerns))) == group]
    removed, warnings = [], []
    for manifest in others[keep - 1:]:
        doomed = manifest.path.with_name(f".tmp-agentkeep-delete-{manifest.path.name}")
        try:
            os.rename(manifest.path, doomed)
            shutil.rmtree(doomed)
        except OSError as exc:
            warnings.append(f"could not remove the old backup {manifest.path}: {reason_of(exc)}")
            continue
        removed.append(manifest.path)
    return tuple(removed), tuple(warnings)


# --- PostgreSQL client tools ---------------------------------------------------------
def find_tool(name: str) -> str:
    """The path of a PostgreSQL client program, or StoreUnavailable saying how to get it."""
    path = shutil.which(name)
    if path is None:
        raise StoreUnavailable(
            f"{name} was not found on PATH; agentkeep uses PostgreSQL's own {name} for "
            "PostgreSQL backups: install the PostgreSQL client tools of your server's "
            "version (Debian/Ubuntu: apt install postgresql-client) or add their "
            "directory to PATH")
    return path


def pg_connection(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo string without the password, and an environment that carries it, so the
    password never shows in the process list."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def run_tool(args: list[str], *, env: dict[str, str] | None, check: bool = True,
             stdin: Any = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, env=env, stdin=stdin if stdin is not None
                              else subprocess.DEVNULL, capture_output=True, text=True,
                              check=check)
    except OSError as exc:
        raise StoreUnavailable(f"cannot run {args[0]}: {reason_of(exc)}") from exc


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return (errors or lines or ["no message"])[-1]


def tool_error(tool: str, stderr: str, dest: Path) -> AgentkeepError:
    """The agentkeep error for a failed pg_dump run, by what its stderr says."""
    line = last_line(stderr)
    lowered = stderr.lower()
    if "no space left" in lowered or "could not write" in lowered \
            or "read-only file system" in lowered or "permission denied" in lowered:
        return StoreUnavailable(f"cannot write the backup to {dest}: {line}")
    if "connection" in lowered or "could not connect" in lowered \
            or "version mismatch" in lowered or "password" in lowered:
        return StoreUnavailable(f"{tool} failed: {line}")
    return AgentkeepError(f"{tool} failed writing a backup to {dest}: {line}")


# --- small helpers -------------------------------------------------------------------
def reason_of(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def write_error(dest: Path, exc: BaseException, *, what: str = "the backup to"
                ) -> StoreUnavailable:
    reason = reason_of(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        reason += " (the disk is full)"
    return StoreUnavailable(f"cannot write {what} {dest}: {reason}")


def _sqlite_copy_error(source: Path, dest: Path, exc: sqlite3.Error) -> AgentkeepError:
    text = str(exc)
    lowered = text.lower()
    if "full" in lowered:
        return StoreUnavailable(f"cannot write the backup to {dest}: {text} (no room left)")
    if any(word in lowered for word in ("readonly", "read-only", "unable to open",
                                        "disk i/o")):
        return StoreUnavailable(f"cannot write the backup to {dest}: {text}")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StoreCorrupt(f"{source} is damaged: {text}")
    return AgentkeepError(f"backing up {source} to {dest} failed: {text}")


def decode_error(source: Path, compression: str | None, exc: BaseException) -> StoreCorrupt:
    if compression is None:
        return corrupt(source, f"cannot be read: {reason_of(exc)}")
    if isinstance(exc, EOFError):
        return corrupt(source, f"is a truncated {compression} file: {exc}")
    return corrupt(source, f"is not a valid {compression} file: {reason_of(exc)}")


def sha256_of(path: Path, *, with_size: bool = False):
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return (digest.hexdigest(), size) if with_size else digest.hexdigest()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def zstd_module():
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


class _HashingSink:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.handle.flush()


def _compressor(compress: str, sink: _HashingSink) -> Any:
    if compress == "gzip":
        # filename="" and mtime=0: the stored bytes depend on the content only.
        return gzip.GzipFile(filename="", mode="wb", fileobj=sink,  # type: ignore[arg-type]
                             compresslevel=GZIP_LEVEL, mtime=0)
    zstd = zstd_module()
    assert zstd is not None
    return zstd.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(sink, closefd=False)


def open_decompressed(path: Path, compression: str | None) -> Any:
    if compression is None:
        return path.open("rb")
    if compression == "gzip":
        return gzip.open(path, "rb")
    zstd = zstd_module()
    if zstd is None:
        raise InvalidInput("backup", f"{path} is compressed with zstd; install the "
                                     "zstandard package (pip install 'agentkeep[zstd]') "
                                     "to restore it")
    handle = path.open("rb")
    return _ZstdReader(zstd.ZstdDecompressor().stream_reader(handle), handle)


class _ZstdReader:
    def __init__(self, reader: Any, handle: BinaryIO) -> None:
        self.reader, self.handle = reader, handle

    def read(self, size: int) -> bytes:
        return self.reader.read(size)

    def __enter__(self) -> _ZstdReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reader.close()
        self.handle.close()

"""Restoring a backup: verify everything first, swap the store in one step, undo on failure.

Order of work, the same on both backends:

1. Read the manifest; refuse a backup of the other dialect or with a schema revision
   this agentkeep does not know (``SchemaOutOfDate``).
2. Look at the target: refuse when another process is using it (``StoreBusy``) and,
   without ``force``, when it holds data (``Conflict``).
3. Check every file's size and SHA-256, then unpack it (decompressing) and check the
   copy: SQLite ``integrity_check``, schema revision and rows per table against the
   manifest; PostgreSQL ``pg_restore --list``.
4. Swap, so that the store is either the old one or the restored one:

   - **SQLite**: each checked copy is staged in ``<home>/.restore-new-*`` (same file
     system), the current files are hard-linked into ``<home>/.restore-old-<time>/``
     and their ``-wal``/``-shm`` moved there, then the staged copy is renamed over the
     live name (one atomic ``rename`` per concern; there is never a moment without a
     ``chat.db``). A failure puts every file back.
   - **PostgreSQL**: one ``psql --single-transaction`` run locks the concern schemas'
     tables, renames each schema to ``<schema>_old_<time>``, runs the archive's script
     (``pg_restore --file=-``, streamed), renames the restored schemas to the target's
     names (so a backup taken under another schema prefix restores fine), checks row
     counts and revisions, and commits. Any error rolls the whole transaction back.
     psql gets the end of its input only once pg_restore has exited cleanly, so a
     damaged archive can never commit half a restore.

The replaced store is kept (``.restore-old-<time>/`` or the ``_old_<time>`` schemas) when
it held data, and named in the result; delete it when you no longer need it.

Detecting other users of a SQLite store: a non-blocking ``BEGIN IMMEDIATE`` on each file
finds a process in a write transaction, and on Linux ``/proc/*/fd`` finds every process
(of the same user, or any as root) that has a file open, idle readers included. On other
systems idle readers are not detected. On PostgreSQL, sessions holding a lock on a table
of the store are refused; idle sessions are not detected.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..chat import sql as chat_sql
from ..config import StoreConfig, resolve
from ..errors import (
    AgentkeepError,
    Conflict,
    InvalidInput,
    StoreBusy,
    StoreUnavailable,
)
from .backup import (
    CHUNK,
    MANIFEST,
    POSTGRES_TABLES,
    BackupConcern,
    Manifest,
    Progress,
    check_revisions,
    corrupt,
    decode_error,
    find_tool,
    fsync_path,
    last_line,
    open_decompressed,
    pg_connection,
    quote,
    read_manifest,
    reason_of,
    run_tool,
    sha256_of,
    sqlite_revision,
    sqlite_tables,
    write_error,
    zstd_module,
)

OLD_PREFIX = ".restore-old-"
NEW_PREFIX = ".restore-new-"
#: How long the PostgreSQL restore waits for other sessions' table locks.
PG_LOCK_TIMEOUT = "5s"

# Sessions other than ours holding a lock on a table of the given schemas.
PG_LOCK_HOLDERS = (
    "SELECT DISTINCT l.pid, COALESCE(a.application_name, ''), COALESCE(a.state, '') "
    "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE n.nspname = ANY(%s) AND l.pid <> pg_backend_pid() ORDER BY 1"
)
PG_SCHEMAS = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)"


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore. ``previous`` is where the replaced store was kept (a directory
    or PostgreSQL schemas), None when it held no data (then it was not kept)."""

    location: str
    backup: Path
    manifest: Manifest
    concerns: tuple[str, ...]
    previous: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "backup": str(self.backup),
                "dialect": self.manifest.dialect, "concerns": list(self.concerns),
                "created_at": self.manifest.created_at.isoformat(),
                "revisions": {name: entry.revision
                              for name, entry in self.manifest.concerns.items()},
                "rows": {name: dict(entry.tables)
                         for name, entry in self.manifest.concerns.items()},
                "previous": self.previous, "seconds": round(self.seconds, 3)}


def restore(target: Any, backup: str | os.PathLike[str], *, force: bool = False,
            progress: Progress | None = None, **options: Any) -> RestoreResult:
    """Replace the store at ``target`` with the backup at ``backup``.

    Everything about the backup is verified before the store is touched, and the store is
    either left exactly as it was or fully restored. The concerns the backup holds are
    replaced; other concerns are left alone. An older schema revision is fine (the next
    ``agentkeep.open()`` migrates it).

    Args:
        target: where to restore, as for :func:`agentkeep.open` (a directory, a
            ``postgresql://`` URL, None for the default), a ``StoreConfig``, or an open
            ``Store`` (which is closed first: its connections would go on using the
            replaced files).
        backup: the backup directory (or its ``manifest.json``).
        force: replace a store that holds data (it is kept aside, see the result).
        progress: called with a short description of each step.
        **options: ``schema_prefix`` and the other options of :func:`agentkeep.open`.

    Returns:
        A :class:`RestoreResult`.

    Raises:
        InvalidInput: a bad argument, or a backup of the other backend.
        StoreCorrupt: the backup is incomplete or damaged (the message names the file).
        SchemaOutOfDate: the backup is from a newer agentkeep.
        Conflict: the store holds data and ``force`` is false.
        StoreBusy: another process is using the store.
        StoreUnavailable: the store cannot be written, or pg_restore/psql is missing.
    """
    started = time.monotonic()
    if not isinstance(force, bool):
        raise InvalidInput("force", f"must be True or False; got {force!r}")
    config = _target_config(target, options)
    manifest = read_manifest(backup)
    if manifest.dialect != config.dialect:
        raise InvalidInput("backup", f"{manifest.path} is a {manifest.dialect} backup and "
                                     f"the store at {config.describe()} is {config.dialect}; "
                                     "a backup restores into the same kind of store (use "
                                     "export and import to move between backends)")
    check_revisions(manifest)
    packed = [f"{manifest.path / name}" for name, entry in manifest.files.items()
              if entry.compression == "zstd"]
    if packed and zstd_module() is None:
        raise InvalidInput("backup", f"{packed[0]} is compressed with zstd; install the "
                                     "zstandard package (pip install 'agentkeep[zstd]') "
                                     "to restore it")
    if config.dialect == "sqlite":
        previous = _restore_sqlite(config, manifest, force, progress)
        location = str(config.home)
    else:
        previous = _restore_postgres(config, manifest, force, progress)
        location = f"{config.describe()} (schemas {config.schema_prefix}_*)"
    return RestoreResult(location, manifest.path, manifest, tuple(manifest.concerns),
                         previous, time.monotonic() - started)


def _target_config(target: Any, options: dict[str, Any]) -> StoreConfig:
    from ..store import Store

    if isinstance(target, (Store, StoreConfig)):
        if options:
            raise InvalidInput("options", "give options only with a path or URL target")
        if isinstance(target, Store):
            target.close()
            return target.config
        return target
    return resolve(target, **options)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# --- verification --------------------------------------------------------------------
def check_files(manifest: Manifest, progress: Progress | None = None) -> None:
    """Every file of the manifest is there with its size and SHA-256 (StoreCorrupt if not)."""
    for name, entry in manifest.files.items():
        path = manifest.path / name
        if progress:
            progress(f"checking {name}")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise corrupt(path, "missing: the manifest lists it, the backup lacks it") from None
        except OSError as exc:
            raise corrupt(path, f"cannot be read: {reason_of(exc)}") from exc
        if not path.is_file():
            raise corrupt(path, "is not a file (the manifest lists a file of "
                                f"{entry.size} bytes)")
        if size != entry.size:
            state = "truncated" if size < entry.size else "longer than written"
            raise corrupt(path, f"{state}: {size} bytes, the manifest says {entry.size}")
        try:
            digest = sha256_of(path)
        except OSError as exc:
            raise corrupt(path, f"cannot be read: {reason_of(exc)}") from exc
        if digest != entry.sha256:
            raise corrupt(path, f"damaged: its SHA-256 is {digest}, the manifest says "
                                 f"{entry.sha256}")


def stage_file(manifest: Manifest, name: str, out: Path, *, into: Path) -> None:
    """Write the content of backup file ``name`` (decompressed) to ``out``, mode 0600, fsynced.

    ``into`` is the directory named when ``out`` cannot be written.

    Raises:
        StoreCorrupt: the file does not decompress or its content does not match.
        StoreUnavailable: ``out`` cannot be written (no room, read-only).
    """
    entry = manifest.files[name]
    source = manifest.path / name
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise write_error(into, exc, what=f"{name} into") from exc
    with os.fdopen(fd, "wb") as sink:
        try:
            reader = open_decompressed(source, entry.compression)
        except OSError as exc:
            raise corrupt(source, f"cannot be read: {reason_of(exc)}") from exc
        with reader:
            while True:
                try:
                    chunk = reader.read(CHUNK)
                except Exception as exc:  # noqa: BLE001 - every decoder error means "damaged"
                    raise decode_error(source, entry.compression, exc) from exc
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
                try:
                    sink.write(chunk)
                except OSError as exc:
                    raise write_error(into, exc, what=f"{name} into") from exc
        try:
            sink.flush()
            os.fsync(sink.fileno())
        except OSError as exc:
            raise write_error(into, exc, what=f"{name} into") from exc
    if size != entry.content_size or digest.hexdigest() != entry.content_sha256:
        raise corrupt(source, f"its content ({size} bytes) does not match the manifest "
                               f"({entry.content_size} bytes, SHA-256 {entry.content_sha256})")


def check_sqlite_copy(path: Path, concern: BackupConcern, shown: Path) -> None:
    """A staged SQLite file passes ``integrity_check`` and matches its manifest entry.

    ``shown`` is the backup file named in errors.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise corrupt(shown, f"cannot be opened as SQLite: {exc}") from exc
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise corrupt(shown, "fails SQLite's integrity_check: " + "; ".join(problems[:5]))
        revision = sqlite_revision(conn)
        if revision != concern.revision:
            raise corrupt(shown, f"is at {concern.name} revision {revision!r}, the manifest "
                                  f"says {concern.revision!r}")
        counts = sqlite_tables(conn)
    except sqlite3.Error as exc:
        raise corrupt(shown, f"is not a valid SQLite database: {exc}") from exc
    finally:
        conn.close()
    for table, expected in concern.tables.items():
        if counts.get(table) != expected:
            raise corrupt(shown, f"table {table} has {counts.get(table)} rows, the manifest "
                                  f"says {expected}")


def check_pg_archive(path: Path, shown: Path, *, full: bool = False) -> None:
    """``pg_restore --list`` reads the archive's table of contents; with ``full`` the whole
    archive is read (``pg_restore --file=/dev/null``). StoreCorrupt if it cannot be."""
    how = ["--file", os.devnull] if full else ["--list"]
    result = run_tool([find_tool("pg_restore"), *how, str(path)], env=None, check=False)
    if result.returncode != 0:
        raise corrupt(shown, "is not a readable pg_dump archive: "
                             f"{last_line(result.stderr)}")


def verify_backup(backup: str | os.PathLike[str], *, progress: Progress | None = None,
                  workdir: str | os.PathLike[str] | None = None) -> Manifest:
    """Check a backup without restoring it: read-only; returns its manifest.

    Reads the manifest, checks revisions, sizes and checksums, then decompresses each
    file into a temporary directory (under ``workdir``) and runs SQLite's
    ``integrity_check`` and compares row counts (SQLite) or reads the archive's table of
    contents with ``pg_restore --list`` (PostgreSQL).

    Raises:
        InvalidInput, StoreCorrupt, SchemaOutOfDate; StoreUnavailable when the temporary
        copy cannot be written or pg_restore is missing.
    """
    manifest = read_manifest(backup)
    check_revisions(manifest)
    check_files(manifest, progress)
    with tempfile.TemporaryDirectory(prefix="agentkeep-verify-", dir=workdir) as work:
        for concern in manifest.concerns.values():
            staged = Path(work) / concern.file
            if not staged.exists():
                if progress:
                    progress(f"verifying {concern.file}")
                stage_file(manifest, concern.file, staged, into=Path(work))
                if manifest.dialect == "postgresql":
                    check_pg_archive(staged, manifest.path / concern.file, full=True)
            if manifest.dialect == "sqlite":
                check_sqlite_copy(staged, concern, manifest.path / concern.file)
    return manifest


# --- SQLite --------------------------------------------------------------------------
def _restore_sqlite(config: StoreConfig, manifest: Manifest, force: bool,
                    progress: Progress | None) -> str | None:
    from ..backend.sqlite import prepare_home

    home = config.home
    assert home is not None
    if home.exists() and not home.is_dir():
        prepare_home(home)  # raises its clear "is a file" error
    targets = {concern: home / f"{concern}.db" for concern in manifest.concerns}
    holding = _inspect_sqlite(targets, force)
    check_files(manifest, progress)
    created = not home.exists()
    prepare_home(home)
    try:
        staging = Path(tempfile.mkdtemp(prefix=NEW_PREFIX, dir=home))
    except OSError as exc:
        raise write_error(home, exc, what="into") from exc
    ok = False
    try:
        for concern, entry in manifest.concerns.items():
            staged = staging / f"{concern}.db"
            if progress:
                progress(f"unpacking {entry.file}")
            stage_file(manifest, entry.file, staged, into=home)
            if progress:
                progress(f"checking {concern}")
            check_sqlite_copy(staged, entry, manifest.path / entry.file)
        # Again, right before the swap: the checks above may have taken a while.
        holding = _inspect_sqlite(targets, force)
        if progress:
            progress("replacing the store")
        previous = _swap_sqlite(home, targets, staging, holding)
        ok = True
        return previous
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not ok:
            try:
                home.rmdir()  # only if empty: this restore made it
            except OSError:
                pass


def _inspect_sqlite(targets: dict[str, Path], force: bool) -> dict[str, bool]:
    """Whether each target file holds data; StoreBusy if another process uses one,
    Conflict if one holds data and ``force`` is false."""
    holding = {concern: _probe_sqlite(path) for concern, path in targets.items()}
    for pid, name, path in processes_using(list(targets.values())):
        if pid == os.getpid():
            raise StoreBusy(f"this process has {path} open (an agentkeep.Store on the "
                            "store?): close it before restoring into the store")
        raise StoreBusy(f"{path} is open in another process (pid {pid}, {name}): stop "
                        "the application that uses the store, then restore again")
    full = [concern for concern, has_data in holding.items() if has_data]
    if full and not force:
        home = next(iter(targets.values())).parent
        raise Conflict(f"the store at {home} already holds data ({', '.join(full)}); "
                       "restore with --force (force=True) to replace it; the current files "
                       f"are then kept in {home / OLD_PREFIX}<time>/")
    return holding


def _probe_sqlite(path: Path) -> bool:
    """Whether ``path`` holds rows (or is unreadable); StoreBusy if a writer holds it.

    A non-blocking ``BEGIN IMMEDIATE`` fails while another connection has a write
    transaction open; on success the WAL is checkpointed, so that every committed row is
    in the main file before it is moved aside.
    """
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return True
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            lowered = str(exc).lower()
            if "locked" in lowered or "busy" in lowered:
                raise StoreBusy(f"{path} is being written by another process (it holds a "
                                "write transaction): stop the application that uses the "
                                "store, then restore again") from exc
            return True  # not a database, damaged: replaceable only with force
        try:
            tables = [name for name in sqlite_tables(conn) if name != "alembic_version"]
            has_data = any(conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(name)})"
                                        ).fetchone()[0] for name in tables)
        except sqlite3.Error:
            has_data = True
        finally:
            conn.execute("ROLLBACK")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        return has_data
    finally:
        conn.close()


def processes_using(paths: list[Path]) -> list[tuple[int, str, Path]]:
    """(pid, program, file) of each process that has one of ``paths`` (or its -wal or
    -shm) open, from ``/proc/*/fd``; empty where there is no /proc. Read-only."""
    if not os.path.isdir("/proc/self/fd"):
        return []
    wanted: dict[str, Path] = {}
    for path in paths:
        for suffix in ("", "-wal", "-shm"):
            wanted[os.path.realpath(f"{path}{suffix}")] = path
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fd_dir = f"/proc/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link in wanted:
                try:
                    with open(f"/proc/{entry.name}/comm", encoding="utf-8") as handle:
                        name = handle.read().strip()
                except OSError:
                    name = "?"
                found.append((int(entry.name), name, wanted[link]))
                break
    return found


def _swap_sqlite(home: Path, targets: dict[str, Path], staging: Path,
                 holding: dict[str, bool]) -> str | None:
    """Put the staged files in place; keep the old ones in ``.restore-old-<time>/``."""
    try:
        old = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{_stamp()}-", dir=home))
    except OSError as exc:
        raise write_error(home, exc, what="into") from exc
    undo: list[Callable[[], None]] = []
    try:
        for concern, db in targets.items():
            kept = old / db.name
            existed = db.exists()
            if existed:
                undo.append(_set_aside(db, kept))
                for suffix in ("-wal", "-shm"):
                    side = db.with_name(db.name + suffix)
                    if side.exists():
                        os.link(side, old / side.name)
                        os.unlink(side)  # a stale -wal must never meet the new file
                        undo.append(lambda s=side, k=old / side.name: os.link(k, s))
            os.replace(staging / f"{concern}.db", db)
            undo.append(lambda d=db, k=kept, e=existed: os.replace(k, d) if e
                        else os.unlink(d))
        fsync_path(home)
        fsync_path(old)
    except BaseException as exc:
        for action in reversed(undo):
            try:
                action()
            except OSError:
                pass
        shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(home, exc, what="into") from exc
        raise
    if not any(holding.values()):
        shutil.rmtree(old, ignore_errors=True)  # nothing worth keeping
        return None
    return str(old)


def _set_aside(db: Path, kept: Path) -> Callable[[], None]:
    """Keep ``db`` as ``kept``: a hard link, so the live name never disappears (a rename
    where links are not supported). Returns how to undo it."""
    try:
        os.link(db, kept)
        return lambda: None
    except OSError:
        os.rename(db, kept)
        return lambda: os.rename(kept, db) if kept.exists() and not db.exists() else None


# --- PostgreSQL ----------------------------------------------------------------------
def _restore_postgres(config: StoreConfig, manifest: Manifest, force: bool,
                      progress: Progress | None) -> str | None:
    import psycopg

    pg_restore, psql = find_tool("pg_restore"), find_tool("psql")
    files = {entry.file for entry in manifest.concerns.values()}
    if len(files) != 1:
        raise corrupt(manifest.path / MANIFEST, "a PostgreSQL backup has one archive for "
                                                "all its concerns")
    (file,) = files
    shown = manifest.path / file
    prefix = config.schema_prefix
    targets = {concern: f"{prefix}_{concern}" for concern in manifest.concerns}
    where = f"{config.describe()} (schemas {prefix}_*)"
    try:
        conn = psycopg.connect(config.url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {config.describe()}: "
                               f"{last_line(str(exc))}") from exc
    try:
        with _pg_errors(where):
            _inspect_postgres(conn, targets, force, where)
        check_files(manifest, progress)
        with tempfile.TemporaryDirectory(prefix="agentkeep-restore-") as work:
            archive = shown
            if manifest.files[file].compression is not None:
                if progress:
                    progress(f"unpacking {file}")
                archive = Path(work) / "store.dump"
                stage_file(manifest, file, archive, into=Path(work))
            if progress:
                progress("checking the archive")
            check_pg_archive(archive, shown)
            with _pg_errors(where):
                tables, full = _inspect_postgres(conn, targets, force, where)
                pre, post, kept = _pg_plan(conn, manifest, targets, tables, full)
            if progress:
                progress("restoring (one transaction)")
            _pg_run(pg_restore, psql, archive, config.url, pre, post, shown, where)
    finally:
        conn.close()
    return ", ".join(kept) or None


@contextmanager
def _pg_errors(where: str) -> Iterator[None]:
    """Turn psycopg errors of the planning queries into agentkeep errors."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise StoreUnavailable(f"{where}: {last_line(str(exc))}") from exc


def _inspect_postgres(conn: Any, targets: dict[str, str], force: bool, where: str
                      ) -> tuple[dict[str, list[str] | None], list[str]]:
    """The tables of each target schema (None when it does not exist), and the concerns
    whose schema holds rows.

    Raises:
        StoreBusy: another session holds a lock on one of those tables.
        Conflict: a target schema holds rows and ``force`` is false.
    """
    names = list(targets.values())
    existing = {row[0] for row in conn.execute(PG_SCHEMAS, (names,)).fetchall()}
    state: dict[str, list[str] | None] = {}
    full = []
    for concern, schema in targets.items():
        if schema not in existing:
            state[concern] = None
            continue
        tables = [row[0] for row in conn.execute(POSTGRES_TABLES, (schema,)).fetchall()]
        state[concern] = tables
        if any(conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(schema)}.{quote(table)})"
                            ).fetchone()[0] for table in tables if table != "alembic_version"):
            full.append(concern)
    holders = conn.execute(PG_LOCK_HOLDERS, (names,)).fetchall()
    if holders:
        sessions = ", ".join(f"pid {pid}" + (f" ({app})" if app else "") +
                             (f" {status}" if status else "") for pid, app, status in holders)
        raise StoreBusy(f"{where} is in use: session(s) {sessions} hold locks on its tables; "
                        "stop the application that uses the store, then restore again")
    if full and not force:
        raise Conflict(f"the store at {where} already holds data ({', '.join(full)}); "
                       "restore with --force (force=True) to replace it; the current "
                       "schemas are then kept as <schema>_old_<time>")
    return state, full


def _free_name(conn: Any, base: str, suffix: str, taken: set[str]) -> str:
    """``base + suffix`` cut to PostgreSQL's 63 bytes, made unique among schemas and the
    names already ``taken`` by the same plan (cut, two concerns' names can meet: a
    41-character prefix left ``<prefix>_ch_old_<time>`` for both chat and checkpoints)."""
    for attempt in range(100):
        tail = suffix if attempt == 0 else f"{suffix}_{attempt}"
        name = base[:63 - len(tail)] + tail
        if name not in taken and conn.execute(PG_SCHEMAS, ([name],)).fetchone() is None:
            taken.add(name)
            return name
    raise StoreUnavailable(f"cannot find a free schema name for {base}{suffix}")


def _pg_plan(conn: Any, manifest: Manifest, targets: dict[str, str],
             state: dict[str, list[str] | None], full: list[str]
             ) -> tuple[str, str, list[str]]:
    """The SQL run before and after the archive's script in the one transaction, and the
    schemas the replaced store is kept in."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    # The archive's search configuration refers to agentkeep's unaccent dictionary: have
    # it on this server when it can be had (docs/architecture.md, "Search").
    pre = [f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT}'", chat_sql.ENSURE_UNACCENT_POSTGRES]
    post: list[str] = []
    kept: list[str] = []
    taken: set[str] = set()
    for concern, target in targets.items():
        source = manifest.concerns[concern].schema
        assert source is not None
        tables = state[concern]
        if tables is not None:
            if tables:
                names = ", ".join(f"{quote(target)}.{quote(table)}" for table in tables)
                pre.append(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            old = _free_name(conn, target, f"_old_{stamp}", taken)
            pre.append(f"ALTER SCHEMA {quote(target)} RENAME TO {quote(old)}")
            if concern in full:
                kept.append(old)
            else:
                post.append(f"DROP SCHEMA {quote(old)} CASCADE")
        if source != target:
            # The archive creates the backup's own schema names; move any schema of
            # that name out of the way for the length of the transaction.
            if conn.execute(PG_SCHEMAS, ([source],)).fetchone() is not None:
                parked = _free_name(conn, source, f"_park_{stamp}", taken)
                pre.append(f"ALTER SCHEMA {quote(source)} RENAME TO {quote(parked)}")
                post.insert(0, f"ALTER SCHEMA {quote(parked)} RENAME TO {quote(source)}")
            post.insert(0, f"ALTER SCHEMA {quote(source)} RENAME TO {quote(target)}")
    post.append(_pg_checks(manifest, targets))
    return ";\n".join(pre) + ";", ";\n".join(post) + ";", kept


def _pg_checks(manifest: Manifest, targets: dict[str, str]) -> str:
    """A DO block that fails the transaction unless rows and revisions match the manifest.

    Names and revisions come from the manifest, whose parser admits only identifiers and
    revision ids, and are quoted here all the same.
    """
    lines = ["DO $agentkeep$", "DECLARE n bigint; r text;", "BEGIN"]
    for concern, target in targets.items():
        entry = manifest.concerns[concern]
        for table, expected in entry.tables.items():
            label = f"{target}.{table}".replace("'", "")
            lines += [f"  SELECT count(*) INTO n FROM {quote(target)}.{quote(table)};",
                      f"  IF n <> {int(expected)} THEN RAISE EXCEPTION 'agentkeep-restore: "
                      f"table {label} has % rows, the manifest says {int(expected)}', n; "
                      "END IF;"]
        revision = entry.revision.replace("'", "")
        lines += [f"  SELECT string_agg(version_num, ',') INTO r FROM "
                  f"{quote(target)}.alembic_version;",
                  f"  IF r IS DISTINCT FROM '{revision}' THEN RAISE EXCEPTION "
                  f"'agentkeep-restore: {target} is at revision %, the manifest says "
                  f"{revision}', r; END IF;"]
    lines += ["END", "$agentkeep$"]
    return "\n".join(lines)


def _pg_run(pg_restore: str, psql: str, archive: Path, url: str, pre: str, post: str,
            shown: Path, where: str) -> None:
    """Stream the archive's SQL through psql in one transaction, with ``pre`` and ``post``."""
    conninfo, env = pg_connection(url)
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        try:
            producer = subprocess.Popen(
                [pg_restore, "--no-owner", "--no-privileges", "--file=-", str(archive)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=restore_err, env=env)
        except OSError as exc:
            raise StoreUnavailable(f"cannot run {pg_restore}: {reason_of(exc)}") from exc
        try:
            consumer = subprocess.Popen(
                [psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                 "--single-transaction", f"--command={pre}", "--file=-",
                 f"--command={post}", f"--dbname={conninfo}"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=env)
        except OSError as exc:
            producer.kill()
            producer.wait()
            raise StoreUnavailable(f"cannot run {psql}: {reason_of(exc)}") from exc
        assert producer.stdout is not None and consumer.stdin is not None
        psql_died = False
        try:
            while chunk := producer.stdout.read(CHUNK):
                try:
                    consumer.stdin.write(chunk)
                except BrokenPipeError:
                    psql_died = True
                    break
        except BaseException:
            consumer.kill()  # the end of input never came: nothing is committed
            producer.kill()
            producer.wait()
            consumer.wait()
            raise
        if psql_died:
            producer.kill()
        producer.stdout.close()
        restore_code = producer.wait()
        if restore_code != 0 and not psql_died:
            consumer.kill()  # never let psql reach COMMIT with a partial script
            consumer.wait()
            raise corrupt(shown, "pg_restore cannot read it: " + last_line(_text(restore_err)))
        try:
            consumer.stdin.close()
        except BrokenPipeError:
            pass
        if consumer.wait() != 0:
            raise _psql_error(_text(psql_err), shown, where)


def _text(handle: Any) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


def _psql_error(stderr: str, shown: Path, where: str) -> AgentkeepError:
    line = last_line(stderr)
    line = line.split("ERROR:", 1)[-1].strip()
    lowered = stderr.lower()
    unchanged = "; the store was not changed"
    if "agentkeep-restore:" in stderr:
        detail = line.split("agentkeep-restore:", 1)[-1].strip()
        return corrupt(shown, f"the restored data does not match the manifest ({detail})"
                       + unchanged)
    if "lock timeout" in lowered or "could not obtain lock" in lowered:
        return StoreBusy(f"{where} is in use by another session ({line}); stop the "
                         "application that uses the store, then restore again" + unchanged)
    if "no space left" in lowered or "could not extend" in lowered:
        return StoreUnavailable(f"{where}: the server ran out of room ({line})" + unchanged)
    if "could not connect" in lowered or "connection to server" in lowered:
        return StoreUnavailable(f"cannot connect to {where}: {line}" + unchanged)
    if "agentkeep_unaccent" in stderr:
        return StoreUnavailable(
            f"{where}: the backup's search folds accents with PostgreSQL's unaccent "
            "extension, which this server does not have or this role may not install or "
            f"use ({line}); an administrator can run: {chat_sql.UNACCENT_SETUP}; then "
            "restore again" + unchanged)
    return AgentkeepError(f"restoring {shown} into {where} failed: {line}" + unchanged)

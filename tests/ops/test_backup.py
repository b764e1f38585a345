"""Backup and restore on both backends: round trips, --keep, --concern, and a backup taken
while four processes append.

The helpers at the top (filling a store, a row-level dump, editing a backup) are shared
with the other ``test_backup_*`` / ``test_restore_*`` modules.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue as queue_module
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

import agentkeep
from agentkeep.concerns import CONCERNS
from agentkeep.ops import backup as backup_module
from agentkeep.ops.backup import MANIFEST, backup, list_backups, read_manifest
from agentkeep.ops.restore import restore, verify_backup
from conftest import damage_sqlite

WRITERS = 4


# --- helpers shared by the backup tests --------------------------------------------
def fill(store, *, sessions: int = 3, messages: int = 6, tag: str = "") -> list[str]:
    """Sessions with messages, a tool call, an attachment, a file and a setting."""
    ids = []
    for number in range(sessions):
        session = store.chat.create_session(title=f"{tag}session {number}", provider="openai",
                                            model="gpt-4.1", metadata={"n": number})
        ids.append(session.id)
        for turn in range(messages):
            role = "user" if turn % 2 == 0 else "assistant"
            message = store.chat.append(session.id, role, f"{tag}message {turn} about lisbon",
                                        usage={"input_tokens": turn, "output_tokens": 2 * turn},
                                        cost=0.001 * turn)
        call = store.chat.record_tool_call(message.id, "flights", {"to": "LIS"})
        store.chat.finish_tool_call(call.id, output={"ok": True})
        store.chat.attach(message.id, f"{tag}bytes {number}".encode(), filename="a.txt",
                          media_type="text/plain")
        store.chat.save_file(session.id, "main.py", f"print({number})")
    store.settings.set(f"test.{tag.strip().replace(' ', '_') or 'x'}", {"sessions": sessions})
    return ids


def fill_noise(store, kilobytes: int) -> None:
    """About ``kilobytes`` of incompressible message text (to fill small disks)."""
    session = store.chat.create_session(title="noise")
    store.chat.append_many(session.id, [
        {"role": "user", "content": os.urandom(1024).hex()} for _ in range(kilobytes // 2)])


def dump_rows(stores, prefix: str | None = None) -> dict[str, list]:
    """Every row of every table of the store (search index aside), sorted: the store's
    state as far as a caller can tell."""
    if stores.backend == "sqlite":
        home = Path(stores.home if prefix is None else prefix)
        rows = {}
        for concern in CONCERNS:
            path = home / f"{concern}.db"
            if not path.exists():
                continue
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                for table in backup_module.sqlite_tables(conn):
                    data = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                    rows[f"{concern}.{table}"] = sorted(data, key=repr)
            finally:
                conn.close()
        return rows
    import psycopg

    from conftest import PG_URL

    prefix = prefix or stores.prefix
    rows = {}
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for concern in CONCERNS:
            schema = f"{prefix}_{concern}"
            tables = [r[0] for r in conn.execute(backup_module.POSTGRES_TABLES, (schema,))]
            for table in tables:
                data = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
                rows[f"{concern}.{table}"] = sorted(data, key=repr)
    return rows


def load_manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())


def save_manifest(path: Path, data: dict) -> None:
    (path / MANIFEST).write_text(json.dumps(data, indent=2))


def reseal(path: Path, name: str) -> None:
    """Make the manifest agree with the file ``name`` as it is now (size and SHA-256, and
    its content's when it is not compressed), so that a deeper check must find a damage."""
    data = load_manifest(path)
    blob = (path / name).read_bytes()
    entry = data["files"][name]
    entry["size"] = len(blob)
    entry["sha256"] = hashlib.sha256(blob).hexdigest()
    if entry["compression"] is None:
        entry["content_size"] = entry["size"]
        entry["content_sha256"] = entry["sha256"]
    save_manifest(path, data)


def data_file(path: Path) -> str:
    """The backup's file holding the chat concern."""
    return load_manifest(path)["concerns"]["chat"]["file"]


# --- round trips -------------------------------------------------------------------
@pytest.mark.parametrize("compress", [None, "gzip"])
def test_restore_brings_back_exactly_the_backed_up_rows(stores, tmp_path, compress):
    store = stores.open()
    session_ids = fill(store)
    result = backup(store, tmp_path / "backups", compress=compress)
    before = dump_rows(stores)
    # Change everything after the backup: new rows, a purge, a setting.
    fill(store, sessions=1, tag="later ")
    store.chat.purge_session(session_ids[0])
    store.settings.set("test.x", "changed")
    store.close()
    assert dump_rows(stores) != before

    restored = restore(stores.target, result.path, force=True, **stores.options())

    assert dump_rows(stores) == before
    assert restored.concerns == CONCERNS
    assert restored.previous  # the replaced store held data, so it was kept
    with stores.open() as again:
        assert [s.id for s in again.chat.list_sessions().items][::-1] == session_ids
        assert again.chat.search("lisbon", limit=50)  # the search index answers
        assert again.settings.get("test.x") == {"sessions": 3}
        session = again.chat.get_session(session_ids[0])
        assert again.chat.recount(session.id)[:3] == (session.message_count,
                                                      session.input_tokens,
                                                      session.output_tokens)


def test_restore_into_a_new_location(stores, tmp_path):
    store = stores.open()
    fill(store)
    result = backup(store, tmp_path / "backups", compress="gzip")
    expected = dump_rows(stores)
    store.close()
    if stores.backend == "sqlite":
        target = where = tmp_path / "elsewhere" / "store"
        options = {}
    else:  # another prefix in the same database; the factory drops `<prefix>_*` schemas
        target, where = stores.target, f"{stores.prefix}_r"
        options = {"schema_prefix": where}

    restored = restore(target, result.path, **options)

    assert restored.previous is None
    assert dump_rows(stores, str(where)) == expected
    with agentkeep.open(target, **options) as copy:
        assert len(copy.chat.list_sessions().items) == 3


def test_a_table_locked_exclusively_makes_a_postgres_backup_busy(stores, tmp_path):
    """PostgreSQL: a table another transaction holds exclusively (ALTER TABLE, VACUUM FULL,
    LOCK) is waited for busy_timeout, then StoreBusy, and no backup is left; once the lock
    is gone the backup works. (SQLite's backup reads a snapshot no writer blocks.)"""
    if stores.backend != "postgres":
        pytest.skip("on SQLite no lock blocks a backup (the tests above back up under writers)")
    import time

    import psycopg

    from conftest import PG_URL

    store = stores.open(busy_timeout=0.5)
    fill(store, sessions=1, messages=2)
    dest = tmp_path / "backups"
    with psycopg.connect(PG_URL) as locker:
        locker.execute(f'LOCK TABLE "{stores.prefix}_chat".messages IN ACCESS EXCLUSIVE MODE')
        started = time.monotonic()
        with pytest.raises(agentkeep.StoreBusy):
            backup(store, dest)
        assert time.monotonic() - started < 30
        locker.rollback()
    assert not dest.exists() or not any(dest.iterdir())  # nothing left, not even a temp dir
    assert backup(store, dest).path.exists()


def test_restore_over_a_store_with_the_longest_schema_prefix(stores, tmp_path):
    # Cut to PostgreSQL's 63 bytes, the kept-aside names of chat and checkpoints met
    # (`<prefix>_ch_old_<time>`) and the restore failed at a 41-character prefix.
    if stores.backend != "postgres":
        pytest.skip("schema prefixes are PostgreSQL's")
    prefix = (stores.prefix + "_" + "x" * 41)[:41]  # the factory drops <its prefix>*
    store = stores.open(schema_prefix=prefix)
    fill(store)
    result = backup(store, tmp_path / "backups")
    expected = dump_rows(stores, prefix)
    store.chat.create_session(title="after the backup")
    store.close()

    restored = restore(stores.target, result.path, force=True, schema_prefix=prefix)

    assert dump_rows(stores, prefix) == expected
    kept = restored.previous.split(", ")  # chat's and app's (checkpoints held no data)
    assert len(kept) == len(set(kept)) == 2


def test_manifest_describes_the_backup(stores, tmp_path):
    store = stores.open()
    fill(store, sessions=2, messages=4)
    result = backup(store, tmp_path / "b")
    manifest = read_manifest(result.path)
    assert manifest == result.manifest
    assert manifest.dialect == store.dialect
    assert manifest.agentkeep_version == agentkeep.__version__
    assert {name: c.revision for name, c in manifest.concerns.items()} == {
        "chat": agentkeep.chat.REVISIONS[-1], "app": agentkeep.app.REVISIONS[-1],
        "checkpoints": agentkeep.checkpoints.REVISIONS[-1]}
    chat = manifest.concerns["chat"].tables
    assert (chat["sessions"], chat["messages"], chat["tool_calls"]) == (2, 8, 2)
    assert manifest.concerns["app"].tables["settings"] == 1
    for name, entry in manifest.files.items():
        blob = (result.path / name).read_bytes()
        assert (len(blob), hashlib.sha256(blob).hexdigest()) == (entry.size, entry.sha256)
    assert sorted(p.name for p in result.path.iterdir()) == sorted([MANIFEST, *manifest.files])
    assert oct(result.path.stat().st_mode & 0o777) == "0o700"
    assert verify_backup(result.path) == manifest


def test_default_destination(stores, tmp_path, monkeypatch):
    store = stores.open()
    monkeypatch.chdir(tmp_path)
    result = backup(store)
    expected = stores.home / "backups" if stores.backend == "sqlite" else tmp_path
    assert result.path.parent == expected
    assert result.path.name.startswith("agentkeep-backup-")


def test_zstd(stores, tmp_path, monkeypatch):
    store = stores.open()
    fill(store, sessions=1)
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(agentkeep.InvalidInput, match="zstandard"):
            backup(store, tmp_path / "b", compress="zstd")
        assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
        return
    result = backup(store, tmp_path / "b", compress="zstd")
    assert all(name.endswith(".zst") for name in result.manifest.files)
    expected = dump_rows(stores)
    store.close()
    restore(stores.target, result.path, force=True, **stores.options())
    assert dump_rows(stores) == expected


def test_zstd_without_the_zstandard_package(store, tmp_path, monkeypatch):
    monkeypatch.setattr(backup_module, "zstd_module", lambda: None)
    with pytest.raises(agentkeep.InvalidInput, match="compress: zstd needs the zstandard"):
        backup(store, tmp_path / "b", compress="zstd")
    assert not (tmp_path / "b").exists()


# --- --concern and --keep ------------------------------------------------------------
def test_a_concern_subset_is_backed_up_and_restored_alone(stores, tmp_path):
    store = stores.open()
    fill(store, sessions=2)
    result = backup(store, tmp_path / "b", concerns="chat")
    assert list(result.manifest.concerns) == ["chat"]
    assert result.path.name.endswith("-chat")
    chat_rows = {k: v for k, v in dump_rows(stores).items() if k.startswith("chat.")}
    fill(store, sessions=1, tag="later ")  # adds chat rows and the setting test.later
    store.close()

    restored = restore(stores.target, result.path, force=True, **stores.options())

    assert restored.concerns == ("chat",)
    after = dump_rows(stores)
    assert {k: v for k, v in after.items() if k.startswith("chat.")} == chat_rows
    with stores.open() as again:
        assert again.settings.get("test.later") == {"sessions": 1}  # app untouched


def test_keep_removes_only_older_backups_of_the_same_store_and_concerns(stores, tmp_path):
    store = stores.open()
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    (dest / "agentkeep-backup-foreign").mkdir()  # no manifest: not ours, never touched
    chat_only = backup(store, dest, concerns=["chat"])
    made = [backup(store, dest) for _ in range(2)]
    assert len({m.path for m in made}) == 2  # same second: distinct names

    result = backup(store, dest, keep=2)

    assert result.removed == (made[0].path,)
    remaining = {m.path for m in list_backups(dest)}
    assert remaining == {chat_only.path, made[1].path, result.path}
    assert (dest / "notes.txt").read_text() == "mine"
    assert (dest / "agentkeep-backup-foreign").is_dir()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


# --- a damaged store --------------------------------------------------------------
@pytest.mark.parametrize("stores", ["sqlite"], indirect=True)
@pytest.mark.parametrize("compress", [None, "gzip"])
def test_a_damaged_file_fails_the_backup_and_leaves_nothing(stores, tmp_path, compress):
    """A backup that restore's integrity_check would refuse is never made: the copy is
    checked, the error names the damaged file, and only the unfinished backup goes."""
    store = stores.open()
    fill(store, sessions=12, messages=30)
    dest = tmp_path / "backups"
    earlier = backup(store, dest).path
    (dest / "notes.txt").write_text("not agentkeep's")
    store.close()
    damage_sqlite(stores.home / "chat.db")
    before = sorted(p.name for p in dest.iterdir())
    store = stores.open()

    with pytest.raises(agentkeep.StoreCorrupt) as raised:
        backup(store, dest, compress=compress, keep=1)

    message = str(raised.value)
    assert str(stores.home / "chat.db") in message and "integrity_check" in message
    assert "agentkeep restore" in message
    assert sorted(p.name for p in dest.iterdir()) == before  # no .tmp-..., nothing removed
    assert verify_backup(earlier).path == earlier
    with pytest.raises(agentkeep.StoreCorrupt, match="chat.db"):  # into a new directory
        backup(store, tmp_path / "new")
    assert list((tmp_path / "new").iterdir()) == []


# --- backup while four processes append ----------------------------------------------
def _writer(target, options, index, stop, reports):
    with agentkeep.open(target, **options) as store:
        session = store.chat.create_session(title=f"writer {index}")
        count = 0
        while not stop.is_set():
            message = store.chat.append(session.id, "user", f"writer {index} message {count}",
                                        usage={"input_tokens": 1, "output_tokens": 2},
                                        cost=0.000001)
            count += 1
            reports.put((index, message.id))  # after the commit
        reports.put((index, None))


def _collect(reports, counts: Counter, ids: set, until) -> None:
    while not until():
        index, message_id = reports.get(timeout=120)
        if message_id is not None:
            counts[index] += 1
            ids.add(message_id)


@pytest.mark.slow
def test_backup_while_four_processes_append(stores, tmp_path):
    store = stores.open()
    context = multiprocessing.get_context("spawn")
    stop, reports = context.Event(), context.Queue()
    writers = [context.Process(target=_writer, args=(
        str(stores.target), stores.options(), index, stop, reports)) for index in range(WRITERS)]
    for process in writers:
        process.start()
    try:
        counts: Counter = Counter()
        committed: set[str] = set()
        _collect(reports, counts, committed,
                 lambda: len(counts) == WRITERS and min(counts.values()) >= 20)
        while True:  # whatever is already reported was committed before the backup starts
            try:
                index, message_id = reports.get_nowait()
            except queue_module.Empty:
                break
            counts[index] += 1
            committed.add(message_id)
        before_backup = set(committed)

        result = backup(store, tmp_path / "b", compress="gzip")

        marks = dict(counts)  # now let every writer commit surely after the snapshot
        _collect(reports, counts, committed,
                 lambda: all(counts[i] >= marks[i] + 20 for i in range(WRITERS)))
    finally:
        stop.set()
    done = 0
    while done < WRITERS:
        index, message_id = reports.get(timeout=120)
        if message_id is None:
            done += 1
        else:
            committed.add(message_id)
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    store.close()

    restore(stores.target, result.path, force=True, **stores.options())

    with stores.open() as restored:
        sessions = list(restored.chat.iter_sessions())
        assert len(sessions) == WRITERS
        present = set()
        for session in sessions:
            history = restored.chat.history(session.id)
            assert [m.seq for m in history] == list(range(1, len(history) + 1))
            present |= {m.id for m in history}
            assert restored.chat.recount(session.id)[:3] == (
                session.message_count, session.input_tokens, session.output_tokens)
            assert session.message_count == len(history)
        assert before_backup <= present  # everything committed before the backup started
        assert present <= committed
        assert len(present) < len(committed)  # and the later appends are not there
        assert len(present) == result.manifest.messages
    if stores.backend == "sqlite":
        for concern in CONCERNS:
            conn = sqlite3.connect(stores.home / f"{concern}.db")
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            conn.close()

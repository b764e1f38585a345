"""New SQLite stores are created from the schema snapshots: the migrations' exact result."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

import agentkeep
from agentkeep.backend import create_backend
from agentkeep.concerns import CONCERNS
from agentkeep.config import resolve
from agentkeep.migrations import alembic_ops, head_revision, snapshot

PRAGMAS = ("page_size", "auto_vacuum", "user_version", "application_id", "encoding",
           "journal_mode", "freelist_count")


def migrated_by_alembic(home):
    backend = create_backend(resolve(home), CONCERNS)
    try:
        for concern in CONCERNS:
            alembic_ops.upgrade(backend, concern, "head")
    finally:
        backend.close()


def contents(path) -> dict:
    """Everything a schema is: its objects (shadow tables too), every row, the header."""
    conn = sqlite3.connect(path)
    try:
        objects = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        rows = {name: sorted(conn.execute(f'SELECT * FROM "{name}"'), key=repr)
                for kind, name, _, _ in objects if kind == "table"}
        header = {pragma: conn.execute(f"PRAGMA {pragma}").fetchone()[0] for pragma in PRAGMAS}
    finally:
        conn.close()
    return {"objects": objects, "rows": rows, "header": header}


def test_the_shipped_snapshots_are_the_migrations_result(tmp_path):
    migrated_by_alembic(tmp_path)
    for concern in CONCERNS:
        conn = sqlite3.connect(tmp_path / f"{concern}.db")
        try:
            fresh = snapshot.dump(conn, head_revision(concern))
        finally:
            conn.close()
        shipped = snapshot.snapshot_path(concern).read_text(encoding="utf-8")
        assert shipped == fresh, (
            f"{concern}'s schema snapshot is not the migrations' result: run "
            "`python -m agentkeep.migrations.snapshot` and commit the files")


def test_a_store_created_from_the_snapshots_is_identical_to_a_migrated_one(tmp_path):
    agentkeep.open(tmp_path / "snapshot").close()
    migrated_by_alembic(tmp_path / "alembic")
    for concern in CONCERNS:
        made = contents(tmp_path / "snapshot" / f"{concern}.db")
        assert made == contents(tmp_path / "alembic" / f"{concern}.db")
        assert made["rows"]["alembic_version"] == [(head_revision(concern),)]
    chat = contents(tmp_path / "snapshot" / "chat.db")
    assert {"messages_fts", "messages_fts_config", "sessions_second_on_update"} <= {
        name for _, name, _, _ in chat["objects"]}

    backend = create_backend(resolve(tmp_path / "snapshot"), CONCERNS)
    try:
        for concern in CONCERNS:
            assert alembic_ops.drift(backend, concern) == []
            alembic_ops.downgrade(backend, concern, "base")
            alembic_ops.upgrade(backend, concern, "head")
            assert alembic_ops.drift(backend, concern) == []
    finally:
        backend.close()
    with agentkeep.open(tmp_path / "snapshot", migrate=False) as store:
        session = store.chat.create_session(title="made from the snapshot")
        store.chat.append(session.id, "user", "findable right after creation")
        assert [hit.message.session_id for hit in store.chat.search("findable")] == [session.id]


def test_creating_a_sqlite_store_imports_neither_sqlalchemy_nor_alembic(tmp_path):
    code = textwrap.dedent(f"""
        import sys, agentkeep
        with agentkeep.open({str(tmp_path / "new")!r}) as store:
            store.chat.create_session(title="first")
        print(sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "new" / "chat.db").exists()


def _copy_snapshots(tmp_path, edit):
    copies = tmp_path / "snapshots"
    copies.mkdir()
    for concern in CONCERNS:
        text = snapshot.snapshot_path(concern).read_text(encoding="utf-8")
        (copies / f"{concern}.sqlite.sql").write_text(edit(concern, text), encoding="utf-8")
    return copies


def test_a_snapshot_not_at_the_head_revision_is_not_used(tmp_path, monkeypatch):
    # A snapshot left behind by a new migration: the store is migrated instead, to head.
    stale = _copy_snapshots(tmp_path, lambda concern, text: text.replace(
        f"-- revision: {head_revision(concern)}", "-- revision: older")
        .replace("CREATE INDEX", "CREATE INDEX stale_"))
    monkeypatch.setattr(snapshot, "SNAPSHOTS", stale)
    agentkeep.open(tmp_path / "store").close()
    migrated_by_alembic(tmp_path / "alembic")
    for concern in CONCERNS:
        assert contents(tmp_path / "store" / f"{concern}.db") == \
            contents(tmp_path / "alembic" / f"{concern}.db")


def test_a_snapshot_that_fails_halfway_leaves_the_file_empty(tmp_path, monkeypatch):
    broken = _copy_snapshots(tmp_path, lambda concern, text: text + (
        "INSERT INTO no_such_table VALUES (1);\n" if concern == "chat" else ""))
    monkeypatch.setattr(snapshot, "SNAPSHOTS", broken)
    with pytest.raises(agentkeep.AgentkeepError, match="no_such_table"):
        agentkeep.open(tmp_path / "store")
    conn = sqlite3.connect(tmp_path / "store" / "chat.db")
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    finally:
        conn.close()
    monkeypatch.undo()
    with agentkeep.open(tmp_path / "store") as store:  # the shipped snapshot then works
        assert store.chat.create_session(title="after").title == "after"


def test_the_snapshot_is_not_applied_to_a_file_another_process_filled(tmp_path):
    # What a process that lost the race to create the store finds once it has the lock.
    with agentkeep.open(tmp_path) as store:
        store.settings.set("kept", 1)
    before = {concern: contents(tmp_path / f"{concern}.db") for concern in CONCERNS}
    backend = create_backend(resolve(tmp_path), CONCERNS)
    try:
        for concern in CONCERNS:
            assert snapshot.create_from_snapshot(backend, concern, 5.0) is False
    finally:
        backend.close()
    assert {concern: contents(tmp_path / f"{concern}.db") for concern in CONCERNS} == before

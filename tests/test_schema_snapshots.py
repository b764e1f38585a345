"""New SQLite stores are created from the schema snapshots: the migrations' exact result."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

import agentkeep
from agentkeep import migrations
from agentkeep.backend import create_backend
from agentkeep.concerns import CONCERNS
from agentkeep.config import resolve
from agentkeep.migrations import alembic_ops, head_revision, snapshot

PRAGMAS = ("page_size", "auto_vacuum", "user_version", "application_id", "encoding",
           "journal_mode")


def alembic_refused(*args, **kwargs):
    raise AssertionError("Alembic was asked to migrate")


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


def assert_opened_as_alembic_migrates(tmp_path):
    """open() of a new store at tmp_path/store makes what Alembic makes at tmp_path/alembic."""
    agentkeep.open(tmp_path / "store").close()
    migrated_by_alembic(tmp_path / "alembic")
    for concern in CONCERNS:
        assert contents(tmp_path / "store" / f"{concern}.db") == \
            contents(tmp_path / "alembic" / f"{concern}.db")


def assert_holds_nothing(path):
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    finally:
        conn.close()


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


def test_a_store_created_from_the_snapshots_is_identical_to_a_migrated_one(tmp_path,
                                                                          monkeypatch):
    with monkeypatch.context() as patch:  # made from the snapshots, not by Alembic
        patch.setattr(alembic_ops, "upgrade", alembic_refused)
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
    assert_opened_as_alembic_migrates(tmp_path)


def test_a_snapshot_that_fails_halfway_leaves_the_file_empty(tmp_path, monkeypatch):
    broken = _copy_snapshots(tmp_path, lambda concern, text: text + (
        "INSERT INTO no_such_table VALUES (1);\n" if concern == "chat" else ""))
    monkeypatch.setattr(snapshot, "SNAPSHOTS", broken)
    with pytest.raises(agentkeep.MigrationError, match="rolled back.*no_such_table"):
        agentkeep.open(tmp_path / "store")
    assert_holds_nothing(tmp_path / "store" / "chat.db")
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
            assert snapshot.create_from_snapshot(backend, concern) is False
    finally:
        backend.close()
    assert {concern: contents(tmp_path / f"{concern}.db") for concern in CONCERNS} == before


def test_a_process_that_lost_the_race_to_create_the_store_finds_it_current(tmp_path,
                                                                           monkeypatch):
    agentkeep.open(tmp_path).close()  # the winner's store
    looked = []

    def none_at_first(backend, concern):  # what the loser read before the winner committed
        looked.append(concern)
        return None if looked.count(concern) == 1 else real(backend, concern)

    real = migrations.current_revision
    monkeypatch.setattr(migrations, "current_revision", none_at_first)
    monkeypatch.setattr(alembic_ops, "upgrade", alembic_refused)
    with agentkeep.open(tmp_path) as store:
        assert store.chat.create_session(title="after the race").title == "after the race"
    assert sorted(looked) == sorted(CONCERNS * 2)


@pytest.mark.parametrize("case", ["missing", "cut short"])
def test_a_snapshot_that_cannot_be_used_leaves_the_store_to_alembic(tmp_path, monkeypatch,
                                                                      case):
    if case == "missing":
        unusable = tmp_path / "no-snapshots"
        unusable.mkdir()
    else:  # a file cut in the middle of its last statement
        unusable = _copy_snapshots(tmp_path, lambda concern, text: text[:-20])
    monkeypatch.setattr(snapshot, "SNAPSHOTS", unusable)
    assert_opened_as_alembic_migrates(tmp_path)


def test_a_snapshot_without_its_revision_row_is_refused_and_leaves_the_file_empty(
        tmp_path, monkeypatch):
    # Whole statements, but not the version row: a store that the next open could not read.
    broken = _copy_snapshots(tmp_path, lambda concern, text: "\n".join(
        line for line in text.splitlines() if not line.startswith("INSERT INTO \"alembic")))
    monkeypatch.setattr(snapshot, "SNAPSHOTS", broken)
    with pytest.raises(agentkeep.MigrationError, match="revision None"):
        agentkeep.open(tmp_path / "store")
    assert_holds_nothing(tmp_path / "store" / "chat.db")

"""New stores are created from the schema snapshots: the migrations' exact result."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import uuid

import pytest

import agentkeep
from agentkeep import migrations
from agentkeep.backend import create_backend
from agentkeep.concerns import CONCERNS
from agentkeep.config import resolve
from agentkeep.migrations import alembic_ops, head_revision, snapshot
from conftest import PG_URL, drop_schemas, postgres_or_skip

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


def _copy_snapshots(tmp_path, edit, dialect="sqlite"):
    copies = tmp_path / "snapshots"
    copies.mkdir()
    for concern in CONCERNS:
        text = snapshot.snapshot_path(concern, dialect).read_text(encoding="utf-8")
        (copies / f"{concern}.{dialect}.sql").write_text(edit(concern, text), encoding="utf-8")
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


# --- PostgreSQL -------------------------------------------------------------------------------

@pytest.fixture
def prefixes():
    """Fresh schema prefixes on the test server, their schemas dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"t{uuid.uuid4().hex[:12]}")
        return made[-1]

    postgres_or_skip()
    yield make
    for prefix in made:
        drop_schemas(prefix)


def pg_backend(prefix: str):
    return create_backend(resolve(PG_URL, schema_prefix=prefix), CONCERNS)


def pg_migrated_by_alembic(prefix: str) -> None:
    backend = pg_backend(prefix)
    try:
        for concern in CONCERNS:
            alembic_ops.upgrade(backend, concern, "head")
    finally:
        backend.close()


def pg_contents(prefix: str, concern: str) -> tuple[str, list]:
    """A schema as pg_dump describes it (its own name masked), and its rows of
    alembic_version."""
    schema = f"{prefix}_{concern}"
    described = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-n", schema, PG_URL],
        capture_output=True, text=True, check=True).stdout
    lines = [line for line in described.replace(schema, "SCHEMA").splitlines()
             if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))]
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f'SELECT version_num FROM "{schema}".alembic_version').fetchall()
    return "\n".join(lines), rows


def pg_schemas(prefix: str) -> list:
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        return conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            (prefix + "\\_%",)).fetchall()


def assert_pg_opened_as_alembic_migrates(prefixes) -> None:
    made, migrated = prefixes(), prefixes()
    agentkeep.open(PG_URL, schema_prefix=made).close()
    pg_migrated_by_alembic(migrated)
    for concern in CONCERNS:
        assert pg_contents(made, concern) == pg_contents(migrated, concern)


def test_the_shipped_postgres_snapshots_are_the_migrations_result(prefixes):
    backend = pg_backend(prefixes())
    try:
        for concern in CONCERNS:
            fresh = snapshot.postgres_snapshot(snapshot.record_postgres(backend, concern),
                                               head_revision(concern))
            shipped = snapshot.snapshot_path(concern, "postgresql").read_text(encoding="utf-8")
            assert shipped == fresh, (
                f"{concern}'s PostgreSQL schema snapshot is not the migrations' result: run "
                "`python -m agentkeep.migrations.snapshot` and commit the files")
    finally:
        backend.close()


def test_a_postgres_store_created_from_the_snapshots_is_identical_to_a_migrated_one(
        prefixes, monkeypatch):
    made, migrated = prefixes(), prefixes()
    with monkeypatch.context() as patch:  # made from the snapshots, not by Alembic
        patch.setattr(alembic_ops, "upgrade", alembic_refused)
        agentkeep.open(PG_URL, schema_prefix=made).close()
    pg_migrated_by_alembic(migrated)
    for concern in CONCERNS:
        described, rows = pg_contents(made, concern)
        assert (described, rows) == pg_contents(migrated, concern)
        assert rows == [(head_revision(concern),)]
    assert "queue_messages_for_search" in pg_contents(made, "chat")[0]

    backend = pg_backend(made)
    try:
        for concern in CONCERNS:
            assert alembic_ops.drift(backend, concern) == []
            alembic_ops.downgrade(backend, concern, "base")
            alembic_ops.upgrade(backend, concern, "head")
            assert alembic_ops.drift(backend, concern) == []
    finally:
        backend.close()
    with agentkeep.open(PG_URL, schema_prefix=made, migrate=False) as store:
        session = store.chat.create_session(title="made from the snapshot")
        store.chat.append(session.id, "user", "findable right after creation")
        assert [hit.message.session_id for hit in store.chat.search("findable")] == [session.id]


def test_creating_a_postgres_store_imports_neither_sqlalchemy_nor_alembic(prefixes):
    code = textwrap.dedent(f"""
        import sys, agentkeep
        with agentkeep.open({PG_URL!r}, schema_prefix={prefixes()!r}) as store:
            store.chat.create_session(title="first")
        print(sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def _cut_after_first_statement(concern, text):
    return text[:text.index("\n;;\n") + 4]


@pytest.mark.parametrize("case", ["stale", "missing", "cut short", "cut between statements"])
def test_a_postgres_snapshot_that_cannot_be_used_leaves_the_store_to_alembic(
        tmp_path, monkeypatch, prefixes, case):
    if case == "stale":  # left behind by a new migration: the store is migrated instead
        unusable = _copy_snapshots(tmp_path, lambda concern, text: text.replace(
            f"-- revision: {head_revision(concern)}", "-- revision: older")
            .replace("CREATE INDEX ", "CREATE INDEX stale_"), "postgresql")
    elif case == "missing":
        unusable = tmp_path / "no-snapshots"
        unusable.mkdir()
    elif case == "cut short":  # in the middle of a statement
        unusable = _copy_snapshots(tmp_path, lambda concern, text: text[:-40], "postgresql")
    else:  # whole statements, but not all of them
        unusable = _copy_snapshots(tmp_path, _cut_after_first_statement, "postgresql")
    monkeypatch.setattr(snapshot, "SNAPSHOTS", unusable)
    migrated = []
    upgrade = alembic_ops.upgrade
    monkeypatch.setattr(alembic_ops, "upgrade", lambda backend, concern, target: (
        migrated.append(concern), upgrade(backend, concern, target)))
    assert_pg_opened_as_alembic_migrates(prefixes)
    assert sorted(migrated) == sorted(CONCERNS * 2)  # the store's, then the comparison's


@pytest.mark.parametrize("case", ["failing statement", "no revision row"])
def test_a_postgres_snapshot_that_fails_leaves_the_schema_empty(tmp_path, monkeypatch,
                                                                prefixes, case):
    if case == "failing statement":
        broken = _copy_snapshots(tmp_path, lambda concern, text: text.replace(
            "-- end of snapshot", "INSERT INTO no_such_table VALUES (1)\n;;\n-- end of snapshot")
            if concern == "chat" else text, "postgresql")
        expected = "rolled back.*no_such_table"
    else:  # whole statements, but not the version row
        version_rows = ("INSERT INTO __agentkeep_schema__.alembic_version",
                        "UPDATE __agentkeep_schema__.alembic_version")
        broken = _copy_snapshots(tmp_path, lambda concern, text: ";;\n".join(
            chunk for chunk in text.split(";;\n") if not chunk.startswith(version_rows)),
            "postgresql")
        expected = "revision None"
    monkeypatch.setattr(snapshot, "SNAPSHOTS", broken)
    prefix = prefixes()
    with pytest.raises(agentkeep.MigrationError, match=expected):
        agentkeep.open(PG_URL, schema_prefix=prefix)
    assert pg_schemas(prefix) == []  # the CREATE SCHEMA was rolled back with the rest
    monkeypatch.undo()
    with agentkeep.open(PG_URL, schema_prefix=prefix) as store:  # the shipped one works
        assert store.chat.create_session(title="after").title == "after"


def test_the_postgres_snapshot_is_not_applied_to_a_schema_another_process_filled(prefixes):
    prefix = prefixes()
    with agentkeep.open(PG_URL, schema_prefix=prefix) as store:
        store.settings.set("kept", 1)
    before = {concern: pg_contents(prefix, concern) for concern in CONCERNS}
    backend = pg_backend(prefix)
    try:
        for concern in CONCERNS:
            assert snapshot.create_from_snapshot(backend, concern) is False
    finally:
        backend.close()
    assert {concern: pg_contents(prefix, concern) for concern in CONCERNS} == before
    with agentkeep.open(PG_URL, schema_prefix=prefix) as store:
        assert store.settings.get("kept") == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_process_that_lost_the_race_to_create_the_store_finds_it_current(
        tmp_path, monkeypatch, request, backend):
    if backend == "sqlite":
        target, options = tmp_path, {}
    else:
        target, options = PG_URL, {"schema_prefix": request.getfixturevalue("prefixes")()}
    agentkeep.open(target, **options).close()  # the winner's store
    looked = []

    def none_at_first(backend, concern):  # what the loser read before the winner committed
        looked.append(concern)
        return None if looked.count(concern) == 1 else real(backend, concern)

    real = migrations.current_revision
    monkeypatch.setattr(migrations, "current_revision", none_at_first)
    monkeypatch.setattr(alembic_ops, "upgrade", alembic_refused)
    with agentkeep.open(target, **options) as store:
        assert store.chat.create_session(title="after the race").title == "after the race"
    assert sorted(looked) == sorted(CONCERNS * 2)


@pytest.mark.parametrize("create", ["snapshot", "alembic"])
def test_a_postgres_migration_waits_for_another_beyond_busy_timeout(prefixes, monkeypatch,
                                                                    create):
    """Another process's migration (its advisory lock) may take longer than the store's
    busy_timeout: opening waits for it (migration_lock_timeout), not StoreBusy."""
    import threading

    import psycopg

    if create == "alembic":
        monkeypatch.setattr(snapshot, "create_from_snapshot", lambda backend, concern: False)
    prefix = prefixes()
    holder = psycopg.connect(PG_URL)
    holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                   (f"agentkeep-migrate:{prefix}_chat",))
    timer = threading.Timer(1.0, holder.rollback)
    timer.start()
    try:
        with agentkeep.open(PG_URL, schema_prefix=prefix, busy_timeout=0.2) as store:
            assert store.chat.create_session().message_count == 0
    finally:
        timer.join()
        holder.close()

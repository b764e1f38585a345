"""Opening and closing stores: targets, permissions, bad locations, closed stores."""

from __future__ import annotations

import os
import stat
import threading

import pytest

import agentkeep
from agentkeep.config import HOME_ENV
from conftest import PG_URL


def test_default_home_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv("AGENTKEEP_URL", raising=False)
    with agentkeep.open() as store:
        assert store.dialect == "sqlite"
        assert store.location == str(tmp_path / "home")
    assert (tmp_path / "home" / "chat.db").exists()
    assert (tmp_path / "home" / "app.db").exists()


def test_home_is_private(tmp_path):
    home = tmp_path / "private"
    with agentkeep.open(home) as store:
        session = store.chat.create_session()
        store.chat.append(session.id, "user", "secret")
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    for name in os.listdir(home):
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600, name


def test_directory_path_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(agentkeep.StoreUnavailable, match="is a file"):
        agentkeep.open(target)
    assert target.read_text() == "not a directory"


def test_directory_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    target = tmp_path / "file" / "store"
    with pytest.raises(agentkeep.StoreUnavailable,
                       match=f"cannot create or enter the store directory {target}"):
        agentkeep.open(target)


def test_database_file_that_is_a_directory(tmp_path):
    home = tmp_path / "store"
    (home / "chat.db").mkdir(parents=True)
    with pytest.raises(agentkeep.StoreUnavailable, match=r"chat.db: .* \(it is a directory"):
        agentkeep.open(home)
    assert (home / "chat.db").is_dir()


def test_database_file_that_is_not_sqlite(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    (home / "chat.db").write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(agentkeep.StoreCorrupt, match="chat.db"):
        agentkeep.open(home)
    assert (home / "chat.db").read_bytes().startswith(b"this is not a database")


def test_sqlite_file_of_another_application(tmp_path):
    import sqlite3

    home = tmp_path / "store"
    home.mkdir()
    with sqlite3.connect(home / "chat.db") as conn:
        conn.execute("CREATE TABLE theirs (x)")
    with pytest.raises(agentkeep.StoreCorrupt, match="theirs"):
        agentkeep.open(home)


def test_a_bad_url_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTKEEP_URL", "mysql://somewhere/db")
    with pytest.raises(agentkeep.InvalidInput) as caught:
        agentkeep.open()
    assert caught.value.field == "$AGENTKEEP_URL"
    assert "unsupported URL scheme in 'mysql'" in str(caught.value)
    with pytest.raises(agentkeep.InvalidInput) as caught:  # given, it is the argument's
        agentkeep.open("mysql://somewhere/db")
    assert caught.value.field == "target"


def test_postgres_url_that_does_not_answer():
    with pytest.raises(agentkeep.StoreUnavailable, match="127.0.0.1:1"):
        agentkeep.open("postgresql://postgres:secret@127.0.0.1:1/none")


def test_password_is_not_shown(stores):
    if stores.backend != "postgres":
        pytest.skip("URLs are PostgreSQL only")
    url = stores.target.replace("postgres@", "postgres:hunter2@")
    with agentkeep.open(url, **stores.options()) as store:
        assert "hunter2" not in store.location and "hunter2" not in repr(store)


@pytest.mark.parametrize("target, field", [
    (42, "target"), ("", "target"), ("mysql://x", "target"),
])
def test_bad_targets(target, field):
    with pytest.raises(agentkeep.InvalidInput, match=field):
        agentkeep.open(target)


@pytest.mark.parametrize("option, value", [
    ("busy_timeout", -1), ("max_blob_size", 0), ("durability", "sometimes"),
    ("schema_prefix", "Robert'); DROP"), ("pool_size", 0),
])
def test_bad_options(tmp_path, option, value):
    with pytest.raises(agentkeep.InvalidInput, match=option):
        agentkeep.open(tmp_path, **{option: value})
    assert not (tmp_path / "chat.db").exists()


def test_unknown_option_is_named(tmp_path):
    with pytest.raises(agentkeep.InvalidInput, match="bogus: is not an option"):
        agentkeep.open(tmp_path, bogus=1)
    assert not (tmp_path / "chat.db").exists()


def test_closed_store_raises(store):
    session = store.chat.create_session()
    store.close()
    store.close()  # idempotent
    assert store.is_closed
    with pytest.raises(agentkeep.StoreClosed):
        store.chat.get_session(session.id)
    with pytest.raises(agentkeep.StoreClosed):
        store.settings.set("a", 1)
    with pytest.raises(agentkeep.StoreClosed):
        with store.transaction():
            pass


def test_reopen_sees_committed_data(stores):
    with stores.open() as store:
        session = store.chat.create_session(title="kept")
        store.chat.append(session.id, "user", "one")
    with stores.open() as store:
        assert store.chat.get_session(session.id).message_count == 1


def test_one_store_shared_between_threads(store):
    session = store.chat.create_session()
    errors = []

    def worker(index):
        try:
            for turn in range(25):
                store.chat.append(session.id, "user", f"thread {index} turn {turn}")
                store.chat.history(session.id, last=5)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = store.chat.history(session.id)
    assert len(history) == 150
    assert [m.seq for m in history] == list(range(1, 151))
    assert store.chat.recount(session.id)[0] == store.chat.get_session(session.id).message_count


def test_busy_store_raises_store_busy_after_timeout(stores):
    """A lock another connection holds longer than busy_timeout: StoreBusy, nothing
    written, and the store works once it is free (PostgreSQL bounds row and table lock
    waits too, with lock_timeout)."""
    store = stores.open(busy_timeout=0.2)
    session = store.chat.create_session()
    if stores.backend == "sqlite":
        import sqlite3

        blocker = sqlite3.connect(stores.home / "chat.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        release = lambda: blocker.execute("ROLLBACK")  # noqa: E731
    else:
        import psycopg

        blocker = psycopg.connect(PG_URL)
        blocker.execute(f"LOCK TABLE {stores.prefix}_chat.messages IN ACCESS EXCLUSIVE MODE")
        release = blocker.rollback
    try:
        with pytest.raises(agentkeep.StoreBusy, match="busy_timeout"):
            store.chat.append(session.id, "user", "waits, then gives up")
    finally:
        release()
        blocker.close()
    assert store.chat.get_session(session.id).message_count == 0
    store.chat.append(session.id, "user", "works again")
    assert store.chat.get_session(session.id).message_count == 1


def test_postgres_url_without_the_driver_says_how_to_install_it(tmp_path):
    import subprocess
    import sys
    import textwrap

    # A fresh interpreter in which importing psycopg fails, as without the extra.
    code = textwrap.dedent("""
        import sys
        sys.modules["psycopg"] = None
        import agentkeep
        try:
            agentkeep.open("postgresql://postgres@127.0.0.1:5432/test")
        except agentkeep.StoreUnavailable as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "pip install 'agentkeep[postgres]'" in result.stdout


def test_the_write_ahead_log_is_checkpointed_as_appends_go_on(tmp_path):
    # Single-commit appends write ~5 pages each to chat.db-wal; the committing connection
    # copies them back into chat.db every 4,000 pages, so the log stays bounded.
    wal = tmp_path / "chat.db-wal"
    page = 4096 + 24  # a WAL frame: the page and its header
    largest = 0
    with agentkeep.open(tmp_path) as store:
        sessions = [store.chat.create_session().id for _ in range(20)]
        for number in range(3000):
            store.chat.append(sessions[number % 20], "user", "a message of some length " * 8)
            largest = max(largest, wal.stat().st_size)
        assert store.chat.get_session(sessions[0]).message_count == 150
    assert 2000 * page < largest <= 4100 * page + 32  # SQLite's default: ~1,000 pages

"""Restoring bad backups, and restoring where it must not: each gives the right error,
naming the file, and leaves the store exactly as it was (compared row by row)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_backup import data_file, dump_rows, fill, load_manifest, reseal, save_manifest

import agentkeep
from agentkeep.concerns import CONCERNS
from agentkeep.ops import restore as restore_module
from agentkeep.ops.backup import MANIFEST, backup
from agentkeep.ops.restore import restore, verify_backup


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """``get(backend, compress)``: the path of a backup of a small store, made once per
    module (pg_dump alone takes ~0.4 s); tests damage copies of it."""
    from conftest import StoreFactory

    made: dict = {}
    factories = []

    def get(backend, compress=None):
        if (backend, compress) not in made:
            factory = StoreFactory(backend, tmp_path_factory.mktemp(backend))
            factories.append(factory)
            with factory.open() as store:
                fill(store, sessions=2, tag="backed up ")
                made[backend, compress] = backup(store, tmp_path_factory.mktemp("b"),
                                                 compress=compress).path
        return made[backend, compress]

    yield get
    for factory in factories:
        factory.cleanup()


def copy_of(pristine, stores, tmp_path, compress=None) -> Path:
    copy = tmp_path / "copy" / f"backup-{compress}"
    shutil.copytree(pristine(stores.backend, compress), copy)
    return copy


@pytest.fixture
def setup(stores, tmp_path, pristine):
    """(a copy of a backup, the rows of the store at ``stores``, which holds other data)."""
    path = copy_of(pristine, stores, tmp_path)
    with stores.open() as store:
        fill(store, sessions=1, tag="current ")
    return path, dump_rows(stores)


@pytest.fixture
def gzipped(stores, tmp_path, pristine):
    path = copy_of(pristine, stores, tmp_path, "gzip")
    with stores.open() as store:
        fill(store, sessions=1, tag="current ")
    return path


def refused(stores, backup_path, error, *words, force=True):
    """Restore must raise ``error`` with ``words`` in its message, changing nothing."""
    before = dump_rows(stores)
    with pytest.raises(error) as caught:
        restore(stores.target, backup_path, force=force, **stores.options())
    for word in words:
        assert str(word) in str(caught.value), (word, str(caught.value))
    assert dump_rows(stores) == before
    if stores.backend == "sqlite":  # nothing left behind either
        assert not [p for p in stores.home.iterdir() if p.name.startswith(".restore")]
    return str(caught.value)


# --- damaged backups -----------------------------------------------------------------
def test_truncated_file(stores, setup):
    path, _ = setup
    name = data_file(path)
    target = path / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    message = refused(stores, path, agentkeep.StoreCorrupt, target, "truncated")
    assert "bytes, the manifest says" in message


def test_a_directory_where_the_manifest_lists_a_file(stores, setup):
    path, _ = setup
    target = path / data_file(path)
    target.unlink()
    target.mkdir()
    refused(stores, path, agentkeep.StoreCorrupt, target, "is not a file")


def test_truncated_file_with_a_matching_manifest(stores, setup):
    """The checksums pass; unpacking or SQLite's integrity_check must find it."""
    path, _ = setup
    name = data_file(path)
    target = path / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    reseal(path, name)
    refused(stores, path, agentkeep.StoreCorrupt, target)


def test_corrupted_byte(stores, setup):
    path, _ = setup
    target = path / data_file(path)
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    target.write_bytes(bytes(blob))
    refused(stores, path, agentkeep.StoreCorrupt, target, "SHA-256")


def test_gzip_that_is_not_gzip(stores, gzipped):
    path = gzipped
    name = data_file(path)
    (path / name).write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    reseal(path, name)
    refused(stores, path, agentkeep.StoreCorrupt, path / name, "not a valid gzip file")


def test_truncated_gzip(stores, gzipped):
    path = gzipped
    name = data_file(path)
    blob = (path / name).read_bytes()
    (path / name).write_bytes(blob[: len(blob) - 100])
    reseal(path, name)
    refused(stores, path, agentkeep.StoreCorrupt, path / name, "truncated gzip")


def test_gzip_of_the_wrong_content(stores, gzipped):
    """A valid gzip whose content is not what the manifest describes."""
    path = gzipped
    name = data_file(path)
    (path / name).write_bytes(gzip.compress(b"not the database"))
    reseal(path, name)
    refused(stores, path, agentkeep.StoreCorrupt, path / name, "does not match the manifest")


def test_newer_schema_revision(stores, setup):
    path, _ = setup
    data = load_manifest(path)
    data["concerns"]["chat"]["revision"] = "chat_9999"
    save_manifest(path, data)
    message = refused(stores, path, agentkeep.SchemaOutOfDate, path, "chat_9999")
    assert "newer agentkeep" in message


def test_newer_backup_format(stores, setup):
    path, _ = setup
    data = load_manifest(path)
    data["format_version"] = 99
    save_manifest(path, data)
    refused(stores, path, agentkeep.SchemaOutOfDate, path, "upgrade agentkeep")


def test_unknown_concern(stores, setup):
    path, _ = setup
    data = load_manifest(path)
    data["concerns"]["imagegen"] = dict(data["concerns"]["app"])
    save_manifest(path, data)
    refused(stores, path, agentkeep.SchemaOutOfDate, path, "imagegen")


def test_missing_manifest(stores, setup):
    path, _ = setup
    (path / MANIFEST).unlink()
    refused(stores, path, agentkeep.StoreCorrupt, path, "no manifest.json")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": "agentkeep-backup"}', "",
                                  "[" * 100_000 + "]" * 100_000])
def test_manifest_that_is_not_one(stores, setup, text):
    path, _ = setup
    (path / MANIFEST).write_text(text)
    refused(stores, path, agentkeep.StoreCorrupt, path / MANIFEST)


def test_manifest_naming_a_file_outside_the_backup(stores, setup):
    path, _ = setup
    data = load_manifest(path)
    name = data["concerns"]["chat"]["file"]
    data["files"]["../../etc/passwd"] = data["files"].pop(name)
    data["concerns"]["chat"]["file"] = "../../etc/passwd"
    save_manifest(path, data)
    refused(stores, path, agentkeep.StoreCorrupt, "not a plain file name")


def test_file_missing_from_the_backup(stores, setup):
    path, _ = setup
    (path / data_file(path)).unlink()
    refused(stores, path, agentkeep.StoreCorrupt, path / data_file(path), "missing")


def test_row_counts_that_do_not_match(stores, setup):
    """The data is intact but the manifest says otherwise: caught before the store is
    replaced on SQLite, inside the one restore transaction (then rolled back) on
    PostgreSQL."""
    path, _ = setup
    data = load_manifest(path)
    data["concerns"]["chat"]["tables"]["messages"] += 1
    save_manifest(path, data)
    refused(stores, path, agentkeep.StoreCorrupt, "messages", "the manifest says")


@pytest.mark.parametrize("where", ["nothing", "file"])
def test_not_a_backup(stores, tmp_path, where):
    path = tmp_path / "missing"
    if where == "file":
        path.write_text("hello")
    stores.open().close()
    refused(stores, path, agentkeep.InvalidInput, path)


def test_backup_of_the_other_backend(stores, tmp_path):
    other = "postgres" if stores.backend == "sqlite" else "sqlite"
    from conftest import StoreFactory

    factory = StoreFactory(other, tmp_path / "other")
    try:
        with factory.open() as store:
            path = backup(store, tmp_path / "b").path
    finally:
        factory.cleanup()
    stores.open().close()
    refused(stores, path, agentkeep.InvalidInput, path, "use export and import")


# --- a target that must not be replaced ------------------------------------------------
def test_store_with_data_needs_force(stores, setup):
    path, _ = setup
    message = refused(stores, path, agentkeep.Conflict, "already holds data", "--force",
                      force=False)
    assert "chat" in message


def test_empty_store_needs_no_force(stores, tmp_path):
    with stores.open() as store:
        fill(store, sessions=1)
        path = backup(store, tmp_path / "b").path
        expected = dump_rows(stores)
        store.chat.purge_session(store.chat.list_sessions().items[0].id)
        for key in [s.key for s in store.settings.list()]:
            store.settings.delete(key)
    # the store is migrated but holds no rows any more (search state aside)
    result = restore(stores.target, path, **stores.options())
    assert dump_rows(stores) == expected
    assert result.previous is None  # an empty store is not worth keeping


WRITE_TRANSACTION = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "write":
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO settings (key, namespace, value, updated_at) "
                 "VALUES ('x.y', 'x', '1', '2026-01-01T00:00:00.000000+00:00')")
else:
    conn.execute("SELECT count(*) FROM settings").fetchone()
print("ready", flush=True)
sys.stdin.read()
"""


def _hold(stores, mode):
    """Another process holding the store (app.db): in a write transaction or idle."""
    if stores.backend == "sqlite":
        process = subprocess.Popen(
            [sys.executable, "-c", WRITE_TRANSACTION, str(stores.home / "app.db"), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        return process
    import psycopg

    from conftest import PG_URL

    conn = psycopg.connect(PG_URL, autocommit=True)
    conn.execute("BEGIN")
    conn.execute(f'SELECT * FROM "{stores.prefix}_app".settings FOR UPDATE')
    return conn


def _release(holder):
    if isinstance(holder, subprocess.Popen):
        holder.stdin.close()
        holder.wait(30)
    else:
        holder.execute("ROLLBACK")
        holder.close()


def test_another_process_in_a_write_transaction(stores, setup):
    path, _ = setup
    holder = _hold(stores, "write")
    try:
        message = refused(stores, path, agentkeep.StoreBusy)
    finally:
        _release(holder)
    if stores.backend == "sqlite":
        assert str(stores.home / "app.db") in message and "write transaction" in message
    else:
        assert f"{stores.prefix}_" in message and "in use" in message
    restore(stores.target, path, force=True, **stores.options())  # free again: works


def test_another_process_with_the_store_open(stores, setup):
    if stores.backend != "sqlite":
        pytest.skip("idle PostgreSQL sessions hold no lock and are not detected (documented)")
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("idle readers are detected through /proc only")
    path, _ = setup
    holder = _hold(stores, "read")
    try:
        message = refused(stores, path, agentkeep.StoreBusy, stores.home / "app.db",
                          f"pid {holder.pid}")
    finally:
        _release(holder)
    assert "another process" in message


def test_a_store_open_in_this_process(stores, setup):
    if stores.backend != "sqlite" or not os.path.isdir("/proc/self/fd"):
        pytest.skip("SQLite on Linux only")
    path, _ = setup
    store = stores.open()
    store.settings.get("anything")  # a pooled connection now has the files open
    refused(stores, path, agentkeep.StoreBusy, "this process has", "close it")
    restore(store, path, force=True)  # given the Store itself, restore closes it first
    assert store.is_closed


def test_a_failure_while_swapping_puts_the_old_store_back(stores, setup, monkeypatch):
    if stores.backend != "sqlite":
        pytest.skip("PostgreSQL swaps in one transaction (see test_row_counts_that_do_not_match)")
    path, _ = setup
    real_replace = os.replace
    calls = []

    def failing_replace(source, target):
        calls.append(Path(target).name)
        if Path(target).name == "app.db":  # chat.db is already replaced by then
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(restore_module.os, "replace", failing_replace)
    refused(stores, path, agentkeep.StoreUnavailable, stores.home, "No space left")
    assert calls[:2] == ["chat.db", "app.db"]


def test_restore_into_a_path_that_is_a_file(stores, setup, tmp_path):
    if stores.backend != "sqlite":
        pytest.skip("SQLite only")
    path, _ = setup
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(agentkeep.StoreUnavailable, match="is a file"):
        restore(blocker, path)
    assert blocker.read_text() == "x"


def test_verify_backup_reports_without_restoring(stores, setup):
    path, rows = setup
    assert verify_backup(path).concerns.keys() == set(CONCERNS)
    target = path / data_file(path)
    target.write_bytes(target.read_bytes()[:-10])
    reseal(path, data_file(path))
    with pytest.raises(agentkeep.StoreCorrupt, match=str(target)):
        verify_backup(path)


def test_a_failed_restore_into_a_new_directory_leaves_nothing(stores, setup, tmp_path):
    if stores.backend != "sqlite":
        pytest.skip("SQLite only")
    path, _ = setup
    target = path / data_file(path)
    target.write_bytes(target.read_bytes()[:4096])
    reseal(path, data_file(path))  # found only after unpacking into the new directory
    fresh = tmp_path / "fresh"
    with pytest.raises(agentkeep.StoreCorrupt, match=str(target)):
        restore(fresh, path)
    assert not fresh.exists()

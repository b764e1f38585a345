"""Backups that cannot be written: the right error naming the destination, no partial
backup under any name, and the store as it was."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_backup import dump_rows, fill, fill_noise

import agentkeep
from agentkeep.ops.backup import backup


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")


@pytest.fixture
def mounts():
    mounted: list[Path] = []

    def mount(where: Path, options: str) -> Path:
        mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def refused(stores, store, dest, error, *words, **options):
    before = dump_rows(stores)
    with pytest.raises(error) as caught:
        backup(store, dest, **options)
    for word in words:
        assert str(word) in str(caught.value), (word, str(caught.value))
    assert dump_rows(stores) == before
    return str(caught.value)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.is_dir() else []


def test_destination_under_a_regular_file(stores, tmp_path):
    store = stores.open()
    fill(store, sessions=1)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(stores, store, blocker / "backups", agentkeep.StoreUnavailable, blocker,
            "Not a directory")
    refused(stores, store, blocker, agentkeep.StoreUnavailable, blocker, "is a file")
    assert blocker.read_text() == "x"


def test_read_only_destination(stores, tmp_path, mounts):
    store = stores.open()
    fill(store, sessions=1)
    dest = mounts(tmp_path / "ro", "ro,size=1m")
    refused(stores, store, dest, agentkeep.StoreUnavailable, dest, "Read-only file system")
    refused(stores, store, dest / "sub", agentkeep.StoreUnavailable, dest / "sub",
            "Read-only file system")
    assert leftovers(dest) == []


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_disk_fills_up_during_the_backup(stores, tmp_path, mounts, compress):
    if compress and stores.backend == "postgres":
        pytest.skip("the same as without: pg_dump's uncompressed archive fills the disk first")
    store = stores.open()
    fill(store, sessions=1)
    fill_noise(store, 600)  # ~600 KB of incompressible text: more than the disk holds
    dest = mounts(tmp_path / "small", "size=200k")
    message = refused(stores, store, dest, agentkeep.StoreUnavailable, dest,
                      compress=compress)
    assert "full" in message or "No space left" in message, message
    assert leftovers(dest) == []  # the temporary directory is gone too
    # With room again, the same backup works.
    assert backup(store, tmp_path / "roomy", compress=compress).manifest.messages > 300


def test_pg_dump_missing(stores, tmp_path, monkeypatch):
    if stores.backend != "postgres":
        pytest.skip("PostgreSQL backups use pg_dump")
    store = stores.open()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = refused(stores, store, tmp_path / "b", agentkeep.StoreUnavailable,
                      "pg_dump was not found on PATH", "postgresql-client")
    assert "PATH" in message
    assert leftovers(tmp_path / "b") == []


def test_pg_dump_failing(stores, tmp_path, monkeypatch):
    if stores.backend != "postgres":
        pytest.skip("PostgreSQL backups use pg_dump")
    store = stores.open()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump: error: could not write to output file: "
                    "No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    refused(stores, store, tmp_path / "b", agentkeep.StoreUnavailable, "pg_dump",
            "No space left on device")
    assert leftovers(tmp_path / "b") == []


@pytest.mark.parametrize(("options", "field"), [
    ({"compress": "xz"}, "compress"),
    ({"compress": True}, "compress"),
    ({"compress": ["gzip"]}, "compress"),
    ({"concerns": "chat,nope"}, "concerns"),
    ({"concerns": []}, "concerns"),
    ({"concerns": 7}, "concerns"),
    ({"keep": 0}, "keep"),
    ({"keep": True}, "keep"),
    ({"keep": "3"}, "keep"),
])
def test_bad_arguments(store, tmp_path, options, field):
    with pytest.raises(agentkeep.InvalidInput) as caught:
        backup(store, tmp_path / "b", **options)
    assert caught.value.field == field
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("dest", [7, "", "bad\x00path"])
def test_bad_destination(store, dest):
    with pytest.raises(agentkeep.InvalidInput, match="dest"):
        backup(store, dest)


def test_closed_store(store, tmp_path):
    store.close()
    with pytest.raises(agentkeep.StoreClosed):
        backup(store, tmp_path / "b")
    assert not (tmp_path / "b").exists()

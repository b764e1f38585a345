"""``agentkeep backup`` and ``agentkeep restore``: output, JSON, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_backup import data_file, dump_rows, fill
from typer.testing import CliRunner

from agentkeep.cli import app
from agentkeep.concerns import CONCERNS
from agentkeep.migrations import known_revisions
from conftest import damage_sqlite


def run(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args],
                              env={"AGENTKEEP_HOME": None, "AGENTKEEP_URL": None,
                                   "AGENTKEEP_SCHEMA_PREFIX": None})


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def assert_one_line_error(result, code: int, *words: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def where(stores) -> list[str]:
    if stores.backend == "sqlite":
        return ["--home", str(stores.home)]
    return ["--url", str(stores.target), "--schema-prefix", stores.prefix]


def test_backup_and_restore_round_trip(stores, tmp_path):
    with stores.open() as store:
        fill(store, sessions=2)
    expected = dump_rows(stores)
    dest = tmp_path / "backups"

    made = json.loads(ok(*where(stores), "backup", dest, "--compress", "gzip", "--json").stdout)

    path = Path(made["path"])
    assert path.parent == dest and made["manifest"]["compression"] == "gzip"
    assert made["manifest"]["concerns"]["chat"]["tables"]["sessions"] == 2
    with stores.open() as store:
        fill(store, sessions=1, tag="later ")

    refused = run(*where(stores), "restore", path)
    assert_one_line_error(refused, 1, "already holds data", "--force")

    restored = json.loads(ok(*where(stores), "restore", path, "--force", "--json").stdout)

    assert restored["concerns"] == list(CONCERNS) and restored["previous"]
    assert dump_rows(stores) == expected


CHAT_HEAD = known_revisions("chat")[-1]


def test_text_output(stores, tmp_path):
    with stores.open() as store:
        fill(store, sessions=1)
    text = ok(*where(stores), "backup", tmp_path / "b", "--concern", "chat").stdout
    assert "Backed up" in text and CHAT_HEAD in text and "app_0001" not in text
    assert "Restore it with: agentkeep" in text
    path = next((tmp_path / "b").iterdir())
    assert str(path) in text
    hint = next(line for line in text.splitlines() if line.startswith("Restore it with: "))
    assert hint.endswith(f"restore {path} --force (the store it replaces is kept aside)")
    text = ok(*where(stores), "restore", path, "--force").stdout
    assert text.startswith("Restored ") and str(path) in text
    assert "The replaced store is kept in" in text


def test_keep(tmp_path):
    home = tmp_path / "store"
    ok("--home", home, "init")
    for _ in range(3):
        ok("--home", home, "backup", "--keep", "2")
    assert len(list((home / "backups").iterdir())) == 2  # the default destination


@pytest.mark.parametrize(("args", "words"), [
    (["backup", "--compress", "xz"], ["--compress", "gzip or zstd"]),
    (["backup", "--concern", "nope"], ["--concern", "nope"]),
    (["backup", "--keep", "0"], ["--keep"]),
    (["restore", "{tmp}/nothing-here"], ["nothing at", "nothing-here"]),
])
def test_usage_errors(tmp_path, args, words):
    home = tmp_path / "store"
    ok("--home", home, "init")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert_one_line_error(run("--home", home, *args), 2, *words)


def test_damaged_backup_exit_code(tmp_path):
    home = tmp_path / "store"
    ok("--home", home, "init")
    path = Path(json.loads(ok("--home", home, "backup", "--json").stdout)["path"])
    target = path / data_file(path)
    target.write_bytes(target.read_bytes()[:1000])
    assert_one_line_error(run("--home", home, "restore", path, "--force"), 4, str(target),
                          "truncated")


def test_damaged_store_exit_code(tmp_path):
    home = tmp_path / "store"
    ok("--home", home, "demo", "--sessions", "8", "--messages-per-session", "40")
    damage_sqlite(home / "chat.db")
    result = run("--home", home, "backup", tmp_path / "b")
    assert_one_line_error(result, 4, str(home / "chat.db"), "integrity_check")
    assert "Restore it with" not in result.stdout
    assert list((tmp_path / "b").iterdir()) == []


def test_unwritable_destination_exit_code(tmp_path):
    home = tmp_path / "store"
    ok("--home", home, "init")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run("--home", home, "backup", blocker / "sub"), 3, str(blocker))


def test_backup_needs_a_store(tmp_path):
    assert_one_line_error(run("--home", tmp_path / "none", "backup"), 1, "no agentkeep store")
    assert not (tmp_path / "none").exists()


def test_restore_creates_the_store(tmp_path):
    home = tmp_path / "store"
    ok("--home", home, "demo", "--sessions", "3", "--messages-per-session", "4")
    path = Path(json.loads(ok("--home", home, "backup", "--json").stdout)["path"])
    fresh = tmp_path / "fresh"
    result = json.loads(ok("--home", fresh, "restore", path, "--json").stdout)
    assert result["previous"] is None
    sessions = json.loads(ok("--home", fresh, "sessions", "list", "--json").stdout)
    assert len(sessions["items"]) == 3

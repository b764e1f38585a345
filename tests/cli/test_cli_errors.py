"""Every failure is one ``error: ...`` line on stderr with a documented exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import STORE_ENV, assert_one_line_error, json_of, ok, run

import agentkeep
from agentkeep.cli import stats as stats_module


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path):
    ok("--home", tmp_path / "store", "init")
    return tmp_path / "store"


def test_version():
    assert ok("--version").stdout.strip() == f"agentkeep {agentkeep.__version__}"


def test_no_command_prints_help_and_exits_2():
    result = run()
    assert result.exit_code == 2
    assert "Usage" in result.output and "sessions" in result.output


@pytest.mark.parametrize("args", [
    ["sessions", "list", "--limit", "0"],
    ["sessions", "list", "--limit", "many"],
    ["sessions", "list", "--bogus"],
    ["sessions", "show"],
    ["search"],
    ["bogus"],
    ["migrate", "up", "--to", "chat_0001"],
    ["migrate", "up", "--concern", "nope"],
    ["migrate", "down", "--concern", "nope", "--yes"],
    ["demo", "--sessions", "0"],
    ["--url", "mysql://localhost/db", "stats"],
])
def test_wrong_arguments_exit_2(home, args):
    result = run("--home", home, *args)
    assert_one_line_error(result, 2)
    assert result.stdout == ""


def test_home_and_url_together_exit_2(home):
    result = run("--home", home, "--url", "postgresql://localhost/db", "stats")
    assert_one_line_error(result, 2, "--home", "--url")


def test_invalid_input_from_the_library_exits_2(home):
    assert_one_line_error(run("--home", home, "sessions", "list", "--status", "bogus"), 2,
                          "status")
    assert_one_line_error(run("--home", home, "sessions", "list", "--cursor", "x"), 2,
                          "cursor")
    assert_one_line_error(run("--home", home, "search", "x", "--role", "robot"), 2, "role")


@pytest.mark.parametrize("args", [
    ["sessions", "show", "no-such-id"],
    ["sessions", "rm", "no-such-id"],
    ["sessions", "rm", "no-such-id", "--purge", "--yes"],
    ["sessions", "restore", "no-such-id"],
    ["search", "lisbon", "--session", "no-such-id"],
])
def test_missing_session_exits_1(home, args):
    assert_one_line_error(run("--home", home, *args), 1, "no-such-id")


def test_read_commands_do_not_create_a_store(tmp_path):
    missing = tmp_path / "typo"
    for args in (["sessions", "list"], ["search", "x"], ["stats"], ["migrate", "status"],
                 ["migrate", "check"], ["migrate", "down", "--yes"]):
        assert_one_line_error(run("--home", missing, *args), 1, "no agentkeep store")
    assert not missing.exists()


def test_home_that_is_a_file_exits_3(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a directory")
    for args in (["init"], ["sessions", "list"], ["demo", "--sessions", "1"]):
        assert_one_line_error(run("--home", path, *args), 3, "not a directory")


def test_file_that_is_not_a_database_exits_4(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    (home / "chat.db").write_bytes(b"garbage, not SQLite" * 300)
    for args in (["sessions", "list"], ["init"], ["migrate", "status"], ["stats"]):
        assert_one_line_error(run("--home", home, *args), 4, "chat.db")


def test_unreachable_postgres_exits_3():
    result = run("--url", "postgresql://postgres@127.0.0.1:1/nope", "sessions", "list")
    assert_one_line_error(result, 3, "cannot connect")


def test_debug_shows_the_traceback_then_the_error_line(home):
    result = run("--debug", "--home", home, "sessions", "show", "no-such-id")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: no session 'no-such-id'"


def test_unexpected_exception_is_an_internal_error(home, monkeypatch):
    def broken(store):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(stats_module, "gather_stats", broken)
    assert_one_line_error(run("--home", home, "stats"), 1, "internal error",
                          "ZeroDivisionError", "--debug")


def test_interrupt_exits_130(home, monkeypatch):
    def interrupted(store):
        raise KeyboardInterrupt

    monkeypatch.setattr(stats_module, "gather_stats", interrupted)
    assert_one_line_error(run("--home", home, "stats"), 130, "interrupted")


def test_console_script_reports_errors_the_same_way(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    process = subprocess.run([sys.executable, "-m", "agentkeep.cli", "--home", str(path),
                              "stats"], capture_output=True, text=True, timeout=60)
    assert process.returncode == 3
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1 and process.stderr.startswith("error: ")


def test_a_bad_since_names_the_formats_it_accepts(home):
    line = assert_one_line_error(run("--home", home, "export", "--since", "yesterday"), 2,
                                 "--since", "date or time", "2025-06-01 or", "'yesterday'")
    assert "time zone" not in line
    for accepted in ("2026-11-01", "2026-11-01T12:00", "2026-11-01T12:00:00Z"):
        assert run("--home", home, "export", "--since", accepted).exit_code == 0, accepted


@pytest.mark.parametrize("args", [
    ["prune", "--older-than", "1000000000d"],
    ["prune", "--older-than", "999999999w"],
    ["prune", "--grace", "36601d"],
    ["checkpoints", "prune", "--older-than", "1000000000d"],
])
def test_a_well_formed_but_too_large_age_says_so(home, args):
    line = assert_one_line_error(run("--home", home, *args, "--dry-run"), 2, args[-2],
                                 "too large", "at most 36600d", repr(args[-1]))
    assert "like 90d" not in line


@pytest.mark.parametrize(("args", "words", "library_words"), [
    (["prune", "--status", "active"], ["--status", "use --older-than or --keep-last"],
     ["older_than", "keep_last"]),
    (["export", "--concern", "bogus"], ["--concern", "bogus"], ["concerns"]),
    (["export", "--session", ""], ["--session"], ["session_ids"]),
    (["backup", "--concern", "bogus"], ["--concern", "bogus"], ["concerns"]),
    (["checkpoints", "prune", "--keep-last", "1", "--thread", ""], ["--thread"], ["thread_ids"]),
    (["search", "x", "--role", "robot"], ["Invalid value for --role", "robot"], []),
])
def test_invalid_input_names_the_option(home, args, words, library_words):
    line = assert_one_line_error(run("--home", home, *args), 2, *words)
    for word in library_words:
        assert word not in line, (word, line)


def test_messages_say_options_not_library_arguments(home, tmp_path):
    assert "--no-vacuum" in ok("--home", home, "optimize", "--no-vacuum").stdout
    backup = json_of("--home", home, "backup", tmp_path / "backups")["path"]
    with agentkeep.open(home) as store:
        store.chat.create_session(title="holds data")
    line = assert_one_line_error(run("--home", home, "restore", backup), 1, "--force")
    assert "force=True" not in line


@pytest.mark.parametrize(("args", "name"), [
    (["--home", "", "init"], "--home"),
    (["backup", ""], "DEST"),
    (["restore", ""], "BACKUP"),
    (["export", "-o", ""], "--output"),
    (["import", ""], "FILE"),
])
def test_an_empty_path_is_refused_not_taken_for_the_current_directory(home, tmp_path,
                                                                      monkeypatch, args, name):
    # An unset shell variable ("$DIR") must not make the current directory a store, a
    # backup destination or a backup to restore.
    where = tmp_path / "cwd"
    where.mkdir()
    monkeypatch.chdir(where)
    full = args if args[0] == "--home" else ["--home", home, *args]
    assert_one_line_error(run(*full), 2, name, "must not be empty")
    assert list(where.iterdir()) == []


def test_busy_timeout_sets_how_long_a_command_waits_for_a_writer(home):
    import sqlite3

    blocker = sqlite3.connect(home / "chat.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
    try:
        line = assert_one_line_error(
            run("--home", home, "--busy-timeout", "0.2", "sessions", "rm", "any", "--yes"),
            3, "is locked by another writer", "gave up after 0.2 s (--busy-timeout;")
        assert "(busy_timeout" not in line
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for bad in ("-1", "3601", "soon"):
        assert_one_line_error(run("--home", home, "--busy-timeout", bad, "stats"), 2,
                              "--busy-timeout")
    assert ok("--home", home, "--busy-timeout", "0", "stats").exit_code == 0

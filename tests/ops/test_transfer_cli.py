"""``agentkeep export`` and ``agentkeep import``."""

from __future__ import annotations

import gzip
import json
import os
import uuid

import pytest
from test_transfer import dump, fill
from typer.testing import CliRunner

import agentkeep
from agentkeep.cli import app
from conftest import PG_URL, drop_schemas, postgres_or_skip

STORE_ENV = ("AGENTKEEP_HOME", "AGENTKEEP_URL", "AGENTKEEP_SCHEMA_PREFIX")


def run(*args, input=None):
    env = {name: "" for name in STORE_ENV}
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)


def filled(path) -> None:
    with agentkeep.open(path) as store:
        fill(store)


@pytest.fixture
def pg_prefix():
    """A schema prefix on the test server, its schemas dropped afterwards."""
    postgres_or_skip()
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    drop_schemas(prefix)


def exported(tmp_path):
    """The export file of a filled SQLite store at tmp_path/a."""
    filled(tmp_path / "a")
    out = tmp_path / "a.jsonl"
    assert run("--home", tmp_path / "a", "export", "-o", out).exit_code == 0
    return out


def stores_equal(first, second) -> bool:
    with agentkeep.open(first) as a, agentkeep.open(second) as b:
        return dump(a) == dump(b)


def test_export_to_a_file_and_import_it(tmp_path):
    filled(tmp_path / "a")
    out = tmp_path / "store.jsonl"
    result = run("--home", tmp_path / "a", "export", "--output", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Exported ") and str(out) in result.stdout
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    result = run("--home", tmp_path / "b", "import", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sessions"] > 5 and summary["skipped"] == {}
    assert stores_equal(tmp_path / "a", tmp_path / "b")
    again = run("--home", tmp_path / "b", "import", out)
    assert again.exit_code == 0
    assert "Imported nothing" in again.stdout and "identical sessions" in again.stdout


def test_pipe_through_stdout_and_stdin(tmp_path):
    filled(tmp_path / "a")
    exported = run("--home", tmp_path / "a", "export", "--json")
    assert exported.exit_code == 0
    data = exported.stdout_bytes
    assert json.loads(data.splitlines()[0])["kind"] == "agentkeep-export"
    assert json.loads(exported.stderr)["messages"] > 0  # the summary went to stderr
    imported = run("--home", tmp_path / "b", "import", "-", input=data)
    assert imported.exit_code == 0, imported.output
    assert "from stdin" in imported.stdout
    assert stores_equal(tmp_path / "a", tmp_path / "b")


def test_gzip_and_selection(tmp_path):
    filled(tmp_path / "a")
    out = tmp_path / "some.jsonl.gz"
    result = run("--home", tmp_path / "a", "export", "--session", "aa-child",
                 "--session", "zz-parent", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["chat.sessions"] == 2
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert len(lines) == 2 + 2 + 1  # header, two sessions, the child's message, footer
    result = run("--home", tmp_path / "b", "import", out)
    assert result.exit_code == 0, result.output
    with agentkeep.open(tmp_path / "b") as store:
        assert store.chat.get_session("aa-child").parent_id == "zz-parent"
    since = run("--home", tmp_path / "a", "export", "--since", "2000-01-01", "--concern",
                "chat", "--concern", "app")
    assert since.exit_code == 0 and b'"app.settings"' in since.stdout_bytes


def test_errors_are_one_line(tmp_path):
    filled(tmp_path / "a")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "agentkeep-export", "format": 1, "revisions": {}}\nnot json\n')
    result = run("--home", tmp_path / "a", "import", bad)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {bad}:2: is not JSON (Expecting value at "
                                          "column 1)"]
    missing = run("--home", tmp_path / "new", "import", tmp_path / "nope.jsonl")
    assert missing.exit_code == 1 and "nope.jsonl" in missing.stderr
    assert not (tmp_path / "new").exists()  # no empty store left behind
    unknown = run("--home", tmp_path / "a", "export", "--session", "nope")
    assert unknown.exit_code == 1 and unknown.stderr == "error: no session 'nope'\n"
    no_store = run("--home", tmp_path / "none", "export")
    assert no_store.exit_code == 1 and "no agentkeep store" in no_store.stderr
    since = run("--home", tmp_path / "a", "export", "--since", "last week")
    assert since.exit_code == 2 and since.stderr.startswith("error: Invalid value for --since: ")
    nowhere = tmp_path / "no-such-dir" / "x.jsonl"
    no_dir = run("--home", tmp_path / "a", "export", "-o", nowhere)
    assert no_dir.exit_code == 2
    assert no_dir.stderr == (f"error: --output: cannot write {nowhere}: the directory "
                             f"{nowhere.parent} does not exist\n")
    (tmp_path / "afile").write_text("x")
    under_a_file = tmp_path / "afile" / "x.jsonl"
    not_dir = run("--home", tmp_path / "a", "export", "-o", under_a_file)
    assert not_dir.exit_code == 2
    assert not_dir.stderr == (f"error: --output: cannot write {under_a_file}: "
                              f"{under_a_file.parent} is a file, not a directory\n")


def test_sqlite_to_postgres_and_back(tmp_path, pg_prefix):
    out = exported(tmp_path)
    pg = ("--url", PG_URL, "--schema-prefix", pg_prefix)
    result = run(*pg, "import", out)
    assert result.exit_code == 0, result.output
    back = tmp_path / "back.jsonl"
    assert run(*pg, "export", "-o", back).exit_code == 0
    assert run("--home", tmp_path / "b", "import", back).exit_code == 0
    with agentkeep.open(tmp_path / "a") as a, agentkeep.open(tmp_path / "b") as b:
        assert dump(a, raw=True) == dump(b, raw=True)


def test_postgres_import_says_when_its_messages_are_not_indexed_yet(tmp_path, pg_prefix):
    out = exported(tmp_path)
    with agentkeep.open(PG_URL, schema_prefix=pg_prefix) as store, \
            store._backend.write("chat") as conn:
        conn.run("ALTER TABLE message_search RENAME TO message_search_away")
    result = run("--url", PG_URL, "--schema-prefix", pg_prefix, "import", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Imported ")
    assert "; indexing them for search failed (" in result.stdout
    assert "message_search" in result.stdout
    assert ("they are imported, and the next search or `agentkeep optimize` indexes them"
            in result.stdout)


def test_postgres_import_interrupted_while_indexing_says_it_was_committed(tmp_path,
                                                                          monkeypatch,
                                                                          pg_prefix):
    from agentkeep.chat.search import Search

    out = exported(tmp_path)

    def interrupted(self):  # Ctrl-C while the committed messages are indexed
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Search, "catch_up_index", interrupted)
        result = run("--url", PG_URL, "--schema-prefix", pg_prefix, "import", out)
    assert result.exit_code == 130
    assert result.stderr == (
        "error: interrupted after the import was committed, while its messages were "
        "being indexed for search; the next search or `agentkeep optimize` indexes "
        "them\n")
    with agentkeep.open(tmp_path / "a") as a, \
            agentkeep.open(PG_URL, schema_prefix=pg_prefix) as b:
        assert dump(b) == dump(a)
        assert {hit.message.id for hit in b.chat.search("edited question")} == \
            {hit.message.id for hit in a.chat.search("edited question")} != set()


def test_output_that_is_not_a_regular_file_is_written_in_place(tmp_path):
    """A FIFO (like /dev/stdout or a device) is written into, never replaced by a file; a
    symbolic link keeps pointing at its file, which gets the export; a directory is
    refused naming it."""
    import stat
    import threading

    filled(tmp_path / "a")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run("--home", tmp_path / "a", "export", "-o", fifo)
    reader.join(30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received[0].startswith(b'{"kind":"agentkeep-export"')
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]

    target, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    result = run("--home", tmp_path / "a", "export", "-o", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.is_file()
    assert len(target.read_bytes().splitlines()) == len(received[0].splitlines())

    result = run("--home", tmp_path / "a", "export", "-o", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: --output: cannot write {tmp_path}: it is a directory\n"


def test_damaged_gzip_and_json_errors_read_well(tmp_path):
    out = exported(tmp_path)
    data = gzip.compress(out.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = run("--home", tmp_path / "a", "import", cut)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {cut}:")
    assert result.stderr.endswith("the gzip data ends too soon: the file is truncated; "
                                  "nothing was imported\n")
    unterminated = tmp_path / "u.jsonl"
    unterminated.write_bytes(out.read_bytes().splitlines(keepends=True)[0]
                             + b'{"kind": "chat.sessions", "row": "open')
    result = run("--home", tmp_path / "a", "import", unterminated)
    assert result.stderr == (f"error: {unterminated}:2: is not JSON (Unterminated string "
                             "starting at column 34)\n")


def test_output_to_dev_stdout_is_written_as_stdout(tmp_path):
    """`-o /dev/stdout` into a file opened for appending keeps what the file held and
    puts the summary on stderr (a rename would have replaced the file); a name under
    /dev that leads to a regular file other than stdout is refused."""
    import subprocess
    import sys

    filled(tmp_path / "a")
    log = tmp_path / "log"
    log.write_text("precious\n")
    command = [sys.executable, "-m", "agentkeep.cli", "--home", str(tmp_path / "a"),
               "export", "-o"]
    with open(log, "ab") as appended:
        done = subprocess.run([*command, "/dev/stdout"], stdout=appended,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("Exported ") and "to stdout" in done.stderr
    lines = log.read_bytes().splitlines(keepends=True)
    assert lines[0] == b"precious\n" and lines[1].startswith(b'{"kind":"agentkeep-export"')
    assert run("--home", tmp_path / "b", "import", "-", input=b"".join(lines[1:])
               ).exit_code == 0
    with open(log, "ab") as appended:
        done = subprocess.run([*command, "/dev/stderr"], stdout=subprocess.PIPE,
                              stderr=appended, timeout=120)
    assert done.returncode == 2
    assert log.read_bytes().splitlines()[-1].startswith(
        b"error: --output: cannot write /dev/stderr: it leads to the file ")
    assert len(log.read_bytes().splitlines()) == len(lines) + 1

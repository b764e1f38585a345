"""agentkeep.ops.check and ``agentkeep check`` on both backends: clean stores stay clean,
damage made by raw SQL is found, and what is safe to repair is repaired."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from ops_helpers import cli, raw

import agentkeep
from agentkeep.demo import generate
from agentkeep.ops.check import MAX_LISTED, check
from conftest import damage_sqlite


def kinds(report):
    return sorted({finding.kind for finding in report})


def _sample(store):
    """Two sessions with usage, a tool call, an attachment and a file; searched once."""
    first = store.chat.create_session(title="Lisbon", provider="openai", model="gpt-4.1")
    store.chat.append(first.id, "user", "Flights to Lisbon?")
    answer = store.chat.append(
        first.id, "assistant", "Checking.", usage={"input_tokens": 12, "output_tokens": 30},
        cost=0.002, parts=[{"type": "tool_call", "id": "c1", "name": "flights",
                            "arguments": {"to": "LIS"}}])
    store.chat.attach(answer.id, b"pdf bytes", filename="ticket.pdf")
    second = store.chat.create_session(title="Code")
    store.chat.append(second.id, "user", "Fix the parser")
    store.chat.save_file(second.id, "parser.py", "print('v1')")
    store.chat.search("lisbon")
    return first, second


def test_a_fresh_store_is_clean(store, stores):
    report = check(store)
    assert list(report) == [] and report.is_clean and report.repairs == []
    result = cli(stores, "check")
    assert result.exit_code == 0, result.output
    assert "Clean: no problems found" in result.stdout


def test_a_demo_store_is_clean(store, stores):
    generate(store, sessions=4, messages_per_session=12)
    assert list(check(store)) == []
    data = json.loads(cli(stores, "check", "--json").stdout)
    assert data["clean"] is True and data["findings"] == []


def test_the_search_backlog_is_not_a_finding_and_check_changes_nothing(store, stores,
                                                                        monkeypatch):
    session, _ = _sample(store)
    for n in range(5):  # appended after the last search: not indexed yet, by design
        store.chat.append(session.id, "user", f"later question {n}")
    with raw(stores) as run:
        before = run("SELECT name, value FROM search_state")
    assert list(check(store)) == []
    with raw(stores) as run:
        assert run("SELECT name, value FROM search_state") == before
    # a big backlog is indexed for good first, so the checking transaction stays short
    monkeypatch.setattr("agentkeep.ops.check.MAX_ROLLED_BACK_BACKLOG", 2)
    assert list(check(store)) == []
    if stores.backend == "sqlite":
        with raw(stores) as run:
            assert run("SELECT value FROM search_state")[0][0] == \
                run("SELECT max(pk) FROM messages")[0][0]
    assert len(store.chat.search("later")) == 5


def test_a_wrong_counter_is_found_and_recounted(store, stores):
    session, other = _sample(store)
    with raw(stores) as run:
        run("UPDATE sessions SET message_count = message_count + 5, cost_nanos = 7 "
            "WHERE id = ?", (session.id,))
        run("UPDATE sessions SET output_tokens = 99 WHERE id = ?", (other.id,))
    report = check(store)
    wrong = [f for f in report if f.kind == "counters"]
    assert len(wrong) == 2 and all(f.repairable and not f.repaired for f in wrong)
    assert any(session.id in f.detail and "message_count 7 (recount 2)" in f.detail
               for f in wrong)
    result = cli(stores, "check")
    assert result.exit_code == 1 and "--repair" in result.stdout
    repaired = check(store, repair=True)
    assert repaired.is_clean and all(f.repaired for f in repaired)
    assert any("recounted" in line and "2 session" in line for line in repaired.repairs)
    fixed = store.chat.get_session(session.id)
    assert (fixed.message_count, fixed.input_tokens, fixed.output_tokens) == (2, 12, 30)
    assert fixed.cost == pytest.approx(0.002)
    assert store.chat.get_session(other.id).output_tokens == 0


def test_an_orphaned_blob_is_found_and_deleted(store, stores):
    _sample(store)
    stamp = "2026-01-01T00:00:00+00:00"
    with raw(stores) as run:
        run("INSERT INTO blobs (sha256, size, data, created_at) VALUES (?, ?, ?, ?)",
            ("f" * 64, 2, b"\x00\x01", stamp))
        blobs = run("SELECT count(*) FROM blobs")[0][0]
    report = check(store)
    assert [(f.kind, f.table, f.repairable) for f in report] == [("orphaned_blob", "blobs", True)]
    assert "f" * 64 in report[0].detail
    result = cli(stores, "check", "--repair", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["clean"] is True
    assert data["findings"][0]["repaired"] is True
    assert any("deleted 1 orphaned blob" in line for line in data["repairs"])
    with raw(stores) as run:  # only the orphan went
        assert run("SELECT count(*) FROM blobs")[0][0] == blobs - 1


def test_dangling_references_and_orphaned_tool_calls_are_reported_not_repaired(store, stores):
    session, other = _sample(store)
    foreign = store.chat.history(other.id)[0]
    with raw(stores) as run:
        run("UPDATE sessions SET head_id = ? WHERE id = ?", (foreign.id, session.id))
        run("UPDATE sessions SET summary_id = 'no-such-message' WHERE id = ?", (other.id,))
        if stores.backend == "sqlite":
            run("PRAGMA foreign_keys = OFF")
        else:
            run("SET session_replication_role = replica")  # foreign keys not enforced
        run("INSERT INTO tool_calls (id, session_id, message_id, name, input, status, "
            "retry_count, created_at) VALUES ('tc-orphan', ?, 'gone', 'x', '{}', 'pending', 0, "
            "?)", (session.id, "2026-01-01T00:00:00+00:00"))
    report = check(store, repair=True)
    found = {(f.kind, f.table) for f in report}
    assert ("dangling_reference", "sessions") in found
    assert ("orphaned_tool_call", "tool_calls") in found
    assert ("foreign_key", "tool_calls") in found  # SQLite's pragma; PostgreSQL's recount
    assert not report.is_clean and not any(f.repaired for f in report)
    details = " ".join(f.detail for f in report)
    assert f"of session {other.id}" in details and "no-such-message" in details
    assert "tc-orphan" in details


def test_a_wrong_head_depth_is_recomputed(store, stores):
    session, _ = _sample(store)
    with raw(stores) as run:
        run("UPDATE sessions SET head_depth = 40 WHERE id = ?", (session.id,))
    assert kinds(check(store)) == ["head_depth"]
    assert check(store, repair=True).is_clean
    store.chat.append(session.id, "user", "and now?")
    assert [m.depth for m in store.chat.history(session.id)] == [0, 1, 2]


def test_the_session_list_follows_active_at_changed_by_raw_sql(store, stores):
    """The list's index holds the second of active_at (chat_0004), kept by the database:
    SQLite triggers (check finds a missing one and stale rows, repair mends both),
    a generated column on PostgreSQL."""
    first, second = _sample(store)
    third = store.chat.create_session(title="third")
    times = {first.id: "2021-05-01T10:00:00.5+00:00", second.id: "2021-05-01T09:59:59+00:00",
             third.id: "2021-05-01T10:00:00.25+00:00"}
    newest_first = [first.id, third.id, second.id]
    with raw(stores) as run:
        for session_id, when in times.items():
            run("UPDATE sessions SET active_at = ? WHERE id = ?",
                (when if stores.backend == "sqlite" else datetime.fromisoformat(when),
                 session_id))
    assert [s.id for s in store.chat.list_sessions().items] == newest_first
    assert list(check(store)) == []
    if stores.backend != "sqlite":
        return
    with raw(stores) as run:
        run("DROP TRIGGER sessions_second_on_update")
        run("UPDATE sessions SET active_at = '2020-01-01T00:00:00+00:00' WHERE id = ?",
            (first.id,))
    # the stale second keeps first beside third, above second
    assert [s.id for s in store.chat.list_sessions().items] == [third.id, first.id, second.id]
    report = check(store)
    assert kinds(report) == ["activity_order"] and len(list(report)) == 2
    assert "sessions_second_on_update is missing" in " ".join(f.detail for f in report)
    repaired = check(store, repair=True)
    assert all(f.repaired for f in repaired) and check(store).is_clean
    assert [s.id for s in store.chat.list_sessions().items] == [third.id, second.id, first.id]
    store.chat.append(first.id, "user", "back on top")  # the re-created trigger moves it
    assert store.chat.list_sessions().items[0].id == first.id
    with raw(stores) as run:  # a trigger of the same name that does something else
        run("DROP TRIGGER sessions_second_on_insert")
        run("CREATE TRIGGER sessions_second_on_insert AFTER INSERT ON sessions BEGIN "
            "SELECT 1; END")
    report = check(store)
    assert [f.detail for f in report] == [
        "trigger sessions_second_on_insert is altered: the session list may fall out of order"]
    assert all(f.repaired for f in check(store, repair=True)) and check(store).is_clean
    newest = store.chat.create_session()  # the re-created insert trigger files it
    assert store.chat.list_sessions().items[0].id == newest.id


def test_drift_is_reported_and_never_repaired(store, stores):
    with raw(stores) as run:
        run("ALTER TABLE sessions ADD COLUMN extra TEXT")
    report = check(store, repair=True)
    assert [(f.kind, f.table, f.repairable, f.repaired) for f in report] == [
        ("drift", "sessions", False, False)]
    assert "extra" in report[0].detail
    result = cli(stores, "check")
    assert result.exit_code == 1 and "drift" in result.stdout
    with raw(stores) as run:
        run("ALTER TABLE sessions DROP COLUMN extra")
    assert check(store).is_clean


SQLITE_ONLY = pytest.mark.parametrize("stores", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("stores", ["postgres"], indirect=True)


@SQLITE_ONLY
@pytest.mark.parametrize("damage", ["shadow row deleted", "bogus row", "mark too high"])
def test_sqlite_search_index_damage_is_found_and_rebuilt(stores, damage):
    store = stores.open()
    session, _ = _sample(store)
    with raw(stores) as run:
        if damage == "shadow row deleted":
            run("DELETE FROM messages_fts_docsize WHERE id = (SELECT min(id) FROM "
                "messages_fts_docsize)")
        elif damage == "bogus row":
            run("INSERT INTO messages_fts (rowid, content) VALUES (424242, 'bogus words')")
        else:
            run("UPDATE search_state SET value = value + 10 WHERE name = 'fts'")
    report = check(store)
    assert kinds(report) == ["search_index"] and all(f.repairable for f in report)
    assert not any("malformed" in f.detail for f in report)  # the index, not the file
    repaired = check(store, repair=True)
    assert repaired.is_clean and any("rebuilt the full-text index" in line
                                     for line in repaired.repairs)
    assert [hit.message.content for hit in store.chat.search("lisbon")] == ["Flights to Lisbon?"]
    assert store.chat.search("bogus") == []
    store.chat.append(session.id, "user", "one more about Lisbon")
    assert len(store.chat.search("lisbon")) == 2


def _damaged_store(stores, **damage):
    with stores.open() as store:
        generate(store, sessions=6, messages_per_session=40)
        _sample(store)
    damage_sqlite(stores.home / "chat.db", **damage)
    return stores.open()


@SQLITE_ONLY
@pytest.mark.parametrize("repair", [False, True])
@pytest.mark.parametrize("far_child", [False, True], ids=["overwritten", "page-past-the-end"])
def test_a_damaged_file_is_listed_as_integrity_findings_and_never_repaired(stores, repair,
                                                                        far_child):
    """A copy of a demo store overwritten in the middle: exit 1 with what integrity_check
    says, not a StoreCorrupt error (exit 4), and --repair writes nothing into the file."""
    store = _damaged_store(stores, far_child=far_child)
    before = (stores.home / "chat.db").read_bytes()
    report = check(store, repair=repair)
    assert kinds(report) == ["integrity"] and not report.is_clean
    assert {f.concern for f in report} == {"chat"} and not any(f.repairable for f in report)
    assert 1 <= len(report) <= MAX_LISTED + 1 and report.repairs == []
    if far_child:  # the whole-file check stops there: the table is named instead
        assert [f.table for f in report] == ["messages"]
        assert "stopped at damage" in report[0].detail
    note = next(note for note in report.notes if "is damaged" in note)
    assert str(stores.home / "chat.db") in note and "restore a backup" in note.lower()
    assert ("nothing in it was repaired" in note) == repair
    store.close()
    assert (stores.home / "chat.db").read_bytes() == before

    result = cli(stores, "check", *(["--repair"] if repair else []))
    assert result.exit_code == 1, result.output
    assert " integrity: " in result.stdout and "Traceback" not in result.output
    assert "restore" in result.stdout and "problem(s) found" in result.stdout
    data = json.loads(cli(stores, "check", "--json").stdout)
    assert data["clean"] is False and {f["kind"] for f in data["findings"]} == {"integrity"}


@POSTGRES_ONLY
def test_postgres_search_structures_are_checked(stores):
    store = stores.open()
    with raw(stores) as run:
        run("DROP INDEX message_search_vector")
        run("ALTER TABLE messages DISABLE TRIGGER messages_queue_for_search")
    assert [(f.kind, f.repairable) for f in check(store)] == [("search_index", False),
                                                               ("search_index", True)]


@POSTGRES_ONLY
@pytest.mark.parametrize("damage", ["dropped", "disabled"])
def test_postgres_search_trigger_is_made_again_by_repair(stores, damage):
    """Without its trigger new messages were never found, and the finding said to migrate
    again, which does nothing at the head revision: --repair makes the trigger again and
    queues what it missed."""
    store = stores.open()
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "Flights to Lisbon?")
    assert len(store.chat.search("lisbon")) == 1  # indexed: the queue is empty again
    with raw(stores) as run:
        if damage == "dropped":
            run("DROP TRIGGER messages_queue_for_search ON messages")
        else:
            run("ALTER TABLE messages DISABLE TRIGGER messages_queue_for_search")
        run("DELETE FROM message_search")
    store.chat.append(session.id, "user", "and Porto?")  # not queued: no trigger
    assert [(f.table, f.repairable) for f in check(store)] == [("messages", True),
                                                               ("message_search", True)]
    repaired = check(store, repair=True)
    assert [f.repaired for f in repaired] == [True, True]
    assert not any("did not fix everything" in note for note in repaired.notes)
    assert any("re-created the trigger" in line and "queued 2 message(s)" in line
               for line in repaired.repairs)
    store.chat.append(session.id, "user", "then Madrid")  # queued by the trigger again
    assert {hit.message.content for hit in store.chat.search("lisbon OR porto OR madrid")} == {
        "Flights to Lisbon?", "and Porto?", "then Madrid"}
    assert check(store).is_clean


@POSTGRES_ONLY
def test_postgres_messages_missing_from_search_are_queued_by_repair(stores):
    store = stores.open()
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "Flights to Lisbon?")
    assert len(store.chat.search("lisbon")) == 1  # indexed: the queue is empty again
    with raw(stores) as run:
        run("DELETE FROM message_search")
    store.chat.append(session.id, "user", "and Porto?")  # queued, not lost
    found = [(f.kind, f.table, f.repairable) for f in check(store)]
    assert found == [("search_index", "message_search", True)]
    assert store.chat.search("lisbon") == []
    repaired = check(store, repair=True)
    assert [f.repaired for f in repaired] == [True]
    assert any("queued 1 message(s)" in line for line in repaired.repairs)
    assert {hit.message.content for hit in store.chat.search("lisbon OR porto")} == {
        "and Porto?", "Flights to Lisbon?"}
    assert check(store).is_clean


@POSTGRES_ONLY
def test_postgres_amcheck_runs_when_installed_else_a_note(stores):
    store = stores.open()
    _sample(store)
    with raw(stores) as run:
        installed = run("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")
        available = run("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'")
    report = check(store)
    assert list(report) == []
    if not installed:
        assert any("amcheck" in note for note in report.notes)
        if not available:
            pytest.skip("amcheck is not available on this server")
        with raw(stores) as run:  # in a schema of this test, dropped with it
            run(f'CREATE SCHEMA "{stores.prefix}_ext"')
            run(f'CREATE EXTENSION amcheck SCHEMA "{stores.prefix}_ext"')
    report = check(store)
    assert list(report) == [] and not any("amcheck" in note for note in report.notes)


@POSTGRES_ONLY
def test_postgres_foreign_key_violations_are_counted(stores):
    store = stores.open()
    session, _ = _sample(store)
    with raw(stores) as run:
        run("SET session_replication_role = replica")
        run("DELETE FROM messages WHERE session_id = ?", (session.id,))
    found = [f for f in check(store) if f.kind == "foreign_key"]
    assert {f.table for f in found} >= {"tool_calls", "attachments"}
    assert all("refer to missing rows of messages" in f.detail for f in found)


def test_bad_repair_flag_is_refused(store):
    from agentkeep import InvalidInput

    with pytest.raises(InvalidInput, match="repair"):
        check(store, repair="yes")


@POSTGRES_ONLY
@pytest.mark.parametrize("damage", ["dropped", "not folding", "no long-text function"])
def test_postgres_search_configuration_is_made_again_by_repair(stores, damage):
    """chat_0008's configuration and function: without the configuration every search
    fails; mapped without unaccent, 'cafe' no longer finds 'café'; without the function a
    message over 256 KB fails every search. --repair makes them again (and re-indexes
    what has accents)."""
    store = stores.open()
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "un café noir")
    store.chat.append(session.id, "user", "plain words")
    assert len(store.chat.search("cafe")) == 1  # indexed: the queue is empty again
    with raw(stores) as run:
        if damage == "dropped":
            run("DROP TEXT SEARCH CONFIGURATION search_english")
        elif damage == "not folding":
            run("ALTER TEXT SEARCH CONFIGURATION search_english "
                "ALTER MAPPING FOR word, hword, hword_part WITH english_stem")
            run("DELETE FROM message_search")
            run("INSERT INTO message_search (pk, search_vector) "
                "SELECT pk, to_tsvector('search_english', content) FROM messages")
        else:
            run("DROP FUNCTION search_vector_of_long_text(text)")
    if damage == "dropped":
        with pytest.raises(agentkeep.AgentkeepError, match="search_english"):
            store.chat.search("cafe")
    elif damage == "not folding":
        assert store.chat.search("cafe") == []
    (finding,) = check(store)
    assert (finding.kind, finding.table, finding.repairable) == ("search_index", None, True)
    expected = {"dropped": "search_english is missing", "not folding": "does not fold",
                "no long-text function": "search_vector_of_long_text is missing"}[damage]
    assert expected in finding.detail
    repaired = check(store, repair=True)
    assert [f.repaired for f in repaired] == [True]
    queued = 0 if damage == "no long-text function" else 1
    assert any(f"queued {queued} message(s)" in line for line in repaired.repairs), \
        repaired.repairs
    store.chat.append(session.id, "tool", "long " + "filler " * 50_000)  # over 256 KB
    assert [hit.message.content for hit in store.chat.search("cafe")] == ["un café noir"]
    assert [hit.message.content for hit in store.chat.search("plain")] == ["plain words"]
    assert [hit.message.role for hit in store.chat.search("filler")] == ["tool"]
    assert check(store).is_clean

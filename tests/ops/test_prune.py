"""agentkeep.ops.prune and ``agentkeep prune`` on both backends: a prune removes exactly
what its dry run listed, honours keep-last, status and the grace period, works in
batches, removes blobs only when nothing refers to them, and refuses bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ops_helpers import cli, raw

from agentkeep import InvalidInput
from agentkeep.ops import prune
from agentkeep.ops.check import check

NOW = datetime.now(timezone.utc)


def backdate(stores, session_id, days, column="active_at"):
    """Set a session's ``column`` to ``days`` ago, as the dialect stores times."""
    moment = NOW - timedelta(days=days)
    value = moment.isoformat() if stores.backend == "sqlite" else moment
    with raw(stores) as run:
        run(f"UPDATE sessions SET {column} = ? WHERE id = ?", (value, session_id))


def all_sessions(stores):
    with raw(stores) as run:
        return {row[0] for row in run("SELECT id FROM sessions")}


def blob_count(stores):
    with raw(stores) as run:
        return run("SELECT count(*) FROM blobs")[0][0]


def make_sessions(store, stores, ages, *, messages=2):
    """One session per age in days (last activity that long ago), oldest last."""
    ids = []
    for age in ages:
        session = store.chat.create_session(title=f"{age} days old")
        store.chat.append_many(session.id, [{"role": "user", "content": f"question {n}"}
                                            for n in range(messages)])
        backdate(stores, session.id, age)
        ids.append(session.id)
    return ids


def test_prune_removes_exactly_what_the_dry_run_listed(store, stores):
    ids = make_sessions(store, stores, [1, 10, 20, 40, 50, 60, 70])
    old, young = ids[3:], ids[:3]
    # blobs: one shared by an old and a young session, one only an old session has
    shared, own = b"shared attachment", b"only the old one has this"
    store.chat.attach(store.chat.history(old[0])[0].id, shared, filename="a.txt")
    store.chat.attach(store.chat.history(young[0])[0].id, shared, filename="a.txt")
    store.chat.save_file(old[1], "notes.md", own)
    store.chat.search("question")  # index everything, so purges must unindex
    before, blobs = all_sessions(stores), blob_count(stores)

    dry = cli(stores, "prune", "--older-than", "30d", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    listed = json.loads(dry.stdout)
    assert listed["dry_run"] is True
    assert [s["id"] for s in listed["sessions"]] == old  # newest activity first
    assert listed["rows"]["messages"] == 8 and listed["blobs"] == 1
    assert all_sessions(stores) == before and blob_count(stores) == blobs  # changed nothing
    text = cli(stores, "prune", "--older-than", "30d", "--dry-run")
    assert all(session_id in text.stdout for session_id in old)
    assert "Would purge 4 session(s)" in text.stdout

    done = cli(stores, "prune", "--older-than", "30d", "--yes", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)["result"]
    assert before - all_sessions(stores) == {s["id"] for s in listed["sessions"]}
    assert all_sessions(stores) == set(young)
    assert sorted(result["purged"]) == sorted(old) and result["skipped"] == []
    assert result["rows"] == listed["rows"] and result["blobs"] == 1
    assert blob_count(stores) == blobs - 1  # the shared blob stays, the young one needs it
    assert store.chat.read_attachment(store.chat.attachments(
        store.chat.history(young[0])[0].id)[0].id) == shared
    assert len(store.chat.search("question")) == 6
    assert check(store).is_clean


def test_keep_last_keeps_the_most_recently_active(store, stores):
    ids = make_sessions(store, stores, [5, 15, 25, 35, 45])
    planned = prune.plan(store, keep_last=2)
    assert planned.session_ids == ids[2:]
    assert {s.reason for s in planned.sessions} == {"retention"}
    assert prune.plan(store, older_than="20d", keep_last=4).session_ids == ids[4:]
    assert prune.plan(store, keep_last=0).session_ids == ids
    result = prune.apply(store, planned)
    assert sorted(result.purged) == sorted(ids[2:])
    assert all_sessions(stores) == set(ids[:2])


def test_status_filter(store, stores):
    ids = make_sessions(store, stores, [10, 20, 30, 40])
    store.chat.archive_session(ids[1])
    store.chat.archive_session(ids[3])
    store.chat.delete_session(ids[2])
    assert prune.plan(store, status="archived").session_ids == [ids[1], ids[3]]
    assert prune.plan(store, status="archived", older_than="25d").session_ids == [ids[3]]
    assert prune.plan(store, status="archived", keep_last=1).session_ids == [ids[3]]
    assert prune.plan(store, status="deleted").session_ids == [ids[2]]
    result = cli(stores, "prune", "--status", "archived", "--yes")
    assert result.exit_code == 0 and "Purged 2 session(s)" in result.stdout
    assert all_sessions(stores) == {ids[0], ids[2]}


def test_grace_purges_soft_deleted_sessions_past_it(store, stores):
    ids = make_sessions(store, stores, [1, 2, 3])
    for session_id in ids[1:]:
        store.chat.delete_session(session_id)
    backdate(stores, ids[2], 40, column="deleted_at")  # deleted 40 days ago
    planned = prune.plan(store, grace="30d")
    assert planned.session_ids == [ids[2]] and planned.sessions[0].reason == "grace"
    # keep_last protects by activity, never a session deleted past its grace period
    assert prune.plan(store, grace="30d", keep_last=10).session_ids == [ids[2]]
    assert prune.plan(store, grace="2w", older_than="90d").session_ids == [ids[2]]
    assert prune.plan(store, grace="0m").session_ids == ids[1:]
    prune.apply(store, planned)
    assert all_sessions(stores) == set(ids[:2])
    assert store.chat.restore_session(ids[1]).status == "active"


def test_batches_commit_one_by_one_so_writers_get_in(store, stores):
    ids = make_sessions(store, stores, [40, 41, 42, 43, 44])
    keep = store.chat.create_session(title="busy")
    impatient = stores.open(busy_timeout=0.2)  # StoreBusy if a batch still held the lock
    calls = []

    def progress(done, total):
        calls.append((done, total))
        impatient.chat.append(keep.id, "user", f"written between batches {done}")

    result = prune.apply(store, older_than="30d", batch_size=2, progress=progress)
    assert result.batches == 3 and calls == [(2, 5), (4, 5), (5, 5)]
    assert sorted(result.purged) == sorted(ids)
    assert store.chat.get_session(keep.id).message_count == 3
    with pytest.raises(InvalidInput, match="batch_size"):
        prune.apply(store, older_than="30d", batch_size=0)
    with pytest.raises(InvalidInput, match="give a plan from prune.plan") as raised:
        prune.apply(store, None)
    assert raised.value.field == "plan"


def test_a_session_changed_after_the_plan_is_left_alone(store, stores):
    ids = make_sessions(store, stores, [40, 50])
    planned = prune.plan(store, older_than="30d")
    store.chat.append(ids[0], "user", "I am back")  # new activity after the plan
    store.chat.purge_session(ids[1])  # and one went away meanwhile
    result = prune.apply(store, planned)
    assert result.purged == () and sorted(result.skipped) == sorted(
        [(ids[0], "changed"), (ids[1], "gone")])
    assert all_sessions(stores) == {ids[0]}


CHANGES_BESIDE_MESSAGES = {
    "a file version": lambda chat, sid, call: chat.save_file(sid, "notes.txt", "after the plan"),
    "an attachment": lambda chat, sid, call: chat.attach(
        chat.get_session(sid).head_id, b"after the plan", filename="a.txt"),
    "a tool call recorded": lambda chat, sid, call: chat.record_tool_call(
        chat.get_session(sid).head_id, "search"),
    "a tool call started": lambda chat, sid, call: chat.start_tool_call(call),
    "a tool call finished": lambda chat, sid, call: chat.finish_tool_call(call, output=1),
}


@pytest.mark.parametrize("change", sorted(CHANGES_BESIDE_MESSAGES))
def test_a_session_given_more_than_messages_after_the_plan_is_left_alone(store, stores,
                                                                         change):
    """Writes that leave the session row alone (it used to compare updated_at only, and
    purged a session given a file after its dry run)."""
    (sid,) = make_sessions(store, stores, [40])
    asked = store.chat.append(sid, "assistant", "calling", parts=[
        {"type": "tool_call", "id": "c1", "name": "search", "arguments": {}}])
    backdate(stores, sid, 40)
    (call,) = store.chat.tool_calls(sid)
    if change == "a tool call finished":
        store.chat.start_tool_call(call.id)
    planned = prune.plan(store, older_than="30d")
    assert [s.id for s in planned.sessions] == [sid]
    CHANGES_BESIDE_MESSAGES[change](store.chat, sid, call.id)
    result = prune.apply(store, planned)
    assert (result.purged, result.skipped) == ((), ((sid, "changed"),))
    assert store.chat.get_message(asked.id).content == "calling"
    assert prune.apply(store, older_than="30d").purged == (sid,)  # a new plan takes it


def test_blobs_go_only_when_nothing_refers_to_them(store, stores):
    old, young = make_sessions(store, stores, [60, 1])
    store.chat.save_file(old, "a.py", "shared between sessions")
    store.chat.save_file(young, "b.py", "shared between sessions")
    store.chat.save_file(old, "a.py", "old only, version 2")
    with raw(stores) as run:  # an orphan left over from before: referred to by nothing
        run("INSERT INTO blobs (sha256, size, data, created_at) VALUES (?, ?, ?, ?)",
            ("0" * 64, 4, b"lost", "2026-01-01T00:00:00+00:00"))
    planned = prune.plan(store, older_than="30d")
    assert planned.blobs == 2 and planned.blob_bytes == 4 + len("old only, version 2")
    result = prune.apply(store, planned)
    assert result.blobs == 2 and result.rows["file_versions"] == 2
    assert blob_count(stores) == 1
    assert store.chat.read_file(young, "b.py") == b"shared between sessions"
    assert check(store).is_clean


BAD_DURATIONS = ["90", "1.5d", "-3d", "90 days", "3y", "", " 90d", "d", "90D", "1e3d",
                 "99999999999d", 90, 1.5, True, ["90d"],
                 # too large: past timedelta's range, and past int()'s 4,300 digits
                 "999999999w", "36601d", "1" + "0" * 5000 + "d"]


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=[repr(v) for v in BAD_DURATIONS])
def test_bad_durations_are_refused(value):
    with pytest.raises(InvalidInput, match="older_than"):
        prune.parse_duration("older_than", value)


def test_durations():
    assert prune.parse_duration("x", "90d") == timedelta(days=90)
    assert prune.parse_duration("x", "12h") == timedelta(hours=12)
    assert prune.parse_duration("x", "30m") == timedelta(minutes=30)
    assert prune.parse_duration("x", "2w") == timedelta(weeks=2)
    assert prune.parse_duration("x", "0m") == timedelta(0)
    assert prune.parse_duration("x", "000090d") == timedelta(days=90)
    assert prune.parse_duration("x", "36600d") == timedelta(days=36600)  # the 100 years
    assert prune.parse_duration("x", timedelta(days=1)) == timedelta(days=1)
    with pytest.raises(InvalidInput):
        prune.parse_duration("x", timedelta(days=-1))
    assert prune.format_duration(timedelta(weeks=2)) == "2w"
    assert prune.format_duration(timedelta(hours=36)) == "36h"


BAD_CRITERIA = [
    ({"older_than": "90 days"}, "older_than"),
    ({"grace": "soon"}, "grace"),
    ({"keep_last": -1}, "keep_last"),
    ({"keep_last": True}, "keep_last"),
    ({"keep_last": "10"}, "keep_last"),
    ({"status": "active"}, "status"),
    ({"status": "ARCHIVED"}, "status"),
    ({}, "criteria"),
]
BAD_ARGS = [
    (["--older-than", "90days"], ["--older-than", "duration"]),
    (["--grace", "-1d"], ["--grace", "duration"]),
    (["--keep-last", "-1"], ["--keep-last", "non-negative"]),
    (["--status", "active"], ["--status", "archived or deleted"]),
    ([], ["give at least one of --older-than"]),
    (["--older-than", "1d", "--batch-size", "0"], ["--batch-size"]),
]


def test_bad_criteria_raise_and_change_nothing(store, stores):
    ids = make_sessions(store, stores, [100])
    for options, field in BAD_CRITERIA:
        with pytest.raises(InvalidInput) as caught:
            prune.plan(store, **options)
        assert caught.value.field == field, options
        with pytest.raises(InvalidInput):
            prune.apply(store, **options)
    assert all_sessions(stores) == set(ids)


def test_bad_cli_input_is_a_one_line_usage_error(store, stores):
    ids = make_sessions(store, stores, [100])
    for args, words in BAD_ARGS:
        result = cli(stores, "prune", *args, "--yes")
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        for word in words:
            assert word in lines[0], (word, lines[0])
    assert all_sessions(stores) == set(ids)


def test_cli_asks_first_and_declining_changes_nothing(store, stores):
    ids = make_sessions(store, stores, [100])
    result = cli(stores, "prune", "--older-than", "30d", input="n\n")
    assert result.exit_code == 1 and "for good?" in result.stdout
    assert result.stderr.splitlines()[-1] == "error: aborted"
    assert all_sessions(stores) == set(ids)
    nothing = cli(stores, "prune", "--older-than", "200d", "--yes")
    assert nothing.exit_code == 0 and "Nothing to prune." in nothing.stdout


def test_configured_retention_is_validated_and_applied(store, stores):
    ids = make_sessions(store, stores, [1, 40, 50])
    with pytest.raises(InvalidInput, match="retention.chat"):
        prune.set_retention(store, {"older_than": "30 days"})
    with pytest.raises(InvalidInput, match="unknown field 'grace'"):
        prune.set_retention(store, {"grace": "30d"})
    with pytest.raises(InvalidInput, match="retention.chat.keep_last"):
        prune.set_retention(store, {"keep_last": -5})
    assert store.settings.get(prune.RETENTION_KEY) is None
    prune.set_retention(store, {"older_than": "30d", "keep_last": 2, "deleted_grace": "30d"})
    assert prune.retention(store) == prune.Criteria(timedelta(days=30), 2, None,
                                                    timedelta(days=30))
    planned, result = prune.apply_retention(store)
    assert planned.session_ids == [ids[2]] and list(result.purged) == [ids[2]]
    prune.set_retention(store, None)
    assert prune.apply_retention(store) is None and all_sessions(stores) == set(ids[:2])

"""Crash safety: a child process writes and is SIGKILLed at random moments.

After every kill the store must open, ``check`` must be clean, every write the child
reported as committed must be there, and nothing half-written may be visible (counters
equal recounts, no message without its session, no tool call without its message, no
partial batch). The same for a kill during a migration, a backup, an import and a prune.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import defaultdict

import pytest
from reliability_helpers import (
    broken_invariants,
    check_findings,
    child,
    dump_store,
    env_int,
    raw_rows,
    record,
    target_args,
)

from agentkeep.ops import prune
from agentkeep.ops.backup import list_backups
from agentkeep.ops.restore import verify_backup
from agentkeep.ops.transfer import export_store, import_store
from conftest import StoreFactory

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

#: Kills of the writing child per backend (the issue asks for at least 50).
KILLS = env_int("KILLS", 50)
#: Kills during each of migration, backup, import and prune, per backend.
OPERATION_KILLS = env_int("OPERATION_KILLS", 10)
#: The writer is killed after 0..MAX_REPORTS_BEFORE_KILL reported commits, plus a random
#: 0..30 ms, so kills land before, during and between transactions.
MAX_REPORTS_BEFORE_KILL = 30
SEED = env_int("SEED", int(time.time()))


def read_reports(process, count: int) -> list[dict]:
    """Read ``count`` reports (or until the child ends); fail with its stderr if it died."""
    reports = []
    while len(reports) < count:
        line = process.stdout.readline()
        if not line:
            process.wait()
            raise AssertionError(f"the child ended early ({process.returncode}): "
                                 f"{process.stderr.read().decode()[-2000:]}")
        reports.append(json.loads(line))
    return reports


def kill(process, *, may_have_finished: bool = False) -> list[dict]:
    """SIGKILL the child; returns the complete reports it wrote before dying.

    With ``may_have_finished``, a child that ended on its own first (a one-shot operation
    on a machine faster than when it was timed) is no error: ``process.returncode`` says.
    """
    os.kill(process.pid, signal.SIGKILL)
    rest = process.stdout.read()
    process.wait()
    errors = process.stderr.read().decode()
    if not (may_have_finished and process.returncode == 0):
        assert process.returncode == -signal.SIGKILL, (process.returncode, errors[-2000:])
    reports = []
    for line in rest.split(b"\n"):
        try:
            reports.append(json.loads(line))
        except ValueError:
            continue  # the line the kill cut short (or the empty tail)
    return reports


def assert_sound(stores, store) -> None:
    """check is clean and no invariant is broken."""
    assert check_findings(store) == []
    assert broken_invariants(stores) == {}


def missing_commits(stores, reports: list[dict]) -> list[dict]:
    """The reported commits that are not in the store (read outside agentkeep)."""
    sessions = {row[0] for row in raw_rows(stores, "SELECT id FROM sessions")}
    messages = {row[0] for row in raw_rows(stores, "SELECT id FROM messages")}
    calls = {row[0] for row in raw_rows(stores, "SELECT id FROM tool_calls")}
    attachments = set(raw_rows(stores, "SELECT a.id, a.size, b.sha256 FROM attachments a "
                                       "JOIN blobs b ON b.sha256 = a.blob_sha256"))
    files = set(raw_rows(stores, "SELECT session_id, path, version, size FROM file_versions"))
    missing = []
    for report in reports:
        kind = report["kind"]
        present = {
            "session": lambda r: r["id"] in sessions,
            "message": lambda r: r["id"] in messages,
            "batch": lambda r: set(r["ids"]) <= messages,
            "tool_call": lambda r: r["id"] in calls,
            "attachment": lambda r: (r["id"], r["size"], r["sha256"]) in attachments,
            "file": lambda r: (r["session"], r["path"], r["version"], r["size"]) in files,
        }.get(kind)
        if present is not None and not present(report):
            missing.append(report)
    return missing


def partial_batches(stores) -> dict[str, tuple[int, int]]:
    """Batches (append_many calls) of which only some messages are stored."""
    counts: dict[str, int] = defaultdict(int)
    sizes: dict[str, int] = {}
    for (metadata,) in raw_rows(stores, "SELECT metadata FROM messages "
                                        "WHERE content LIKE 'batch %'"):
        data = metadata if isinstance(metadata, dict) else json.loads(metadata)
        counts[data["batch"]] += 1
        sizes[data["batch"]] = data["size"]
    return {token: (counts[token], sizes[token]) for token in counts
            if counts[token] != sizes[token]}


def test_kill_the_writer(stores, request):
    rng = random.Random(SEED)
    stores.open().close()  # migrated once, so every child starts writing at once
    reports: list[dict] = []
    for _ in range(KILLS):
        process = child("crash_child.py", "write", *target_args(stores))
        read_reports(process, 1)  # "start": the store is open
        reports += read_reports(process, rng.randint(0, MAX_REPORTS_BEFORE_KILL))
        time.sleep(rng.uniform(0, 0.03))
        reports += kill(process)
        with stores.open() as store:
            assert_sound(stores, store)
            missing = missing_commits(stores, reports)
            assert missing == [], f"committed and lost after a kill (seed {SEED})"
            assert partial_batches(stores) == {}
    written = sum(len(r.get("ids", [1])) for r in reports if r["kind"] != "start")
    assert written > KILLS  # the kills did not all land before the first write
    record(request.config, "crash: writer", stores.backend, kills_survived=KILLS,
           operations_raced=written, rows_lost=len(missing))


def measured(process, until: str = "done") -> float:
    """Seconds from the child's ``start`` report to its ``until`` report."""
    read_reports(process, 1)
    started = time.monotonic()
    while read_reports(process, 1)[0]["kind"] != until:
        pass
    elapsed = time.monotonic() - started
    if until == "done":
        process.wait()
    else:
        kill(process)
    return elapsed


def test_kill_during_migration(stores, request, tmp_path):
    rng = random.Random(SEED)
    duration = measured(child("crash_child.py", "migrate", *target_args(stores)))
    kills = attempt = 0
    while kills < OPERATION_KILLS:
        attempt += 1
        assert attempt <= 3 * OPERATION_KILLS, "the migration always finished before the kill"
        fresh = StoreFactory(stores.backend, tmp_path / f"migrate{attempt}")
        try:
            process = child("crash_child.py", "migrate", *target_args(fresh))
            read_reports(process, 1)
            time.sleep(rng.uniform(0, duration))
            kill(process, may_have_finished=True)
            kills += process.returncode == -signal.SIGKILL
            with fresh.open() as store:  # migrates what the kill left, or finds it done
                assert_sound(fresh, store)
                session = store.chat.create_session(title="after the kill")
                store.chat.append(session.id, "user", "works")
            with fresh.open(migrate=False) as store:  # and the schema is current
                assert store.chat.get_session(session.id).message_count == 1
        finally:
            fresh.cleanup()
    record(request.config, "crash: migration", stores.backend, kills_survived=OPERATION_KILLS)


def fill(store, sessions: int, messages: int, tag: str = "") -> list[str]:
    ids = []
    for number in range(sessions):
        session = store.chat.create_session(title=f"{tag}{number}", metadata={"n": number})
        store.chat.append_many(session.id, [
            {"role": "user", "content": f"{tag} message {i} about lisbon",
             "usage": {"input_tokens": i}} for i in range(messages)])
        last = store.chat.append(session.id, "assistant", "ok", parts=[
            {"type": "tool_call", "id": "c1", "name": "look", "arguments": {"n": number}}])
        store.chat.attach(last.id, f"{tag} attachment {number}".encode(), filename="a.txt",
                          media_type="text/plain")
        store.chat.save_file(session.id, "main.py", f"print({number})")
        ids.append(session.id)
    store.settings.set(f"crash.{tag or 'x'}", {"sessions": sessions})
    return ids


def test_kill_during_backup(stores, request, tmp_path):
    rng = random.Random(SEED)
    with stores.open() as store:
        fill(store, 20, 30)
    before = dump_store(stores)
    dest = tmp_path / "backups"
    process = child("crash_child.py", "backup", *target_args(stores), str(dest))
    duration = measured(process, until="backup")
    for _ in range(OPERATION_KILLS):
        process = child("crash_child.py", "backup", *target_args(stores), str(dest))
        read_reports(process, 1)
        time.sleep(rng.uniform(0, duration))
        kill(process)
        time.sleep(0.2)  # pg_dump, a child of the killed process, may still be finishing
        with stores.open() as store:
            assert_sound(stores, store)
        assert dump_store(stores) == before
        # Whatever looks like a backup is a complete one.
        visible = [entry for entry in dest.iterdir() if not entry.name.startswith(".")]
        backups = list_backups(dest)
        assert sorted(m.path for m in backups) == sorted(visible)
        for manifest in backups:
            verify_backup(manifest.path)
    record(request.config, "crash: backup", stores.backend, kills_survived=OPERATION_KILLS)


def test_kill_during_import(stores, request, tmp_path):
    rng = random.Random(SEED)
    with stores.open() as store:
        fill(store, 30, 40)
        export = tmp_path / "export.jsonl"
        with open(export, "w", encoding="utf-8") as out:
            export_store(store, out)
    sessions_total = raw_rows(stores, "SELECT count(*) FROM sessions")[0][0]
    fresh = StoreFactory(stores.backend, tmp_path / "timing")
    try:
        fresh.open().close()
        duration = measured(child("crash_child.py", "import", *target_args(fresh),
                                  str(export)))
    finally:
        fresh.cleanup()
    kills = attempt = 0
    while kills < OPERATION_KILLS:
        attempt += 1
        assert attempt <= 3 * OPERATION_KILLS, "the import always finished before the kill"
        fresh = StoreFactory(stores.backend, tmp_path / f"import{attempt}")
        try:
            fresh.open().close()
            process = child("crash_child.py", "import", *target_args(fresh), str(export))
            read_reports(process, 1)
            time.sleep(rng.uniform(0, duration))
            kill(process, may_have_finished=True)
            kills += process.returncode == -signal.SIGKILL
            with fresh.open() as store:
                assert_sound(fresh, store)
                # One transaction per concern: all of the file's sessions or none.
                count = raw_rows(fresh, "SELECT count(*) FROM sessions")[0][0]
                assert count in (0, sessions_total)
                import_store(store, export)  # and importing again completes it
                assert_sound(fresh, store)
                count = raw_rows(fresh, "SELECT count(*) FROM sessions")[0][0]
                assert count == sessions_total
        finally:
            fresh.cleanup()
    record(request.config, "crash: import", stores.backend, kills_survived=OPERATION_KILLS)


def test_kill_during_prune(stores, request):
    rng = random.Random(SEED)
    duration = None
    kills = attempt = 0
    while kills < OPERATION_KILLS:
        attempt += 1
        assert attempt <= 3 * OPERATION_KILLS, "the prune always finished before the kill"
        with stores.open() as store:
            doomed = fill(store, 24, 8, tag=f"p{attempt}-")
            for session_id in doomed:
                store.chat.delete_session(session_id)
            counts = {s: store.chat.recount(s)[0] for s in doomed}
        process = child("crash_child.py", "prune", *target_args(stores))
        if duration is None:  # the first round only measures
            duration = measured(process)
            continue
        read_reports(process, 1)
        time.sleep(rng.uniform(0, duration))
        kill(process, may_have_finished=True)
        kills += process.returncode == -signal.SIGKILL
        with stores.open() as store:
            assert_sound(stores, store)
            stored = dict(raw_rows(stores, "SELECT session_id, count(*) FROM messages "
                                           "GROUP BY session_id"))
            left = {s for s, in raw_rows(stores, "SELECT id FROM sessions")} & set(doomed)
            # A session is purged whole or kept whole.
            assert {s: stored.get(s, 0) for s in left} == {s: counts[s] for s in left}
            assert set(stored) & (set(doomed) - left) == set()
            prune.apply(store, grace="0m")
            assert {s for s, in raw_rows(stores, "SELECT id FROM sessions")} & set(doomed) \
                == set()
            assert_sound(stores, store)
    record(request.config, "crash: prune", stores.backend, kills_survived=OPERATION_KILLS)

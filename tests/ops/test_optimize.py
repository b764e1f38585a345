"""agentkeep.ops.optimize and ``agentkeep optimize`` on both backends: index merges and
planner statistics, VACUUM after a large purge on SQLite, configured retention, and a
bad retention setting refused before anything changes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ops_helpers import cli, raw

from agentkeep import InvalidInput
from agentkeep.concerns import CONCERNS
from agentkeep.ops import optimize, prune
from agentkeep.ops.check import check

SQLITE_ONLY = pytest.mark.parametrize("stores", ["sqlite"], indirect=True)


def fill(store, sessions, messages, size=40):
    ids = []
    for n in range(sessions):
        session = store.chat.create_session(title=f"session {n}")
        store.chat.append_many(session.id, [
            {"role": "user", "content": f"word{m} lisbon " + "x" * size}
            for m in range(messages)])
        ids.append(session.id)
    return ids


def backdate(stores, session_ids, days):
    moment = datetime.now(timezone.utc) - timedelta(days=days)
    value = moment.isoformat() if stores.backend == "sqlite" else moment
    with raw(stores) as run:
        for session_id in session_ids:
            run("UPDATE sessions SET active_at = ? WHERE id = ?", (value, session_id))


def test_optimize_tunes_every_concern_and_keeps_search_working(store, stores):
    fill(store, 3, 5)
    store.chat.search("lisbon")
    fill(store, 2, 5)  # a backlog for the search index
    report = optimize.optimize(store)
    assert report["retention"] is None
    assert [c["concern"] for c in report["concerns"]] == list(CONCERNS)
    actions = " | ".join(report["concerns"][0]["actions"])
    if stores.backend == "sqlite":
        assert "indexed 10 new message(s)" in actions and "merged the full-text index" in actions
        assert "PRAGMA optimize" in actions
        assert report["concerns"][0]["vacuum"]["ran"] is False  # nothing to reclaim
    else:
        assert "indexed 10 new message(s)" in actions and "ANALYZE on" in actions
        assert "message_search_vector" in actions
    assert len(store.chat.search("lisbon", limit=1000)) == 25
    assert check(store).is_clean
    result = cli(stores, "optimize", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dialect"] == store.dialect
    text = cli(stores, "optimize")
    assert text.exit_code == 0 and "Optimized." in text.stdout


@SQLITE_ONLY
def test_vacuum_after_purging_many_sessions(stores):
    store = stores.open()
    ids = fill(store, 40, 20, size=1500)  # about 1.3 MB of messages
    store.chat.search("lisbon")
    before = optimize.estimate(store)[0]
    assert before["vacuum"]["will_run"] is False
    backdate(stores, ids[:36], 100)
    prune.apply(store, older_than="30d")
    plan = optimize.estimate(store)[0]["vacuum"]
    assert plan["will_run"] is True and plan["free_bytes"] >= optimize.VACUUM_MIN_FREE_BYTES
    assert plan["estimated_bytes_after"] < plan["bytes_before"]
    told = []
    report = optimize.optimize(store, say=told.append)
    chat = report["concerns"][0]
    assert chat["vacuum"]["ran"] is True
    assert chat["vacuum"]["bytes_after"] <= plan["estimated_bytes_after"]
    assert chat["file_bytes_after"] < chat["file_bytes_before"]
    assert any("VACUUM" in line and "about" in line for line in told)  # the estimate first
    assert optimize.estimate(store)[0]["free_pages"] == 0
    assert len(store.chat.search("lisbon", limit=1000)) == 80
    assert check(store).is_clean
    forced = optimize.optimize(store, vacuum=True)["concerns"]
    assert all(c["vacuum"]["ran"] for c in forced)
    result = cli(stores, "optimize", "--no-vacuum", "--json")
    assert not any(c["vacuum"]["ran"] for c in json.loads(result.stdout)["concerns"])


def test_forced_vacuum_on_both(store, stores):
    fill(store, 2, 3)
    report = optimize.optimize(store, vacuum=True)
    assert all(c["vacuum"]["ran"] for c in report["concerns"])
    if stores.backend == "postgres":
        assert "VACUUM (ANALYZE)" in " ".join(report["concerns"][0]["actions"])
    assert check(store).is_clean


def test_optimize_applies_the_configured_retention(store, stores):
    ids = fill(store, 4, 2)
    backdate(stores, ids[:3], 100)
    prune.set_retention(store, {"older_than": "30d", "keep_last": 2})
    report = optimize.optimize(store)
    assert report["retention"]["sessions"] == 2
    assert report["retention"]["criteria"]["older_than"] == "30d"
    assert [s.id for s in store.chat.iter_sessions()] == [ids[3], ids[2]]
    assert optimize.optimize(store, retention=False)["retention"] is None


def test_a_bad_retention_setting_changes_nothing(store, stores):
    ids = fill(store, 2, 2)
    backdate(stores, ids, 100)
    store.settings.set(prune.RETENTION_KEY, {"older_than": "ninety days"})
    with pytest.raises(InvalidInput, match="retention.chat.older_than"):
        optimize.optimize(store)
    result = cli(stores, "optimize")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: retention.chat.older_than")
    for bad in ([1, 2], {"older_than": "30d", "typo": 1}, {"keep_last": -1}, {}):
        store.settings.set(prune.RETENTION_KEY, bad)
        with pytest.raises(InvalidInput, match="retention.chat"):
            optimize.optimize(store)
    assert {s.id for s in store.chat.iter_sessions()} == set(ids)
    with pytest.raises(InvalidInput, match="vacuum"):
        optimize.optimize(store, vacuum="yes")

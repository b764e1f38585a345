"""The sample generator behind ``agentkeep demo`` (:mod:`agentkeep.demo`), on both backends."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import agentkeep
from agentkeep.demo import find_sample, generate

STATUSES = ("active", "archived", "deleted")


def _sessions(store):
    return [s for status in STATUSES for s in store.chat.iter_sessions(status=status)]


def test_sample_counts_match_the_store(store):
    summary = generate(store, sessions=30, messages_per_session=6, seed=7)
    sessions = _sessions(store)
    assert len(sessions) == summary.sessions == 30
    assert summary.messages == sum(s.message_count for s in sessions) >= 30 * 6
    calls = store.chat.tool_calls(limit=100_000)
    assert summary.tool_calls == len(calls) > 0
    assert summary.failed_tool_calls == sum(c.status == "failed" for c in calls)
    assert all(c.status in ("succeeded", "failed") and c.duration_ms is not None
               for c in calls)
    assert any(s.parent_id for s in sessions), "sub-agent sessions"
    assert any(s.status == "archived" for s in sessions)
    assert {s.provider for s in sessions} >= {"openai", "anthropic", "google"}
    assert all(s.cost >= 0 and s.input_tokens >= 0 for s in sessions)
    for session in sessions:
        count, input_tokens, output_tokens, cost = store.chat.recount(session.id)
        assert (count, input_tokens, output_tokens) == (
            session.message_count, session.input_tokens, session.output_tokens)
        assert cost == pytest.approx(session.cost)


def test_showcase_has_branches_files_and_is_findable(store):
    summary = generate(store, sessions=3, messages_per_session=10, seed=3)
    showcase = store.chat.get_session(summary.showcase_id)
    assert len(store.chat.branches(showcase.id)) >= 2
    history = store.chat.history(showcase.id)
    assert any(store.chat.attachments(m.id) for m in history)
    hits = store.chat.search(summary.query, session_id=showcase.id)
    assert hits


def test_times_are_in_the_past_and_in_order(store):
    summary = generate(store, sessions=4, messages_per_session=12, seed=11)
    now = datetime.now(timezone.utc)
    for session in _sessions(store):
        assert session.created_at <= session.active_at <= now
        history = store.chat.history(session.id)
        assert [m.created_at for m in history] == sorted(m.created_at for m in history)
        assert history[-1].created_at <= session.active_at
    assert summary.seconds >= 0


def test_same_seed_same_text(stores):
    first, second = stores.open(), stores.open()
    generate(first, sessions=3, messages_per_session=8, seed=5)
    texts = sorted((s.title or "", [m.content for m in first.chat.history(s.id)])
                   for s in _sessions(first))
    generate(second, sessions=3, messages_per_session=8, seed=5)
    again = [(s.title or "", [m.content for m in second.chat.history(s.id)])
             for s in _sessions(second)]
    assert sorted(again) == sorted(texts + texts)


def test_find_sample(store):
    assert find_sample(store, sessions=2, messages_per_session=4, seed=1) is None
    made = generate(store, sessions=2, messages_per_session=4, seed=1)
    found = find_sample(store, sessions=2, messages_per_session=4, seed=1)
    assert found is not None and found.reused and found.showcase_id == made.showcase_id
    assert find_sample(store, sessions=2, messages_per_session=4, seed=2) is None
    store.chat.purge_session(made.showcase_id)
    assert find_sample(store, sessions=2, messages_per_session=4, seed=1) is None


@pytest.mark.parametrize("options", [
    {"sessions": 0}, {"messages_per_session": 0}, {"seed": "7"}, {"sessions": True},
])
def test_bad_sizes_are_invalid_input(store, options):
    with pytest.raises(agentkeep.InvalidInput):
        generate(store, **options)
    assert _sessions(store) == []

"""agentkeep.ops.stats and ``agentkeep stats`` on both backends: rows, sizes, messages per
day, largest sessions and usage by provider/model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ops_helpers import cli, raw

from agentkeep import InvalidInput
from agentkeep.concerns import CONCERNS
from agentkeep.ops.stats import stats


def test_stats(store, stores):
    big = store.chat.create_session(title="Big", provider="openai", model="gpt-4.1")
    store.chat.append_many(big.id, [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "usage": {"input_tokens": 10,
                                                          "output_tokens": 20}, "cost": 0.5},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2", "provider": "anthropic",
         "model": "claude-sonnet-4", "usage": {"input_tokens": 1, "output_tokens": 2},
         "cost": 0.25}])
    small = store.chat.create_session(title="Small")
    store.chat.append(small.id, "user", "hello")
    old = store.chat.create_session(title="Old", provider="openai", model="gpt-4.1")
    store.chat.append(old.id, "assistant", "long ago", usage={"input_tokens": 100,
                                                              "output_tokens": 0})
    stamp = datetime.now(timezone.utc) - timedelta(days=45)
    with raw(stores) as run:
        run("UPDATE messages SET created_at = ? WHERE session_id = ?",
            (stamp.isoformat() if stores.backend == "sqlite" else stamp, old.id))
    store.settings.set("ui.theme", "dark")

    data = stats(store)
    assert data["dialect"] == store.dialect
    concerns = {c["concern"]: c for c in data["concerns"]}
    assert set(concerns) == set(CONCERNS)
    chat, settings = concerns["chat"], concerns["app"]
    rows = {t["name"]: t["rows"] for t in chat["tables"]}
    assert rows["sessions"] == 3 and rows["messages"] == 6
    assert {t["name"]: t["rows"] for t in settings["tables"]}["settings"] == 1
    assert "messages_per_day" not in settings
    assert all(t["table_bytes"] is None or t["table_bytes"] >= 0 for t in chat["tables"])
    assert chat["total_bytes"] > 0

    days = chat["messages_per_day"]
    today = datetime.now(timezone.utc).date().isoformat()
    assert len(days) == 30 and days[-1]["day"] == today
    assert days == sorted(days, key=lambda d: d["day"])
    assert sum(d["messages"] for d in days) == 5  # the old session's message is 45 days back
    assert days[-1]["messages"] == 5

    largest = chat["largest_sessions"]
    assert [s["id"] for s in largest] == [big.id, small.id, old.id]  # ties: by id
    assert largest[0]["message_count"] == 4 and largest[0]["cost"] == pytest.approx(0.75)

    usage = {(u["provider"], u["model"]): u for u in chat["usage"]}
    assert set(usage) == {("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4")}
    openai = usage[("openai", "gpt-4.1")]
    assert (openai["messages"], openai["input_tokens"], openai["output_tokens"]) == (2, 110, 20)
    assert openai["cost"] == pytest.approx(0.5)
    assert chat["usage"][0]["provider"] == "openai"  # costliest first
    totals = chat["usage_totals"]
    assert (totals["messages"], totals["input_tokens"], totals["output_tokens"]) == (3, 111, 22)
    assert totals["cost"] == pytest.approx(0.75)

    if stores.backend == "sqlite":
        assert chat["file_bytes"] > 0 and chat["wal_bytes"] >= 0
        assert chat["free_bytes"] == chat["free_pages"] * chat["page_size"]
        assert {t["name"]: t["kind"] for t in chat["tables"]}["messages_fts"] == "search index"
    else:
        assert chat["schema"] == f"{stores.prefix}_chat" and chat["file_bytes"] is None

    result = cli(stores, "stats", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [c["concern"] for c in shown["concerns"]] == list(CONCERNS)
    assert shown["concerns"][0]["usage_totals"]["input_tokens"] == 111
    text = cli(stores, "stats")
    assert text.exit_code == 0, text.output
    for words in ("messages per day", "largest sessions", "usage by provider/model",
                  "gpt-4.1", "Big", "total"):
        assert words in text.stdout, words


def test_stats_of_an_empty_store_and_bad_arguments(store):
    chat = stats(store)["concerns"][0]
    assert chat["largest_sessions"] == [] and chat["usage"] == []
    assert sum(d["messages"] for d in chat["messages_per_day"]) == 0
    assert len(stats(store, days=7, largest=1)["concerns"][0]["messages_per_day"]) == 7
    for options in ({"days": 0}, {"days": "30"}, {"largest": -1}):
        with pytest.raises(InvalidInput):
            stats(store, **options)

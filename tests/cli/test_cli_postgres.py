"""The main commands on PostgreSQL (``--url``), each test in its own schemas."""

from __future__ import annotations

import uuid

import pytest
from cli_helpers import STORE_ENV, assert_one_line_error, json_of, ok, run

import agentkeep
from agentkeep.migrations import known_revisions
from conftest import drop_schemas, postgres_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pg():
    """Global options naming the test server and a fresh schema prefix."""
    url = postgres_or_skip()
    prefix = f"cli{uuid.uuid4().hex[:10]}"
    yield ["--url", url, "--schema-prefix", prefix]
    drop_schemas(prefix)


def test_missing_store_and_init(pg):
    assert_one_line_error(run(*pg, "sessions", "list"), 1, "no agentkeep store")
    assert "Created a new agentkeep store" in ok(*pg, "init").stdout
    data = json_of(*pg, "init")
    assert data["outcome"] == "up to date" and data["dialect"] == "postgresql"
    assert json_of(*pg, "sessions", "list") == {"items": [], "next_cursor": None}


def test_demo_sessions_search_and_stats(pg):
    args = ("demo", "--sessions", "4", "--messages-per-session", "10")
    assert "Generated a demo sample" in ok(*pg, *args).stdout
    assert "Reusing the demo sample" in ok(*pg, *args).stdout
    sessions = json_of(*pg, "sessions", "list")["items"]
    assert len(sessions) == 4
    with agentkeep.open(pg[1], schema_prefix=pg[3]) as store:
        sample = store.settings.get("demo.samples")[-1]
    showcase, query = sample["showcase_id"], sample["query"]
    shown = json_of(*pg, "sessions", "show", showcase)
    assert len(shown["messages"]) == shown["session"]["message_count"]
    assert "(active)" in ok(*pg, "sessions", "show", showcase).stdout
    words = query.strip('"').split()
    hits = json_of(*pg, "search", query)
    assert hits and all(hit["highlights"] for hit in hits)
    for hit in hits:
        start, end = hit["highlights"][0]
        assert set(hit["snippet"][start:end].lower().split()) <= set(words)
    stats = json_of(*pg, "stats")
    chat = next(c for c in stats["concerns"] if c["concern"] == "chat")
    assert chat["schema"] == f"{pg[3]}_chat" and chat["wal_bytes"] is None
    rows = {t["name"]: t["rows"] for t in chat["tables"]}
    assert rows["sessions"] == 4
    assert rows["messages"] == sum(s["message_count"] for s in sessions)
    ok(*pg, "sessions", "rm", showcase, "--purge", "--yes")
    assert len(json_of(*pg, "sessions", "list")["items"]) == 3


def test_migrate(pg):
    ok(*pg, "migrate", "up")
    assert all(s["is_current"] for s in json_of(*pg, "migrate", "status"))
    assert json_of(*pg, "migrate", "check")["clean"] is True
    ok(*pg, "migrate", "down", "--yes")  # one step each
    assert {s["concern"]: s["current"] for s in json_of(*pg, "migrate", "status")} == {
        "chat": known_revisions("chat")[-2], "app": None,
        "checkpoints": None}
    assert run(*pg, "migrate", "check").exit_code == 1
    ok(*pg, "migrate", "up")
    assert ok(*pg, "migrate", "check").exit_code == 0


def test_schema_prefix_from_the_environment(pg):
    url, prefix = pg[1], pg[3]
    ok("--url", url, "init", env={"AGENTKEEP_SCHEMA_PREFIX": prefix})
    assert json_of(*pg, "migrate", "status")[0]["location"].endswith(f"(schema {prefix}_chat)")
    assert json_of("sessions", "list", env={"AGENTKEEP_URL": url,
                                            "AGENTKEEP_SCHEMA_PREFIX": prefix})["items"] == []


def test_bad_schema_prefix_exits_2(pg):
    line = assert_one_line_error(run(pg[0], pg[1], "--schema-prefix", "Bad-Prefix", "stats"),
                                 2, "--schema-prefix")
    assert "schema_prefix" not in line

"""Every command on SQLite (``--home``), through the CLI as a user runs it."""

from __future__ import annotations

import shlex

import pytest
from cli_helpers import STORE_ENV, assert_one_line_error, json_of, ok, run

import agentkeep
from agentkeep.chat import REVISIONS as CHAT
from agentkeep.concerns import CONCERNS


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A store with a small demo sample, shared by the read-only tests of this module."""
    home = tmp_path_factory.mktemp("sample") / "store"
    ok("--home", home, "demo", "--sessions", "6", "--messages-per-session", "12")
    return home


@pytest.fixture
def home(tmp_path):
    return tmp_path / "store"


def _sample(home) -> dict:
    """The record of the newest demo sample in the store at ``home``."""
    with agentkeep.open(home) as store:
        return store.settings.get("demo.samples")[-1]


def _showcase(home) -> str:
    return _sample(home)["showcase_id"]


def test_init_creates_then_reports_up_to_date(home):
    created = ok("--home", home, "init")
    assert "Created a new agentkeep store" in created.stdout and str(home) in created.stdout
    again = json_of("--home", home, "init")
    assert again["outcome"] == "up to date" and again["dialect"] == "sqlite"
    assert {c["concern"]: c["after"] for c in again["concerns"]} == {
        "chat": CHAT[-1], "app": "app_0001", "checkpoints": "checkpoints_0001"}


def test_demo_twice_reuses_and_new_adds(home):
    first = ok("--home", home, "demo", "--sessions", "5", "--messages-per-session", "8")
    for heading in ("Generated a demo sample", "Recently active sessions", "branch tree",
                    "search", "stats", "sessions show"):
        assert heading in first.stdout, heading
    assert len(json_of("--home", home, "sessions", "list")["items"]) == 5
    again = ok("--home", home, "demo", "--sessions", "5", "--messages-per-session", "8")
    assert "Reusing the demo sample" in again.stdout
    assert len(json_of("--home", home, "sessions", "list")["items"]) == 5
    ok("--home", home, "demo", "--sessions", "5", "--messages-per-session", "8", "--new")
    assert len(json_of("--home", home, "sessions", "list")["items"]) == 10


def test_sessions_list_pages_with_the_cursor(sample):
    first = json_of("--home", sample, "sessions", "list", "--limit", "4")
    assert len(first["items"]) == 4 and first["next_cursor"]
    rest = json_of("--home", sample, "sessions", "list", "--limit", "100", "--cursor",
                   first["next_cursor"])
    assert rest["next_cursor"] is None
    ids = [s["id"] for s in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 6
    item = first["items"][0]
    assert item["created_at"].endswith("+00:00") and isinstance(item["message_count"], int)
    # The hint runs as printed: the same store, filters and page size, the next page.
    shown = ok("--home", sample, "sessions", "list", "--status", "active", "--limit", "2",
               env={"COLUMNS": "400"}).stdout
    hint = next(line for line in shown.splitlines() if line.startswith("More: "))
    words = shlex.split(hint.removeprefix("More: "))
    words = words[words.index("--home"):]
    assert words[:2] == ["--home", str(sample)]
    assert words[2:8] == ["sessions", "list", "--status", "active", "--limit", "2"]
    second = json_of(*words)
    assert len(second["items"]) == 2
    assert {s["id"] for s in second["items"]}.isdisjoint(s["id"] for s in first["items"][:2])


def test_sessions_list_filters(sample):
    showcase = json_of("--home", sample, "sessions", "show", _showcase(sample))["session"]
    by_model = json_of("--home", sample, "sessions", "list", "--model", showcase["model"])
    assert by_model["items"] and all(s["model"] == showcase["model"] for s in by_model["items"])
    word = showcase["title"].split()[-1].upper()
    by_title = json_of("--home", sample, "sessions", "list", "--title", word)
    assert showcase["id"] in [s["id"] for s in by_title["items"]]
    assert json_of("--home", sample, "sessions", "list", "--status", "deleted")["items"] == []
    table = ok("--home", sample, "sessions", "list").stdout
    assert showcase["id"] in table and "title" in table or "session" in table


def test_sessions_show_draws_the_tree(sample):
    showcase = _showcase(sample)
    text = ok("--home", sample, "sessions", "show", showcase).stdout
    assert showcase in text and "(active)" in text and "branch 2 of 2" in text
    assert "→" in text  # a tool call inline
    data = json_of("--home", sample, "sessions", "show", showcase)
    assert data["session"]["id"] == showcase
    assert sum(b["is_active"] for b in data["branches"]) == 1 and len(data["branches"]) >= 2
    assert len(data["messages"]) == data["session"]["message_count"]
    assert any(m["tool_calls"] for m in data["messages"])
    assert any(m["attachments"] for m in data["messages"])
    last = json_of("--home", sample, "sessions", "show", showcase, "--last", "3")
    active = [m for m in last["messages"] if m["on_active_branch"]]
    assert len(active) == 3 and last["earlier_messages"] >= 1
    assert "earlier messages" in ok("--home", sample, "sessions", "show", showcase,
                                    "--last", "3").stdout


def test_sessions_rm_restore_and_purge(sample, tmp_path):
    ok("--home", tmp_path / "s", "demo", "--sessions", "3", "--messages-per-session", "4")
    victim = json_of("--home", tmp_path / "s", "sessions", "list")["items"][-1]["id"]
    home = tmp_path / "s"
    assert "restore" in ok("--home", home, "sessions", "rm", victim).stdout
    assert victim not in [s["id"] for s in json_of("--home", home, "sessions", "list")["items"]]
    deleted = json_of("--home", home, "sessions", "list", "--status", "deleted")["items"]
    assert [s["id"] for s in deleted] == [victim]
    ok("--home", home, "sessions", "restore", victim)
    ok("--home", home, "sessions", "show", victim)
    declined = run("--home", home, "sessions", "rm", victim, "--purge", input="n\n")
    assert_one_line_error(declined, 1, "aborted")
    ok("--home", home, "sessions", "show", victim)
    ok("--home", home, "sessions", "rm", victim, "--purge", input="y\n")
    assert_one_line_error(run("--home", home, "sessions", "show", victim), 1, victim)


def test_search_highlights_the_word(sample):
    query = _sample(sample)["query"]
    words = query.strip('"').split()
    hits = json_of("--home", sample, "search", query)
    assert hits
    for hit in hits:
        assert hit["highlights"], hit
        for start, end in hit["highlights"]:
            assert set(hit["snippet"][start:end].lower().split()) <= set(words)
        assert {"message_id", "session_id", "session_title", "role", "created_at",
                "score"} <= set(hit)
    text = ok("--home", sample, "search", "weather", "--limit", "2").stdout
    assert "weather" in text.lower()
    assert "\x02" not in text and "\x03" not in text


def test_search_filters(sample):
    showcase, query = _showcase(sample), _sample(sample)["query"]
    users = json_of("--home", sample, "search", query, "--role", "user")
    assert users and {hit["role"] for hit in users} == {"user"}
    one = json_of("--home", sample, "search", query, "--session", showcase, "--limit", "1")
    assert len(one) == 1 and one[0]["session_id"] == showcase
    assert "No messages match" in ok("--home", sample, "search", "zyzzyva").stdout


def test_stats(sample):
    data = json_of("--home", sample, "stats")
    assert data["dialect"] == "sqlite"
    concerns = {c["concern"]: c for c in data["concerns"]}
    assert set(concerns) == set(CONCERNS)
    chat = concerns["chat"]
    tables = {t["name"]: t for t in chat["tables"]}
    sessions = json_of("--home", sample, "sessions", "list", "--limit", "1000")["items"]
    assert tables["messages"]["rows"] == sum(s["message_count"] for s in sessions)
    assert tables["sessions"]["rows"] == len(sessions)
    assert tables["messages_fts"]["kind"] == "search index"
    assert chat["file_bytes"] > 0 and chat["wal_bytes"] >= 0
    assert tables["messages"]["table_bytes"] > 0 and tables["messages"]["index_bytes"] > 0
    text = ok("--home", sample, "stats").stdout
    assert "messages" in text and "WAL" in text


def test_migrate_status_down_check_up(home):
    ok("--home", home, "init")
    states = json_of("--home", home, "migrate", "status")
    assert [(s["concern"], s["is_current"], s["pending"]) for s in states] == [
        ("chat", True, []), ("app", True, []), ("checkpoints", True, [])]
    assert "up to date" in ok("--home", home, "migrate", "status").stdout
    assert json_of("--home", home, "migrate", "check") == {"clean": True, "findings": []}
    assert_one_line_error(run("--home", home, "migrate", "down", input="n\n"), 1, "aborted")
    assert all(s["is_current"] for s in json_of("--home", home, "migrate", "status"))
    assert ok("--home", home, "migrate", "down", "--concern", "chat", "--to", CHAT[-1],
              "--yes").stdout.strip() == f"chat: already at {CHAT[-1]}"
    ok("--home", home, "migrate", "down", "--concern", "chat", "--yes")  # one step
    assert_one_line_error(run("--home", home, "migrate", "down", "--concern", "chat", "--to",
                              CHAT[-1], "--yes"), 2, f"chat is at {CHAT[-2]}", "migrate up")
    states = {s["concern"]: s for s in json_of("--home", home, "migrate", "status")}
    assert states["chat"]["current"] == CHAT[-2]
    assert states["chat"]["pending"] == [CHAT[-1]]
    assert states["app"]["is_current"]
    drift = run("--home", home, "migrate", "check")
    assert drift.exit_code == 1 and f"chat: at revision {CHAT[-2]}" in drift.stdout
    assert f"chat: {CHAT[-2]} → {CHAT[-1]}" in ok("--home", home, "migrate", "up").stdout
    ok("--home", home, "migrate", "down", "--concern", "chat", "--to", "base", "--yes")
    states = {s["concern"]: s for s in json_of("--home", home, "migrate", "status")}
    assert states["chat"]["current"] is None
    assert states["chat"]["pending"] == list(CHAT)
    assert f"chat: none → {CHAT[-1]}" in ok("--home", home, "migrate", "up").stdout
    ok("--home", home, "migrate", "down", "--yes")
    assert {s["concern"]: s["current"] for s in json_of("--home", home, "migrate", "status")} == {
        "chat": CHAT[-2], "app": None, "checkpoints": None}
    ok("--home", home, "migrate", "up", "--concern", "app", "--to", "app_0001")
    ok("--home", home, "migrate", "up")
    assert ok("--home", home, "migrate", "check").exit_code == 0


def test_piped_output_keeps_ids_paths_and_commands_whole(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    home = tmp_path / "a-store-directory-whose-path-is-long-enough-to-matter"
    ok("--home", home, "demo", "--sessions", "3", "--messages-per-session", "4")
    status = ok("--home", home, "migrate", "status").stdout
    assert str(home / "checkpoints.db") in status and "checkpoints_0001" in status
    victim = json_of("--home", home, "sessions", "list")["items"][-1]["id"]
    deleted = ok("--home", home, "sessions", "rm", victim).stdout
    # the printed command names the same store, on one line
    assert f"`agentkeep --home {home} sessions restore {victim}`" in deleted.splitlines()[0]
    assert max(map(len, ok("--home", home, "search", "the").stdout.splitlines())) < 200


def test_migrate_up_creates_a_store(home):
    ok("--home", home, "migrate", "up")
    assert all(s["is_current"] for s in json_of("--home", home, "migrate", "status"))


def test_default_home_comes_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("AGENTKEEP_HOME", str(home))
    ok("init")
    assert (home / "chat.db").exists()
    assert json_of("sessions", "list") == {"items": [], "next_cursor": None}


def test_stored_text_cannot_drive_the_terminal(home):
    ok("--home", home, "init")
    with agentkeep.open(home) as store:
        session = store.chat.create_session(title="[bold]Plan[/bold] \x1b[31mred")
        store.chat.append(session.id, "user", "Use [red]markup[/red] \x1b]0;title\x07 here")
    for args in (["sessions", "list"], ["sessions", "show", session.id],
                 ["search", "markup"]):
        text = ok("--home", home, *args).stdout
        assert "\x1b" not in text and "\x07" not in text, args
        assert "[bold]Plan[/bold]" in text or "[red]markup[/red]" in text, args

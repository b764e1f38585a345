"""``agentkeep sessions archive`` and ``restore`` on both backends."""

from __future__ import annotations

import pytest
from cli_helpers import STORE_ENV, assert_one_line_error, json_of, ok, run, store_args


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_archive_then_restore(stores):
    store = stores.open()
    kept = store.chat.create_session(title="kept")
    old = store.chat.create_session(title="old trip to Lisbon")
    store.chat.append(old.id, "user", "lisbon hotels")
    target = store_args(stores)

    said = ok(*target, "sessions", "archive", old.id).stdout
    assert "Archived session" in said and "sessions restore" in said
    active = json_of(*target, "sessions", "list", "--status", "active")["items"]
    assert [s["id"] for s in active] == [kept.id]
    assert "[archived]" in ok(*target, "sessions", "list").stdout
    archived = json_of(*target, "sessions", "list", "--status", "archived")["items"]
    assert [(s["id"], s["status"]) for s in archived] == [(old.id, "archived")]
    assert [h["session_id"] for h in json_of(*target, "search", "lisbon")] == [old.id]
    ok(*target, "sessions", "archive", old.id)  # again: nothing to do
    ok(*target, "sessions", "restore", old.id)
    assert store.chat.get_session(old.id).status == "active"

    ok(*target, "sessions", "rm", old.id)
    assert_one_line_error(run(*target, "sessions", "archive", old.id), 1, "deleted")
    assert_one_line_error(run(*target, "sessions", "archive", "nope"), 1, "nope")

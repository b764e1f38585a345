"""``agentkeep search`` on both backends: what it marks as a match is a match."""

from __future__ import annotations

import pytest
from cli_helpers import STORE_ENV, json_of, ok, store_args


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_marker_characters_in_a_message_are_not_read_as_matches(stores):
    """The CLI marks matches in snippets with control characters; a message holding them
    got a highlight on words that did not match. Two pairs are taken here, so the third
    is used."""
    store = stores.open()
    session = store.chat.create_session(title="t")
    store.chat.append(session.id, "user", "ctl \x02fake\x03 pizza \x0eother\x0f")
    (hit,) = json_of(*store_args(stores), "search", "pizza")
    assert [hit["snippet"][start:end] for start, end in hit["highlights"]] == ["pizza"]
    shown = ok(*store_args(stores), "search", "pizza").stdout
    assert "pizza" in shown and "\ue000" not in shown and "\ue001" not in shown

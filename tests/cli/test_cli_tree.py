"""``sessions show`` draws a session's message tree, on both backends."""

from __future__ import annotations

import pytest
from cli_helpers import STORE_ENV, ok, store_args


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch):
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)


def _tree_lines(stores, session_id: str) -> list[str]:
    """The lines of the drawn tree (below the title), guides included."""
    text = ok(*store_args(stores), "sessions", "show", session_id).stdout
    return text.split("\n\nTrip\n", 1)[1].splitlines()


def _depth(lines: list[str], word: str) -> int:
    """How deep the line holding ``word`` is nested: 0 at the top of the tree."""
    line = next(line for line in lines if word in line)
    return line.index("── ") // 4


def test_an_edited_first_message_is_a_second_root(stores):
    store = stores.open()
    session = store.chat.create_session(title="Trip")
    first = store.chat.append(session.id, "user", "lisbon please")
    store.chat.append(session.id, "assistant", "lisbon it is")
    store.chat.edit(first.id, content="porto please")
    store.chat.append(session.id, "assistant", "porto it is")
    lines = _tree_lines(stores, session.id)
    assert [line for line in lines if "branch" in line] == [
        "├── branch 1 of 2", "└── branch 2 of 2 (active)"]
    assert lines.index("├── branch 1 of 2") < next(
        i for i, line in enumerate(lines) if "lisbon please" in line)
    assert {_depth(lines, word) for word in ("lisbon please", "lisbon it is", "porto please",
                                             "porto it is")} == {1}


def test_an_edited_later_message_forks_below_its_parent(stores):
    store = stores.open()
    session = store.chat.create_session(title="Trip")
    store.chat.append(session.id, "user", "lisbon please")
    answer = store.chat.append(session.id, "assistant", "lisbon it is")
    store.chat.edit(answer.id, content="porto it is")
    lines = _tree_lines(stores, session.id)
    assert _depth(lines, "lisbon please") == 0
    assert _depth(lines, "branch 1 of 2") == _depth(lines, "branch 2 of 2 (active)") == 0
    assert _depth(lines, "lisbon it is") == _depth(lines, "porto it is") == 1

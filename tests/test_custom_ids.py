"""Sessions with ids chosen by the caller (an agent framework's session key)."""

import pytest

import agentkeep


def test_caller_chosen_session_id(store):
    session = store.chat.create_session(id="user-42/chat", title="mine")
    assert session.id == "user-42/chat"
    store.chat.append("user-42/chat", "user", "hello")
    assert store.chat.get_session("user-42/chat").message_count == 1
    with pytest.raises(agentkeep.Conflict, match="user-42/chat"):
        store.chat.create_session(id="user-42/chat")
    store.chat.delete_session("user-42/chat")
    with pytest.raises(agentkeep.Conflict):
        store.chat.create_session(id="user-42/chat")
    assert store.chat.get_session("user-42/chat", include_deleted=True).title == "mine"


@pytest.mark.parametrize("bad", ["", "x" * 201, "nul\x00", 7])
def test_bad_session_ids(store, bad):
    with pytest.raises(agentkeep.InvalidInput, match="id"):
        store.chat.create_session(id=bad)
    assert store.chat.list_sessions().items == []

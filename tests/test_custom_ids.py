"""Sessions with ids chosen by the caller (an agent framework's session key)."""

import pytest

import agentkeep
from agentkeep.concerns import CONCERNS


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


def test_a_taken_id_inside_a_transaction_leaves_the_transaction_usable(store):
    store.chat.create_session(id="taken")
    with store.chat.transaction():
        with pytest.raises(agentkeep.Conflict, match="taken"):
            store.chat.create_session(id="taken")
        made = store.chat.create_session(id="fresh")
        store.chat.append("fresh", "user", "kept")
    assert store.chat.get_session("fresh").created_at == made.created_at
    assert store.chat.get_session("fresh").message_count == 1
    assert [m.content for m in store.chat.history("fresh")] == ["kept"]
    assert {s.id for s in store.chat.list_sessions().items} == {"taken", "fresh"}


@pytest.mark.parametrize("bad", ["", "x" * 201, "nul\x00", 7])
def test_bad_session_ids(store, bad):
    with pytest.raises(agentkeep.InvalidInput, match="id"):
        store.chat.create_session(id=bad)
    assert store.chat.list_sessions().items == []


def test_soft_deleted_sessions_hide_their_tool_calls_and_attachments(store):
    session = store.chat.create_session()
    asked = store.chat.append(session.id, "assistant", "calling", parts=[
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {}}])
    attachment = store.chat.attach(asked.id, b"data", filename="a.txt")
    assert len(store.chat.tool_calls(session.id)) == 1
    store.chat.delete_session(session.id)
    assert store.chat.tool_calls() == []
    with pytest.raises(agentkeep.NotFound):
        store.chat.attachments(asked.id)
    with pytest.raises(agentkeep.NotFound):
        store.chat.read_attachment(attachment.id)
    store.chat.restore_session(session.id)
    assert [a.id for a in store.chat.attachments(asked.id)] == [attachment.id]
    assert store.chat.read_attachment(attachment.id) == b"data"


def test_schema_prefix_with_a_trailing_newline_is_refused(tmp_path):
    with pytest.raises(agentkeep.InvalidInput, match="schema_prefix"):
        agentkeep.open(tmp_path, schema_prefix="abc\n")


def test_a_store_path_with_url_characters_is_used_as_it_is(tmp_path):
    home = tmp_path / "odd ?x=1 %41"
    with agentkeep.open(home) as store:
        store.settings.set("ui.theme", "dark")
    assert sorted(p.name for p in home.glob("*.db")) == sorted(f"{c}.db" for c in CONCERNS)
    assert not (tmp_path / "odd ").exists()
    with agentkeep.open(home, migrate=False) as store:
        assert store.settings.get("ui.theme") == "dark"


def test_deleting_twice_keeps_the_first_deletion_time(store):
    session = store.chat.create_session()
    first = store.chat.delete_session(session.id).deleted_at
    assert store.chat.delete_session(session.id).deleted_at == first


def test_a_block_whose_statement_failed_does_not_pretend_to_commit(stores):
    if stores.backend != "postgres":
        pytest.skip("SQLite keeps a transaction usable after a failed statement")
    store = stores.open()
    session = store.chat.create_session()
    with pytest.raises(agentkeep.AgentkeepError, match="rolled back instead of committed"):
        with store.transaction():
            store.chat.append(session.id, "user", "lost with the block")
            try:
                with store._backend.read("chat") as conn:
                    conn.one("SELECT 1 / 0")
            except agentkeep.AgentkeepError:
                pass  # caught, but PostgreSQL has aborted the transaction
    assert store.chat.get_session(session.id).message_count == 0
    store.chat.append(session.id, "user", "the pool's connection is healthy again")
    assert store.chat.get_session(session.id).message_count == 1

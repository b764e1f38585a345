"""Branching: edit, regenerate, branches, switch_branch, fork."""

from __future__ import annotations

import pytest
from chat_helpers import assert_counters, ids, path_to

from agentkeep import InvalidInput, NotFound


def conversation(store, n=4, **session_fields):
    session = store.chat.create_session(**session_fields)
    messages = [store.chat.append(session.id, "user" if i % 2 == 0 else "assistant", f"m{i}",
                                  usage={"input_tokens": i, "output_tokens": 2 * i},
                                  cost=i / 100)
                for i in range(n)]
    return session.id, messages


def test_edit_adds_a_sibling_and_moves_the_head(store):
    session_id, (m0, m1, m2, m3) = conversation(store)
    edited = store.chat.edit(m2.id, content="m2 edited", metadata={"edited": True})
    assert edited.id != m2.id
    assert edited.parent_id == m2.parent_id == m1.id
    assert edited.depth == m2.depth
    assert edited.role == m2.role and edited.content == "m2 edited"
    assert edited.metadata == {"edited": True}
    assert store.chat.get_session(session_id).head_id == edited.id
    assert store.chat.history(session_id) == [m0, m1, edited]
    assert store.chat.get_message(m2.id) == m2  # the original is untouched
    assert_counters(store, session_id)


def test_edit_keeps_what_is_not_given(store):
    session = store.chat.create_session()
    original = store.chat.append(session.id, "user", "text", provider="p", model="m",
                                 parts=[{"type": "text", "text": "text"}],
                                 metadata={"keep": 1})
    same = store.chat.edit(original.id)
    assert (same.content, same.parts, same.metadata, same.provider, same.model) == (
        original.content, original.parts, original.metadata, original.provider, original.model)
    by_parts = store.chat.edit(original.id, parts=[{"type": "text", "text": "new words"}])
    assert by_parts.content == "new words" and by_parts.metadata == {"keep": 1}


def test_edit_the_first_message_makes_a_new_root(store):
    session_id, (m0, *_rest) = conversation(store)
    edited = store.chat.edit(m0.id, content="new start")
    assert edited.parent_id is None and edited.depth == 0
    assert store.chat.history(session_id) == [edited]


def test_edit_unknown_message(store):
    with pytest.raises(NotFound):
        store.chat.edit("missing", content="x")


def test_regenerate_answers_an_earlier_message(store):
    session_id, (m0, m1, m2, m3) = conversation(store)
    again = store.chat.append(session_id, "assistant", "m3 again", parent_id=m2.id)
    assert again.parent_id == m2.id and again.depth == m3.depth
    assert store.chat.history(session_id) == [m0, m1, m2, again]
    further = store.chat.append(session_id, "user", "follow-up")
    assert further.parent_id == again.id
    assert_counters(store, session_id)


def test_branches_lists_leaves_with_the_active_one(store):
    session_id, (m0, m1, m2, m3) = conversation(store)
    assert [(b.leaf.id, b.is_active) for b in store.chat.branches(session_id)] == [
        (m3.id, True)]
    edited = store.chat.edit(m1.id, content="m1 edited")
    regenerated = store.chat.append(session_id, "user", "m2 again", parent_id=m1.id)
    branches = store.chat.branches(session_id)
    assert [b.leaf.id for b in branches] == [m3.id, edited.id, regenerated.id]  # oldest first
    assert [b.is_active for b in branches] == [False, False, True]
    assert [b.length for b in branches] == [4, 2, 3]
    store.chat.switch_branch(session_id, m3.id)
    assert [b.is_active for b in store.chat.branches(session_id)] == [True, False, False]


def test_branches_of_an_empty_and_of_a_missing_session(store):
    session = store.chat.create_session()
    assert store.chat.branches(session.id) == []
    with pytest.raises(NotFound):
        store.chat.branches("missing")


def test_switch_branch_moves_history(store):
    session_id, (m0, m1, m2, m3) = conversation(store)
    edited = store.chat.edit(m2.id, content="m2 edited")
    switched = store.chat.switch_branch(session_id, m3.id)
    assert switched.head_id == m3.id and switched.preview == "m3"
    assert store.chat.history(session_id) == [m0, m1, m2, m3]
    store.chat.switch_branch(session_id, edited.id)
    assert store.chat.history(session_id) == [m0, m1, edited]
    # Switching to an inner message: history ends there, the next append branches off it.
    store.chat.switch_branch(session_id, m1.id)
    assert store.chat.history(session_id) == [m0, m1]
    third = store.chat.append(session_id, "user", "third way")
    assert third.parent_id == m1.id
    assert len(store.chat.branches(session_id)) == 3
    assert_counters(store, session_id)


def test_switch_branch_to_a_message_of_another_session(store):
    session_id, messages = conversation(store)
    other_id, other_messages = conversation(store)
    with pytest.raises(InvalidInput):
        store.chat.switch_branch(session_id, other_messages[1].id)
    with pytest.raises(NotFound):
        store.chat.switch_branch(session_id, "missing")
    with pytest.raises(NotFound):
        store.chat.switch_branch("missing", messages[0].id)
    assert store.chat.get_session(session_id).head_id == messages[-1].id
    assert store.chat.history(session_id) == messages


def test_parent_from_another_session(store):
    session_id, messages = conversation(store)
    other_id, other_messages = conversation(store)
    with pytest.raises(InvalidInput) as error:
        store.chat.append(session_id, "assistant", "x", parent_id=other_messages[0].id)
    assert error.value.field == "parent_id"
    with pytest.raises(NotFound):
        store.chat.append(session_id, "assistant", "x", parent_id="missing")
    assert store.chat.history(session_id) == messages
    assert store.chat.history(other_id) == other_messages
    assert_counters(store, session_id)


def test_fork_at_a_message(store):
    session_id, (m0, m1, m2, m3) = conversation(
        store, title="Original", provider="openai", model="gpt", system_prompt="sys",
        generation={"temperature": 0.3}, metadata={"k": "v"})
    store.chat.edit(m2.id, content="m2 edited")  # the head is elsewhere
    forked = store.chat.fork(session_id, m2.id)
    assert forked.id != session_id
    assert forked.forked_from_id == m2.id
    assert (forked.title, forked.provider, forked.model, forked.system_prompt,
            forked.generation, forked.metadata) == (
        "Original", "openai", "gpt", "sys", {"temperature": 0.3}, {"k": "v"})
    copied = store.chat.history(forked.id)
    assert [m.content for m in copied] == ["m0", "m1", "m2"]
    assert not set(ids(copied)) & {m0.id, m1.id, m2.id}
    assert all(m.session_id == forked.id for m in copied)
    for copy, original in zip(copied, (m0, m1, m2), strict=True):
        assert (copy.role, copy.usage, copy.cost, copy.created_at) == (
            original.role, original.usage, original.cost, original.created_at)
    assert copied[0].parent_id is None
    assert [m.parent_id for m in copied[1:]] == ids(copied[:-1])
    assert forked.message_count == 3
    assert forked.input_tokens == 0 + 1 + 2 and forked.output_tokens == 0 + 2 + 4
    assert forked.head_id == copied[-1].id and forked.preview == "m2"
    assert_counters(store, forked.id)
    assert_counters(store, session_id)
    # The source is unchanged and the fork lives on its own.
    assert len(store.chat.branches(session_id)) == 2
    store.chat.append(forked.id, "assistant", "only in the fork")
    assert "only in the fork" not in [m.content for m in store.chat.history(session_id)]


def test_fork_defaults(store):
    session_id, messages = conversation(store, title="T")
    forked = store.chat.fork(session_id, title="Copy")
    assert forked.title == "Copy" and forked.forked_from_id == messages[-1].id
    assert [m.content for m in store.chat.history(forked.id)] == ["m0", "m1", "m2", "m3"]
    empty = store.chat.create_session(title="empty")
    fork_of_empty = store.chat.fork(empty.id)
    assert fork_of_empty.message_count == 0 and fork_of_empty.forked_from_id is None


def test_fork_carries_the_summary_and_tool_calls(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "old")
    store.chat.append(session.id, "system", "summary", summary=True)
    store.chat.append(session.id, "assistant", "calling", parts=[
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": "x"}}])
    store.chat.append(session.id, "tool", "found", parts=[
        {"type": "tool_result", "call_id": "c1", "output": {"hits": 1}}])
    forked = store.chat.fork(session.id)
    history = store.chat.history(forked.id)
    assert forked.summary_id == history[1].id
    assert [m.content for m in store.chat.history(forked.id, since_summary=True)] == [
        "summary", "calling", "found"]
    calls = store.chat.tool_calls(forked.id)
    assert len(calls) == 1
    assert (calls[0].name, calls[0].input, calls[0].status, calls[0].output) == (
        "lookup", {"q": "x"}, "succeeded", {"hits": 1})
    assert calls[0].message_id == history[2].id
    assert calls[0].result_message_id == history[3].id


def test_fork_at_a_message_of_another_session(store):
    session_id, _ = conversation(store)
    _, other_messages = conversation(store)
    sessions_before = store.chat.list_sessions().items
    with pytest.raises(InvalidInput):
        store.chat.fork(session_id, other_messages[0].id)
    with pytest.raises(NotFound):
        store.chat.fork(session_id, "missing")
    with pytest.raises(NotFound):
        store.chat.fork("missing")
    assert store.chat.list_sessions().items == sessions_before


def test_fork_of_a_deep_branch(store):
    session_id, messages = conversation(store, n=30)
    store.chat.edit(messages[10].id, content="branch")
    forked = store.chat.fork(session_id, messages[25].id)
    assert [m.content for m in store.chat.history(forked.id)] == [
        m.content for m in path_to(store, messages[25].id)]
    assert_counters(store, forked.id)


def test_fork_of_a_sub_agent_session_keeps_its_parent(store):
    parent = store.chat.create_session(title="parent")
    child_id, _ = conversation(store, parent_id=parent.id)
    first = store.chat.fork(child_id)
    assert first.parent_id == parent.id
    # A parent in the bin does not stop the fork, and the link survives a restore.
    store.chat.delete_session(parent.id)
    forked = store.chat.fork(child_id)
    assert forked.parent_id == parent.id
    store.chat.restore_session(parent.id)
    assert {s.id for s in store.chat.list_sessions(parent_id=parent.id).items} == {
        child_id, first.id, forked.id}

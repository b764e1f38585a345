"""Sessions: create, get, update, list (filters, order, pagination), lifecycle, counters."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from chat_helpers import all_sessions, assert_counters, blob_count, counters, snapshot

import agentkeep
from agentkeep import Conflict, InvalidInput, NotFound


def activity_order(sessions):
    return sorted(sessions, key=lambda s: (s.active_at, s.id), reverse=True)


# --- create / get / update ----------------------------------------------------------------


def test_create_and_get(store):
    session = store.chat.create_session(
        title="Trip", provider="openai", model="gpt-4.1", system_prompt="Be brief.",
        generation={"temperature": 0.2, "max_tokens": 100}, metadata={"user": "ana", "n": [1]})
    assert session.title == "Trip"
    assert session.status == "active"
    assert (session.provider, session.model) == ("openai", "gpt-4.1")
    assert session.system_prompt == "Be brief."
    assert session.generation == {"temperature": 0.2, "max_tokens": 100}
    assert session.metadata == {"user": "ana", "n": [1]}
    assert session.parent_id is None and session.forked_from_id is None
    assert session.head_id is None and session.summary_id is None
    assert counters(session) == (0, 0, 0, 0.0)
    assert session.preview is None and session.deleted_at is None
    assert session.created_at.tzinfo is not None
    assert store.chat.get_session(session.id) == session


def test_create_with_defaults(store):
    session = store.chat.create_session()
    assert session.title is None and session.provider is None and session.model is None
    assert session.generation == {} and session.metadata == {}
    assert store.chat.get_session(session.id) == session


def _first_messages(kind):
    """A new conversation's messages: plain; with every rarely set field, a summary and a
    tool call answered within; or with a result for a call it never asked (on PostgreSQL
    the transaction path rather than the one statement)."""
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Lisbon? " + "x" * 300}]
    if kind == "plain":
        return messages
    messages += [
        {"role": "assistant", "content": "", "model": "m1", "provider": "p", "cost": 0.25,
         "usage": {"input_tokens": 10, "output_tokens": 3}, "metadata": {"k": [1]},
         "parts": [{"type": "tool_call", "id": "c1", "name": "weather",
                    "arguments": {"city": "LIS"}}]},
        {"role": "tool", "content": "sunny",
         "parts": [{"type": "tool_result", "call_id": "c1", "output": {"sky": "sunny"}}]},
        {"role": "assistant", "content": "Sunny.", "summary": True,
         "usage": {"input_tokens": 5, "output_tokens": 2}}]
    if kind == "unknown result":
        messages.append({"role": "tool", "content": "late", "parts": [
            {"type": "tool_result", "call_id": "never-asked", "output": 1}]})
    return messages


@pytest.mark.parametrize("kind", ["plain", "full", "unknown result"])
@pytest.mark.parametrize("sub_agent", [False, True])  # with a parent: the transaction path
def test_create_with_first_messages(store, kind, sub_agent):
    parent = store.chat.create_session(title="parent") if sub_agent else None
    messages = _first_messages(kind)
    session = store.chat.create_session(
        title="Trip", model="gpt", id="trip-1", messages=messages,
        parent_id=parent.id if parent else None)
    assert session == store.chat.get_session("trip-1")
    assert (session.id, session.title, session.model) == ("trip-1", "Trip", "gpt")
    assert session.parent_id == (parent.id if parent else None)
    history = store.chat.history(session.id)
    assert [m.content for m in history] == [m["content"] for m in messages]
    assert [(m.seq, m.depth) for m in history] == [(n + 1, n) for n in range(len(messages))]
    assert [m.parent_id for m in history] == [None] + [m.id for m in history[:-1]]
    assert session.head_id == history[-1].id
    assert session.preview == messages[-1]["content"][:200]
    assert_counters(store, session.id)
    if kind == "plain":
        assert counters(session) == (2, 0, 0, 0.0) and session.summary_id is None
        assert store.chat.tool_calls(session.id) == []
        return
    assert counters(session) == (len(messages), 15, 5, 0.25)
    assert session.summary_id == history[4].id
    assert (history[2].model, history[2].provider, history[2].metadata) == ("m1", "p", {"k": [1]})
    [call] = store.chat.tool_calls(session.id)
    assert (call.status, call.input, call.output) == ("succeeded", {"city": "LIS"},
                                                      {"sky": "sunny"})
    assert (call.message_id, call.result_message_id) == (history[2].id, history[3].id)
    more = store.chat.append(session.id, "user", "and tomorrow?")
    assert (more.seq, more.parent_id) == (len(messages) + 1, history[-1].id)


def test_create_with_first_messages_writes_nothing_on_error(store):
    store.chat.create_session(id="taken", messages=[{"role": "user", "content": "first"}])
    gone = store.chat.create_session(id="binned")
    store.chat.delete_session(gone.id)
    before = snapshot(store)
    for taken in ("taken", "binned"):
        with pytest.raises(Conflict):
            store.chat.create_session(id=taken, messages=_first_messages("full"))
    for messages, field in (
            ([{"role": "user", "content": "ok"}, {"role": "robot", "content": "x"}],
             "messages[1].role"),
            ([{"role": "user", "content": 5}], "messages[0].content"),
            ([{"role": "user", "content": "a", "parent_id": None}], "messages[0].parent_id"),
            ([{"role": "user", "content": "a", "parent_id": 5}], "messages[0].parent_id"),
            ("not a list", "messages"),
            ([{"role": "tool", "parts": [{"type": "tool_result", "call_id": "c",
                                          "is_error": "no"}]}], "messages[0].parts[0].is_error")):
        with pytest.raises(InvalidInput) as caught:
            store.chat.create_session(title="never", messages=messages)
        assert caught.value.field == field
    assert snapshot(store) == before


def test_get_unknown_session(store):
    with pytest.raises(NotFound):
        store.chat.get_session("no-such-session")


@pytest.mark.parametrize("field, value", [
    ("title", "New title"),
    ("title", None),
    ("provider", "anthropic"),
    ("model", "claude"),
    ("system_prompt", "You are terse."),
    ("generation", {"temperature": 1.5}),
    ("metadata", {"tags": ["a", "b"]}),
])
def test_update_changes_only_the_given_field(store, field, value):
    before = store.chat.create_session(
        title="Old", provider="openai", model="gpt", system_prompt="p",
        generation={"temperature": 0.1}, metadata={"k": 1})
    store.chat.append(before.id, "user", "hello")
    before = store.chat.get_session(before.id)
    after = store.chat.update_session(before.id, **{field: value})
    assert getattr(after, field) == value
    assert after.updated_at >= before.updated_at
    unchanged = set(before.to_dict()) - {field, "updated_at"}
    for name in unchanged:
        assert getattr(after, name) == getattr(before, name), name
    assert store.chat.get_session(before.id) == after


def test_update_with_no_fields_changes_nothing(store):
    session = store.chat.create_session(title="Same")
    again = store.chat.update_session(session.id)
    assert again == session


def test_update_unknown_or_deleted_session(store):
    with pytest.raises(NotFound):
        store.chat.update_session("missing", title="x")
    session = store.chat.create_session(title="t")
    store.chat.delete_session(session.id)
    with pytest.raises(NotFound):
        store.chat.update_session(session.id, title="x")
    assert store.chat.get_session(session.id, include_deleted=True).title == "t"


# --- listing -------------------------------------------------------------------------------


def test_list_is_newest_activity_first(store):
    sessions = [store.chat.create_session(title=f"s{i}") for i in range(5)]
    listed = store.chat.list_sessions().items
    assert [s.id for s in listed] == [s.id for s in activity_order(sessions)]
    # New activity on the oldest session brings it to the front.
    oldest = sessions[0]
    store.chat.append(oldest.id, "user", "bump")
    bumped = store.chat.get_session(oldest.id)
    assert bumped.active_at >= max(s.active_at for s in sessions)
    listed = store.chat.list_sessions().items
    assert listed[0].id == oldest.id
    assert [s.id for s in listed] == [s.id for s in activity_order(listed)]


def test_keyset_pagination_never_skips_or_repeats(store):
    created = [store.chat.create_session(title=f"page {i}") for i in range(25)]
    for session in created[::3]:  # activity in between, so order is not creation order
        store.chat.append(session.id, "user", "activity")
    seen, cursor, sizes = [], None, []
    while True:
        page = store.chat.list_sessions(limit=7, cursor=cursor)
        sizes.append(len(page.items))
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [7, 7, 7, 4]
    assert len({s.id for s in seen}) == 25
    assert {s.id for s in seen} == {s.id for s in created}
    assert [s.id for s in seen] == [s.id for s in store.chat.list_sessions(limit=100).items]
    assert [s.id for s in seen] == [s.id for s in activity_order(seen)]
    assert [s.id for s in store.chat.iter_sessions()] == [s.id for s in seen]


def test_pagination_on_an_exact_multiple_ends_without_cursor(store):
    for i in range(14):
        store.chat.create_session(title=str(i))
    first = store.chat.list_sessions(limit=7)
    second = store.chat.list_sessions(limit=7, cursor=first.next_cursor)
    assert len(second.items) == 7 and second.next_cursor is None
    assert not {s.id for s in first.items} & {s.id for s in second.items}


def test_pagination_with_a_filter(store):
    for i in range(10):
        store.chat.create_session(title=f"t{i}", provider="a" if i % 2 else "b")
    seen = list(store.chat.iter_sessions(provider="a", limit=2))
    assert len(seen) == 5 and {s.provider for s in seen} == {"a"}


def test_filter_by_status(store):
    active = store.chat.create_session(title="active")
    archived = store.chat.create_session(title="archived")
    deleted = store.chat.create_session(title="deleted")
    store.chat.archive_session(archived.id)
    store.chat.delete_session(deleted.id)

    def titles(**filters):
        return {s.title for s in store.chat.list_sessions(**filters).items}

    assert titles() == {"active", "archived"}
    assert titles(status="active") == {"active"}
    assert titles(status="archived") == {"archived"}
    assert titles(status="deleted") == {"deleted"}
    assert active.id in {s.id for s in store.chat.list_sessions(status="active").items}


def test_filter_by_provider_model_and_parent(store):
    parent = store.chat.create_session(title="parent", provider="openai", model="gpt")
    child = store.chat.create_session(title="child", provider="anthropic", model="claude",
                                      parent_id=parent.id)
    other = store.chat.create_session(title="other", provider="openai", model="o3")

    def titles(**filters):
        return {s.title for s in store.chat.list_sessions(**filters).items}

    assert titles(provider="openai") == {"parent", "other"}
    assert titles(provider="anthropic") == {"child"}
    assert titles(model="o3") == {"other"}
    assert titles(provider="openai", model="gpt") == {"parent"}
    assert titles(parent_id=parent.id) == {"child"}
    assert titles(parent_id=other.id) == set()
    assert titles(provider="nobody") == set()
    assert child.parent_id == parent.id


def test_filter_by_title_substring(store):
    for title in ("Trip to Lisbon", "lisbon notes", "Porto", "100% done", "100 done",
                  "a_b", "axb", "back\\slash", "backslash", None):
        store.chat.create_session(title=title)

    def titles(text):
        return {s.title for s in store.chat.list_sessions(title=text).items}

    assert titles("lisbon") == {"Trip to Lisbon", "lisbon notes"}
    assert titles("LISBON") == {"Trip to Lisbon", "lisbon notes"}
    assert titles("to lis") == {"Trip to Lisbon"}
    # LIKE wildcards in the filter are plain characters.
    assert titles("%") == {"100% done"}
    assert titles("100%") == {"100% done"}
    assert titles("_") == {"a_b"}
    assert titles("a_b") == {"a_b"}
    assert titles("\\") == {"back\\slash"}
    assert titles("nothing like it") == set()


def test_title_filter_matches_non_ascii_substrings(store):
    store.chat.create_session(title="ÉCOLE d'été")
    store.chat.create_session(title="東京 trip")
    store.chat.create_session(title="ΣΟΦΙΑ and Straße")
    # any case, in every script, on both backends (SQLite's own lower() folds ASCII only)
    for text in ("ÉCOLE", "été", "école", "ÉTÉ", "d'ét", "東京", "京 TRIP", "σοφια",
                 "STRAßE", "straße"):
        assert len(store.chat.list_sessions(title=text).items) == 1, text


def test_filter_by_activity_time(store):
    sessions = [store.chat.create_session(title=str(i)) for i in range(6)]
    sessions = [store.chat.get_session(s.id) for s in sessions]
    middle = sessions[2].active_at
    late = sessions[4].active_at

    def ids(**filters):
        return {s.id for s in store.chat.list_sessions(**filters).items}

    assert ids(since=middle) == {s.id for s in sessions if s.active_at >= middle}
    assert sessions[2].id in ids(since=middle)
    assert ids(until=middle) == {s.id for s in sessions if s.active_at < middle}
    assert sessions[2].id not in ids(until=middle)
    assert ids(since=middle, until=late) == {
        s.id for s in sessions if middle <= s.active_at < late}
    # Any time zone works: the bounds are instants.
    plus_two = timezone(timedelta(hours=2))
    assert ids(since=middle.astimezone(plus_two)) == ids(since=middle)
    assert ids(since=late + timedelta(days=1)) == set()
    assert ids(until=sessions[0].active_at - timedelta(days=1)) == set()


def test_message_count_and_preview_in_listing(store):
    empty = store.chat.create_session(title="empty")
    busy = store.chat.create_session(title="busy")
    store.chat.append(busy.id, "user", "question?")
    long_answer = "x" * 150 + "é" * 100 + "🙂" * 10
    store.chat.append(busy.id, "assistant", long_answer)
    rows = {s.id: s for s in store.chat.list_sessions().items}
    assert rows[empty.id].message_count == 0 and rows[empty.id].preview is None
    assert rows[busy.id].message_count == 2
    assert rows[busy.id].preview == long_answer[:200]
    assert store.chat.get_session(busy.id).preview == long_answer[:200]


def test_preview_follows_switch_branch(store):
    session = store.chat.create_session()
    question = store.chat.append(session.id, "user", "question")
    first = store.chat.append(session.id, "assistant", "first answer")
    second = store.chat.append(session.id, "assistant", "second answer", parent_id=question.id)

    def preview():
        return next(s for s in store.chat.list_sessions().items if s.id == session.id).preview

    assert preview() == "second answer"
    store.chat.switch_branch(session.id, first.id)
    assert preview() == "first answer"
    assert store.chat.get_session(session.id).preview == "first answer"
    store.chat.switch_branch(session.id, question.id)
    assert preview() == "question"
    assert store.chat.get_session(session.id).head_id == question.id
    assert second.parent_id == question.id


# --- lifecycle -----------------------------------------------------------------------------


def test_archive_and_restore(store):
    session = store.chat.create_session(title="t")
    store.chat.append(session.id, "user", "hi")
    archived = store.chat.archive_session(session.id)
    assert archived.status == "archived"
    assert store.chat.get_session(session.id).status == "archived"
    # An archived session still reads and takes messages.
    assert [m.content for m in store.chat.history(session.id)] == ["hi"]
    store.chat.append(session.id, "assistant", "hello")
    assert store.chat.archive_session(session.id).status == "archived"  # idempotent
    restored = store.chat.restore_session(session.id)
    assert restored.status == "active" and restored.deleted_at is None


def test_soft_delete_hides_and_restore_brings_back(store):
    session = store.chat.create_session(title="t")
    message = store.chat.append(session.id, "user", "hi")
    deleted = store.chat.delete_session(session.id)
    assert deleted.status == "deleted" and deleted.deleted_at is not None
    with pytest.raises(NotFound):
        store.chat.get_session(session.id)
    assert store.chat.get_session(session.id, include_deleted=True).status == "deleted"
    assert store.chat.list_sessions().items == []
    for call in (lambda: store.chat.history(session.id),
                 lambda: store.chat.get_message(message.id),
                 lambda: store.chat.append(session.id, "user", "more"),
                 lambda: store.chat.branches(session.id),
                 lambda: store.chat.files(session.id)):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(Conflict):
        store.chat.archive_session(session.id)
    restored = store.chat.restore_session(session.id)
    assert restored.status == "active" and restored.deleted_at is None
    assert [m.id for m in store.chat.history(session.id)] == [message.id]
    assert counters(restored) == (1, 0, 0, 0.0)


def test_lifecycle_of_unknown_session(store):
    for call in (store.chat.archive_session, store.chat.delete_session,
                 store.chat.restore_session, store.chat.purge_session):
        with pytest.raises(NotFound):
            call("missing")


def test_purge_removes_everything_the_session_owns(store):
    keep = store.chat.create_session(title="keep")
    kept_message = store.chat.append(keep.id, "user", "shared words here")
    shared = store.chat.attach(kept_message.id, b"shared bytes", filename="s.txt")

    gone = store.chat.create_session(title="gone")
    question = store.chat.append(gone.id, "user", "purgeable question")
    asked = store.chat.append(gone.id, "assistant", "calling", parts=[
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": 1}}])
    store.chat.append(gone.id, "tool", "result", parts=[
        {"type": "tool_result", "call_id": "c1", "output": "done"}])
    own = store.chat.attach(question.id, b"only mine", filename="a.bin")
    store.chat.attach(question.id, b"shared bytes", filename="copy.txt")
    store.chat.save_file(gone.id, "src/main.py", "print(1)")
    store.chat.save_file(gone.id, "src/main.py", "print(2)")
    calls = store.chat.tool_calls(gone.id)
    assert len(calls) == 1
    assert len(store.chat.search("purgeable")) == 1
    blobs_before = blob_count(store)
    assert blobs_before == 4  # shared, only mine, print(1), print(2)

    store.chat.purge_session(gone.id)

    with pytest.raises(NotFound):
        store.chat.get_session(gone.id, include_deleted=True)
    for message_id in (question.id, asked.id):
        with pytest.raises(NotFound):
            store.chat.get_message(message_id)
    with pytest.raises(NotFound):
        store.chat.get_tool_call(calls[0].id)
    assert store.chat.tool_calls(gone.id) == []
    with pytest.raises(NotFound):
        store.chat.attachments(question.id)
    with pytest.raises(NotFound):
        store.chat.read_attachment(own.id)
    with pytest.raises(NotFound):
        store.chat.files(gone.id)
    assert store.chat.search("purgeable") == []
    assert all(s.id != gone.id for s in all_sessions(store))
    # The blob only the purged session used is gone; the shared one stays readable.
    assert blob_count(store) == 1
    assert store.chat.read_attachment(shared.id) == b"shared bytes"
    assert [m.id for m in store.chat.history(keep.id)] == [kept_message.id]
    with pytest.raises(NotFound):
        store.chat.purge_session(gone.id)


def test_purge_a_soft_deleted_session(store):
    session = store.chat.create_session(title="bin")
    store.chat.append(session.id, "user", "hi")
    store.chat.delete_session(session.id)
    store.chat.purge_session(session.id)
    assert store.chat.list_sessions(status="deleted").items == []


def test_sub_agent_sessions(store):
    parent = store.chat.create_session(title="orchestrator")
    children = [store.chat.create_session(title=f"worker {i}", parent_id=parent.id)
                for i in range(3)]
    grandchild = store.chat.create_session(title="sub-worker", parent_id=children[0].id)
    assert {s.id for s in store.chat.list_sessions(parent_id=parent.id).items} == {
        c.id for c in children}
    store.chat.append(children[1].id, "user", "work")
    # Soft-deleting the parent leaves the link; purging it clears the link only.
    store.chat.delete_session(parent.id)
    assert store.chat.get_session(children[0].id).parent_id == parent.id
    store.chat.purge_session(parent.id)
    for child in children:
        survivor = store.chat.get_session(child.id)
        assert survivor.parent_id is None
    assert store.chat.get_session(grandchild.id).parent_id == children[0].id
    assert [m.content for m in store.chat.history(children[1].id)] == ["work"]
    assert store.chat.list_sessions(parent_id=parent.id).items == []


def test_sub_agent_parent_must_be_live(store):
    with pytest.raises(NotFound):
        store.chat.create_session(parent_id="missing")
    parent = store.chat.create_session()
    store.chat.delete_session(parent.id)
    with pytest.raises(NotFound):
        store.chat.create_session(parent_id=parent.id)
    assert store.chat.list_sessions().items == []


# --- counters ------------------------------------------------------------------------------


def test_counters_follow_every_operation(store):
    session = store.chat.create_session()
    sid = session.id
    q = store.chat.append(sid, "user", "q", usage={"input_tokens": 5})
    assert_counters(store, sid)
    a = store.chat.append(sid, "assistant", "a", usage={"input_tokens": 10, "output_tokens": 20,
                                                        "cache_read": 3}, cost=0.0125)
    assert_counters(store, sid)
    store.chat.append_many(sid, [
        {"role": "user", "content": "q2", "usage": {"input_tokens": 1}},
        {"role": "assistant", "content": "a2", "usage": {"output_tokens": 7}, "cost": 0.5},
    ])
    assert_counters(store, sid)
    store.chat.edit(q.id, content="q edited")
    assert_counters(store, sid)
    store.chat.append(sid, "assistant", "regen", parent_id=q.id,
                      usage={"input_tokens": 2, "output_tokens": 3}, cost=1e-9)
    assert_counters(store, sid)
    store.chat.switch_branch(sid, a.id)
    store.chat.set_summary(sid, a.id)
    assert_counters(store, sid)
    with pytest.raises(agentkeep.InvalidInput):
        store.chat.append(sid, "user", "bad", usage={"input_tokens": -1})
    assert_counters(store, sid)
    fork = store.chat.fork(sid, a.id)
    assert_counters(store, fork.id)
    final = store.chat.get_session(sid)
    assert final.message_count == 6
    assert final.input_tokens == 5 + 10 + 1 + 2
    assert final.output_tokens == 20 + 7 + 3
    assert final.cost == pytest.approx(0.0125 + 0.5 + 1e-9)
    assert store.chat.get_session(fork.id).message_count == 2

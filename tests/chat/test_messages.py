"""Messages: append, append_many, get_message, history (linear and branched), last_turns."""

from __future__ import annotations

import itertools

import pytest
from chat_helpers import assert_counters, expected_history, ids, path_to, snapshot

from agentkeep import InvalidInput, NotFound
from agentkeep.chat import store as chat_store

# --- append / get_message ------------------------------------------------------------------


def test_append_returns_what_get_message_reads(store):
    session = store.chat.create_session()
    message = store.chat.append(
        session.id, "assistant", "Checking flights.",
        parts=[{"type": "text", "text": "Checking flights."},
               {"type": "tool_call", "id": "c1", "name": "flights", "arguments": {"to": "LIS"}}],
        provider="openai", model="gpt-4.1", finish_reason="tool_calls",
        usage={"input_tokens": 12, "output_tokens": 30, "reasoning_tokens": 4}, cost=0.002,
        metadata={"trace": "abc", "nested": {"x": [1, 2.5, None, True]}})
    assert message.session_id == session.id
    assert message.parent_id is None and message.depth == 0 and message.seq == 1
    assert message.role == "assistant" and message.content == "Checking flights."
    assert message.parts[1]["arguments"] == {"to": "LIS"}
    assert (message.provider, message.model, message.finish_reason) == (
        "openai", "gpt-4.1", "tool_calls")
    assert (message.input_tokens, message.output_tokens) == (12, 30)
    assert message.usage == {"input_tokens": 12, "output_tokens": 30, "reasoning_tokens": 4}
    assert message.cost == pytest.approx(0.002)
    assert message.metadata == {"trace": "abc", "nested": {"x": [1, 2.5, None, True]}}
    assert message.created_at.tzinfo is not None
    assert store.chat.get_message(message.id) == message
    assert store.chat.history(session.id) == [message]


def test_ids_are_uuid7_in_creation_order(store):
    """Sessions and messages get UUIDv7 ids: version 7, RFC 4122 variant, the creation
    time's milliseconds in front, strictly increasing even within one millisecond."""
    import uuid

    session = store.chat.create_session()
    batch = store.chat.append_many(session.id, [{"role": "user", "content": str(n)}
                                                for n in range(300)])
    # 5,000 in one batch run the 12-bit counter past its end within a millisecond
    more = store.chat.append_many(session.id, [{"role": "user", "content": str(n)}
                                               for n in range(5000)])
    single = store.chat.append(session.id, "user", "one more")
    ids = [session.id] + [m.id for m in batch + more + [single]]
    parsed = [uuid.UUID(value) for value in ids]
    assert all(str(u) == value for u, value in zip(parsed, ids, strict=True))
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stamp_ms = batch[0].created_at.timestamp() * 1000
    assert abs((parsed[1].int >> 80) - stamp_ms) < 1000


def test_append_chains_on_the_head(store):
    session = store.chat.create_session()
    first = store.chat.append(session.id, "system", "Be brief.")
    second = store.chat.append(session.id, "user", "hi")
    third = store.chat.append(session.id, "assistant", "hello")
    assert second.parent_id == first.id and third.parent_id == second.id
    assert [m.depth for m in (first, second, third)] == [0, 1, 2]
    assert [m.seq for m in (first, second, third)] == [1, 2, 3]
    refreshed = store.chat.get_session(session.id)
    assert refreshed.head_id == third.id and refreshed.message_count == 3
    assert refreshed.active_at >= session.active_at


def test_content_defaults_to_the_text_parts(store):
    session = store.chat.create_session()
    message = store.chat.append(session.id, "user", parts=[
        {"type": "text", "text": "line one"},
        {"type": "image", "url": "https://example.com/x.png"},
        {"type": "text", "text": "line two"}])
    assert message.content == "line one\nline two"
    assert store.chat.get_message(message.id).content == "line one\nline two"
    empty = store.chat.append(session.id, "assistant")
    assert empty.content == "" and empty.parts == []


def test_every_role_is_accepted(store):
    session = store.chat.create_session()
    for role in ("system", "user", "assistant", "tool"):
        assert store.chat.append(session.id, role, role).role == role
    assert [m.role for m in store.chat.history(session.id)] == [
        "system", "user", "assistant", "tool"]


def test_append_to_unknown_session(store):
    with pytest.raises(NotFound):
        store.chat.append("missing", "user", "hi")
    with pytest.raises(NotFound):
        store.chat.get_message("missing")


def test_append_with_parent_none_starts_a_new_root(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "first root")
    root = store.chat.append(session.id, "user", "second root", parent_id=None)
    assert root.parent_id is None and root.depth == 0
    assert [m.content for m in store.chat.history(session.id)] == ["second root"]
    assert_counters(store, session.id)


# --- append_many ---------------------------------------------------------------------------


def test_append_many_chains_in_one_call(store):
    session = store.chat.create_session()
    head = store.chat.append(session.id, "user", "start")
    batch = store.chat.append_many(session.id, [
        {"role": "assistant", "content": "a", "usage": {"output_tokens": 3}},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c", "cost": 0.25},
    ])
    assert [m.parent_id for m in batch] == [head.id, batch[0].id, batch[1].id]
    assert store.chat.history(session.id) == [store.chat.get_message(head.id), *batch]
    assert store.chat.get_session(session.id).head_id == batch[-1].id
    assert_counters(store, session.id)
    assert store.chat.append_many(session.id, []) == []


ONE_EXTRA_EACH = [  # every rarely set field alone: a message with it is not "plain"
    {"provider": "openai"}, {"model": "gpt-4.1"}, {"finish_reason": "stop"},
    {"usage": {"input_tokens": 0, "output_tokens": 0}}, {"usage": {"output_tokens": 7}},
    {"cost": 0.5}, {"cost": 0}, {"metadata": {}}, {"metadata": {"k": "v"}},
]


@pytest.mark.parametrize("size", [1, 3, 25])  # 25: a PostgreSQL batch goes by COPY
def test_batches_with_and_without_rarely_set_fields_read_back_alike(store, size):
    """A batch of plain messages is written with fewer columns; a batch with any extra
    field with all of them. Either way every field reads back as it was given."""
    session = store.chat.create_session()
    batches = [[{"role": "user", "content": f"plain {n}"} for n in range(size)]]
    for extra in ONE_EXTRA_EACH:
        batch = [{"role": "assistant", "content": f"{extra} {n}"} for n in range(size)]
        batch[-1].update(extra)  # one message of the batch carries it
        batches.append(batch)
    written = []
    for batch in batches:
        written += store.chat.append_many(session.id, batch)
    read = store.chat.history(session.id)
    assert read == written
    assert [store.chat.get_message(m.id) for m in written] == written
    given = [message for batch in batches for message in batch]
    for message, fields in zip(read, given, strict=True):
        assert message.provider == fields.get("provider")
        assert message.model == fields.get("model")
        assert message.finish_reason == fields.get("finish_reason")
        assert message.usage == fields.get("usage")
        assert message.output_tokens == fields.get("usage", {}).get("output_tokens", 0)
        assert message.cost == pytest.approx(fields.get("cost") or 0)
        assert message.metadata == fields.get("metadata", {})
    assert_counters(store, session.id)


@pytest.mark.parametrize("container", [list, tuple, iter])
def test_append_many_places_the_chain_at_the_first_items_parent(store, container):
    session = store.chat.create_session()
    question = store.chat.append(session.id, "user", "q")
    store.chat.append(session.id, "assistant", "first try")
    batch = store.chat.append_many(session.id, container([
        {"role": "assistant", "content": "second try", "parent_id": question.id},
        {"role": "user", "content": "thanks"},
    ]))
    assert batch[0].parent_id == question.id and batch[1].parent_id == batch[0].id
    assert [m.content for m in store.chat.history(session.id)] == ["q", "second try", "thanks"]


BAD_ITEMS = [
    {"role": "robot", "content": "x"},
    {"content": "no role"},
    {"role": "user", "content": 5},
    {"role": "user", "content": "nul\x00"},
    {"role": "user", "usage": {"input_tokens": -1}},
    {"role": "user", "metadata": {"s": {1, 2}}},
    {"role": "user", "content": "x", "colour": "blue"},
    {"role": "user", "content": "x", "parent_id": None},  # only the first item may
    "not a dict",
]


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=range(len(BAD_ITEMS)))
def test_append_many_is_atomic(store, bad):
    session = store.chat.create_session(title="atomic")
    store.chat.append(session.id, "user", "before")
    before = snapshot(store)
    batch = [
        {"role": "assistant", "content": "ok 1", "parts": [
            {"type": "tool_call", "id": "c9", "name": "tool", "arguments": {}}]},
        {"role": "user", "content": "ok 2", "usage": {"input_tokens": 4}},
        bad,
        {"role": "assistant", "content": "ok 3"},
    ]
    with pytest.raises(InvalidInput) as error:
        store.chat.append_many(session.id, batch)
    assert error.value.field.startswith("messages[2]")
    assert snapshot(store) == before


def test_append_many_into_a_missing_session_writes_nothing(store):
    session = store.chat.create_session()
    gone = store.chat.create_session()
    store.chat.delete_session(gone.id)
    before = snapshot(store)
    asked_and_answered = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "model": "m", "parts": [
            {"type": "tool_call", "id": "c1", "name": "f", "arguments": {}}]},
        {"role": "tool", "content": "", "parts": [
            {"type": "tool_result", "call_id": "c1", "output": 1}]}]
    for missing in ("missing", gone.id):
        for batch in ([{"role": "user", "content": "x"}], asked_and_answered[:1] * 2,
                      asked_and_answered):
            with pytest.raises(NotFound):
                store.chat.append_many(missing, batch)
    with pytest.raises(NotFound):
        store.chat.append_many(session.id, [{"role": "user", "content": "x",
                                             "parent_id": "no-such-message"}])
    assert snapshot(store) == before
    store.chat.restore_session(gone.id)  # its messages and calls were hidden while deleted
    assert store.chat.history(gone.id) == [] and store.chat.tool_calls(gone.id) == []
    assert store.chat.get_session(gone.id).message_count == 0


# --- history -------------------------------------------------------------------------------

PATH_LENGTH = 8


def build_linear(store):
    session = store.chat.create_session(title="linear")
    for i in range(PATH_LENGTH):
        store.chat.append(session.id, "user" if i % 2 == 0 else "assistant", f"m{i}")
    return session.id


def build_branched(store):
    """The same active path as build_linear, with abandoned branches around it."""
    session = store.chat.create_session(title="branched")
    path = []
    for i in range(PATH_LENGTH):
        path.append(store.chat.append(session.id, "user" if i % 2 == 0 else "assistant",
                                      f"m{i}"))
    store.chat.edit(path[3].id, content="m3 edited")
    store.chat.append(session.id, "user", "on the edited branch")
    store.chat.append(session.id, "assistant", "regenerated", parent_id=path[5].id)
    store.chat.append(session.id, "user", "another root", parent_id=None)
    store.chat.switch_branch(session.id, path[-1].id)
    return session.id


def all_history_calls(path):
    """Every combination of window arguments worth asking for over ``path``."""
    cursors = [None, *ids(path)]
    limits = [{}, {"last": 1}, {"last": 3}, {"last": 100}, {"first": 1}, {"first": 3},
              {"first": 100}]
    for after, before, limit in itertools.product(cursors, cursors, limits):
        yield {"after": after, "before": before, **limit}


@pytest.mark.parametrize("build", [build_linear, build_branched])
def test_history_windows_follow_the_rules(store, build):
    session_id = build(store)
    head_id = store.chat.get_session(session_id).head_id
    path = path_to(store, head_id)
    assert [m.content for m in path] == [f"m{i}" for i in range(PATH_LENGTH)]
    assert store.chat.history(session_id) == path
    for kwargs in all_history_calls(path):
        got = store.chat.history(session_id, **kwargs)
        assert got == expected_history(path, **kwargs), kwargs


def test_linear_and_branched_sessions_answer_alike(store):
    linear, branched = build_linear(store), build_branched(store)
    path_linear = path_to(store, store.chat.get_session(linear).head_id)
    path_branched = path_to(store, store.chat.get_session(branched).head_id)
    translate = dict(zip(ids(path_linear), ids(path_branched), strict=True))

    def shape(messages):
        return [(m.content, m.role, m.depth) for m in messages]

    for kwargs in all_history_calls(path_linear):
        other = {k: translate.get(v, v) if k in ("before", "after") else v
                 for k, v in kwargs.items()}
        assert shape(store.chat.history(linear, **kwargs)) == shape(
            store.chat.history(branched, **other)), kwargs


def test_history_of_another_branch_and_of_an_inner_head(store):
    session_id = build_branched(store)
    leaves = store.chat.branches(session_id)
    for branch in leaves:
        store.chat.switch_branch(session_id, branch.leaf.id)
        path = path_to(store, branch.leaf.id)
        assert store.chat.history(session_id) == path
        assert store.chat.history(session_id, last=2) == path[-2:]
        assert store.chat.history(session_id, first=2) == path[:2]
    # A head in the middle of the tree: history ends there.
    middle = path_to(store, leaves[0].leaf.id)[2]
    store.chat.switch_branch(session_id, middle.id)
    assert store.chat.history(session_id) == path_to(store, middle.id)


def test_history_of_an_empty_session(store):
    session = store.chat.create_session()
    assert store.chat.history(session.id) == []
    assert store.chat.history(session.id, last=5, since_summary=True) == []
    assert store.chat.last_turns(session.id, 3) == []


@pytest.mark.parametrize("build", [build_linear, build_branched])
def test_cursors_must_be_on_the_active_branch(store, build):
    session_id = build(store)
    head = store.chat.get_session(session_id).head_id
    on_path = set(ids(path_to(store, head)))
    off_path = [b.leaf.id for b in store.chat.branches(session_id) if b.leaf.id not in on_path]
    other = store.chat.create_session()
    foreign = store.chat.append(other.id, "user", "elsewhere")
    if build is build_linear:  # make an off-branch message the linear way: a new root
        off_path = [store.chat.append(session_id, "user", "x", parent_id=None).id]
        store.chat.switch_branch(session_id, head)
    assert off_path
    for field in ("before", "after"):
        for message_id in (*off_path, foreign.id):
            with pytest.raises(InvalidInput) as error:
                store.chat.history(session_id, **{field: message_id})
            assert error.value.field == field
        with pytest.raises(NotFound):
            store.chat.history(session_id, **{field: "no-such-message"})


def test_history_arguments_are_checked(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "x")
    for kwargs in ({"last": 0}, {"first": 0}, {"last": -1}, {"last": 1.5}, {"last": "3"},
                   {"first": True}, {"first": 1, "last": 1}, {"before": 5}, {"after": ""}):
        with pytest.raises(InvalidInput):
            store.chat.history(session.id, **kwargs)
    with pytest.raises(NotFound):
        store.chat.history("missing")


@pytest.mark.parametrize("build", [build_linear, build_branched])
def test_since_summary_with_set_summary(store, build):
    session_id = build(store)
    path = path_to(store, store.chat.get_session(session_id).head_id)
    assert store.chat.history(session_id, since_summary=True) == path  # no summary yet
    summary = path[3]
    assert store.chat.set_summary(session_id, summary.id).summary_id == summary.id
    assert store.chat.history(session_id, since_summary=True) == path[3:]
    assert store.chat.history(session_id, since_summary=True, last=2) == path[-2:]
    assert store.chat.history(session_id, since_summary=True, first=2) == path[3:5]
    assert store.chat.history(session_id, since_summary=True, after=path[1].id) == path[3:]
    assert store.chat.history(session_id, since_summary=True, after=path[5].id) == path[6:]
    assert store.chat.history(session_id, since_summary=True, before=path[5].id) == path[3:5]
    assert store.chat.history(session_id, since_summary=True, before=path[2].id) == []
    assert store.chat.history(session_id) == path  # without the flag: everything
    for kwargs in all_history_calls(path):
        got = store.chat.history(session_id, since_summary=True, **kwargs)
        assert got == expected_history(path, summary_id=summary.id, **kwargs), kwargs
    assert store.chat.set_summary(session_id, None).summary_id is None
    assert store.chat.history(session_id, since_summary=True) == path


def test_since_summary_with_a_summary_message(store):
    session = store.chat.create_session()
    for i in range(4):
        store.chat.append(session.id, "user", f"old {i}")
    summary = store.chat.append(session.id, "system", "Summary of the above.", summary=True)
    assert store.chat.get_session(session.id).summary_id == summary.id
    recent = [store.chat.append(session.id, "user", f"new {i}") for i in range(3)]
    assert store.chat.history(session.id, since_summary=True) == [summary, *recent]
    assert len(store.chat.history(session.id)) == 8
    # A later summary replaces the earlier one.
    newer = store.chat.append(session.id, "system", "Newer summary.", summary=True)
    assert store.chat.history(session.id, since_summary=True) == [newer]


def test_summary_off_the_active_branch_is_ignored(store):
    session = store.chat.create_session()
    question = store.chat.append(session.id, "user", "q")
    summary = store.chat.append(session.id, "system", "summary", summary=True)
    other = store.chat.append(session.id, "assistant", "other branch", parent_id=question.id)
    assert store.chat.get_session(session.id).summary_id == summary.id
    assert store.chat.history(session.id, since_summary=True) == [
        store.chat.get_message(question.id), other]


def test_set_summary_checks_its_message(store):
    session = store.chat.create_session()
    other = store.chat.create_session()
    foreign = store.chat.append(other.id, "user", "x")
    with pytest.raises(InvalidInput):
        store.chat.set_summary(session.id, foreign.id)
    with pytest.raises(NotFound):
        store.chat.set_summary(session.id, "missing")
    with pytest.raises(NotFound):
        store.chat.set_summary("missing", None)
    assert store.chat.get_session(session.id).summary_id is None


# --- last_turns ----------------------------------------------------------------------------


def expected_turns(path, turns):
    users = [i for i, m in enumerate(path) if m.role == "user"
             and not any(p.get("type") == "tool_result" for p in m.parts)]
    start = users[-turns] if len(users) >= turns else 0
    return path[start:]


def tool_turn(store, session_id, n, *, anthropic_style=False):
    store.chat.append(session_id, "user", f"question {n}")
    store.chat.append(session_id, "assistant", "", parts=[
        {"type": "tool_call", "id": f"call{n}", "name": "search", "arguments": {"n": n}}])
    result = [{"type": "tool_result", "call_id": f"call{n}", "output": f"result {n}"}]
    if anthropic_style:  # tool results travel in a user message
        store.chat.append(session_id, "user", "", parts=result)
    else:
        store.chat.append(session_id, "tool", f"result {n}", parts=result)
    store.chat.append(session_id, "assistant", f"answer {n}")


@pytest.mark.parametrize("anthropic_style", [False, True], ids=["tool-role", "user-role"])
def test_last_turns_keeps_tool_calls_with_their_results(store, anthropic_style):
    session = store.chat.create_session()
    store.chat.append(session.id, "system", "You are helpful.")
    for n in range(4):
        tool_turn(store, session.id, n, anthropic_style=anthropic_style)
    path = store.chat.history(session.id)
    for turns in (1, 2, 3, 4, 5, 100):
        got = store.chat.last_turns(session.id, turns)
        assert got == expected_turns(path, turns), turns
        call_ids = {p["id"] for m in got for p in m.parts if p["type"] == "tool_call"}
        result_ids = {p["call_id"] for m in got for p in m.parts if p["type"] == "tool_result"}
        assert call_ids == result_ids
        assert got[0].role in ("user", "system")
    assert store.chat.last_turns(session.id, 1)[0].content == "question 3"
    assert store.chat.last_turns(session.id, 100) == path


def test_last_turns_follows_the_active_branch(store):
    session = store.chat.create_session()
    tool_turn(store, session.id, 0)
    first_question = store.chat.history(session.id)[0]
    tool_turn(store, session.id, 1)
    store.chat.edit(first_question.id, content="question 0 again")
    reply = store.chat.append(session.id, "assistant", "fresh answer")
    got = store.chat.last_turns(session.id, 5)
    assert [m.content for m in got] == ["question 0 again", "fresh answer"]
    assert got[-1] == reply


def test_last_turns_arguments(store):
    session = store.chat.create_session()
    for turns in (0, -1, 1.0, "2", None):
        with pytest.raises(InvalidInput):
            store.chat.last_turns(session.id, turns)
    with pytest.raises(NotFound):
        store.chat.last_turns("missing", 1)


# On PostgreSQL a batch at the head goes in as binary arrays in one statement, and one of
# more text than ONE_STATEMENT_MAX_CHARS (64 Mi characters; 0 here forces it) by COPY.
@pytest.mark.parametrize("one_statement_limit", [None, 0])
def test_a_large_batch_keeps_every_byte(store, monkeypatch, one_statement_limit):
    """Text that COPY escapes (tabs, newlines, backslashes, a literal \\N, quotes) and that
    arrays quote must come back exactly, fields and all."""
    if one_statement_limit is not None:
        monkeypatch.setattr(chat_store, "ONE_STATEMENT_MAX_CHARS", one_statement_limit)
    session = store.chat.create_session()
    awkward = ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\\\", "'quotes' \"too\"",
               "", "ünïcödé — 😀", "\\.", "comma, separated; values|pipes"]
    batch = [{"role": "assistant" if i % 2 else "user", "content": awkward[i % len(awkward)],
              "provider": "p\tq" if i % 3 == 0 else None, "model": "m\\n" if i % 5 == 0 else None,
              "usage": {"input_tokens": i, "output_tokens": 2 * i, "note": awkward[i % 8]},
              "cost": i / 1000, "metadata": {"k": awkward[(i + 1) % 8], "n": [i, None]}}
             for i in range(30)]
    batch[3]["parts"] = [{"type": "tool_call", "id": "c\t1", "name": "f",
                          "arguments": {"q": awkward[2]}}]
    batch[4]["parts"] = [{"type": "tool_result", "call_id": "c\t1", "output": awkward[1]}]
    written = store.chat.append_many(session.id, batch)
    read = store.chat.history(session.id)
    assert read == written
    [call] = store.chat.tool_calls(session.id)
    assert (call.call_id, call.input, call.output) == ("c\t1", {"q": awkward[2]}, awkward[1])
    assert (call.message_id, call.result_message_id) == (written[3].id, written[4].id)
    for message, fields in zip(read, batch, strict=True):
        assert message.content == fields["content"]
        assert (message.provider, message.model) == (fields["provider"], fields["model"])
        assert message.usage == fields["usage"] and message.metadata == fields["metadata"]
        assert message.input_tokens == fields["usage"]["input_tokens"]
    assert store.chat.get_session(session.id).message_count == 30


def test_a_process_with_many_files_open_appends_and_reads(stores):
    """A busy server process has descriptors numbered 1024 and above: the store's
    connections get such numbers too, and nothing on the way (PostgreSQL's check of an
    idle pooled connection, say) may rely on select(), which refuses them."""
    import os
    import resource

    wanted = 1100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted + 200:
        if hard != resource.RLIM_INFINITY and hard < wanted + 200:
            pytest.skip(f"the descriptor limit ({hard}) is below {wanted + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted + 200, hard))
    files = [open(os.devnull) for _ in range(wanted)]  # noqa: SIM115
    try:
        store = stores.open()  # its connections now get numbers above 1024
        session = store.chat.create_session()
        sent = [store.chat.append(session.id, "user", f"message {n}") for n in range(5)]
        assert store.chat.history(session.id) == sent
        store.close()
    finally:
        for file in files:
            file.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_times_read_back_whatever_the_connections_zone_and_date_style(stores, monkeypatch):
    """PostgreSQL message times are read as the server's text: agentkeep's connections
    set UTC and ISO whatever the environment asks libpq for (PGTZ, PGDATESTYLE)."""
    monkeypatch.setenv("PGTZ", "America/New_York")
    monkeypatch.setenv("PGDATESTYLE", "SQL, DMY")
    store = stores.open()
    session = store.chat.create_session()
    written = [store.chat.append(session.id, "user", str(n)) for n in range(3)]
    written += store.chat.append_many(session.id, [{"role": "user", "content": "x"}] * 30)
    for read in (store.chat.history(session.id), store.chat.history(session.id, last=5),
                 [store.chat.get_message(m.id) for m in written[:3]]):
        for message in read:
            assert message.created_at == written[message.seq - 1].created_at
            assert message.created_at.tzinfo is not None
            assert message.created_at.utcoffset().total_seconds() == 0
    got = store.chat.get_session(session.id)
    assert got.created_at == session.created_at and got.message_count == 33

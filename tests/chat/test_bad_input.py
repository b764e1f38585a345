"""Bad input: each call gets the documented error and leaves the store exactly as it was."""

from __future__ import annotations

import inspect
import math
from datetime import datetime, timedelta, timezone

import pytest
from chat_helpers import snapshot

from agentkeep import AgentkeepError, InvalidInput, NotFound, StoreClosed
from agentkeep.chat.store import ChatStore


class Opaque:
    pass


@pytest.fixture
def world(store):
    """A session with a small conversation, a tool call, an attachment and a file."""
    session = store.chat.create_session(title="world", metadata={"k": 1})
    question = store.chat.append(session.id, "user", "question")
    answer = store.chat.append(session.id, "assistant", "answer", parts=[
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {}}])
    store.chat.attach(question.id, b"data", filename="d.bin")
    store.chat.save_file(session.id, "f.txt", "v1")
    return {"session": session.id, "question": question.id, "answer": answer.id,
            "call": store.chat.tool_calls(session.id)[0].id}


def expect(store, error, call, field=None, case=None):
    """``call`` raises ``error`` (naming ``field`` when given) and changes nothing."""
    before = snapshot(store)
    try:
        call()
    except error as raised:
        if field is not None:
            assert raised.field == field, (case, raised)
        assert snapshot(store) == before, case
        return raised
    pytest.fail(f"{case!r}: did not raise {error.__name__}")


BAD_METADATA = {
    "set": {"tags": {"a", "b"}},
    "object": {"thing": Opaque()},
    "nan": {"x": math.nan},
    "infinity": {"x": -math.inf},
    "int key": {1: "a"},
    "tuple key": {("a", "b"): 1},
    "none key": {None: 1},
    "tuple value": {"x": (1, 2)},
    "bytes value": {"x": b"raw"},
    "datetime value": {"x": datetime(2024, 1, 1)},
    "nested set": {"a": [{"b": {1}}]},
    "nul in key": {"a\x00": 1},
    "nul in value": {"a": "b\x00"},
    "surrogate in value": {"a": "\udc80"},
    "surrogate in key": {"\ud83d": 1},
    "too deep": {"x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
        ]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    "not a dict": ["a", "b"],
    "a string": "metadata",
}


def test_metadata_must_be_json_that_reads_back_the_same(store, world):
    sid, chat = world["session"], store.chat
    for case, metadata in BAD_METADATA.items():
        for field, call in (
            ("metadata", lambda m=metadata: chat.append(sid, "user", "x", metadata=m)),
            ("metadata", lambda m=metadata: chat.create_session(metadata=m)),
            ("generation", lambda m=metadata: chat.create_session(generation=m)),
            ("metadata", lambda m=metadata: chat.update_session(sid, metadata=m)),
            ("metadata", lambda m=metadata: chat.edit(world["question"], metadata=m)),
        ):
            expect(store, InvalidInput, call, field, case)


@pytest.mark.parametrize("text, problem", [
    ("nul \x00 inside", "NUL"),
    ("lone \ud800 surrogate", "surrogate"),
    ("lone low \udfff", "surrogate"),
])
def test_text_that_cannot_be_stored(store, world, text, problem):
    sid = world["session"]
    error = expect(store, InvalidInput, lambda: store.chat.append(sid, "user", text), "content")
    assert problem in str(error)
    expect(store, InvalidInput, lambda: store.chat.append(
        sid, "user", parts=[{"type": "text", "text": text}]), "parts[0].text")
    expect(store, InvalidInput, lambda: store.chat.create_session(title=text), "title")
    expect(store, InvalidInput, lambda: store.chat.update_session(sid, system_prompt=text),
           "system_prompt")
    expect(store, InvalidInput, lambda: store.chat.edit(world["question"], content=text),
           "content")
    expect(store, InvalidInput, lambda: store.chat.append(sid, "user", "x", model=text), "model")
    expect(store, InvalidInput, lambda: store.chat.get_session(text), "session_id")


def test_unknown_role(store, world):
    for role in ("robot", "User", "", None, 5, ["user"], {"user": 1}):
        expect(store, InvalidInput, lambda r=role: store.chat.append(world["session"], r, "x"),
               "role", role)


BAD_USAGE = [
    ({"input_tokens": -1}, "usage.input_tokens"),
    ({"output_tokens": -5}, "usage.output_tokens"),
    ({"input_tokens": 1, "cache_read_tokens": -2}, "usage.cache_read_tokens"),
    ({"input_tokens": 1.5}, "usage.input_tokens"),
    ({"input_tokens": "3"}, "usage.input_tokens"),
    ({"input_tokens": True}, "usage.input_tokens"),
    ({"input_tokens": 2**63}, "usage.input_tokens"),
    # fits 63 bits, but two such messages would overflow the session's sum
    ({"output_tokens": 2**62}, "usage.output_tokens"),
    ({"input_tokens": 10**12 + 1}, "usage.input_tokens"),
    ({"details": {1, 2}}, "usage"),
    ([("input_tokens", 1)], "usage"),
    (12, "usage"),
]


def test_bad_usage_and_cost(store, world):
    sid = world["session"]
    for usage, field in BAD_USAGE:
        expect(store, InvalidInput,
               lambda u=usage: store.chat.append(sid, "assistant", "x", usage=u), field, usage)
    for cost in (-0.01, math.nan, math.inf, "0.1", True, 1e10, [1]):
        expect(store, InvalidInput,
               lambda c=cost: store.chat.append(sid, "assistant", "x", cost=c), "cost", cost)


def test_too_large_numbers_are_named_as_too_large(store, world):
    """A value over a bound is not told it must be non-negative."""
    sid = world["session"]
    raised = expect(store, InvalidInput,
                    lambda: store.chat.append(sid, "assistant", "x", cost=1e10), "cost")
    assert "less than 9,000,000,000 US dollars" in raised.problem
    raised = expect(store, InvalidInput, lambda: store.chat.append(
        sid, "assistant", "x", usage={"input_tokens": 2**63}), "usage.input_tokens")
    assert "less than 2^63" in raised.problem
    raised = expect(store, InvalidInput,
                    lambda: store.chat.append(sid, "assistant", "x", cost=-1), "cost")
    assert "non-negative" in raised.problem


APPEND_BAD_ARGUMENTS = [
    ({"content": b"bytes"}, "content"),
    ({"content": 5}, "content"),
    ({"content": ["a"]}, "content"),
    ({"parts": "text"}, "parts"),
    ({"parts": {"type": "text", "text": "x"}}, "parts"),
    ({"parts": ["text"]}, "parts[0]"),
    ({"parts": [{"text": "no type"}]}, "parts[0].type"),
    ({"parts": [{"type": 5}]}, "parts[0].type"),
    ({"parts": [{"type": ""}]}, "parts[0].type"),
    ({"parts": [{"type": "text", "text": 5}]}, "parts[0].text"),
    ({"parts": [{"type": "text"}]}, "parts[0].text"),
    ({"parts": [{"type": "image", "url": {1}}]}, "parts"),
    ({"parts": [{"type": "tool_call", "name": None}]}, "parts[0].name"),
    ({"parts": [{"type": "tool_result", "call_id": 5}]}, "parts[0].call_id"),
    ({"provider": 5}, "provider"),
    ({"model": b"m"}, "model"),
    ({"finish_reason": ["stop"]}, "finish_reason"),
    ({"summary": "yes"}, "summary"),
    ({"summary": 1}, "summary"),
    ({"parent_id": 5}, "parent_id"),
    ({"parent_id": ""}, "parent_id"),
    ({"parent_id": "x" * 201}, "parent_id"),
    ({"provider": "p" * 1001}, "provider"),
]


def test_append_argument_types(store, world):
    for case, field in APPEND_BAD_ARGUMENTS:
        kwargs = {"content": "x", **case}
        content = kwargs.pop("content")
        expect(store, InvalidInput,
               lambda c=content, k=kwargs: store.chat.append(world["session"], "user", c, **k),
               field, case)


@pytest.mark.parametrize("session_id", [None, 5, "", "x" * 201, "a\x00b", b"id", ["id"]])
def test_session_id_types(store, world, session_id):
    calls = [
        lambda: store.chat.get_session(session_id),
        lambda: store.chat.update_session(session_id, title="x"),
        lambda: store.chat.archive_session(session_id),
        lambda: store.chat.delete_session(session_id),
        lambda: store.chat.restore_session(session_id),
        lambda: store.chat.purge_session(session_id),
        lambda: store.chat.append(session_id, "user", "x"),
        lambda: store.chat.append_many(session_id, [{"role": "user"}]),
        lambda: store.chat.history(session_id),
        lambda: store.chat.last_turns(session_id, 1),
        lambda: store.chat.set_summary(session_id, None),
        lambda: store.chat.branches(session_id),
        lambda: store.chat.switch_branch(session_id, world["question"]),
        lambda: store.chat.fork(session_id),
        lambda: store.chat.save_file(session_id, "p", "x"),
        lambda: store.chat.files(session_id),
        lambda: store.chat.file_versions(session_id, "p"),
        lambda: store.chat.read_file(session_id, "p"),
        lambda: store.chat.recount(session_id),
    ]
    if session_id is not None:  # None means "every session" here
        calls.append(lambda: store.chat.search("x", session_id=session_id))
    for index, call in enumerate(calls):
        expect(store, InvalidInput, call, case=index)


@pytest.mark.parametrize("message_id", [None, 5, "", "x" * 201, "\ud800"])
def test_message_id_types(store, world, message_id):
    sid = world["session"]
    calls = [
        lambda: store.chat.get_message(message_id),
        lambda: store.chat.edit(message_id, content="x"),
        lambda: store.chat.switch_branch(sid, message_id),
        lambda: store.chat.history(sid, before=message_id or 5),
        lambda: store.chat.history(sid, after=message_id or 5),
        lambda: store.chat.record_tool_call(message_id, "x"),
        lambda: store.chat.attach(message_id, b"x", filename="x"),
        lambda: store.chat.attachments(message_id),
    ]
    if message_id is not None:  # None means "no summary" and "the head" for these
        calls += [lambda: store.chat.set_summary(sid, message_id),
                  lambda: store.chat.fork(sid, message_id)]
    for index, call in enumerate(calls):
        expect(store, InvalidInput, call, case=index)


def test_unknown_ids_are_not_found(store, world):
    sid = world["session"]
    for call in (
        lambda: store.chat.get_session("missing"),
        lambda: store.chat.update_session("missing", title="x"),
        lambda: store.chat.append("missing", "user", "x"),
        lambda: store.chat.append(sid, "user", "x", parent_id="missing"),
        lambda: store.chat.get_message("missing"),
        lambda: store.chat.history("missing"),
        lambda: store.chat.history(sid, before="missing"),
        lambda: store.chat.last_turns("missing", 2),
        lambda: store.chat.edit("missing"),
        lambda: store.chat.branches("missing"),
        lambda: store.chat.switch_branch(sid, "missing"),
        lambda: store.chat.fork("missing"),
        lambda: store.chat.fork(sid, "missing"),
        lambda: store.chat.set_summary(sid, "missing"),
        lambda: store.chat.record_tool_call("missing", "x"),
        lambda: store.chat.get_tool_call("missing"),
        lambda: store.chat.start_tool_call("missing"),
        lambda: store.chat.finish_tool_call("missing", output=1),
        lambda: store.chat.attach("missing", b"x", filename="x"),
        lambda: store.chat.read_attachment("missing"),
        lambda: store.chat.save_file("missing", "p", "x"),
        lambda: store.chat.read_file(sid, "missing"),
        lambda: store.chat.archive_session("missing"),
        lambda: store.chat.delete_session("missing"),
        lambda: store.chat.restore_session("missing"),
        lambda: store.chat.purge_session("missing"),
        lambda: store.chat.create_session(parent_id="missing"),
    ):
        expect(store, NotFound, call, case=inspect.getsource(call).strip())


def test_create_and_update_session_argument_types(store, world):
    for kwargs in ({"title": 5}, {"provider": ["p"]}, {"model": 1.0}, {"system_prompt": b"p"},
                   {"generation": [("temperature", 1)]}, {"generation": "hot"}, {"metadata": 7},
                   {"parent_id": 5}, {"title": "t" * 100_001}, {"model": "m" * 1001}):
        field = next(iter(kwargs))
        expect(store, InvalidInput, lambda k=kwargs: store.chat.create_session(**k), field,
               kwargs)
        if field != "parent_id":
            expect(store, InvalidInput,
                   lambda k=kwargs: store.chat.update_session(world["session"], **k), field,
                   kwargs)


def test_list_sessions_argument_types(store, world):
    for kwargs in (
        {"status": "gone"}, {"status": 1}, {"provider": 5}, {"model": ["m"]}, {"parent_id": 3},
        {"title": 5}, {"title": "a\x00"}, {"since": "2024-01-01"},
        {"since": datetime(2024, 1, 1)}, {"until": 1700000000}, {"limit": 0},
        {"limit": 10_001}, {"limit": None}, {"limit": 2.0}, {"cursor": "not a cursor"},
        {"cursor": 5}, {"cursor": ""}, {"cursor": "WzEsMl0"},
        {"cursor": "WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgIngiXQ"},  # a time without a zone
        {"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwgIngiXQ"},  # before year 1 in UTC
        {"since": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))},
        {"until": datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))},
    ):
        expect(store, InvalidInput, lambda k=kwargs: store.chat.list_sessions(**k),
               next(iter(kwargs)), kwargs)


def test_flags_must_be_booleans(store, world):
    chat, w = store.chat, world
    for field, call in (
        ("include_deleted", lambda: chat.get_session(w["session"], include_deleted="no")),
        ("since_summary", lambda: chat.history(w["session"], since_summary="no")),
        ("cancelled", lambda: chat.finish_tool_call(w["call"], cancelled="no")),
        ("cancelled", lambda: chat.finish_tool_call(w["call"], cancelled=1)),
    ):
        expect(store, InvalidInput, call, field, field)


def test_append_many_needs_a_list(store, world):
    for messages in (None, 5, "user: hi", b"x", {"role": "user"}):
        expect(store, InvalidInput,
               lambda m=messages: store.chat.append_many(world["session"], m), "messages",
               messages)


def test_errors_are_agentkeep_errors(store, world):
    with pytest.raises(InvalidInput) as invalid:
        store.chat.append(world["session"], "robot", "x")
    assert isinstance(invalid.value, (AgentkeepError, ValueError))
    assert "role" in str(invalid.value)
    with pytest.raises(NotFound) as missing:
        store.chat.get_session("missing")
    assert isinstance(missing.value, (AgentkeepError, LookupError))


# --- a closed store --------------------------------------------------------------------------

# One valid call per public method; with the store closed each must raise StoreClosed.
CLOSED_CALLS = {
    "create_session": lambda c, w: c.create_session(title="x"),
    "get_session": lambda c, w: c.get_session(w["session"]),
    "update_session": lambda c, w: c.update_session(w["session"], title="y"),
    "list_sessions": lambda c, w: c.list_sessions(),
    "iter_sessions": lambda c, w: next(c.iter_sessions()),
    "archive_session": lambda c, w: c.archive_session(w["session"]),
    "delete_session": lambda c, w: c.delete_session(w["session"]),
    "restore_session": lambda c, w: c.restore_session(w["session"]),
    "purge_session": lambda c, w: c.purge_session(w["session"]),
    "append": lambda c, w: c.append(w["session"], "user", "x"),
    "append_many": lambda c, w: c.append_many(w["session"], [{"role": "user"}]),
    "get_message": lambda c, w: c.get_message(w["question"]),
    "history": lambda c, w: c.history(w["session"]),
    "last_turns": lambda c, w: c.last_turns(w["session"], 1),
    "set_summary": lambda c, w: c.set_summary(w["session"], None),
    "edit": lambda c, w: c.edit(w["question"], content="x"),
    "branches": lambda c, w: c.branches(w["session"]),
    "switch_branch": lambda c, w: c.switch_branch(w["session"], w["question"]),
    "fork": lambda c, w: c.fork(w["session"]),
    "record_tool_call": lambda c, w: c.record_tool_call(w["answer"], "x"),
    "get_tool_call": lambda c, w: c.get_tool_call(w["call"]),
    "start_tool_call": lambda c, w: c.start_tool_call(w["call"]),
    "finish_tool_call": lambda c, w: c.finish_tool_call(w["call"], output=1),
    "tool_calls": lambda c, w: c.tool_calls(),
    "attach": lambda c, w: c.attach(w["question"], b"x", filename="x"),
    "attachments": lambda c, w: c.attachments(w["question"]),
    "read_attachment": lambda c, w: c.read_attachment("any"),
    "save_file": lambda c, w: c.save_file(w["session"], "p", "x"),
    "files": lambda c, w: c.files(w["session"]),
    "file_versions": lambda c, w: c.file_versions(w["session"], "p"),
    "read_file": lambda c, w: c.read_file(w["session"], "f.txt"),
    "catch_up_index": lambda c, w: c.catch_up_index() if c._dialect == "sqlite" else c.search(
        "x"),
    "search": lambda c, w: c.search("question"),
    "recount": lambda c, w: c.recount(w["session"]),
    "transaction": lambda c, w: c.transaction().__enter__(),
}


def test_every_public_method_is_covered_by_the_closed_store_test():
    public = {name for name, member in inspect.getmembers(ChatStore, inspect.isfunction)
              if not name.startswith("_")}
    assert public == set(CLOSED_CALLS)


def test_a_closed_store_raises_store_closed(stores):
    store = stores.open()
    session = store.chat.create_session()
    question = store.chat.append(session.id, "user", "question")
    answer = store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "c1", "name": "x"}])
    world = {"session": session.id, "question": question.id, "answer": answer.id,
             "call": store.chat.tool_calls()[0].id}
    store.close()
    assert store.is_closed
    for name, call in CLOSED_CALLS.items():
        with pytest.raises(StoreClosed):
            call(store.chat, world)
            pytest.fail(f"{name} worked on a closed store")
    store.close()  # idempotent
    with pytest.raises(StoreClosed):
        store.transaction().__enter__()
    reopened = stores.open()
    assert [m.id for m in reopened.chat.history(session.id)] == [question.id, answer.id]

"""Tool calls: from message parts, recorded by hand, their life cycle and listing."""

from __future__ import annotations

import pytest

from agentkeep import Conflict, InvalidInput, NotFound


@pytest.fixture
def asking(store):
    """A session and an assistant message that asks for tools."""
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "weather in Lisbon and Porto?")
    message = store.chat.append(session.id, "assistant", "")
    return session, message


def test_tool_calls_from_parts(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "weather?")
    asked = store.chat.append(session.id, "assistant", "Looking.", parts=[
        {"type": "text", "text": "Looking."},
        {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "LIS"}},
        {"type": "tool_call", "id": "call_2", "name": "weather", "arguments": {"city": "OPO"}},
    ])
    calls = store.chat.tool_calls(session.id)
    assert {c.call_id for c in calls} == {"call_1", "call_2"}
    for call in calls:
        assert call.status == "pending" and call.message_id == asked.id
        assert call.session_id == session.id and call.name == "weather"
        assert call.output is None and call.result_message_id is None
        assert call.retry_count == 0 and call.duration_ms is None
    assert {c.call_id: c.input for c in calls} == {
        "call_1": {"city": "LIS"}, "call_2": {"city": "OPO"}}

    ok = store.chat.append(session.id, "tool", "sunny", parts=[
        {"type": "tool_result", "call_id": "call_1", "output": {"sky": "sunny"}}])
    bad = store.chat.append(session.id, "tool", "error", parts=[
        {"type": "tool_result", "call_id": "call_2", "output": "timeout", "is_error": True}])
    calls = {c.call_id: c for c in store.chat.tool_calls(session.id)}
    assert calls["call_1"].status == "succeeded"
    assert calls["call_1"].output == {"sky": "sunny"}
    assert calls["call_1"].result_message_id == ok.id
    assert calls["call_2"].status == "failed" and calls["call_2"].error == "timeout"
    assert calls["call_2"].result_message_id == bad.id
    for call in calls.values():
        assert call.finished_at is not None and call.duration_ms >= 0
        assert store.chat.get_tool_call(call.id) == call
    assert store.chat.tool_calls(message_id=asked.id) == store.chat.tool_calls(session.id)


def test_a_result_answers_the_newest_call_with_its_id(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "same", "name": "first", "arguments": {}}])
    store.chat.append(session.id, "tool", "", parts=[
        {"type": "tool_result", "call_id": "same", "output": 1}])
    store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "same", "name": "second", "arguments": {}}])
    store.chat.append(session.id, "tool", "", parts=[
        {"type": "tool_result", "call_id": "same", "output": 2}])
    calls = {c.name: c for c in store.chat.tool_calls(session.id)}
    assert (calls["first"].output, calls["second"].output) == (1, 2)


@pytest.mark.parametrize("pairs", [1, 30])  # 30: the calls go in by COPY on PostgreSQL
# with_older: a result answers a call of an earlier append. Without one, PostgreSQL writes
# the batch, its calls and the session's counters in one statement (APPEND_MANY_POSTGRES).
@pytest.mark.parametrize("with_older", [True, False])
def test_calls_answered_in_the_same_batch(store, pairs, with_older):
    session = store.chat.create_session()
    older = store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "older", "name": "slow", "arguments": {}}])
    batch = []
    for n in range(pairs):
        batch.append({"role": "assistant", "content": "", "parts": [
            {"type": "tool_call", "id": f"c{n}", "name": "add", "arguments": {"n": n}}]})
        batch.append({"role": "tool", "content": "", "parts": [
            {"type": "tool_result", "call_id": f"c{n}", "output": {"sum": n},
             "is_error": n % 7 == 3}]})
    batch.append({"role": "assistant", "content": "", "parts": [
        {"type": "tool_call", "id": "late", "name": "add", "arguments": {}},
        {"type": "tool_call", "id": "open", "name": "add", "arguments": {}}]})
    if with_older:  # a result for the call of an earlier append
        batch.append({"role": "tool", "content": "", "parts": [
            {"type": "tool_result", "call_id": "older", "output": "done"}]})
    # then one for a call of this batch
    batch.append({"role": "tool", "content": "", "parts": [
        {"type": "tool_result", "call_id": "late", "output": "late"}]})
    written = store.chat.append_many(session.id, batch)

    calls = {c.call_id: c for c in store.chat.tool_calls(session.id, limit=1000)}
    assert len(calls) == pairs + 3
    for n in range(pairs):
        call, asked, answer = calls[f"c{n}"], written[2 * n], written[2 * n + 1]
        assert (call.message_id, call.result_message_id) == (asked.id, answer.id)
        assert call.input == {"n": n} and call.output == {"sum": n}
        assert call.status == ("failed" if n % 7 == 3 else "succeeded")
        assert call.error == (str({"sum": n}) if n % 7 == 3 else None)
        assert call.finished_at == call.created_at and call.duration_ms == 0
        assert call.started_at is None and call.retry_count == 0
        assert store.chat.get_tool_call(call.id) == call
    assert calls["older"].message_id == older.id
    if with_older:
        assert (calls["older"].status, calls["older"].output) == ("succeeded", "done")
        assert calls["older"].result_message_id == written[-2].id
    else:
        assert calls["older"].status == "pending" and calls["older"].output is None
    assert (calls["late"].status, calls["late"].output) == ("succeeded", "late")
    assert calls["late"].result_message_id == written[-1].id
    session_after = store.chat.get_session(session.id)
    assert session_after.message_count == len(batch) + 1
    assert session_after.head_id == written[-1].id
    assert [m.seq for m in written] == list(range(2, len(batch) + 2))
    assert store.chat.history(session.id) == [older, *written]
    assert calls["open"].status == "pending" and calls["open"].finished_at is None
    assert calls["open"].message_id == written[-3 if with_older else -2].id


@pytest.mark.parametrize("in_one_batch", [False, True])
def test_a_result_after_a_failed_one_counts_a_retry(store, in_one_batch):
    """A tool message answering a call whose earlier result failed finishes it again (the
    tool was run again): the new outcome, the new result message, one retry more. A
    result for a call that already succeeded leaves the call alone."""
    session = store.chat.create_session()
    asked = store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "c1", "name": "flaky", "arguments": {}}])
    results = [{"role": "tool", "content": text, "parts": [
        {"type": "tool_result", "call_id": "c1", "output": text, "is_error": failed}]}
        for text, failed in (("boom", True), ("ok", False), ("late", False))]
    if in_one_batch:
        first, second, third = store.chat.append_many(session.id, results)
    else:
        first, second, third = (store.chat.append_many(session.id, [r])[0] for r in results)
    [call] = store.chat.tool_calls(session.id)
    assert (call.message_id, call.result_message_id) == (asked.id, second.id)
    assert (call.status, call.output, call.error, call.retry_count) == (
        "succeeded", "ok", None, 1)
    assert [m.id for m in store.chat.history(session.id)] == [
        asked.id, first.id, second.id, third.id]


def test_a_result_while_another_writer_retries_the_call(store):
    """A failed call started again by another writer (in a transaction still open) and
    answered meanwhile by a tool message: the result waits for that writer and finishes
    the running call, one retry in all (not two: the status is read under the lock)."""
    import threading
    import time

    session = store.chat.create_session()
    store.chat.append(session.id, "assistant", "", parts=[
        {"type": "tool_call", "id": "c1", "name": "flaky", "arguments": {}}])
    store.chat.append(session.id, "tool", "boom", parts=[
        {"type": "tool_result", "call_id": "c1", "output": "boom", "is_error": True}])
    [call] = store.chat.tool_calls(session.id)
    started = threading.Event()

    def retry():
        with store.transaction():
            store.chat.start_tool_call(call.id)
            started.set()
            time.sleep(0.5)

    worker = threading.Thread(target=retry)
    worker.start()
    assert started.wait(10)
    answer = store.chat.append(session.id, "tool", "ok", parts=[
        {"type": "tool_result", "call_id": "c1", "output": "ok"}])
    worker.join()
    done = store.chat.get_tool_call(call.id)
    assert (done.status, done.output, done.retry_count) == ("succeeded", "ok", 1)
    assert done.result_message_id == answer.id and done.started_at is not None


def test_a_result_for_an_unknown_call_is_kept_as_a_message(store):
    session = store.chat.create_session()
    message = store.chat.append(session.id, "tool", "orphan", parts=[
        {"type": "tool_result", "call_id": "nobody", "output": "x"}])
    assert store.chat.tool_calls(session.id) == []
    assert store.chat.history(session.id) == [message]


def test_record_tool_call(store, asking):
    session, message = asking
    call = store.chat.record_tool_call(message.id, "search", {"q": "lisbon", "n": [1, 2]},
                                       call_id="toolu_1")
    assert call.status == "pending" and call.session_id == session.id
    assert call.message_id == message.id and call.call_id == "toolu_1"
    assert call.input == {"q": "lisbon", "n": [1, 2]} and call.name == "search"
    assert call.created_at.tzinfo is not None and call.started_at is None
    assert store.chat.get_tool_call(call.id) == call
    bare = store.chat.record_tool_call(message.id, "ping")
    assert bare.input == {} and bare.call_id is None


def test_start_and_succeed(store, asking):
    _, message = asking
    call = store.chat.record_tool_call(message.id, "search", {"q": 1})
    running = store.chat.start_tool_call(call.id)
    assert running.status == "running" and running.started_at is not None
    answer = store.chat.append(message.session_id, "tool", "found it")
    done = store.chat.finish_tool_call(call.id, output={"hits": [1, 2]},
                                       result_message_id=answer.id)
    assert done.status == "succeeded" and done.output == {"hits": [1, 2]}
    assert done.error is None and done.result_message_id == answer.id
    assert done.finished_at >= done.started_at
    assert done.duration_ms is not None and done.duration_ms >= 0
    assert store.chat.get_tool_call(call.id) == done


def test_finish_a_pending_call_directly(store, asking):
    _, message = asking
    call = store.chat.record_tool_call(message.id, "quick")
    done = store.chat.finish_tool_call(call.id, output="ok")
    assert done.status == "succeeded" and done.output == "ok"
    assert done.started_at is None and done.duration_ms >= 0


def test_fail_then_retry(store, asking):
    _, message = asking
    call = store.chat.record_tool_call(message.id, "flaky")
    store.chat.start_tool_call(call.id)
    failed = store.chat.finish_tool_call(call.id, error="boom")
    assert failed.status == "failed" and failed.error == "boom" and failed.retry_count == 0
    assert failed.duration_ms >= 0
    retried = store.chat.start_tool_call(call.id)
    assert retried.status == "running" and retried.retry_count == 1
    assert retried.error is None and retried.finished_at is None and retried.duration_ms is None
    store.chat.finish_tool_call(call.id, error="boom again")
    assert store.chat.start_tool_call(call.id).retry_count == 2
    done = store.chat.finish_tool_call(call.id, output=42)
    assert done.status == "succeeded" and done.retry_count == 2 and done.output == 42
    assert done.error is None


def test_cancel(store, asking):
    _, message = asking
    pending = store.chat.record_tool_call(message.id, "slow")
    assert store.chat.finish_tool_call(pending.id, cancelled=True).status == "cancelled"
    running = store.chat.record_tool_call(message.id, "slow")
    store.chat.start_tool_call(running.id)
    cancelled = store.chat.finish_tool_call(running.id, cancelled=True)
    assert cancelled.status == "cancelled" and cancelled.duration_ms >= 0


@pytest.mark.parametrize("first", [
    {"output": 1}, {"error": "x"}, {"cancelled": True}], ids=["succeeded", "failed", "cancelled"])
@pytest.mark.parametrize("second", [
    {"output": 2}, {"error": "y"}, {"cancelled": True}], ids=["succeed", "fail", "cancel"])
def test_finishing_twice_is_a_conflict(store, asking, first, second):
    _, message = asking
    call = store.chat.record_tool_call(message.id, "once")
    store.chat.start_tool_call(call.id)
    finished = store.chat.finish_tool_call(call.id, **first)
    with pytest.raises(Conflict):
        store.chat.finish_tool_call(call.id, **second)
    assert store.chat.get_tool_call(call.id) == finished


def test_start_is_only_for_pending_or_failed_calls(store, asking):
    _, message = asking
    call = store.chat.record_tool_call(message.id, "x")
    running = store.chat.start_tool_call(call.id)
    with pytest.raises(Conflict):
        store.chat.start_tool_call(call.id)
    assert store.chat.get_tool_call(call.id) == running
    done = store.chat.finish_tool_call(call.id, output=None)
    with pytest.raises(Conflict):
        store.chat.start_tool_call(call.id)
    cancelled = store.chat.record_tool_call(message.id, "y")
    store.chat.finish_tool_call(cancelled.id, cancelled=True)
    with pytest.raises(Conflict):
        store.chat.start_tool_call(cancelled.id)
    assert store.chat.get_tool_call(call.id) == done


def test_listing_filters(store):
    first = store.chat.create_session()
    second = store.chat.create_session()
    a = store.chat.append(first.id, "assistant", "")
    b = store.chat.append(second.id, "assistant", "")
    calls = [store.chat.record_tool_call(a.id, "search"),
             store.chat.record_tool_call(a.id, "fetch"),
             store.chat.record_tool_call(b.id, "search"),
             store.chat.record_tool_call(b.id, "search")]
    store.chat.start_tool_call(calls[0].id)
    store.chat.finish_tool_call(calls[2].id, error="nope")
    store.chat.finish_tool_call(calls[3].id, output="yes")

    def listed(*args, **kwargs):
        return [c.id for c in store.chat.tool_calls(*args, **kwargs)]

    # Newest first.
    assert listed() == [c.id for c in reversed(calls)]
    assert listed(first.id) == [calls[1].id, calls[0].id]
    assert listed(second.id) == [calls[3].id, calls[2].id]
    assert listed(name="search") == [calls[3].id, calls[2].id, calls[0].id]
    assert listed(first.id, name="search") == [calls[0].id]
    assert listed(status="pending") == [calls[1].id]
    assert listed(status="running") == [calls[0].id]
    assert listed(status="failed") == [calls[2].id]
    assert listed(status="succeeded") == [calls[3].id]
    assert listed(status="cancelled") == []
    assert listed(message_id=b.id) == [calls[3].id, calls[2].id]
    assert listed(limit=2) == [calls[3].id, calls[2].id]
    assert listed("no-such-session") == []


def test_tool_call_arguments_are_checked(store, asking):
    session, message = asking
    other = store.chat.create_session()
    foreign = store.chat.append(other.id, "tool", "elsewhere")
    call = store.chat.record_tool_call(message.id, "x")
    bad_calls = [
        lambda: store.chat.record_tool_call(message.id, ""),
        lambda: store.chat.record_tool_call(message.id, 5),
        lambda: store.chat.record_tool_call(message.id, "x", {"s": {1}}),
        lambda: store.chat.record_tool_call(message.id, "x", float("nan")),
        lambda: store.chat.record_tool_call(message.id, "x", call_id=7),
        lambda: store.chat.record_tool_call(None, "x"),
        lambda: store.chat.finish_tool_call(call.id, error=5),
        lambda: store.chat.finish_tool_call(call.id, output={1, 2}),
        lambda: store.chat.finish_tool_call(call.id, result_message_id=foreign.id),
        lambda: store.chat.tool_calls(status="done"),
        lambda: store.chat.tool_calls(name=5),
        lambda: store.chat.tool_calls(limit=0),
        lambda: store.chat.get_tool_call(""),
    ]
    for bad in bad_calls:
        with pytest.raises(InvalidInput):
            bad()
    for missing in (lambda: store.chat.record_tool_call("missing", "x"),
                    lambda: store.chat.get_tool_call("missing"),
                    lambda: store.chat.start_tool_call("missing"),
                    lambda: store.chat.finish_tool_call("missing"),
                    lambda: store.chat.finish_tool_call(call.id, result_message_id="missing")):
        with pytest.raises(NotFound):
            missing()
    assert store.chat.tool_calls(session.id) == [call]
    assert store.chat.get_tool_call(call.id) == call


def test_invalid_tool_parts_write_nothing(store):
    session = store.chat.create_session()
    for parts in ([{"type": "tool_call", "id": "c1", "arguments": {}}],  # no name
                  [{"type": "tool_call", "id": 5, "name": "x"}],
                  [{"type": "tool_call", "id": "c1", "name": ""}],  # as record_tool_call
                  [{"type": "tool_call", "id": "c1", "name": "x", "arguments": {1, 2}}],
                  [{"type": "tool_result"}],  # no call_id
                  [{"type": "tool_result", "call_id": "", "output": 1}],
                  [{"type": "tool_result", "call_id": "c1", "is_error": "yes"}],
                  [{"type": "tool_result", "call_id": "c1", "is_error": 1}],
                  [{"type": "tool_result", "call_id": "c1", "is_error": 0.0}]):
        with pytest.raises(InvalidInput):
            store.chat.append(session.id, "assistant", "x", parts=parts)
    with pytest.raises(InvalidInput) as caught:
        store.chat.append_many(session.id, [{"role": "tool", "parts": [
            {"type": "tool_result", "call_id": "c1", "is_error": 1.5}]}])
    assert caught.value.field == "parts[0].is_error"
    assert store.chat.tool_calls() == []
    assert store.chat.history(session.id) == []


def test_tool_calls_of_a_soft_deleted_session_cannot_be_recorded(store, asking):
    session, message = asking
    store.chat.delete_session(session.id)
    with pytest.raises(NotFound):
        store.chat.record_tool_call(message.id, "x")

"""Concurrent callers on one store: the same outcome on both backends, whatever the timing.

Threads start together at a barrier; nothing sleeps and nothing is timed. A race that is
handled wrongly shows up as a wrong final state (or a second "winner"), which several
rounds make near-certain to be seen.
"""

from __future__ import annotations

import threading

from chat_helpers import assert_counters

from agentkeep import Conflict

THREADS = 6
ROUNDS = 8


def together(work, count=THREADS):
    """Run ``work(index)`` in ``count`` threads released at once; return results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index):
        barrier.wait()
        try:
            results[index] = ("ok", work(index))
        except Exception as error:  # noqa: BLE001 - the test inspects what was raised
            results[index] = ("error", error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_appends_to_one_session(store):
    session = store.chat.create_session()

    def work(index):
        return [store.chat.append(session.id, "user", f"{index}-{i}",
                                  usage={"input_tokens": 1}) for i in range(8)]

    results = together(work)
    assert all(kind == "ok" for kind, _ in results), results
    history = store.chat.history(session.id)
    assert len(history) == THREADS * 8
    assert history[0].parent_id is None
    assert all(m.parent_id == p.id for p, m in zip(history[:-1], history[1:], strict=True))
    assert sorted(m.seq for m in history) == list(range(1, THREADS * 8 + 1))
    assert store.chat.get_session(session.id).input_tokens == THREADS * 8
    assert_counters(store, session.id)


def test_concurrent_batches_to_one_session(store):
    """Batches with their tool calls (one statement each on PostgreSQL) from many threads
    chain one after another, none lost or interleaved."""
    session = store.chat.create_session()

    def work(index):
        written = []
        for i in range(4):
            call = f"c{index}-{i}"
            written += store.chat.append_many(session.id, [
                {"role": "assistant", "content": f"{index}-{i}", "usage": {"input_tokens": 2},
                 "parts": [{"type": "tool_call", "id": call, "name": "f", "arguments": {}}]},
                {"role": "tool", "content": "", "parts": [
                    {"type": "tool_result", "call_id": call, "output": i}]}])
        return written

    results = together(work)
    assert all(kind == "ok" for kind, _ in results), results
    history = store.chat.history(session.id)
    assert len(history) == THREADS * 8
    assert all(m.parent_id == p.id for p, m in zip(history[:-1], history[1:], strict=True))
    assert [m.seq for m in history] == list(range(1, THREADS * 8 + 1))
    for asked, answer in zip(history[::2], history[1::2], strict=True):  # batches whole
        assert answer.parts[0]["call_id"] == asked.parts[0]["id"]
    calls = store.chat.tool_calls(session.id, limit=1000)
    assert len(calls) == THREADS * 4 and all(c.status == "succeeded" for c in calls)
    assert store.chat.get_session(session.id).input_tokens == THREADS * 8
    assert_counters(store, session.id)


def test_concurrent_saves_of_one_file(store):
    session = store.chat.create_session()

    def work(index):
        return [store.chat.save_file(session.id, "notes.md", f"writer {index} edit {i}")
                for i in range(4)]

    results = together(work)
    assert [kind for kind, _ in results] == ["ok"] * THREADS, results
    versions = store.chat.file_versions(session.id, "notes.md")
    assert [v.version for v in versions] == list(range(1, THREADS * 4 + 1))
    saved = {v.sha256 for _, batch in results for v in batch}
    assert saved == {v.sha256 for v in versions}


def test_only_one_caller_starts_a_tool_call(store):
    session = store.chat.create_session()
    message = store.chat.append(session.id, "assistant", "")
    for _ in range(ROUNDS):
        call = store.chat.record_tool_call(message.id, "run_once")
        results = together(lambda index, call_id=call.id: store.chat.start_tool_call(call_id))
        winners = [value for kind, value in results if kind == "ok"]
        losers = [value for kind, value in results if kind == "error"]
        assert len(winners) == 1, results
        assert all(isinstance(error, Conflict) for error in losers), losers
        assert store.chat.get_tool_call(call.id).retry_count == 0


def test_only_one_caller_finishes_a_tool_call(store):
    session = store.chat.create_session()
    message = store.chat.append(session.id, "assistant", "")
    for _ in range(ROUNDS):
        call = store.chat.record_tool_call(message.id, "finish_once")
        store.chat.start_tool_call(call.id)
        results = together(
            lambda index, call_id=call.id: store.chat.finish_tool_call(call_id, output=index))
        winners = [value for kind, value in results if kind == "ok"]
        assert len(winners) == 1, results
        assert all(isinstance(value, Conflict) for kind, value in results if kind == "error")
        assert store.chat.get_tool_call(call.id).output == winners[0].output

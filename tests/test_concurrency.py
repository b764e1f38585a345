"""Several processes appending to one store: no error, no lost or duplicated row."""

from __future__ import annotations

import multiprocessing
import time

import pytest

import agentkeep

DURATION = 10.0
PROCESSES = 4


def _append_for(target, options, session_ids, index, barrier, queue):
    committed = 0
    errors = []
    with agentkeep.open(target, **options) as store:
        barrier.wait()
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            session_id = session_ids[committed % len(session_ids)]
            try:
                store.chat.append(session_id, "user", f"process {index} message {committed}",
                                  usage={"input_tokens": 1})
                committed += 1
            except agentkeep.AgentkeepError as exc:
                errors.append(repr(exc))
    queue.put((index, committed, errors))


@pytest.mark.slow
def test_four_processes_append_for_ten_seconds(stores):
    store = stores.open()
    session_ids = [store.chat.create_session(title=f"s{i}").id for i in range(3)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    queue = context.Queue()
    processes = [context.Process(target=_append_for, args=(
        str(stores.target), stores.options(), session_ids, i, barrier, queue))
        for i in range(PROCESSES)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=DURATION + 120) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert [errors for _, _, errors in results] == [[]] * PROCESSES
    committed = sum(count for _, count, _ in results)
    assert committed > PROCESSES  # everyone made progress
    total = 0
    for session_id in session_ids:
        session = store.chat.get_session(session_id)
        history = store.chat.history(session_id)
        assert [m.seq for m in history] == list(range(1, len(history) + 1))
        assert len({m.content for m in history}) == len(history)
        assert store.chat.recount(session_id)[:2] == (session.message_count, len(history))
        total += len(history)
    assert total == committed

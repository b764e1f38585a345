"""Concurrency: 8 processes x 4 threads mixing every kind of call on one store for 30 s,
and 200 async tasks on one event loop that must never stall it for more than 50 ms.

Under the default timeouts no call may fail, no row may be lost or duplicated, each
session's sequence numbers stay gapless and unique, and the counters stay exact.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_helpers import (
    broken_invariants,
    check_findings,
    child,
    env_float,
    env_int,
    raw_rows,
    record,
    target_args,
)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PROCESSES = env_int("PROCESSES", 8)
THREADS = env_int("THREADS", 4)
SECONDS = env_float("SECONDS", 30.0)
SHARED_SESSIONS = 6
#: Concurrent tasks on one event loop, and the most the loop may lag behind.
TASKS = env_int("TASKS", 200)
MAX_LOOP_LAG = 0.050


def test_processes_and_threads_race(stores, request):
    with stores.open() as store:
        shared = [store.chat.create_session(title=f"shared {i}").id
                  for i in range(SHARED_SESSIONS)]
    processes = [child("race_child.py", str(SECONDS), str(THREADS), ",".join(shared),
                       *target_args(stores), stdin=-1) for _ in range(PROCESSES)]
    for process in processes:  # every process has its store open...
        assert process.stdout.readline() == b"ready\n", process.stderr.read().decode()
    for process in processes:  # ...before any starts
        process.stdin.write(b"go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=SECONDS + 180)
        assert process.returncode == 0, err.decode()[-3000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    errors = [error for result in results for error in result["errors"]]
    calls = sum(result["calls"] for result in results)
    appended = [tuple(pair) for result in results for pair in result["appended"]]
    deleted = {session for result in results for session in result["deleted"]}

    stored = raw_rows(stores, "SELECT session_id, id FROM messages")
    lost = set(appended) - set(stored)
    record(request.config, "race: processes", stores.backend, operations_raced=calls,
           errors_surfaced=len(errors), rows_lost=len(lost))
    assert errors == []
    assert calls > PROCESSES * THREADS
    assert lost == set()
    # Nothing more than what was committed (no duplicate), each exactly once.
    assert Counter(stored) == Counter(appended)
    assert broken_invariants(stores) == {}  # gapless unique seq, exact counters, heads
    status = dict(raw_rows(stores, "SELECT id, status FROM sessions"))
    assert {status[s] for s in deleted} <= {"deleted"}
    with stores.open() as store:
        assert check_findings(store) == []
        for session_id in shared:
            session = store.chat.get_session(session_id)
            expected = Counter(s for s, _ in appended)[session_id]
            assert store.chat.recount(session_id)[0] == session.message_count == expected


def test_async_tasks_never_block_the_loop(stores, request):
    lags: list[float] = []
    loop_cpu: list[float] = []  # CPU time the loop's own thread used in each tick
    errors: list[str] = []

    async def main():
        store = await stores.open_async()
        sessions = [(await store.chat.create_session(title=f"async {i}")).id
                    for i in range(20)]
        running = True

        async def watch():
            while running:
                started, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - started - 0.005)
                loop_cpu.append(time.thread_time() - cpu)

        async def task(number):
            session_id = sessions[number % len(sessions)]
            try:
                for turn in range(4):
                    await store.chat.append(session_id, "user", f"task {number} turn {turn}")
                await store.chat.history(session_id, last=10)
                await store.chat.search("turn", limit=5)
                await store.chat.list_sessions(limit=10)
            except Exception as exc:  # noqa: BLE001 - every error is a finding here
                errors.append(f"{type(exc).__name__}: {exc}")

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(task(i) for i in range(TASKS)))
        running = False
        await watcher
        total = 0
        for session_id in sessions:
            total += (await store.chat.get_session(session_id)).message_count
        await store.close()
        return total

    # A full garbage collection of the heap earlier tests left in this process (hypothesis
    # alone leaves hundreds of MB) holds the GIL in whichever worker thread triggers it and
    # stalled the loop by up to 650 ms while the loop's own thread ran 1 ms. That heap is
    # not agentkeep's: set it aside for the measurement (what the test allocates is still
    # collected as usual).
    gc.collect()
    gc.freeze()
    try:
        total = asyncio.run(main())
    finally:
        gc.unfreeze()
    record(request.config, "race: async", stores.backend, operations_raced=TASKS * 7,
           errors_surfaced=len(errors), rows_lost=TASKS * 4 - total)
    assert errors == []
    assert total == TASKS * 4
    assert broken_invariants(stores) == {}
    assert len(lags) > 10
    worst = lags.index(max(lags))
    assert max(lags) < MAX_LOOP_LAG, (
        f"the loop stalled {max(lags) * 1000:.0f} ms (its thread ran "
        f"{loop_cpu[worst] * 1000:.0f} ms of that; {len(lags)} ticks)")


# --- regression: opening a new store from many processes lost commits -----------------
def _open_and_set(home: str, index: int, barrier) -> None:
    import agentkeep

    barrier.wait()
    with agentkeep.open(home) as store:
        store.settings.set(f"proc.p{index}", index)


OPENERS = 6
OPEN_ROUNDS = env_int("OPEN_ROUNDS", 8)


def test_processes_opening_a_new_store_lose_nothing(tmp_path, request):
    """Six processes create, migrate and write to one new SQLite store at once; each
    process's committed setting must be there (one round in fifteen lost one, before
    create_private_file stopped opening existing files and so releasing SQLite's locks)."""
    import multiprocessing

    import agentkeep

    context = multiprocessing.get_context("spawn")
    lost = 0
    for round_number in range(OPEN_ROUNDS):
        home = tmp_path / f"store{round_number}"
        barrier = context.Barrier(OPENERS)
        processes = [context.Process(target=_open_and_set, args=(str(home), i, barrier))
                     for i in range(OPENERS)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
            assert process.exitcode == 0
        with agentkeep.open(home, migrate=False) as store:
            values = [setting.value for setting in store.settings.list("proc")]
        lost += OPENERS - len(values)
    record(request.config, "race: new store", "sqlite", operations_raced=OPEN_ROUNDS * OPENERS,
           rows_lost=lost)
    assert lost == 0


def test_creating_an_existing_file_keeps_the_connections_locks(tmp_path):
    """The mechanism of the loss above, deterministically: after create_private_file on a
    file this process has open, another process closing its last connection must not take
    the file for its own and delete the WAL that still holds our commits."""
    import subprocess
    import sys

    import agentkeep
    from agentkeep.backend.sqlite import create_private_file

    home = tmp_path / "store"
    store = agentkeep.open(home)
    store.settings.set("before", 1)  # a pooled connection stays open on app.db
    path = home / "app.db"
    wal = Path(f"{path}-wal")
    assert wal.exists()
    create_private_file(path)  # what the migration lock did on every migrate
    # Another process opens and closes the file: as it is not the last connection, it
    # must leave the WAL alone.
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; "
                    "c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM settings'); "
                    "c.close()", str(path)], check=True)
    assert wal.exists()
    store.settings.set("after", 2)
    store.close()
    with agentkeep.open(home) as store:
        assert (store.settings.get("before"), store.settings.get("after")) == (1, 2)

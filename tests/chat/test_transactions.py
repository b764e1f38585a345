"""Transactions (sync and async) and the async API's parity with the sync one."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest
from chat_helpers import snapshot

import agentkeep
from agentkeep import Conflict, InvalidInput, NotFound, StoreBusy
from agentkeep.app.store import SettingsStore
from agentkeep.chat.store import ChatStore
from conftest import PG_URL


class Boom(Exception):
    pass


def contents(store, session_id):
    return [m.content for m in store.chat.history(session_id)]


# --- sync -----------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["store", "chat"])
def test_a_block_commits_every_call(store, opener):
    transaction = store.transaction if opener == "store" else store.chat.transaction
    with transaction():
        session = store.chat.create_session(title="in a block")
        store.chat.append(session.id, "user", "one")
        store.chat.append(session.id, "assistant", "two")
        # Reads inside the block see its writes.
        assert contents(store, session.id) == ["one", "two"]
    assert contents(store, session.id) == ["one", "two"]
    assert store.chat.get_session(session.id).message_count == 2


@pytest.mark.parametrize("opener", ["store", "chat"])
def test_an_exception_rolls_back_the_whole_block(store, opener):
    transaction = store.transaction if opener == "store" else store.chat.transaction
    existing = store.chat.create_session(title="existing")
    store.chat.append(existing.id, "user", "kept")
    before = snapshot(store)
    with pytest.raises(Boom):
        with transaction():
            created = store.chat.create_session(title="doomed")
            store.chat.append(created.id, "user", "lost")
            store.chat.append(existing.id, "assistant", "lost too")
            store.chat.update_session(existing.id, title="renamed")
            store.chat.save_file(existing.id, "f", "x")
            raise Boom
    assert snapshot(store) == before
    with pytest.raises(NotFound):
        store.chat.get_session(created.id, include_deleted=True)


def test_a_nested_block_that_raises_rolls_back_only_itself(store):
    with store.transaction():
        outer = store.chat.create_session(title="outer")
        store.chat.append(outer.id, "user", "before")
        try:
            with store.transaction():
                inner = store.chat.create_session(title="inner")
                store.chat.append(outer.id, "assistant", "inner write")
                raise Boom
        except Boom:
            pass
        store.chat.append(outer.id, "user", "after")
        with store.transaction():  # a nested block that succeeds is kept
            kept = store.chat.create_session(title="nested ok")
    assert contents(store, outer.id) == ["before", "after"]
    assert {s.title for s in store.chat.list_sessions().items} == {"outer", "nested ok"}
    assert store.chat.get_session(kept.id).title == "nested ok"
    with pytest.raises(NotFound):
        store.chat.get_session(inner.id)
    assert store.chat.get_session(outer.id).message_count == 2


def test_a_failed_call_inside_a_block_does_not_spoil_it(store):
    with store.transaction():
        session = store.chat.create_session()
        with pytest.raises(NotFound):
            store.chat.append("missing", "user", "x")
        with pytest.raises(InvalidInput):
            store.chat.append(session.id, "robot", "x")
        store.chat.append(session.id, "user", "still fine")
    assert contents(store, session.id) == ["still fine"]


def test_failed_statements_and_nested_blocks_keep_every_other_call(stores):
    # Calls that fail inside blocks nested three deep, between calls whose savepoints are
    # released late on PostgreSQL: each failure undoes only its own call, and the block
    # still commits all the others. On PostgreSQL the failure is the server's (a row
    # lock not free within busy_timeout, so the transaction is aborted until the call's
    # savepoint is rolled back); SQLite keeps a transaction usable anyway (a taken id).
    store = stores.open(busy_timeout=0.3)
    store.chat.create_session(id="taken")
    if stores.backend == "postgres":
        import psycopg

        blocker = psycopg.connect(PG_URL)
        blocker.execute(f"SELECT 1 FROM {stores.prefix}_chat.sessions WHERE id = 'taken' "
                        "FOR UPDATE")

        def fail():
            with pytest.raises(StoreBusy):
                store.chat.append("taken", "user", "waits for the lock, then gives up")
    else:
        blocker = None

        def fail():
            with pytest.raises(Conflict):
                store.chat.create_session(id="taken")
    try:
        with store.transaction():
            session = store.chat.create_session(id="kept")
            for number in range(30):
                store.chat.append(session.id, "user", f"m{number}")
            fail()
            with store.transaction():
                store.chat.append(session.id, "assistant", "inner 1")
                with store.transaction():
                    store.chat.append(session.id, "user", "inner 2")
                    fail()
                try:
                    with store.transaction():
                        store.chat.append(session.id, "user", "undone")
                        raise Boom
                except Boom:
                    pass
                fail()
                store.chat.append(session.id, "assistant", "inner 3")
            store.chat.append(session.id, "user", "last")
    finally:
        if blocker is not None:
            blocker.close()
    expected = [f"m{number}" for number in range(30)] + ["inner 1", "inner 2", "inner 3",
                                                          "last"]
    assert contents(store, session.id) == expected
    assert store.chat.get_session(session.id).message_count == len(expected)
    assert store.chat.get_session("taken").message_count == 0
    assert sorted(s.id for s in store.chat.list_sessions().items) == ["kept", "taken"]


def test_an_open_block_is_invisible_to_other_threads(store):
    seen = []

    def look():
        seen.append({s.title for s in store.chat.list_sessions().items})

    store.chat.create_session(title="committed")
    with store.transaction():
        store.chat.create_session(title="pending")
        reader = threading.Thread(target=look)
        reader.start()
        reader.join()
    look()
    assert seen == [{"committed"}, {"committed", "pending"}]


def test_settings_transactions(store):
    with pytest.raises(Boom):
        with store.transaction("app"):
            store.settings.set("ui.theme", "dark")
            raise Boom
    assert store.settings.get("ui.theme") is None
    with store.settings.transaction():
        store.settings.set("ui.theme", "dark")
        try:
            with store.settings.transaction():
                store.settings.set("ui.font", "mono")
                raise Boom
        except Boom:
            pass
    assert [s.key for s in store.settings.list()] == ["ui.theme"]


def test_unknown_concern(store):
    with pytest.raises(InvalidInput):
        store.transaction("nope")


# --- async ----------------------------------------------------------------------------------


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_calls_work_end_to_end(stores):
    async def main():
        store = await stores.open_async()
        assert isinstance(store, agentkeep.AsyncStore)
        session = await store.chat.create_session(title="async")
        question = await store.chat.append(session.id, "user", "async lisbon question")
        answer = await store.chat.append(session.id, "assistant", "answer", parts=[
            {"type": "tool_call", "id": "c", "name": "t", "arguments": {}}])
        assert [m.id for m in await store.chat.history(session.id)] == [question.id, answer.id]
        assert (await store.chat.get_message(question.id)) == question
        hits = await store.chat.search("lisbon")
        assert [h.message.id for h in hits] == [question.id]
        (call,) = await store.chat.tool_calls(session.id)
        assert (await store.chat.finish_tool_call(call.id, output=1)).status == "succeeded"
        await store.settings.set("ui.theme", "dark")
        assert await store.settings.get("ui.theme") == "dark"
        with pytest.raises(NotFound):
            await store.chat.get_session("missing")
        with pytest.raises(InvalidInput):
            await store.chat.append(session.id, "robot", "x")
        page = await store.chat.list_sessions()
        assert [s.id for s in page.items] == [session.id]
        return store.sync

    sync = run(main())
    assert [m.content for m in sync.chat.history(sync.chat.list_sessions().items[0].id)] == [
        "async lisbon question", "answer"]


@pytest.mark.parametrize("opener", ["store", "chat"])
def test_async_transactions(stores, opener):
    async def main():
        store = await stores.open_async()
        transaction = store.transaction if opener == "store" else store.chat.transaction
        async with transaction():
            kept = await store.chat.create_session(title="kept")
            await store.chat.append(kept.id, "user", "one")
            assert len(await store.chat.history(kept.id)) == 1
        with pytest.raises(Boom):
            async with transaction():
                await store.chat.create_session(title="rolled back")
                await store.chat.append(kept.id, "user", "lost")
                raise Boom
        async with transaction():
            await store.chat.append(kept.id, "user", "two")
            try:
                async with transaction():
                    await store.chat.create_session(title="inner")
                    await store.chat.append(kept.id, "user", "inner")
                    raise Boom
            except Boom:
                pass
            await store.chat.append(kept.id, "user", "three")
        return store.sync, kept.id

    sync, kept_id = run(main())
    assert [s.title for s in sync.chat.list_sessions().items] == ["kept"]
    assert contents(sync, kept_id) == ["one", "two", "three"]


def test_async_settings_transaction(stores):
    async def main():
        store = await stores.open_async()
        with pytest.raises(Boom):
            async with store.settings.transaction():
                await store.settings.set("a.b", 1)
                raise Boom
        async with store.transaction("app"):
            await store.settings.set("a.c", 2)
        return [s.key for s in await store.settings.list()]

    assert run(main()) == ["a.c"]


def test_concurrent_tasks_have_their_own_transactions(stores):
    async def worker(store, name, gate):
        async with store.transaction():
            session = await store.chat.create_session(title=name)
            await store.chat.append(session.id, "user", name)
            if name == "fails":
                raise Boom
        gate.append(name)
        return session.id

    async def main():
        store = await stores.open_async()
        gate: list[str] = []
        results = await asyncio.gather(
            *(worker(store, name, gate) for name in ("one", "two", "fails", "three")),
            return_exceptions=True)
        assert isinstance(results[2], Boom)
        return store.sync, sorted(gate)

    sync, committed = run(main())
    assert committed == ["one", "three", "two"]
    assert {s.title for s in sync.chat.list_sessions().items} == {"one", "two", "three"}
    for session in sync.chat.list_sessions().items:
        assert contents(sync, session.id) == [session.title]


def test_tasks_sharing_a_transaction_take_turns(stores):
    """Tasks gathered inside one block share its transaction: their calls run one at a
    time on its connection (they used to interleave: a crashed process on SQLite, and
    rows of a failed block committed on PostgreSQL), and a failure rolls back all."""
    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session(title="shared")
        for round_ in range(3):
            async with store.transaction():
                await asyncio.gather(*(store.chat.append(session.id, "user", f"r{round_} m{i}")
                                       for i in range(8)))
        with pytest.raises(NotFound):
            async with store.transaction():
                await asyncio.gather(
                    *(store.chat.append(session.id, "user", f"lost {i}") for i in range(6)),
                    store.chat.append("missing", "user", "fails"))
        return store.sync, session.id

    sync, session_id = run(main())
    stored = contents(sync, session_id)
    assert sorted(stored) == sorted(f"r{r} m{i}" for r in range(3) for i in range(8))
    assert sync.chat.get_session(session_id).message_count == 24
    assert sync.chat.recount(session_id)[0] == 24
    assert [m.seq for m in sync.chat.history(session_id)] == list(range(1, 25))


async def held_nested_block(store, session_id, opened, release):
    """A task's nested block, left open (with one message) from ``opened`` to ``release``."""
    async with store.transaction():
        await store.chat.append(session_id, "user", "in the nested block")
        opened.set()
        await release.wait()


def test_a_call_beside_another_tasks_nested_block_is_refused(stores):
    """While one task has a nested block open, another task's call would land inside
    that block's savepoint (undone with it): it is refused, and the enclosing block,
    seeing the error, rolls back whole."""
    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session(title="nested")
        inside = asyncio.Event()
        done = asyncio.Event()

        async def beside():
            await inside.wait()
            try:
                await store.chat.append(session.id, "user", "beside it")
            finally:
                done.set()

        with pytest.raises(agentkeep.AgentkeepError, match="nested transaction block"):
            async with store.transaction():
                await store.chat.append(session.id, "user", "outer")
                await asyncio.gather(held_nested_block(store, session.id, inside, done),
                                     beside())
        return store.sync, session.id

    sync, session_id = run(main())
    assert contents(sync, session_id) == []


def test_a_task_that_outlives_its_block_cannot_write_into_it(stores):
    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session(title="late")
        release = asyncio.Event()

        async def late():
            await release.wait()
            await store.chat.append(session.id, "user", "too late")

        async with store.transaction():
            await store.chat.append(session.id, "user", "in time")
            task = asyncio.ensure_future(late())
        release.set()
        with pytest.raises(agentkeep.AgentkeepError, match="already ended"):
            await task
        # the connection went back to the pool untouched: the next block works
        async with store.transaction():
            await store.chat.append(session.id, "user", "next block")
        return store.sync, session.id

    sync, session_id = run(main())
    assert contents(sync, session_id) == ["in time", "next block"]


def test_a_block_ended_with_another_tasks_nested_block_open_rolls_back(stores):
    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session(title="left open")
        opened = asyncio.Event()
        release = asyncio.Event()

        with pytest.raises(agentkeep.AgentkeepError, match="still open"):
            async with store.transaction():
                await store.chat.append(session.id, "user", "outer")
                task = asyncio.ensure_future(
                    held_nested_block(store, session.id, opened, release))
                await opened.wait()
        release.set()
        with pytest.raises(agentkeep.AgentkeepError, match="already ended"):
            await task
        await store.chat.append(session.id, "user", "after")
        return store.sync, session.id

    sync, session_id = run(main())
    assert contents(sync, session_id) == ["after"]


def public_methods(cls):
    return {name: member for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


@pytest.mark.parametrize("attribute, sync_class", [("chat", ChatStore),
                                                   ("settings", SettingsStore)])
def test_async_parity(stores, attribute, sync_class):
    async def main():
        store = await stores.open_async()
        return getattr(store, attribute)

    twin = run(main())
    methods = public_methods(sync_class)
    assert methods
    for name, method in methods.items():
        assert hasattr(twin, name), f"async {attribute} lacks {name}"
        assert inspect.signature(getattr(type(twin), name)) == inspect.signature(method), name
        if name != "transaction":
            function = getattr(type(twin), name)
            assert (inspect.iscoroutinefunction(function)
                    or inspect.isasyncgenfunction(function)), name
    assert public_methods(type(twin)).keys() == methods.keys()


def test_async_iter_sessions_is_an_async_iterator(stores):
    async def main():
        store = await stores.open_async()
        for i in range(3):
            await store.chat.create_session(title=str(i))
        return [s.title async for s in store.chat.iter_sessions(limit=2)]

    assert sorted(run(main())) == ["0", "1", "2"]


def test_a_call_waiting_for_its_own_transactions_caller_gets_store_busy(stores):
    """An export inside a block calls its progress callback while it holds the block's
    connection; a callback that waits for a thread using the same transaction (its
    context copied) got a hang. The thread's call now gives up with StoreBusy."""
    import contextvars
    import io
    from concurrent.futures import ThreadPoolExecutor

    from agentkeep.ops.transfer import export_store

    store = stores.open(busy_timeout=1)
    session = store.chat.create_session()
    store.chat.append_many(session.id, [{"role": "user", "content": f"m{i}"}
                                        for i in range(2500)])
    seen = []

    def progress(done, total):
        context = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            seen.append(pool.submit(context.run, store.chat.get_session, session.id)
                        .exception(timeout=30))

    with store.transaction():
        export_store(store, io.BytesIO(), progress=progress)
    # the call made while the export held the connection gave up; none hung
    assert isinstance(seen[0], StoreBusy), seen
    assert "another call in this transaction" in str(seen[0])
    assert all(error is None or isinstance(error, StoreBusy) for error in seen), seen

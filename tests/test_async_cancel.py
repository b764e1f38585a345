"""Cancelling async calls never leaves half a write or a held lock behind."""

from __future__ import annotations

import asyncio

import pytest


def test_cancel_inside_a_transaction_rolls_back_whole(stores):
    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session()
        batch = [{"role": "user", "content": f"message {i}"} for i in range(20_000)]

        async def write():
            async with store.transaction():
                await store.chat.append(session.id, "user", "first")
                await store.chat.append_many(session.id, batch)

        task = asyncio.create_task(write())
        await asyncio.sleep(0.05)  # the batch is being written in a worker thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await store.chat.get_session(session.id)
        recount = await store.chat.recount(session.id)
        assert (after.message_count, after.head_id) == (0, None)
        assert recount[0] == 0
        # Nothing is left locked: the next write goes through.
        await store.chat.append(session.id, "user", "after the cancel")
        assert [m.content for m in await store.chat.history(session.id)] == [
            "after the cancel"]

    asyncio.run(main())


def test_cancel_while_waiting_for_the_lock_releases_it(tmp_path):
    import sqlite3

    import agentkeep

    async def main():
        store = await agentkeep.open_async(tmp_path, busy_timeout=5)
        session = await store.chat.create_session()
        blocker = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        async def write():
            async with store.transaction():
                await store.chat.append(session.id, "user", "never")

        task = asyncio.create_task(write())
        await asyncio.sleep(0.2)  # waiting in BEGIN IMMEDIATE
        task.cancel()
        await asyncio.sleep(0.1)
        blocker.execute("ROLLBACK")  # now the waiting BEGIN gets the lock...
        blocker.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        # ...and gives it back: the store is writable.
        await store.chat.append(session.id, "user", "works")
        assert (await store.chat.get_session(session.id)).message_count == 1
        await store.close()

    asyncio.run(main())


def test_calls_caught_by_close_get_store_closed(stores):
    """Calls in flight when the store closes either finish or raise StoreClosed (on
    PostgreSQL a call that reached the closed pool raised StoreUnavailable, "lost the
    connection", which points at the server), and every one that finished is stored."""
    import agentkeep

    async def main():
        store = await stores.open_async()
        session = await store.chat.create_session()
        batch = [{"role": "user", "content": f"b{i}"} for i in range(500)]
        calls = [asyncio.create_task(store.chat.append_many(session.id, batch))
                 for _ in range(6)]
        await asyncio.sleep(0.01)
        await store.close()
        results = await asyncio.gather(*calls, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, agentkeep.StoreClosed) for r in failures), failures
        with stores.open() as reopened:
            assert reopened.chat.recount(session.id)[0] == 500 * (len(calls) - len(failures))

    asyncio.run(main())

"""Reads with a limit: exact on both sides of the PostgreSQL inline-limit boundary, and on
PostgreSQL a long session's last-N read keeps its prepared generic plan."""

from __future__ import annotations

import pytest

from agentkeep.backend.postgres import INLINE_LIMIT

LENGTH = INLINE_LIMIT + 3
AROUND = (1, 2, INLINE_LIMIT - 1, INLINE_LIMIT, INLINE_LIMIT + 1, LENGTH, 5 * LENGTH)


@pytest.fixture
def long_session(store):
    session = store.chat.create_session()
    messages = store.chat.append_many(session.id, [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
        for i in range(LENGTH)])
    return session.id, [m.content for m in messages]


def test_history_limits_are_exact_around_the_inline_boundary(store, long_session):
    session_id, contents = long_session
    middle = store.chat.history(session_id)[LENGTH // 2].id
    for n in AROUND:
        assert [m.content for m in store.chat.history(session_id, last=n)] == contents[-n:], n
        assert [m.content for m in store.chat.history(session_id, first=n)] == contents[:n], n
        before = store.chat.history(session_id, before=middle, last=n)
        assert [m.content for m in before] == contents[:LENGTH // 2][-n:], n
        after = store.chat.history(session_id, after=middle, first=n)
        assert [m.content for m in after] == contents[LENGTH // 2 + 1:][:n], n


def test_session_pages_are_exact_around_the_inline_boundary(store):
    created = {store.chat.create_session(title=f"s{i}").id for i in range(INLINE_LIMIT + 2)}
    for limit in (INLINE_LIMIT - 1, INLINE_LIMIT, INLINE_LIMIT + 1):
        seen, cursor, pages = [], None, 0
        while True:
            page = store.chat.list_sessions(limit=limit, cursor=cursor)
            seen += [s.id for s in page.items]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) and set(seen) == created, limit
        assert pages == -(-len(created) // limit), limit


def test_tool_call_lists_honour_their_limit(store):
    session = store.chat.create_session()
    store.chat.append_many(session.id, [
        {"role": "assistant", "content": "",
         "parts": [{"type": "tool_call", "id": f"c{i}", "name": "ls", "arguments": {}}]}
        for i in range(5)])
    assert len(store.chat.tool_calls(session.id, limit=3)) == 3
    assert len(store.chat.tool_calls(session.id, limit=5)) == 5
    assert len(store.chat.tool_calls(session.id, limit=INLINE_LIMIT + 1)) == 5


@pytest.mark.parametrize("stores", ["postgres"], indirect=True)
def test_last_n_of_a_long_session_keeps_a_generic_plan(store, long_session):
    """A prepared statement whose plan the server judged by the session it reads (a long
    one among many short ones) or by a `LIMIT $n` (a tenth of the rows) was planned anew
    on every call; the last-N read keeps its generic plan (pg_prepared_statements)."""
    session_id, contents = long_session
    for _ in range(30):
        short = store.chat.create_session().id
        store.chat.append_many(short, [{"role": "user", "content": "hi"}] * 3)
    with store._backend.read("chat") as conn:
        conn.run("ANALYZE messages")
        conn.run("ANALYZE sessions")
    with store.chat.transaction():  # one connection for the reads and the check
        for _ in range(12):
            assert [m.content for m in store.chat.history(session_id, last=50)] == \
                contents[-50:]
        with store._backend.read("chat") as conn:
            plans = conn.all("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                             "WHERE statement LIKE '%ORDER BY m.seq DESC LIMIT 50'")
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert generic >= 6 and custom <= 5, plans

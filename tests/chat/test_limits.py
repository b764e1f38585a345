"""The newest-N read: exact windows on both backends; on PostgreSQL the plan the server
keeps for it reads N rows off the index, and a long session among short ones does not
make the server plan it anew on every call."""

from __future__ import annotations

import json

import pytest

LENGTH = 120
AROUND = (1, 2, 49, 50, 51, LENGTH - 1, LENGTH, 5 * LENGTH)
LAST_N = "%ORDER BY m.seq DESC LIMIT $2"


def long_session(store, length: int = LENGTH, size: int = 0) -> tuple[str, list[str]]:
    """A session of ``length`` messages, each about ``size`` characters longer."""
    session = store.chat.create_session()
    padding = "x" * size
    contents = [f"m{i} {padding}" for i in range(length)]
    for start in range(0, length, 500):
        store.chat.append_many(session.id, [
            {"role": "user" if i % 2 == 0 else "assistant", "content": text}
            for i, text in enumerate(contents[start:start + 500], start)])
    return session.id, contents


def test_newest_and_oldest_windows_are_exact(store):
    session_id, contents = long_session(store)
    middle = store.chat.history(session_id)[LENGTH // 2].id
    for n in AROUND:
        assert [m.content for m in store.chat.history(session_id, last=n)] == contents[-n:], n
        assert [m.content for m in store.chat.history(session_id, first=n)] == contents[:n], n
        before = store.chat.history(session_id, before=middle, last=n)
        assert [m.content for m in before] == contents[:LENGTH // 2][-n:], n
        after = store.chat.history(session_id, after=middle, first=n)
        assert [m.content for m in after] == contents[LENGTH // 2 + 1:][:n], n


def _read_last_50(store, session_id: str, contents: list[str]) -> tuple[int, int, list]:
    """Read the last 50 twelve times on one connection; (generic plans, custom plans,
    [(node, actual rows)] of the plan the server uses now) of the last-N statement."""
    with store.chat.transaction():  # one pooled connection for the reads and the checks
        for _ in range(12):
            got = store.chat.history(session_id, last=50)
            assert [m.content for m in got] == contents[-50:]
        with store._backend.read("chat") as conn:
            (name, generic, custom), = conn.all(
                "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE ?", (LAST_N,))
            (plan,), = conn.all(  # the id is a UUID: safe to write into the statement
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}('{session_id}', 50)")
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def nodes(node):
        yield node
        for child in node.get("Plans", ()):
            yield from nodes(child)

    scans = [(node["Node Type"], node["Actual Rows"]) for node in nodes(plan[0]["Plan"])
             if node.get("Relation Name") == "messages" or "Bitmap" in node["Node Type"]]
    return generic, custom, scans


def _analyze(store) -> None:
    with store._backend.read("chat") as conn:
        conn.run("ANALYZE messages")
        conn.run("ANALYZE sessions")


def _short_sessions(store, count: int) -> None:
    for _ in range(count):
        store.chat.append_many(store.chat.create_session().id,
                               [{"role": "user", "content": "hi"}] * 10)


@pytest.mark.parametrize("stores", ["postgres"], indirect=True)
def test_a_long_session_among_short_ones_keeps_a_generic_plan(store):
    """Joined to the session row, the read of a session far longer than the average got
    a custom plan that looked cheaper than the generic one, so the server planned it
    anew on every call; found in a subquery, the session is not seen by the planner."""
    session_id, contents = long_session(store, 5_000, size=480)  # long enough for the old
    _short_sessions(store, 40)                                     # join to be re-planned
    _analyze(store)
    generic, custom, scans = _read_last_50(store, session_id, contents)
    assert generic >= 6 and custom <= 5, (generic, custom)
    assert scans == [("Index Scan", 50)], scans


@pytest.mark.parametrize("stores", ["postgres"], indirect=True)
@pytest.mark.parametrize("analyzed", [False, True])
def test_the_kept_plan_reads_n_rows_of_a_long_session(store, analyzed):
    """Whatever the server assumes about a session's length (no statistics yet, or an
    average session far shorter than this one), the plan it keeps walks the index back
    and stops after 50 rows: a plan made for short sessions (read them whole, then sort)
    would read all of a long one on every call."""
    session_id, contents = long_session(store, 3_000)
    _short_sessions(store, 60)
    if analyzed:
        _analyze(store)
    _, _, scans = _read_last_50(store, session_id, contents)
    assert scans == [("Index Scan", 50)], scans

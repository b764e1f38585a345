"""AgentkeepSession against the real OpenAI Agents SDK, on SQLite and PostgreSQL.

The reference is the SDK's own ``SQLiteSession``: the same calls on both must give the
same results, item for item.
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from adapter_helpers import call, cli, say, scripted_model, state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentkeep
from agentkeep.integrations.openai_agents import AgentkeepSession, NotSerialisable, SessionClosed

agents = pytest.importorskip("agents")
from agents import Agent, Runner, SQLiteSession, function_tool  # noqa: E402
from agents.memory import Session, SessionSettings  # noqa: E402

agents.set_tracing_disabled(True)

#: Every kind of item the SDK hands a session, and some it has never defined.
ITEMS = [
    {"role": "user", "content": "Weather in Lisbon?"},
    {"role": "developer", "content": "Answer briefly."},
    {"role": "system", "content": "You are a weather bot."},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "and this picture"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "auto"}]},
    {"id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAAB",
     "summary": [{"type": "summary_text", "text": "The user wants Lisbon's weather."}]},
    {"arguments": '{"city": "Lisbon"}', "call_id": "call_1", "name": "get_weather",
     "type": "function_call", "id": "fc_1", "status": "completed"},
    {"call_id": "call_1", "output": "sunny, 24 C", "type": "function_call_output"},
    {"call_id": "call_2", "type": "function_call_output",
     "output": [{"type": "input_text", "text": "a list output"}]},
    {"id": "msg_1", "content": [{"annotations": [], "text": "Sunny, 24 C.", "type": "output_text",
                                 "logprobs": []}],
     "role": "assistant", "status": "completed", "type": "message"},
    {"id": "ws_1", "type": "web_search_call", "status": "completed",
     "action": {"type": "search", "query": "lisbon weather"}},
    {"type": "computer_call_output", "call_id": "cc_1",
     "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"}},
    {"type": "mcp_call", "id": "mcp_1", "name": "lookup", "server_label": "s",
     "arguments": "{\"q\": 1}", "output": "found"},
    {"type": "item_reference", "id": "ref_1"},
    {"type": "a_kind_nobody_has_defined_yet", "payload": {"deep": [1, 2.5, None, True, {"x": []}]},
     "huge": 2**80, "tiny": -1e-300, "unicode": "héllo 🎉 \u202eRTL"},
    {"role": "user", "content": "NUL \x00 and a lone \ud800 surrogate survive"},
    {"type": "function_call", "call_id": "x" * 300, "name": "", "arguments": "not json {"},
    {"role": "assistant", "content": None},
    {"role": "critic", "content": "an unknown role"},
    "a bare string item",
    [1, "two", {"three": 3}],
]


@pytest.fixture
def session(store):
    return AgentkeepSession("conv-1", store)


def run(coroutine):
    return asyncio.run(coroutine)


def dumps(items):
    """Order-sensitive comparison: key order is part of 'exactly as given'."""
    return json.dumps(items)


async def both(reference, session, operation):
    """Run one operation on the SDK's SQLiteSession and on AgentkeepSession."""
    expected = await operation(reference)
    actual = await operation(session)
    assert dumps(actual) == dumps(expected)
    return actual


def test_is_an_sdk_session(session):
    assert isinstance(session, Session)
    assert session.session_settings == SessionSettings()


def test_same_results_as_sqlite_session(session):
    async def scenario():
        reference = SQLiteSession("conv-1")
        await both(reference, session, lambda s: s.get_items())
        assert await session.pop_item() is None
        await both(reference, session, lambda s: s.add_items(ITEMS[:5]))
        await both(reference, session, lambda s: s.add_items(ITEMS[5:]))
        await both(reference, session, lambda s: s.add_items([]))
        for limit in (None, 0, 1, 2, 7, len(ITEMS), len(ITEMS) + 10, 10**9):
            items = await both(reference, session, lambda s, n=limit: s.get_items(limit=n))
        assert dumps(items) == dumps(ITEMS)
        for _ in range(3):
            await both(reference, session, lambda s: s.pop_item())
        await both(reference, session, lambda s: s.get_items())
        await both(reference, session, lambda s: s.add_items([ITEMS[0]]))
        await both(reference, session, lambda s: s.get_items(limit=3))
        await both(reference, session, lambda s: s.clear_session())
        await both(reference, session, lambda s: s.get_items())
        await both(reference, session, lambda s: s.pop_item())
        await both(reference, session, lambda s: s.clear_session())
        await both(reference, session, lambda s: s.add_items(ITEMS[:2]))
        await both(reference, session, lambda s: s.get_items())
        reference.close()

    run(scenario())


def test_items_come_back_exactly(session):
    run(session.add_items(ITEMS))
    items = run(session.get_items())
    assert dumps(items) == dumps(ITEMS)
    assert items[14]["content"] == "NUL \x00 and a lone \ud800 surrogate survive"


def test_pop_until_empty_then_none(session):
    run(session.add_items(ITEMS[:4]))
    popped = [run(session.pop_item()) for _ in range(6)]
    assert popped == ITEMS[:4][::-1] + [None, None]
    assert run(session.get_items()) == []
    run(session.add_items([ITEMS[6]]))
    assert run(session.get_items()) == [ITEMS[6]]


def test_session_settings_limit_is_the_default(store):
    session = AgentkeepSession("conv-1", store, session_settings={"limit": 2})
    run(session.add_items(ITEMS[:5]))
    assert run(session.get_items()) == ITEMS[3:5]
    assert run(session.get_items(limit=3)) == ITEMS[2:5]
    session.session_settings = SessionSettings(limit=1)
    assert run(session.get_items()) == ITEMS[4:5]
    session.session_settings.limit = 0
    assert run(session.get_items()) == []


def test_the_conversation_is_an_agentkeep_conversation(stores, store, session):
    run(session.add_items(ITEMS[:9]))
    history = store.chat.history("conv-1")
    assert [m.role for m in history] == ["user", "system", "system", "user", "assistant",
                                         "assistant", "tool", "tool", "assistant"]
    assert history[0].content == "Weather in Lisbon?"
    assert history[3].content == "and this picture"
    assert history[4].content == "The user wants Lisbon's weather."
    assert history[8].content == "Sunny, 24 C."
    calls = store.chat.tool_calls("conv-1")
    assert [(c.name, c.call_id, c.input, c.status, c.result_message_id) for c in calls] == [
        ("get_weather", "call_1", {"city": "Lisbon"}, "succeeded", history[6].id)]
    hits = store.chat.search("lisbon weather", session_id="conv-1")
    assert {hit.message.id for hit in hits} >= {history[4].id}
    session_row = store.chat.get_session("conv-1")
    assert session_row.metadata == {"framework": "openai-agents"}
    assert session_row.title == "Weather in Lisbon?"  # the first user message

    shown = cli(stores, "sessions", "show", "conv-1")
    assert "Weather in Lisbon?" in shown and "get_weather" in shown
    found = cli(stores, "search", "sunny")
    assert "conv-1" in found


def test_pop_leaves_a_branch_in_agentkeep(store, session):
    run(session.add_items(ITEMS[:3]))
    run(session.pop_item())
    run(session.add_items([ITEMS[6]]))
    assert run(session.get_items()) == [ITEMS[0], ITEMS[1], ITEMS[6]]
    branches = store.chat.branches("conv-1")
    assert len(branches) == 2
    assert [b.leaf.content for b in branches if not b.is_active] == ["You are a weather bot."]


def test_sessions_are_separate(store):
    first, second = AgentkeepSession("a", store), AgentkeepSession("b", store)
    run(first.add_items(ITEMS[:2]))
    run(second.add_items(ITEMS[2:3]))
    assert run(first.get_items()) == ITEMS[:2]
    assert run(second.get_items()) == ITEMS[2:3]
    run(first.clear_session())
    assert run(second.get_items()) == ITEMS[2:3]


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("session_id", ["", None, 42, b"conv", "x" * 201, "nul\x00"])
def test_bad_session_id(store, session_id):
    with pytest.raises(agentkeep.InvalidInput, match="session_id"):
        AgentkeepSession(session_id, store)


@pytest.mark.parametrize("limit", [-1, -100, 2.5, "3", True])
def test_bad_limit(session, limit):
    run(session.add_items(ITEMS[:3]))
    with pytest.raises(agentkeep.InvalidInput, match="limit"):
        run(session.get_items(limit=limit))


def test_negative_settings_limit(store):
    session = AgentkeepSession("conv-1", store)
    session.session_settings.limit = -1  # a dataclass: changed after it was checked
    with pytest.raises(agentkeep.InvalidInput, match="limit"):
        run(session.get_items())


@pytest.mark.parametrize("settings, field", [
    (SessionSettings(limit=-1), "session_settings.limit"),
    ({"limit": -1}, "session_settings.limit"),
    ({"limit": "a"}, "session_settings.limit"),
    ({"limit": True}, "session_settings.limit"),
    ({"limt": 3}, "session_settings"),
    (5, "session_settings"),
])
def test_bad_session_settings_are_refused_when_the_session_is_made(store, settings, field):
    with pytest.raises(agentkeep.InvalidInput) as caught:
        AgentkeepSession("conv-1", store, session_settings=settings)
    assert caught.value.field == field
    assert store.chat.list_sessions().items == []


def test_unknown_store_option_is_named(tmp_path):
    with pytest.raises(agentkeep.InvalidInput) as caught:
        AgentkeepSession("conv-1", path_or_url=tmp_path, bogus=1)
    assert caught.value.field == "bogus"
    assert not (tmp_path / "chat.db").exists()


@pytest.mark.parametrize("bad", [object(), b"bytes", {1, 2}, {"when": math}])
def test_not_serialisable_items_write_nothing(store, session, bad):
    run(session.add_items(ITEMS[:2]))
    before = state(store)
    reference = SQLiteSession("ref")
    with pytest.raises(TypeError) as sdk_error:
        run(reference.add_items([ITEMS[0], {"type": "x", "value": bad}]))
    assert run(reference.get_items()) == []
    with pytest.raises(NotSerialisable, match=r"items\[1\]") as error:
        run(session.add_items([ITEMS[0], {"type": "x", "value": bad}, ITEMS[1]]))
    assert isinstance(error.value, TypeError) and isinstance(error.value, agentkeep.InvalidInput)
    assert type(sdk_error.value) is TypeError
    assert state(store) == before
    # A new session is not created by a failed first batch either.
    with pytest.raises(NotSerialisable):
        run(AgentkeepSession("new", store).add_items([bad]))
    assert state(store) == before


def test_circular_item(store, session):
    loop = {"type": "x"}
    loop["self"] = loop
    with pytest.raises(agentkeep.InvalidInput, match="items"):
        run(session.add_items([loop]))
    assert run(session.get_items()) == []


def test_not_a_list_of_items(session):
    with pytest.raises(agentkeep.InvalidInput, match="items"):
        run(session.add_items({"role": "user", "content": "hi"}))


def test_deleted_in_agentkeep(store, session):
    run(session.add_items(ITEMS[:2]))
    store.chat.delete_session("conv-1")
    assert run(session.get_items()) == []
    with pytest.raises(agentkeep.Conflict, match="deleted"):
        run(session.add_items(ITEMS[:1]))
    store.chat.restore_session("conv-1")
    assert run(session.get_items()) == ITEMS[:2]


# --- closed stores --------------------------------------------------------------------------
def test_after_close(stores):
    session = AgentkeepSession("conv-1", path_or_url=stores.target,
                               **stores.options())
    run(session.add_items(ITEMS[:2]))
    session.close()
    session.close()  # idempotent, like SQLiteSession.close
    for operation in (lambda: session.get_items(), lambda: session.get_items(limit=0),
                      lambda: session.add_items([]), lambda: session.add_items(ITEMS[:1]),
                      lambda: session.pop_item(), lambda: session.clear_session()):
        with pytest.raises(SessionClosed) as error:
            run(operation())
        assert isinstance(error.value, RuntimeError)
        assert isinstance(error.value, agentkeep.StoreClosed)
    reopened = AgentkeepSession("conv-1", path_or_url=stores.target, **stores.options())
    assert run(reopened.get_items()) == ITEMS[:2]
    reopened.close()


def test_shared_store_closed_by_its_owner(stores):
    store = stores.open()
    session = AgentkeepSession("conv-1", store)
    run(session.add_items(ITEMS[:1]))
    session.close()  # not its store: still open
    assert run(session.get_items()) == ITEMS[:1]
    store.close()
    with pytest.raises(SessionClosed):
        run(session.get_items())


# --- concurrency ----------------------------------------------------------------------------
def test_concurrent_add_items_keep_each_batch_whole(stores):
    store = stores.open()
    tasks, batches = 8, 15

    async def writer(number):
        session = AgentkeepSession("shared", store)  # each task its own object, one id
        for batch in range(batches):
            await session.add_items([{"role": "user", "content": f"t{number} b{batch} i{i}"}
                                     for i in range(3)])

    async def scenario():
        await asyncio.gather(*(writer(n) for n in range(tasks)))
        return await AgentkeepSession("shared", store).get_items()

    items = run(scenario())
    texts = [item["content"] for item in items]
    assert len(texts) == len(set(texts)) == tasks * batches * 3
    for start in range(0, len(texts), 3):  # every batch contiguous and in order
        prefix = texts[start].rsplit(" ", 1)[0]
        assert texts[start:start + 3] == [f"{prefix} i{i}" for i in range(3)]
    for number in range(tasks):  # one task's batches in its order
        mine = [t for t in texts if t.startswith(f"t{number} ") and t.endswith("i0")]
        assert mine == [f"t{number} b{b} i0" for b in range(batches)]
    assert store.chat.get_session("shared").message_count == tasks * batches * 3


def test_concurrent_pops_take_distinct_items(stores):
    store = stores.open()
    session = AgentkeepSession("conv-1", store)
    items = [{"role": "user", "content": str(i)} for i in range(40)]
    run(session.add_items(items))

    async def scenario():
        return await asyncio.gather(*(AgentkeepSession("conv-1", store).pop_item()
                                      for _ in range(50)))

    popped = run(scenario())
    assert sorted((p for p in popped if p is not None), key=lambda i: int(i["content"])) == items
    assert popped.count(None) == 10
    assert run(session.get_items()) == []


def test_cancelled_add_items_is_all_or_nothing(session):
    async def scenario():
        task = asyncio.ensure_future(session.add_items(ITEMS[:6]))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await session.get_items()

    assert run(scenario()) in ([], ITEMS[:6])


def test_async_store(stores):
    async def scenario():
        store = await stores.open_async()
        session = AgentkeepSession("conv-1", store)
        await session.add_items(ITEMS[:3])
        return await session.get_items()

    assert run(scenario()) == ITEMS[:3]


# --- properties -----------------------------------------------------------------------------
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12)
ITEM = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]),
                           "content": ANY_TEXT | JSON}),
    st.fixed_dictionaries({"type": st.sampled_from(["function_call", "function_call_output",
                                                    "reasoning", "message", "zzz_call"]),
                           "call_id": ANY_TEXT, "output": JSON, "arguments": ANY_TEXT}),
    st.fixed_dictionaries({"type": st.sampled_from(["message", "reasoning", "new_kind"]),
                           "content": st.lists(st.fixed_dictionaries(
                               {"type": st.just("output_text"), "text": ANY_TEXT}),
                               min_size=1, max_size=2),
                           "summary": JSON}),
    st.dictionaries(ANY_TEXT, JSON, max_size=5),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(ITEM, max_size=4), min_size=1, max_size=3))
def test_any_json_items_round_trip(store, batches):
    session = AgentkeepSession("prop", store)
    run(session.clear_session())
    for batch in batches:
        run(session.add_items(batch))
    expected = [item for batch in batches for item in batch]
    assert dumps(run(session.get_items())) == dumps(expected)


# --- the SDK's Runner, end to end -----------------------------------------------------------
@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def conversation(session, streamed=False):
    """Three turns of a scripted agent with a tool call, kept in ``session`` (run with
    ``Runner.run_streamed`` when ``streamed``)."""
    model = scripted_model([
        [call("get_weather", '{"city": "Lisbon"}', "call_1")],
        [say("It is sunny in Lisbon.", "msg_1")],
        [say("You asked about Lisbon.", "msg_2")],
        [call("get_weather", '{"city": "Porto"}', "call_2")],
        [say("Porto is sunny too.", "msg_3")],
    ])
    agent = Agent(name="weather", instructions="Be brief.", model=model, tools=[get_weather])

    async def turns():
        outputs = []
        for question in ("Weather in Lisbon?", "What did I ask?", "And Porto?"):
            if streamed:
                result = Runner.run_streamed(agent, question, session=session)
                async for _ in result.stream_events():
                    pass
            else:
                result = await Runner.run(agent, question, session=session)
            outputs.append(result.final_output)
        return outputs

    return run(turns()), model


def test_a_streamed_run_keeps_the_same_conversation(store):
    outputs, model = conversation(AgentkeepSession("streamed", store), streamed=True)
    assert outputs == ["It is sunny in Lisbon.", "You asked about Lisbon.", "Porto is sunny too."]
    reference = SQLiteSession("streamed")
    expected_outputs, expected_model = conversation(reference, streamed=True)
    assert dumps(model.inputs) == dumps(expected_model.inputs)
    items = run(AgentkeepSession("streamed", store).get_items())
    assert dumps(items) == dumps(run(reference.get_items()))
    assert len(items) == 10
    assert sorted(c.status for c in store.chat.tool_calls("streamed")) == ["succeeded"] * 2


def test_runner_keeps_the_conversation(stores, store):
    outputs, model = conversation(AgentkeepSession("runner", store))
    assert outputs == ["It is sunny in Lisbon.", "You asked about Lisbon.", "Porto is sunny too."]
    reference = SQLiteSession("runner")
    expected_outputs, expected_model = conversation(reference)
    assert outputs == expected_outputs
    assert dumps(model.inputs) == dumps(expected_model.inputs)  # the model saw the same
    items = run(AgentkeepSession("runner", store).get_items())
    assert dumps(items) == dumps(run(reference.get_items()))
    assert len(items) == 10
    assert model.inputs[-1][:len(items) - 2] == items[:-2]  # the last turn saw all before it

    # A new process (a new store object) sees the same conversation.
    reopened = stores.open()
    assert run(AgentkeepSession("runner", reopened).get_items()) == items
    calls = reopened.chat.tool_calls("runner")
    assert sorted((c.input["city"], c.status) for c in calls) == [
        ("Lisbon", "succeeded"), ("Porto", "succeeded")]
    assert {hit.message.session_id for hit in reopened.chat.search("porto sunny")} == {"runner"}


def test_runner_with_a_session_limit(store):
    session = AgentkeepSession("limited", store, session_settings=SessionSettings(limit=2))
    conversation(session)
    reference = SQLiteSession("limited", session_settings=SessionSettings(limit=2))
    conversation(reference)
    assert dumps(run(session.get_items(limit=100))) == dumps(run(reference.get_items(limit=100)))


def nested(depth):
    value = "leaf"
    for _ in range(depth):
        value = {"down": [value]}
    return value


def test_deep_items(store, session):
    deep = {"type": "deep", "value": nested(100)}  # deeper than agentkeep's JSON: kept as text
    run(session.add_items([ITEMS[0], deep]))
    assert run(session.get_items()) == [ITEMS[0], deep]
    before = state(store)
    with pytest.raises(agentkeep.InvalidInput, match=r"items\[0\]"):
        run(session.add_items([{"type": "deeper", "value": nested(100_000)}]))
    assert state(store) == before


def test_reasoning_with_content_and_summary(session):
    item = {"type": "reasoning", "id": "rs_2",
            "summary": [{"type": "summary_text", "text": "short"}],
            "content": [{"type": "reasoning_text", "text": "the long reasoning"}]}
    run(session.add_items([item]))
    assert run(session.get_items()) == [item]


def test_agentkeep_tools_carry_the_items(stores, store, session, tmp_path):
    """check is clean, and export → import into a new store keeps every item exactly."""
    run(session.add_items(ITEMS + [{"type": "deep", "value": nested(100)}]))
    cli(stores, "check")
    cli(stores, "export", "-o", str(tmp_path / "all.jsonl"))
    copy = agentkeep.open(tmp_path / "copy")
    copy.close()
    cli_copy = type(stores)("sqlite", tmp_path / "copy-factory")
    cli_copy.home = tmp_path / "copy"
    cli(cli_copy, "import", str(tmp_path / "all.jsonl"))
    with agentkeep.open(tmp_path / "copy") as copied:
        items = run(AgentkeepSession("conv-1", copied).get_items())
    assert dumps(items) == dumps(ITEMS + [{"type": "deep", "value": nested(100)}])


def test_racing_first_batches_create_the_session_once(stores):
    """Two stores (two processes' worth of connections) start the same new session at once."""
    import threading

    first, second = stores.open(), stores.open()
    for round_number in range(10):
        session_id = f"race-{round_number}"
        barrier = threading.Barrier(2)
        errors = []

        def writer(store, name, session_id=session_id, barrier=barrier, errors=errors):
            try:
                barrier.wait()
                run(AgentkeepSession(session_id, store).add_items(
                    [{"role": "user", "content": f"{name} {i}"} for i in range(3)]))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(store, name))
                   for store, name in ((first, "a"), (second, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        texts = [item["content"] for item in run(AgentkeepSession(session_id, first).get_items())]
        assert sorted(texts) == sorted(f"{n} {i}" for n in "ab" for i in range(3))
        assert texts[:3] in ([f"a {i}" for i in range(3)], [f"b {i}" for i in range(3)])


def test_messages_written_by_other_means(store, session):
    store.chat.create_session(id="conv-1")
    store.chat.append("conv-1", "user", "typed elsewhere")
    store.chat.append("conv-1", "tool", "a result", parts=[{"type": "tool_result",
                                                            "call_id": "c1"}])
    store.chat.append("conv-1", "tool", "no call id")
    run(session.add_items([ITEMS[0]]))
    assert run(session.get_items()) == [
        {"role": "user", "content": "typed elsewhere"},
        {"type": "function_call_output", "call_id": "c1", "output": "a result"},
        {"role": "assistant", "content": "no call id"},
        ITEMS[0]]
    assert run(session.get_items(limit=1)) == [ITEMS[0]]

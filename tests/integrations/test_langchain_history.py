"""AgentkeepChatMessageHistory against the real langchain-core, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from adapter_helpers import cli, state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentkeep

pytest.importorskip("langchain_core")
from langchain_core.chat_history import BaseChatMessageHistory  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import (  # noqa: E402
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
    ToolMessageChunk,
    message_to_dict,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder  # noqa: E402
from langchain_core.runnables.history import RunnableWithMessageHistory  # noqa: E402

from agentkeep.integrations.langchain import (  # noqa: E402
    AgentkeepChatMessageHistory,
    NotSerialisable,
    SessionClosed,
)

MESSAGES = [
    SystemMessage(content="You are a weather bot.", id="sys-1"),
    HumanMessage(content="Weather in Lisbon?", additional_kwargs={"lang": "en", "n": [1, 2.5]}),
    AIMessage(content="", id="run-1", name="bot",
              tool_calls=[{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_1"}],
              usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19,
                              "input_token_details": {"cache_read": 4}},
              response_metadata={"model_name": "gpt-4.1", "finish_reason": "tool_calls"}),
    ToolMessage(content="sunny, 24 C", tool_call_id="call_1", name="get_weather",
                artifact={"raw": [1, 2]}),
    ToolMessage(content="boom", tool_call_id="call_9", status="error"),
    AIMessage(content=[{"type": "text", "text": "It is sunny in Lisbon."}],
              usage_metadata={"input_tokens": 30, "output_tokens": 8, "total_tokens": 38}),
    AIMessageChunk(content="partial ", tool_call_chunks=[
        {"name": "f", "args": '{"a": 1}', "id": "c2", "index": 0}]),
    HumanMessageChunk(content="chunked human"),
    ToolMessageChunk(content="chunked tool", tool_call_id="call_1"),
    ChatMessage(content="a critic speaks", role="critic"),
    ChatMessage(content="a user by role", role="user"),
    FunctionMessage(content="legacy function result", name="legacy"),
    HumanMessage(content=[{"type": "text", "text": "look"},
                          {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]),
    HumanMessage(content="NUL \x00 and a lone \ud800 surrogate and 🎉"),
    AIMessage(content="huge numbers", additional_kwargs={"big": 2**90, "tiny": 1e-300,
                                                         "nested": {"a": {"b": [None, True]}}}),
]


def run(coroutine):
    return asyncio.run(coroutine)


def exact(messages):
    """Type and every field, key order included."""
    return json.dumps([message_to_dict(m) for m in messages])


@pytest.fixture
def history(store):
    return AgentkeepChatMessageHistory("conv-1", store)


def test_is_a_chat_message_history(history):
    assert isinstance(history, BaseChatMessageHistory)
    assert history.messages == []


def test_every_message_type_round_trips(history):
    history.add_messages(MESSAGES[:5])
    history.add_messages(MESSAGES[5:])
    got = history.messages
    assert [type(m) for m in got] == [type(m) for m in MESSAGES]
    assert got == MESSAGES
    assert exact(got) == exact(MESSAGES)
    assert run(history.aget_messages()) == MESSAGES


def test_async_methods(history):
    async def scenario():
        await history.aadd_messages(MESSAGES[:3])
        await history.aadd_messages(MESSAGES[3:6])
        first = await history.aget_messages()
        await history.aclear()
        return first, await history.aget_messages()

    first, after = run(scenario())
    assert first == MESSAGES[:6]
    assert after == []


def test_convenience_methods(history):
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.add_message(SystemMessage(content="sys"))
    assert history.messages == [HumanMessage(content="hi"), AIMessage(content="hello"),
                                SystemMessage(content="sys")]


def test_clear_and_start_again(store, history):
    history.add_messages(MESSAGES[:3])
    history.clear()
    assert history.messages == []
    history.clear()
    with pytest.raises(agentkeep.NotFound):
        store.chat.get_session("conv-1", include_deleted=True)
    history.add_messages(MESSAGES[3:4])
    assert history.messages == MESSAGES[3:4]


def test_the_conversation_is_an_agentkeep_conversation(stores, store, history):
    history.add_messages(MESSAGES[:6])
    messages = store.chat.history("conv-1")
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "tool",
                                          "assistant"]
    assert messages[5].content == "It is sunny in Lisbon."
    assert (messages[2].model, messages[2].finish_reason) == ("gpt-4.1", "tool_calls")
    session = store.chat.get_session("conv-1")
    assert (session.input_tokens, session.output_tokens) == (42, 15)
    assert session.metadata == {"framework": "langchain"}
    assert session.title == "Weather in Lisbon?"  # the first human message
    calls = store.chat.tool_calls("conv-1")
    assert [(c.name, c.input, c.status, c.result_message_id) for c in calls] == [
        ("get_weather", {"city": "Lisbon"}, "succeeded", messages[3].id)]
    assert [hit.message.id for hit in store.chat.search("sunny lisbon")] == [messages[5].id]
    shown = cli(stores, "sessions", "show", "conv-1")
    assert "Weather in Lisbon?" in shown and "get_weather" in shown


def test_a_failed_tool_call(store, history):
    history.add_messages([
        AIMessage(content="", tool_calls=[{"name": "flaky", "args": {}, "id": "call_7"}]),
        ToolMessage(content="timed out", tool_call_id="call_7", status="error"),
    ])
    [call] = store.chat.tool_calls("conv-1")
    assert (call.name, call.status, call.error) == ("flaky", "failed", "timed out")


def test_histories_are_separate(store):
    first = AgentkeepChatMessageHistory("a", store)
    second = AgentkeepChatMessageHistory("b", store)
    first.add_messages(MESSAGES[:2])
    second.add_messages(MESSAGES[2:3])
    first.clear()
    assert first.messages == [] and second.messages == MESSAGES[2:3]


def test_messages_written_by_other_means(store, history):
    store.chat.create_session(id="conv-1")
    store.chat.append("conv-1", "user", "typed elsewhere")
    store.chat.append("conv-1", "assistant", "answered elsewhere")
    store.chat.append("conv-1", "tool", "a result",
                      parts=[{"type": "tool_result", "call_id": "c1"}])
    history.add_messages([HumanMessage(content="and via LangChain")])
    assert history.messages == [HumanMessage(content="typed elsewhere"),
                                AIMessage(content="answered elsewhere"),
                                ToolMessage(content="a result", tool_call_id="c1"),
                                HumanMessage(content="and via LangChain")]


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("session_id", ["", None, 7, "x" * 201])
def test_bad_session_id(store, session_id):
    with pytest.raises(agentkeep.InvalidInput, match="session_id"):
        AgentkeepChatMessageHistory(session_id, store)


@pytest.mark.parametrize("bad", [b"bytes", object(), {1, 2}])
def test_not_serialisable_writes_nothing(store, history, bad):
    history.add_messages(MESSAGES[:2])
    before = state(store)
    batch = [MESSAGES[2], HumanMessage(content="x", additional_kwargs={"bad": bad})]
    with pytest.raises(NotSerialisable, match=r"messages\[1\]") as error:
        history.add_messages(batch)
    assert isinstance(error.value, TypeError)
    with pytest.raises(TypeError):
        run(history.aadd_messages(batch))
    with pytest.raises(TypeError):
        AgentkeepChatMessageHistory("new", store).add_messages(batch[1:])
    assert state(store) == before


@pytest.mark.parametrize("bad", [["not a message"], [{"role": "user", "content": "x"}],
                                 HumanMessage(content="not in a list"), "text", None, 42])
def test_not_messages(store, history, bad):
    before = state(store)
    with pytest.raises(agentkeep.InvalidInput, match="messages"):
        history.add_messages(bad)
    assert state(store) == before


class OwnMessage(BaseMessage):
    type: str = "mine"


class OwnHumanMessage(HumanMessage):
    pass


def test_a_message_class_langchain_cannot_rebuild_is_refused(store, history):
    # Written, it made every later read of the history raise (messages_from_dict does
    # not know the type), the good messages with it.
    history.add_messages([HumanMessage(content="kept")])
    before = state(store)
    with pytest.raises(agentkeep.InvalidInput, match=r"messages\[1\]\.type: .*'mine'"):
        history.add_messages([HumanMessage(content="ok"), OwnMessage(content="custom")])
    assert state(store) == before
    assert [m.content for m in history.messages] == ["kept"]
    # A subclass of a LangChain class comes back as that class, as from LangChain's own
    # stores.
    history.add_messages([OwnHumanMessage(content="subclass")])
    assert [(type(m), m.content) for m in history.messages] == [
        (HumanMessage, "kept"), (HumanMessage, "subclass")]


# --- closed stores, concurrency -------------------------------------------------------------
def test_after_close(stores):
    history = AgentkeepChatMessageHistory("conv-1", path_or_url=stores.target,
                                          **stores.options())
    history.add_messages(MESSAGES[:2])
    history.close()
    for operation in (lambda: history.messages, lambda: history.add_messages([]),
                      history.clear, lambda: run(history.aget_messages()),
                      lambda: run(history.aadd_messages(MESSAGES[:1])),
                      lambda: run(history.aclear())):
        with pytest.raises(SessionClosed):
            operation()
    reopened = AgentkeepChatMessageHistory("conv-1", path_or_url=stores.target,
                                           **stores.options())
    assert reopened.messages == MESSAGES[:2]
    reopened.close()


def test_concurrent_async_adds_keep_each_batch_whole(store):
    async def writer(number):
        history = AgentkeepChatMessageHistory("shared", store)
        for batch in range(10):
            await history.aadd_messages([HumanMessage(content=f"t{number} b{batch} i{i}")
                                         for i in range(3)])

    async def scenario():
        await asyncio.gather(*(writer(n) for n in range(6)))
        return await AgentkeepChatMessageHistory("shared", store).aget_messages()

    texts = [m.content for m in run(scenario())]
    assert len(set(texts)) == len(texts) == 180
    for start in range(0, 180, 3):
        prefix = texts[start].rsplit(" ", 1)[0]
        assert texts[start:start + 3] == [f"{prefix} i{i}" for i in range(3)]


# --- properties -----------------------------------------------------------------------------
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8)
MESSAGE = st.one_of(
    st.builds(HumanMessage, content=ANY_TEXT,
              additional_kwargs=st.dictionaries(ANY_TEXT, JSON, max_size=3)),
    st.builds(AIMessage, content=ANY_TEXT, additional_kwargs=st.dictionaries(
        ANY_TEXT, JSON, max_size=3)),
    st.builds(ToolMessage, content=ANY_TEXT, tool_call_id=ANY_TEXT),
    st.builds(SystemMessage, content=ANY_TEXT),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(MESSAGE, max_size=6))
def test_any_messages_round_trip(store, messages):
    history = AgentkeepChatMessageHistory("prop", store)
    history.clear()
    history.add_messages(messages)
    assert exact(history.messages) == exact(messages)


# --- RunnableWithMessageHistory, end to end -------------------------------------------------
def chain(store, answers):
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a weather bot."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ])
    model = GenericFakeChatModel(messages=iter([AIMessage(content=a) for a in answers]))
    return RunnableWithMessageHistory(
        prompt | model, lambda session_id: AgentkeepChatMessageHistory(session_id, store),
        input_messages_key="question", history_messages_key="history")


def test_runnable_with_message_history_keeps_the_history(stores, store):
    answers = ["Sunny in Lisbon.", "You asked about Lisbon.", "Rainy in Porto."]
    with_history = chain(store, answers)
    config = {"configurable": {"session_id": "chat-7"}}
    with_history.invoke({"question": "Weather in Lisbon?"}, config=config)
    with_history.invoke({"question": "What did I ask?"}, config=config)
    run(with_history.ainvoke({"question": "And Porto?"}, config=config))
    other = {"configurable": {"session_id": "chat-8"}}
    chain(store, ["Hi."]).invoke({"question": "Hello"}, config=other)

    # A new process (another store object) reads what the chain kept.
    reopened = stores.open()
    kept = AgentkeepChatMessageHistory("chat-7", reopened).messages
    assert [(type(m).__name__, m.content) for m in kept] == [
        ("HumanMessage", "Weather in Lisbon?"), ("AIMessage", "Sunny in Lisbon."),
        ("HumanMessage", "What did I ask?"), ("AIMessage", "You asked about Lisbon."),
        ("HumanMessage", "And Porto?"), ("AIMessage", "Rainy in Porto.")]
    assert len(AgentkeepChatMessageHistory("chat-8", reopened).messages) == 2
    assert {hit.message.session_id for hit in reopened.chat.search("porto")} == {"chat-7"}


def test_the_model_sees_the_history(store):
    seen = []

    def model(prompt_value):
        seen.append([m.content for m in prompt_value.to_messages()])
        return AIMessage(content=f"answer {len(seen)}")

    from langchain_core.runnables import RunnableLambda

    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"),
                                               ("human", "{question}")])
    with_history = RunnableWithMessageHistory(
        prompt | RunnableLambda(model),
        lambda session_id: AgentkeepChatMessageHistory(session_id, store),
        input_messages_key="question", history_messages_key="history")
    config = {"configurable": {"session_id": "s"}}
    for question in ("one", "two", "three"):
        with_history.invoke({"question": question}, config=config)
    assert seen == [["one"], ["one", "answer 1", "two"],
                    ["one", "answer 1", "two", "answer 2", "three"]]

"""The LangGraph saver's chat view: a graph's conversation (the root checkpoints'
``messages`` channel) is also an agentkeep chat session named by the thread id, seen by
history, search and the CLI, kept without duplicates, branched when the thread is forked,
and removed with the thread."""

from __future__ import annotations

import asyncio
import logging
import operator
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph.graph")

from adapter_helpers import cli  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage  # noqa: E402
from langgraph.checkpoint.base import empty_checkpoint  # noqa: E402
from langgraph.graph import END, START, StateGraph, add_messages  # noqa: E402
from langgraph.types import Command  # noqa: E402
from test_langgraph_graph import AFTER_RESUME, CONFIG, build, kinds  # noqa: E402

import agentkeep  # noqa: E402
from agentkeep.integrations.langchain import AgentkeepChatMessageHistory  # noqa: E402
from agentkeep.integrations.langgraph import AgentkeepSaver  # noqa: E402

QUESTION = {"messages": [HumanMessage("what is the weather?")]}


def run_conversation(saver: AgentkeepSaver):
    """The weather turn: a tool call approved after an interrupt; the compiled graph."""
    graph = build(saver)
    graph.invoke(QUESTION, CONFIG)
    graph.invoke(Command(resume="yes"), CONFIG)
    return graph


def view(store: agentkeep.Store, thread_id: str = "trip-1") -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in store.chat.history(thread_id)]


VIEW = [("user", "what is the weather?"), ("assistant", ""), ("tool", "sunny in Lisbon"),
        ("assistant", "It is sunny in Lisbon.")]


def put_messages(saver: AgentkeepSaver, thread_id: str, messages: list, *,
                 channel: str = "messages", namespace: str = "") -> None:
    """Store a root checkpoint holding these messages, as LangGraph's loop would."""
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {channel: messages}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace}}
    saver.put(config, checkpoint, {"source": "loop", "step": 1}, {})


def test_the_conversation_is_a_chat_session(stores):
    store = stores.open()
    graph = run_conversation(AgentkeepSaver(store))

    messages = store.chat.history("trip-1")
    assert view(store) == VIEW
    state = graph.get_state(CONFIG).values["messages"]
    assert [m.metadata["langgraph_message_id"] for m in messages] == [m.id for m in state]
    assert messages[1].parts == [{"type": "tool_call", "name": "weather",
                                  "arguments": {"city": "Lisbon"}, "id": "call_1"}]
    [call] = store.chat.tool_calls("trip-1")
    assert (call.name, call.input, call.status, call.result_message_id) == (
        "weather", {"city": "Lisbon"}, "succeeded", messages[2].id)
    session = store.chat.get_session("trip-1")
    assert (session.title, session.metadata, session.message_count) == (
        "what is the weather?", {"framework": "langgraph"}, 4)
    assert {hit.message.id for hit in store.chat.search("sunny lisbon")} == {
        messages[2].id, messages[3].id}
    # The LangChain adapter reads the same session back as the graph's messages.
    assert AgentkeepChatMessageHistory("trip-1", store).messages == state

    shown = cli(stores, "sessions", "show", "trip-1")
    assert "4 in 1 branch" in shown and "weather(city='Lisbon')" in shown
    assert "It is sunny in Lisbon." in shown
    found = cli(stores, "search", "sunny")
    assert "trip-1" in found and "sunny in Lisbon" in found


def test_putting_checkpoints_again_does_not_duplicate(stores):
    store = stores.open()
    saver = AgentkeepSaver(store)
    run_conversation(saver)
    stored = list(saver.list(CONFIG))
    assert len(stored) >= 6
    # Every checkpoint again, oldest first and newest first, by this saver and by a new
    # one (which remembers nothing and reads the session back).
    for again in (saver, AgentkeepSaver(store)):
        for checkpoint in (*reversed(stored), *stored):
            again.put(checkpoint.config, checkpoint.checkpoint, checkpoint.metadata, {})
    assert view(store) == VIEW
    assert len(store.chat.branches("trip-1")) == 1
    assert store.chat.recount("trip-1")[0] == 4

    # The next turn appends only what is new.
    build(AgentkeepSaver(store)).invoke({"messages": [HumanMessage("thanks")]}, CONFIG)
    assert view(store)[4:] == [("user", "thanks"), ("assistant", "I have seen 5 messages.")]


def test_savers_of_several_processes_do_not_duplicate(stores):
    # Two savers on two stores are two processes: each remembers what it mirrored.
    first, second = AgentkeepSaver(stores.open()), AgentkeepSaver(stores.open())
    turn = [HumanMessage("one", id="m1"), AIMessage("two", id="m2")]
    more = [*turn, HumanMessage("three", id="m3"), AIMessage("four", id="m4")]
    put_messages(first, "t", turn)
    put_messages(second, "t", more)
    put_messages(first, "t", more)  # what it remembers is stale: the head moved
    put_messages(first, "t", [*more, HumanMessage("five", id="m5")])
    put_messages(second, "t", more)
    store = stores.open()
    assert [m.content for m in store.chat.history("t")] == ["one", "two", "three", "four",
                                                            "five"]
    assert len(store.chat.branches("t")) == 1


def test_messages_without_ids_are_not_duplicated(store):
    saver = AgentkeepSaver(store)
    first = [HumanMessage("hi there"), AIMessage("hello")]
    put_messages(saver, "t", first)
    put_messages(saver, "t", first)
    put_messages(AgentkeepSaver(store), "t", [*first, HumanMessage("bye")])
    assert view(store, "t") == [("user", "hi there"), ("assistant", "hello"), ("user", "bye")]
    put_messages(saver, "t", [HumanMessage("hi there"), AIMessage("changed")])
    assert view(store, "t") == [("user", "hi there"), ("assistant", "changed")]


def test_a_forked_thread_branches_the_session(stores):
    store = stores.open()
    graph = run_conversation(AgentkeepSaver(store))
    before = store.chat.history("trip-1")

    # Time travel: a different question from the first checkpoint after the human one.
    history = list(graph.get_state_history(CONFIG))
    asked = next(h for h in reversed(history) if len(h.values.get("messages", [])) == 1)
    forked = graph.update_state(asked.config, {"messages": [HumanMessage("and in Porto?")]})
    graph.invoke(None, forked)
    assert kinds(graph.get_state(CONFIG).values["messages"]) == [
        ("human", "what is the weather?"), ("human", "and in Porto?"),
        ("ai", "I have seen 2 messages.")]
    messages = store.chat.history("trip-1")
    view_after_fork = [("user", "what is the weather?"), ("user", "and in Porto?"),
                       ("assistant", "I have seen 2 messages.")]
    assert view(store) == view_after_fork
    assert messages[0].id == before[0].id  # the common prefix is shared, not copied
    branches = store.chat.branches("trip-1")
    assert [(b.leaf.id, b.is_active) for b in branches] == [
        (before[-1].id, False), (messages[-1].id, True)]

    # RemoveMessage: the shortened list is a prefix (nothing changes); what follows it
    # branches from the last message kept.
    removed = RemoveMessage(id=messages[-1].metadata["langgraph_message_id"])
    graph.update_state(CONFIG, {"messages": [removed]}, as_node="tools")
    assert store.chat.history("trip-1") == messages
    graph.invoke(None, CONFIG)  # the model answers again, a new message
    again = store.chat.history("trip-1")
    assert view(store) == view_after_fork
    assert again[:2] == messages[:2] and again[2].id != messages[2].id
    assert len(store.chat.branches("trip-1")) == 3


def test_delete_thread_purges_the_view_and_copy_thread_rebuilds_it(stores):
    store = stores.open()
    saver = AgentkeepSaver(store)
    run_conversation(saver)
    saver.copy_thread("trip-1", "trip-2")
    assert view(store, "trip-2") == VIEW
    assert store.chat.tool_calls("trip-2")[0].status == "succeeded"

    saver.delete_thread("trip-1")
    assert saver.get_tuple(CONFIG) is None
    with pytest.raises(agentkeep.NotFound):
        store.chat.get_session("trip-1", include_deleted=True)
    assert [hit.message.session_id for hit in store.chat.search("sunny")] == ["trip-2", "trip-2"]
    saver.prune(["trip-2"], strategy="delete")
    assert store.chat.list_sessions().items == []

    # A chat session the view did not make is not the saver's to delete.
    mine = AgentkeepChatMessageHistory("trip-3", store)
    mine.add_messages([HumanMessage("keep me")])
    saver.delete_thread("trip-3")
    assert view(store, "trip-3") == [("user", "keep me")]


def test_a_thread_in_a_subgraph_namespace_is_not_mirrored(store):
    saver = AgentkeepSaver(store)
    put_messages(saver, "t", [HumanMessage("inside")], namespace="child:1")
    assert store.chat.list_sessions().items == []


def test_the_view_can_be_off_or_on_another_channel(store):
    saver = AgentkeepSaver(store, messages_channel=None)
    run_conversation(saver)
    assert saver.get_tuple(CONFIG) is not None
    assert store.chat.list_sessions().items == []
    with pytest.raises(agentkeep.InvalidInput, match="messages_channel"):
        saver.mirror_chat("trip-1")

    # A thread stored without the view is caught up on demand.
    catching_up = AgentkeepSaver(store)
    assert catching_up.mirror_chat("trip-1") == 4
    assert catching_up.mirror_chat("trip-1") == 0
    assert view(store) == VIEW

    class Chat(TypedDict):
        chat: Annotated[list, add_messages]
        steps: Annotated[list, operator.add]

    builder = StateGraph(Chat)
    builder.add_node("echo", lambda s: {"chat": [AIMessage(f"echo: {s['chat'][-1].content}")],
                                        "steps": ["echo"]})
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    graph = builder.compile(checkpointer=AgentkeepSaver(store, messages_channel="chat"))
    graph.invoke({"chat": [HumanMessage("ping")]}, {"configurable": {"thread_id": "e"}})
    assert view(store, "e") == [("user", "ping"), ("assistant", "echo: ping")]

    for bad in ("", 3):
        with pytest.raises(agentkeep.InvalidInput, match="messages_channel"):
            AgentkeepSaver(store, messages_channel=bad)


def test_a_failed_view_write_keeps_the_checkpoint_and_is_logged(store, caplog):
    saver = AgentkeepSaver(store)
    with caplog.at_level(logging.WARNING, logger="agentkeep.integrations.langgraph"):
        put_messages(saver, "t", [HumanMessage("fine"), "not a message"])
    assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is not None
    assert store.chat.list_sessions().items == []
    [record] = caplog.records
    assert "'t'" in record.getMessage() and "must be a LangChain message" in record.exc_text
    with pytest.raises(agentkeep.InvalidInput, match="must be a LangChain message"):
        saver.mirror_chat("t")

    # The next good put catches the view up.
    put_messages(saver, "t", [HumanMessage("fine"), AIMessage("and well")])
    assert view(store, "t") == [("user", "fine"), ("assistant", "and well")]


def test_a_session_deleted_in_agentkeep_stays_deleted(store):
    saver = AgentkeepSaver(store)
    put_messages(saver, "t", [HumanMessage("one", id="m1")])
    store.chat.delete_session("t")
    put_messages(saver, "t", [HumanMessage("one", id="m1"), AIMessage("two", id="m2")])
    assert store.chat.get_session("t", include_deleted=True).message_count == 1
    with pytest.raises(agentkeep.Conflict, match="restore"):
        saver.mirror_chat("t")
    store.chat.restore_session("t")
    assert saver.mirror_chat("t") == 1
    assert view(store, "t") == [("user", "one"), ("assistant", "two")]


def test_async_graph_keeps_the_view(stores):
    async def scenario():
        store = await stores.open_async()
        graph = build(AgentkeepSaver(store))
        await graph.ainvoke(QUESTION, CONFIG)
        result = await graph.ainvoke(Command(resume="yes"), CONFIG)
        assert kinds(result["messages"]) == AFTER_RESUME
        shown = [(m.role, m.content) for m in await store.chat.history("trip-1")]
        saver = AgentkeepSaver(store)
        await saver.acopy_thread("trip-1", "trip-2")
        await saver.adelete_thread("trip-1")
        left = [s.id for s in (await store.chat.list_sessions()).items]
        return shown, left, await saver.amirror_chat("trip-2")

    assert asyncio.run(scenario()) == (VIEW, ["trip-2"], 0)

"""End to end: a LangGraph agent with a tool node and a human-approval interrupt, its
checkpoints in agentkeep, resumed by a new saver on a newly opened store (no API key:
the "model" is a scripted node emitting tool calls)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langgraph.graph")

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from agentkeep.integrations.langgraph import AgentkeepSaver  # noqa: E402


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def scripted_model(state: MessagesState) -> dict:
    """Asks for the weather tool, then answers from its result; counts what it has seen."""
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(f"It is {last.content}.")]}
    if "weather" in last.content:
        call = {"name": "weather", "args": {"city": "Lisbon"}, "id": "call_1"}
        return {"messages": [AIMessage("", tool_calls=[call])]}
    return {"messages": [AIMessage(f"I have seen {len(state['messages'])} messages.")]}


def approve(state: MessagesState) -> Command:
    answer = interrupt({"question": "run the tool?",
                        "tool": state["messages"][-1].tool_calls[0]["name"]})
    return Command(goto="tools" if answer == "yes" else END)


def route(state: MessagesState) -> str:
    return "approve" if state["messages"][-1].tool_calls else END


def build(saver: AgentkeepSaver):
    graph = StateGraph(MessagesState)
    graph.add_node("model", scripted_model)
    graph.add_node("approve", approve)
    graph.add_node("tools", ToolNode([weather]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["approve", END])
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=saver)


def kinds(messages) -> list[tuple[str, str]]:
    return [(m.type, m.content) for m in messages]


CONFIG = {"configurable": {"thread_id": "trip-1"}}
AFTER_RESUME = [("human", "what is the weather?"), ("ai", ""), ("tool", "sunny in Lisbon"),
                ("ai", "It is sunny in Lisbon.")]


def test_graph_resumes_after_an_interrupt_from_a_new_store(stores):
    store = stores.open()
    with AgentkeepSaver(store) as saver:
        result = build(saver).invoke({"messages": [HumanMessage("what is the weather?")]},
                                     CONFIG)
        assert result["__interrupt__"][0].value == {"question": "run the tool?",
                                                    "tool": "weather"}
    store.close()

    again = stores.open()  # a new process would see exactly this
    saver = AgentkeepSaver(again)
    graph = build(saver)
    paused = graph.get_state(CONFIG)
    assert paused.next == ("approve",)
    assert paused.interrupts[0].value["tool"] == "weather"
    assert kinds(paused.values["messages"]) == AFTER_RESUME[:2]

    result = graph.invoke(Command(resume="yes"), CONFIG)
    assert kinds(result["messages"]) == AFTER_RESUME
    assert result["messages"][1].tool_calls[0]["args"] == {"city": "Lisbon"}

    # The next turn continues the same thread: the model sees the whole history.
    result = build(AgentkeepSaver(again)).invoke({"messages": [HumanMessage("thanks")]}, CONFIG)
    assert kinds(result["messages"])[-1] == ("ai", "I have seen 5 messages.")

    history = list(graph.get_state_history(CONFIG))
    stored = list(again.checkpoints.list("trip-1", checkpoint_ns=""))
    assert [h.config["configurable"]["checkpoint_id"] for h in history] == \
        [c.checkpoint_id for c in stored]
    assert [t.thread_id for t in again.checkpoints.threads()] == ["trip-1"]

    # Time travel: replaying from the paused checkpoint behaves as with LangGraph's own
    # in-memory saver (the approval stored against that checkpoint is reused).
    paused_again = next(h for h in history if h.next == ("approve",))
    replayed = graph.invoke(Command(resume="no"), paused_again.config)
    reference = build(InMemorySaver())
    reference.invoke({"messages": [HumanMessage("what is the weather?")]}, CONFIG)
    reference.invoke(Command(resume="yes"), CONFIG)
    reference.invoke({"messages": [HumanMessage("thanks")]}, CONFIG)
    reference_history = list(reference.get_state_history(CONFIG))
    assert [h.next for h in history] == [h.next for h in reference_history]
    reference_paused = next(h for h in reference_history if h.next == ("approve",))
    expected = reference.invoke(Command(resume="no"), reference_paused.config)
    assert kinds(replayed["messages"]) == kinds(expected["messages"])


def test_async_graph_resumes_after_an_interrupt_from_a_new_store(stores):
    async def scenario():
        store = await stores.open_async()
        saver = AgentkeepSaver(store)
        await build(saver).ainvoke({"messages": [HumanMessage("what is the weather?")]}, CONFIG)
        await store.close()

        again = await stores.open_async()
        graph = build(AgentkeepSaver(again))
        paused = await graph.aget_state(CONFIG)
        assert paused.next == ("approve",)
        result = await graph.ainvoke(Command(resume="yes"), CONFIG)
        assert kinds(result["messages"]) == AFTER_RESUME
        threads = await again.checkpoints.threads()
        assert [(t.thread_id, t.namespaces) for t in threads] == [("trip-1", 1)]
        return [c async for c in again.checkpoints.list("trip-1")]

    stored = asyncio.run(scenario())
    assert len(stored) >= 6 and stored[0].metadata["source"] == "loop"


def test_retention_keeps_the_thread_resumable(stores):
    store = stores.open()
    saver = AgentkeepSaver(store)
    graph = build(saver)
    graph.invoke({"messages": [HumanMessage("what is the weather?")]}, CONFIG)
    before = len(list(saver.list(CONFIG)))
    assert before > 2

    result = saver.retain(keep_last=1)
    assert (result.checkpoints, result.threads) == (before - 1, 1)
    assert len(list(saver.list(CONFIG))) == 1
    resumed = build(AgentkeepSaver(store)).invoke(Command(resume="yes"), CONFIG)
    assert kinds(resumed["messages"]) == AFTER_RESUME


def test_saver_calls_take_turns_inside_a_shared_transaction(stores):
    """adelete_thread groups its deletes in one call that holds the connection: beside it,
    gathered calls in the same block take turns (a block of its own inside the shared
    transaction made them refused, at random, and failed the caller's block)."""
    async def main():
        store = await stores.open_async()
        saver = AgentkeepSaver(store.sync)
        session = await store.chat.create_session(title="beside")
        for round_ in range(12):
            async with store.transaction():
                await asyncio.gather(saver.adelete_thread(f"a{round_}"),
                                     saver.adelete_thread(f"b{round_}"),
                                     store.chat.append(session.id, "user", f"m{round_}"))
        return await store.chat.recount(session.id)

    assert asyncio.run(main())[0] == 12

"""Helpers of the framework-adapter tests: a row-level view of the store, CLI targets,
and a scripted Agents SDK model (no API key, no network)."""

from __future__ import annotations

from typing import Any

import agentkeep


def state(store: agentkeep.Store) -> dict[str, Any]:
    """Everything a caller can read about every session: rows, messages, tool calls."""
    sessions = [s for status in ("active", "archived", "deleted")
                for s in store.chat.iter_sessions(status=status)]
    result: dict[str, Any] = {"sessions": [s.to_dict() for s in sessions],
                              "tool_calls": [t.to_dict() for t in store.chat.tool_calls()]}
    for session in sessions:
        if session.status != "deleted":
            result[session.id] = {
                "history": [m.to_dict() for m in store.chat.history(session.id)],
                "branches": [(b.leaf.id, b.is_active) for b in store.chat.branches(session.id)],
            }
    return result


def cli(stores, *args: str) -> str:
    """Run ``agentkeep ARGS`` in-process on the test's store; its output (must succeed)."""
    from typer.testing import CliRunner

    from agentkeep.cli import app

    if stores.backend == "postgres":
        target = ["--url", stores.target, "--schema-prefix", stores.prefix]
    else:
        target = ["--home", str(stores.target)]
    result = CliRunner().invoke(app, [*target, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def scripted_model(turns: list[list[Any]]):
    """An Agents SDK ``Model`` answering each call with the next list of output items."""
    from agents import Model, ModelResponse, Usage

    class ScriptedModel(Model):
        def __init__(self) -> None:
            self.turns = list(turns)
            self.inputs: list[Any] = []

        async def get_response(self, system_instructions, input, *args, **kwargs):
            self.inputs.append(input)
            return ModelResponse(output=self.turns.pop(0), usage=Usage(), response_id=None)

        async def stream_response(self, system_instructions, input, *args, **kwargs):
            """The same turn as one streamed event: the completed response."""
            from openai.types.responses import Response, ResponseCompletedEvent

            self.inputs.append(input)
            response = Response(id="resp_scripted", created_at=0, model="scripted",
                                object="response", output=self.turns.pop(0),
                                tool_choice="auto", tools=[], parallel_tool_calls=False)
            yield ResponseCompletedEvent(type="response.completed", response=response,
                                         sequence_number=0)

    return ScriptedModel()


def say(text: str, item_id: str = "msg_1"):
    """An assistant message output item."""
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    return ResponseOutputMessage(
        id=item_id, type="message", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def call(name: str, arguments: str, call_id: str):
    """A function-call output item."""
    from openai.types.responses import ResponseFunctionToolCall

    return ResponseFunctionToolCall(type="function_call", name=name, arguments=arguments,
                                    call_id=call_id, id=f"fc_{call_id}")

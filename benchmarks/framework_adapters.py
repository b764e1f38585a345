"""agentkeep's framework adapters as systems of the peer harness in ../shared/bench.

Each mirrors the harness's adapter of the framework's own store, so the two are used
the same way: ``agentkeep-openai-agents`` is ``AgentkeepSession`` driven like the
harness drives ``SQLiteSession`` (one private event loop, an LRU of 256 session objects,
the message dicts passed as items unchanged); ``agentkeep-langchain`` is
``AgentkeepChatMessageHistory`` driven like ``SQLChatMessageHistory`` (dicts converted to
LangChain messages inside the timed call, ``last_n`` slicing ``messages``). All sessions
share one store, opened in ``open()`` so that the cold-start workload (W7) counts the
imports::

    PYTHONPATH=$PWD/benchmarks /tmp/peers-venv/bin/python ../shared/bench/run_bench.py \\
        --systems raw,openai-agents,agentkeep-openai-agents,langchain,agentkeep-langchain ...

(``benchmarks/sitecustomize.py`` registers both names in the harness and its children.)
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import OrderedDict

from adapters import Adapter  # the harness's interface (on its sys.path)


class _AgentkeepStore(Adapter):
    cache_size = 256

    def _directory(self, path: str) -> str:
        return os.path.join(os.path.dirname(path), f"{self.name}-store")

    def _open_store(self, path: str):
        import agentkeep

        self.store = agentkeep.open(self._directory(path))
        self.objects: OrderedDict = OrderedDict()

    def _object(self, session_id: str):
        obj = self.objects.get(session_id)
        if obj is None:
            obj = self._make(session_id)
            self.objects[session_id] = obj
            if len(self.objects) > self.cache_size:
                self.objects.popitem(last=False)
        else:
            self.objects.move_to_end(session_id)
        return obj

    def version(self) -> str:
        import agentkeep

        return f"agentkeep {agentkeep.__version__}"

    def files(self, path: str) -> list[str]:
        directory = self._directory(path)
        if not os.path.isdir(directory):
            return []
        return [os.path.join(directory, name) for name in os.listdir(directory)]


class AgentkeepSessionAdapter(_AgentkeepStore):
    name = "agentkeep-openai-agents"
    description = "agentkeep AgentkeepSession (OpenAI Agents SDK session), one event loop"
    store_defaults = "agentkeep defaults: WAL, synchronous=NORMAL, FTS5 search index"

    def open(self, path: str) -> None:
        from agentkeep.integrations.openai_agents import AgentkeepSession

        self._open_store(path)
        self._make = lambda session_id: AgentkeepSession(session_id, self.store)
        self.loop = asyncio.new_event_loop()

    def append(self, session_id: str, message: dict) -> None:
        self.loop.run_until_complete(self._object(session_id).add_items([message]))

    def append_many(self, session_id: str, messages: list[dict]) -> None:
        self.loop.run_until_complete(self._object(session_id).add_items(messages))

    def last_n(self, session_id: str, n: int) -> list:
        return self.loop.run_until_complete(self._object(session_id).get_items(limit=n))

    def all(self, session_id: str) -> list:
        return self.loop.run_until_complete(self._object(session_id).get_items())

    def search(self, query: str, limit: int) -> list:
        return self.store.chat.search(query, limit=limit)

    def close(self) -> None:
        self.objects.clear()
        self.store.close()
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def content_of(self, native) -> str:
        return native.message.content if hasattr(native, "message") else native["content"]


class AgentkeepHistoryAdapter(_AgentkeepStore):
    name = "agentkeep-langchain"
    description = "agentkeep AgentkeepChatMessageHistory (LangChain, sync)"
    store_defaults = "agentkeep defaults: WAL, synchronous=NORMAL, FTS5 search index"

    def open(self, path: str) -> None:
        from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

        from agentkeep.integrations.langchain import AgentkeepChatMessageHistory

        self._H, self._A, self._T = HumanMessage, AIMessage, ToolMessage
        self._open_store(path)
        self._make = lambda session_id: AgentkeepChatMessageHistory(session_id, self.store)

    def _conv(self, m: dict):  # the same conversion as the harness's LangChain adapter
        role = m["role"]
        if role == "user":
            return self._H(content=m["content"])
        if role == "assistant":
            tcs = [{"name": tc["function"]["name"],
                    "args": json.loads(tc["function"]["arguments"]),
                    "id": tc["id"], "type": "tool_call"}
                   for tc in m.get("tool_calls", ())]
            return self._A(content=m["content"], tool_calls=tcs)
        return self._T(content=m["content"], tool_call_id=m["tool_call_id"],
                       name=m.get("name"))

    def append(self, session_id: str, message: dict) -> None:
        self._object(session_id).add_messages([self._conv(message)])

    def append_many(self, session_id: str, messages: list[dict]) -> None:
        self._object(session_id).add_messages([self._conv(m) for m in messages])

    def last_n(self, session_id: str, n: int) -> list:
        return self._object(session_id).messages[-n:]

    def all(self, session_id: str) -> list:
        return self._object(session_id).messages

    def search(self, query: str, limit: int) -> list:
        return self.store.chat.search(query, limit=limit)

    def close(self) -> None:
        self.objects.clear()
        self.store.close()

    def content_of(self, native) -> str:
        return native.message.content if hasattr(native, "message") else native.content

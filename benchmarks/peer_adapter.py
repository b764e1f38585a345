"""agentkeep as an adapter of the peer harness in ../shared/bench.

    PYTHONPATH=$PWD/benchmarks /tmp/peers-venv/bin/python ../shared/bench/run_bench.py \\
        --adapter agentkeep=peer_adapter:AgentkeepAdapter --systems raw,raw-fts,agentkeep ...

agentkeep is imported in open(), so the harness's cold-start workload (W7) counts its
import. The store is a directory next to the harness's store path.
"""

from __future__ import annotations

import os

from adapters import Adapter  # the harness's interface (on its sys.path)


def _parts(message: dict) -> list | None:
    """OpenAI-style tool calls and results as agentkeep's typed parts."""
    if message.get("tool_calls"):
        return [{"type": "tool_call", "id": call.get("id"),
                 "name": call.get("function", {}).get("name", call.get("name", "tool")),
                 "arguments": call.get("function", {}).get("arguments", {})}
                for call in message["tool_calls"]]
    if message.get("tool_call_id"):
        return [{"type": "tool_result", "call_id": message["tool_call_id"]}]
    return None


class AgentkeepAdapter(Adapter):
    name = "agentkeep"
    description = "agentkeep (SQLite, search on, public API)"

    def __init__(self) -> None:
        self.store = None
        self.known: set[str] = set()

    def version(self) -> str:
        import agentkeep

        return f"agentkeep {agentkeep.__version__}"

    def _directory(self, path: str) -> str:
        return os.path.join(os.path.dirname(path), "agentkeep-store")

    def open(self, path: str) -> None:
        import agentkeep

        self.store = agentkeep.open(self._directory(path))
        self.chat = self.store.chat
        self._conflict = agentkeep.Conflict
        self._not_found = agentkeep.NotFound

    def _ensure(self, session_id: str, first: list[dict] | None = None) -> bool:
        """Create the session on first use, with ``first`` as its first messages (one
        commit); False when it existed (``first`` not written)."""
        if session_id in self.known:
            return False
        try:
            self.chat.create_session(id=session_id, messages=first)
        except self._conflict:
            created = False
        else:
            created = True
        self.known.add(session_id)
        return created

    def append(self, session_id: str, message: dict) -> None:
        self._ensure(session_id)
        self.chat.append(session_id, message["role"], message["content"],
                         parts=_parts(message))

    def append_many(self, session_id: str, messages: list[dict]) -> None:
        items = [{"role": m["role"], "content": m["content"], "parts": _parts(m)}
                 for m in messages]
        if not self._ensure(session_id, items):
            self.chat.append_many(session_id, items)

    def last_n(self, session_id: str, n: int) -> list:
        try:
            return self.chat.history(session_id, last=n)
        except self._not_found:  # the harness reads sessions it never wrote
            return []

    def all(self, session_id: str) -> list:
        try:
            return self.chat.history(session_id)
        except self._not_found:
            return []

    def search(self, query: str, limit: int) -> list:
        return self.chat.search(query, limit=limit)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def content_of(self, native) -> str:
        return native.content

    def files(self, path: str) -> list[str]:
        directory = self._directory(path)
        if not os.path.isdir(directory):
            return []
        return [os.path.join(directory, name) for name in os.listdir(directory)]

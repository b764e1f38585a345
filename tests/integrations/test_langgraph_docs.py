"""The LangGraph example of docs/integrations.md runs as written (in a temporary
directory) and does what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("langgraph.graph")

import agentkeep  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_langgraph_example_runs(tmp_path, monkeypatch):
    section = DOCS.read_text().split("## LangGraph checkpointer", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "docs/integrations.md", "exec"), {"__name__": "example"})
    assert printed.getvalue().splitlines() == [
        "('approve',)", "It is sunny in Lisbon.", "[('trip-1', 6)]"]
    with agentkeep.open(tmp_path / "agent-data") as store:
        assert [(t.thread_id, t.checkpoints) for t in store.checkpoints.threads()] == [
            ("trip-1", 1)]

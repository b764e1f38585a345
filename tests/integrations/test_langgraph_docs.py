"""The LangGraph example of docs/integrations.md runs as written (in a temporary
directory), does what its comments say, and the CLI shows the conversation as the text
says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("langgraph.graph")

from typer.testing import CliRunner  # noqa: E402

import agentkeep  # noqa: E402
from agentkeep.cli import app  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def shown(line: str) -> str:
    return " ".join(line.split())


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
        assert [m.role for m in store.chat.history("trip-1")] == [
            "user", "assistant", "tool", "assistant"]

    # Every `$ agentkeep ...` command shown runs, and each output line shown (but `...`
    # and dates; a line ending in `...` is a prefix) is in the real output.
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert len(commands) == 2
    for command in commands:
        line, *expected = command.splitlines()
        args = [arg.strip("'") for arg in re.findall(r"'[^']*'|\S+", line)][1:]
        assert args[:2] == ["--home", "./agent-data"]
        result = CliRunner().invoke(app, ["--home", str(tmp_path / "agent-data"), *args[2:]],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        output = [shown(out) for out in result.stdout.splitlines()]
        for want in expected:
            if want == "..." or re.search(r"\d{4}-\d\d-\d\d", want):
                continue
            if want.endswith(" ..."):
                prefix = shown(want[:-4])
                assert any(out.startswith(prefix) for out in output), (want, result.stdout)
            else:
                assert shown(want) in output, (want, result.stdout)

"""The OpenAI Agents SDK and LangChain examples of docs/integrations.md run as written (in
a temporary directory), print what the text says, and the CLI shows what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkeep.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def section(title: str) -> str:
    return DOCS.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def run_example(text: str, tmp_path, monkeypatch) -> list[str]:
    [example] = re.findall(r"```python\n(.*?)```", text, re.S)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "docs/integrations.md", "exec"), {"__name__": "example"})
    return printed.getvalue().splitlines()


def shown_commands(text: str, tmp_path) -> None:
    """Every ``$ agentkeep ...`` line of the section's shell block runs, and each line of
    output shown under it (but ``...`` and dates) appears in the real output."""
    [block] = re.findall(r"```sh\n(.*?)```", text, re.S)
    commands = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert commands
    for command in commands:
        line, *expected = command.splitlines()
        args = [arg.strip("'") for arg in re.findall(r"'[^']*'|\S+", line)][1:]
        assert args[:2] == ["--home", "./data"]
        result = CliRunner().invoke(app, ["--home", str(tmp_path / "data"), *args[2:]],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        output = [" ".join(out.split()) for out in result.stdout.splitlines()]
        for want in expected:
            if want == "..." or re.search(r"\d{4}-\d\d-\d\d", want):
                continue
            assert " ".join(want.split()) in output, (want, result.stdout)


def test_openai_agents_example(tmp_path, monkeypatch):
    pytest.importorskip("agents")
    text = section("OpenAI Agents SDK")
    assert run_example(text, tmp_path, monkeypatch) == [
        "It is sunny in Lisbon, 24 C.", "You asked about the weather in Lisbon.", "6"]
    shown_commands(text, tmp_path)


def test_langchain_example(tmp_path, monkeypatch):
    pytest.importorskip("langchain_core")
    text = section("LangChain chat history")
    assert run_example(text, tmp_path, monkeypatch) == [
        "Lisbon is sunny today, 24 C.", "You asked about the weather in Lisbon.", "4"]
    shown_commands(text, tmp_path)

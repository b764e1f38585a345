"""Every command has help text, and every command and option is in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from cli_helpers import ok

from agentkeep.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(command=None, path=()):
    """(path, command) for every command that runs something, depth first."""
    command = command or typer.main.get_command(app)
    children = getattr(command, "commands", {})
    if not children:
        yield path, command
    for name, child in children.items():
        yield from _commands(child, (*path, name))


COMMANDS = list(_commands())


def test_the_expected_commands_exist():
    assert sorted(" ".join(path) for path, _ in COMMANDS) == sorted([
        "init", "demo", "migrate status", "migrate up", "migrate down", "migrate check",
        "sessions list", "sessions show", "sessions rm", "sessions archive",
        "sessions restore", "search",
        "stats", "check", "optimize", "prune", "backup", "restore", "export", "import",
        "checkpoints threads", "checkpoints prune"])


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_and_docs(path, command):
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    result = ok(*path, "--help")
    assert "Usage" in result.stdout
    text = DOCS.read_text()
    assert f"### agentkeep {' '.join(path)}" in text, f"docs/cli.md lacks {' '.join(path)}"
    section = text.split(f"### agentkeep {' '.join(path)}", 1)[1].split("\n### ", 1)[0]
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            name = max(param.opts, key=len)
            if name != "--help":
                assert f"`{name}" in section, (path, name)


def _everything(command=None, path=()):
    """(path, command) for the program, every group and every command."""
    command = command or typer.main.get_command(app)
    yield path, command
    for name, child in getattr(command, "commands", {}).items():
        yield from _everything(child, (*path, name))


@pytest.mark.parametrize(("path", "command"), list(_everything()),
                         ids=lambda value: " ".join(value) if isinstance(value, tuple) else "")
def test_help_reads_cleanly(path, command):
    text = ok(*path, "--help").stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "[[" not in usage, usage
    assert "<bool>" not in text
    for paragraph in (command.help or "").split("\n\n"):
        assert "\n" not in paragraph, paragraph  # a docstring's line break would show


def test_global_options_are_documented():
    text = DOCS.read_text()
    for param in typer.main.get_command(app).params:
        if param.param_type_name == "option":
            for name in param.opts:
                assert f"`{name}" in text, name


def test_every_exit_code_is_documented():
    from agentkeep.cli import errors

    text = DOCS.read_text()
    for code in (errors.OK, errors.FAILURE, errors.USAGE, errors.UNAVAILABLE,
                 errors.NEEDS_ATTENTION, errors.INTERRUPTED):
        assert f"\n| {code} |" in text, code

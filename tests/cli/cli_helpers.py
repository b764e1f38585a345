"""Helpers for the CLI tests: run a command in-process and check how it failed."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from agentkeep.cli import app

#: Environment variables that would point the CLI at a store other than the test's.
STORE_ENV = ("AGENTKEEP_HOME", "AGENTKEEP_URL", "AGENTKEEP_SCHEMA_PREFIX")


def run(*args: Any, input: str | None = None, env: dict[str, str] | None = None):
    """Invoke ``agentkeep ARGS`` in-process; returns typer's Result (stdout, stderr, code)."""
    return CliRunner().invoke(app, [str(arg) for arg in args], input=input, env=env)


def ok(*args: Any, **kwargs: Any):
    """Run a command that must succeed; return its Result."""
    result = run(*args, **kwargs)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr,
                                   result.exception)
    return result


def json_of(*args: Any, **kwargs: Any) -> Any:
    """Run a ``--json`` command that must succeed; stdout must be JSON and only JSON."""
    return json.loads(ok(*args, "--json", **kwargs).stdout)


def assert_one_line_error(result, code: int, *words: str) -> str:
    """The command failed with ``code`` and one ``error: ...`` line on stderr."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def store_args(stores) -> list:
    """The global options naming the store of a ``stores`` fixture (either backend)."""
    from conftest import PG_URL

    if stores.backend == "postgres":
        return ["--url", PG_URL, "--schema-prefix", stores.prefix]
    return ["--home", stores.home]

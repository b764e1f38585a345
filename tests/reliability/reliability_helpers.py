"""Shared by the reliability suite: the run's summary table, row-level dumps, the
invariants every store must keep, and stores that live in a child process.

The summary is kept by a small pytest plugin that the first :func:`record` call
registers on the running session (no ``conftest.py`` here: a second module named
``conftest`` would shadow the root one that other tests import by that name). Its
``pytest_terminal_summary`` prints one line per area and backend; with
``AGENTKEEP_RELIABILITY_JSON=path`` the same numbers are written as JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import agentkeep
from agentkeep.ops.check import check
from conftest import PG_URL

HERE = Path(__file__).resolve().parent
COLUMNS = ("kills survived", "operations raced", "inputs tried", "errors surfaced",
           "rows lost")
PLUGIN_NAME = "agentkeep-reliability-summary"


def env_int(name: str, default: int) -> int:
    """An integer knob of the suite: ``AGENTKEEP_RELIABILITY_<NAME>`` or the default."""
    return int(os.environ.get(f"AGENTKEEP_RELIABILITY_{name}", default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(f"AGENTKEEP_RELIABILITY_{name}", default))


# --- the summary table -------------------------------------------------------------
class SummaryPlugin:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, area: str, backend: str, counts: dict[str, int]) -> None:
        row = self.rows[(area, backend)]
        for key, value in counts.items():
            row[key.replace("_", " ")] += int(value)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.rows:
            return
        write = terminalreporter.write_line
        terminalreporter.section("agentkeep reliability summary")
        header = f"{'area':<18}{'backend':<10}" + "".join(f"{c:>18}" for c in COLUMNS)
        write(header)
        totals = dict.fromkeys(COLUMNS, 0)
        for (area, backend), row in sorted(self.rows.items()):
            write(f"{area:<18}{backend:<10}" + "".join(f"{row[c]:>18,}" for c in COLUMNS))
            for column in COLUMNS:
                totals[column] += row[column]
        write(f"{'total':<28}" + "".join(f"{totals[c]:>18,}" for c in COLUMNS))
        path = os.environ.get("AGENTKEEP_RELIABILITY_JSON")
        if path:
            Path(path).write_text(json.dumps(
                [{"area": a, "backend": b, **row} for (a, b), row in sorted(self.rows.items())],
                indent=2) + "\n")


def record(config, area: str, backend: str, **counts: int) -> None:
    """Add ``counts`` (kills_survived=..., rows_lost=...) to the run's summary table."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = SummaryPlugin()
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    plugin.add(area, backend, counts)


# --- looking behind the library's back -----------------------------------------------
def dump_store(stores, *, prefix: str | None = None) -> dict[str, list]:
    """Every row of every table of every concern, the search index included, sorted:
    two equal dumps mean the store did not change by a single value."""
    dump: dict[str, list] = {}
    if stores.backend == "sqlite":
        for path in sorted(Path(stores.home).glob("*.db")):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                names = [row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")]
                for name in names:
                    rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
                    dump[f"{path.stem}.{name}"] = sorted(rows, key=repr)
            finally:
                conn.close()
        return dump
    import psycopg

    prefix = prefix or stores.prefix
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname LIKE %s AND c.relkind IN ('r', 'p') "
            "ORDER BY 1, 2", (prefix + "\\_%",)).fetchall()
        for schema, name in tables:
            rows = conn.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
            dump[f"{schema}.{name}"] = sorted(rows, key=repr)
    return dump


def raw_rows(stores, sql: str, concern: str = "chat") -> list[tuple]:
    """Rows of one query run on the concern's own file or schema, outside agentkeep."""
    if stores.backend == "sqlite":
        conn = sqlite3.connect(f"file:{Path(stores.home) / (concern + '.db')}?mode=ro",
                               uri=True)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True,
                         options=f"-c search_path={stores.prefix}_{concern}") as conn:
        return conn.execute(sql).fetchall()


# Whatever happened, none of these may ever return a row.
BROKEN_INVARIANTS = {
    "message without its session":
        "SELECT m.id FROM messages m LEFT JOIN sessions s ON s.id = m.session_id "
        "WHERE s.id IS NULL",
    "tool call without its message":
        "SELECT t.id FROM tool_calls t LEFT JOIN messages m ON m.id = t.message_id "
        "WHERE m.id IS NULL",
    "counter different from a recount":
        "SELECT s.id FROM sessions s LEFT JOIN (SELECT session_id, count(*) AS n, "
        "coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o "
        "FROM messages GROUP BY session_id) c ON c.session_id = s.id "
        "WHERE s.message_count <> coalesce(c.n, 0) OR s.input_tokens <> coalesce(c.i, 0) "
        "OR s.output_tokens <> coalesce(c.o, 0)",
    "sequence numbers with a gap or a duplicate":
        "SELECT session_id FROM messages GROUP BY session_id "
        "HAVING count(DISTINCT seq) <> count(*) OR min(seq) <> 1 OR max(seq) <> count(*)",
    "head naming a missing message":
        "SELECT s.id FROM sessions s LEFT JOIN messages m ON m.id = s.head_id "
        "WHERE s.head_id IS NOT NULL AND m.id IS NULL",
}


def broken_invariants(stores) -> dict[str, list]:
    """The invariants (above) that do not hold, with the offending ids."""
    found = {}
    for name, sql in BROKEN_INVARIANTS.items():
        rows = raw_rows(stores, sql)
        if rows:
            found[name] = rows[:10]
    return found


def check_findings(store: agentkeep.Store) -> list[dict]:
    """``agentkeep check``'s findings (empty when the store is clean)."""
    return [finding.to_dict() for finding in check(store)]


# --- a store in a child process --------------------------------------------------------
def child(script: str, *args: str, **popen: Any) -> subprocess.Popen:
    """Start ``python tests/reliability/<script> args...`` with stdout as a pipe."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(HERE / script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def target_args(stores) -> list[str]:
    """How a child opens the test's store: ``sqlite HOME`` or ``postgres URL PREFIX``."""
    if stores.backend == "sqlite":
        return ["sqlite", str(stores.home)]
    return ["postgres", PG_URL, stores.prefix]


def open_target(argv: list[str], **options: Any) -> tuple[agentkeep.Store, list[str]]:
    """The child's side of :func:`target_args`: the open store and the remaining args."""
    if argv[0] == "sqlite":
        return agentkeep.open(argv[1], **options), argv[2:]
    return agentkeep.open(argv[1], schema_prefix=argv[2], **options), argv[3:]

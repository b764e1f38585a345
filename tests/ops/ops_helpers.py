"""Helpers shared by the ops tests: raw SQL behind the library's back, and the CLI."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

from typer.testing import CliRunner

from agentkeep.cli import app
from conftest import PG_URL


@contextmanager
def raw(stores, concern="chat"):
    """Run SQL behind the library's back: ``run(sql, params)`` returns the rows."""
    if stores.backend == "sqlite":
        conn = sqlite3.connect(stores.home / f"{concern}.db", isolation_level=None)
        try:
            yield lambda sql, params=(): conn.execute(sql, params).fetchall()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True,
                         options=f"-c search_path={stores.prefix}_{concern}") as conn:
        def run(sql, params=()):
            cursor = conn.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

        yield run


def cli(stores, *args, input=None):
    """Run ``agentkeep`` against the factory's store."""
    target = ["--home", str(stores.home)] if stores.backend == "sqlite" else [
        "--url", PG_URL, "--schema-prefix", stores.prefix]
    return CliRunner().invoke(app, [*target, *args], input=input)

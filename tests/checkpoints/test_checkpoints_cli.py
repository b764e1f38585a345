"""``agentkeep checkpoints threads|prune`` on both backends."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from agentkeep.cli import app


def cli(stores, *args: str, input: str | None = None):
    if stores.backend == "postgres":
        target = ["--url", stores.target, "--schema-prefix", stores.prefix]
    else:
        target = ["--home", str(stores.target)]
    return CliRunner().invoke(app, [*target, "checkpoints", *args], input=input,
                              env={"COLUMNS": "200"})


def fill(store) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=40)
    for number in range(1, 6):
        store.checkpoints.put("trip", f"cp-{number:03d}", type="t", data=b"x",
                              created_at=old if number <= 3 else None)
    store.checkpoints.put_writes("trip", "cp-002", "task", [(0, "c", "t", b"v")])
    store.checkpoints.put("idle", "cp-001", type="t", data=b"x", created_at=old)


def remaining(store) -> dict[str, int]:
    return {t.thread_id: t.checkpoints for t in store.checkpoints.threads()}


def test_threads_and_prune(stores):
    with stores.open() as store:
        fill(store)
    listed = cli(stores, "threads", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(t["thread_id"], t["checkpoints"]) for t in json.loads(listed.stdout)] == [
        ("trip", 5), ("idle", 1)]
    assert "trip" in cli(stores, "threads").stdout

    dry = cli(stores, "prune", "--keep-last", "1", "--older-than", "30d", "--dry-run", "--json")
    assert json.loads(dry.stdout) == {"checkpoints": 3, "writes": 1, "threads": 1,
                                      "dry_run": True}
    declined = cli(stores, "prune", "--keep-last", "1", "--older-than", "30d", input="n\n")
    assert declined.exit_code == 1
    with stores.open() as store:
        assert remaining(store) == {"trip": 5, "idle": 1}

    done = cli(stores, "prune", "--keep-last", "1", "--older-than", "30d", "--yes")
    assert done.exit_code == 0 and "Deleted 3 checkpoint(s) and 1 pending write(s)" in done.stdout
    only = cli(stores, "prune", "--older-than", "30d", "--thread", "idle", "--yes", "--json")
    assert json.loads(only.stdout)["checkpoints"] == 1
    with stores.open() as store:
        assert remaining(store) == {"trip": 2}
    # Nothing left to delete: a real run that deleted nothing, not a dry run.
    again = cli(stores, "prune", "--keep-last", "1", "--older-than", "30d", "--yes", "--json")
    assert json.loads(again.stdout) == {"checkpoints": 0, "writes": 0, "threads": 0,
                                        "dry_run": False}
    assert "Deleted 0 checkpoint(s)" in cli(stores, "prune", "--keep-last", "1",
                                            "--older-than", "30d", "--yes").stdout


def test_bad_options_are_usage_errors_and_change_nothing(stores):
    with stores.open() as store:
        fill(store)
    for args in (["prune", "--yes"], ["prune", "--keep-last", "0", "--yes"],
                 ["prune", "--older-than", "3y", "--yes"], ["threads", "--limit", "0"]):
        result = cli(stores, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("error:") == 1
    with stores.open() as store:
        assert remaining(store) == {"trip": 5, "idle": 1}

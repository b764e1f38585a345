"""The benchmark suite, run small, as a correctness check only (no timed assertions).

Every workload checks what it reads as it goes (``benchmarks.workloads.check``): the
right messages in the right order, or an AssertionError ends the run. Here the suite
runs at ``--scale small`` on each backend and the results must account for every
message written and read; the times and the exit code (which reports the performance
targets) are not looked at: speed lives in ``python -m benchmarks``, not in tests.
"""

from __future__ import annotations

import json
import os

import pytest
from benchmarks.__main__ import SCALES, main

from conftest import drop_schemas, postgres_or_skip


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_small_run_reads_back_every_message_in_order(backend, tmp_path):
    if backend == "postgres":
        postgres_or_skip()
    results_path = tmp_path / "results.json"
    try:
        main(["--scale", "small", "--backend", backend, "--json", str(results_path),
              "--workdir", str(tmp_path / "work")])
    finally:
        if backend == "postgres":  # a run that failed half-way leaves its schemas
            drop_schemas(f"b{os.getpid()}")
    scale = SCALES["small"]
    results = json.loads(results_path.read_text())["backends"][backend]
    for system in ("raw", "agentkeep"):
        # Reading every session back found every message W2 wrote...
        assert results["read_all"][system]["messages"] == scale["w2_total"]
        # ...four processes lost nothing and hit no error...
        w6 = results["w6"][system]
        assert (w6["messages"], w6["errors"], w6["lost"]) == (4 * scale["w6_per"], 0, 0)
        # ...and searches found something.
        assert results["w5"][system]["mean_hits"] > 0
    assert results["w5"]["agentkeep"]["mean_hits"] == results["w5"]["raw"]["mean_hits"]


def test_wal_pages_accounts_for_every_frame_of_an_append(tmp_path):
    # SQLite only: the WAL is SQLite's. Each single-message commit writes at least the
    # messages table's page, its session index's and the session row's.
    from benchmarks.wal_pages import measure

    for name, trees in (("raw", {"messages", "messages_session_id", "sessions"}),
                        ("agentkeep", {"messages", "sqlite_autoindex_messages_1",
                                       "sqlite_autoindex_messages_2", "sessions"})):
        total, by_tree = measure(name, tmp_path / name, sessions=5, per_session=8)
        assert sum(by_tree.values()) == pytest.approx(total)
        assert total >= 3
        assert all(by_tree.get(tree, 0) >= 1 for tree in trees), (name, by_tree)


def test_search_forms_return_the_same_hits():
    # PostgreSQL only: the three forms of the search statement find the same messages,
    # in the same order (the tool compares their cost, not their results).
    from benchmarks.search_forms import FORMS, measure

    report = measure(postgres_or_skip(), sessions=6, per_session=40, queries=12, rounds=2)
    assert set(report) == set(FORMS)
    hits = [report[form]["hits"] for form in FORMS]
    assert hits[0] == hits[1] == hits[2]
    assert sum(map(len, hits[0])) > 0
    assert all(report[form]["p50_ms"] > 0 for form in FORMS)

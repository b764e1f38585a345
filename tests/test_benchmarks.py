"""The benchmark suite, run small, as a correctness check only (no timed assertions).

Every workload checks what it reads as it goes (``benchmarks.workloads.check``): the
right messages in the right order, or an AssertionError ends the run. Here the suite
runs at ``--scale small`` on each backend and the results must account for every
message written and read; the times and the exit code (which reports the performance
targets) are not looked at: speed lives in ``python -m benchmarks``, not in tests.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.__main__ import SCALES, main

from conftest import postgres_or_skip


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_small_run_reads_back_every_message_in_order(backend, tmp_path):
    if backend == "postgres":
        postgres_or_skip()
    results_path = tmp_path / "results.json"
    main(["--scale", "small", "--backend", backend, "--json", str(results_path),
          "--workdir", str(tmp_path / "work")])
    scale = SCALES["small"]
    results = json.loads(results_path.read_text())["backends"][backend]
    for system in ("raw", "agentkeep"):
        assert results["w1"][system]["messages"] == scale["w1_sessions"] * scale["w1_per"]
        assert results["w2"][system]["messages"] == scale["w2_total"]
        for mode in ("w3_cold", "w3_hot"):
            assert results[mode][system]["reads"] == scale["w3_reads"]
        assert results["w4"][system]["messages"] == scale["w4_msgs"]
        assert results["w5"][system]["queries"] == scale["w5_queries"]
        assert results["w5"][system]["mean_hits"] > 0
        assert results["w6"][system]["messages"] == 4 * scale["w6_per"]
        assert (results["w6"][system]["errors"], results["w6"][system]["lost"]) == (0, 0)
        assert results["read_all"][system]["messages"] == scale["w2_total"]
    # Both systems find the same number of hits for the same queries (limit 20 each).
    assert results["w5"]["agentkeep"]["mean_hits"] == results["w5"]["raw"]["mean_hits"]
    assert results["scaling"]["sessions"] == scale["big_sessions"]

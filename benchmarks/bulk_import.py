"""W2 (bulk import through ``append_many``) alone, at a size of your choosing, raw and
agentkeep taking turns round after round, so that a change can be measured in minutes
rather than in a whole ``--scale full`` run (docs/performance.md)::

    python -m benchmarks.bulk_import [--backend postgres] [--messages 100000] [--rounds 3]

Sessions hold 100 messages on average (50 to 1,000, as in W2) and go in in batches of
100 to 1,000; each system imports in a child process, into a store of its own, which is
dropped after the round. To compare two versions of agentkeep, run this twice, one with
the other version's ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from . import workloads
from .__main__ import SYSTEMS
from .systems import drop_location


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk_import",
                                     description=__doc__.split("::")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.messages < 1_000 or args.rounds < 1:
        parser.error("--messages must be at least 1000 and --rounds at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="agentkeep-bulk-"))
    text_dir = workdir / "text"
    text_dir.mkdir()
    rates: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    for number in range(1, args.rounds + 1):
        for system in SYSTEMS:
            location = (workdir / f"{system}-{number}" if args.backend == "sqlite"
                        else f"bulk_{system}_{number}")
            drop_location(args.backend, location)
            try:
                result = workloads.w2(system, args.backend, location, args.messages,
                                      args.messages // 100, 50, 1000, text_dir=text_dir)
            finally:
                drop_location(args.backend, location)
            rates[system].append(result["msgs_per_s"])
        ratio = rates["raw"][-1] / rates["agentkeep"][-1]
        print(f"round {number}: raw {rates['raw'][-1]:,.0f} msg/s, agentkeep "
              f"{rates['agentkeep'][-1]:,.0f} msg/s (x{ratio:.2f})", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    raw, ours = statistics.median(rates["raw"]), statistics.median(rates["agentkeep"])
    print(f"median: raw {raw:,.0f} msg/s, agentkeep {ours:,.0f} msg/s (x{raw / ours:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a call inside ``store.transaction()`` costs on PostgreSQL, with a nested block's
``RELEASE SAVEPOINT`` sent late (with the next ``SAVEPOINT``: agentkeep's way) and sent
at once (the way before), the two taking turns in one process so that the server's and
the machine's drift hits both alike (docs/performance.md, "Where the time goes")::

    python -m benchmarks.transaction_calls [--calls 200] [--rounds 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import agentkeep
from agentkeep.backend.postgres import PostgresBackend

from .systems import PG_URL, drop_location


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("::")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    options = parser.parse_args()
    prefix = f"bench_tx_{uuid.uuid4().hex[:8]}"
    store = agentkeep.open(PG_URL, schema_prefix=prefix)
    try:
        session = store.chat.create_session().id
        results: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(options.rounds):
            for late in (True, False):
                PostgresBackend.combines_commands = late
                start = time.perf_counter()
                with store.transaction():
                    for number in range(options.calls):
                        store.chat.append(session, "user", f"message {number}")
                results[late].append((time.perf_counter() - start) / options.calls * 1e6)
        PostgresBackend.combines_commands = True
        for late, label in ((True, "released late (agentkeep)"), (False, "released at once")):
            times = results[late]
            print(f"{label}: {statistics.median(times):,.0f} µs an append in a transaction "
                  f"(median of {len(times)} rounds; {min(times):,.0f}–{max(times):,.0f})")
    finally:
        store.close()
        drop_location("postgres", prefix)


if __name__ == "__main__":
    main()

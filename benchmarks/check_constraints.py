"""What a CHECK constraint costs SQLite per row written, by its form (chat_0005)::

    python -m benchmarks.check_constraints [--rows 200000]

A one-column table takes the same rows under each form of the same check; the
``IN`` list of four values makes SQLite build a temporary index of the list for every
row (docs/performance.md, "Import").
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time

FORMS = {
    "no check": "",
    "IN list of 4": ", CHECK (role IN ('system', 'user', 'assistant', 'tool'))",
    "OR chain of 4": ", CHECK (role = 'system' OR role = 'user' OR role = 'assistant' "
                     "OR role = 'tool')",
    "IN list of 2": ", CHECK (role IN ('user', 'assistant'))",
}


def per_row_us(check: str, rows: int) -> float:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(f"CREATE TABLE m (id INTEGER PRIMARY KEY, role TEXT NOT NULL{check})")
    values = [("assistant",)] * rows
    conn.execute("BEGIN")
    started = time.perf_counter()
    conn.executemany("INSERT INTO m (role) VALUES (?)", values)
    elapsed = time.perf_counter() - started
    conn.execute("COMMIT")
    conn.close()
    return elapsed / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    rows = parser.parse_args().rows
    results: dict[str, list[float]] = {name: [] for name in FORMS}
    for _ in range(3):  # rounds, each form in turn
        for name, check in FORMS.items():
            results[name].append(per_row_us(check, rows))
    print(f"SQLite {sqlite3.sqlite_version}, {rows:,} rows a form, median of 3 rounds\n")
    print("| CHECK | µs per row |\n|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()

"""Which B-trees a single-commit SQLite append writes, for raw and for agentkeep through
its public API: W1's messages (tool calls included) to 200 sessions in turn, then the
WAL frames of further commits, with checkpoints held off, attributed to the table or
index owning each page (``dbstat``). A count, so the machine's load does not move it
(docs/performance.md, "Where the time goes")::

    python -m benchmarks.wal_pages [--sessions 200] [--per-session 40]
"""

from __future__ import annotations

import argparse
import collections
import sqlite3
import struct
import tempfile
from pathlib import Path

from . import textgen
from .systems import make

WAL_HEADER, FRAME_HEADER = 32, 24


def _frames(wal: Path) -> list[int]:
    """The page number of every frame in a WAL file, in order."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        pages.append(struct.unpack(">I", data[offset:offset + 4])[0])
        offset += FRAME_HEADER + page_size
    return pages


def _hold_checkpoints(system) -> None:
    connections = [system.conn] if system.name == "raw" else \
        system.store._backend._idle["chat"]  # the pooled connection the appends use
    for conn in connections:
        conn = getattr(conn, "raw", conn)
        conn.execute("PRAGMA wal_autocheckpoint=0")


def measure(name: str, directory: Path, sessions: int, per_session: int) -> tuple[float, dict]:
    """Frames per commit, and per owning B-tree, over the second half of the appends."""
    system = make(name, "sqlite", directory)
    system.open()
    database = directory / ("raw.db" if name == "raw" else "chat.db")
    conversations = [textgen.conversation(10_000 + k, per_session) for k in range(sessions)]
    order = [(f"w1-{k:04d}", conversations[k][j]) for j in range(per_session)
             for k in range(sessions)]
    for k in range(sessions):
        system.append_many(f"w1-{k:04d}", [])
    half = len(order) // 2
    for key, message in order[:half]:  # a store with some history, as W1's
        system.append(key, message)
    with sqlite3.connect(database) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _hold_checkpoints(system)
    for key, message in order[half:]:
        system.append(key, message)
    frames = _frames(Path(f"{database}-wal"))
    with sqlite3.connect(database) as other:
        owner = dict(other.execute("SELECT pageno, name FROM dbstat"))
    system.close()
    commits = len(order) - half
    by_tree = collections.Counter(owner.get(page, "(freed)") for page in frames)
    return len(frames) / commits, {tree: count / commits for tree, count in by_tree.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("::")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--per-session", type=int, default=40)
    options = parser.parse_args()
    for name in ("raw", "agentkeep"):
        with tempfile.TemporaryDirectory(prefix="agentkeep-wal-pages-") as directory:
            total, by_tree = measure(name, Path(directory), options.sessions,
                                     options.per_session)
        print(f"{name}: {total:.2f} WAL frames per commit")
        for tree, frames in sorted(by_tree.items(), key=lambda item: -item[1]):
            print(f"  {frames:5.2f}  {tree}")


if __name__ == "__main__":
    main()

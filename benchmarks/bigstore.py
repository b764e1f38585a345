"""The scaling check's big store, loaded with ``agentkeep import`` rather than built call
by call: the check measures reads on a store of 100,000 sessions, not how it was written,
and writing it through ``append_many`` (two transactions per session) took 4-10 minutes
per backend, a third of the suite's run. The export file is written once per run from
the shared generated text (untimed) and imported by each backend; the import is timed
and reported as the build's rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import textgen
from .systems import PG_URL, parts_of

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _line(kind: str, row: dict) -> str:
    return json.dumps({"kind": kind, "v": 1, "row": row}, separators=(",", ":")) + "\n"


def export_file(lengths: list[int], text_dir: Path, workdir: Path) -> Path:
    """An agentkeep export file of ``len(lengths)`` sessions keyed ``s000000``... holding
    the generated conversations (written once; later calls reuse it)."""
    path = Path(workdir) / f"bigstore-{len(lengths)}-{sum(lengths)}.jsonl"
    if path.exists():
        return path
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    counts = {"chat.sessions": 0, "chat.messages": 0}
    with partial.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"kind": "agentkeep-export", "format": 1, "revisions": {},
                              "created_at": START.isoformat(), "selection": None,
                              "concerns": ["chat"]}) + "\n")
        for index, messages in enumerate(textgen.conversations(lengths, text_dir)):
            key = f"s{index:06d}"
            at = (START + timedelta(seconds=index)).isoformat()
            ids = [f"{key}-{n:04d}" for n in range(len(messages))]
            out.write(_line("chat.sessions", {
                "id": key, "title": None, "status": "active", "generation": {},
                "metadata": {}, "head_id": ids[-1], "head_depth": len(ids) - 1,
                "message_count": len(ids), "created_at": at, "updated_at": at,
                "active_at": at}))
            for n, message in enumerate(messages):
                out.write(_line("chat.messages", {
                    "id": ids[n], "session_id": key, "parent_id": ids[n - 1] if n else None,
                    "seq": n + 1, "depth": n, "role": message["role"],
                    "content": message["content"], "parts": parts_of(message) or [],
                    "metadata": {}, "created_at": at}))
            counts["chat.sessions"] += 1
            counts["chat.messages"] += len(ids)
        out.write(json.dumps({"kind": "agentkeep-export-end",
                              "records": sum(counts.values()), "counts": counts}) + "\n")
    partial.replace(path)
    return path


def load(backend: str, location, path: Path) -> float:
    """Import ``path`` into a new store at ``location`` with the CLI; the seconds taken."""
    where = (["--home", str(location)] if backend == "sqlite"
             else ["--url", PG_URL, "--schema-prefix", location])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "agentkeep.cli", *where, "import", str(path)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started

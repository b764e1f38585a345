"""One of the processes of test_concurrent_mix.py: ``race_child.py SECONDS THREADS
SESSION_IDS TARGET...``.

Its threads mix appends, edits, branch switches, searches, listings, reads and
create-append-delete cycles on the shared sessions for SECONDS, then the process prints
one JSON document: every message it committed, the sessions it deleted, how many calls
it made, and every error a call raised (there should be none).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

from reliability_helpers import open_target

import agentkeep


def work(store, shared: list[str], deadline: float, seed: int, out: dict, lock) -> None:
    rng = random.Random(seed)
    appended, deleted, errors, calls = [], [], [], 0
    while time.monotonic() < deadline:
        session_id = rng.choice(shared)
        action = rng.random()
        calls += 1
        try:
            if action < 0.40:
                message = store.chat.append(session_id, rng.choice(("user", "assistant")),
                                            f"race {seed} {calls} lisbon",
                                            usage={"input_tokens": 1, "output_tokens": 2},
                                            cost=0.000003)
                appended.append((session_id, message.id))
            elif action < 0.47:
                history = store.chat.history(session_id, last=5)
                if history:
                    message = store.chat.edit(rng.choice(history).id, content="edited lisbon")
                    appended.append((session_id, message.id))
            elif action < 0.55:
                branches = store.chat.branches(session_id)
                if branches:
                    store.chat.switch_branch(session_id, rng.choice(branches).leaf.id)
            elif action < 0.70:
                store.chat.search(rng.choice(("lisbon", "race -edited", '"edited lisbon"',
                                              "rac*")), limit=10)
            elif action < 0.80:
                store.chat.list_sessions(limit=20)
            elif action < 0.88:
                store.chat.history(session_id, last=20)
            else:
                own = store.chat.create_session(title=f"own {seed} {calls}")
                first = store.chat.append(own.id, "user", "short-lived")
                appended.append((own.id, first.id))
                store.chat.delete_session(own.id)
                deleted.append(own.id)
        except agentkeep.AgentkeepError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    with lock:
        out["appended"] += appended
        out["deleted"] += deleted
        out["errors"] += errors
        out["calls"] += calls


def main(argv: list[str]) -> None:
    seconds, threads, shared = float(argv[0]), int(argv[1]), argv[2].split(",")
    store, _ = open_target(argv[3:])
    out = {"appended": [], "deleted": [], "errors": [], "calls": 0}
    lock = threading.Lock()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the parent starts every process at once
    deadline = time.monotonic() + seconds
    workers = [threading.Thread(target=work, args=(store, shared, deadline,
                                                   os.getpid() * 100 + i, out, lock))
               for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

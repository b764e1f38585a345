"""The process that test_crash_kill.py SIGKILLs: ``crash_child.py MODE TARGET... [ARGS]``.

Every write reports what it committed as one JSON line on stdout *after* the call
returned, so the parent knows exactly what must survive the kill. Modes:

- ``write``: appends messages, batches, tool calls, attachments and file versions in a
  loop, forever;
- ``migrate``: opens (creates and migrates) a new store, then says ``done``;
- ``backup DEST``: backs the store up into DEST, over and over;
- ``import FILE``: imports FILE, then says ``done``;
- ``prune``: purges every soft-deleted session, a few per transaction.
"""

from __future__ import annotations

import json
import os
import random
import sys

from reliability_helpers import open_target


def say(**record) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def write_forever(store) -> None:
    rng = random.Random(os.getpid())
    sessions: list[str] = []
    step = 0
    while True:
        step += 1
        if not sessions or rng.random() < 0.05:
            session = store.chat.create_session(title=f"crash {step}", metadata={"step": step})
            sessions.append(session.id)
            say(kind="session", id=session.id)
        session_id = rng.choice(sessions)
        action = rng.random()
        if action < 0.45:
            message = store.chat.append(session_id, "user", f"step {step} " + "words " * 20,
                                        usage={"input_tokens": step % 7, "output_tokens": 3},
                                        cost=0.000001 * (step % 5))
            say(kind="message", id=message.id, session=session_id)
        elif action < 0.65:
            size = rng.randint(2, 40)
            token = f"{os.getpid()}-{step}"
            batch = [{"role": "assistant" if i % 2 else "user", "content": f"batch {i}",
                      "metadata": {"batch": token, "size": size}} for i in range(size)]
            messages = store.chat.append_many(session_id, batch)
            say(kind="batch", token=token, ids=[m.id for m in messages], session=session_id)
        elif action < 0.80:
            message = store.chat.append(
                session_id, "assistant", "calling",
                parts=[{"type": "tool_call", "id": f"c{step}", "name": "lookup",
                        "arguments": {"step": step}}])
            call = store.chat.tool_calls(session_id)[-1]
            say(kind="message", id=message.id, session=session_id)
            say(kind="tool_call", id=call.id, message=message.id)
        elif action < 0.90:
            message = store.chat.append(session_id, "user", "see attached")
            data = os.urandom(rng.randint(1, 200_000))
            attachment = store.chat.attach(message.id, data, filename="blob.bin",
                                           media_type="application/octet-stream")
            say(kind="message", id=message.id, session=session_id)
            say(kind="attachment", id=attachment.id, message=message.id,
                size=len(data), sha256=attachment.sha256)
        else:
            data = f"version at step {step}\n".encode() * rng.randint(1, 5000)
            version = store.chat.save_file(session_id, "notes.txt", data)
            say(kind="file", session=session_id, path="notes.txt", version=version.version,
                size=len(data))


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    if mode == "migrate":
        say(kind="start")
        store, _ = open_target(rest)
        say(kind="done")
        store.close()
        return
    store, args = open_target(rest)
    say(kind="start")
    if mode == "write":
        write_forever(store)
    elif mode == "backup":
        from agentkeep.ops.backup import backup

        while True:
            result = backup(store, args[0])
            say(kind="backup", path=str(result.path))
    elif mode == "import":
        from agentkeep.ops.transfer import import_store

        import_store(store, args[0])
        say(kind="done")
    elif mode == "prune":
        from agentkeep.ops import prune

        result = prune.apply(store, grace="0m", batch_size=3)
        say(kind="done", purged=len(result.purged) if hasattr(result, "purged") else None)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])

"""How much Python agentkeep runs per call: bytecode instructions and Python function
calls in agentkeep's own frames, on a real SQLite store (docs/performance.md, "Where
the time goes")::

    python -m benchmarks.python_cost

The counts are the same on every run and every machine (for one Python version), so a
change to the Python layer can be judged where timings are too noisy to show it. They
leave out time spent in C (the driver, SQLite, ``datetime``), which the timed
benchmarks measure.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable

import agentkeep

TEXT = "hello world this is a message of moderate length " * 4
REPEATS = 50


def count(call: Callable[[], object]) -> tuple[float, float]:
    """(instructions, calls) in agentkeep's frames per ``call()``, over REPEATS calls."""
    instructions = calls = 0

    def trace(frame, event, arg):
        nonlocal instructions, calls
        if "/agentkeep/" not in frame.f_code.co_filename:
            return None
        frame.f_trace_opcodes = True
        if event == "call":
            calls += 1
        elif event == "opcode":
            instructions += 1
        return trace

    call()  # warm: statement caches, lazy imports
    sys.settrace(trace)
    try:
        for _ in range(REPEATS):
            call()
    finally:
        sys.settrace(None)
    return instructions / REPEATS, calls / REPEATS


def main() -> None:
    with tempfile.TemporaryDirectory() as home, agentkeep.open(home) as store:
        chat = store.chat
        session = chat.create_session().id
        chat.append_many(session, [{"role": "user", "content": TEXT}] * 200)
        batch = [{"role": "assistant", "content": TEXT}] * 100
        operations = {
            "append, a plain message": lambda: chat.append(session, "user", TEXT),
            "append, with model and usage": lambda: chat.append(
                session, "assistant", TEXT, model="m", usage={"input_tokens": 3,
                                                              "output_tokens": 5}),
            "append_many, 100 messages (per message)": lambda: chat.append_many(session,
                                                                                batch),
            "history, last 50": lambda: chat.history(session, last=50),
            "get_session": lambda: chat.get_session(session),
        }
        print("| call | bytecode instructions | Python calls |\n|---|---|---|")
        for name, operation in operations.items():
            instructions, calls = count(operation)
            if "per message" in name:
                instructions, calls = instructions / len(batch), calls / len(batch)
            print(f"| {name} | {instructions:,.0f} | {calls:,.1f} |")


if __name__ == "__main__":
    main()

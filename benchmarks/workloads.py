"""W1-W7 and the scaling checks. Each function runs one workload for one system and
returns a JSON-able dict. Text generation and correctness checks are never timed."""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import textgen
from .systems import make

perf = time.perf_counter


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency(values: list[float], unit: float = 1e6) -> dict:
    return {"n": len(values), "p50": percentile(values, 50) * unit,
            "p95": percentile(values, 95) * unit, "p99": percentile(values, 99) * unit}


def check(system, got: list, expected: list[dict], what: str) -> None:
    contents = [system.content_of(item) for item in got]
    wanted = [m["content"] for m in expected]
    if contents != wanted:
        raise AssertionError(f"{system.name}/{what}: got {len(contents)} messages, expected "
                             f"{len(wanted)}" + ("" if len(contents) != len(wanted)
                                                 else " (contents or order differ)"))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: a spawned child's ru_maxrss keeps the parent's peak from
    # before exec, so it would report the larger of the two.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- running latency workloads side by side ---------------------------------------------------
# The latency workloads (W1, W3, W4) are generators that yield after each round of timed
# work. `interleave` advances the raw driver's and agentkeep's in turns (alternating who
# goes first), so both meet the same machine: on a shared host the speed of the same
# code drifts by up to 2x within a minute, and a ratio of two runs minutes apart
# measured that drift as much as the code.
def interleave(steps: dict) -> dict:
    """Run workload generators round by round; returns each one's result by name."""
    results, active, turn = {}, dict(steps), 0
    while active:
        names = list(active) if turn % 2 == 0 else list(reversed(active))
        for name in names:
            try:
                next(active[name])
            except StopIteration as done:
                results[name] = done.value
                del active[name]
        turn += 1
    return results


def alone(steps) -> dict:
    """Run one workload generator to its end."""
    return interleave({"one": steps})["one"]


# --- W1: single-commit appends interleaved over many sessions --------------------------------
def w1(name, backend, location, sessions: int, per_session: int) -> dict:
    conversations = [textgen.conversation(10_000 + k, per_session) for k in range(sessions)]
    order = [(k, conversations[k][j]) for j in range(per_session) for k in range(sessions)]
    system = make(name, backend, location)
    system.open()
    for k in range(sessions):  # sessions exist before timing, as in a live app
        system.append_many(f"w1-{k:04d}", [])
    lat, elapsed = [], 0.0
    for round_start in range(0, len(order), sessions):  # a round: one message each
        start = perf()
        for k, message in order[round_start:round_start + sessions]:
            t = perf()
            system.append(f"w1-{k:04d}", message)
            lat.append(perf() - t)
        elapsed += perf() - start
        yield
    check(system, system.all("w1-0000"), conversations[0], "W1 all")
    system.close()
    return {"messages": len(order), "msgs_per_s": len(order) / elapsed, "append_us": latency(lat)}


# --- W2: bulk import, in a child process so its RSS is its own ----------------------------------
def _w2_child(name, backend, location, lengths, batch_low, batch_high, text_dir,
              queue) -> None:
    system = make(name, backend, location)
    system.open()
    rng = random.Random(42)
    total = sum(lengths)
    marks, next_mark, done, timed = [], total // 10, 0, 0.0
    for index, (length, messages) in enumerate(
            zip(lengths, textgen.conversations(lengths, text_dir), strict=True)):
        key = f"s{index:06d}"
        position = 0
        while position < length:
            chunk = messages[position:position + rng.randint(batch_low, batch_high)]
            t = perf()
            system.append_many(key, chunk)
            timed += perf() - t
            position += len(chunk)
        done += length
        if done >= next_mark:
            marks.append({"messages": done, "rss_mb": round(rss_mb(), 1)})
            next_mark += total // 10
    check(system, system.last_n(key, 50), messages[-50:], "W2 last_n")
    index_s = system.build_search()
    system.close()
    queue.put({"messages": total, "sessions": len(lengths), "import_s": timed,
               "msgs_per_s": total / timed, "search_index_s": index_s,
               "bytes_per_msg": system.size_bytes() / total, "rss_marks": marks,
               "peak_rss_mb": peak_rss_mb()})


def in_child(target, *args, timeout: float = 3600) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    try:
        result = queue.get(timeout=timeout)
    finally:
        process.join(60)
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return result


def w2(name, backend, location, total: int, sessions: int, low: int, high: int,
       batch_low: int = 100, batch_high: int = 1000, lengths: list[int] | None = None,
       text_dir: Path | None = None) -> dict:
    """Bulk import; with ``text_dir`` the (untimed) messages are generated once per run
    and read back by every later system and backend (textgen.conversations)."""
    lengths = lengths or textgen.session_lengths(sessions, total, low, high)
    if text_dir is not None:
        textgen.cached(lengths, text_dir)  # generated here, untimed, before the child
    return in_child(_w2_child, name, backend, location, lengths, batch_low, batch_high,
                    text_dir)


# --- W3: last 50 of a random session, on a fresh handle ------------------------------------------
def w3(name, backend, location, sessions: int, total: int, low: int, high: int, reads: int,
       hot: int = 0, n: int = 50, keys=None, warm_all: bool = False) -> dict:
    """Last-n reads of random sessions; ``warm_all`` first reads every session of the pool
    once (untimed), so two stores compared side by side start equally cached."""
    lengths = textgen.session_lengths(sessions, total, low, high) if keys is None else None
    system = make(name, backend, location)
    system.open()
    rng = random.Random(3)
    pool = keys or [f"s{i:06d}" for i in range(hot if hot else sessions)]
    for key in (pool if hot or warm_all else rng.sample(pool, min(20, len(pool)))):  # untimed
        system.last_n(key, n)
    lat, picks = [], []
    for read in range(reads):
        key = rng.choice(pool)
        t = perf()
        rows = system.last_n(key, n)
        lat.append(perf() - t)
        picks.append((key, len(rows)))
        if read % 50 == 49:
            yield
    if lengths is not None:
        for key, got in picks:
            if got != min(n, lengths[int(key[1:])]):
                raise AssertionError(f"{name}/W3: {key} returned {got} messages")
        key = picks[-1][0]
        expected = textgen.conversation(int(key[1:]), lengths[int(key[1:])])[-n:]
        check(system, system.last_n(key, n), expected, "W3 last_n")
    elif any(got != n for _, got in picks):  # the scaling store's sessions hold 60
        raise AssertionError(f"{name}/W3: a read of the given keys returned fewer than {n}")
    system.close()
    return {"reads": reads, "us": latency(lat)}


# --- W4: one long session ----------------------------------------------------------------------
def w4(name, backend, location, length: int, reps: int, batch: int = 500,
       appends: int = 50) -> dict:
    conversation = textgen.conversation(777_777, length + appends)
    body, extra = conversation[:length], conversation[length:]
    system = make(name, backend, location)
    system.open()
    for position in range(0, length, batch):
        system.append_many("long", body[position:position + batch])
    system.close()
    system = make(name, backend, location)
    system.open()
    system.all("long")  # warm-up
    yield
    load = []
    for _ in range(reps):
        t = perf()
        rows = system.all("long")
        load.append((perf() - t) * 1e3)
        yield
    check(system, rows, body, "W4 all")
    last = []
    for read in range(50):
        t = perf()
        rows = system.last_n("long", 50)
        last.append(perf() - t)
        if read % 10 == 9:
            yield
    check(system, rows, body[-50:], "W4 last_n")
    # The same appends into a short session, alternating with the long one's: cost must
    # not grow with history.
    short = textgen.conversation(888_888, 100 + appends)
    system.append_many("short", short[:100])
    append, append_short = [], []
    for number, (message, other) in enumerate(zip(extra, short[100:], strict=True)):
        t = perf()
        system.append("long", message)
        append.append(perf() - t)
        t = perf()
        system.append("short", other)
        append_short.append(perf() - t)
        if number % 10 == 9:
            yield
    system.close()
    return {"messages": length, "load_all_ms": statistics.median(load),
            "last_n_us": latency(last), "append_long_us": latency(append),
            "append_short_us": latency(append_short)}


# --- W5: search -----------------------------------------------------------------------------
def w5(name, backend, location, queries: int, limit: int = 20) -> dict:
    system = make(name, backend, location)
    system.open()
    texts = textgen.queries(queries)
    for query in texts[:10]:
        system.search(query, limit)
    lat, hits = [], []
    for query in texts:
        t = perf()
        rows = system.search(query, limit)
        lat.append(perf() - t)
        hits.append(len(rows))
    system.close()
    return {"queries": queries, "ms": latency(lat, 1e3), "mean_hits": statistics.mean(hits)}


# --- W6: four processes appending to one store -------------------------------------------------
def _w6_child(name, backend, location, process, count, sessions, barrier, queue) -> None:
    system = make(name, backend, location)
    system.open()
    per = -(-count // sessions)
    conversations = [textgen.conversation(50_000 + process * 1000 + k, per)
                     for k in range(sessions)]
    order = [(f"p{process}-{k:03d}", conversations[k][j]) for j in range(per)
             for k in range(sessions)][:count]
    for k in range(sessions):
        system.append_many(f"p{process}-{k:03d}", [])
    barrier.wait()
    errors, ok = [], 0
    start = time.monotonic()
    for key, message in order:
        try:
            system.append(key, message)
            ok += 1
        except Exception as exc:  # noqa: BLE001 - counting failures is the point
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    end = time.monotonic()
    written = {}
    for key, _ in order:
        written[key] = written.get(key, 0) + 1
    system.close()
    queue.put({"ok": ok, "errors": errors, "start": start, "end": end, "written": written})


def w6(name, backend, location, processes: int, per_process: int, sessions: int) -> dict:
    system = make(name, backend, location)
    system.open()
    system.close()
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(processes), context.Queue()
    children = [context.Process(target=_w6_child, args=(
        name, backend, location, p, per_process, sessions, barrier, queue))
        for p in range(processes)]
    for child in children:
        child.start()
    results = [queue.get(timeout=3600) for _ in children]
    for child in children:
        child.join(60)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    ok = sum(r["ok"] for r in results)
    system = make(name, backend, location)
    system.open()
    lost = 0
    for result in results:
        for key, count in result["written"].items():
            lost += max(0, count - len(system.all(key)))
    system.close()
    return {"messages": ok, "msgs_per_s": ok / elapsed,
            "errors": sum(len(r["errors"]) for r in results),
            "error_samples": [e for r in results for e in r["errors"]][:5], "lost": lost}


# --- W7: cold start in a fresh process ------------------------------------------------------------
COLD = {
    ("raw", "sqlite"): (
        "import sqlite3\nc = sqlite3.connect({path!r})\n"
        "rows = c.execute('SELECT id, role, content FROM messages WHERE session_id = ? "
        "ORDER BY id DESC LIMIT 10', ({key!r},)).fetchall()\nassert len(rows) == 10"),
    ("raw", "postgres"): (
        "import psycopg\nc = psycopg.connect({url!r})\n"
        "rows = c.execute('SELECT id, role, content FROM \"{schema}\".messages WHERE "
        "session_id = %s ORDER BY id DESC LIMIT 10', ({key!r},)).fetchall()\n"
        "assert len(rows) == 10"),
    ("agentkeep", "sqlite"): (
        "import agentkeep\ns = agentkeep.open({path!r})\n"
        "assert len(s.chat.history({key!r}, last=10)) == 10\ns.close()"),
    ("agentkeep", "postgres"): (
        "import agentkeep\ns = agentkeep.open({url!r}, schema_prefix={schema!r})\n"
        "assert len(s.chat.history({key!r}, last=10)) == 10\ns.close()"),
}


def w7(name, backend, location, runs: int, key: str = "s000001") -> dict:
    from .systems import PG_URL

    path = str(Path(location) / "raw.db") if name == "raw" else str(location)
    code = COLD[(name, backend)].format(path=path, key=key, url=PG_URL, schema=location)
    # Both systems start as an installed package does: from compiled bytecode (pip
    # compiles a wheel's modules at install; an editable install under
    # PYTHONDONTWRITEBYTECODE would recompile agentkeep in every process). The cache
    # lives outside the source tree; an untimed first run fills it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    walls = []
    with tempfile.TemporaryDirectory(prefix="agentkeep-bench-pycache-") as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        for _ in range(runs):
            t = perf()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            walls.append((perf() - t) * 1e3)
    return {"runs": runs, "wall_ms": statistics.median(walls)}


# --- full export-sized read: every session, every message ---
def _read_all_child(name, backend, location, sessions, queue) -> None:
    system = make(name, backend, location)
    system.open()
    count = 0
    start = perf()
    for index in range(sessions):
        count += len(system.all(f"s{index:06d}"))
    elapsed = perf() - start
    system.close()
    queue.put({"messages": count, "seconds": elapsed, "peak_rss_mb": peak_rss_mb()})


def read_all(name, backend, location, sessions: int) -> dict:
    return in_child(_read_all_child, name, backend, location, sessions)

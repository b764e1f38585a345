"""PostgreSQL search: what looking the text search configuration up as a statement runs
costs, and what computing the query once (a fenced subquery) gives back. One store of W5's
text; agentkeep's own search statement run three ways, alternating, on the same queries
(docs/performance.md, the 06:45 run of 2026-11-28)::

    python -m benchmarks.search_forms URL [--sessions 400] [--per-session 250]
                                          [--queries 200] [--rounds 4]

- ``shipped``: as agentkeep runs it (configuration looked up as the statement runs, the
  query in a fenced subquery);
- ``constant``: the configuration as a quoted name, which the planner folds (what a
  pooled connection's prepared statement would keep after the configuration is made
  again: "cache lookup failed");
- ``unfenced``: the shipped form without ``OFFSET 0``, the query parsed again for every
  matching row.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg

import agentkeep
from agentkeep.chat import sql
from agentkeep.chat.search_syntax import parse_query, to_tsquery_sql

from . import textgen

FORMS = ("shipped", "constant", "unfenced")
OPTIONS = 'StartSel="[", StopSel="]", MaxWords=24, MinWords=8, MaxFragments=2'


def statement(form: str, query: str) -> tuple[str, list]:
    """The search statement of ``form`` for ``query``, with its parameters (limit 20)."""
    expression, params = to_tsquery_sql(parse_query(query), sql.SEARCH_CONFIG_POSTGRES)
    text = sql.SEARCH_POSTGRES["plain"].replace("{tsquery}", expression).replace(
        "{filters}", "")
    if form == "constant":
        text = text.replace(sql.regconfig_sql(sql.SEARCH_CONFIG_POSTGRES),
                            f"'{sql.SEARCH_CONFIG_POSTGRES}'")
    elif form == "unfenced":
        text = text.replace(" OFFSET 0)", ")")
    return text.replace("?", "%s"), [*params, 20, OPTIONS]


def measure(url: str, sessions: int, per_session: int, queries: int, rounds: int
            ) -> dict[str, dict]:
    """Per form: p50 and p95 in ms, and the hits of every query (the same for all)."""
    prefix = f"bsf{uuid.uuid4().hex[:10]}"
    store = agentkeep.open(url, schema_prefix=prefix)
    try:
        for k in range(sessions):
            session = store.chat.create_session()
            store.chat.append_many(session.id, [
                {"role": m["role"], "content": m["content"]}
                for m in textgen.conversation(k, per_session)])
        store.chat.catch_up_index()
        words = textgen.queries(queries)
        times: dict[str, list[float]] = {form: [] for form in FORMS}
        hits: dict[str, list] = {form: [] for form in FORMS}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET search_path = {prefix}_chat")
            for round_number in range(rounds):
                order = FORMS if round_number % 2 == 0 else FORMS[::-1]
                for form in order:
                    for query in words:
                        text, params = statement(form, query)
                        start = time.perf_counter()
                        rows = conn.execute(text, params).fetchall()
                        times[form].append(time.perf_counter() - start)
                        if round_number == 0:
                            hits[form].append([row[0] for row in rows])
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            for concern in ("chat", "app", "checkpoints"):
                conn.execute(f"DROP SCHEMA IF EXISTS {prefix}_{concern} CASCADE")
    report = {}
    for form in FORMS:
        ordered = sorted(times[form])
        report[form] = {"p50_ms": 1000 * statistics.median(ordered),
                        "p95_ms": 1000 * ordered[int(len(ordered) * 0.95)],
                        "hits": hits[form]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="postgresql://... (a scratch schema is made, then dropped)")
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--per-session", type=int, default=250)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    report = measure(args.url, args.sessions, args.per_session, args.queries, args.rounds)
    print(f"{args.sessions * args.per_session:,} messages, {args.queries} queries "
          f"× {args.rounds} rounds")
    for form, figures in report.items():
        print(f"{form:>9}: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()

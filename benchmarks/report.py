"""Targets (issue 4) and the results table."""

from __future__ import annotations


def _ratio(results: dict, path: tuple, *, higher_is_better: bool = False) -> float:
    def get(system):
        value = results
        for key in path:
            value = value[system] if key == "*" else value[key]
        return value
    raw, ours = get("raw"), get("agentkeep")
    return raw / ours if higher_is_better else ours / raw


TARGETS = [
    # (label, workload, path within a system's result, higher is better, limit)
    ("W1 append msg/s", "w1", ("*", "msgs_per_s"), True, 1.5),
    ("W1 append p50", "w1", ("*", "append_us", "p50"), False, 1.5),
    ("W2 import msg/s", "w2", ("*", "msgs_per_s"), True, 1.5),
    ("W2 bytes/msg", "w2", ("*", "bytes_per_msg"), False, 1.5),
    ("W3 last-50 cold p50", "w3_cold", ("*", "us", "p50"), False, 1.5),
    ("W3 last-50 cold p99", "w3_cold", ("*", "us", "p99"), False, 2.0),
    ("W4 load 20k", "w4", ("*", "load_all_ms"), False, 2.0),
    ("W4 last 50", "w4", ("*", "last_n_us", "p50"), False, 1.5),
    ("W5 search p50", "w5", ("*", "ms", "p50"), False, 1.0),
    ("W5 search p95", "w5", ("*", "ms", "p95"), False, 1.0),
    ("W6 4-proc msg/s", "w6", ("*", "msgs_per_s"), True, 1.5),
    ("W7 cold start", "w7", ("*", "wall_ms"), False, 4.0),
]


def targets(results: dict) -> list[dict]:
    checks = []
    for backend, data in results["backends"].items():
        for label, workload, path, higher, limit in TARGETS:
            if backend == "postgres" and workload == "w7":
                continue  # the PostgreSQL targets cover W1-W6
            ratio = _ratio(data[workload], path, higher_is_better=higher)
            checks.append({"backend": backend, "target": label, "ratio": round(ratio, 3),
                           "limit": limit, "ok": ratio <= limit})
        w2 = data["w2"]
        if backend == "sqlite":
            ratio = w2["agentkeep"]["search_index_s"] / max(w2["raw"]["search_index_s"], 1e-9)
            checks.append({"backend": backend, "target": "W2 index vs FTS5 rebuild",
                           "ratio": round(ratio, 3), "limit": 1.2, "ok": ratio <= 1.2})
        peak = w2["agentkeep"]["peak_rss_mb"]
        checks.append({"backend": backend, "target": "W2 peak RSS MB", "ratio": round(peak, 1),
                       "limit": 200, "ok": peak <= 200})
        w4 = data["w4"]["agentkeep"]
        ratio = w4["append_long_us"]["p50"] / w4["append_short_us"]["p50"]
        checks.append({"backend": backend, "target": "append 20k-session / 100-session",
                       "ratio": round(ratio, 3), "limit": 1.3, "ok": ratio < 1.3})
        big = data["scaling"]["w3_big"]["us"]["p50"]
        ratio = big / data["scaling"]["w3_w2"]["us"]["p50"]
        checks.append({"backend": backend, "target": f"W3 {data['scaling']['sessions']}-session"
                       " store / W2 store", "ratio": round(ratio, 3), "limit": 1.5,
                       "ok": ratio < 1.5})
        w6 = data["w6"]["agentkeep"]
        checks.append({"backend": backend, "target": "W6 errors + lost rows",
                       "ratio": w6["errors"] + w6["lost"], "limit": 0,
                       "ok": w6["errors"] + w6["lost"] == 0})
    return checks


def _row(label: str, raw, ours, unit: str) -> str:
    ratio = ours / raw if raw else float("nan")
    return f"| {label} | {raw:,.1f} {unit} | {ours:,.1f} {unit} | ×{ratio:.2f} |"


def render(results: dict) -> str:
    lines = [f"scale {results['scale']}, {results['minutes']:.1f} min, "
             f"{results['machine']}", ""]
    for backend, d in results["backends"].items():
        lines += [f"## {backend}", "", "| measure | raw | agentkeep | agentkeep ÷ raw |",
                  "|---|---|---|---|"]
        rows = [
            ("W1 append msg/s", d["w1"], ("msgs_per_s",), "/s"),
            ("W1 append p50", d["w1"], ("append_us", "p50"), "µs"),
            ("W1 append p99", d["w1"], ("append_us", "p99"), "µs"),
            ("W2 import msg/s", d["w2"], ("msgs_per_s",), "/s"),
            ("W2 bytes/msg", d["w2"], ("bytes_per_msg",), "B"),
            ("W2 search index build", d["w2"], ("search_index_s",), "s"),
            ("W2 peak RSS", d["w2"], ("peak_rss_mb",), "MB"),
            ("W3 last-50 cold p50", d["w3_cold"], ("us", "p50"), "µs"),
            ("W3 last-50 cold p99", d["w3_cold"], ("us", "p99"), "µs"),
            ("W3 last-50 hot p50", d["w3_hot"], ("us", "p50"), "µs"),
            ("W4 load 20k", d["w4"], ("load_all_ms",), "ms"),
            ("W4 last 50 p50", d["w4"], ("last_n_us", "p50"), "µs"),
            ("W4 append on long p50", d["w4"], ("append_long_us", "p50"), "µs"),
            ("W5 search p50", d["w5"], ("ms", "p50"), "ms"),
            ("W5 search p95", d["w5"], ("ms", "p95"), "ms"),
            ("W6 4-proc msg/s", d["w6"], ("msgs_per_s",), "/s"),
            ("W7 cold start", d["w7"], ("wall_ms",), "ms"),
            ("read every message, peak RSS", d["read_all"], ("peak_rss_mb",), "MB"),
        ]
        for label, data, path, unit in rows:
            raw, ours = data["raw"], data["agentkeep"]
            for key in path:
                raw, ours = raw[key], ours[key]
            lines.append(_row(label, raw, ours, unit))
        lines.append("")
    lines += ["## targets", "", "| backend | target | value | limit | ok |",
              "|---|---|---|---|---|"]
    for check in results["targets"]:
        lines.append(f"| {check['backend']} | {check['target']} | {check['ratio']} | "
                     f"{check['limit']} | {'yes' if check['ok'] else 'NO'} |")
    return "\n".join(lines)

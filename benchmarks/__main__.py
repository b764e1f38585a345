"""python -m benchmarks --scale small|full [--backend sqlite|postgres|both] [--json PATH]"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import bigstore, report, textgen, workloads
from .systems import drop_location

SCALES = {
    "small": dict(w1_sessions=20, w1_per=50, w2_total=20_000, w2_sessions=200, w3_reads=300,
                  w4_msgs=2_000, w4_reps=3, w5_queries=50, w6_per=300, w6_sessions=10,
                  w7_runs=3, big_sessions=2_000),
    "full": dict(w1_sessions=200, w1_per=100, w2_total=1_000_000, w2_sessions=10_000,
                 w3_reads=2000, w4_msgs=20_000, w4_reps=5, w5_queries=200, w6_per=5000,
                 w6_sessions=50, w7_runs=5, big_sessions=100_000),
}
SYSTEMS = ("raw", "agentkeep")


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


class Run:
    def __init__(self, scale: str, workdir: Path) -> None:
        self.config = SCALES[scale]
        self.workdir = workdir
        self.text_dir = workdir / "text"  # generated messages, shared by every system
        self.tag = f"b{os.getpid()}"

    def w2_lengths(self) -> list[int]:
        c = self.config
        return textgen.session_lengths(c["w2_sessions"], c["w2_total"], 50, 1000)

    def big_lengths(self) -> list[int]:
        """The scaling check's store: ten times W2's sessions, one in 50 holding 60."""
        return [60 if i % 50 == 0 else 10 for i in range(self.config["big_sessions"])]

    def prepare(self) -> None:
        """Write W2's generated text and the scaling store's export file before anything
        is measured, in two processes at once: generating two million messages one after
        the other was ~2 minutes of a full run, on a machine with cores to spare then."""
        log("generating the messages (untimed)")
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            waiting = [pool.submit(textgen.cached, self.w2_lengths(), self.text_dir),
                       pool.submit(bigstore.export_file, self.big_lengths(), self.text_dir,
                                   self.workdir)]
            for future in waiting:
                future.result()

    def location(self, backend: str, system: str, workload: str):
        if backend == "sqlite":
            return self.workdir / f"{workload}-{system}"
        return f"{self.tag}_{workload}_{system}"

    def each(self, backend: str, workload: str, function, *args, **kwargs) -> dict:
        results = {}
        for system in SYSTEMS:
            location = self.location(backend, system, workload)
            drop_location(backend, location)
            log(f"{backend} {workload} {system}")
            results[system] = function(system, backend, location, *args, **kwargs)
            if workload not in ("w2",):
                drop_location(backend, location)
        return results

    def side_by_side(self, backend: str, workload: str, function, *args, **kwargs) -> dict:
        """A latency workload for every system at once, round by round (interleave)."""
        locations = {system: self.location(backend, system, workload) for system in SYSTEMS}
        for location in locations.values():
            drop_location(backend, location)
        log(f"{backend} {workload} {' and '.join(SYSTEMS)}, side by side")
        results = workloads.interleave({
            system: function(system, backend, location, *args, **kwargs)
            for system, location in locations.items()})
        for location in locations.values():
            drop_location(backend, location)
        return results

    def backend(self, backend: str) -> dict:
        c = self.config
        out: dict = {}
        out["w1"] = self.side_by_side(backend, "w1", workloads.w1, c["w1_sessions"],
                                      c["w1_per"])
        w2_args = (c["w2_total"], c["w2_sessions"], 50, 1000)
        out["w2"] = self.each(backend, "w2", workloads.w2, *w2_args, lengths=self.w2_lengths(),
                              text_dir=self.text_dir)
        stores = {system: self.location(backend, system, "w2") for system in SYSTEMS}
        log(f"{backend} w3 {' and '.join(SYSTEMS)}, side by side")
        for name, hot in (("w3_cold", 0), ("w3_hot", 20)):
            out[name] = workloads.interleave({
                system: workloads.w3(system, backend, location, c["w2_sessions"],
                                     *w2_args[:1], 50, 1000, c["w3_reads"], hot=hot)
                for system, location in stores.items()})
        out["w5"], out["w7"], out["read_all"] = {}, {}, {}
        for system, location in stores.items():
            log(f"{backend} w5/w7 {system}")
            out["w5"][system] = workloads.w5(system, backend, location, c["w5_queries"])
            out["w7"][system] = workloads.w7(system, backend, location, c["w7_runs"])
            out["read_all"][system] = workloads.read_all(system, backend, location,
                                                         c["w2_sessions"])
        out["w4"] = self.side_by_side(backend, "w4", workloads.w4, c["w4_msgs"], c["w4_reps"])
        out["w6"] = self.each(backend, "w6", workloads.w6, 4, c["w6_per"], c["w6_sessions"])
        out["scaling"] = self.scaling(backend)
        for system in SYSTEMS:
            drop_location(backend, self.location(backend, system, "w2"))
        return out

    def scaling(self, backend: str) -> dict:
        """W3 on the W2 store versus a store with ten times the sessions (agentkeep only)."""
        c = self.config
        sessions = c["big_sessions"]
        lengths = self.big_lengths()
        location = self.location(backend, "agentkeep", "big")
        drop_location(backend, location)
        log(f"{backend} scaling: {sessions} sessions, export file")
        source = bigstore.export_file(lengths, self.text_dir, self.workdir)
        log(f"{backend} scaling: agentkeep import")
        build_s = bigstore.load(backend, location, source)
        keys = [f"s{i:06d}" for i in range(0, sessions, 50)]
        # Side by side with the same reads on the W2 store, so the ratio is the stores'.
        # Both warmed whole first: building the big store (an import of ~1 GB) pushes the
        # W2 store out of the OS cache, and the first full run of this check measured
        # that (W2-store reads 4.7 ms against 0.3 ms, a ratio of ×0.07).
        w3 = workloads.interleave({
            "big": workloads.w3("agentkeep", backend, location, sessions, 0, 0, 0,
                                c["w3_reads"], keys=keys, warm_all=True),
            "w2": workloads.w3("agentkeep", backend, self.location(backend, "agentkeep", "w2"),
                               c["w2_sessions"], c["w2_total"], 50, 1000, c["w3_reads"],
                               warm_all=True)})
        drop_location(backend, location)
        return {"sessions": sessions, "build_msgs_per_s": sum(lengths) / build_s,
                "w3_big": w3["big"], "w3_w2": w3["w2"]}


def machine() -> dict:
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where SQLite stores are written (default: a temporary dir)")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="agentkeep-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(args.scale, workdir)
    started = time.time()
    results = {"scale": args.scale, "machine": machine(), "backends": {}}
    try:
        run.prepare()
        for backend in backends:
            results["backends"][backend] = run.backend(backend)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results["minutes"] = (time.time() - started) / 60
    checks = report.targets(results)
    results["targets"] = checks
    print(report.render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(check["ok"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

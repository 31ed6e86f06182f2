#!/usr/bin/env python3
"""What Python costs in loom (issue 22, item 7); results in bench/RESULTS.md.

1. A Python map step over N ints (source.sequence -> @loom.kind f -> sink.count) against a plain Python loop
   calling the same f on the same ints: target <= 2x the loop's time.
2. A C++-only graph (source.sequence -> flow.forward -> flow.forward -> sink.count) run from Python
   (loom.run) against the same graph file run by the CLI (`loom run`): target >= 0.95x the CLI's throughput.
   Both sides count the run's own seconds (the report's; the CLI prints it), so process start and the
   Python import are left out; each pair runs back to back, the median of the per-pair ratios is reported.

    PYTHONPATH=build/python python3 bench/python_bench.py --loom build/bin/loom [--ints 1000000] [--repeat 5]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import loom


@loom.kind("bench.inc")
def inc(x: int) -> int:
    return x + 1


def python_loop(n: int) -> float:
    t0 = time.perf_counter()
    f = inc
    for x in range(n):
        f(x)
    return time.perf_counter() - t0


def map_step(n: int, threads: int) -> "tuple[float, float]":
    """(wall seconds, the Python node's own busy seconds: its handlers, GIL and conversions included)."""
    g = loom.Graph("map_step")
    g.node("src", "source.sequence", count=n) >> g.node("inc", inc) >> g.node("out", "sink.count", expect=n)
    t0 = time.perf_counter()
    report = loom.run(g, threads=threads)
    return time.perf_counter() - t0, report["inc"].busy_ns / 1e9


CPP_GRAPH = """graph: cpp_only
nodes:
  src: {{kind: source.sequence, params: {{count: {n}}}}}
  a: {{kind: flow.forward}}
  b: {{kind: flow.forward}}
  out: {{kind: sink.count, params: {{expect: {n}}}}}
edges:
  - src -> a -> b -> out
"""


def cli_seconds(loom_bin: str, path: str, threads: int) -> float:
    env = dict(os.environ)
    r = subprocess.run([loom_bin, "run", path, "--threads", str(threads)], capture_output=True, text=True, env=env,
                       timeout=600)
    m = re.search(r"ok in ([0-9.]+) s", r.stderr)
    if r.returncode != 0 or not m:
        sys.exit(f"`{loom_bin} run {path}` failed ({r.returncode}):\n{r.stderr}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loom", default="build/bin/loom", help="the CLI to compare with")
    ap.add_argument("--ints", type=int, default=1_000_000)
    ap.add_argument("--messages", type=int, default=10_000_000, help="values through the C++-only graph")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    print(f"python {sys.version.split()[0]}, loom {loom.__version__}, {os.cpu_count()} cores, threads {a.threads}")
    map_step(1000, a.threads)  # warm: the runtime exists before the timings
    ratios, busy_ratios, loops, steps, busy = [], [], [], [], []
    for _ in range(a.repeat):
        lp = python_loop(a.ints)
        ms, b = map_step(a.ints, a.threads)
        loops.append(lp)
        steps.append(ms)
        busy.append(b)
        ratios.append(ms / lp)
        busy_ratios.append(b / lp)
    print(f"\n1. Python map step over {a.ints} ints, median of {a.repeat} pairs")
    print(f"   plain Python loop calling f : {statistics.median(loops):.3f} s "
          f"({a.ints / statistics.median(loops) / 1e6:.2f} M calls/s)")
    print(f"   loom graph with f as a kind : {statistics.median(steps):.3f} s "
          f"({a.ints / statistics.median(steps) / 1e6:.2f} M values/s)")
    print(f"   the kind's node busy        : {statistics.median(busy):.3f} s "
          f"({statistics.median(busy) / a.ints * 1e9:.0f} ns per value: call, GIL, conversions, emit)")
    r = statistics.median(ratios)
    print(f"   loom / loop: {r:.2f}x (target <= 2x: {'met' if r <= 2 else 'NOT met'}); "
          f"node busy / loop: {statistics.median(busy_ratios):.2f}x")

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cpp_only.yaml")
        with open(path, "w") as f:
            f.write(CPP_GRAPH.format(n=a.messages))
        g = loom.load(path)
        ratios, py_s, cli_s = [], [], []
        for _ in range(a.repeat):
            p = loom.run(g, threads=a.threads).seconds
            c = cli_seconds(a.loom, path, a.threads)
            py_s.append(p)
            cli_s.append(c)
            ratios.append(c / p)  # throughput ratio: python / cli = (n/p) / (n/c)
    print(f"\n2. C++-only graph (4 nodes, {a.messages} ints), the run's own seconds, median of {a.repeat} pairs")
    print(f"   loom.run from Python : {statistics.median(py_s):.3f} s ({a.messages / statistics.median(py_s) / 1e6:.1f} M/s)")
    print(f"   loom run (CLI)       : {statistics.median(cli_s):.3f} s ({a.messages / statistics.median(cli_s) / 1e6:.1f} M/s)")
    r = statistics.median(ratios)
    print(f"   Python / CLI throughput: {r:.2f}x (target >= 0.95x: {'met' if r >= 0.95 else 'NOT met'})")


if __name__ == "__main__":
    main()

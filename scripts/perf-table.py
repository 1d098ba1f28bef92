#!/usr/bin/env python3
"""perf-table.py: markdown tables from zkload --json-file reports.

    scripts/perf-table.py /tmp/zkperf/results/*.json          one row per operation per run
    scripts/perf-table.py --samples /tmp/zkperf/results/x.json the over-time samples (soak)

Python standard library only; zkload writes the JSON, this only formats it.
"""
import json
import os
import sys


def rows(path):
    r = json.load(open(path))
    name = os.path.basename(path).removesuffix(".json")
    srv = r.get("server") or {}
    for op, s in sorted(r["ops"].items()):
        yield (name, op, s["count"], s["errors"], s["per_second"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"],
               srv.get("peak_rss_bytes", 0) / 2**20, srv.get("cpu_cores", 0))


def main(args):
    if args and args[0] == "--samples":
        for path in args[1:]:
            r = json.load(open(path))
            print(f"\n{os.path.basename(path)}: {r['operations']} operations, {r['errors']} errors, {r['seconds']:.0f} s\n")
            print("| minute | ops | ops/s | p50 ms | p99 ms | errors | server RSS MiB (end) | peak RSS MiB (in the minute) | server cores |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for s in r["samples"]:
                print(f"| {s['t_s'] / 60:.0f} | {s['ops']} | {s['per_second']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                      f"{s['errors']} | {s['rss_bytes'] / 2**20:.0f} | {s.get('peak_rss_bytes', 0) / 2**20:.0f} | {s['cpu_cores']:.2f} |")
        return
    print("| run | operation | count | errors | per s | p50 ms | p90 ms | p99 ms | max ms | server peak RSS MiB | server cores |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in args:
        for row in rows(path):
            print("| {} | {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.0f} | {:.2f} |".format(*row))


if __name__ == "__main__":
    main(sys.argv[1:])

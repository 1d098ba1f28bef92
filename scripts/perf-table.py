#!/usr/bin/env python3
"""perf-table.py: markdown tables from zkload --json-file reports.

    scripts/perf-table.py /tmp/zkperf/results/*.json          one row per operation per run
    scripts/perf-table.py --samples /tmp/zkperf/results/x.json the over-time samples (soak)
    scripts/perf-table.py --growth DIR ENGINE SET... [--runs 1,2]
                                                              one row per operation, one column per data set
                                                              (DIR/ENGINE-SET-MIX-RUN.json, e.g. SET 10000-r2)

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


GROWTH_OPS = [("read-patient", "read", "read a Patient (read mix)"),
              ("search-observation", "read", "search a patient's Observations (read mix)"),
              ("create-observation", "write", "create an Observation (write mix)"),
              ("update-observation", "write", "update an Observation (write mix)"),
              ("person-log", "log", "a person reads their access log (log mix)"),
              ("read-patient", "mixed", "read a Patient (mixed)"),
              ("person-log", "mixed", "a person reads their access log (mixed)"),
              ("logon", "mixed", "two-factor log-on (mixed)")]


def growth(d, engine, sets, runs):
    """Each cell: p50 / p99 of the operation, the whole mix's throughput and
    the server's CPU per request of the mix (cores ÷ requests per second)."""
    print(f"\n**{engine}** — each cell: p50 / p99, the whole mix's throughput, server CPU per request\n")
    print("| operation | run | " + " | ".join(sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for op, mix, label in GROWTH_OPS:
        for run in runs:
            cells, seen = [], False
            for ds in sets:
                path = os.path.join(d, f"{engine}-{ds}-{mix}-{run}.json")
                if not os.path.exists(path):
                    cells.append("—")
                    continue
                r = json.load(open(path))
                s = r["ops"].get(op)
                if not s:
                    cells.append("—")
                    continue
                seen = True
                cpu = r["server"].get("cpu_cores", 0) / max(r["per_second"], 1e-9) * 1000
                cells.append(f"{s['p50_ms']:.1f} / {s['p99_ms']:.0f} ms, {r['per_second']:.0f}/s, {cpu:.2f} ms CPU"
                             + (f", **{s['errors']} errors**" if s["errors"] else ""))
            if seen:
                print(f"| {label} | {run} | " + " | ".join(cells) + " |")


def main(args):
    if args and args[0] == "--growth":
        runs = ["1"]
        if "--runs" in args:
            i = args.index("--runs")
            runs = args[i + 1].split(",")
            args = args[:i] + args[i + 2:]
        growth(args[1], args[2], args[3:], runs)
        return
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

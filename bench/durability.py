"""Side by side: Switchyard with `store.durability = "before_answer"` (the default: an answer
waits for the commit of its records) and `"batched"` (answers first), in front of the same fast
upstream, measured in alternating rounds with the same load generator; prints the medians of
throughput, latency and the server's CPU time per request. Run after `bench/run` has built the
binaries (or pass their paths):

    python3 bench/durability.py [--rounds 5] [--duration 5]
"""

import argparse
import atexit
import json
import pathlib
import shutil
import signal
import statistics
import tempfile

import bench

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODES = ("before_answer", "batched")
# (row name, streamed, requests a second or None for saturation)
ROWS = (("json max", False, None), ("json 1000", False, 1000),
        ("sse max", True, None), ("sse 1000", True, 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchyard", default=str(ROOT / "target/release/switchyard"))
    ap.add_argument("--upstream", default=str(ROOT / "target/release/bench-upstream"))
    ap.add_argument("--oha", default=str(ROOT / "target/bench-tools/bin/oha"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--json", help="also write the medians and every round here")
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    atexit.register(bench.stop_all)

    fast = bench.Proc("bench-upstream (fast)", [args.upstream], address=True)
    targets = {}
    for mode in MODES:
        tmp = tempfile.mkdtemp(prefix=f"switchyard-durability-{mode}-")
        atexit.register(shutil.rmtree, tmp, True)
        cli, env, key = bench.switchyard_setup(args.switchyard, tmp, {"fast": fast.address})
        env["SWITCHYARD__STORE__DURABILITY"] = mode
        proc = bench.Proc(f"switchyard ({mode})", cli + ["serve"], env=env, address=True)
        targets[mode] = bench.Target(mode, proc, proc.address, key)
    for t in targets.values():
        for stream in (False, True):
            bench.check(t, "fast", stream)
            url, body, headers = t.request("fast", stream)
            bench.oha(args.oha, url, body, headers, 8, requests=500)

    fields = ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_us")
    runs = {(row, mode): {f: [] for f in fields} for row, _, _ in ROWS for mode in MODES}
    for i in range(args.rounds):
        # Alternate which mode goes first, so that neither always runs on a warmer machine.
        order = MODES if i % 2 == 0 else tuple(reversed(MODES))
        for row, stream, rate in ROWS:
            for mode in order:
                t = targets[mode]
                url, body, headers = t.request("fast", stream)
                conns = 32 if rate is None else max(8, rate // 10)
                cpu_before = bench.cpu_s(t.proc.pid)
                r = bench.oha(args.oha, url, body, headers, conns, duration=args.duration, rate=rate)
                cpu = bench.cpu_s(t.proc.pid) - cpu_before
                done = r["requests"] * r["success"]
                r["cpu_us"] = cpu * 1e6 / done if done else float("nan")
                for f in fields:
                    runs[(row, mode)][f].append(r[f])
                bench.log(f"  round {i + 1} {row:<9} {mode:<13} {r['rps']:>7.0f} req/s "
                          f"p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms "
                          f"{r['cpu_us']:.0f} µs CPU, {r['success'] * 100:.1f}% ok")

    print(f"\nmedians of {args.rounds} alternating rounds of {args.duration} s "
          f"(saturation: 32 connections; 1000 req/s: 100 connections)")
    print(f"{'row':<10} {'durability':<14} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'CPU µs':>7}")
    medians = {}
    for row, _, _ in ROWS:
        for mode in MODES:
            med = {f: statistics.median(v) for f, v in runs[(row, mode)].items()}
            medians[f"{row} {mode}"] = med
            print(f"{row:<10} {mode:<14} {med['rps']:>8.0f} {med['p50_ms']:>8.3f} "
                  f"{med['p90_ms']:>8.3f} {med['p99_ms']:>8.3f} {med['cpu_us']:>7.0f}")
        print()
    if args.json:
        rounds = {f"{row} {mode}": v for (row, mode), v in runs.items()}
        pathlib.Path(args.json).write_text(
            json.dumps({"medians": medians, "rounds": rounds}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Side by side: two (or more) Switchyard binaries in front of the same fast upstream, each
restarted with a fresh store for every round, rounds alternating, the same oha load for all;
prints the medians of throughput, latency and the server's CPU time per request. This is how a
change is measured against the build before it:

    cp target/release/switchyard /tmp/before    # build, copy, change, build again, then
    python3 bench/ab.py /tmp/before target/release/switchyard \
        [--mode json|sse] [--rate 1000|max] [--rounds 5] [--duration 10] [--telemetry off|on|both]

`--telemetry both` measures each binary twice a round, tracing off and on (every request sampled,
exported over OTLP/HTTP to a local sink that discards the spans): the cost of tracing.
"""

import argparse
import atexit
import os
import pathlib
import shutil
import signal
import statistics
import tempfile

import bench

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binaries", nargs="+", help="switchyard binaries to compare")
    ap.add_argument("--upstream", default=str(ROOT / "target/release/bench-upstream"))
    ap.add_argument("--oha", default=str(ROOT / "target/bench-tools/bin/oha"))
    ap.add_argument("--mode", choices=("json", "sse"), default="json")
    ap.add_argument("--rate", default="1000", help="requests a second, or max (32 connections)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--telemetry", choices=("off", "on", "both"), default="off",
                    help="OpenTelemetry tracing of every request, to a discarding local sink")
    args = ap.parse_args()
    rate = None if args.rate == "max" else int(args.rate)
    stream = args.mode == "sse"
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    atexit.register(bench.stop_all)
    fast = bench.Proc("bench-upstream (fast)", [args.upstream], address=True)

    sink = bench.TraceSink() if args.telemetry != "off" else None
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.telemetry]
    variants = [(f"{i + 1}:{os.path.basename(b)}" + ("+otel" if traced else ""), b, traced)
                for i, b in enumerate(args.binaries) for traced in modes]
    names = [name for name, _, _ in variants]
    rows = {n: {"rps": [], "p50_ms": [], "p90_ms": [], "p99_ms": [], "cpu_us": []} for n in names}
    for _ in range(args.rounds):
        for name, binary, traced in variants:
            tmp = tempfile.mkdtemp(prefix="switchyard-ab-")
            cli, env, key = bench.switchyard_setup(binary, tmp, {"fast": fast.address})
            if traced:
                env = bench.with_telemetry(env, sink)
            proc = bench.Proc(f"switchyard ({name})", cli + ["serve"], env=env, address=True)
            target = bench.Target(name, proc, proc.address, key)
            bench.check(target, "fast", stream)
            url, body, headers = target.request("fast", stream)
            bench.oha(args.oha, url, body, headers, 8, requests=500)
            conns = 32 if rate is None else max(8, rate // 10)
            cpu_before = bench.cpu_s(proc.pid)
            r = bench.oha(args.oha, url, body, headers, conns, duration=args.duration, rate=rate)
            cpu = bench.cpu_s(proc.pid) - cpu_before
            proc.stop()
            shutil.rmtree(tmp, True)
            done = r["requests"] * r["success"]
            for k in ("rps", "p50_ms", "p90_ms", "p99_ms"):
                rows[name][k].append(r[k])
            rows[name]["cpu_us"].append(cpu * 1e6 / done if done else float("nan"))
            bench.log(f"  {name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.3f} ms, "
                      f"p99 {r['p99_ms']:.3f} ms, {rows[name]['cpu_us'][-1]:.0f} µs CPU a request")
    print(f"\n{args.mode} at {args.rate} req/s, medians of {args.rounds} alternating rounds "
          f"of {args.duration} s")
    if sink is not None:
        print(f"trace sink: {sink.stats()}")
    print(f"{'binary':<28} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'CPU µs':>7}")
    for name, r in rows.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        print(f"{name:<28} {med['rps']:>8.0f} {med['p50_ms']:>8.3f} {med['p90_ms']:>8.3f} "
              f"{med['p99_ms']:>8.3f} {med['cpu_us']:>7.0f}")


if __name__ == "__main__":
    main()

"""Side by side: Switchyard with credit holds in memory and with holds in the database, in front
of the same fast upstream, measured in alternating rounds with the same load generator; prints
the medians. Run after `bench/run` has built the binaries (or pass their paths):

    python3 bench/holds.py [--rounds 3] [--duration 5]
"""

import argparse
import atexit
import pathlib
import shutil
import signal
import statistics
import tempfile

import bench

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchyard", default=str(ROOT / "target/release/switchyard"))
    ap.add_argument("--upstream", default=str(ROOT / "target/release/bench-upstream"))
    ap.add_argument("--oha", default=str(ROOT / "target/bench-tools/bin/oha"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    atexit.register(bench.stop_all)

    fast = bench.Proc("bench-upstream (fast)", [args.upstream], address=True)
    targets = {"direct": bench.Target("direct", fast, {"fast": fast.address})}
    for mode in ("memory", "database"):
        tmp = tempfile.mkdtemp(prefix=f"switchyard-holds-{mode}-")
        atexit.register(shutil.rmtree, tmp, True)
        cli, env, key = bench.switchyard_setup(args.switchyard, tmp, {"fast": fast.address})
        env["SWITCHYARD__STORE__HOLDS"] = mode
        proc = bench.Proc(f"switchyard ({mode} holds)", cli + ["serve"], env=env, address=True)
        targets[mode] = bench.Target(mode, proc, proc.address, key)
    for t in targets.values():
        bench.check(t, "fast", False)
        url, body, headers = t.request("fast", False)
        bench.oha(args.oha, url, body, headers, 8, requests=500)

    rows = {name: {"rps_max": [], "p50_ms_1000": [], "p99_ms_1000": []} for name in targets}
    for _ in range(args.rounds):
        for name, t in targets.items():
            url, body, headers = t.request("fast", False)
            r = bench.oha(args.oha, url, body, headers, 32, duration=args.duration)
            rows[name]["rps_max"].append(r["rps"])
            r = bench.oha(args.oha, url, body, headers, 100, duration=args.duration, rate=1000)
            rows[name]["p50_ms_1000"].append(r["p50_ms"])
            rows[name]["p99_ms_1000"].append(r["p99_ms"])
    print(f"{'target':<10} {'req/s max':>10} {'p50 ms @1000':>13} {'p99 ms @1000':>13}")
    for name, r in rows.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        print(f"{name:<10} {med['rps_max']:>10.0f} {med['p50_ms_1000']:>13.3f} "
              f"{med['p99_ms_1000']:>13.3f}")


if __name__ == "__main__":
    main()

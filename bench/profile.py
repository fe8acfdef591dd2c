"""Profiles Switchyard at saturation: the fast upstream, Switchyard in front of it (set up as in
bench/bench.py), oha at 32 connections, and `perf record` on Switchyard meanwhile. Prints the
hottest symbols (self time) and writes perf.data for `perf report` or a flamegraph.

    python3 bench/profile.py --switchyard target/release/switchyard \
        --upstream target/release/bench-upstream --oha target/bench-tools/bin/oha [--sse]
"""

import argparse
import atexit
import shutil
import signal
import subprocess
import sys
import tempfile

import bench


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--sse", action="store_true", help="streamed requests")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", default="perf.data")
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    tmp = tempfile.mkdtemp(prefix="switchyard-profile-")
    atexit.register(shutil.rmtree, tmp, True)
    atexit.register(bench.stop_all)

    fast = bench.Proc("bench-upstream (fast)", [args.upstream], address=True)
    cli, env, key = bench.switchyard_setup(args.switchyard, tmp, {"fast": fast.address})
    sy = bench.Proc("switchyard", cli + ["serve"], env=env, address=True)
    target = bench.Target("switchyard", sy, sy.address, key)
    bench.check(target, "fast", args.sse)
    url, body, headers = target.request("fast", args.sse)
    bench.oha(args.oha, url, body, headers, 8, requests=500)

    perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "--call-graph", "dwarf,16384",
                             "-o", args.out, "-p", str(sy.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = bench.oha(args.oha, url, body, headers, args.connections, duration=args.duration)
    perf.send_signal(signal.SIGINT)
    perf.wait()
    print(f"{'sse' if args.sse else 'json'} at {args.connections} connections: "
          f"{r['rps']:.0f} req/s, p50 {r['p50_ms']} ms, ok {r['success'] * 100:.1f} %")
    report = subprocess.run(["perf", "report", "-i", args.out, "--no-children", "--stdio",
                             "--percent-limit", "0.7", "-g", "none", "--sort", "dso,symbol"],
                            capture_output=True, text=True)
    sys.stdout.write("\n".join(line for line in report.stdout.splitlines()
                               if line and not line.startswith("#")) + "\n")


if __name__ == "__main__":
    main()

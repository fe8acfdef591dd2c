"""Instructions a request: each Switchyard binary run under Valgrind's callgrind in front of the
fast upstream (set up as in bench/bench.py) twice: warmed up and stopped, then warmed up, N
requests and stopped; the difference over N is a request's. Instruction
counts do not depend on what else the machine is doing, so two builds can be compared on a busy
machine where CPU time cannot; they are not time (cache misses, syscalls and the kernel's work are
not in them), so a change is still kept or dropped on bench/ab.py's figures.

    python3 bench/instructions.py /tmp/before target/release/switchyard \
        [--requests 2000] [--sse] [--top 40] [--store durability=batched]

`--store KEY=VALUE` adds a line to every binary's `[store]` section; a binary given as
`PATH,KEY=VALUE` gets it alone (an older build may not know a newer key). Writes one
callgrind.out per binary into --out-dir for `callgrind_annotate`, and prints the functions whose
inclusive count a request differs most between the first binary and each other one.
"""

import argparse
import atexit
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile

import bench

ROOT = pathlib.Path(__file__).resolve().parent.parent


def toml_line(kv):
    """`key=value` as a TOML line: the value quoted unless it is a number or a boolean."""
    k, v = kv.split("=", 1)
    if v not in ("true", "false") and not v.replace(".", "", 1).isdigit():
        v = '"' + v.replace('"', '\\"') + '"'
    return f"{k} = {v}"


def total_ir(path):
    for line in pathlib.Path(path).read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def inclusive(path):
    """Function -> inclusive instruction count, from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    counts = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(?:\S+:)?(.+?)(?:\s+\[.*\])?$", line)
        if m:
            name = m.group(2).strip()
            counts[name] = max(counts.get(name, 0), int(m.group(1).replace(",", "")))
    return counts


def run_once(binary, extra, args, requests, out):
    """Total instructions of a gateway's whole life (start, warm-up, `requests`, stop)."""
    tmp = tempfile.mkdtemp(prefix="switchyard-instr-")
    try:
        fast = bench.Proc("bench-upstream (fast)", [args.upstream], address=True)
        cli, env, key = bench.switchyard_setup(binary, tmp, {"fast": fast.address})
        if extra:
            config = pathlib.Path(cli[2])
            text = config.read_text().replace("[store]\n", "[store]\n" + "\n".join(extra) + "\n")
            config.write_text(text)
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cli + ["serve"]
        sy = bench.Proc(f"switchyard under callgrind ({binary})", cmd, env=env, address=True,
                        deadline=300.0)
        target = bench.Target(binary, sy, sy.address, key)
        bench.check(target, "fast", args.sse)
        url, body, headers = target.request("fast", args.sse)
        bench.oha(args.oha, url, body, headers, 4, requests=args.warmup)
        if requests:
            r = bench.oha(args.oha, url, body, headers, 4, requests=requests)
            if r["requests"] * r["success"] < requests:
                raise RuntimeError(f"{binary}: {r['requests'] * r['success']:.0f} of {requests} "
                                   f"requests succeeded")
        sy.stop(timeout=300)
        fast.stop()
        return total_ir(out)
    finally:
        shutil.rmtree(tmp, True)


def measure(binary, extra, args, out):
    """Instructions a request: the difference between a life with N more requests and one
    without them, so that start, warm-up and stop cancel out."""
    base = run_once(binary, extra, args, 0, out + ".base")
    full = run_once(binary, extra, args, args.requests, out)
    return (full - base) / args.requests, out + ".base"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--upstream", default=str(ROOT / "target/release/bench-upstream"))
    ap.add_argument("--oha", default=str(ROOT / "target/bench-tools/bin/oha"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--sse", action="store_true", help="streamed requests")
    ap.add_argument("--store", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out-dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    atexit.register(bench.stop_all)

    results = []
    for i, spec in enumerate(args.binaries):
        binary, *own = spec.split(",")
        extra = [toml_line(kv) for kv in args.store + own]
        out = os.path.join(args.out_dir, f"callgrind.out.{i + 1}")
        per, base_out = measure(binary, extra, args, out)
        results.append((f"{i + 1}:{binary}", per, out, base_out))
        print(f"{i + 1}:{binary}: {per:,.0f} instructions a request "
              f"({'sse' if args.sse else 'json'}, {args.requests} requests)", flush=True)
    def per_request(out, base_out):
        full, base = inclusive(out), inclusive(base_out)
        return {f: (full.get(f, 0) - base.get(f, 0)) / args.requests for f in full}

    base_name, base, first_out, first_base = results[0]
    first = per_request(first_out, first_base)
    for name, per, out, base_out in results[1:]:
        print(f"\n{name} against {base_name}: {per / base:.3f}x ({per - base:+,.0f} a request)")
        fns = per_request(out, base_out)
        diffs = [(fns.get(f, 0) - first.get(f, 0), f) for f in set(fns) | set(first)]
        print("  largest changes of inclusive instructions a request:")
        for d, f in sorted(diffs, key=lambda t: -abs(t[0]))[: args.top]:
            print(f"  {d:+12,.0f}  {f[:150]}")


if __name__ == "__main__":
    main()

"""Benchmark orchestration (standard library only).

Starts a fast upstream and a delayed one (bench-upstream), nginx as a bare pass-through proxy,
and Switchyard with auth, routing, metering, the ledger and the audit log on; then measures each
with oha at fixed rates and at saturation, non-streamed and streamed, side by side in one run.
Prints one table and writes it as JSON under bench/results/.
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROCS = []


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def start(cmd, env=None, address_from=None):
    """Starts a process; with address_from ('stdout' or 'stderr'), returns its address= value."""
    stdout = subprocess.PIPE if address_from == "stdout" else subprocess.DEVNULL
    stderr = subprocess.PIPE if address_from == "stderr" else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, text=True)
    PROCS.append(proc)
    if not address_from:
        return proc, None
    stream = proc.stdout if address_from == "stdout" else proc.stderr
    address = None
    deadline = time.monotonic() + 60
    for line in stream:
        if "address=" in line:
            address = line.split("address=", 1)[1].split()[0]
            break
        if time.monotonic() > deadline:
            break
    if not address:
        raise RuntimeError(f"{cmd[0]} did not report its address")
    # Keep draining so the process never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
    return proc, address


def stop_all():
    for p in reversed(PROCS):
        if p.poll() is None:
            p.terminate()
    for p in PROCS:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def proc_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid):
    """The process and its children (nginx workers)."""
    pids = [pid]
    try:
        for child in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.extend(tree_pids(int(child)))
    except OSError:
        pass
    return pids


def rss_mb(pid, field="VmRSS"):
    return sum(proc_kb(p, field) for p in tree_pids(pid)) / 1024.0


def nginx_conf(tmp, port, upstream_port):
    conf = f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def switchyard_setup(binary, tmp, fast, slow):
    catalog = f"""
[[providers]]
slug = "fast"
name = "Fast"
kind = "openai"
base_url = "http://{fast}/v1"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[providers]]
slug = "slow"
name = "Slow"
kind = "openai"
base_url = "http://{slow}/v1"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[models]]
id = "bench/fast"
name = "Bench: fast"
context_length = 32000

[[models.endpoints]]
provider = "fast"
upstream_model = "bench"
max_completion_tokens = 64
pricing = {{ prompt = "0.000001", completion = "0.000002" }}

[[models]]
id = "bench/slow"
name = "Bench: slow"
context_length = 32000

[[models.endpoints]]
provider = "slow"
upstream_model = "bench"
max_completion_tokens = 64
pricing = {{ prompt = "0.000001", completion = "0.000002" }}
"""
    with open(os.path.join(tmp, "catalog.toml"), "w") as f:
        f.write(catalog)
    config = os.path.join(tmp, "switchyard.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:0"\nkeepalive_secs = 30\nupstream_timeout_secs = 600\n'
                f'stream_idle_timeout_secs = 600\n[store]\nurl = "sqlite://{tmp}/bench.db"\n'
                f'[catalog]\npath = "{tmp}/catalog.toml"\n')
    env = dict(os.environ, NO_COLOR="1", SWITCHYARD_LOG="warn,switchyard_server=warn",
               SWITCHYARD_AUDIT_KEY="bench-audit-key")
    cli = [binary, "--config", config]
    subprocess.run(cli + ["credits", "add", "1000000"], check=True, env=env, capture_output=True)
    key = subprocess.run(cli + ["keys", "create", "--name", "bench"], check=True, env=env,
                         capture_output=True, text=True).stdout.strip()
    return cli, env, key


def oha(binary, url, body, headers, duration, rate, connections, requests=None):
    cmd = [binary, "--no-tui", "--output-format", "json", "-m", "POST", "-d", body,
           "-c", str(connections), "-H", "content-type: application/json"]
    for h in headers:
        cmd += ["-H", h]
    if requests:
        cmd += ["-n", str(requests)]
    else:
        cmd += ["-z", f"{duration}s"]
    if rate:
        cmd += ["-q", str(rate)]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed: {out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    summary = data.get("summary", {})
    pct = data.get("latencyPercentiles", {})
    codes = data.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
    total = sum(codes.values()) or 1
    ms = lambda v: None if v is None else v * 1000.0
    return {
        "rps": summary.get("requestsPerSec"),
        "p50_ms": ms(pct.get("p50")),
        "p90_ms": ms(pct.get("p90")),
        "p99_ms": ms(pct.get("p99")),
        "success": ok / total,
        "requests": total,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--quick", action="store_true", help="seconds, not minutes (CI)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--streams", type=int, default=2000, help="open streams in the memory run")
    args = ap.parse_args()
    duration = 2 if args.quick else args.duration
    rates = [100] if args.quick else [100, 1000]
    streams = 100 if args.quick else args.streams

    tmp = tempfile.mkdtemp(prefix="switchyard-bench-")
    results = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "quick": args.quick, "duration_s": duration, "cpus": os.cpu_count(), "runs": []}
    try:
        fast_proc, fast = start([args.upstream], address_from="stdout")
        slow_proc, slow = start([args.upstream, "--delay-ms", "20"], address_from="stdout")
        stream_proc, stream_addr = start([args.upstream, "--chunks", str(20), "--chunk-interval-ms",
                                          "500"], address_from="stdout")
        targets = {"direct": f"http://{fast}"}
        procs = {"direct": fast_proc}

        nginx_ok = os.path.exists(args.nginx)
        if nginx_ok:
            port = free_port()
            conf = nginx_conf(tmp, port, int(fast.split(":")[1]))
            nginx_proc, _ = start([args.nginx, "-c", conf, "-p", tmp])
            wait_port(port)
            targets["nginx"] = f"http://127.0.0.1:{port}"
            procs["nginx"] = nginx_proc
        else:
            log("nginx not found: skipping the pass-through baseline")

        cli, env, key = switchyard_setup(args.switchyard, tmp, fast, slow)
        sy_proc, sy_addr = start(cli + ["serve"], env=env, address_from="stderr")
        targets["switchyard"] = f"http://{sy_addr}"
        procs["switchyard"] = sy_proc
        time.sleep(0.2)
        results["idle_rss_mb"] = {name: round(rss_mb(p.pid), 1) for name, p in procs.items()}

        def url_and_headers(name, model="bench/fast"):
            if name == "switchyard":
                return (targets[name] + "/api/v1/chat/completions", [f"authorization: Bearer {key}"], model)
            return (targets[name] + "/v1/chat/completions", [], model)

        for mode in ["json", "sse"]:
            for rate in rates + [None]:
                for name in targets:
                    url, headers, model = url_and_headers(name)
                    body = json.dumps({"model": model, "stream": mode == "sse", "max_tokens": 32,
                                       "messages": [{"role": "user", "content": "Say hello."}]})
                    conns = 32 if rate is None else max(4, (rate or 100) // 50)
                    log(f"{name:<10} {mode:<4} rate={rate or 'max'}")
                    r = oha(args.oha, url, body, headers, duration, rate, conns)
                    r.update({"target": name, "mode": mode, "rate": rate or "max"})
                    results["runs"].append(r)

        # Added latency measured honestly: behind a 20 ms upstream, at a modest fixed rate.
        for name in ["direct", "switchyard"]:
            if name == "direct":
                url, headers = f"http://{slow}/v1/chat/completions", []
            else:
                url, headers, _ = url_and_headers(name, "bench/slow")
            body = json.dumps({"model": "bench/slow", "max_tokens": 32,
                               "messages": [{"role": "user", "content": "Say hello."}]})
            r = oha(args.oha, url, body, headers, duration, 100, 8)
            r.update({"target": name, "mode": "json-20ms-upstream", "rate": 100})
            results["runs"].append(r)

        results["peak_rss_mb"] = {name: round(rss_mb(p.pid, "VmHWM"), 1) for name, p in procs.items()}

        # Memory: many slow streams held open through Switchyard at once.
        sy_proc.terminate()
        sy_proc.wait(timeout=30)
        with open(os.path.join(tmp, "catalog.toml")) as f:
            text = f.read().replace(f"http://{slow}/v1", f"http://{stream_addr}/v1")
        with open(os.path.join(tmp, "catalog.toml"), "w") as f:
            f.write(text)
        sy_proc, sy_addr = start(cli + ["serve"], env=env, address_from="stderr")
        time.sleep(0.2)
        idle = rss_mb(sy_proc.pid)
        peak = [idle]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(sy_proc.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        body = json.dumps({"model": "bench/slow", "stream": True, "max_tokens": 32,
                           "messages": [{"role": "user", "content": "Say hello."}]})
        r = oha(args.oha, f"http://{sy_addr}/api/v1/chat/completions", body,
                [f"authorization: Bearer {key}"], None, None, streams, requests=streams)
        done.set()
        sampler.join()
        results["memory"] = {"open_streams": streams, "idle_rss_mb": round(idle, 1),
                             "peak_rss_mb": round(peak[0], 1), "success": r["success"],
                             "p50_ms": r["p50_ms"]}
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    report(results)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["when"].replace(":", "").replace("+0000", "Z")
    if not args.quick:
        (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / ("latest-quick.json" if args.quick else "latest.json")).write_text(
        json.dumps(results, indent=2) + "\n")


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def report(results):
    runs = results["runs"]
    by = {(r["target"], r["mode"], r["rate"]): r for r in runs}
    print(f"\nSwitchyard benchmark, {results['when']} ({results['cpus']} CPUs, {results['duration_s']} s per run)")
    print(f"{'mode':<19} {'rate':>5} {'target':<10} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'+p50 ms':>8} {'+p99 ms':>8} {'ok':>6} {'rps/nginx':>9}")
    for r in runs:
        direct = by.get(("direct", r["mode"], r["rate"]))
        nginx = by.get(("nginx", r["mode"], r["rate"]))
        added50 = added99 = None
        if direct and r["target"] != "direct" and r["p50_ms"] is not None and direct["p50_ms"] is not None:
            added50 = r["p50_ms"] - direct["p50_ms"]
            added99 = r["p99_ms"] - direct["p99_ms"]
        ratio = (r["rps"] / nginx["rps"]) if nginx and nginx.get("rps") and r.get("rps") else None
        print(f"{r['mode']:<19} {str(r['rate']):>5} {r['target']:<10} {fmt(r['rps'], 0):>9} {fmt(r['p50_ms'], 3):>8} "
              f"{fmt(r['p90_ms'], 3):>8} {fmt(r['p99_ms'], 3):>8} {fmt(added50, 3):>8} {fmt(added99, 3):>8} "
              f"{r['success'] * 100:>5.1f}% {fmt(ratio):>9}")
    print("\nresident memory (MB): idle", results.get("idle_rss_mb"), " peak", results.get("peak_rss_mb"))
    m = results.get("memory")
    if m:
        print(f"{m['open_streams']} open streams through Switchyard: idle {m['idle_rss_mb']} MB, "
              f"peak {m['peak_rss_mb']} MB, {m['success'] * 100:.1f}% completed")


if __name__ == "__main__":
    main()

"""Benchmark orchestration (Python standard library only).

Starts three bench-upstream servers (fast; 20 ms delay; slow streams), nginx as a bare
pass-through proxy in front of the first two, bench-proxy (the thinnest proxy of Switchyard's own
HTTP stack: axum, reqwest, tokio) in front of the same two, and Switchyard with auth, routing,
metering, the ledger and the audit log on, in front of the same upstreams. Then measures every target with the
same load generator (oha), interleaved, non-streamed and streamed, at fixed rates and at
saturation; and holds many slow streams open through Switchyard to measure its memory.

Prints one table and writes the results as JSON under bench/results/. See docs/performance.md.
"""

import argparse
import atexit
import collections
import datetime
import http.server
import json
import os
import pathlib
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROCS = []
DELAY_MS = 20  # the delayed upstream: what a proxy adds is measured against a realistic wait
PROMPT = [{"role": "user", "content": "Say hello."}]


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------------


class Proc:
    """A child process whose output is drained by a thread (the last lines kept for errors)."""

    def __init__(self, name, cmd, env=None, address=False, deadline=60.0):
        self.name = name
        self.tail = collections.deque(maxlen=40)
        self.popen = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        PROCS.append(self)
        lines = queue.Queue()

        def drain():
            for line in self.popen.stdout:
                self.tail.append(line.rstrip())
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        self.address = None
        if address:
            self.address = self._await_address(lines, deadline)

    @property
    def pid(self):
        return self.popen.pid

    def _await_address(self, lines, deadline):
        """The first `address=HOST:PORT` the process prints, within the deadline."""
        end = time.monotonic() + deadline
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.fail("did not report its address in time")
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.fail("exited before reporting its address")
            if "address=" in line:
                return line.split("address=", 1)[1].split()[0].strip('"')

    def fail(self, why):
        raise RuntimeError(f"{self.name} {why}; its last output:\n  " + "\n  ".join(self.tail))

    def stop(self, timeout=30):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self in PROCS:
            PROCS.remove(self)


def stop_all():
    for p in reversed(list(PROCS)):
        p.stop(timeout=10)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.popen.poll() is not None:
            proc.fail("exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.01)
    proc.fail(f"did not listen on port {port} in time")


# --- memory ------------------------------------------------------------------------------------


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
    """The process and its descendants (nginx's workers)."""
    pids = [pid]
    try:
        for child in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.extend(tree_pids(int(child)))
    except OSError:
        pass
    return pids


def mem_mb(pid, field="VmRSS"):
    """VmRSS (now) or VmHWM (peak) of a process tree, in MiB."""
    return sum(proc_kb(p, field) for p in tree_pids(pid)) / 1024.0


def cpu_s(pid):
    """User plus system CPU seconds of a process tree (all threads), so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree_pids(pid):
        try:
            # The fields after the command name (which may hold spaces) start at the state.
            fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def open_sockets(pid):
    n = 0
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(fd.path).startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


class Sampler:
    """Samples a process tree's VmRSS every 50 ms (with its open sockets: every 200 ms)."""

    def __init__(self, pid, sockets=False):
        self.pid, self.sockets = pid, sockets
        self.peak_rss = 0.0
        self.max_sockets, self.rss_at_max_sockets = 0, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._done.is_set():
            rss = mem_mb(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
            if self.sockets:
                n = open_sockets(self.pid)
                if n >= self.max_sockets:
                    self.max_sockets, self.rss_at_max_sockets = n, rss
            self._done.wait(0.2 if self.sockets else 0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


# --- the servers -------------------------------------------------------------------------------


def start_nginx(binary, tmp, upstreams):
    """nginx in front of each upstream (name -> host:port), run as the current user from a
    private prefix; returns the process and name -> its address."""
    ports = {name: free_port() for name in upstreams}
    blocks = []
    for name, address in upstreams.items():
        blocks.append(f"""
  upstream {name} {{ server {address}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{ports[name]};
    location / {{
      proxy_pass http://{name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}""")
    # As root, nginx would hand its workers to `nobody`: keep them with the current user.
    user = f"user {pwd_name()};\n" if os.geteuid() == 0 else ""
    conf = f"""{user}worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;{"".join(blocks)}
}}
"""
    path = os.path.join(tmp, "nginx.conf")
    pathlib.Path(path).write_text(conf)
    proc = Proc("nginx", [binary, "-p", tmp, "-c", path, "-e", f"{tmp}/nginx-error.log"])
    for port in ports.values():
        wait_port(port, proc)
    return proc, {name: f"127.0.0.1:{port}" for name, port in ports.items()}


class TraceSink:
    """A stand-in OTLP/HTTP collector for `--telemetry`: accepts every export (POST /v1/traces)
    and discards it, counting exports and bytes. It runs in this process, so its work is not
    counted in the server's CPU time."""

    def __init__(self):
        sink = self
        self.exports = 0
        self.bytes = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                with sink.lock:
                    sink.exports += 1
                    sink.bytes += n
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def stats(self):
        with self.lock:
            return {"exports": self.exports, "bytes": self.bytes}


def with_telemetry(env, sink):
    """Switchyard's environment with tracing on, every request sampled, exported to `sink`."""
    return dict(env, SWITCHYARD__TELEMETRY__ENABLED="true",
                SWITCHYARD__TELEMETRY__ENDPOINT=sink.url,
                SWITCHYARD__TELEMETRY__SAMPLING_RATIO="1.0")


def pwd_name():
    import pwd  # Unix only, like the rest of this script

    return pwd.getpwuid(os.geteuid()).pw_name


LITELLM_KEY = "sk-bench-litellm"


def start_litellm(command, tmp, upstreams):
    """LiteLLM's proxy, one worker, no database, with a master key (so requests are
    authenticated, as Switchyard's are) and one model per upstream (bench/NAME, OpenAI-compatible,
    priced like Switchyard's). The peer most used as a self-hosted LLM gateway."""
    models = "".join(f"""
  - model_name: bench/{name}
    litellm_params:
      model: openai/bench
      api_base: http://{address}/v1
      api_key: bench
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
""" for name, address in upstreams.items())
    config = os.path.join(tmp, "litellm.yaml")
    pathlib.Path(config).write_text(
        f"model_list:{models}general_settings:\n  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n  drop_params: true\n  telemetry: false\n")
    port = free_port()
    env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False",
               LITELLM_LOCAL_MODEL_COST_MAP="True", NO_DOCS="True", DISABLE_SCHEMA_UPDATE="True")
    proc = Proc("litellm", [command, "--config", config, "--host", "127.0.0.1", "--port", str(port),
                            "--num_workers", "1"], env=env)
    wait_port(port, proc, deadline=180.0)
    return Target("litellm", proc, f"127.0.0.1:{port}", LITELLM_KEY, path="/v1/chat/completions")


def switchyard_setup(binary, tmp, upstreams, store_url=None):
    """A temp catalogue with one model per upstream (bench/NAME), a temp SQLite store (or
    `store_url`), a key and credits. Returns the command prefix, the environment and the key."""
    store_url = store_url or f"sqlite://{tmp}/bench.db"
    parts = []
    for name, address in upstreams.items():
        parts.append(f"""
[[providers]]
slug = "{name}"
name = "Bench {name}"
kind = "openai"
base_url = "http://{address}/v1"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[models]]
id = "bench/{name}"
name = "Bench: {name}"
context_length = 32000

[[models.endpoints]]
provider = "{name}"
upstream_model = "bench"
max_completion_tokens = 64
pricing = {{ prompt = "0.000001", completion = "0.000002" }}
""")
    pathlib.Path(tmp, "catalog.toml").write_text("".join(parts))
    config = os.path.join(tmp, "switchyard.toml")
    pathlib.Path(config).write_text(
        '[server]\nlisten = "127.0.0.1:0"\nkeepalive_secs = 30\nupstream_timeout_secs = 600\n'
        f'stream_idle_timeout_secs = 600\n[store]\nurl = "{store_url}"\n'
        f'[catalog]\npath = "{tmp}/catalog.toml"\n')
    # The default log level (info): the address line is logged there, requests are not.
    env = dict(os.environ, NO_COLOR="1", SWITCHYARD_LOG="info",
               SWITCHYARD_AUDIT_KEY="bench-audit-key")
    cli = [binary, "--config", config]
    subprocess.run(cli + ["credits", "add", "1000000"], check=True, env=env, capture_output=True)
    key = subprocess.run(cli + ["keys", "create", "--name", "bench"], check=True, env=env,
                         capture_output=True, text=True).stdout.strip()
    return cli, env, key


class Target:
    """One server under test: where to send a request for a given upstream, and its process."""

    def __init__(self, name, proc, addresses, key=None, path="/api/v1/chat/completions"):
        self.name, self.proc, self.addresses, self.key = name, proc, addresses, key
        self.path = path

    def request(self, upstream, stream):
        body = json.dumps({"model": f"bench/{upstream}", "stream": stream, "max_tokens": 32,
                           "messages": PROMPT})
        if self.key:
            url = f"http://{self.addresses}{self.path}"
            return url, body, [f"authorization: Bearer {self.key}"]
        return f"http://{self.addresses[upstream]}/v1/chat/completions", body, []


def check(target, upstream, stream):
    """One request through the target, to fail early and clearly on a misconfiguration."""
    url, body, headers = target.request(upstream, stream)
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    req.add_header("content-type", "application/json")
    for h in headers:
        k, v = h.split(": ", 1)
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
    except Exception as e:  # noqa: BLE001 - any failure here is reported the same way
        detail = e.read().decode()[:500] if hasattr(e, "read") else ""
        raise RuntimeError(f"{target.name}: {url} failed: {e} {detail}") from e
    expected = "[DONE]" if stream else '"choices"'
    if expected not in text:
        raise RuntimeError(f"{target.name}: unexpected answer from {url}: {text[:500]}")


# --- load --------------------------------------------------------------------------------------


def oha_cmd(binary, url, body, headers, connections, duration=None, rate=None, requests=None):
    cmd = [binary, "--no-tui", "--output-format", "json", "-m", "POST", "-d", body,
           "-c", str(connections), "-H", "content-type: application/json"]
    for h in headers:
        cmd += ["-H", h]
    if requests:
        cmd += ["-n", str(requests)]
    else:
        cmd += ["-z", f"{duration}s", "-w"]
    if rate:
        # Latencies from each request's scheduled start: no coordinated omission.
        cmd += ["-q", str(rate), "--latency-correction"]
    return cmd + [url]


def oha_summary(stdout):
    data = json.loads(stdout)
    summary = data.get("summary", {})
    pct = data.get("latencyPercentiles", {})
    first = data.get("firstBytePercentiles", {})
    codes = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
    total = sum(codes.values()) + sum(errors.values())

    def ms(v):
        return None if v is None else round(v * 1000.0, 4)

    return {
        "rps": summary.get("requestsPerSec"),
        "p50_ms": ms(pct.get("p50")),
        "p90_ms": ms(pct.get("p90")),
        "p99_ms": ms(pct.get("p99")),
        "first_byte_p50_ms": ms(first.get("p50")),
        "requests": total,
        "success": ok / total if total else 0.0,
        "errors": errors,
    }


def oha(*args, **kwargs):
    out = subprocess.run(oha_cmd(*args, **kwargs), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed: {out.stderr[-2000:]}")
    return oha_summary(out.stdout)


# --- the run -----------------------------------------------------------------------------------


def settings(args):
    if args.quick:
        return {"duration_s": 1, "rates": [50], "saturation_connections": 8,
                "delayed_rate": 50, "streams": 50, "stream_chunks": 5,
                "stream_chunk_interval_ms": 200, "warmup_requests": 20}
    return {"duration_s": args.duration, "rates": [100, 1000], "saturation_connections": 32,
            "delayed_rate": 100, "streams": args.streams, "stream_chunks": 20,
            "stream_chunk_interval_ms": 500, "warmup_requests": 500}


def versions(args):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {"switchyard_commit": first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
            "oha": first_line([args.oha, "--version"]),
            "nginx": first_line([args.nginx, "-v"]) if os.path.exists(args.nginx) else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchyard", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--proxy", help="bench-proxy (default: beside --upstream)")
    ap.add_argument("--quick", action="store_true", help="seconds, not minutes (for CI)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    ap.add_argument("--streams", type=int, default=2000, help="open streams in the memory run")
    ap.add_argument("--litellm", help="the litellm command of a venv with litellm[proxy] (a peer row)")
    ap.add_argument("--postgres", metavar="URL",
                    help="also measure one Switchyard on this PostgreSQL database (an empty one; "
                         "database holds with budget leases, its default there)")
    ap.add_argument("--durability", choices=("before_answer", "batched"),
                    help="Switchyard's store.durability (default: its own default, before_answer)")
    ap.add_argument("--telemetry", action="store_true",
                    help="trace every request (OpenTelemetry, OTLP/HTTP) to a local sink that "
                         "discards the spans")
    args = ap.parse_args()
    cfg = settings(args)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    began = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="switchyard-bench-")
    atexit.register(shutil.rmtree, tmp, True)
    atexit.register(stop_all)  # runs first: the servers stop before their directory goes
    results = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick, "settings": dict(cfg, durability=args.durability or "default",
                                         telemetry=args.telemetry),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_before": os.getloadavg()},
        "versions": versions(args), "runs": [],
    }

    up = args.upstream
    fast_proc = Proc("bench-upstream (fast)", [up], address=True)
    upstreams = {
        "fast": fast_proc.address,
        "delayed": Proc("bench-upstream (delayed)", [up, "--delay-ms", str(DELAY_MS)],
                        address=True).address,
        "slowstream": Proc("bench-upstream (slow streams)",
                           [up, "--delay-ms", str(DELAY_MS), "--chunks", str(cfg["stream_chunks"]),
                            "--chunk-interval-ms", str(cfg["stream_chunk_interval_ms"])],
                           address=True).address,
    }
    targets = [Target("direct", fast_proc, upstreams)]
    if os.path.exists(args.nginx):
        nginx_proc, nginx_addrs = start_nginx(args.nginx, tmp, {k: upstreams[k] for k in ("fast", "delayed")})
        targets.append(Target("nginx", nginx_proc, nginx_addrs))
    else:
        log("nginx not found: the pass-through baseline is left out")
    proxy = args.proxy or os.path.join(os.path.dirname(up), "bench-proxy")
    if os.path.exists(proxy):
        # One listener; the first path segment names the upstream.
        pp = Proc("bench-proxy", [proxy] + [a for k in ("fast", "delayed")
                                            for a in ("--upstream", f"{k}=http://{upstreams[k]}")],
                  address=True)
        targets.append(Target("axum-proxy", pp, {k: f"{pp.address}/{k}" for k in ("fast", "delayed")}))
    else:
        log(f"{proxy} not found: the HTTP stack's floor is left out")
    if args.litellm:
        try:
            targets.append(start_litellm(args.litellm, tmp, {k: upstreams[k] for k in ("fast", "delayed")}))
        except RuntimeError as e:
            log(f"LiteLLM did not start, its row is left out: {e}")
    cli, env, key = switchyard_setup(args.switchyard, tmp, upstreams)
    if args.durability:
        env["SWITCHYARD__STORE__DURABILITY"] = args.durability
    sink = None
    if args.telemetry:
        sink = TraceSink()
        env = with_telemetry(env, sink)
        log(f"tracing every Switchyard request to a discarding sink at {sink.url}")
    sy = Proc("switchyard", cli + ["serve"], env=env, address=True)
    targets.append(Target("switchyard", sy, sy.address, key))
    if args.postgres:
        pg_tmp = os.path.join(tmp, "postgres")
        os.makedirs(pg_tmp)
        pg_cli, pg_env, pg_key = switchyard_setup(args.switchyard, pg_tmp, upstreams, args.postgres)
        if args.durability:
            pg_env["SWITCHYARD__STORE__DURABILITY"] = args.durability
        pg = Proc("switchyard (postgres)", pg_cli + ["serve"], env=pg_env, address=True)
        targets.append(Target("sy-pg", pg, pg.address, pg_key))

    for t in targets:
        for upstream in ("fast", "delayed"):
            for stream in (False, True):
                check(t, upstream, stream)
    results["idle_rss_mb"] = {t.name: round(mem_mb(t.proc.pid), 1) for t in targets}

    def measure(mode, upstream, stream, rate):
        for t in targets:
            url, body, headers = t.request(upstream, stream)
            conns = cfg["saturation_connections"] if rate is None else max(8, rate // 10)
            log(f"  {mode:<9} {str(rate or 'max'):>5}/s  {t.name}")
            cpu_before = cpu_s(t.proc.pid)
            with Sampler(t.proc.pid) as s:
                r = oha(args.oha, url, body, headers, conns, duration=cfg["duration_s"], rate=rate)
            cpu = cpu_s(t.proc.pid) - cpu_before
            done = r["requests"] * r["success"]
            r.update({"mode": mode, "rate": rate or "max", "target": t.name, "connections": conns,
                      "rss_mb": round(s.peak_rss, 1), "loadavg_1m": round(os.getloadavg()[0], 2),
                      # CPU the server spent per request: steadier than latency on a busy machine.
                      "cpu_us_per_request": round(cpu * 1e6 / done, 1) if done else None})
            results["runs"].append(r)

    log(f"warming up ({cfg['warmup_requests']} requests per target and mode)")
    for t in targets:
        for stream in (False, True):
            url, body, headers = t.request("fast", stream)
            oha(args.oha, url, body, headers, 8, requests=cfg["warmup_requests"])

    log("measuring (each target in turn, same load)")
    for stream in (False, True):
        mode = "sse" if stream else "json"
        for rate in cfg["rates"] + [None]:
            measure(mode, "fast", stream, rate)
    for stream in (False, True):
        mode = ("sse" if stream else "json") + f"+{DELAY_MS}ms"
        measure(mode, "delayed", stream, cfg["delayed_rate"])

    results["peak_rss_mb"] = {t.name: round(mem_mb(t.proc.pid, "VmHWM"), 1) for t in targets}

    # Memory: many slow streams held open through a fresh Switchyard at once.
    sy.stop()
    sy = Proc("switchyard", cli + ["serve"], env=env, address=True)
    target = Target("switchyard", sy, sy.address, key)
    check(target, "slowstream", True)
    idle = mem_mb(sy.pid)
    n = cfg["streams"]
    log(f"memory: {n} slow streams open through Switchyard at once")
    url, body, headers = target.request("slowstream", True)
    with Sampler(sy.pid, sockets=True) as s:
        out = subprocess.run(oha_cmd(args.oha, url, body, headers, n, requests=n),
                             capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed: {out.stderr[-2000:]}")
    r = oha_summary(out.stdout)
    open_rss = s.rss_at_max_sockets
    results["memory"] = {
        "streams": n, "stream_seconds": cfg["stream_chunks"] * cfg["stream_chunk_interval_ms"] / 1000,
        "idle_rss_mb": round(idle, 1), "open_rss_mb": round(open_rss, 1),
        "peak_rss_mb": round(s.peak_rss, 1), "peak_hwm_mb": round(mem_mb(sy.pid, "VmHWM"), 1),
        "kb_per_stream": round((open_rss - idle) * 1024 / n, 1),
        "max_open_sockets": s.max_sockets, "success": r["success"], "errors": r["errors"],
        "p50_ms": r["p50_ms"],
    }

    stop_all()
    if sink is not None:
        results["telemetry_sink"] = sink.stats()
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    report(results)
    write(results)


def write(results):
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    names = ["latest-quick.json"] if results["quick"] else [
        results["when"].replace(":", "").replace("+0000", "Z") + ".json", "latest.json"]
    if results["settings"].get("telemetry"):
        # A traced run is kept beside the untraced ones, never in their place.
        names = [n.replace(".json", "-telemetry.json") for n in names]
    for name in names:
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out_dir / name)
    log(f"results: {', '.join(str(out_dir / n) for n in names)}")


# --- the table ---------------------------------------------------------------------------------


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def report(results):
    runs = results["runs"]
    by = {(r["target"], r["mode"], r["rate"]): r for r in runs}
    m = results["machine"]
    if results["settings"].get("telemetry"):
        sink = results.get("telemetry_sink", {})
        print(f"\nSwitchyard traced every request (OTLP/HTTP to a discarding sink: "
              f"{sink.get('exports')} exports, {sink.get('bytes')} bytes)")
    print(f"\nSwitchyard benchmark {results['when']}: {m['cpus']} CPUs, load "
          f"{m['loadavg_before'][0]:.2f} before / {m['loadavg_after'][0]:.2f} after, "
          f"{results['settings']['duration_s']} s per row, oha, {results['elapsed_s']} s in all")
    head = (f"{'mode':<9} {'rate':>5} {'target':<10} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'ok %':>6} {'RSS MB':>7} "
            f"{'CPU µs':>7} {'work µs':>7} {'rps/ngx':>7} {'+p50/ngx':>8}")
    print(head)
    print("-" * len(head))
    last = None
    for r in runs:
        key = (r["mode"], r["rate"])
        if last is not None and key != last:
            print()
        last = key
        direct = by.get(("direct",) + key)
        nginx = by.get(("nginx",) + key)
        floor = by.get(("axum-proxy",) + key)
        # The gateway's own work: CPU a request over the floor of the HTTP stack it is built on.
        work = None
        if floor and r["target"] not in ("direct", "axum-proxy") \
                and r.get("cpu_us_per_request") is not None \
                and floor.get("cpu_us_per_request") is not None:
            work = r["cpu_us_per_request"] - floor["cpu_us_per_request"]
            r["work_us_per_request"] = round(work, 1)

        def added(run, field):
            if run is None or direct is None or run is direct:
                return None
            if run.get(field) is None or direct.get(field) is None:
                return None
            return run[field] - direct[field]

        a50, a99 = added(r, "p50_ms"), added(r, "p99_ms")
        n50 = added(nginx, "p50_ms")
        rps_ratio = r["rps"] / nginx["rps"] if nginx and nginx.get("rps") and r.get("rps") else None
        lat_ratio = a50 / n50 if a50 is not None and n50 and n50 > 0 else None
        print(f"{r['mode']:<9} {str(r['rate']):>5} {r['target']:<10} {fmt(r['rps'], 0):>8} "
              f"{fmt(r['p50_ms'], 3):>8} {fmt(r['p90_ms'], 3):>8} {fmt(r['p99_ms'], 3):>8} "
              f"{fmt(a50, 3):>8} {fmt(a99, 3):>8} {r['success'] * 100:>6.1f} {fmt(r['rss_mb'], 1):>7} "
              f"{fmt(r.get('cpu_us_per_request'), 0):>7} {fmt(work, 0):>7} {fmt(rps_ratio):>7} "
              f"{fmt(lat_ratio, 1):>8}")
    for mode in ("json", "sse"):
        lite, pg = by.get(("switchyard", mode, "max")), by.get(("sy-pg", mode, "max"))
        if lite and pg and lite.get("rps") and pg.get("rps"):
            print(f"\n{mode} at saturation: Switchyard on PostgreSQL {pg['rps']:.0f} req/s, "
                  f"{pg['rps'] / lite['rps'] * 100:.0f}% of Switchyard on SQLite "
                  f"({lite['rps']:.0f} req/s)")
    idle, peak = results["idle_rss_mb"], results["peak_rss_mb"]
    print("\nresident memory, MB (idle after start / peak VmHWM over all rows): "
          + ", ".join(f"{k} {idle[k]} / {peak[k]}" for k in idle))
    mem = results.get("memory")
    if mem:
        print(f"{mem['streams']} slow streams ({mem['stream_seconds']} s each) open through Switchyard: "
              f"idle {mem['idle_rss_mb']} MB, {mem['open_rss_mb']} MB with them open "
              f"({mem['max_open_sockets']} sockets), peak {mem['peak_rss_mb']} MB, "
              f"{mem['kb_per_stream']} KB a stream; {mem['success'] * 100:.1f}% completed")


if __name__ == "__main__":
    main()

"""Runs the pinned coding agents (Codex CLI, Claude Code) non-interactively against an
OpenAI Responses / Anthropic Messages server on 127.0.0.1, with nonessential traffic off.

The agents are installed by ``tests/compat/tools/install`` into ``target/compat-tools`` (or
``$COMPAT_TOOLS``). Every run gets its own home folder (no user configuration is read), a minimal
environment (no inherited keys), dummy credentials, and HTTP(S)_PROXY set to a trap: a recorder on
127.0.0.1 that any proxied request to another host would reach. Where ``strace`` is available, the
run is traced and every network destination it tried is returned, so a test can assert that the
agent reached no address but loopback; where the suite runs in a network namespace with only a
loopback interface (``tests/compat/run`` does this when it can), nothing else is reachable at all.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.environ.get("COMPAT_TOOLS") or os.path.join(ROOT, "target", "compat-tools")

# The model each agent asks for when given none (Codex with an API-key provider, Claude Code with
# ANTHROPIC_API_KEY), as observed with the pinned versions; see captures/README.md.
CODEX_DEFAULT_MODEL = "gpt-6.2-sol"
CLAUDE_CODE_DEFAULT_MODEL = "claude-opus-5-5"

DUMMY_KEY = "sk-or-v1-" + "d" * 64


def binary(name):
    """The installed agent's executable, or None when the tools are not installed."""
    path = os.path.join(TOOLS, "node_modules", ".bin", name)
    return path if os.access(path, os.X_OK) else None


def version(name):
    """`--version` of an installed agent."""
    out = subprocess.run([binary(name), "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def loopback_only():
    """Whether this process's network namespace has no interface but loopback (read from
    /proc/self/net/dev: /sys/class/net shows the namespace sysfs was mounted in)."""
    try:
        with open("/proc/self/net/dev") as f:
            names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return names == ["lo"]


@dataclass
class Run:
    argv: list
    returncode: int
    stdout: str
    stderr: str
    # The answer's last message as the agent reports it (Codex's --output-last-message; Claude
    # Code's stdout).
    answer: str
    # Every IP destination the traced process tried (connect, sendto, sendmsg), or None when the
    # run was not traced.
    destinations: list = field(default=None)

    def outside(self):
        """The destinations that are not loopback (empty when the run was not traced)."""
        return [d for d in self.destinations or [] if not _is_loopback(d)]

    def describe(self):
        return (f"{' '.join(self.argv)}\nexit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n"
                f"--- stderr\n{self.stderr[-4000:]}")


def _is_loopback(address):
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1") or address.startswith("::ffff:127.")


_DEST = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def _destinations(trace_path):
    found = []
    with open(trace_path, errors="replace") as f:
        for line in f:
            if "connect(" not in line and "sendto(" not in line and "sendmsg(" not in line:
                continue
            for m in _DEST.finditer(line):
                found.append(m.group(1) or m.group(2))
    return found


def _env(home, trap_url, extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }
    if trap_url:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            env[name] = trap_url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(extra)
    return env


def _run(argv, env, cwd, timeout, trace):
    trace_path = None
    strace = shutil.which("strace") if trace and os.environ.get("COMPAT_STRACE", "1") != "0" else None
    if strace:
        trace_path = os.path.join(cwd, "..", "network.strace")
        argv_run = [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", trace_path, *argv]
    else:
        argv_run = argv
    proc = subprocess.run(argv_run, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    destinations = _destinations(trace_path) if trace_path else None
    return proc, destinations


def codex_config(base_url, model=None, quiet=True):
    """Codex's config.toml: one model provider speaking the Responses API at `base_url` (which
    ends in `/v1` or `/api/v1`; Codex appends `/responses`), its key from SWITCHYARD_API_KEY, and
    with `quiet`, everything that would reach another host off: update checks, analytics,
    feedback, telemetry export, web search, and the plugin and app (connector) features, which
    sync from GitHub and ChatGPT at startup."""
    lines = []
    if model:
        lines.append(f'model = "{model}"')
    lines += [
        'model_provider = "switchyard"',
    ]
    if quiet:
        lines += ["check_for_update_on_startup = false", 'web_search = "disabled"']
    lines += [
        "",
        "[model_providers.switchyard]",
        'name = "Switchyard"',
        f'base_url = "{base_url}"',
        'env_key = "SWITCHYARD_API_KEY"',
        'wire_api = "responses"',
        "request_max_retries = 0",
        "stream_max_retries = 0",
    ]
    if not quiet:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "[features]",
        "plugins = false",
        "remote_plugin = false",
        "apps = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[feedback]",
        "enabled = false",
        "",
        "[otel]",
        'exporter = "none"',
    ]
    return "\n".join(lines) + "\n"


def codex(workdir, base_url, prompt, key=DUMMY_KEY, model=None, config_model=None, sandbox="read-only",
          trap_url=None, timeout=240, trace=True, quiet=True):
    """`codex exec` in `workdir` (made if missing) against the Responses API at `base_url`.

    `model` is passed as `-m`; `config_model` is written to config.toml; with neither, Codex asks
    for its own default model (CODEX_DEFAULT_MODEL). `quiet=False` leaves Codex's own defaults
    for everything but the provider (captures of what it does out of the box)."""
    home = os.path.join(workdir, "home")
    codex_home = os.path.join(home, ".codex")
    cwd = os.path.join(workdir, "work")
    for d in (codex_home, cwd):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(codex_config(base_url, config_model, quiet))
    last = os.path.join(workdir, "last-message.txt")
    if os.path.exists(last):
        os.remove(last)
    argv = [binary("codex"), "exec", "--strict-config", "--skip-git-repo-check", "--ephemeral",
            "--color", "never", "--sandbox", sandbox, "--output-last-message", last]
    if model:
        argv += ["-m", model]
    argv.append(prompt)
    env = _env(home, trap_url, {"CODEX_HOME": codex_home, "SWITCHYARD_API_KEY": key})
    proc, destinations = _run(argv, env, cwd, timeout, trace)
    answer = open(last).read() if os.path.exists(last) else ""
    return Run(argv, proc.returncode, proc.stdout, proc.stderr, answer.strip(), destinations)


def claude_code(workdir, base_url, prompt, key=DUMMY_KEY, model=None, extra_args=(), auth="api-key",
                trap_url=None, timeout=240, trace=True, quiet=True):
    """`claude -p` in `workdir` (made if missing) against the Anthropic Messages API at `base_url`
    (Claude Code appends `/v1/messages`: the gateway's base is `http://host/api`).

    `auth` is "api-key" (ANTHROPIC_API_KEY, sent as x-api-key) or "token" (ANTHROPIC_AUTH_TOKEN,
    sent as Authorization: Bearer). `quiet=False` leaves out the variables that turn nonessential
    traffic off (captures of what it does out of the box)."""
    home = os.path.join(workdir, "home")
    cwd = os.path.join(workdir, "work")
    for d in (home, cwd):
        os.makedirs(d, exist_ok=True)
    argv = [binary("claude"), "-p", prompt, "--output-format", "text"]
    if model:
        argv += ["--model", model]
    argv += list(extra_args)
    extra = {"CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"), "ANTHROPIC_BASE_URL": base_url}
    if quiet:
        extra.update({
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
        })
    extra["ANTHROPIC_API_KEY" if auth == "api-key" else "ANTHROPIC_AUTH_TOKEN"] = key
    env = _env(home, trap_url, extra)
    proc, destinations = _run(argv, env, cwd, timeout, trace)
    return Run(argv, proc.returncode, proc.stdout, proc.stderr, proc.stdout.strip(), destinations)

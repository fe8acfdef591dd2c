"""Compatibility harness: a mock OpenAI-compatible upstream and the real `switchyard` binary,
both on 127.0.0.1 ephemeral ports, driven by the official Python SDKs."""

import base64
import json
import os
import re
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import coding_agents

BINARY = os.environ.get("SWITCHYARD_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "switchyard"))


# The tool the suite's own requests offer; the mock calls it (and no other client's tools) until
# its result comes back.
TEST_TOOL = "get_weather"
EMBEDDING_DIMENSIONS = 4
# What the mock's Anthropic `count_tokens` answers.
COUNTED_TOKENS = 14
# The model the OpenAI Agents SDK asks for when an agent names none (openai-agents 0.24.0).
AGENTS_SDK_DEFAULT_MODEL = "gpt-5.6-luna"
# The key that encrypts logged content; never to appear in the logs.
CONTENT_KEY = "compat-content-key-0123456789abcdef"


def _chunk(delta, finish=None):
    return {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class MockUpstream(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible server. A request with tools gets a tool call; a
    streamed request gets SSE with a final usage chunk."""

    requests = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        MockUpstream.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path.endswith("/messages/count_tokens"):
            return self._send_json({"input_tokens": COUNTED_TOKENS})
        if self.path.endswith("/messages"):
            return self._anthropic(body)
        if ":generateContent" in self.path or ":streamGenerateContent" in self.path:
            return self._gemini(body, stream=":streamGenerateContent" in self.path)
        if self.path.endswith("/embeddings"):
            return self._embeddings(body)
        if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
            return self._legacy_completion(body)
        tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
        last = (body.get("messages") or [{}])[-1]
        if TEST_TOOL in tools and last.get("role") != "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": body["tools"][0]["function"]["name"], "arguments": "{\"city\": \"Paris\"}"}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": "Hello from the mock"}
            finish = "stop"
        usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            events = [_chunk({"role": "assistant", "content": ""})]
            if message.get("tool_calls"):
                call = message["tool_calls"][0]
                events.append(_chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                      "function": {"name": call["function"]["name"], "arguments": ""}}]}))
                events.append(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]}))
            else:
                for piece in ["Hello ", "from ", "the ", "mock"]:
                    events.append(_chunk({"content": piece}))
            events.append(_chunk({}, finish))
            events.append({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock", "choices": [], "usage": usage})
            for e in events:
                self.wfile.write(f"data: {json.dumps(e)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        payload = json.dumps({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "mock",
                              "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                              "usage": usage}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _embeddings(self, body):
        """OpenAI's embeddings: one EMBEDDING_DIMENSIONS-long vector per input, as floats or as
        base64 of little-endian float32 when asked."""
        inputs = body.get("input")
        inputs = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], (int, float)) else [inputs]
        data = []
        for i, _ in enumerate(inputs):
            vector = [round(0.25 * (i + 1) * (k + 1), 4) for k in range(EMBEDDING_DIMENSIONS)]
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = 3 * len(inputs)
        self._send_json({"object": "list", "model": body.get("model"), "data": data,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _legacy_completion(self, body):
        """OpenAI's legacy completions: text, or SSE chunks with a final usage chunk."""
        usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}

        def chunk(text, finish=None):
            return {"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": body.get("model"),
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
        if not body.get("stream"):
            payload = chunk("Hello from the mock", "stop")
            payload["usage"] = usage
            return self._send_json(payload)
        frames = [f"data: {json.dumps(chunk(p))}\n\n" for p in ["Hello ", "from ", "the ", "mock"]]
        frames.append(f"data: {json.dumps(chunk('', 'stop'))}\n\n")
        final = chunk("")
        final["choices"], final["usage"] = [], usage
        frames.append(f"data: {json.dumps(final)}\n\n")
        frames.append("data: [DONE]\n\n")
        self._send_sse(frames)

    def _send_json(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, frames):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for frame in frames:
            self.wfile.write(frame.encode())
            self.wfile.flush()
        self.close_connection = True

    def _anthropic(self, body):
        """Anthropic's Messages API: text, or a tool_use when tools are offered; SSE events when
        streamed."""
        names = [t.get("name") for t in body.get("tools") or []]
        last = (body.get("messages") or [{}])[-1].get("content")
        answered = isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
        tool = TEST_TOOL if TEST_TOOL in names and not answered else None
        usage = {"input_tokens": 12, "output_tokens": 5}
        if not body.get("stream"):
            if tool:
                content = [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": {"city": "Paris"}}]
            else:
                content = [{"type": "text", "text": "Hello from the mock"}]
            return self._send_json({"id": "msg_mock", "type": "message", "role": "assistant", "model": body.get("model"),
                                    "content": content, "stop_reason": "tool_use" if tool else "end_turn",
                                    "stop_sequence": None, "usage": usage})
        def ev(kind, data):
            data["type"] = kind
            return f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        frames = [ev("message_start", {"message": {"id": "msg_mock", "type": "message", "role": "assistant",
                                                   "model": body.get("model"), "content": [], "stop_reason": None,
                                                   "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
                  ev("ping", {})]
        if tool:
            frames.append(ev("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}}))
            for part in ['{"city": ', '"Paris"}']:
                frames.append(ev("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": part}}))
        else:
            frames.append(ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
            for piece in ["Hello ", "from ", "the ", "mock"]:
                frames.append(ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}))
        frames.append(ev("content_block_stop", {"index": 0}))
        frames.append(ev("message_delta", {"delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                                           "usage": {"output_tokens": 5}}))
        frames.append(ev("message_stop", {}))
        self._send_sse(frames)

    def _gemini(self, body, stream):
        """Google AI Studio's generateContent: text, or a functionCall when tools are offered."""
        decls = (body.get("tools") or [{}])[0].get("functionDeclarations") or []
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}
        if decls:
            parts = [{"functionCall": {"name": decls[0]["name"], "args": {"city": "Paris"}}}]
            pieces = [parts]
        else:
            pieces = [[{"text": p}] for p in ["Hello ", "from ", "the ", "mock"]]
        if not stream:
            merged = [{"text": "Hello from the mock"}] if not decls else pieces[0]
            return self._send_json({"candidates": [{"content": {"role": "model", "parts": merged}, "finishReason": "STOP", "index": 0}],
                                    "usageMetadata": usage, "modelVersion": "gemini-mock", "responseId": "resp-mock"})
        frames = []
        for i, parts in enumerate(pieces):
            chunk = {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
                     "modelVersion": "gemini-mock", "responseId": "resp-mock"}
            if i == len(pieces) - 1:
                chunk["candidates"][0]["finishReason"] = "STOP"
                chunk["usageMetadata"] = usage
            frames.append(f"data: {json.dumps(chunk)}\r\n\r\n")
        self._send_sse(frames)


CATALOG = """
[[providers]]
slug = "mock"
name = "Mock"
kind = "openai"
base_url = "{url}"
api_key_env = "MOCK_PROVIDER_KEY"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[providers]]
slug = "mock-anthropic"
name = "Mock Anthropic"
kind = "anthropic"
base_url = "{url}"
api_key_env = "MOCK_PROVIDER_KEY"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[providers]]
slug = "mock-gemini"
name = "Mock Gemini"
kind = "gemini"
base_url = "{url}"
api_key_env = "MOCK_PROVIDER_KEY"
data_policy = {{ training = false, retains_prompts = false, zdr = true }}

[[models]]
id = "mock/claude"
name = "Mock: Claude"
context_length = 400000
{claude_aliases}
[[models.endpoints]]
provider = "mock-anthropic"
upstream_model = "claude-mock"
max_completion_tokens = 1000
pricing = {{ prompt = "0.000003", completion = "0.000015" }}

[[models]]
id = "mock/gemini"
name = "Mock: Gemini"
context_length = 32000

[[models.endpoints]]
provider = "mock-gemini"
upstream_model = "gemini-mock"
max_completion_tokens = 1000
pricing = {{ prompt = "0.000001", completion = "0.000004" }}

[[models]]
id = "mock/chat"
name = "Mock: Chat"
context_length = 400000
{chat_aliases}
[[models.endpoints]]
provider = "mock"
upstream_model = "mock-chat"
max_completion_tokens = 1000
pricing = {{ prompt = "0.000001", completion = "0.000002" }}
supported_parameters = ["temperature", "max_tokens", "tools", "tool_choice", "stop", "seed"]
{chat_endpoint_extra}{extra_models}"""

# What the catalogue gains with model aliases and embedding models: the default model ids of
# Claude Code, Codex CLI and the OpenAI Agents SDK name catalogue models, the upstream serves
# legacy completions, and an embedding model. Written only when the gateway's `catalog check`
# accepts it, so that a gateway without these features still runs the rest of the suite; the
# tests that need them then fail on `Gateway.extensions_error`.
CATALOG_EXTENSIONS = {
    "claude_aliases": f'aliases = ["{coding_agents.CLAUDE_CODE_DEFAULT_MODEL}"]\n',
    "chat_aliases": f'aliases = ["{coding_agents.CODEX_DEFAULT_MODEL}", "{AGENTS_SDK_DEFAULT_MODEL}"]\n',
    "chat_endpoint_extra": "legacy_completions = true\n",
    "extra_models": f"""
[[models]]
id = "mock/embed"
name = "Mock: Embed"
kind = "embedding"
dimensions = {EMBEDDING_DIMENSIONS}
aliases = ["mock-embed-small"]
context_length = 8192

[[models.endpoints]]
provider = "mock"
upstream_model = "mock-embed"
pricing = {{ prompt = "0.0000001" }}
""",
}
CATALOG_BASE = dict.fromkeys(CATALOG_EXTENSIONS, "")


class Gateway:
    def __init__(self, base, key, process, logs, config, env, extensions_error):
        self.base = base
        self.api = base + "/api/v1"
        self.key = key
        self.process = process
        self.logs = logs
        self.config = config
        self.env = env
        # None when the catalogue's aliases and embedding model were accepted; else why not.
        self.extensions_error = extensions_error

    def cli(self, *args):
        """Runs `switchyard --config <the gateway's> ARGS` and returns its standard output."""
        out = subprocess.run([BINARY, "--config", self.config, *args], env=self.env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, f"switchyard {' '.join(args)} failed: {out.stderr}"
        return out.stdout

    def require_extensions(self):
        """Fails the calling test when the gateway refused the catalogue's aliases and
        embedding model."""
        if self.extensions_error:
            pytest.fail(f"the gateway refused the catalogue's aliases / embedding model: {self.extensions_error}")

    def generation(self, gen_id, timeout=10):
        """`GET /api/v1/generation?id=` with the suite's key; settlement happens off the request
        path, so a 404 is retried until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(f"{self.api}/generation?id={urllib.parse.quote(gen_id)}",
                                             headers={"Authorization": f"Bearer {self.key}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return json.load(answer)["data"]
            except urllib.error.HTTPError as e:
                if e.code != 404 or time.monotonic() > deadline:
                    raise AssertionError(f"GET /generation?id={gen_id}: {e.code} {e.read()[:300]!r}") from e
            time.sleep(0.05)

    def audit_records(self):
        """The audit trail's records (`switchyard audit export`), oldest first."""
        return [json.loads(line)["record"] for line in self.cli("audit", "export").splitlines() if line.strip()]

    def audit_record(self, gen_id, timeout=10):
        """The audit record of one generation; audit records are written off the request path."""
        deadline = time.monotonic() + timeout
        while True:
            # Refusals before a key is known are aggregated in records of another kind.
            found = [r for r in self.audit_records() if r.get("generation_id") == gen_id]
            if found or time.monotonic() > deadline:
                assert len(found) == 1, f"{len(found)} audit records for {gen_id}"
                return found[0]
            time.sleep(0.1)


@pytest.fixture(scope="session")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MockUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def gateway(upstream):
    tmp = tempfile.mkdtemp(prefix="switchyard-compat-")
    url = f"http://127.0.0.1:{upstream.server_address[1]}/v1"
    with open(os.path.join(tmp, "switchyard.toml"), "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:0"\nkeepalive_secs = 30\n[store]\nurl = "sqlite://{tmp}/gw.db"\n[catalog]\npath = "{tmp}/catalog.toml"\n')
    # The most verbose level: the scan at the end proves that even trace logs hold no secret.
    # The content key encrypts the prompts and completions the account logs (prompt logging is
    # on, so that `GET /generation/content` has something to return).
    env = dict(os.environ, NO_COLOR="1", MOCK_PROVIDER_KEY="mock-secret", SWITCHYARD_LOG="trace",
               SWITCHYARD_CONTENT_KEY=CONTENT_KEY)
    cfg = ["--config", os.path.join(tmp, "switchyard.toml")]
    with open(os.path.join(tmp, "catalog.toml"), "w") as f:
        f.write(CATALOG.format(url=url, **CATALOG_EXTENSIONS))
    check = subprocess.run([BINARY, *cfg, "catalog", "check"], env=env, capture_output=True, text=True)
    extensions_error = None
    if check.returncode != 0:
        lines = (check.stderr or check.stdout).strip().splitlines()
        extensions_error = " ".join(lines[:3])
        with open(os.path.join(tmp, "catalog.toml"), "w") as f:
            f.write(CATALOG.format(url=url, **CATALOG_BASE))
    subprocess.run([BINARY, *cfg, "credits", "add", "10"], check=True, env=env, capture_output=True)
    subprocess.run([BINARY, *cfg, "account", "set", "--prompt-logging", "true"], check=True, env=env,
                   capture_output=True)
    key = subprocess.run([BINARY, *cfg, "keys", "create", "--name", "compat"], check=True, env=env,
                         capture_output=True, text=True).stdout.strip()
    logs = open(os.path.join(tmp, "gateway.log"), "w+")
    process = subprocess.Popen([BINARY, *cfg, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    address = None
    for line in process.stderr:
        logs.write(line)
        m = re.search(r"address=(127\.0\.0\.1:\d+)", line)
        if m:
            address = m.group(1)
            break
    assert address, "gateway did not start"
    pump = threading.Thread(target=lambda: [logs.write(l) for l in process.stderr], daemon=True)
    pump.start()
    yield Gateway(f"http://{address}", key, process, logs, cfg[1], env, extensions_error)
    process.terminate()
    process.wait(timeout=30)
    pump.join(timeout=10)
    logs.flush()
    logs.seek(0)
    _scan_logs(logs.read(), key)


def _texts(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)


def _scan_logs(text, key):
    """The gateway's logs after the whole suite: no client key, provider key, Authorization
    header, nor any prompt text that the mock upstream received."""
    lowered = text.lower()
    assert "address=" in text, "the gateway's logs were not captured"
    needles = {"client key": key, "client key hex": key[len("sk-or-v1-"):], "provider key": "mock-secret",
               "content key": CONTENT_KEY,
               "authorization header": "bearer "}
    for request in MockUpstream.requests:
        for message in request["body"].get("messages", []):
            for t in _texts(message.get("content")):
                if len(t) >= 12:
                    needles[f"prompt {t[:20]!r}"] = t
    for what, needle in needles.items():
        assert needle.lower() not in lowered, f"{what} appears in the gateway's logs"

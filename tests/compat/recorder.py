"""A recording stand-in for OpenAI's Responses API and Anthropic's Messages API.

It stores every request it receives (method, path, headers, body) and answers with plausible
streamed or plain answers, so that real clients (Codex CLI, Claude Code) can be run against it
and what they send can be kept as fixtures. Standard library only.

Scenarios:
- ``text``: every model call is answered with ``ANSWER``.
- ``tool``: the first model call of a conversation is answered with a call to the client's shell
  tool (``echo tool-ran``), to Codex's ``exec`` tool, or to a ``get_weather`` function; once the
  client sends the tool's result back, it is answered with ``ANSWER``.

Run as a program: ``python recorder.py --port 0 --scenario tool --out DIR``; it prints
``listening on 127.0.0.1:PORT`` and writes one JSON file per request to DIR.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Hello from the recorder"
SHELL_COMMAND = "echo tool-ran"
USAGE_IN, USAGE_OUT = 21, 7


def _sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _responses_tools(body):
    """Every tool a Responses request offers: top-level ``tools`` and the tools of
    ``additional_tools`` input items, with namespaces flattened."""
    found = list(body.get("tools") or [])
    items = body.get("input") if isinstance(body.get("input"), list) else []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            found.extend(item.get("tools") or [])
    flat = []
    while found:
        tool = found.pop(0)
        if tool.get("type") == "namespace":
            found.extend(tool.get("tools") or [])
        else:
            flat.append(tool)
    return flat


def _responses_tool(body):
    """The call to answer a Responses request with: (kind, name, arguments) for the client's
    shell-like function tool, or for its JavaScript ``exec`` custom tool."""
    for tool in _responses_tools(body):
        name = tool.get("name") or ""
        if tool.get("type") == "function" and name in ("shell", "exec_command", "shell_command"):
            params = (tool.get("parameters") or {}).get("properties") or {}
            command = ["bash", "-lc", SHELL_COMMAND] if params.get("command", {}).get("type") == "array" else SHELL_COMMAND
            key = "cmd" if "cmd" in params else "command"
            return "function_call", name, json.dumps({key: command})
        if tool.get("type") == "function" and name == "get_weather":
            return "function_call", name, json.dumps({"city": "Paris"})
        if tool.get("type") == "custom" and name == "exec":
            return "custom_tool_call", name, 'text("tool-ran")'
    return None


def _responses_has_tool_output(body):
    items = body.get("input") if isinstance(body.get("input"), list) else []
    return any(isinstance(i, dict) and i.get("type") in ("function_call_output", "custom_tool_call_output",
                                                          "local_shell_call_output") for i in items)


def _messages_tool(body):
    for tool in body.get("tools") or []:
        if tool.get("name") == "Bash":
            return "Bash", {"command": SHELL_COMMAND, "description": "Print a word"}
    return None


def _messages_has_tool_result(body):
    messages = body.get("messages") or []
    if not messages:
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recorder/1"

    def log_message(self, *args):
        pass

    # -- plumbing ----------------------------------------------------------------------------

    def _record(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        entry = {"seq": 0, "method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        self.server.store(entry)
        return body if isinstance(body, dict) else {}

    def _json(self, status, payload, extra=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, frames):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for frame in frames:
            self.wfile.write(frame.encode())
            self.wfile.flush()
        self.close_connection = True

    def do_CONNECT(self):
        # A proxy tunnel request: only a trap (a recorder set as HTTP(S)_PROXY) receives these.
        self._record()
        self._json(403, {"error": {"message": "no tunnels here", "type": "forbidden"}})

    def do_HEAD(self):
        self._record()
        self._json(200, {})

    def do_GET(self):
        self._record()
        path = self.path.split("?")[0]
        if path.endswith("/models"):
            return self._json(200, {"object": "list", "data": [
                {"id": "recorder-model", "object": "model", "created": 1, "owned_by": "recorder",
                 "type": "model", "display_name": "Recorder", "created_at": "2025-01-01T00:00:00Z"}],
                "has_more": False, "first_id": "recorder-model", "last_id": "recorder-model"})
        self._json(404, {"error": {"message": f"no route for GET {path}", "type": "not_found"}})

    def do_POST(self):
        body = self._record()
        path = self.path.split("?")[0]
        if path.endswith("/responses"):
            return self._responses(body)
        if path.endswith("/messages/count_tokens"):
            return self._json(200, {"input_tokens": USAGE_IN})
        if path.endswith("/messages"):
            return self._messages(body)
        if path.endswith("/chat/completions"):
            return self._json(200, {"id": "chatcmpl-rec", "object": "chat.completion", "created": 1,
                                    "model": body.get("model"), "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": ANSWER}}],
                                    "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                                              "total_tokens": USAGE_IN + USAGE_OUT}})
        self._json(404, {"error": {"message": f"no route for POST {path}", "type": "not_found"}})

    # -- OpenAI Responses --------------------------------------------------------------------

    def _responses(self, body):
        call = None
        if self.server.scenario == "tool" and not _responses_has_tool_output(body):
            call = _responses_tool(body)
        rid = f"resp_rec{self.server.next_id()}"
        base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": body.get("model"),
                "status": "in_progress", "output": [], "usage": None, "error": None,
                "incomplete_details": None, "instructions": None, "tools": [], "parallel_tool_calls": True,
                "tool_choice": "auto", "text": {"format": {"type": "text"}}}
        if call and call[0] == "function_call":
            item = {"type": "function_call", "id": "fc_rec1", "call_id": "call_rec1", "name": call[1],
                    "arguments": call[2], "status": "completed"}
        elif call:
            item = {"type": "custom_tool_call", "id": "ctc_rec1", "call_id": "call_rec1", "name": call[1],
                    "input": call[2], "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_rec1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}
        usage = {"input_tokens": USAGE_IN, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": USAGE_OUT, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": USAGE_IN + USAGE_OUT}
        done = dict(base, status="completed", output=[item], usage=usage)
        if not body.get("stream"):
            return self._json(200, done)
        seq = iter(range(10_000))

        def ev(kind, data):
            return _sse(kind, dict(data, type=kind, sequence_number=next(seq)))

        frames = [ev("response.created", {"response": base}), ev("response.in_progress", {"response": base})]
        if call and call[0] == "function_call":
            frames.append(ev("response.output_item.added", {"output_index": 0, "item": dict(item, arguments="", status="in_progress")}))
            frames.append(ev("response.function_call_arguments.delta", {"output_index": 0, "item_id": item["id"], "delta": item["arguments"]}))
            frames.append(ev("response.function_call_arguments.done", {"output_index": 0, "item_id": item["id"], "arguments": item["arguments"]}))
        elif call:
            frames.append(ev("response.output_item.added", {"output_index": 0, "item": dict(item, input="", status="in_progress")}))
            frames.append(ev("response.custom_tool_call_input.delta", {"output_index": 0, "item_id": item["id"], "delta": item["input"]}))
            frames.append(ev("response.custom_tool_call_input.done", {"output_index": 0, "item_id": item["id"], "input": item["input"]}))
        else:
            frames.append(ev("response.output_item.added", {"output_index": 0, "item": dict(item, content=[], status="in_progress")}))
            part = {"type": "output_text", "text": "", "annotations": []}
            frames.append(ev("response.content_part.added", {"output_index": 0, "item_id": item["id"], "content_index": 0, "part": part}))
            for piece in ["Hello ", "from ", "the ", "recorder"]:
                frames.append(ev("response.output_text.delta", {"output_index": 0, "item_id": item["id"], "content_index": 0, "delta": piece, "logprobs": []}))
            frames.append(ev("response.output_text.done", {"output_index": 0, "item_id": item["id"], "content_index": 0, "text": ANSWER, "logprobs": []}))
            frames.append(ev("response.content_part.done", {"output_index": 0, "item_id": item["id"], "content_index": 0, "part": dict(part, text=ANSWER)}))
        frames.append(ev("response.output_item.done", {"output_index": 0, "item": item}))
        frames.append(ev("response.completed", {"response": done}))
        self._stream(frames)

    # -- Anthropic Messages ------------------------------------------------------------------

    def _messages(self, body):
        call = None
        if self.server.scenario == "tool" and not _messages_has_tool_result(body):
            call = _messages_tool(body)
        mid = f"msg_rec{self.server.next_id()}"
        if call:
            block = {"type": "tool_use", "id": "toolu_rec1", "name": call[0], "input": call[1]}
        else:
            block = {"type": "text", "text": ANSWER}
        stop = "tool_use" if call else "end_turn"
        usage = {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if not body.get("stream"):
            return self._json(200, {"id": mid, "type": "message", "role": "assistant", "model": body.get("model"),
                                    "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage})

        def ev(kind, data):
            return _sse(kind, dict(data, type=kind))

        frames = [ev("message_start", {"message": {"id": mid, "type": "message", "role": "assistant",
                                                   "model": body.get("model"), "content": [], "stop_reason": None,
                                                   "stop_sequence": None, "usage": dict(usage, output_tokens=1)}}),
                  ev("ping", {})]
        if call:
            frames.append(ev("content_block_start", {"index": 0, "content_block": dict(block, input={})}))
            frames.append(ev("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": json.dumps(call[1])}}))
        else:
            frames.append(ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
            for piece in ["Hello ", "from ", "the ", "recorder"]:
                frames.append(ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}))
        frames.append(ev("content_block_stop", {"index": 0}))
        frames.append(ev("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                           "usage": {"output_tokens": USAGE_OUT}}))
        frames.append(ev("message_stop", {}))
        self._stream(frames)


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, scenario="text", out=None, port=0):
        super().__init__(("127.0.0.1", port), Recorder)
        self.scenario = scenario
        self.out = out
        self.requests = []
        self._lock = threading.Lock()
        self._ids = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_id(self):
        with self._lock:
            self._ids += 1
            return self._ids

    def store(self, entry):
        with self._lock:
            entry["seq"] = len(self.requests) + 1
            self.requests.append(entry)
            if self.out:
                os.makedirs(self.out, exist_ok=True)
                name = entry["path"].split("?")[0].strip("/").replace("/", "_") or "root"
                with open(os.path.join(self.out, f"{entry['seq']:02d}-{entry['method'].lower()}-{name}.json"), "w") as f:
                    json.dump(entry, f, indent=2, sort_keys=True)
                    f.write("\n")

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=["text", "tool"], default="text")
    parser.add_argument("--out", help="a folder for one JSON file per request")
    args = parser.parse_args()
    server = RecordingServer(args.scenario, args.out, args.port)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

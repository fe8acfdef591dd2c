"""Real coding agents against the gateway: Codex CLI (`codex exec`, Responses API) and Claude
Code (`claude -p`, Anthropic Messages), pinned and installed by tests/compat/tools/install.

Each run must reach no address but 127.0.0.1: the agents get HTTP(S)_PROXY pointing at a trap
recorder that must stay empty, every network destination they try is traced with strace where it
is installed, and tests/compat/run runs the suite in a network namespace with only a loopback
interface where it can (COMPAT_NETNS=1), which this module then checks.
"""

import os

import pytest

import coding_agents
from ledger import assert_recorded, records_since
from recorder import RecordingServer

CHAT_COST = 12 * 0.000001 + 5 * 0.000002
CLAUDE_COST = 12 * 0.000003 + 5 * 0.000015


@pytest.fixture(scope="module")
def tools():
    reason = os.environ.get("COMPAT_TOOLS_ERROR")
    if reason:
        pytest.skip(f"the coding agents could not be installed with npm: {reason}")
    missing = [name for name in ("codex", "claude") if not coding_agents.binary(name)]
    assert not missing, f"{missing} not installed in {coding_agents.TOOLS}: run tests/compat/tools/install"


@pytest.fixture(scope="module")
def trap():
    server = RecordingServer("text").start()
    yield server
    server.shutdown()


def test_the_suite_runs_with_only_loopback():
    if os.environ.get("COMPAT_NETNS") != "1":
        pytest.skip("not in a loopback-only network namespace (tests/compat/run needs root and unshare for that)")
    assert coding_agents.loopback_only()


def check_confined(run, trap):
    assert run.returncode == 0, run.describe()
    assert trap.requests == [], f"the agent used the proxy: {trap.requests}"
    assert run.outside() == [], f"the agent tried to reach {run.outside()}"
    if os.environ.get("COMPAT_NETNS") == "1":
        assert coding_agents.loopback_only()


def upstream_models(upstream, before):
    return [r["body"].get("model") for r in upstream.RequestHandlerClass.requests[before:]
            if isinstance(r["body"], dict)]


# (model asked for, or None for the agent's default; the catalogue model that serves it; its
# upstream model; the cost of one mock answer)
CODEX_CASES = [
    (None, "mock/chat", "mock-chat", CHAT_COST),
    ("mock/chat", "mock/chat", "mock-chat", CHAT_COST),
    ("mock/claude", "mock/claude", "claude-mock", CLAUDE_COST),
]


@pytest.mark.parametrize("model,served,upstream_model,cost", CODEX_CASES, ids=["default-model", "mock-chat", "mock-claude"])
def test_codex_exec(tools, trap, gateway, upstream, tmp_path, model, served, upstream_model, cost):
    if model is None:
        gateway.require_extensions()
    audited = len(gateway.audit_records())
    before = len(upstream.RequestHandlerClass.requests)
    run = coding_agents.codex(str(tmp_path), gateway.api, "Say hello", key=gateway.key, model=model, trap_url=trap.url)
    check_confined(run, trap)
    assert run.answer == "Hello from the mock", run.describe()
    # One model call, answered with text: the mock calls only the suite's own tool.
    assert upstream_models(upstream, before) == [upstream_model]
    requested = model or coding_agents.CODEX_DEFAULT_MODEL
    records = records_since(gateway, audited, requested_model=requested)
    assert len(records) == 1, records
    assert_recorded(gateway, records[0]["generation_id"], api="responses", model=served, cost=cost,
                    requested=requested, streamed=True)


CLAUDE_CASES = [
    (None, "mock/claude", "claude-mock", CLAUDE_COST),
    ("mock/chat", "mock/chat", "mock-chat", CHAT_COST),
]


@pytest.mark.parametrize("model,served,upstream_model,cost", CLAUDE_CASES, ids=["default-model", "mock-chat"])
@pytest.mark.parametrize("auth", ["api-key", "token"])
def test_claude_code(tools, trap, gateway, upstream, tmp_path, model, served, upstream_model, cost, auth):
    if model is None:
        gateway.require_extensions()
    audited = len(gateway.audit_records())
    before = len(upstream.RequestHandlerClass.requests)
    run = coding_agents.claude_code(str(tmp_path), gateway.base + "/api", "Say hello", key=gateway.key,
                                    model=model, auth=auth, trap_url=trap.url)
    check_confined(run, trap)
    assert run.answer == "Hello from the mock", run.describe()
    assert upstream_models(upstream, before) == [upstream_model]
    requested = model or coding_agents.CLAUDE_CODE_DEFAULT_MODEL
    records = records_since(gateway, audited, requested_model=requested)
    assert len(records) == 1, records
    assert_recorded(gateway, records[0]["generation_id"], api="messages", model=served, cost=cost,
                    requested=requested, streamed=True)


"""The Node SDKs of tests/compat/node (openai, @anthropic-ai/sdk, @openrouter/sdk, the AI SDK),
pinned by its lockfile, run by node's test runner against the suite's gateway."""

import os
import subprocess

import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
FILES = sorted(f for f in os.listdir(NODE_DIR) if f.endswith(".test.mjs"))


@pytest.fixture(scope="module")
def management_key(gateway):
    """A management key of the suite's account, for the SDKs' management calls."""
    return gateway.cli("keys", "create", "--name", "compat-node-admin", "--management").strip()


@pytest.mark.parametrize("name", FILES)
def test_node_sdk(gateway, management_key, name):
    reason = os.environ.get("COMPAT_NODE_ERROR")
    if reason:
        pytest.skip(f"the Node packages could not be installed with npm: {reason}")
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules")), \
        "tests/compat/node has no node_modules: run `npm ci` there (tests/compat/run does)"
    env = dict(os.environ, SWITCHYARD_BASE=gateway.base, SWITCHYARD_KEY=gateway.key,
               SWITCHYARD_ADMIN_KEY=management_key, NO_COLOR="1")
    run = subprocess.run(["node", "--test", "--test-reporter=spec", name], cwd=NODE_DIR, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{name}\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"

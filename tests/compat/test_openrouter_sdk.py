"""The official `openrouter` SDK against the gateway, field by field."""

import os
import subprocess
import time
from datetime import datetime, timezone

import pytest
from openrouter import OpenRouter, errors
from openrouter.operations.getuseractivity import GetUserActivityRequest


@pytest.fixture()
def client(gateway):
    return OpenRouter(api_key=gateway.key, server_url=gateway.api)


def test_plain_completion(client):
    result = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}])
    assert result.id.startswith("gen-")
    assert result.model == "mock/chat"
    assert result.choices[0].message.content == "Hello from the mock"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.prompt_tokens == 12
    assert result.usage.completion_tokens == 5
    assert result.usage.total_tokens == 17
    assert result.usage.cost == pytest.approx(0.000022)


def test_streamed_completion_with_final_usage(client):
    stream = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}], stream=True)
    chunks = list(stream)
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert text == "Hello from the mock"
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    assert with_usage[0].usage.completion_tokens == 5
    assert with_usage[0].usage.cost == pytest.approx(0.000022)


def test_tool_calls(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    result = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Weather?"}], tools=tools)
    call = result.choices[0].message.tool_calls[0]
    assert result.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris"}'


def test_bad_key_error(gateway):
    bad = OpenRouter(api_key="sk-or-v1-" + "0" * 64, server_url=gateway.api)
    with pytest.raises(errors.OpenRouterError) as info:
        bad.chat.send(model="mock/chat", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401


def _wait_for_generation(client, gen_id):
    """Settlement happens off the request path: poll briefly for the record."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return client.generations.get_generation(id=gen_id).data
        except errors.OpenRouterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def admin(gateway):
    """A management key, made with the CLI against the running gateway's database."""
    args = gateway.process.args
    config = args[args.index("--config") + 1]
    env = dict(os.environ, NO_COLOR="1", MOCK_PROVIDER_KEY="mock-secret")
    key = subprocess.run([args[0], "--config", config, "keys", "create", "--name", "compat-admin", "--management"],
                         check=True, env=env, capture_output=True, text=True).stdout.strip()
    return OpenRouter(api_key=key, server_url=gateway.api)


def test_current_key(client):
    data = client.api_keys.get_current_key_metadata().data
    assert data.label.startswith("sk-or-v1-") and "..." in data.label
    assert data.limit is None
    assert data.limit_remaining is None
    assert data.limit_reset is None
    assert data.include_byok_in_limit is False
    # Every request of this session happened today, so every window holds all of it.
    assert data.usage >= 0
    assert data.usage_daily == data.usage_weekly == data.usage_monthly == data.usage
    assert data.byok_usage == data.byok_usage_daily == data.byok_usage_weekly == data.byok_usage_monthly == 0
    assert data.is_free_tier is False
    assert data.is_management_key is False
    assert data.is_provisioning_key is False
    assert data.creator_user_id is None
    assert data.expires_at is None
    assert data.organization_id is None
    assert data.workspace_id is None
    assert data.allowed_data_regions == []
    assert data.budgets == []
    assert data.effective_budget is None


def test_get_generation(client):
    completion = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}],
                                  user="compat-user", session_id="compat-session",
                                  http_referer="https://compat.example", x_open_router_title="Compat")
    data = _wait_for_generation(client, completion.id)
    assert data.id == completion.id
    assert data.model == "mock/chat"
    assert data.provider_name == "Mock"
    assert data.upstream_id == "chatcmpl-mock"
    assert data.api_type == "completions"
    assert data.streamed is False
    assert data.cancelled is False
    assert data.is_byok is False
    assert data.finish_reason == "stop"
    assert data.native_finish_reason == "stop"
    assert data.tokens_prompt == 12 and data.tokens_completion == 5
    assert data.native_tokens_prompt == 12 and data.native_tokens_completion == 5
    assert data.native_tokens_reasoning == 0 and data.native_tokens_cached == 0
    assert data.total_cost == pytest.approx(0.000022)
    assert data.usage == pytest.approx(0.000022)
    assert data.upstream_inference_cost is None
    assert data.external_user == "compat-user"
    assert data.session_id == "compat-session"
    assert data.http_referer == "https://compat.example"
    assert data.origin == "https://compat.example"
    assert data.data_region == "global"
    assert data.latency is not None and data.latency >= 0
    assert data.generation_time is not None and data.generation_time >= 0
    created = datetime.fromisoformat(data.created_at.replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60


def test_get_generation_of_a_stream(client):
    stream = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}], stream=True)
    chunks = list(stream)
    data = _wait_for_generation(client, chunks[0].id)
    assert data.streamed is True
    assert data.tokens_completion == 5
    assert data.total_cost == pytest.approx(0.000022)
    assert data.external_user is None


def test_unknown_generation_is_not_found(client):
    with pytest.raises(errors.OpenRouterError) as info:
        client.generations.get_generation(id="gen-does-not-exist")
    assert info.value.status_code == 404


def test_management_keys_and_credits(admin, client, gateway):
    created = admin.api_keys.create(name="compat-limited", limit=1.5, limit_reset="weekly",
                                    include_byok_in_limit=True, creator_user_id="user-compat")
    assert created.key.startswith("sk-or-v1-")
    key = created.data
    assert key.name == "compat-limited"
    assert key.label.startswith("sk-or-v1-")
    assert key.disabled is False
    assert key.limit == 1.5 and key.limit_remaining == 1.5
    assert key.limit_reset == "weekly"
    assert key.include_byok_in_limit is True
    assert key.creator_user_id == "user-compat"
    assert key.usage == 0 and key.byok_usage == 0
    assert key.workspace_id
    assert key.last_used_at is None

    # The new key sees its own limit through the current-key call.
    limited = OpenRouter(api_key=created.key, server_url=gateway.api)
    completion = limited.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}])
    cost = _wait_for_generation(limited, completion.id).total_cost
    current = limited.api_keys.get_current_key_metadata().data
    assert current.limit == 1.5
    assert current.limit_reset == "weekly"
    assert current.usage == pytest.approx(cost) and current.usage_weekly == pytest.approx(cost)
    assert current.limit_remaining == pytest.approx(1.5 - cost)
    assert current.creator_user_id == "user-compat"
    budget = current.effective_budget
    assert budget.limit_usd == 1.5 and budget.reset_interval == "weekly"
    assert budget.spend_usd == pytest.approx(cost)
    assert budget.remaining_usd == pytest.approx(1.5 - cost)

    # The key that made the generation reads it; another standard key of the account does not.
    assert limited.generations.get_generation(id=completion.id).data.id == completion.id
    with pytest.raises(Exception):
        client.generations.get_generation(id=completion.id)

    got = admin.api_keys.get(hash=key.hash).data
    assert got.usage == pytest.approx(cost)
    assert got.last_used_at is not None
    listed = admin.api_keys.list().data
    assert key.hash in [k.hash for k in listed]

    updated = admin.api_keys.update(hash=key.hash, name="compat-renamed", disabled=True, limit=None).data
    assert updated.name == "compat-renamed" and updated.disabled is True and updated.limit is None
    assert key.hash not in [k.hash for k in admin.api_keys.list().data]
    assert key.hash in [k.hash for k in admin.api_keys.list(include_disabled=True).data]
    with pytest.raises(errors.OpenRouterError) as info:
        limited.api_keys.get_current_key_metadata()
    assert info.value.status_code == 401

    assert admin.api_keys.delete(hash=key.hash).DELETED is True
    with pytest.raises(errors.OpenRouterError) as info:
        admin.api_keys.get(hash=key.hash)
    assert info.value.status_code == 404

    credits = admin.credits.get_credits().data
    assert credits.total_credits == pytest.approx(10)
    assert credits.total_usage >= cost

    # Access rules: a standard key cannot manage, a management key cannot infer.
    with pytest.raises(errors.OpenRouterError) as info:
        client.credits.get_credits()
    assert info.value.status_code == 403
    with pytest.raises(errors.OpenRouterError) as info:
        admin.chat.send(model="mock/chat", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 403


def test_activity(admin):
    # Today's requests are not in a completed day yet: the report is well-formed and empty.
    activity = admin.analytics.get_user_activity()
    assert activity.data == []
    with pytest.raises(errors.OpenRouterError) as info:
        admin.analytics.get_user_activity(request=GetUserActivityRequest(date_="not-a-date"))
    assert info.value.status_code == 400


def test_catalogue_reads(client, gateway):
    # Every read of the catalogue parses into the SDK's typed models.
    page = client.models.list()
    ids = [m.id for m in page.result.data]
    assert ids == ["mock/claude", "mock/gemini", "mock/chat"]
    chat = page.result.data[-1]
    assert chat.architecture.tokenizer == "Other"
    assert "temperature" in chat.supported_parameters
    assert page.result.total_count == 3 and page.result.links.next is None
    assert client.models.count().data.count == 3
    assert client.models.get(author="mock", slug="chat").data.id == "mock/chat"
    mine = client.models.list_for_user(security={"bearer": gateway.key})
    assert [m.id for m in mine.result.data] == ids
    endpoints = client.endpoints.list(author="mock", slug="chat").data
    assert endpoints.id == "mock/chat" and endpoints.endpoints[0].supported_parameters
    zdr = client.endpoints.list_zdr_endpoints()
    assert isinstance(zdr.data, list)
    with pytest.raises(errors.OpenRouterError):
        client.models.list(limit=0)

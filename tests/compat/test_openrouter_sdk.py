"""The official `openrouter` SDK against the gateway, field by field."""

import json
import os
import subprocess
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from openrouter import OpenRouter, errors
from openrouter.operations.getuseractivity import GetUserActivityRequest

from ledger import assert_recorded


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


# --- Every method of the SDK: exercised below, or its operation is not served by the gateway. ---

# SDK namespace.method -> the operation it calls; each is called by a test of this file.
EXERCISED = {
    "analytics.get_user_activity": "GET /activity",
    "api_keys.create": "POST /keys",
    "api_keys.delete": "DELETE /keys/{hash}",
    "api_keys.get": "GET /keys/{hash}",
    "api_keys.get_current_key_metadata": "GET /key",
    "api_keys.list": "GET /keys",
    "api_keys.update": "PATCH /keys/{hash}",
    "beta.responses.send": "POST /responses",
    "chat.send": "POST /chat/completions",
    "credits.get_credits": "GET /credits",
    "embeddings.generate": "POST /embeddings",
    "embeddings.list_models": "GET /embeddings/models",
    "endpoints.list": "GET /models/{author}/{slug}/endpoints",
    "endpoints.list_zdr_endpoints": "GET /endpoints/zdr",
    "generations.get_generation": "GET /generation",
    "generations.list_generation_content": "GET /generation/content",
    "guardrails.bulk_assign_keys": "POST /guardrails/{id}/assignments/keys",
    "guardrails.bulk_unassign_keys": "POST /guardrails/{id}/assignments/keys/remove",
    "guardrails.create": "POST /guardrails",
    "guardrails.delete": "DELETE /guardrails/{id}",
    "guardrails.get": "GET /guardrails/{id}",
    "guardrails.list": "GET /guardrails",
    "guardrails.list_guardrail_key_assignments": "GET /guardrails/{id}/assignments/keys",
    "guardrails.list_key_assignments": "GET /guardrails/assignments/keys",
    "guardrails.update": "PATCH /guardrails/{id}",
    "models.count": "GET /models/count",
    "models.get": "GET /model/{author}/{slug}",
    "models.list": "GET /models",
    "models.list_for_user": "GET /models/user",
    "presets.create_presets_chat_completions": "POST /presets/{slug}/chat/completions",
    "presets.create_presets_messages": "POST /presets/{slug}/messages",
    "presets.create_presets_responses": "POST /presets/{slug}/responses",
    "presets.get": "GET /presets/{slug}",
    "presets.get_version": "GET /presets/{slug}/versions/{version}",
    "presets.list": "GET /presets",
    "presets.list_versions": "GET /presets/{slug}/versions",
    "providers.list": "GET /providers",
    "responses.send": "POST /responses",
}

# SDK namespace.method -> why it is not exercised: its operation is refused or not applicable
# in docs/openrouter-compatibility.md, or outside the OpenAPI document and not served.
NOT_SERVED = {
    "alpha.decisions.create": "POST /api/alpha/decisions: not in the document, not served",
    "analytics.get_analytics_meta": "GET /analytics/meta: refused",
    "analytics.query_analytics": "POST /analytics/query: refused",
    "batch.create_batches": "POST /batches: not in the document, not served",
    "batch.delete": "DELETE /batches/{id}: not in the document, not served",
    "batch.get_batches": "GET /batches/{id}: not in the document, not served",
    "batch.list": "GET /batches: not in the document, not served",
    "benchmarks.get_benchmarks": "GET /benchmarks: not applicable",
    "byok.create": "POST /byok: refused",
    "byok.delete": "DELETE /byok/{id}: refused",
    "byok.get": "GET /byok/{id}: refused",
    "byok.list": "GET /byok: refused",
    "byok.update": "PATCH /byok/{id}: refused",
    "classifications.get_task_classifications": "GET /classifications/task: not applicable",
    "containers.download_container_file_content": "containers: not in the document, not served",
    "containers.get_container_file": "containers: not in the document, not served",
    "containers.list_container_files": "containers: not in the document, not served",
    "containers.promote_container_file": "containers: not in the document, not served",
    "datasets.get_app_rankings": "GET /datasets/app-rankings: not applicable",
    "datasets.get_rankings_daily": "GET /datasets/rankings-daily: not applicable",
    "datasets.get_session_cost": "GET /datasets/session-cost: not applicable",
    "external_users.create": "external users: not in the document, not served",
    "external_users.delete": "external users: not in the document, not served",
    "external_users.get": "external users: not in the document, not served",
    "external_users.list": "external users: not in the document, not served",
    "external_users.update": "external users: not in the document, not served",
    "files.delete": "DELETE /files/{file_id}: refused",
    "files.download": "GET /files/{file_id}/content: refused",
    "files.list": "GET /files: refused",
    "files.retrieve": "GET /files/{file_id}: refused",
    "files.upload": "POST /files: refused",
    "generations.submit_feedback": "POST /generation/feedback: refused",
    "guardrails.bulk_assign_members": "POST /guardrails/{id}/assignments/members: not applicable",
    "guardrails.bulk_unassign_members": "POST /guardrails/{id}/assignments/members/remove: not applicable",
    "guardrails.list_guardrail_member_assignments": "GET /guardrails/{id}/assignments/members: not applicable",
    "guardrails.list_member_assignments": "GET /guardrails/assignments/members: not applicable",
    "images.generate": "POST /images: refused",
    "images.list_model_endpoints": "GET /images/models/{author}/{slug}/endpoints: refused",
    "images.list_models": "GET /images/models: refused",
    "o_auth.create_auth_code": "POST /auth/keys/code: not applicable",
    "o_auth.create_oauth_token": "OAuth tokens: not in the document, not served",
    "o_auth.exchange_auth_code_for_api_key": "POST /auth/keys: not applicable",
    "o_auth.list_oauth_jwks": "GET /oauth/jwks: not in the document, not served",
    "observability.create": "POST /observability/destinations: refused",
    "observability.delete": "DELETE /observability/destinations/{id}: refused",
    "observability.get": "GET /observability/destinations/{id}: refused",
    "observability.list": "GET /observability/destinations: refused",
    "observability.update": "PATCH /observability/destinations/{id}: refused",
    "organization.get_settings": "GET /organization/settings: not in the document, not served",
    "organization.list_members": "GET /organization/members: not applicable",
    "organization.update_settings": "PATCH /organization/settings: not in the document, not served",
    "private_endpoints.activate": "private endpoints: not in the document, not served",
    "private_endpoints.create": "private endpoints: not in the document, not served",
    "private_endpoints.delete": "private endpoints: not in the document, not served",
    "private_endpoints.disable": "private endpoints: not in the document, not served",
    "private_endpoints.enable": "private endpoints: not in the document, not served",
    "private_endpoints.get": "private endpoints: not in the document, not served",
    "private_endpoints.list": "private endpoints: not in the document, not served",
    "private_endpoints.update": "private endpoints: not in the document, not served",
    "private_endpoints.update_pricing": "private endpoints: not in the document, not served",
    "private_endpoints.validate": "private endpoints: not in the document, not served",
    "rerank.rerank": "POST /rerank: refused",
    "scim.create": "POST /scim/group-mappings: not applicable",
    "scim.create_sync_job": "SCIM sync jobs: not in the document, not served",
    "scim.delete": "DELETE /scim/group-mappings/{id}: not applicable",
    "scim.get_sync_job": "SCIM sync jobs: not in the document, not served",
    "scim.list_groups": "GET /scim/groups: not applicable",
    "scim.list_mappings": "GET /scim/group-mappings: not applicable",
    "scim.read": "GET /scim/group-mappings/{id}: not applicable",
    "scim.update": "PATCH /scim/group-mappings/{id}: not applicable",
    "stt.create_transcription": "POST /audio/transcriptions: refused",
    "stt.create_transcription_multipart": "POST /audio/transcriptions: refused",
    "system_one.create": "POST /systemone: not in the document, not served",
    "tools.get_tool": "GET /tools/{name}: not in the document, not served",
    "tools.list_tools": "GET /tools: not in the document, not served",
    "tts.create_speech": "POST /audio/speech: refused",
    "vault.copy_vault_secrets_to_intern": "vault: not in the document, not served",
    "vault.delete_intern_vault_secret": "vault: not in the document, not served",
    "vault.delete_vault_secret": "vault: not in the document, not served",
    "vault.list_intern_connections": "vault: not in the document, not served",
    "vault.list_intern_effective_vault_secrets": "vault: not in the document, not served",
    "vault.list_intern_vault_secrets": "vault: not in the document, not served",
    "vault.list_vault_secrets": "vault: not in the document, not served",
    "vault.store_intern_vault_secret": "vault: not in the document, not served",
    "vault.store_vault_secret": "vault: not in the document, not served",
    "video_generation.generate": "POST /videos: refused",
    "video_generation.get_generation": "GET /videos/{jobId}: refused",
    "video_generation.get_video_content": "GET /videos/{jobId}/content: refused",
    "video_generation.list_videos_models": "GET /videos/models: refused",
    "workspaces.bulk_add_members": "POST /workspaces/{id}/members/add: not applicable",
    "workspaces.bulk_remove_members": "POST /workspaces/{id}/members/remove: not applicable",
    "workspaces.create": "POST /workspaces: not applicable",
    "workspaces.delete": "DELETE /workspaces/{id}: not applicable",
    "workspaces.delete_budget": "DELETE /workspaces/{id}/budgets/{interval}: not applicable",
    "workspaces.get": "GET /workspaces/{id}: not applicable",
    "workspaces.get_budget": "GET /workspaces/{id}/budgets/{interval}: not applicable",
    "workspaces.list": "GET /workspaces: not applicable",
    "workspaces.list_budgets": "GET /workspaces/{id}/budgets: not applicable",
    "workspaces.list_members": "GET /workspaces/{id}/members: not applicable",
    "workspaces.set_budget": "PUT /workspaces/{id}/budgets/{interval}: not applicable",
    "workspaces.update": "PATCH /workspaces/{id}: not applicable",
}


def _sdk_methods(namespace, prefix=""):
    """`namespace.method` of every public synchronous method of an SDK namespace and of the
    namespaces inside it."""
    found = set()
    names = set(getattr(namespace, "_sub_sdk_map", {})) | set(vars(type(namespace))) | set(vars(namespace))
    for name in sorted(names):
        if name.startswith("_") or name.endswith("_async") or name in ("sdk_configuration", "dynamic_import", "parent_ref"):
            continue
        value = getattr(namespace, name, None)
        if callable(value) and hasattr(type(namespace), name):
            found.add(prefix + name)
        elif value is not None and hasattr(value, "sdk_configuration"):
            found |= _sdk_methods(value, f"{prefix}{name}.")
    return found


def test_every_sdk_method_is_exercised_or_not_served(client):
    methods = _sdk_methods(client)
    assert "chat.send" in methods and "beta.responses.send" in methods
    assert not set(EXERCISED) & set(NOT_SERVED)
    unknown = sorted(methods - set(EXERCISED) - set(NOT_SERVED))
    assert unknown == [], f"SDK methods neither exercised nor listed as not served: {unknown}"
    gone = sorted((set(EXERCISED) | set(NOT_SERVED)) - methods)
    assert gone == [], f"listed methods the SDK does not have: {gone}"


def test_not_served_operations_are_the_sdks_not_found(client, admin):
    # A method of an operation the gateway does not serve raises the SDK's typed 404.
    with pytest.raises(errors.OpenRouterError) as info:
        admin.byok.list()
    assert info.value.status_code == 404
    assert json.loads(info.value.body)["error"] == {
        "code": 404, "message": "No route for GET /api/v1/byok", "metadata": {"error_type": "not_found"}}
    with pytest.raises(errors.OpenRouterError) as info:
        client.rerank.rerank(model="mock/chat", query="q", documents=["a"])
    assert info.value.status_code == 404


CHAT_COST = Decimal("0.000022")  # mock/chat: 12 prompt tokens at 0.000001, 5 completion at 0.000002
HELLO = [{"role": "user", "content": "Say hello"}]


def _usage_is_mock_chats(usage, *, prompt="prompt_tokens", completion="completion_tokens"):
    """The usage of one mock/chat answer: 12 + 5 tokens at the catalogue's prices, exactly."""
    assert getattr(usage, prompt) == 12
    assert getattr(usage, completion) == 5
    assert usage.total_tokens == 17
    assert Decimal(str(usage.cost)) == CHAT_COST
    assert usage.is_byok is False


def _routing_metadata(meta, attempts=1):
    assert meta.requested == "mock/chat"
    assert meta.strategy == "direct"
    assert meta.attempt == attempts
    assert meta.is_byok is False
    assert meta.region is None
    assert meta.endpoints.total == 1
    assert [(e.model, e.provider, e.selected) for e in meta.endpoints.available] == [("mock/chat", "mock", True)]
    assert [(a.model, a.provider, a.status) for a in meta.attempts] == [("mock/chat", "mock", 200)]
    assert meta.summary == "mock/chat served by mock on attempt 1 of 1 candidates (0 endpoints excluded)"
    assert meta.generation_time is not None and meta.generation_time >= 0


def test_chat_with_routing_metadata(client, gateway):
    result = client.chat.send(model="mock/chat", messages=HELLO, x_open_router_metadata="enabled")
    assert result.object == "chat.completion"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == "Hello from the mock"
    _usage_is_mock_chats(result.usage)
    assert result.usage.completion_tokens_details.reasoning_tokens == 0
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert Decimal(str(result.usage.cost_details.upstream_inference_prompt_cost)) == Decimal("0.000012")
    assert Decimal(str(result.usage.cost_details.upstream_inference_completions_cost)) == Decimal("0.00001")
    _routing_metadata(result.openrouter_metadata)
    assert_recorded(gateway, result.id, api="chat", model="mock/chat", cost=0.000022, requested="mock/chat", streamed=False)
    # Without the header, no metadata.
    assert client.chat.send(model="mock/chat", messages=HELLO).openrouter_metadata is None


def test_streamed_chat_with_routing_metadata(client, gateway):
    chunks = list(client.chat.send(model="mock/chat", messages=HELLO, stream=True, x_open_router_metadata="enabled"))
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" and c.model == "mock/chat" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the mock"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    _usage_is_mock_chats(last.usage)
    _routing_metadata(last.openrouter_metadata)
    assert_recorded(gateway, chunks[0].id, api="chat", model="mock/chat", cost=0.000022, streamed=True)


def test_chat_errors_are_typed(client):
    with pytest.raises(errors.BadRequestResponseError) as info:
        client.chat.send(model="no/such-model", messages=HELLO)
    assert info.value.status_code == 400
    assert info.value.data.error.code == 400
    assert "no/such-model" in info.value.data.error.message
    with pytest.raises(errors.BadRequestResponseError) as info:
        client.chat.send(model="mock/chat", messages=HELLO, temperature=9)
    assert "temperature" in info.value.data.error.message


@pytest.mark.parametrize("namespace", ["responses", "beta.responses"])
def test_responses(client, gateway, namespace):
    api = client.responses if namespace == "responses" else client.beta.responses
    result = api.send(model="mock/chat", input="Say hello", instructions="Be brief.", max_output_tokens=50)
    assert result.id.startswith("gen-")
    assert result.object == "response"
    assert result.status == "completed"
    assert result.model == "mock/chat"
    assert result.instructions == "Be brief."
    assert result.error is None and result.incomplete_details is None
    assert result.store is False
    assert result.max_output_tokens == 50
    assert result.completed_at >= result.created_at
    assert len(result.output) == 1
    message = result.output[0]
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert message.id == f"msg_{result.id}_0"
    assert [(p.type, p.text, p.annotations) for p in message.content] == [("output_text", "Hello from the mock", [])]
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (12, 5, 17)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert Decimal(str(usage.cost)) == CHAT_COST
    assert Decimal(str(usage.cost_details.upstream_inference_input_cost)) == Decimal("0.000012")
    assert Decimal(str(usage.cost_details.upstream_inference_output_cost)) == Decimal("0.00001")
    assert usage.is_byok is False
    assert_recorded(gateway, result.id, api="responses", model="mock/chat", cost=0.000022, streamed=False)


def test_streamed_responses(client, gateway):
    events = list(client.responses.send(model="mock/chat", input="Say hello", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from the mock"
    done = [e for e in events if e.type == "response.output_text.done"]
    assert len(done) == 1 and done[0].text == "Hello from the mock"
    final = events[-1].response
    assert final.status == "completed"
    assert final.output[0].content[0].text == "Hello from the mock"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 5)
    assert Decimal(str(final.usage.cost)) == CHAT_COST
    assert_recorded(gateway, final.id, api="responses", model="mock/chat", cost=0.000022, streamed=True)


def test_embeddings(client, gateway):
    gateway.require_extensions()
    result = client.embeddings.generate(model="mock/embed", input=["first", "second"])
    assert result.object == "list"
    assert result.model == "mock/embed"
    assert [(e.object, e.index, e.embedding) for e in result.data] == [
        ("embedding", 0, [0.25, 0.5, 0.75, 1.0]), ("embedding", 1, [0.5, 1.0, 1.5, 2.0])]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (6, 6)
    # 6 tokens at 0.0000001.
    assert Decimal(str(result.usage.cost)) == Decimal("0.0000006")
    assert_recorded(gateway, result.id, api="embeddings", model="mock/embed", cost=0.0000006)
    # The alias is served as the model it names.
    assert client.embeddings.generate(model="mock-embed-small", input="x").model == "mock/embed"
    with pytest.raises(errors.BadRequestResponseError) as info:
        client.embeddings.generate(model="mock/chat", input="x")
    assert info.value.status_code == 400

    page = client.embeddings.list_models()
    assert [m.id for m in page.result.data] == ["mock/embed"]
    embed = page.result.data[0]
    assert embed.name == "Mock: Embed"
    assert embed.canonical_slug == "mock/embed"
    assert embed.context_length == 8192
    assert embed.architecture.modality == "text->embeddings"
    assert embed.architecture.output_modalities == ["embeddings"]
    assert (embed.pricing.prompt, embed.pricing.completion) == ("0.0000001", "0")
    assert page.result.total_count == 1 and page.result.links.next is None


def test_catalogue_fields(client, gateway):
    page = client.models.list()
    claude, gemini, chat = page.result.data
    assert (chat.id, chat.name, chat.canonical_slug) == ("mock/chat", "Mock: Chat", "mock/chat")
    assert chat.context_length == 400000
    assert (chat.pricing.prompt, chat.pricing.completion) == ("0.000001", "0.000002")
    assert (gemini.pricing.prompt, gemini.pricing.completion) == ("0.000001", "0.000004")
    assert (claude.pricing.prompt, claude.pricing.completion) == ("0.000003", "0.000015")
    assert chat.architecture.modality == "text->text"
    assert chat.architecture.input_modalities == ["text"] and chat.architecture.output_modalities == ["text"]
    assert chat.top_provider.context_length == 400000
    assert chat.top_provider.max_completion_tokens == 1000
    assert chat.top_provider.is_moderated is False
    assert sorted(chat.supported_parameters) == ["max_tokens", "seed", "stop", "temperature", "tool_choice", "tools"]
    assert chat.links.details == "/api/v1/models/mock/chat/endpoints"
    assert chat.supported_voices is None
    # Pagination: one model a page, the link to the next page while models remain.
    first = client.models.list(limit=1)
    assert [m.id for m in first.result.data] == ["mock/claude"] and first.result.total_count == 3
    assert first.result.links.next is not None
    second = client.models.list(limit=1, offset=1)
    assert [m.id for m in second.result.data] == ["mock/gemini"]
    assert [m.id for m in client.models.list(q="gemini").result.data] == ["mock/gemini"]
    assert client.models.count(output_modalities="text").data.count == 3
    # Embedding models are listed and counted when their output modality is asked for.
    assert [m.id for m in client.models.list(output_modalities="embeddings").result.data] == ["mock/embed"]
    assert client.models.count(output_modalities="embeddings").data.count == 1
    with pytest.raises(errors.BadRequestResponseError) as info:
        client.models.list(distillable="true")
    assert "distillable" in info.value.data.error.message

    one = client.models.get(author="mock", slug="chat").data
    assert one.model_dump() == chat.model_dump()
    with pytest.raises(errors.NotFoundResponseError):
        client.models.get(author="mock", slug="absent")

    endpoints = client.endpoints.list(author="mock", slug="chat").data
    assert (endpoints.id, endpoints.name, endpoints.created) == ("mock/chat", "Mock: Chat", 0)
    [endpoint] = endpoints.endpoints
    assert endpoint.name == "Mock | mock/chat"
    assert (endpoint.model_id, endpoint.model_name) == ("mock/chat", "Mock: Chat")
    assert endpoint.provider_name == "Mock" and endpoint.tag == "mock"
    assert (endpoint.pricing.prompt, endpoint.pricing.completion) == ("0.000001", "0.000002")
    assert endpoint.context_length == 400000 and endpoint.max_completion_tokens == 1000
    assert endpoint.max_prompt_tokens is None
    assert endpoint.quantization == "unknown"
    assert endpoint.status == 0
    assert endpoint.supports_implicit_caching is False
    assert sorted(endpoint.supported_parameters) == sorted(chat.supported_parameters)

    zdr = client.endpoints.list_zdr_endpoints().data
    # Every mock provider keeps no data: every endpoint of the catalogue is listed.
    assert [(e.model_id, e.tag) for e in zdr][:3] == [
        ("mock/claude", "mock-anthropic"), ("mock/gemini", "mock-gemini"), ("mock/chat", "mock")]
    assert [e.provider_name for e in zdr][:3] == ["Mock Anthropic", "Mock Gemini", "Mock"]

    providers = client.providers.list().data
    assert [(p.slug, p.name) for p in providers] == [
        ("mock", "Mock"), ("mock-anthropic", "Mock Anthropic"), ("mock-gemini", "Mock Gemini")]
    assert all(p.privacy_policy_url is None and p.terms_of_service_url is None and p.status_page_url is None
               and p.headquarters is None and p.datacenters == [] for p in providers)


def test_generation_content(client, admin):
    completion = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello, logged"}])
    _wait_for_generation(client, completion.id)
    content = client.generations.list_generation_content(id=completion.id).data
    assert content.input.messages == [{"role": "user", "content": "Say hello, logged"}]
    assert content.output.completion == "Hello from the mock"
    assert content.output.reasoning is None
    assert content.error is None
    # The management key of the account reads it too; an unknown id is the SDK's 404.
    assert admin.generations.list_generation_content(id=completion.id).data.output.completion == "Hello from the mock"
    with pytest.raises(errors.NotFoundResponseError) as info:
        client.generations.list_generation_content(id="gen-does-not-exist")
    assert info.value.status_code == 404


def test_guardrails_and_assignments(admin, gateway):
    created = admin.guardrails.create(name="compat-guard", description="only mock/chat", limit_usd=2.5,
                                      reset_interval="monthly", allowed_models=["mock/chat"]).data
    assert created.name == "compat-guard" and created.description == "only mock/chat"
    assert created.limit_usd == 2.5 and created.reset_interval == "monthly"
    assert created.allowed_models == ["mock/chat"]
    assert created.allowed_providers is None and created.ignored_models is None
    assert created.include_byok_in_budgets is False
    assert created.enforce_zdr is None
    assert created.workspace_id is None
    assert created.created_at.endswith("Z") and created.updated_at == created.created_at
    try:
        assert admin.guardrails.get(id=created.id).data.model_dump() == created.model_dump()
        listed = admin.guardrails.list()
        assert created.id in [g.id for g in listed.result.data]
        assert listed.result.total_count == len(listed.result.data)

        made = admin.api_keys.create(name="compat-guarded")
        guarded = OpenRouter(api_key=made.key, server_url=gateway.api)
        assert admin.guardrails.bulk_assign_keys(id=created.id, key_hashes=[made.data.hash]).assigned_count == 1
        [assignment] = admin.guardrails.list_guardrail_key_assignments(id=created.id).result.data
        assert assignment.guardrail_id == created.id
        assert assignment.key_hash == made.data.hash
        assert assignment.key_name == "compat-guarded"
        assert assignment.key_label == made.data.label
        assert assignment.id == f"{created.id}:{made.data.hash}"
        assert assignment.assigned_by is None
        everywhere = admin.guardrails.list_key_assignments().result.data
        assert assignment.id in [a.id for a in everywhere]

        # The guardrail applies to the key: mock/gemini is not among its allowed models.
        assert guarded.chat.send(model="mock/chat", messages=HELLO).choices[0].message.content == "Hello from the mock"
        with pytest.raises(errors.OpenRouterError) as info:
            guarded.chat.send(model="mock/gemini", messages=HELLO)
        assert info.value.status_code in (403, 404)
        assert [m.id for m in guarded.models.list_for_user(security={"bearer": made.key}).result.data] == ["mock/chat"]

        assert admin.guardrails.bulk_unassign_keys(id=created.id, key_hashes=[made.data.hash]).unassigned_count == 1
        assert admin.guardrails.list_guardrail_key_assignments(id=created.id).result.data == []
        assert guarded.chat.send(model="mock/gemini", messages=HELLO).model == "mock/gemini"

        updated = admin.guardrails.update(id=created.id, name="compat-guard-2", limit_usd=None,
                                          reset_interval=None, ignored_providers=["mock-gemini"]).data
        assert updated.name == "compat-guard-2"
        assert updated.limit_usd is None and updated.reset_interval is None
        assert updated.ignored_providers == ["mock-gemini"]
        assert updated.allowed_models == ["mock/chat"] and updated.description == "only mock/chat"
        with pytest.raises(errors.BadRequestResponseError) as info:
            admin.guardrails.update(id=created.id, limit_usd=1.0)
        assert "reset_interval" in info.value.data.error.message
        admin.api_keys.delete(hash=made.data.hash)
    finally:
        assert admin.guardrails.delete(id=created.id).DELETED is True
    with pytest.raises(errors.NotFoundResponseError):
        admin.guardrails.get(id=created.id)


def test_presets(admin, client, gateway, upstream):
    first = admin.presets.create_presets_chat_completions(
        slug="compat-brief", model="mock/chat", temperature=0.25, max_tokens=40,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "not kept"}]).data
    assert first.slug == "compat-brief"
    assert first.status == "active"
    assert first.workspace_id is None and first.creator_user_id is None
    assert first.created_at.endswith("Z")
    version = first.designated_version
    assert first.designated_version_id == version.id
    assert version.preset_id == first.id
    assert version.version == 1
    assert version.system_prompt == "Be brief."
    assert version.config == {"model": "mock/chat", "temperature": 0.25, "max_tokens": 40}
    assert version.creator_id

    # A request naming the preset gets its settings and system prompt.
    before = len(upstream.RequestHandlerClass.requests)
    result = client.chat.send(model="@preset/compat-brief", messages=HELLO)
    assert result.model == "mock/chat"
    assert result.choices[0].message.content == "Hello from the mock"
    [sent] = upstream.RequestHandlerClass.requests[before:]
    assert sent["body"]["messages"] == [{"role": "system", "content": "Be brief."}, *HELLO]
    assert sent["body"]["temperature"] == 0.25
    assert sent["body"].get("max_tokens", sent["body"].get("max_completion_tokens")) == 40
    assert_recorded(gateway, result.id, api="chat", model="mock/chat", cost=0.000022)

    # Saving from the Messages and Responses shapes makes versions 2 and 3.
    second = admin.presets.create_presets_messages(
        slug="compat-brief", model="mock/claude", max_tokens=30, system="Be terse.",
        messages=[{"role": "user", "content": "not kept"}]).data
    assert second.id == first.id
    assert second.designated_version.version == 2
    assert second.designated_version.system_prompt == "Be terse."
    assert second.designated_version.config == {"model": "mock/claude", "max_tokens": 30}
    third = admin.presets.create_presets_responses(
        slug="compat-brief", model="mock/chat", instructions="Be polite.", input="not kept", temperature=0.5).data
    assert third.designated_version.version == 3
    assert third.designated_version.system_prompt == "Be polite."
    # The SDK's Responses request sends `service_tier: "auto"` unless told otherwise.
    assert third.designated_version.config == {"model": "mock/chat", "temperature": 0.5, "service_tier": "auto"}

    got = admin.presets.get(slug="compat-brief").data
    assert got.model_dump() == third.model_dump()
    listed = admin.presets.list()
    # Most recently updated first (the Node SDK's tests save presets of their own).
    assert listed.result.data[0].slug == "compat-brief"
    assert listed.result.data[0].designated_version_id == third.designated_version_id
    assert listed.result.total_count == len(listed.result.data)
    versions = admin.presets.list_versions(slug="compat-brief")
    assert [v.version for v in versions.result.data] == [1, 2, 3]
    assert versions.result.data[0].model_dump() == version.model_dump()
    assert admin.presets.get_version(slug="compat-brief", version="2").data.model_dump() == \
        second.designated_version.model_dump()

    # Errors are the SDK's typed errors.
    with pytest.raises(errors.NotFoundResponseError) as info:
        admin.presets.get(slug="absent")
    assert info.value.data.error.message == "Preset absent not found"
    with pytest.raises(errors.NotFoundResponseError):
        admin.presets.get_version(slug="compat-brief", version="9")
    with pytest.raises(errors.BadRequestResponseError) as info:
        admin.presets.get(slug="Not A Slug")
    assert "slug" in info.value.data.error.message
    with pytest.raises(errors.OpenRouterError) as info:
        client.presets.list()
    assert info.value.status_code == 403

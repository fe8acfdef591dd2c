"""The official `openrouter` SDK against the gateway, field by field."""

import pytest
from openrouter import OpenRouter, errors


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


def test_current_key(client):
    data = client.api_keys.get_current_key_metadata().data
    assert data.label.startswith("sk-or-v1-")
    assert data.is_management_key is False
    assert data.limit is None


def test_get_generation(client, gateway):
    import time
    completion = client.chat.send(model="mock/chat", messages=[{"role": "user", "content": "Say hello"}],
                                  user="compat-user")
    # Settlement happens off the request path: poll briefly for the record.
    deadline = time.monotonic() + 10
    while True:
        try:
            data = client.generations.get_generation(id=completion.id).data
            break
        except errors.OpenRouterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert data.id == completion.id
    assert data.model == "mock/chat"
    assert data.provider_name == "Mock"
    assert data.tokens_prompt == 12 and data.tokens_completion == 5
    assert data.total_cost == pytest.approx(0.000022)
    assert data.streamed is False
    assert data.finish_reason == "stop"
    assert data.external_user == "compat-user"

"""The official `openai` SDK against the gateway, field by field."""

import json

import openai
import pytest


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway.api, api_key=gateway.key, max_retries=0)


def test_plain_completion(client, upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="mock/chat", messages=[{"role": "user", "content": "Say hello"}], temperature=0.2, max_tokens=50)
    assert raw.headers["x-generation-id"].startswith("gen-")
    completion = raw.parse()
    assert completion.id == raw.headers["x-generation-id"]
    assert completion.object == "chat.completion"
    assert completion.model == "mock/chat"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Hello from the mock"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 17
    extra = completion.model_extra
    assert extra["provider"] == "Mock"
    assert completion.usage.model_extra["cost"] == pytest.approx(0.000022)
    assert completion.choices[0].model_extra["native_finish_reason"] == "stop"


def test_streamed_completion_with_final_usage(client):
    stream = client.chat.completions.create(
        model="mock/chat", messages=[{"role": "user", "content": "Say hello"}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the mock"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == 12 and last.usage.completion_tokens == 5
    assert last.usage.model_extra["cost"] == pytest.approx(0.000022)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("gen-")


def test_tool_calls(client, upstream):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    completion = client.chat.completions.create(
        model="mock/chat", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, tool_choice="auto")
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_1" and call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris"}'
    sent = upstream.RequestHandlerClass.requests[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "auto"

    stream = client.chat.completions.create(
        model="mock/chat", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, stream=True)
    arguments = ""
    names = []
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                arguments += (tc.function.arguments or "") if tc.function else ""
    assert names == ["get_weather"]
    assert arguments == '{"city": "Paris"}'


def test_bad_key_is_a_401_with_the_envelope(gateway):
    bad = openai.OpenAI(base_url=gateway.api, api_key="sk-or-v1-" + "0" * 64, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="mock/chat", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert info.value.body["code"] == 401
    assert "Invalid API key" in info.value.body["message"]


def test_unknown_model_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    assert "not a valid model ID" in info.value.body["message"]


def test_models_list(client):
    models = client.models.list()
    # The catalogue's order: mock/claude, mock/gemini, mock/chat.
    assert [m.id for m in models.data] == ["mock/claude", "mock/gemini", "mock/chat"]


# Anthropic-kind and Gemini-kind endpoints, through the OpenAI SDK.
OTHER_KINDS = ["mock/claude", "mock/gemini"]


@pytest.mark.parametrize("model", OTHER_KINDS)
def test_other_provider_kinds_plain(client, model):
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        max_tokens=50)
    assert completion.model == model
    assert completion.choices[0].message.content == "Hello from the mock"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12 and completion.usage.completion_tokens == 5
    assert completion.usage.model_extra["cost"] > 0


@pytest.mark.parametrize("model", OTHER_KINDS)
def test_other_provider_kinds_streamed(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the mock"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.completion_tokens == 5


@pytest.mark.parametrize("model", OTHER_KINDS)
def test_other_provider_kinds_tool_calls(client, model):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    for stream in (False, True):
        if stream:
            chunks = list(client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools, stream=True))
            calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            assert calls[0].function.name == "get_weather"
            args = "".join(tc.function.arguments or "" for tc in calls)
            assert json.loads(args) == {"city": "Paris"}
        else:
            completion = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools)
            call = completion.choices[0].message.tool_calls[0]
            assert completion.choices[0].finish_reason == "tool_calls"
            assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_models_retrieve(client):
    # The SDK encodes the slash of the id; the answer is OpenAI's model object.
    model = client.models.retrieve("mock/chat")
    assert model.id == "mock/chat"
    assert model.object == "model"
    assert model.owned_by == "mock"

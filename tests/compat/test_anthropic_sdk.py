"""The official `anthropic` SDK against `/api/v1/messages`, served by an OpenAI-kind endpoint
(`mock/chat`, translated both ways) and by an Anthropic-kind endpoint (`mock/claude`)."""

import anthropic
import pytest

from conftest import COUNTED_TOKENS

MODELS = ["mock/chat", "mock/claude"]
TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture()
def client(gateway):
    # The SDK appends /v1/messages to its base URL.
    return anthropic.Anthropic(base_url=gateway.base + "/api", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_plain_message(client, model):
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}])
    assert raw.headers["x-generation-id"].startswith("gen-")
    message = raw.parse()
    assert message.id == raw.headers["x-generation-id"]
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello from the mock"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12
    assert message.usage.output_tokens == 5
    assert message.usage.model_extra["cost"] > 0
    assert message.model_extra["provider"] in ("Mock", "Mock Anthropic")


@pytest.mark.parametrize("model", MODELS)
def test_streamed_message(client, model):
    with client.messages.stream(model=model, max_tokens=100,
                                messages=[{"role": "user", "content": "Say hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the mock"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    assert final.content[0].text == "Hello from the mock"


@pytest.mark.parametrize("model", MODELS)
def test_tool_use(client, model):
    message = client.messages.create(
        model=model, max_tokens=100, tools=TOOLS, tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert message.stop_reason == "tool_use"
    block = [b for b in message.content if b.type == "tool_use"][0]
    assert block.name == "get_weather"
    assert block.input == {"city": "Paris"}
    # The tool result goes back in the next turn.
    follow = client.messages.create(
        model=model, max_tokens=100, tools=TOOLS,
        messages=[{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": [b.model_dump() for b in message.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "Sunny"}]}])
    assert follow.content


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use(client, model):
    with client.messages.stream(model=model, max_tokens=100, tools=TOOLS,
                                messages=[{"role": "user", "content": "Weather in Paris?"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = [b for b in final.content if b.type == "tool_use"][0]
    assert block.input == {"city": "Paris"}


def test_bad_key_is_an_anthropic_authentication_error(gateway):
    bad = anthropic.Anthropic(base_url=gateway.base + "/api", max_retries=0,
                              api_key="sk-or-v1-" + "0" * 64)
    with pytest.raises(anthropic.AuthenticationError) as err:
        bad.messages.create(model="mock/chat", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 401
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "authentication_error"


def test_invalid_request_is_an_anthropic_bad_request(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model="mock/chat", max_tokens=10, messages=[{"role": "robot", "content": "hi"}])
    assert "messages[0].role" in err.value.body["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(client, upstream, model):
    before = len(upstream.RequestHandlerClass.requests)
    counted = client.messages.count_tokens(
        model=model, system="Be brief.", tools=TOOLS, messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert isinstance(counted.input_tokens, int) and counted.input_tokens > 0
    # An Anthropic-kind endpoint counts upstream; counting is no generation, so nothing else is sent.
    sent = upstream.RequestHandlerClass.requests[before:]
    assert all(r["path"].endswith("/messages/count_tokens") for r in sent)
    if sent:
        assert counted.input_tokens == COUNTED_TOKENS
        assert sent[0]["body"]["model"] == "claude-mock"

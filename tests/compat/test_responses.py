"""The OpenAI Responses API (`POST /api/v1/responses`) through the official `openai` SDK and the
OpenAI Agents SDK, served by an OpenAI-compatible chat endpoint (`mock/chat`) and an
Anthropic-kind endpoint (`mock/claude`)."""

import asyncio
import json

import openai
import pytest

from conftest import AGENTS_SDK_DEFAULT_MODEL, TEST_TOOL
from ledger import assert_recorded, records_since

CHAT_COST = 12 * 0.000001 + 5 * 0.000002
CLAUDE_COST = 12 * 0.000003 + 5 * 0.000015
MODELS = [("mock/chat", CHAT_COST), ("mock/claude", CLAUDE_COST)]
TOOLS = [{"type": "function", "name": TEST_TOOL, "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway.api, api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model,cost", MODELS, ids=[m for m, _ in MODELS])
def test_plain_response(client, gateway, upstream, model, cost):
    before = len(upstream.RequestHandlerClass.requests)
    raw = client.responses.with_raw_response.create(
        model=model, instructions="Be brief.", input="Say hello", max_output_tokens=50)
    gen_id = raw.headers["x-generation-id"]
    response = raw.parse()
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == model
    assert response.output_text == "Hello from the mock"
    assert [item.type for item in response.output] == ["message"]
    message = response.output[0]
    assert message.role == "assistant" and message.status == "completed"
    assert [part.type for part in message.content] == ["output_text"]
    assert response.usage.input_tokens == 12
    assert response.usage.output_tokens == 5
    assert response.usage.total_tokens == 17
    if "cost" in (response.usage.model_extra or {}):
        assert response.usage.model_extra["cost"] == pytest.approx(cost)
    # What the upstream was asked: the instructions as the system prompt, the input as the user's.
    sent = upstream.RequestHandlerClass.requests[before:]
    assert len(sent) == 1
    body = sent[0]["body"]
    if model == "mock/chat":
        assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 50
    else:
        assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert body["max_tokens"] == 50
    assert_recorded(gateway, gen_id, api="responses", model=model, cost=cost, requested=model, streamed=False)


def test_input_items_and_roles(client, upstream):
    before = len(upstream.RequestHandlerClass.requests)
    response = client.responses.create(model="mock/chat", input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer in English."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
        {"role": "user", "content": "Say hello"},
    ])
    assert response.output_text == "Hello from the mock"
    messages = upstream.RequestHandlerClass.requests[before]["body"]["messages"]
    # A developer message stays one (chat has the role); "system" would be as faithful.
    assert [m["role"] for m in messages] == ["developer", "user", "assistant", "user"]
    texts = [m["content"] if isinstance(m["content"], str) else "".join(p["text"] for p in m["content"]) for m in messages]
    assert texts == ["Answer in English.", "Hi", "Hello!", "Say hello"]


EVENT_ORDER = [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.done", "response.content_part.done",
    "response.output_item.done", "response.completed",
]


@pytest.mark.parametrize("model,cost", MODELS, ids=[m for m, _ in MODELS])
def test_streamed_response(client, gateway, model, cost):
    with client.responses.with_streaming_response.create(model=model, input="Say hello", stream=True) as raw:
        gen_id = raw.headers["x-generation-id"]
        events = list(raw.parse())
    types = [e.type for e in events]
    # Each kind once, in the documented order, with one or more text deltas.
    collapsed = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    assert collapsed == EVENT_ORDER, types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the mock"
    done = [e for e in events if e.type == "response.output_text.done"][0]
    assert done.text == "Hello from the mock"
    created, completed = events[0].response, events[-1].response
    assert created.status == "in_progress" and completed.status == "completed"
    assert created.id == completed.id
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {completed.output[0].id}
    assert completed.output_text == "Hello from the mock"
    assert completed.usage.input_tokens == 12 and completed.usage.output_tokens == 5
    assert_recorded(gateway, gen_id, api="responses", model=model, cost=cost, requested=model, streamed=True)


@pytest.mark.parametrize("model,cost", MODELS, ids=[m for m, _ in MODELS])
def test_function_call_round_trip(client, gateway, upstream, model, cost):
    first = client.responses.create(model=model, input="Weather in Paris?", tools=TOOLS, tool_choice="auto")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == TEST_TOOL
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id
    before = len(upstream.RequestHandlerClass.requests)
    second = client.responses.create(model=model, tools=TOOLS, input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"},
    ])
    assert second.output_text == "Hello from the mock"
    body = upstream.RequestHandlerClass.requests[before]["body"]
    if model == "mock/chat":
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["user", "assistant", "tool"]
        assert body["messages"][1]["tool_calls"][0]["function"]["name"] == TEST_TOOL
        assert body["messages"][2]["tool_call_id"] == body["messages"][1]["tool_calls"][0]["id"]
        assert body["messages"][2]["content"] == "Sunny"
        assert body["tools"][0]["function"]["name"] == TEST_TOOL
    else:
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        result = body["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == body["messages"][1]["content"][0]["id"]
        assert body["tools"][0]["name"] == TEST_TOOL


@pytest.mark.parametrize("model,cost", MODELS, ids=[m for m, _ in MODELS])
def test_streamed_function_call(client, model, cost):
    events = list(client.responses.create(model=model, input="Weather in Paris?", tools=TOOLS, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.function_call_arguments.done" in types
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris"}
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [i.type for i in added] == ["function_call"] and added[0].name == TEST_TOOL
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_stored_responses_are_refused(client):
    # The gateway keeps no conversation state: store=true and previous_response_id are refused.
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="mock/chat", input="Say hello", store=True)
    assert "store" in json.dumps(info.value.body)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="mock/chat", input="Say hello", previous_response_id="resp_123")
    assert "previous_response_id" in json.dumps(info.value.body)


def test_unknown_model_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="nobody/nothing", input="hi")
    assert "not a valid model ID" in json.dumps(info.value.body)


# The OpenAI Agents SDK: an agent naming no model asks for the SDK's default, a catalogue alias
# of mock/chat; it calls the Responses API by default.

@pytest.fixture()
def agents_sdk(gateway):
    import agents as sdk

    sdk.set_tracing_disabled(True)
    sdk.set_default_openai_client(openai.AsyncOpenAI(base_url=gateway.api, api_key=gateway.key, max_retries=0),
                                  use_for_tracing=False)
    sdk.set_default_openai_api("responses")
    return sdk


def test_agents_sdk_default_model(agents_sdk, gateway, upstream):
    gateway.require_extensions()
    audited = len(gateway.audit_records())
    before = len(upstream.RequestHandlerClass.requests)
    agent = agents_sdk.Agent(name="greeter", instructions="Be brief.")
    result = agents_sdk.Runner.run_sync(agent, "Say hello")
    assert result.final_output == "Hello from the mock"
    sent = upstream.RequestHandlerClass.requests[before:]
    assert [r["body"]["model"] for r in sent] == ["mock-chat"]
    records = records_since(gateway, audited, requested_model=AGENTS_SDK_DEFAULT_MODEL)
    assert len(records) == 1
    assert_recorded(gateway, records[0]["generation_id"], api="responses", model="mock/chat", cost=CHAT_COST)


def test_agents_sdk_function_tool(agents_sdk, gateway):
    gateway.require_extensions()
    asked = []

    @agents_sdk.function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        asked.append(city)
        return "Sunny"

    agent = agents_sdk.Agent(name="forecaster", instructions="Use the tool.", tools=[get_weather])
    result = asyncio.run(agents_sdk.Runner.run(agent, "Weather in Paris?"))
    assert asked == ["Paris"]
    assert result.final_output == "Hello from the mock"
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]

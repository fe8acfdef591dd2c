"""Embeddings (`POST /api/v1/embeddings`, `GET /api/v1/embeddings/models`) and legacy text
completions (`POST /api/v1/completions`) through the official `openai` SDK."""

import base64
import json
import struct
import urllib.request

import openai
import pytest

from conftest import EMBEDDING_DIMENSIONS
from ledger import assert_recorded

EMBED_PRICE = 0.0000001
CHAT_COST = 12 * 0.000001 + 5 * 0.000002


def expected_vector(index):
    """The mock upstream's vector for the `index`-th input, as float32 gives it back."""
    values = [round(0.25 * (index + 1) * (k + 1), 4) for k in range(EMBEDDING_DIMENSIONS)]
    return list(struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", struct.pack(f"<{EMBEDDING_DIMENSIONS}f", *values)))


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway.api, api_key=gateway.key, max_retries=0)


# encoding_format as sent; None lets the SDK choose (it asks for base64 and decodes it).
@pytest.mark.parametrize("encoding", ["float", "base64", None])
def test_embeddings(client, gateway, encoding):
    gateway.require_extensions()
    extra = {"encoding_format": encoding} if encoding else {}
    raw = client.embeddings.with_raw_response.create(model="mock/embed", input=["first text", "second text"], **extra)
    gen_id = raw.headers["x-generation-id"]
    answer = raw.parse()
    assert answer.object == "list"
    assert answer.model == "mock/embed"
    assert [d.index for d in answer.data] == [0, 1]
    assert all(d.object == "embedding" for d in answer.data)
    for d in answer.data:
        if encoding == "base64":
            assert isinstance(d.embedding, str)
            vector = list(struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", base64.b64decode(d.embedding)))
        else:
            vector = d.embedding
        assert vector == pytest.approx(expected_vector(d.index))
    assert answer.usage.prompt_tokens == 6
    assert answer.usage.total_tokens == 6
    cost = 6 * EMBED_PRICE
    assert answer.usage.model_extra["cost"] == pytest.approx(cost)
    assert_recorded(gateway, gen_id, api="embeddings", model="mock/embed", cost=cost, requested="mock/embed")


def test_embedding_alias_and_single_input(client, gateway, upstream):
    gateway.require_extensions()
    before = len(upstream.RequestHandlerClass.requests)
    answer = client.embeddings.create(model="mock-embed-small", input="one text", encoding_format="float")
    assert answer.model == "mock/embed"
    assert len(answer.data) == 1
    assert answer.data[0].embedding == pytest.approx(expected_vector(0))
    sent = upstream.RequestHandlerClass.requests[before]
    assert sent["path"].endswith("/embeddings")
    assert sent["body"]["model"] == "mock-embed"
    assert sent["body"]["input"] in ("one text", ["one text"])


def test_a_chat_model_is_no_embedding_model(client, gateway):
    gateway.require_extensions()
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="mock/chat", input="one text")
    assert "mock/chat" in json.dumps(info.value.body)


def test_an_embedding_model_is_no_chat_model(client, gateway):
    gateway.require_extensions()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock/embed", messages=[{"role": "user", "content": "hi"}])
    assert "mock/embed" in json.dumps(info.value.body)


def test_embedding_models_list(gateway):
    gateway.require_extensions()
    request = urllib.request.Request(f"{gateway.api}/embeddings/models",
                                     headers={"Authorization": f"Bearer {gateway.key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        listing = json.load(answer)
    assert [m["id"] for m in listing["data"]] == ["mock/embed"]
    model = listing["data"][0]
    assert "embeddings" in model["architecture"]["output_modalities"]
    assert model["pricing"]["prompt"] == "0.0000001"


def test_plain_completion(client, gateway):
    raw = client.completions.with_raw_response.create(model="mock/chat", prompt="Say hello", max_tokens=50)
    gen_id = raw.headers["x-generation-id"]
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.model == "mock/chat"
    assert completion.choices[0].text == "Hello from the mock"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == 5
    assert completion.usage.model_extra["cost"] == pytest.approx(CHAT_COST)
    assert_recorded(gateway, gen_id, api="completions", model="mock/chat", cost=CHAT_COST,
                    requested="mock/chat", streamed=False)


def test_streamed_completion(client, gateway):
    with client.completions.with_streaming_response.create(model="mock/chat", prompt="Say hello", stream=True) as raw:
        gen_id = raw.headers["x-generation-id"]
        chunks = list(raw.parse())
    assert all(c.object == "text_completion" for c in chunks)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Hello from the mock"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]
    assert with_usage[0].usage.completion_tokens == 5
    assert with_usage[0].usage.model_extra["cost"] == pytest.approx(CHAT_COST)
    assert len({c.id for c in chunks}) == 1
    assert_recorded(gateway, gen_id, api="completions", model="mock/chat", cost=CHAT_COST,
                    requested="mock/chat", streamed=True)

// The official `@anthropic-ai/sdk` Node SDK against /api/v1/messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { ANSWER, BASE, KEY } from "./common.mjs";

// The SDK appends /v1/messages to its base URL.
const client = new Anthropic({ baseURL: `${BASE}/api`, apiKey: KEY, maxRetries: 0 });

for (const model of ["mock/chat", "mock/claude"]) {
  test(`message (${model})`, async () => {
    const { data, response } = await client.messages
      .create({ model, max_tokens: 100, system: "Be brief.", messages: [{ role: "user", content: "Say hello" }] })
      .withResponse();
    assert.match(response.headers.get("x-generation-id"), /^gen-/);
    assert.equal(data.type, "message");
    assert.equal(data.model, model);
    assert.deepEqual(data.content.map((b) => b.type), ["text"]);
    assert.equal(data.content[0].text, ANSWER);
    assert.equal(data.stop_reason, "end_turn");
    assert.deepEqual([data.usage.input_tokens, data.usage.output_tokens], [12, 5]);
    assert.ok(data.usage.cost > 0);
  });

  test(`streamed message (${model})`, async () => {
    const stream = client.messages.stream({ model, max_tokens: 100, messages: [{ role: "user", content: "Say hello" }] });
    let text = "";
    stream.on("text", (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, ANSWER);
    assert.equal(final.content[0].text, ANSWER);
    assert.equal(final.stop_reason, "end_turn");
    assert.equal(final.usage.output_tokens, 5);
  });

  test(`tool use (${model})`, async () => {
    const tools = [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }];
    const data = await client.messages.create({
      model, max_tokens: 100, tools, messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    assert.equal(data.stop_reason, "tool_use");
    const block = data.content.find((b) => b.type === "tool_use");
    assert.equal(block.name, "get_weather");
    assert.deepEqual(block.input, { city: "Paris" });
  });
}

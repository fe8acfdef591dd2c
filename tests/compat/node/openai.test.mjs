// The official `openai` Node SDK: chat, streamed chat, tool calls, models list.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { ANSWER, API, CHAT_COST, KEY, near } from "./common.mjs";

const client = new OpenAI({ baseURL: API, apiKey: KEY, maxRetries: 0 });

test("chat completion", async () => {
  const { data, response } = await client.chat.completions
    .create({ model: "mock/chat", messages: [{ role: "user", content: "Say hello" }], max_tokens: 50 })
    .withResponse();
  assert.match(response.headers.get("x-generation-id"), /^gen-/);
  assert.equal(data.id, response.headers.get("x-generation-id"));
  assert.equal(data.model, "mock/chat");
  assert.equal(data.choices[0].message.content, ANSWER);
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.deepEqual([data.usage.prompt_tokens, data.usage.completion_tokens, data.usage.total_tokens], [12, 5, 17]);
  near(data.usage.cost, CHAT_COST);
});

test("streamed chat completion", async () => {
  const stream = await client.chat.completions.create({
    model: "mock/chat", messages: [{ role: "user", content: "Say hello" }], stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), ANSWER);
  assert.deepEqual(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason).filter(Boolean)), ["stop"]);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 5);
  near(last.usage.cost, CHAT_COST);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
});

test("tool call", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
  const data = await client.chat.completions.create({
    model: "mock/chat", messages: [{ role: "user", content: "Weather in Paris?" }], tools,
  });
  assert.equal(data.choices[0].finish_reason, "tool_calls");
  const call = data.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
});

test("models list", async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids, ["mock/claude", "mock/gemini", "mock/chat"]);
});

test("bad key is a 401", async () => {
  const bad = new OpenAI({ baseURL: API, apiKey: "sk-or-v1-" + "0".repeat(64), maxRetries: 0 });
  await assert.rejects(
    bad.chat.completions.create({ model: "mock/chat", messages: [{ role: "user", content: "hi" }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401,
  );
});

// The official `@openrouter/sdk` Node SDK: chat, streamed chat, models list.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenRouter } from "@openrouter/sdk";
import { ANSWER, API, CHAT_COST, KEY, near } from "./common.mjs";

const client = new OpenRouter({ apiKey: KEY, serverURL: API });

test("chat", async () => {
  const result = await client.chat.send({
    chatRequest: { model: "mock/chat", messages: [{ role: "user", content: "Say hello" }] },
  });
  assert.match(result.id, /^gen-/);
  assert.equal(result.model, "mock/chat");
  assert.equal(result.choices[0].message.content, ANSWER);
  assert.equal(result.choices[0].finishReason, "stop");
  assert.deepEqual([result.usage.promptTokens, result.usage.completionTokens], [12, 5]);
  near(result.usage.cost, CHAT_COST);
});

test("streamed chat", async () => {
  const stream = await client.chat.send({
    chatRequest: { model: "mock/chat", messages: [{ role: "user", content: "Say hello" }], stream: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), ANSWER);
  const withUsage = chunks.filter((c) => c.usage);
  assert.equal(withUsage.length, 1);
  assert.equal(withUsage[0].usage.completionTokens, 5);
  near(withUsage[0].usage.cost, CHAT_COST);
});

test("models list", async () => {
  const page = await client.models.list();
  assert.deepEqual(page.result.data.map((m) => m.id), ["mock/claude", "mock/gemini", "mock/chat"]);
});

// The AI SDK (`ai`) with the OpenAI-compatible provider and OpenRouter's provider.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { generateText, streamText } from "ai";
import { ANSWER, API, KEY } from "./common.mjs";

const providers = {
  "openai-compatible": createOpenAICompatible({ name: "switchyard", baseURL: API, apiKey: KEY, includeUsage: true }),
  openrouter: createOpenRouter({ baseURL: API, apiKey: KEY }),
};

// The OpenRouter provider names its chat models `chat(id)`, the OpenAI-compatible one `chatModel(id)`.
function model(name, provider) {
  return name === "openrouter" ? provider.chat("mock/chat") : provider.chatModel("mock/chat");
}

for (const [name, provider] of Object.entries(providers)) {
  test(`generateText (${name})`, async () => {
    const result = await generateText({ model: model(name, provider), prompt: "Say hello", maxRetries: 0 });
    assert.equal(result.text, ANSWER);
    assert.equal(result.finishReason, "stop");
    assert.equal(result.usage.inputTokens, 12);
    assert.equal(result.usage.outputTokens, 5);
  });

  test(`streamText (${name})`, async () => {
    const result = streamText({ model: model(name, provider), prompt: "Say hello", maxRetries: 0 });
    let text = "";
    for await (const part of result.textStream) text += part;
    assert.equal(text, ANSWER);
    assert.equal(await result.finishReason, "stop");
    assert.equal((await result.usage).outputTokens, 5);
  });
}

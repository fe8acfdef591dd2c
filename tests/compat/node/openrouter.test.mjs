// The official `@openrouter/sdk` Node SDK: every method whose operation the gateway serves,
// field by field, and the list of the methods whose operation it does not serve.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OpenRouter } from "@openrouter/sdk";
import * as errors from "@openrouter/sdk/models/errors";
import { ADMIN_KEY, ANSWER, API, CHAT_COST, KEY, near } from "./common.mjs";

const client = new OpenRouter({ apiKey: KEY, serverURL: API });
const admin = new OpenRouter({ apiKey: ADMIN_KEY, serverURL: API });
const HELLO = [{ role: "user", content: "Say hello" }];

// namespace.method -> the operation it calls; each is called by a test of this file.
const EXERCISED = {
  "analytics.getUserActivity": "GET /activity",
  "apiKeys.create": "POST /keys",
  "apiKeys.delete": "DELETE /keys/{hash}",
  "apiKeys.get": "GET /keys/{hash}",
  "apiKeys.getCurrentKeyMetadata": "GET /key",
  "apiKeys.list": "GET /keys",
  "apiKeys.update": "PATCH /keys/{hash}",
  "beta.responses.send": "POST /responses",
  "callModel": "POST /responses (streamed)",
  "chat.send": "POST /chat/completions",
  "credits.getCredits": "GET /credits",
  "embeddings.generate": "POST /embeddings",
  "embeddings.listModels": "GET /embeddings/models",
  "endpoints.list": "GET /models/{author}/{slug}/endpoints",
  "endpoints.listZdrEndpoints": "GET /endpoints/zdr",
  "generations.getGeneration": "GET /generation",
  "generations.listGenerationContent": "GET /generation/content",
  "guardrails.bulkAssignKeys": "POST /guardrails/{id}/assignments/keys",
  "guardrails.bulkUnassignKeys": "POST /guardrails/{id}/assignments/keys/remove",
  "guardrails.create": "POST /guardrails",
  "guardrails.delete": "DELETE /guardrails/{id}",
  "guardrails.get": "GET /guardrails/{id}",
  "guardrails.list": "GET /guardrails",
  "guardrails.listGuardrailKeyAssignments": "GET /guardrails/{id}/assignments/keys",
  "guardrails.listKeyAssignments": "GET /guardrails/assignments/keys",
  "guardrails.update": "PATCH /guardrails/{id}",
  "models.count": "GET /models/count",
  "models.get": "GET /model/{author}/{slug}",
  "models.list": "GET /models",
  "models.listForUser": "GET /models/user",
  "presets.createPresetsChatCompletions": "POST /presets/{slug}/chat/completions",
  "presets.createPresetsMessages": "POST /presets/{slug}/messages",
  "presets.createPresetsResponses": "POST /presets/{slug}/responses",
  "presets.get": "GET /presets/{slug}",
  "presets.getVersion": "GET /presets/{slug}/versions/{version}",
  "presets.list": "GET /presets",
  "presets.listVersions": "GET /presets/{slug}/versions",
  "providers.list": "GET /providers",
  "responses.send": "POST /responses",
};

// Namespaces (or methods) whose operations docs/openrouter-compatibility.md lists as refused
// or not applicable, or which are outside the OpenAPI document and not served.
const NOT_SERVED = {
  "alpha.decisions": "not in the document, not served",
  "analytics.getAnalyticsMeta": "GET /analytics/meta: refused",
  "analytics.queryAnalytics": "POST /analytics/query: refused",
  "benchmarks": "GET /benchmarks: not applicable",
  "byok": "/byok: refused",
  "classifications": "GET /classifications/task: not applicable",
  "containers": "not in the document, not served",
  "datasets": "/datasets/*: not applicable",
  "files": "/files: refused",
  "generations.submitFeedback": "POST /generation/feedback: refused",
  "guardrails.bulkAssignMembers": "organization members: not applicable",
  "guardrails.bulkUnassignMembers": "organization members: not applicable",
  "guardrails.listGuardrailMemberAssignments": "organization members: not applicable",
  "guardrails.listMemberAssignments": "organization members: not applicable",
  "images": "/images: refused",
  "interns": "not in the document, not served",
  "oAuth": "OAuth PKCE for openrouter.ai accounts: not applicable",
  "observability": "/observability/destinations: refused",
  "organization": "/organization/members: not applicable",
  "rerank": "POST /rerank: refused",
  "scim": "/scim: not applicable",
  "stt": "POST /audio/transcriptions: refused",
  "systemOne": "not in the document, not served",
  "tts": "POST /audio/speech: refused",
  "vault": "not in the document, not served",
  "videoGeneration": "/videos: refused",
  "workspaces": "/workspaces: not applicable",
};

function sdkMethods(obj, prefix = "", out = []) {
  const proto = Object.getPrototypeOf(obj);
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === "constructor" || name.startsWith("_")) continue;
    const d = Object.getOwnPropertyDescriptor(proto, name);
    if (d.get) sdkMethods(obj[name], `${prefix}${name}.`, out);
    else if (typeof d.value === "function") out.push(prefix + name);
  }
  return out;
}

const notServed = (m) => Object.keys(NOT_SERVED).some((p) => m === p || m.startsWith(`${p}.`));

test("every SDK method is exercised or its operation is not served", () => {
  const methods = sdkMethods(client);
  assert.ok(methods.includes("chat.send") && methods.includes("beta.responses.send"));
  const unknown = methods.filter((m) => !(m in EXERCISED) && !notServed(m));
  assert.deepEqual(unknown, [], "SDK methods neither exercised nor listed as not served");
  assert.deepEqual(Object.keys(EXERCISED).filter((m) => !methods.includes(m) || notServed(m)), []);
  assert.deepEqual(Object.keys(NOT_SERVED).filter((p) => !methods.some((m) => m === p || m.startsWith(`${p}.`))), []);
});

async function rejects(promise, type, status, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof type, `${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.statusCode, status);
    if (message) assert.match(e.error?.message ?? e.body, message);
    return true;
  });
}

function usageIsMockChats(usage) {
  assert.deepEqual([usage.promptTokens, usage.completionTokens, usage.totalTokens], [12, 5, 17]);
  near(usage.cost, CHAT_COST);
  assert.equal(usage.isByok, false);
}

function routingMetadata(meta) {
  assert.equal(meta.requested, "mock/chat");
  assert.equal(meta.strategy, "direct");
  assert.equal(meta.attempt, 1);
  assert.equal(meta.isByok, false);
  assert.equal(meta.region, null);
  assert.equal(meta.endpoints.total, 1);
  assert.deepEqual(meta.endpoints.available.map((e) => [e.model, e.provider, e.selected]), [["mock/chat", "mock", true]]);
  assert.deepEqual(meta.attempts.map((a) => [a.model, a.provider, a.status]), [["mock/chat", "mock", 200]]);
  assert.equal(meta.summary, "mock/chat served by mock on attempt 1 of 1 candidates (0 endpoints excluded)");
}

async function generation(sdk, id) {
  // Settlement happens off the request path: the record may take a moment to appear.
  for (let i = 0; ; i++) {
    try {
      return (await sdk.generations.getGeneration({ id })).data;
    } catch (e) {
      if (!(e instanceof errors.NotFoundResponseError) || i > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test("chat", async () => {
  const result = await client.chat.send({ chatRequest: { model: "mock/chat", messages: HELLO } });
  assert.match(result.id, /^gen-/);
  assert.equal(result.object, "chat.completion");
  assert.equal(result.model, "mock/chat");
  assert.equal(result.choices[0].message.role, "assistant");
  assert.equal(result.choices[0].message.content, ANSWER);
  assert.equal(result.choices[0].finishReason, "stop");
  usageIsMockChats(result.usage);
  near(result.usage.costDetails.upstreamInferencePromptCost, 0.000012);
  near(result.usage.costDetails.upstreamInferenceCompletionsCost, 0.00001);
  assert.equal(result.openrouterMetadata, undefined);

  const data = await generation(client, result.id);
  assert.equal(data.id, result.id);
  assert.equal(data.model, "mock/chat");
  assert.equal(data.providerName, "Mock");
  assert.equal(data.upstreamId, "chatcmpl-mock");
  assert.equal(data.streamed, false);
  assert.deepEqual([data.tokensPrompt, data.tokensCompletion], [12, 5]);
  near(data.totalCost, CHAT_COST);
  assert.equal(data.finishReason, "stop");

  const content = (await client.generations.listGenerationContent({ id: result.id })).data;
  assert.deepEqual(content.input.messages, HELLO);
  assert.equal(content.output.completion, ANSWER);
  assert.equal(content.output.reasoning, null);
  assert.equal(content.error, null);
  await rejects(client.generations.getGeneration({ id: "gen-does-not-exist" }), errors.NotFoundResponseError, 404);
});

test("chat with routing metadata", async () => {
  const result = await client.chat.send({
    xOpenRouterMetadata: "enabled",
    chatRequest: { model: "mock/chat", messages: HELLO },
  });
  usageIsMockChats(result.usage);
  routingMetadata(result.openrouterMetadata);
});

test("streamed chat with routing metadata", async () => {
  const stream = await client.chat.send({
    xOpenRouterMetadata: "enabled",
    chatRequest: { model: "mock/chat", messages: HELLO, stream: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), ANSWER);
  const withUsage = chunks.filter((c) => c.usage);
  assert.equal(withUsage.length, 1);
  usageIsMockChats(withUsage[0].usage);
  routingMetadata(chunks.at(-1).openrouterMetadata);
  assert.equal((await generation(client, chunks[0].id)).streamed, true);
});

test("chat errors are typed", async () => {
  await rejects(client.chat.send({ chatRequest: { model: "no/such-model", messages: HELLO } }),
    errors.BadRequestResponseError, 400, /no\/such-model/);
  const bad = new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL: API });
  await rejects(bad.chat.send({ chatRequest: { model: "mock/chat", messages: HELLO } }),
    errors.UnauthorizedResponseError, 401);
  await rejects(admin.chat.send({ chatRequest: { model: "mock/chat", messages: HELLO } }),
    errors.OpenRouterError, 403);
});

for (const [name, api] of [["responses", () => client.responses], ["beta.responses", () => client.beta.responses]]) {
  test(name, async () => {
    const result = await api().send({
      responsesRequest: { model: "mock/chat", input: "Say hello", instructions: "Be brief.", maxOutputTokens: 50 },
    });
    assert.match(result.id, /^gen-/);
    assert.equal(result.object, "response");
    assert.equal(result.status, "completed");
    assert.equal(result.model, "mock/chat");
    assert.equal(result.instructions, "Be brief.");
    assert.equal(result.maxOutputTokens, 50);
    assert.equal(result.error, null);
    assert.equal(result.output.length, 1);
    const message = result.output[0];
    assert.deepEqual([message.type, message.role, message.status, message.id],
      ["message", "assistant", "completed", `msg_${result.id}_0`]);
    assert.deepEqual(message.content.map((p) => [p.type, p.text]), [["output_text", ANSWER]]);
    assert.deepEqual([result.usage.inputTokens, result.usage.outputTokens, result.usage.totalTokens], [12, 5, 17]);
    near(result.usage.cost, CHAT_COST);
    near((await generation(client, result.id)).totalCost, CHAT_COST);
  });
}

test("streamed responses", async () => {
  const stream = await client.responses.send({ responsesRequest: { model: "mock/chat", input: "Say hello", stream: true } });
  const events = [];
  for await (const event of stream) events.push(event);
  assert.deepEqual(events.map((e) => e.sequenceNumber), events.map((_, i) => i));
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  assert.equal(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), ANSWER);
  const final = events.at(-1).response;
  assert.equal(final.status, "completed");
  assert.deepEqual([final.usage.inputTokens, final.usage.outputTokens], [12, 5]);
  near(final.usage.cost, CHAT_COST);
});

test("callModel", async () => {
  const result = client.callModel({ model: "mock/chat", input: "Say hello" });
  assert.equal(await result.getText(), ANSWER);
  const response = await result.getResponse();
  assert.equal(response.model, "mock/chat");
  assert.equal(response.status, "completed");
});

test("embeddings", async () => {
  const result = await client.embeddings.generate({ requestBody: { model: "mock/embed", input: ["first", "second"] } });
  assert.equal(result.object, "list");
  assert.equal(result.model, "mock/embed");
  assert.deepEqual(result.data.map((e) => [e.index, e.embedding]), [[0, [0.25, 0.5, 0.75, 1]], [1, [0.5, 1, 1.5, 2]]]);
  assert.deepEqual([result.usage.promptTokens, result.usage.totalTokens], [6, 6]);
  near(result.usage.cost, 0.0000006);
  const page = await client.embeddings.listModels();
  assert.deepEqual(page.result.data.map((m) => [m.id, m.pricing.prompt, m.architecture.modality]),
    [["mock/embed", "0.0000001", "text->embeddings"]]);
});

test("catalogue", async () => {
  const page = await client.models.list();
  assert.deepEqual(page.result.data.map((m) => m.id), ["mock/claude", "mock/gemini", "mock/chat"]);
  assert.equal(page.result.totalCount, 3);
  const chat = page.result.data[2];
  assert.deepEqual([chat.name, chat.canonicalSlug, chat.contextLength], ["Mock: Chat", "mock/chat", 400000]);
  assert.deepEqual([chat.pricing.prompt, chat.pricing.completion], ["0.000001", "0.000002"]);
  assert.deepEqual([chat.topProvider.contextLength, chat.topProvider.maxCompletionTokens, chat.topProvider.isModerated],
    [400000, 1000, false]);
  assert.deepEqual([...chat.supportedParameters].sort(), ["max_tokens", "seed", "stop", "temperature", "tool_choice", "tools"]);
  assert.equal(chat.architecture.tokenizer, "Other");
  const first = await client.models.list({ limit: 1 });
  assert.deepEqual(first.result.data.map((m) => m.id), ["mock/claude"]);
  assert.ok(first.result.links.next);
  assert.equal((await client.models.count()).data.count, 3);
  await rejects(client.models.list({ distillable: "true" }), errors.BadRequestResponseError, 400, /distillable/);
  assert.deepEqual((await client.models.get({ author: "mock", slug: "chat" })).data, chat);
  await rejects(client.models.get({ author: "mock", slug: "absent" }), errors.NotFoundResponseError, 404);
  const mine = await client.models.listForUser({ bearer: KEY });
  assert.deepEqual(mine.result.data.map((m) => m.id), ["mock/claude", "mock/gemini", "mock/chat"]);

  const endpoints = (await client.endpoints.list({ author: "mock", slug: "chat" })).data;
  assert.equal(endpoints.id, "mock/chat");
  const [endpoint] = endpoints.endpoints;
  assert.deepEqual([endpoint.name, endpoint.providerName, endpoint.tag, endpoint.modelId],
    ["Mock | mock/chat", "Mock", "mock", "mock/chat"]);
  assert.deepEqual([endpoint.pricing.prompt, endpoint.pricing.completion], ["0.000001", "0.000002"]);
  assert.deepEqual([endpoint.contextLength, endpoint.maxCompletionTokens, endpoint.status], [400000, 1000, 0]);
  const zdr = (await client.endpoints.listZdrEndpoints()).data;
  assert.deepEqual(zdr.slice(0, 3).map((e) => [e.modelId, e.tag]),
    [["mock/claude", "mock-anthropic"], ["mock/gemini", "mock-gemini"], ["mock/chat", "mock"]]);
  const providers = (await client.providers.list()).data;
  assert.deepEqual(providers.map((p) => [p.slug, p.name]),
    [["mock", "Mock"], ["mock-anthropic", "Mock Anthropic"], ["mock-gemini", "Mock Gemini"]]);
});

test("keys, credits, current key and activity", async () => {
  const created = await admin.apiKeys.create({
    requestBody: { name: "compat-node-limited", limit: 1.5, limitReset: "weekly" },
  });
  assert.match(created.key, /^sk-or-v1-/);
  const key = created.data;
  assert.deepEqual([key.name, key.disabled, key.limit, key.limitRemaining, key.limitReset, key.usage],
    ["compat-node-limited", false, 1.5, 1.5, "weekly", 0]);
  const limited = new OpenRouter({ apiKey: created.key, serverURL: API });
  const result = await limited.chat.send({ chatRequest: { model: "mock/chat", messages: HELLO } });
  const cost = (await generation(limited, result.id)).totalCost;
  near(cost, CHAT_COST);
  const current = (await limited.apiKeys.getCurrentKeyMetadata()).data;
  assert.equal(current.limit, 1.5);
  near(current.usage, cost);
  near(current.limitRemaining, 1.5 - cost);
  assert.equal(current.isManagementKey, false);

  near((await admin.apiKeys.get({ hash: key.hash })).data.usage, cost);
  assert.ok((await admin.apiKeys.list()).data.some((k) => k.hash === key.hash));
  const updated = (await admin.apiKeys.update({ hash: key.hash, requestBody: { name: "compat-node-renamed", disabled: true } })).data;
  assert.deepEqual([updated.name, updated.disabled], ["compat-node-renamed", true]);
  await rejects(limited.apiKeys.getCurrentKeyMetadata(), errors.UnauthorizedResponseError, 401);
  assert.equal((await admin.apiKeys.delete({ hash: key.hash })).deleted, true);
  await rejects(admin.apiKeys.get({ hash: key.hash }), errors.NotFoundResponseError, 404);

  const credits = (await admin.credits.getCredits()).data;
  assert.equal(credits.totalCredits, 10);
  assert.ok(credits.totalUsage >= cost);
  await rejects(client.credits.getCredits(), errors.ForbiddenResponseError, 403);
  assert.deepEqual((await admin.analytics.getUserActivity()).data, []);
  await rejects(admin.analytics.getUserActivity({ date: "not-a-date" }), errors.BadRequestResponseError, 400);
});

test("guardrails and their key assignments", async () => {
  const created = (await admin.guardrails.create({
    createGuardrailRequest: { name: "compat-node-guard", limitUsd: 2.5, resetInterval: "monthly", allowedModels: ["mock/chat"] },
  })).data;
  assert.deepEqual([created.name, created.limitUsd, created.resetInterval, created.allowedModels, created.includeByokInBudgets],
    ["compat-node-guard", 2.5, "monthly", ["mock/chat"], false]);
  try {
    assert.deepEqual((await admin.guardrails.get({ id: created.id })).data, created);
    assert.ok((await admin.guardrails.list()).result.data.some((g) => g.id === created.id));
    const made = await admin.apiKeys.create({ requestBody: { name: "compat-node-guarded" } });
    const assigned = await admin.guardrails.bulkAssignKeys({ id: created.id, bulkAssignKeysRequest: { keyHashes: [made.data.hash] } });
    assert.equal(assigned.assignedCount, 1);
    const [assignment] = (await admin.guardrails.listGuardrailKeyAssignments({ id: created.id })).result.data;
    assert.deepEqual([assignment.guardrailId, assignment.keyHash, assignment.keyName, assignment.id],
      [created.id, made.data.hash, "compat-node-guarded", `${created.id}:${made.data.hash}`]);
    assert.ok((await admin.guardrails.listKeyAssignments()).result.data.some((a) => a.id === assignment.id));
    const guarded = new OpenRouter({ apiKey: made.key, serverURL: API });
    await assert.rejects(guarded.chat.send({ chatRequest: { model: "mock/gemini", messages: HELLO } }));
    const removed = await admin.guardrails.bulkUnassignKeys({ id: created.id, bulkUnassignKeysRequest: { keyHashes: [made.data.hash] } });
    assert.equal(removed.unassignedCount, 1);
    const updated = (await admin.guardrails.update({
      id: created.id, updateGuardrailRequest: { name: "compat-node-guard-2", limitUsd: null, resetInterval: null },
    })).data;
    assert.deepEqual([updated.name, updated.limitUsd, updated.resetInterval, updated.allowedModels],
      ["compat-node-guard-2", null, null, ["mock/chat"]]);
    await admin.apiKeys.delete({ hash: made.data.hash });
  } finally {
    assert.equal((await admin.guardrails.delete({ id: created.id })).deleted, true);
  }
  await rejects(admin.guardrails.get({ id: created.id }), errors.NotFoundResponseError, 404);
});

test("presets", async () => {
  const first = (await admin.presets.createPresetsChatCompletions({
    slug: "compat-node",
    chatRequest: { model: "mock/chat", temperature: 0.25, messages: [{ role: "system", content: "Be brief." }] },
  })).data;
  assert.equal(first.slug, "compat-node");
  assert.equal(first.designatedVersion.version, 1);
  assert.equal(first.designatedVersion.systemPrompt, "Be brief.");
  assert.deepEqual(first.designatedVersion.config, { model: "mock/chat", temperature: 0.25 });
  const result = await client.chat.send({ chatRequest: { model: "@preset/compat-node", messages: HELLO } });
  assert.equal(result.model, "mock/chat");
  assert.equal(result.choices[0].message.content, ANSWER);
  const second = (await admin.presets.createPresetsMessages({
    slug: "compat-node",
    messagesRequest: { model: "mock/claude", maxTokens: 30, system: "Be terse.", messages: [{ role: "user", content: "x" }] },
  })).data;
  assert.deepEqual([second.id, second.designatedVersion.version, second.designatedVersion.systemPrompt],
    [first.id, 2, "Be terse."]);
  const third = (await admin.presets.createPresetsResponses({
    slug: "compat-node", responsesRequest: { model: "mock/chat", instructions: "Be polite.", input: "x" },
  })).data;
  assert.equal(third.designatedVersion.version, 3);
  assert.deepEqual((await admin.presets.get({ slug: "compat-node" })).data, third);
  assert.ok((await admin.presets.list()).result.data.some((p) => p.slug === "compat-node"));
  const versions = (await admin.presets.listVersions({ slug: "compat-node" })).result.data;
  assert.deepEqual(versions.map((v) => v.version), [1, 2, 3]);
  assert.deepEqual((await admin.presets.getVersion({ slug: "compat-node", version: "2" })).data, second.designatedVersion);
  await rejects(admin.presets.get({ slug: "absent" }), errors.NotFoundResponseError, 404, /Preset absent not found/);
});

test("operations the gateway does not serve are the SDK's 404", async () => {
  await rejects(admin.byok.list(), errors.OpenRouterError, 404, /No route for GET \/api\/v1\/byok/);
});

// The operator console in a real browser: Debian's headless Chromium driven by playwright-core,
// against the real gateway binary with a mock OpenAI-compatible upstream, on 127.0.0.1 ports
// chosen by the system. Saves a screenshot of every page to $CONSOLE_SCREENSHOTS.
//
// Environment: SWITCHYARD_BIN (the binary), CHROMIUM (the browser), CONSOLE_SCREENSHOTS (a
// directory).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BIN = process.env.SWITCHYARD_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.CONSOLE_SCREENSHOTS || "target/console-screenshots";

let upstream, gateway, base, browser, context, page;
let standardKey, managementKey;
const tmp = mkdtempSync(join(tmpdir(), "switchyard-console-"));

/** A mock OpenAI-compatible provider: every chat completion answers the same. */
function startUpstream() {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const payload = JSON.stringify({
        id: "chatcmpl-mock", object: "chat.completion", created: 1, model: "mock",
        choices: [{ index: 0, message: { role: "assistant", content: "Hello from the mock" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function cli(args, env) {
  return execFileSync(BIN, ["--config", join(tmp, "switchyard.toml"), ...args], { env, encoding: "utf8" }).trim();
}

async function startGateway(upstreamUrl) {
  writeFileSync(join(tmp, "switchyard.toml"),
    `[server]\nlisten = "127.0.0.1:0"\n[store]\nurl = "sqlite://${tmp}/gw.db"\n[catalog]\npath = "${tmp}/catalog.toml"\n`);
  writeFileSync(join(tmp, "catalog.toml"), `
[[providers]]
slug = "mock"
name = "Mock Cloud"
kind = "openai"
base_url = "${upstreamUrl}"
api_key_env = "MOCK_PROVIDER_KEY"
data_policy = { training = false, retains_prompts = true, retention_days = 30, zdr = false }

[[providers]]
slug = "backup"
name = "Backup AI"
kind = "openai"
base_url = "${upstreamUrl}"
api_key_env = "MOCK_PROVIDER_KEY"
data_policy = { training = true, retains_prompts = true, zdr = false }

[[models]]
id = "mock/echo"
name = "Mock: Echo"
context_length = 8000

[[models.endpoints]]
provider = "mock"
upstream_model = "echo"
pricing = { prompt = "0.000001", completion = "0.000002" }

[[models.endpoints]]
provider = "backup"
upstream_model = "echo"
pricing = { prompt = "0.000002", completion = "0.000004" }
`);
  const env = { ...process.env, NO_COLOR: "1", MOCK_PROVIDER_KEY: "mock-secret",
    SWITCHYARD_CONTENT_KEY: "console-test-content-key-0123456789", SWITCHYARD_AUDIT_KEY: "console-test-audit-key" };
  cli(["credits", "add", "10"], env);
  cli(["account", "set", "--prompt-logging", "true"], env);
  standardKey = cli(["keys", "create", "--name", "app-backend"], env);
  managementKey = cli(["keys", "create", "--name", "operator", "--management"], env);
  const child = spawn(BIN, ["--config", join(tmp, "switchyard.toml"), "serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
  const lines = createInterface({ input: child.stderr });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway did not start within 60 s")), 60_000);
    lines.on("line", (line) => {
      const m = line.match(/address=(127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error(`the gateway exited with ${code}`)));
  });
  lines.on("line", () => {}); // keep draining its log
  return { child, base: `http://${address}` };
}

/** A chat completion through the gateway with `key`: [status, generation id]. */
async function chat(key, user) {
  const body = { model: "mock/echo", messages: [{ role: "user", content: "What is a switchyard?" }] };
  if (user) body.user = user;
  const r = await fetch(`${base}/api/v1/chat/completions`, {
    method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await r.text();
  return [r.status, r.headers.get("x-generation-id")];
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Every visible form control of the page has a label. */
async function assertLabelled() {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((e) => e.labels.length === 0 && !e.closest("label"))
      .map((e) => e.outerHTML));
  assert.deepEqual(unlabelled, [], `controls without a label on ${page.url()}`);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  upstream = await startUpstream();
  ({ child: gateway, base } = await startGateway(`http://127.0.0.1:${upstream.address().port}/v1`));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  gateway?.kill("SIGTERM");
  upstream?.close();
});

test("a page without a session redirects to sign-in", async () => {
  await page.goto(`${base}/keys`);
  assert.match(page.url(), /\/sign-in$/);
  await assertLabelled();
  await shot("sign-in");
});

test("a wrong key cannot sign in", async () => {
  for (const [key, says] of [
    [`sk-or-v1-${"0".repeat(64)}`, "no such key"],
    [standardKey, "Only management keys"],
  ]) {
    await page.goto(`${base}/sign-in`);
    await page.getByLabel("Management key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: says }).waitFor();
    assert.match(page.url(), /\/sign-in$/);
  }
  const cookies = await context.cookies();
  assert.equal(cookies.length, 0, "no session after a refused sign-in");
});

test("sign in; the session cookie is HttpOnly and SameSite=Strict", async () => {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel("Management key").fill(managementKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/activity$/);
  const [cookie] = await context.cookies();
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(cookie.expires > Date.now() / 1000, "the cookie expires");
  const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
  assert.deepEqual(stored, [0, 0, ""], "nothing readable by scripts");
});

test("a request through the gateway shows in Activity and in Generations with its routing", async () => {
  const [status, id] = await chat(standardKey, "alice@example.com");
  assert.equal(status, 200);
  for (const user of ["bob@example.com", "alice@example.com"]) assert.equal((await chat(standardKey, user))[0], 200);
  await page.goto(`${base}/activity`);
  assert.equal(await page.locator('[data-total="requests"]').textContent(), "3");
  assert.equal(await page.locator('[data-total="spend"]').textContent(), "$0.000066");
  await page.getByRole("img", { name: /Spend per day/ }).waitFor();
  await page.getByRole("rowheader", { name: "alice@example.com" }).waitFor();
  await assertLabelled();
  await shot("activity");
  // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");

  await page.goto(`${base}/generations`);
  await page.getByRole("link", { name: id }).click();
  await page.waitForURL(new RegExp(`/generations/${id}$`));
  await page.getByRole("heading", { name: "Routing decision" }).waitFor();
  const candidates = await page.locator("ol.candidates li").allTextContents();
  assert.equal(candidates.length, 1, candidates.join(" | "));
  assert.match(candidates[0], /mock\/echo at mock/);
  // The endpoint whose provider trains on prompts was excluded by the account's settings.
  const excluded = await page.locator("ul.excluded li").allTextContents();
  assert.equal(excluded.length, 1, excluded.join(" | "));
  assert.match(excluded[0], /mock\/echo at backup: \S+/);
  await page.getByText("linked to the record before it").or(page.getByText("the first record of the chain")).first().waitFor();
  await page.getByRole("button", { name: "Show prompt and completion" }).click();
  await page.getByText("What is a switchyard?").waitFor();
  await page.getByRole("cell", { name: "content_view" }).waitFor();
  await shot("generation");
  await page.goto(`${base}/generations`);
  await assertLabelled();
  await shot("generations");
});

test("a key created and disabled from the page is refused by the API", async () => {
  await page.goto(`${base}/keys`);
  await page.getByLabel("Name").fill("made-in-the-browser");
  await page.getByLabel("Spending limit (USD, empty for none)").first().fill("5");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.locator("#new-key").textContent()).trim();
  assert.match(key, /^sk-or-v1-[0-9a-f]{64}$/);
  await shot("keys-created");
  assert.equal((await chat(key))[0], 200);
  const row = page.locator("tr", { has: page.getByRole("rowheader", { name: "made-in-the-browser" }) });
  await row.getByRole("button", { name: "Disable" }).click();
  await page.getByRole("status").filter({ hasText: "Key disabled." }).waitFor();
  assert.equal((await chat(key))[0], 401);
  await assertLabelled();
  await shot("keys");
});

test("a change without the CSRF token is refused", async () => {
  await page.goto(`${base}/keys`);
  // The page's own scripts cannot even try (its CSP allows no fetch); a request carrying the
  // browser's session cookie but no token is refused.
  const forged = await page.request.post(`${base}/keys`, { form: { name: "forged" }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /Change refused/);
  // The form with its token removed, sent by the browser itself.
  await page.locator("form.create input[name=csrf]").evaluate((e) => e.remove());
  await page.getByLabel("Name").fill("tokenless");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByRole("heading", { name: "Change refused" }).waitFor();
  await page.goto(`${base}/keys`);
  assert.equal(await page.getByRole("rowheader", { name: "tokenless" }).count(), 0);
  assert.equal(await page.getByRole("rowheader", { name: "forged" }).count(), 0);
});

test("the other pages render and the audit chain verifies", async () => {
  for (const name of ["credits", "guardrails", "settings", "providers"]) {
    await page.goto(`${base}/${name}`);
    await assertLabelled();
    await shot(name);
  }
  await page.goto(`${base}/audit`);
  await page.getByRole("button", { name: "Verify now" }).click();
  await page.locator('[data-verified="true"]').waitFor();
  await assertLabelled();
  await shot("audit");
});

test("usable on a phone", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const name of ["activity", "generations", "keys"]) {
    await page.goto(`${base}/${name}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${name} scrolls sideways on a phone by ${overflow}px (tables scroll within their box)`);
    await shot(`phone-${name}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("sign out ends the session", async () => {
  await page.goto(`${base}/activity`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/sign-in$/);
  await page.goto(`${base}/keys`);
  assert.match(page.url(), /\/sign-in$/);
});

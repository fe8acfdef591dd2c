// The gateway under test, from tests/compat/test_node.py: its base URL and an API key.
import assert from "node:assert/strict";

export const BASE = process.env.SWITCHYARD_BASE;
export const KEY = process.env.SWITCHYARD_KEY;
// A management key of the same account.
export const ADMIN_KEY = process.env.SWITCHYARD_ADMIN_KEY;
assert.ok(BASE && KEY && ADMIN_KEY,
  "SWITCHYARD_BASE, SWITCHYARD_KEY and SWITCHYARD_ADMIN_KEY must be set (tests/compat/test_node.py sets them)");
export const API = `${BASE}/api/v1`;
export const ANSWER = "Hello from the mock";
// mock/chat: 12 prompt tokens at 0.000001 and 5 completion tokens at 0.000002.
export const CHAT_COST = 0.000022;

export function near(actual, expected) {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`);
}

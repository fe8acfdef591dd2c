-- Guardrails (the contract's object, stored as its JSON) and their assignment to keys (at most
-- one guardrail per key).
CREATE TABLE guardrails (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX guardrails_account ON guardrails(account_id);

CREATE TABLE guardrail_keys (
    key_hash      TEXT PRIMARY KEY,
    guardrail_id  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    assigned_at   BIGINT NOT NULL
);
CREATE INDEX guardrail_keys_guardrail ON guardrail_keys(guardrail_id);

-- Budget leases: a slice of a key's limit and of its account's credits taken by one gateway
-- instance (owner), which then takes holds against it in memory. A lease's amount is counted in
-- both rows' `held` until settlements consume it, its owner returns it, or (past expires_at,
-- its owner having stopped renewing it) any gateway reclaims it.
CREATE TABLE leases (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX leases_owner ON leases (owner);
CREATE INDEX leases_expires_at ON leases (expires_at);

-- Generation retention (`store.generation_retention_days`) deletes by age.
CREATE INDEX generations_created ON generations (created_at);

-- The activity report's daily totals, per account, day (UTC, days since the epoch), key, model
-- and provider, kept up to date by every settlement batch, so `/activity` reads at most a few
-- rows per day whatever the number of generations, and keeps its history when generation rows
-- are pruned. Built here from the generations already recorded.
CREATE TABLE activity_daily (
    account_id         TEXT NOT NULL,
    day                BIGINT NOT NULL,
    key_hash           TEXT NOT NULL,
    model              TEXT NOT NULL,
    provider_slug      TEXT NOT NULL,
    provider_name      TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    usage              BIGINT NOT NULL,
    byok_usage         BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    reasoning_tokens   BIGINT NOT NULL,
    cached_tokens      BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, key_hash, model, provider_slug, provider_name)
);
INSERT INTO activity_daily (account_id, day, key_hash, model, provider_slug, provider_name, requests,
    usage, byok_usage, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens)
SELECT account_id, CAST(created_at / 86400000 AS BIGINT), key_hash, model, provider_slug,
    provider_name, COUNT(*), SUM(CASE WHEN is_byok = 0 THEN cost ELSE 0 END),
    SUM(CASE WHEN is_byok = 1 THEN cost ELSE 0 END), SUM(tokens_prompt), SUM(tokens_completion),
    SUM(tokens_reasoning), SUM(tokens_cached)
FROM generations
GROUP BY account_id, CAST(created_at / 86400000 AS BIGINT), key_hash, model, provider_slug,
    provider_name;

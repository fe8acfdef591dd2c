-- Amounts are integer pico-dollars (10^-12 USD); times are Unix milliseconds; booleans are 0/1.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    credits     BIGINT NOT NULL DEFAULT 0,
    usage       BIGINT NOT NULL DEFAULT 0,
    byok_usage  BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    hash                  TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts(id),
    name                  TEXT NOT NULL,
    label                 TEXT NOT NULL,
    is_management         BIGINT NOT NULL DEFAULT 0,
    disabled              BIGINT NOT NULL DEFAULT 0,
    limit_amount          BIGINT,
    limit_reset           TEXT,
    include_byok_in_limit BIGINT NOT NULL DEFAULT 0,
    usage                 BIGINT NOT NULL DEFAULT 0,
    byok_usage            BIGINT NOT NULL DEFAULT 0,
    day_index             BIGINT NOT NULL DEFAULT 0,
    usage_daily           BIGINT NOT NULL DEFAULT 0,
    byok_usage_daily      BIGINT NOT NULL DEFAULT 0,
    week_index            BIGINT NOT NULL DEFAULT 0,
    usage_weekly          BIGINT NOT NULL DEFAULT 0,
    byok_usage_weekly     BIGINT NOT NULL DEFAULT 0,
    month_index           BIGINT NOT NULL DEFAULT 0,
    usage_monthly         BIGINT NOT NULL DEFAULT 0,
    byok_usage_monthly    BIGINT NOT NULL DEFAULT 0,
    held                  BIGINT NOT NULL DEFAULT 0,
    creator_user_id       TEXT,
    expires_at            BIGINT,
    last_used_at          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE generations (
    id                    TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL,
    key_hash              TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    model                 TEXT NOT NULL,
    provider_slug         TEXT NOT NULL,
    provider_name         TEXT NOT NULL,
    upstream_id           TEXT,
    streamed              BIGINT NOT NULL,
    cancelled             BIGINT NOT NULL,
    finish_reason         TEXT,
    native_finish_reason  TEXT,
    tokens_prompt         BIGINT NOT NULL,
    tokens_completion     BIGINT NOT NULL,
    tokens_reasoning      BIGINT NOT NULL,
    tokens_cached         BIGINT NOT NULL,
    cost                  BIGINT NOT NULL,
    is_byok               BIGINT NOT NULL,
    latency_ms            BIGINT,
    generation_time_ms    BIGINT,
    http_referer          TEXT,
    app_title             TEXT,
    end_user              TEXT,
    session_id            TEXT,
    status                BIGINT NOT NULL,
    error_message         TEXT
);
CREATE INDEX generations_account_created ON generations(account_id, created_at);

-- End users: the people behind an application's requests, identified per account by the
-- request's `user` (or the X-Switchyard-User header). Amounts are integer pico-dollars, times Unix
-- milliseconds, booleans 0/1.

-- A key's policy for its end users: whether a request must name one, the default spending limit
-- of each end user (overridable per end user), and the rate limits of the key and of each end user.
ALTER TABLE api_keys ADD COLUMN require_user BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN user_limit_amount BIGINT;
ALTER TABLE api_keys ADD COLUMN user_limit_reset TEXT;
ALTER TABLE api_keys ADD COLUMN rpm_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN tpm_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN user_rpm_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN user_tpm_limit BIGINT;

CREATE TABLE end_users (
    account_id         TEXT NOT NULL,
    id                 TEXT NOT NULL,
    first_seen         BIGINT NOT NULL,
    last_seen          BIGINT NOT NULL,
    request_count      BIGINT NOT NULL DEFAULT 0,
    usage              BIGINT NOT NULL DEFAULT 0,
    day_index          BIGINT NOT NULL DEFAULT 0,
    usage_daily        BIGINT NOT NULL DEFAULT 0,
    week_index         BIGINT NOT NULL DEFAULT 0,
    usage_weekly       BIGINT NOT NULL DEFAULT 0,
    month_index        BIGINT NOT NULL DEFAULT 0,
    usage_monthly      BIGINT NOT NULL DEFAULT 0,
    held               BIGINT NOT NULL DEFAULT 0,
    -- Overrides of the key's defaults; NULL takes the key's.
    limit_amount       BIGINT,
    limit_reset        TEXT,
    rpm_limit          BIGINT,
    tpm_limit          BIGINT,
    -- The block, when blocked: why, since when, until when (NULL: until unblocked), by whom
    -- ('operator' or 'strikes').
    blocked            BIGINT NOT NULL DEFAULT 0,
    block_reason       TEXT,
    blocked_at         BIGINT,
    block_expires_at   BIGINT,
    block_source       TEXT,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX end_users_last_seen ON end_users (account_id, last_seen);

-- Strikes: requests whose moderation result counted against their end user.
CREATE TABLE end_user_strikes (
    account_id     TEXT NOT NULL,
    end_user       TEXT NOT NULL,
    generation_id  TEXT NOT NULL,
    at             BIGINT NOT NULL,
    categories     TEXT NOT NULL
);
CREATE INDEX end_user_strikes_user ON end_user_strikes (account_id, end_user, at);

-- A database hold also counts against its end user's limit.
ALTER TABLE holds ADD COLUMN end_user TEXT;

-- Presets: a named, versioned set of request settings (model, provider preferences, system
-- prompt, parameters) an account applies to inference requests by slug. Every update is a new
-- version; versions are never changed or deleted, and the preset designates the one applied.
CREATE TABLE presets (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL,
    slug                   TEXT NOT NULL,
    name                   TEXT NOT NULL,
    description            TEXT,
    status                 TEXT NOT NULL,
    designated_version_id  TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    status_updated_at      BIGINT,
    UNIQUE (account_id, slug)
);

CREATE TABLE preset_versions (
    id             TEXT PRIMARY KEY,
    preset_id      TEXT NOT NULL,
    version        BIGINT NOT NULL,
    system_prompt  TEXT,
    config         TEXT NOT NULL,
    creator_id     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (preset_id, version)
);

-- What chose the generation's model: the preset applied and the router named, when any.
ALTER TABLE generations ADD COLUMN preset_id TEXT;
ALTER TABLE generations ADD COLUMN router TEXT;

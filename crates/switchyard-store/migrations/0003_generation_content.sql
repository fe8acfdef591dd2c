-- Logged prompts and completions (per-account opt-in), encrypted by the gateway (AES-256-GCM,
-- bound to the generation id). The database never sees the plaintext.
CREATE TABLE generation_content (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    nonce       TEXT NOT NULL,
    ciphertext  TEXT NOT NULL
);
CREATE INDEX generation_content_created ON generation_content(created_at);

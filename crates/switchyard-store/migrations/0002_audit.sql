-- The append-only audit chain. Rows are only inserted (and pruned from the front behind a
-- checkpoint); each holds the hash of the one before it.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    created_at     BIGINT NOT NULL,
    generation_id  TEXT NOT NULL,
    account_id     TEXT,
    body           TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_log_created ON audit_log(created_at);

-- Signed anchors: 'head' (last record written) and 'checkpoint' (last record pruned).
CREATE TABLE audit_anchors (
    kind       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

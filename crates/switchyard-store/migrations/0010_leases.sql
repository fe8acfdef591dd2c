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

-- Holds carry the gateway instance that took them and when they lapse unless renewed, so that
-- a starting or sweeping gateway releases only its own holds and those of gateways gone.
-- Holds from before this migration have no owner and are lapsed.
ALTER TABLE holds ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX holds_owner ON holds (owner);
CREATE INDEX holds_expires_at ON holds (expires_at);

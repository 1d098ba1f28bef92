-- Audit tree: one RFC 6962 Merkle tree per tenant ('' = the platform tree)
-- over audit_events. Owned by internal/audit.
--
-- An append commits the event row and its audit_pending row in one
-- transaction. One sequencer at a time moves pending events into the tree:
-- it gives each a dense position (audit_leaves), stores the tree's hashes
-- (audit_hashes) and a signed checkpoint (audit_checkpoints), all in one
-- transaction. audit_events stays insert-only; purging old events deletes
-- their rows but keeps leaves and hashes so the tree still verifies.
-- +goose Up
ALTER TABLE audit_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'access';
UPDATE audit_events SET kind = 'technical' WHERE action = 'logon';
CREATE INDEX audit_events_time ON audit_events(tenant_id, time);

-- hash is SHA-256(0x00 || body), computed by the appender; NULL for events
-- written before this migration (the sequencer then hashes the body).
CREATE TABLE audit_pending (
    tenant_id TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    time      BIGINT NOT NULL,
    hash      BYTEA,
    PRIMARY KEY (tenant_id, event_id)
);
INSERT INTO audit_pending (tenant_id, event_id, time)
    SELECT tenant_id, id, time FROM audit_events;

CREATE TABLE audit_leaves (
    tenant_id TEXT NOT NULL,
    idx       BIGINT NOT NULL,          -- position in the tenant's tree, 0..n-1
    event_id  TEXT NOT NULL,
    purged    BOOLEAN NOT NULL DEFAULT FALSE,  -- body removed by retention
    PRIMARY KEY (tenant_id, idx)
);
CREATE UNIQUE INDEX audit_leaves_event ON audit_leaves(event_id);

-- Stored hashes (tlog.StoredHashIndex order) in groups of 256 per level:
-- row (level, idx) holds the hashes of nodes idx*256 .. idx*256+255 of that
-- level, concatenated, 32 bytes each.
CREATE TABLE audit_hashes (
    tenant_id TEXT NOT NULL,
    level     BIGINT NOT NULL,
    idx       BIGINT NOT NULL,
    hashes    BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, level, idx)
);

-- Signed checkpoints (C2SP checkpoint in a signed note). The newest per
-- tenant and the first of each day are kept.
CREATE TABLE audit_checkpoints (
    tenant_id TEXT NOT NULL,
    size      BIGINT NOT NULL,
    root      BYTEA NOT NULL,
    time      BIGINT NOT NULL,
    note      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, size)
);

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_hashes;
DROP TABLE audit_leaves;
DROP TABLE audit_pending;
DROP INDEX audit_events_time;
ALTER TABLE audit_events DROP COLUMN kind;

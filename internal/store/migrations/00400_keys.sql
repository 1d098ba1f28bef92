-- Wrapped keys of the envelope hierarchy (DP-1). Owned by internal/keys.
-- Nothing here can be read without the master key, which never enters the
-- database. No foreign key to tenants: keys sits below identity.
-- +goose Up
CREATE TABLE tenant_keks (
    tenant_id  TEXT NOT NULL,
    version    BIGINT NOT NULL,          -- 1, 2, ...; the highest is current
    master_id  TEXT NOT NULL,            -- fingerprint of the wrapping master key
    wrapped    BYTEA NOT NULL,           -- the KEK sealed by that master key
    created_at BIGINT NOT NULL,
    retired_at BIGINT,                   -- superseded by a newer version
    PRIMARY KEY (tenant_id, version)
);
CREATE INDEX tenant_keks_master ON tenant_keks(master_id);

-- One data key per patient. The row of patient_id '' is the tenant's
-- blind-index key. A shredded row is a tombstone without key material, so
-- the patient can never get a new key; the check makes that structural.
-- The foreign key keeps a KEK version from being deleted while a key it
-- wraps exists.
CREATE TABLE patient_deks (
    tenant_id   TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    kek_version BIGINT,
    wrapped     BYTEA,
    created_at  BIGINT NOT NULL,
    shredded_at BIGINT,
    PRIMARY KEY (tenant_id, patient_id),
    FOREIGN KEY (tenant_id, kek_version) REFERENCES tenant_keks(tenant_id, version),
    CHECK ((shredded_at IS NULL AND kek_version IS NOT NULL AND wrapped IS NOT NULL)
        OR (shredded_at IS NOT NULL AND kek_version IS NULL AND wrapped IS NULL))
);
CREATE INDEX patient_deks_kek ON patient_deks(tenant_id, kek_version);

-- +goose Down
DROP TABLE patient_deks;
DROP TABLE tenant_keks;

-- Access: care relationships (AZ-3). Owned by internal/access.
-- +goose Up
CREATE TABLE care_relationships (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    professional_id TEXT NOT NULL REFERENCES accounts(id),
    patient_id      TEXT NOT NULL REFERENCES patients(id),
    kind            TEXT NOT NULL,
    start_at        BIGINT NOT NULL,
    end_at          BIGINT,
    recorded_by     TEXT NOT NULL,
    recorded_at     BIGINT NOT NULL
);
CREATE INDEX care_relationships_lookup ON care_relationships(tenant_id, professional_id, patient_id);

-- +goose Down
DROP TABLE care_relationships;

-- Records: FHIR resources, every version kept, bodies sealed per patient
-- (DP-1). Owned by internal/record.
-- +goose Up
CREATE TABLE resources (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      BIGINT NOT NULL,
    patient_id   TEXT NOT NULL,
    deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    categories   TEXT NOT NULL,          -- access categories (AZ-9), space separated
    last_updated BIGINT NOT NULL,
    body         BYTEA NOT NULL,         -- AES-256-GCM under the patient's data key
    PRIMARY KEY (tenant_id, type, id, version)
);
CREATE INDEX resources_patient ON resources(tenant_id, patient_id, type);

-- +goose Down
DROP TABLE resources;

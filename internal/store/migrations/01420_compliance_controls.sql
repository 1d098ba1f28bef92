-- The controls register per tenant (internal/compliance, GOV-3): the
-- control rows themselves are embedded in the binary (controls.json);
-- these tables keep what an organisation says about each: applicability,
-- audit method, responsible officer, notes, the last time a periodic
-- control was done, and its evidence documents (sealed with the tenant's
-- key).
-- +goose Up
CREATE TABLE compliance_controls (
    tenant_id     TEXT NOT NULL,
    control_id    TEXT NOT NULL,
    applicable    BOOLEAN NOT NULL DEFAULT TRUE,
    justification TEXT NOT NULL DEFAULT '',   -- why not applicable
    audit_method  TEXT NOT NULL DEFAULT '',
    responsible   TEXT NOT NULL DEFAULT '',   -- the officer answerable, by name or function
    notes         TEXT NOT NULL DEFAULT '',
    last_done_at  BIGINT,                     -- a periodic control was last carried out
    reminded_at   BIGINT,                     -- the due alert for the current period was raised
    updated_by    TEXT NOT NULL DEFAULT '',
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, control_id)
);

CREATE TABLE compliance_documents (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    control_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,               -- sniffed, never the client's word
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    sealed       BYTEA NOT NULL,              -- under the tenant's documents key (keys.DocumentAD)
    uploaded_by  TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL
);
CREATE INDEX compliance_documents_control ON compliance_documents (tenant_id, control_id);

-- +goose Down
DROP TABLE compliance_documents;
DROP TABLE compliance_controls;

-- The internal CA (DP-3): the installation's root and each tenant's
-- intermediate, the third-party systems a tenant registers (ID-3: each
-- with its responsible natural person), their patient sets, and every
-- certificate issued, with its revocation. Owned by internal/pki.
-- Private keys are never stored in plain: key_sealed is the DER key sealed
-- under the master key (keys.CAKeyAD names the CA it belongs to).
-- +goose Up
CREATE TABLE pki_cas (
    id          TEXT PRIMARY KEY,         -- the certificate's serial in hex
    tenant_id   TEXT NOT NULL,            -- '' for the installation's root
    kind        TEXT NOT NULL,            -- root, intermediate, signing
    cert_der    BYTEA NOT NULL,
    key_sealed  BYTEA NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    status      TEXT NOT NULL,            -- active, retired
    created_by  TEXT NOT NULL,
    approved_by TEXT NOT NULL,            -- the second admin or operator (GOV-1)
    created_at  BIGINT NOT NULL
);
CREATE INDEX pki_cas_tenant ON pki_cas(tenant_id, kind, status);

CREATE TABLE pki_systems (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    responsible_id TEXT NOT NULL,         -- an account of the tenant (ID-3)
    scopes         TEXT NOT NULL,         -- access actions, space-separated
    categories     TEXT NOT NULL,         -- data categories, space-separated; * for all
    patient_set    BOOLEAN NOT NULL,      -- true: only the patients in pki_system_patients
    status         TEXT NOT NULL,         -- active, deactivated
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    deactivated_at BIGINT
);
CREATE UNIQUE INDEX pki_systems_name ON pki_systems(tenant_id, name);
CREATE INDEX pki_systems_responsible ON pki_systems(responsible_id);

CREATE TABLE pki_system_patients (
    system_id  TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (system_id, patient_id)
);

CREATE TABLE pki_certificates (
    serial        TEXT PRIMARY KEY,       -- 128 random bits in hex
    tenant_id     TEXT NOT NULL,
    system_id     TEXT NOT NULL,
    ca_id         TEXT NOT NULL,
    purpose       TEXT NOT NULL,          -- tls (client authentication), signing (documents, DP-4)
    sha256        TEXT NOT NULL,          -- of the DER, hex
    cert_der      BYTEA NOT NULL,
    not_before    BIGINT NOT NULL,
    not_after     BIGINT NOT NULL,
    issued_by     TEXT NOT NULL,
    issued_at     BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT NOT NULL DEFAULT '',
    revoke_reason TEXT NOT NULL DEFAULT '',
    expiry_warned_at BIGINT              -- when the 30-day expiry warning was raised
);
CREATE INDEX pki_certificates_system ON pki_certificates(system_id);
CREATE INDEX pki_certificates_tenant ON pki_certificates(tenant_id, issued_at);
CREATE INDEX pki_certificates_revoked ON pki_certificates(revoked_at);

-- Four eyes (GOV-1): issuing a CA certificate or changing the CA policy
-- is proposed by one person and done only when another approves.
CREATE TABLE pki_requests (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,            -- intermediate, policy
    detail      TEXT NOT NULL,            -- JSON of what is asked
    status      TEXT NOT NULL,            -- pending, approved, rejected
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    decided_by  TEXT NOT NULL DEFAULT '',
    decided_at  BIGINT
);
CREATE INDEX pki_requests_tenant ON pki_requests(tenant_id, status);

-- The tenant's CA policy (changed only through pki_requests): the longest
-- validity of a system certificate and whether incoming documents must be
-- signed (DP-4).
CREATE TABLE pki_policies (
    tenant_id       TEXT PRIMARY KEY,
    max_days        BIGINT NOT NULL,
    require_signed  BOOLEAN NOT NULL,
    changed_by      TEXT NOT NULL,
    changed_at      BIGINT NOT NULL
);

-- +goose Down
DROP TABLE pki_policies;
DROP TABLE pki_requests;
DROP TABLE pki_certificates;
DROP TABLE pki_system_patients;
DROP TABLE pki_systems;
DROP TABLE pki_cas;

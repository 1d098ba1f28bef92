-- Identity: tenants (care organisations), accounts, professionals, patients.
-- Owned by internal/identity. Ids are random and never reissued (ID-1):
-- rows are deactivated, never deleted.
-- +goose Up
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    ura        TEXT NOT NULL DEFAULT '',
    agb        TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT REFERENCES tenants(id),  -- NULL for platform operators
    kind                TEXT NOT NULL,                -- person, professional, admin, operator
    username            TEXT NOT NULL UNIQUE,         -- lower case; kept after deactivation
    display_name        TEXT NOT NULL,
    email               TEXT NOT NULL DEFAULT '',
    birth_date          TEXT NOT NULL DEFAULT '',
    registration_method BIGINT NOT NULL DEFAULT 1,    -- NEN 7512 Tabel 5, 1..4
    verified_by         TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL DEFAULT 'active',
    created_at          BIGINT NOT NULL,
    deactivated_at      BIGINT
);
CREATE INDEX accounts_tenant ON accounts(tenant_id);

CREATE TABLE professionals (
    account_id     TEXT PRIMARY KEY REFERENCES accounts(id),
    big            TEXT NOT NULL DEFAULT '',
    uzi            TEXT NOT NULL DEFAULT '',
    agb            TEXT NOT NULL DEFAULT '',
    function_title TEXT NOT NULL DEFAULT '',
    verified_by    TEXT NOT NULL DEFAULT '',
    verified_at    BIGINT
);

CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);

CREATE TABLE patients (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    bsn_index  BYTEA,              -- keyed hash of the BSN (blind index), never the BSN
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX patients_bsn ON patients(tenant_id, bsn_index);

-- A person account and the patient record that is their own (AZ-4).
CREATE TABLE person_patients (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    PRIMARY KEY (account_id, patient_id)
);

-- +goose Down
DROP TABLE person_patients;
DROP TABLE patients;
DROP TABLE account_roles;
DROP TABLE professionals;
DROP TABLE accounts;
DROP TABLE tenants;

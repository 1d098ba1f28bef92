-- Onboarding: the lifecycle of tenants (created, deactivated) and the
-- one-time activation invitations of accounts (ID-6). Owned by
-- internal/onboard. Codes and secrets are stored only as SHA-256 hashes.
-- +goose Up
CREATE TABLE onboard_tenants (
    tenant_id      TEXT PRIMARY KEY,
    ura            TEXT NOT NULL,
    status         TEXT NOT NULL,          -- active, deactivated
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    deactivated_at BIGINT
);
CREATE UNIQUE INDEX onboard_tenants_ura ON onboard_tenants(ura);

CREATE TABLE onboard_invitations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    code_hash   BYTEA NOT NULL UNIQUE,     -- SHA-256 of the printed code
    secret_hash BYTEA NOT NULL,            -- SHA-256 of the second-channel secret
    patient_id  TEXT NOT NULL DEFAULT '',  -- a person's own record, linked on activation
    state       TEXT NOT NULL,             -- issued, enrolling, used, revoked
    failures    BIGINT NOT NULL DEFAULT 0, -- wrong secrets or TOTP codes for this code
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX onboard_invitations_account ON onboard_invitations(account_id);

-- Failed activation attempts per source address, for the throttle.
CREATE TABLE onboard_attempts (
    source TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX onboard_attempts_source ON onboard_attempts(source, at);

-- +goose Down
DROP TABLE onboard_attempts;
DROP TABLE onboard_invitations;
DROP TABLE onboard_tenants;

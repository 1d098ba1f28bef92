-- Authentication, part two (issue 3). Owned by internal/authn: brute-force
-- counters (derived from auth_events, so every replica sees the same counts),
-- security events, one-time codes, recovery codes, contact factors for SMS and
-- e-mail, per-tenant settings, password history, and the session fields for
-- role choice, representation and forced password change.
-- +goose Up
ALTER TABLE auth_events ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_events ADD COLUMN factor TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_events_username ON auth_events(username, created_at);
CREATE INDEX auth_events_source ON auth_events(source, created_at);

ALTER TABLE login_attempts ADD COLUMN username TEXT NOT NULL DEFAULT '';

ALTER TABLE sessions ADD COLUMN on_behalf_of TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE totp_credentials ADD COLUMN revoked_at BIGINT;

-- No audit-owned security_events table existed when this was written, so
-- authentication raises its security events here.
CREATE TABLE auth_security_events (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,           -- account-attack, source-attack, privilege-mix
    account_id TEXT,
    username   TEXT NOT NULL,
    source     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX auth_security_events_time ON auth_security_events(created_at);

-- One-time codes sent by SMS or e-mail: for a log-on attempt or to verify a
-- contact address. Only a hash is kept.
CREATE TABLE auth_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    purpose    TEXT NOT NULL,           -- logon, verify
    ref        TEXT NOT NULL,           -- attempt hash (hex) or contact id
    channel    TEXT NOT NULL,           -- sms, email
    code_hash  BYTEA NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX auth_codes_ref ON auth_codes(ref);

CREATE TABLE contact_factors (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    channel     TEXT NOT NULL,          -- sms, email
    address     TEXT NOT NULL,
    verified_at BIGINT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX contact_factors_account ON contact_factors(account_id);

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    code_hash  BYTEA NOT NULL,          -- SHA-256 of a 50-bit random code
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX recovery_codes_account ON recovery_codes(account_id);

CREATE TABLE tenant_auth_settings (
    tenant_id        TEXT PRIMARY KEY REFERENCES tenants(id),
    weak_factors     BOOLEAN NOT NULL DEFAULT TRUE,  -- SMS and e-mail codes allowed
    password_max_age BIGINT NOT NULL DEFAULT 0        -- seconds; 0 = no periodic expiry
);

-- The last hashes of each account, so old passwords are not reused (AUTH-5).
CREATE TABLE password_history (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_history_account ON password_history(account_id, created_at);

-- +goose Down
DROP TABLE password_history;
DROP TABLE tenant_auth_settings;
DROP TABLE recovery_codes;
DROP TABLE contact_factors;
DROP TABLE auth_codes;
DROP TABLE auth_security_events;
DROP INDEX auth_events_source;
DROP INDEX auth_events_username;
ALTER TABLE totp_credentials DROP COLUMN revoked_at;
ALTER TABLE sessions DROP COLUMN must_change_password;
ALTER TABLE sessions DROP COLUMN on_behalf_of;
ALTER TABLE login_attempts DROP COLUMN username;
ALTER TABLE auth_events DROP COLUMN factor;
ALTER TABLE auth_events DROP COLUMN reason;

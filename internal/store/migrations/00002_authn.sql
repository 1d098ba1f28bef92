-- Authentication: credentials, log-on transactions, sessions. Owned by
-- internal/authn. The password store is a table of its own (AUTH-5); no other
-- package reads it.
-- +goose Up
CREATE TABLE password_credentials (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    hash        TEXT NOT NULL,           -- argon2id PHC string, parameters included
    must_change BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at  BIGINT,
    changed_at  BIGINT NOT NULL
);

CREATE TABLE totp_credentials (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    secret     BYTEA NOT NULL,           -- sealed with the master key, account id as AAD
    last_step  BIGINT NOT NULL DEFAULT 0, -- last accepted time step: a code works once
    created_at BIGINT NOT NULL
);
CREATE INDEX totp_account ON totp_credentials(account_id);

-- A log-on transaction binds the factors of one attempt (AUTH-1).
CREATE TABLE login_attempts (
    id_hash     BYTEA PRIMARY KEY,
    account_id  TEXT,                    -- NULL when the user name is unknown
    first_ok    BOOLEAN NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE sessions (
    id_hash     BYTEA PRIMARY KEY,       -- SHA-256 of the opaque token
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    tenant_id   TEXT,
    role        TEXT NOT NULL,
    assurance   BIGINT NOT NULL,         -- access.Level (AUTH-6)
    factors     TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_account ON sessions(account_id);

-- Every log-on success and failure (AUTH-4).
CREATE TABLE auth_events (
    id         TEXT PRIMARY KEY,
    account_id TEXT,
    username   TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX auth_events_account ON auth_events(account_id, created_at);

-- +goose Down
DROP TABLE auth_events;
DROP TABLE sessions;
DROP TABLE login_attempts;
DROP TABLE totp_credentials;
DROP TABLE password_credentials;

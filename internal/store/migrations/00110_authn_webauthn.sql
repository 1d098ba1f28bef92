-- WebAuthn security keys and passkeys as a second factor (issue 3, AUTH-2).
-- Owned by internal/authn.
-- +goose Up

-- The opaque, random user handle an authenticator stores with a passkey; it
-- says nothing about the person (no account id, no name).
CREATE TABLE webauthn_users (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    user_handle BYTEA NOT NULL UNIQUE
);

CREATE TABLE webauthn_credentials (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    credential_id      BYTEA NOT NULL UNIQUE,
    public_key         BYTEA NOT NULL,         -- COSE key
    attestation_type   TEXT NOT NULL,
    attestation_format TEXT NOT NULL,
    aaguid             BYTEA NOT NULL,
    transports         TEXT NOT NULL,          -- space separated
    flags              BIGINT NOT NULL,        -- UP, UV, BE, BS as stored by go-webauthn
    user_verified      BOOLEAN NOT NULL,       -- the key verified its user at registration
    sign_count         BIGINT NOT NULL,
    name               TEXT NOT NULL,          -- chosen by the user
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT,
    revoked_at         BIGINT
);
CREATE INDEX webauthn_credentials_account ON webauthn_credentials(account_id);

-- A pending ceremony: the SHA-256 of its challenge, bound to the log-on
-- attempt or session (ref) it was begun for, short-lived and used once.
CREATE TABLE webauthn_ceremonies (
    challenge_hash BYTEA PRIMARY KEY,
    purpose        TEXT NOT NULL,              -- register, logon
    ref            TEXT NOT NULL,              -- attempt hash (hex) or account:session
    account_id     TEXT,                       -- NULL for an attempt on an unknown name
    session_data   TEXT NOT NULL,              -- go-webauthn SessionData, challenge blanked
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX webauthn_ceremonies_ref ON webauthn_ceremonies(ref);

-- +goose Down
DROP TABLE webauthn_ceremonies;
DROP TABLE webauthn_credentials;
DROP TABLE webauthn_users;

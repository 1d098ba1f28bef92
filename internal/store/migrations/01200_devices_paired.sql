-- Paired mobile devices (AUTH-7, internal/devices). A logged-on user makes
-- a one-time pairing code; the device redeems it with its P-256 public key
-- and a PIN, of which only an argon2id verifier is kept. The device then
-- signs challenges for short-lived tokens. Codes, challenges and tokens are
-- stored only as SHA-256 hashes, each the primary key of its table, so the
-- database refuses a second one. A device unlinked by its user or an admin
-- keeps its row until it acknowledges the wipe; then every row of it goes.
-- +goose Up
CREATE TABLE devices_pairings (
    hash         BYTEA PRIMARY KEY,          -- SHA-256 of the code
    tenant_id    TEXT NOT NULL,
    account_id   TEXT NOT NULL,              -- who paired: the device acts as this account
    role         TEXT NOT NULL,              -- the pairing session's role
    assurance    BIGINT NOT NULL,            -- the pairing session's assurance level
    on_behalf_of TEXT NOT NULL DEFAULT '',   -- the patient the session represented
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    role           TEXT NOT NULL,
    assurance      BIGINT NOT NULL,
    on_behalf_of   TEXT NOT NULL DEFAULT '',
    name           TEXT NOT NULL,            -- what the device calls itself, shown to its user
    public_key     BYTEA NOT NULL,           -- P-256, SubjectPublicKeyInfo DER
    pin_hash       TEXT NOT NULL,            -- argon2id verifier of the PIN (internal/password)
    pin_failures   BIGINT NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,            -- active, locked, unlinked
    created_at     BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,          -- the PIN is asked again 15 minutes after this
    locked_at      BIGINT,
    unlinked_at    BIGINT,
    unlinked_by    TEXT NOT NULL DEFAULT '', -- the account that unlinked it, or '' for a deactivation
    unlink_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_account ON devices (account_id);
CREATE INDEX devices_tenant ON devices (tenant_id);

CREATE TABLE devices_challenges (
    hash       BYTEA PRIMARY KEY,            -- SHA-256 of the challenge
    device_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,                -- auth (for a token) or wipe (for the acknowledgement)
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX devices_challenges_device ON devices_challenges (device_id);

CREATE TABLE devices_tokens (
    hash       BYTEA PRIMARY KEY,            -- SHA-256 of the zkd_ token
    device_id  TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_tokens_device ON devices_tokens (device_id);

-- +goose Down
DROP TABLE devices_tokens;
DROP TABLE devices_challenges;
DROP TABLE devices;
DROP TABLE devices_pairings;

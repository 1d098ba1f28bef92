-- Upstream log-ons (single sign-on, AUTH-3): an attempt remembers what its
-- first factor was ('pwd', or 'sso' when an approved identity provider
-- logged the user on), so that the session records the means used and the
-- assurance follows from them. Owned by internal/authn.
-- +goose Up
ALTER TABLE login_attempts ADD COLUMN first_factor TEXT NOT NULL DEFAULT 'pwd';

-- +goose Down
ALTER TABLE login_attempts DROP COLUMN first_factor;

-- Step-up (issue 12): when the session last proved a second factor. The
-- log-on itself is the first proof; adding or removing a factor or recovery
-- codes needs a recent one (AUTH-2). Sessions from before this migration
-- have 0 and must step up first. Owned by internal/authn.
-- +goose Up
ALTER TABLE sessions ADD COLUMN second_factor_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sessions DROP COLUMN second_factor_at;

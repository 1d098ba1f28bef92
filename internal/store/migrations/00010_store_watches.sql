-- The versions of the watched table sets (store.Watch): a transaction that
-- writes a watched table adds one to its watch's row before it commits, and
-- every replica polls the rows, so a cache in memory built from those
-- tables (the access decisions) is dropped on this replica at once and on
-- every other within a second (AZ-1). No row until the first write. Owned
-- by internal/store.
-- +goose Up
CREATE TABLE store_watches (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

-- +goose Down
DROP TABLE store_watches;

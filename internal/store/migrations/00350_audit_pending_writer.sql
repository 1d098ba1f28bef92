-- The id of the transaction that queued each event waiting for the
-- sequencer (store.WriterID; 0 on SQLite and for rows queued before this
-- migration), so that a person's cached view (audit/viewcache.go) reads
-- only the waiting events a transaction at or above its last snapshot's
-- horizon queued, not every waiting event of the patient again. Owned by
-- internal/audit.
-- +goose Up
ALTER TABLE audit_pending ADD COLUMN writer_txn BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE audit_pending DROP COLUMN writer_txn;

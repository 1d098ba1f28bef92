// Package keys owns the encryption of stored health data (DP-1): envelope
// keys master -> tenant KEK -> patient DEK, all AES-256-GCM, with rotation
// and crypto-shredding.
//
// It promises:
//   - Every value is sealed with AES-256-GCM under a random 96-bit nonce in
//     a versioned format (format.go) that authenticates its associated data,
//     one encoding for every sealed value (AD: a purpose label and
//     length-prefixed fields): a ciphertext moved to another record,
//     patient, tenant or purpose, or altered in one byte, does not open.
//     Values sealed in format 1, before that encoding, still open.
//   - The master key never enters the database; tenant keys are stored
//     wrapped by it, patient keys wrapped by their tenant's key.
//   - RotateMaster and RotateTenant re-wrap keys, never data, and readers
//     keep working throughout: an old wrapping stays readable until its
//     replacement is stored.
//   - After Shred, a patient's data cannot be opened by anyone, even with the
//     live database and the master key (backups: see below), and nothing
//     new is sealed for them.
//   - Unwrapped keys exist only in process memory, in a bounded cache that
//     forgets them after a short TTL.
//
// Several replicas. Each process caches unwrapped keys for Config.CacheTTL.
// A Shred or rotation in one process invalidates that process's cache at
// once; another replica may keep using a shredded patient key until its
// cached copy expires, so the TTL is the bound on that (30 s by default).
// Rotation needs no invalidation elsewhere: re-wrapping does not change the
// unwrapped keys, and a tenant KEK version is deleted only when no patient
// key references it.
//
// Nonces. With random nonces one key may seal at most 2^32 values. A patient
// key seals that patient's record versions, a tenant key one wrap per
// patient per rotation, a master key one wrap per tenant per rotation: all
// far below the bound.
//
// Master rotation: add a new current master key (AddMasterKey, or a new
// first key in ZK_MASTER_KEY, or a rotated KMS key), roll it out to every
// replica, run RotateMaster, then remove the old key. Tenant rotation:
// RotateTenant, any time, per tenant.
//
// Shredding and backups. Shred overwrites the wrapped key in the live
// database. Copies in backups, PostgreSQL's dead tuples (until VACUUM) and
// WAL archives still hold the wrapped key; backups are encrypted themselves (DP-5) and
// expire with the backup retention, and a restore must re-apply shreds made
// after the backup was taken.
package keys

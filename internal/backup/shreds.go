package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// A shred made after the newest backup is in no manifest: restoring that
// backup after a disaster would bring the erased record back. So every
// shred also leaves a small record in the backup store, beside the
// backups (and so off the machine when the store is), which a restore
// reads with the newer manifests. The record names only ids, no data.

const shredPrefix = "shred-"

type shredRecord struct {
	Person
	Shredded time.Time `json:"shredded"`
}

// RecordShred writes the shred of p into st. It is idempotent: a second
// shred of the same patient replaces the record.
func RecordShred(ctx context.Context, st Store, p Person, at time.Time) error {
	b, err := json.Marshal(shredRecord{Person: p, Shredded: at.UTC()})
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(p.TenantID + "/" + p.PatientID)) // ids never appear in a file name
	if _, err := st.Put(ctx, shredPrefix+hex.EncodeToString(sum[:16])+".json", bytes.NewReader(b)); err != nil {
		return fmt.Errorf("record the shred in the backup store: %w", err)
	}
	return nil
}

// Shreds lists the shreds recorded in st.
func Shreds(ctx context.Context, st Store) ([]Person, error) {
	names, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Person
	for _, n := range names {
		if !strings.HasPrefix(n, shredPrefix) || !strings.HasSuffix(n, ".json") {
			continue
		}
		r, err := st.Open(ctx, n)
		if err != nil {
			return nil, err
		}
		var rec shredRecord
		err = json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&rec)
		r.Close()
		if err != nil || rec.TenantID == "" || rec.PatientID == "" {
			return nil, fmt.Errorf("shred record %s: unreadable (%v); it must not be ignored", n, err)
		}
		out = append(out, rec.Person)
	}
	return out, nil
}

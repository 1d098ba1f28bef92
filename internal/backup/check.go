package backup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Checker restore-tests backups: each is restored into a scratch database
// beside the live one, its counts compared with the manifest, its access
// log verified against the signed checkpoints it holds (the newest one
// named in the manifest included), and a sample of records decrypted with
// the master key.
type Checker struct {
	DatabaseURL string // the live database; the scratch one is made beside it
	TempDir     string // for a SQLite scratch file ("" the system's)
	Identities  []age.Identity
	Master      keys.Master
	Verifier    note.Verifier
	Sample      int // records to decrypt; 0: 20
}

// CheckResult is the outcome of one restore test.
type CheckResult struct {
	Backup  string    `json:"backup"`
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Took    string    `json:"took"`
	Rows    int64     `json:"rows"`
	Events  int64     `json:"events"`
	Trees   int       `json:"trees"`
	Sampled int       `json:"sampled"`
}

// Check restore-tests backup name of st.
func (c Checker) Check(ctx context.Context, st Store, name string) CheckResult {
	start := time.Now()
	res := CheckResult{Backup: name, At: start.UTC()}
	err := c.check(ctx, st, name, &res)
	res.OK, res.Took = err == nil, time.Since(start).Round(time.Millisecond).String()
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func (c Checker) check(ctx context.Context, st Store, name string, res *CheckResult) error {
	outer, err := ReadManifest(ctx, st, name)
	if err != nil {
		return err
	}
	url, drop, err := store.Scratch(ctx, c.DatabaseURL, c.TempDir)
	if err != nil {
		return err
	}
	defer drop()
	db, err := store.Open(ctx, url, store.BulkLoad())
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := st.Open(ctx, name)
	if err != nil {
		return err
	}
	m, err := Restore(ctx, r, c.Identities, db, nil)
	r.Close()
	if err != nil {
		return err
	}
	res.Rows = m.Rows()
	if m.Rows() != outer.Rows() || m.Name != outer.Name {
		return fmt.Errorf("the backup holds %d rows, its manifest says %d", m.Rows(), outer.Rows())
	}
	rep, err := audit.New(db, clock.System{}, rand.Reader).Verify(ctx, note.VerifierList(c.Verifier), nil)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if !rep.OK() {
		return fmt.Errorf("audit verify of the restored log: %d finding(s), first: %s", len(rep.Damage)+rep.Truncated, firstDamage(rep))
	}
	res.Events, res.Trees = rep.Events, len(rep.Trees)
	for _, h := range m.Trees {
		i := slices.IndexFunc(rep.Trees, func(t audit.TreeReport) bool { return t.TenantID == h.TenantID })
		if i < 0 || rep.Trees[i].Leaves < h.Size || rep.Trees[i].Checkpoints == 0 {
			return fmt.Errorf("audit tree %q: the backup's newest checkpoint (size %d) is not in the restored log", h.TenantID, h.Size)
		}
	}
	res.Sampled, err = c.decryptSample(ctx, db)
	return err
}

func firstDamage(r audit.Report) string {
	if len(r.Damage) == 0 {
		return "truncated report"
	}
	return r.Damage[0].String()
}

// decryptSample opens a random sample of current, unshredded records.
func (c Checker) decryptSample(ctx context.Context, db *store.DB) (int, error) {
	n := c.Sample
	if n <= 0 {
		n = 20
	}
	kr, err := keys.NewKeyring(keys.Config{Master: c.Master, Store: keys.NewSQLStore(db)})
	if err != nil {
		return 0, err
	}
	rows, err := db.QueryContext(ctx, `SELECT r.tenant_id, r.patient_id, r.type, r.id, r.version, r.body FROM resources r
		JOIN patient_deks k ON k.tenant_id = r.tenant_id AND k.patient_id = r.patient_id
		WHERE k.shredded_at IS NULL AND r.deleted = FALSE ORDER BY RANDOM() LIMIT $1`, n)
	if err != nil {
		return 0, fmt.Errorf("sample records: %w", err)
	}
	defer rows.Close()
	done := 0
	for rows.Next() {
		var tenant, patient, typ, id string
		var version int64
		var body []byte
		if err := rows.Scan(&tenant, &patient, &typ, &id, &version, &body); err != nil {
			return done, err
		}
		if _, err := kr.Open(ctx, tenant, patient, body, keys.ResourceAD(tenant, patient, typ, id, version)); err != nil {
			return done, fmt.Errorf("decrypt %s/%s version %d: %w (is the master key the one the backup was made under?)", typ, id, version, err)
		}
		done++
	}
	if err := rows.Err(); err != nil {
		return done, err
	}
	if done == 0 {
		var any int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources`).Scan(&any); err == nil && any > 0 {
			return 0, errors.New("no record could be sampled")
		}
	}
	return done, nil
}

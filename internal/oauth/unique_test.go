package oauth

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A million tokens from the service's own generator (crypto/rand, 256
// bits, stored as SHA-256 hashes) all land under the primary key, and the
// database refuses a token hash stored twice: uniqueness is the database's
// constraint, not luck (MedMij). SQLite takes the full million, PostgreSQL
// (the same constraint) 100,000, to keep the suite short; the loop is
// bounded in count and, as a guard, in time.
//
// REQ: EX-1
func TestMillionTokensUnique(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if testing.Short() {
			t.Skip("inserts a million rows")
		}
		ctx := context.Background()
		svc := New(Config{DB: db, Clock: clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)), Rand: rand.Reader, Issuer: "https://zorgkluis.test"})
		total := 1_000_000
		if db.Dialect() == store.Postgres {
			total = 100_000
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO oauth_clients (id, name, redirect_uris, auth_method, scopes, consent_days, status, created_by, created_at)
			VALUES ('app-1', 'App', 'https://app.example/cb', 'none', 'patient/*.rs', 90, 'active', 'a-admin', 0)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO oauth_consents (id, tenant_id, client_id, account_id, patient_id, on_behalf, scopes, assurance, created_at, expires_at)
			VALUES ('cs-1', 't-1', 'app-1', 'a-1', 'p-1', FALSE, 'patient/*.rs', 'hoog', 0, 1)`); err != nil {
			t.Fatal(err)
		}
		const batch = 500
		deadline := time.Now().Add(5 * time.Minute)
		var first []byte
		seen := map[string]bool{}
		for done := 0; done < total; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d tokens stored in 5 minutes", done, total)
			}
			err := db.Tx(ctx, func(tx *store.Tx) error {
				for range 20 {
					args := make([]any, 0, batch*7)
					for range batch {
						tok, h, err := svc.secret("zka_")
						if err != nil {
							return err
						}
						if len(tok) != 4+43 {
							return fmt.Errorf("token %q is not 256 bits", tok)
						}
						if first == nil {
							first = h
						}
						if done < 10_000 { // the generator itself, without the database
							if seen[string(h)] {
								return fmt.Errorf("the generator repeated itself after %d tokens", done)
							}
							seen[string(h)] = true
						}
						args = append(args, h, "fam", "access", "cs-1", "app-1", int64(0), int64(1))
						done++
					}
					q := `INSERT INTO oauth_tokens (hash, family, kind, consent_id, client_id, issued_at, expires_at) VALUES ` + store.Values(tx, batch, 7)
					if _, err := tx.ExecContext(ctx, q, args...); err != nil {
						return err
					}
					if done >= total {
						break
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("after %d tokens: %v", done, err)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_tokens`).Scan(&n); err != nil || n != total {
			t.Fatalf("%d tokens stored, want %d (%v)", n, total, err)
		}
		_, err := db.ExecContext(ctx, `INSERT INTO oauth_tokens (hash, family, kind, consent_id, client_id, issued_at, expires_at)
			VALUES ($1, 'x', 'access', 'cs-1', 'app-1', 0, 1)`, first)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("a token hash stored twice: %v; want the primary key to refuse it", err)
		}
	})
}

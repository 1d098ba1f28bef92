package oauth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Consent is one of a person's consents, as their overview shows it.
type Consent struct {
	ID         string
	ClientID   string
	ClientName string
	PatientID  string
	OnBehalf   bool
	Scopes     []string
	Categories []string
	Created    time.Time
	Expires    time.Time
	Revoked    *time.Time
	RevokedWhy string
	// Reuse is when a refresh token of this consent was used twice: a sign
	// that the app's credentials may have been stolen.
	Reuse    *time.Time
	LastUsed *time.Time
}

// Active reports whether the consent still lets the app in at t.
func (c Consent) Active(t time.Time) bool { return c.Revoked == nil && c.Expires.After(t) }

// Consents lists the consents a person gave, newest first.
func (s *Service) Consents(ctx context.Context, accountID string) ([]Consent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.client_id, cl.name, c.patient_id, c.on_behalf, c.scopes, c.created_at, c.expires_at,
		c.revoked_at, c.revoked_why, c.reuse_at, c.last_used_at FROM oauth_consents c JOIN oauth_clients cl ON cl.id = c.client_id
		WHERE c.account_id = $1 ORDER BY c.created_at DESC`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	defer rows.Close()
	var out []Consent
	for rows.Next() {
		var c Consent
		var scopes string
		var created, expires int64
		var revoked, reuse, used sql.NullInt64
		if err := rows.Scan(&c.ID, &c.ClientID, &c.ClientName, &c.PatientID, &c.OnBehalf, &scopes, &created, &expires, &revoked, &c.RevokedWhy,
			&reuse, &used); err != nil {
			return nil, fmt.Errorf("list consents: %w", err)
		}
		c.Scopes = strings.Fields(scopes)
		c.Categories = fhir.ScopeCategories(c.Scopes, 'r')
		c.Created, c.Expires = clock.FromMicros(created), clock.FromMicros(expires)
		c.Revoked, c.Reuse, c.LastUsed = optTime(revoked), optTime(reuse), optTime(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := clock.FromMicros(v.Int64)
	return &t
}

// Withdraw ends a consent of the person at once: every token under it
// stops working with the commit, which is logged (LOG-8).
func (s *Service) Withdraw(ctx context.Context, p Person, consentID string) error {
	now := s.clock.Now()
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		cs, err := s.consent(ctx, tx, consentID)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && cs.accountID != p.AccountID) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if cs.revoked.Valid {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_consents SET revoked_at = $2, revoked_why = 'withdrawn by the person' WHERE id = $1`,
			consentID, clock.Micros(now)); err != nil {
			return fmt.Errorf("withdraw consent: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET revoked_at = $2 WHERE consent_id = $1 AND revoked_at IS NULL`,
			consentID, clock.Micros(now)); err != nil {
			return fmt.Errorf("withdraw consent: %w", err)
		}
		c := &Client{ID: cs.clientID}
		ev := cs.event(c)
		ev.Action, ev.Outcome, ev.Organisation, ev.UserName = audit.ActionConsent, audit.OutcomeSuccess, p.Organisation, p.Name
		ev.Role, ev.Assurance, ev.Purpose = string(access.RolePerson), p.Assurance.String(), "PATRQT"
		ev.Query = "consent " + consentID + " withdrawn"
		if _, err := s.log.AppendIn(ctx, tx, ev); err != nil {
			return err
		}
		return s.chain(ctx, tx, "consent-withdrawn", ev)
	})
}

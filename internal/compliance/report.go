package compliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/governance"
)

// The kinds of technical evidence, and how old each may be before it is
// stale.
const (
	KindSettings       = "settings"         // the security settings in force (logged by serve at start)
	KindTLS            = "tls"              // the TLS profile and the server certificate's expiry
	KindAccessReview   = "access-review"    // the last closed access-rights review and its outcome (GOV-2)
	KindAdminLogReview = "admin-log-review" // the last closed admin-log review (LOG-7)
	KindRestoreTest    = "restore-test"     // the last restore test of a backup (DP-5)
	KindClock          = "clock"            // the clock's offset from NTP time (DP-6)
	KindAuditVerify    = "audit-verify"     // the last zorgkluis audit verify (LOG-2)
	KindCertificates   = "certificates"     // the organisation's certificates near expiry (DP-3)
	KindIncidents      = "incidents"        // incidents past their 48-hour deadline (GOV-4)
)

// Stale is how old evidence may be before it no longer counts.
var Stale = map[string]time.Duration{
	KindRestoreTest:    24 * time.Hour,
	KindClock:          2 * time.Hour, // serve logs it every hour
	KindAuditVerify:    31 * 24 * time.Hour,
	KindAccessReview:   31 * 24 * time.Hour,
	KindAdminLogReview: 31 * 24 * time.Hour,
}

// ExpiryWarning is how close to its end a certificate makes the evidence
// red.
const ExpiryWarning = 30 * 24 * time.Hour

// Status values.
const (
	Green         = "green"
	Red           = "red"
	NotApplicable = "n/a"
)

// Evidence is one item of live evidence with the proofs of the log events
// it rests on.
type Evidence struct {
	Kind    string     `json:"kind"`
	Status  string     `json:"status"`
	Summary string     `json:"summary"`
	At      *time.Time `json:"at,omitempty"`
	// Proofs are the inclusion proofs of the events, each against its
	// tree's newest signed checkpoint (audit.CheckProof checks them).
	Proofs []audit.ProofBundle `json:"proofs"`
}

// Row is one control's line of the report.
type Row struct {
	Control
	Applicable    bool       `json:"applicable"`
	Justification string     `json:"justification,omitempty"`
	AuditMethod   string     `json:"audit_method,omitempty"`
	Responsible   string     `json:"responsible,omitempty"`
	Notes         string     `json:"notes,omitempty"`
	LastDone      *time.Time `json:"last_done_at,omitempty"`
	Due           *time.Time `json:"due_at,omitempty"`
	Status        string     `json:"status"`
	Reasons       []string   `json:"reasons,omitempty"` // why it is red
	Items         []Evidence `json:"evidence"`
	Documents     []Document `json:"documents"`
}

// Report is the compliance report of one tenant (or of the installation
// alone, tenant "").
type Report struct {
	Format      string    `json:"format"`
	Generated   time.Time `json:"generated_at"`
	TenantID    string    `json:"tenant_id"`
	VerifierKey string    `json:"verifier_key"`
	Green       int       `json:"green"`
	Red         int       `json:"red"`
	Controls    []Row     `json:"controls"`
}

// ReportFormat names the report's layout.
const ReportFormat = "zorgkluis-compliance-report/1"

// ReportFor is the report of the actor's tenant, for the officer's and the
// admins' page and API.
func (s *Service) ReportFor(ctx context.Context, actor access.Subject) (Report, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Report{}, err
	}
	return s.Report(ctx, actor.TenantID())
}

// Report makes the report of tenant ("" the installation's own evidence
// only, without a register): every control with its entry, its periodic
// due date and its evidence from the running system, red where evidence is
// missing, stale or bad. It checks no actor: ReportFor does, and the
// operator's command runs on the server.
func (s *Service) Report(ctx context.Context, tenantID string) (Report, error) {
	now := s.c.Clock.Now()
	facts, err := s.facts(ctx)
	if err != nil {
		return Report{}, err
	}
	ev, err := s.tenantEvidence(ctx, tenantID, facts, true)
	if err != nil {
		return Report{}, err
	}
	es := map[string]Entry{}
	if tenantID != "" {
		if es, err = s.entries(ctx, tenantID); err != nil {
			return Report{}, err
		}
	}
	rep := Report{Format: ReportFormat, Generated: now.UTC(), TenantID: tenantID, VerifierKey: s.c.VerifierKey, Controls: []Row{}}
	for _, c := range s.controls {
		e, ok := es[c.ID]
		if !ok {
			e = Entry{ControlID: c.ID, Applicable: true}
		}
		r := Row{Control: c, Applicable: e.Applicable, Justification: e.Justification, AuditMethod: e.AuditMethod, Responsible: e.Responsible,
			Notes: e.Notes, LastDone: e.LastDone, Items: []Evidence{}, Documents: e.Documents}
		if r.Documents == nil {
			r.Documents = []Document{}
		}
		for _, k := range c.Evidence {
			if item, ok := ev[k]; ok {
				r.Items = append(r.Items, item)
			}
		}
		switch {
		case !e.Applicable:
			r.Status = NotApplicable
		default:
			for _, it := range r.Items {
				if it.Status == Red {
					r.Reasons = append(r.Reasons, it.Kind+": "+it.Summary)
				}
			}
			if c.Period != "" {
				last := lastDone(c, e, ev)
				due := Due(c.Period, last, now)
				r.Due = &due
				if last.IsZero() {
					r.Reasons = append(r.Reasons, "periodic ("+c.Period+"): never recorded as done")
				} else if now.After(due) {
					r.Reasons = append(r.Reasons, "periodic ("+c.Period+"): overdue since "+due.UTC().Format("2006-01-02"))
				}
			}
			if len(r.Items) == 0 && len(r.Documents) == 0 {
				r.Reasons = append(r.Reasons, "no evidence: neither from the system nor a document")
			}
			r.Status = Green
			if len(r.Reasons) > 0 {
				r.Status = Red
			}
		}
		switch r.Status {
		case Green:
			rep.Green++
		case Red:
			rep.Red++
		}
		rep.Controls = append(rep.Controls, r)
	}
	return rep, nil
}

// lastDone is when a periodic control was last carried out: what the
// register says, or the system's own evidence of it (a closed review, a
// restore test), whichever is newer.
func lastDone(c Control, e Entry, ev map[string]Evidence) time.Time {
	var last time.Time
	if e.LastDone != nil {
		last = *e.LastDone
	}
	for _, k := range c.Evidence {
		it, ok := ev[k]
		if ok && it.Status == Green && it.At != nil && it.At.After(last) && k != KindSettings && k != KindTLS {
			last = *it.At
		}
	}
	return last
}

// tenantEvidence gathers every evidence item once: the installation's from
// the platform log's facts, the tenant's from governance and pki; with
// proofs, each item gets the inclusion proofs of its events (the
// reminders need only the dates).
func (s *Service) tenantEvidence(ctx context.Context, tenantID string, facts map[string]audit.Event, proofs bool) (map[string]Evidence, error) {
	now := s.c.Clock.Now()
	out := map[string]Evidence{}
	withProofs := func(ctx context.Context, it Evidence, ids ...string) Evidence {
		if !proofs {
			it.Proofs = []audit.ProofBundle{}
			return it
		}
		return s.withProofs(ctx, it, ids...)
	}
	fact := func(kind, name, missing string, check func(e audit.Event) (bool, string)) {
		e, ok := facts[name]
		if !ok {
			out[kind] = Evidence{Kind: kind, Status: Red, Summary: missing, Proofs: []audit.ProofBundle{}}
			return
		}
		good, summary := e.Outcome == audit.OutcomeSuccess, strings.TrimSpace(strings.TrimPrefix(e.Query, name))
		if check != nil && good {
			good, summary = check(e)
		}
		if max, ok := Stale[kind]; ok && good && now.Sub(e.Time) > max {
			good, summary = false, fmt.Sprintf("stale: the newest is of %s, older than %s (%s)", e.Time.UTC().Format(time.RFC3339), max, summary)
		}
		out[kind] = withProofs(ctx, Evidence{Kind: kind, Status: status(good), Summary: summary, At: timePtr(e.Time)}, e.ID)
	}
	fact(KindRestoreTest, audit.FactRestoreTest, "no restore test of a backup is logged", nil)
	fact(KindAuditVerify, audit.FactAuditVerify, "zorgkluis audit verify has never been run (its outcome is logged)", nil)
	fact(KindClock, audit.FactClock, "no clock check is logged (serve logs one every hour while NTP servers are set)", nil)
	fact(KindSettings, audit.FactSettings, "the settings in force are not logged (serve logs them at start)", nil)
	fact(KindTLS, audit.FactSettings, "the TLS settings in force are not logged (serve logs them at start)", func(e audit.Event) (bool, string) {
		tls := fieldOf(e.Query, "tls")
		if strings.Contains(e.Query, "insecure_http=true") {
			return false, "plain HTTP allowed (--insecure-http): " + tls
		}
		return true, tls
	})
	if s.c.ServerCert != nil {
		it := out[KindTLS]
		left := s.c.ServerCert.NotAfter.Sub(now)
		it.Summary += fmt.Sprintf("; server certificate valid until %s", s.c.ServerCert.NotAfter.UTC().Format("2006-01-02"))
		if left < ExpiryWarning {
			it.Status = Red
			it.Summary += " (expires within 30 days)"
		}
		out[KindTLS] = it
	}
	if tenantID == "" {
		for _, k := range []string{KindAccessReview, KindAdminLogReview, KindCertificates, KindIncidents} {
			out[k] = Evidence{Kind: k, Status: Red, Summary: "a tenant's evidence: give the organisation", Proofs: []audit.ProofBundle{}}
		}
		return out, nil
	}
	review, adminLog, rok, aok, err := s.c.Gov.LastClosed(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	closed := func(kind string, c governance.Closed, ok bool, missing string) {
		if !ok {
			out[kind] = Evidence{Kind: kind, Status: Red, Summary: missing, Proofs: []audit.ProofBundle{}}
			return
		}
		good, summary := true, fmt.Sprintf("%s closed %s: %s (evidence sha256 %s)", c.Period, c.At.UTC().Format("2006-01-02"), c.Outcome, c.Hash)
		if now.Sub(c.At) > Stale[kind] {
			good, summary = false, "stale: "+summary
		}
		out[kind] = withProofs(ctx, Evidence{Kind: kind, Status: status(good), Summary: summary, At: timePtr(c.At)}, c.Event)
	}
	closed(KindAccessReview, review, rok, "no access-rights review has been closed")
	closed(KindAdminLogReview, adminLog, aok, "no admin-log review has been closed")
	open, overdue, err := s.c.Gov.IncidentCounts(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	inc := Evidence{Kind: KindIncidents, Status: Green, Summary: fmt.Sprintf("%d incidents not closed, none past its 48-hour deadline unreported", open), Proofs: []audit.ProofBundle{}}
	if overdue > 0 {
		inc.Status, inc.Summary = Red, fmt.Sprintf("%d incidents not closed, %d past the 48-hour deadline unreported", open, overdue)
	}
	out[KindIncidents] = inc
	certs, err := s.certificates(ctx, tenantID, now, proofs)
	if err != nil {
		return nil, err
	}
	out[KindCertificates] = certs
	return out, nil
}

func status(good bool) string {
	if good {
		return Green
	}
	return Red
}

func timePtr(t time.Time) *time.Time { t = t.UTC(); return &t }

// fieldOf returns the value of "name=value" in a settings line (values
// without spaces, as serve writes them).
func fieldOf(q, name string) string {
	for _, f := range strings.Fields(q) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return name + "=" + v
		}
	}
	return name + " unknown"
}

// maxFacts bounds the platform log's evidence events read for a report,
// newest first: the clock check is hourly, so a month's worth and more.
const maxFacts = 2000

// facts returns the newest evidence event of each fact in the platform's
// log. The events concern the installation, not a person, so they are read
// without a log permit (audit.Log.Query).
func (s *Service) facts(ctx context.Context) (map[string]audit.Event, error) {
	evs, err := s.c.Audit.Query(ctx, audit.Filter{TenantID: "", Action: audit.ActionEvidence, Limit: maxFacts})
	if err != nil {
		return nil, fmt.Errorf("evidence events: %w", err)
	}
	out := map[string]audit.Event{}
	for _, e := range evs { // newest first
		name, _, _ := strings.Cut(e.Query, " ")
		if _, seen := out[name]; !seen {
			out[name] = e
		}
	}
	return out, nil
}

// withProofs adds the inclusion proofs of the events to an item; an event
// not yet in a signed checkpoint (or not provable) makes the item red,
// since evidence without its proof is not evidence an auditor can check.
func (s *Service) withProofs(ctx context.Context, it Evidence, eventIDs ...string) Evidence {
	it.Proofs = []audit.ProofBundle{}
	for _, id := range eventIDs {
		if id == "" {
			it.Status, it.Summary = Red, it.Summary+"; the log event it rests on is not named"
			continue
		}
		b, err := s.c.Audit.Proof(ctx, id)
		switch {
		case errors.Is(err, audit.ErrNotSequenced):
			it.Status, it.Summary = Red, it.Summary+"; its log event is not yet in a signed checkpoint (try again in a second)"
		case err != nil:
			it.Status, it.Summary = Red, it.Summary+"; no proof: "+err.Error()
		default:
			it.Proofs = append(it.Proofs, b)
		}
	}
	return it
}

// certificates is the evidence of the tenant's certificates (pki): red
// when a current one expires within ExpiryWarning, with the proofs of
// those certificates' issue events.
func (s *Service) certificates(ctx context.Context, tenantID string, now time.Time, proofs bool) (Evidence, error) {
	rows, err := s.c.DB.QueryContext(ctx, `SELECT serial, system_id, purpose, not_after FROM pki_certificates
		WHERE tenant_id = $1 AND revoked_at IS NULL AND not_after > $2 ORDER BY not_after`, tenantID, clock.Micros(now))
	if err != nil {
		return Evidence{}, fmt.Errorf("certificates: %w", err)
	}
	defer rows.Close()
	current := 0
	var near []string
	var serials []string
	for rows.Next() {
		var serial, system, purpose string
		var na int64
		if err := rows.Scan(&serial, &system, &purpose, &na); err != nil {
			return Evidence{}, fmt.Errorf("certificates: %w", err)
		}
		current++
		if end := clock.FromMicros(na); end.Sub(now) < ExpiryWarning {
			near = append(near, fmt.Sprintf("%s (%s, %s) until %s", serial, system, purpose, end.UTC().Format("2006-01-02")))
			serials = append(serials, serial)
		}
	}
	if err := rows.Err(); err != nil {
		return Evidence{}, fmt.Errorf("certificates: %w", err)
	}
	it := Evidence{Kind: KindCertificates, Status: Green, Summary: fmt.Sprintf("%d current certificates, none expires within 30 days", current), Proofs: []audit.ProofBundle{}}
	if len(near) == 0 {
		return it, nil
	}
	it.Status, it.Summary = Red, fmt.Sprintf("%d current certificates, %d expire within 30 days: %s", current, len(near), strings.Join(near, "; "))
	if !proofs {
		return it, nil
	}
	ids, err := s.certificateEvents(ctx, tenantID, serials)
	if err != nil {
		return Evidence{}, err
	}
	red := it.Status
	it = s.withProofs(ctx, it, ids...)
	it.Status = red
	return it, nil
}

// certificateEvents finds the issue events of the serials in the tenant's
// log (pki logs every certificate as Certificate/<serial>).
func (s *Service) certificateEvents(ctx context.Context, tenantID string, serials []string) ([]string, error) {
	evs, err := s.c.Audit.Query(ctx, audit.Filter{TenantID: tenantID, Action: audit.ActionCertificate, Limit: maxFacts})
	if err != nil {
		return nil, fmt.Errorf("certificate events: %w", err)
	}
	want := map[string]bool{}
	for _, sn := range serials {
		want["Certificate/"+sn] = true
	}
	var ids []string
	for _, e := range evs {
		for _, r := range e.Resources {
			if want[r] {
				ids = append(ids, e.ID)
				delete(want, r)
			}
		}
	}
	return ids, nil
}

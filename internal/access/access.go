// Package access is the single policy decision point and owns the rules it
// decides by: roles (predefined and tenant-defined), care relationships,
// teams, delegations, representation, emergency access, the operator
// procedure, and the approval of rights.
//
// Decide returns a Grant or a denial; a Grant can only be made here (its
// fields are unexported), so code that reaches health data without a
// decision does not compile. Deny by default (AZ-1): a request is allowed only
// when one of the rules below allows it, and every denial is written to the
// access log before Decide returns. A Grant names the rule that allowed it
// (its Basis, with the id of the relationship, team, delegation,
// representation, emergency or operator request), and its Event carries that
// into the NEN 7513 log as the authorisation protocol.
//
// A Subject (made only by internal/principal, from a credential) says what
// the credential claims; Decide checks in the same rule query that the
// account holds the claimed role and is active (AZ-1, AZ-2).
//
// The rules, in the order Decide tries them:
//   - professional-like roles (professional, assistant and tenant roles
//     based on them): a current care relationship, a team the person is a
//     member of and the patient is assigned to, a current delegation from a
//     professional who still has a relationship, and, for professionals
//     only, a declared emergency (AZ-3, AZ-5);
//   - persons: their own record, or the record of a patient they represent
//     when the session says it acts on that patient's behalf (AZ-4);
//   - operators: only an approved, current operator request naming the
//     patient (AZ-6);
//   - application admins and security officers never reach health data.
//
// Cross-tenant access is never allowed: a patient of another tenant is
// treated exactly like a patient that does not exist.
package access

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Action is what a subject wants to do with a patient's data.
type Action string

const (
	Read   Action = "read"
	Search Action = "search"
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	Export Action = "export"
)

// Actions lists every action, for policy editors and tests.
func Actions() []Action { return []Action{Read, Search, Create, Update, Delete, Export} }

// Level is an authentication assurance level per NEN 7512 Tabel 6 (AUTH-6).
type Level int

const (
	Laag Level = iota + 1
	Midden
	Hoog
	ZeerHoog
)

func (l Level) String() string {
	switch l {
	case Laag:
		return "laag"
	case Midden:
		return "midden"
	case Hoog:
		return "hoog"
	case ZeerHoog:
		return "zeer-hoog"
	}
	return "geen"
}

// HealthDataLevel is the minimum assurance for any access to health data,
// and for every change to the rules in this package.
const HealthDataLevel = Hoog

// Request is what the subject asks to do.
type Request struct {
	PatientID  string
	Action     Action
	Categories []string // data categories the request touches (AZ-9)
	Purpose    string
}

// Basis names the rule that allowed a request; it is recorded in the access
// log as the authorisation protocol.
type Basis string

const (
	BasisCareRelationship Basis = "care-relationship"
	BasisTeam             Basis = "team"
	BasisDelegation       Basis = "delegation"
	BasisEmergency        Basis = "emergency"
	BasisOwnData          Basis = "own-data"
	BasisRepresentation   Basis = "representation"
	BasisOperator         Basis = "operator-procedure"
	BasisRegistration     Basis = "registration" // a professional registers a new patient
	BasisSystem           Basis = "system"       // a registered third-party system within its scopes (DP-3)
)

// Grant is the permission to perform one action on one patient's data.
type Grant struct {
	subject         Subject
	tenantID        string // the patient's tenant; the subject's, except for operators
	patientID       string
	action          Action
	basis           Basis
	ref             string // id of the relationship, team, delegation, ... that allowed it
	allowed         map[string]bool
	emergency       bool
	emergencyReason string
	purpose         string
	decidedAt       time.Time
}

func (g Grant) Subject() Subject     { return g.subject }
func (g Grant) PatientID() string    { return g.patientID }
func (g Grant) TenantID() string     { return g.tenantID }
func (g Grant) Action() Action       { return g.action }
func (g Grant) Basis() Basis         { return g.basis }
func (g Grant) DecidedAt() time.Time { return g.decidedAt }

// Ref is the id of the rule instance that allowed the grant (a relationship,
// team, delegation, representation, emergency or operator request id).
func (g Grant) Ref() string { return g.ref }

// Emergency reports whether the grant rests on declared emergency access.
func (g Grant) Emergency() bool { return g.emergency }

// Explanation says in one line why the request was allowed.
func (g Grant) Explanation() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s may %s patient %s by %s", g.subject.Role(), g.subject.AccountID(), g.action, g.patientID, g.basis)
	if g.ref != "" {
		b.WriteString(" " + g.ref)
	}
	if g.subject.OnBehalfOf() != "" {
		b.WriteString(" on behalf of " + g.subject.OnBehalfOf())
	}
	if g.emergency {
		b.WriteString(" (emergency: " + g.emergencyReason + ")")
	}
	return b.String()
}

// Valid reports whether g was made by Decide (the zero Grant is not).
func (g Grant) Valid() bool { return g.basis != "" && g.patientID != "" }

// AllowsCategory reports whether the grant covers data of category c: the
// role may see it and the basis (a representation's scope, an operator
// request's categories) includes it. A grant that does not allow a category
// must not even reveal that data of that category exists.
func (g Grant) AllowsCategory(c string) bool { return g.allowed["*"] || g.allowed[c] }

// Categories lists the categories the grant covers; ["*"] means all.
func (g Grant) Categories() []string { return sortedKeys(g.allowed) }

// Event returns an access-log event for action under this grant, with the
// who, why and whom filled in: the basis with its reference, the emergency
// flag and reason, and on whose behalf a representative acted.
func (g Grant) Event(action audit.Action, outcome audit.Outcome) audit.Event {
	basis := string(g.basis)
	if g.ref != "" {
		basis += ":" + g.ref
	}
	ev := subjectEvent(g.subject, g.patientID, action, outcome, basis)
	ev.TenantID = g.tenantID
	ev.Purpose = g.purpose
	ev.Emergency = g.emergency
	ev.EmergencyReason = g.emergencyReason
	return ev
}

// Denied is the error Decide returns when no rule allows the request.
type Denied struct{ Reason string }

func (d *Denied) Error() string { return "access denied: " + d.Reason }

// IsDenied reports whether err is a denial.
func IsDenied(err error) bool {
	var d *Denied
	return errors.As(err, &d)
}

// Errors of the rule-management functions. They wrap a message that is safe
// to show the caller.
var (
	ErrForbidden = errors.New("not allowed")
	ErrNotFound  = errors.New("not found")
	ErrInvalid   = errors.New("invalid request")
	ErrConflict  = errors.New("conflicts with the current state")
)

// Decider makes access decisions and keeps the rules it decides by.
type Decider struct {
	db      *store.DB
	log     *audit.Log
	clock   clock.Clock
	rand    io.Reader
	roles   *identity.Registry // approved role grants, written in the approval's transaction
	changes *change.Service    // the four-eyes requests (GOV-1)

	emergencyFor    time.Duration
	maxOperatorFor  time.Duration
	maxPrivilegeFor time.Duration

	queue *alert.Queue // where security events are raised (LOG-9)
	cache *decisionCache
}

// Option changes a Decider setting.
type Option func(*Decider)

// WithEmergencyDuration sets how long emergency access lasts (default 4 h).
func WithEmergencyDuration(d time.Duration) Option { return func(x *Decider) { x.emergencyFor = d } }

// WithMaxOperatorDuration caps the duration of operator access (default 8 h).
func WithMaxOperatorDuration(d time.Duration) Option {
	return func(x *Decider) { x.maxOperatorFor = d }
}

// WithMaxPrivilegeDuration caps how long a privileged right lasts (default
// 30 days).
func WithMaxPrivilegeDuration(d time.Duration) Option {
	return func(x *Decider) { x.maxPrivilegeFor = d }
}

// WithRoleWriter sets where approved role grants are written (default: an
// identity.Registry on the same database).
func WithRoleWriter(w *identity.Registry) Option { return func(x *Decider) { x.roles = w } }

// WithChanges sets the four-eyes service (GOV-1) the Decider registers its
// kinds of change with and decides them through (default: one of its own
// on the same database and log; serve shares one with every owner).
func WithChanges(c *change.Service) Option { return func(x *Decider) { x.changes = c } }

// WithSecurityQueue sets the security-event queue (LOG-9; default: alert's
// queue in the same database, sending no alerts).
func WithSecurityQueue(q *alert.Queue) Option { return func(x *Decider) { x.queue = q } }

// WithRand sets the source of ids (default crypto/rand).
func WithRand(r io.Reader) Option { return func(x *Decider) { x.rand = r } }

// NewDecider returns a Decider that reads its rules from db and logs to log.
func NewDecider(db *store.DB, log *audit.Log, c clock.Clock, opts ...Option) *Decider {
	d := &Decider{db: db, log: log, clock: c, rand: rand.Reader, cache: newDecisionCache(db),
		emergencyFor: 4 * time.Hour, maxOperatorFor: 8 * time.Hour, maxPrivilegeFor: 30 * 24 * time.Hour}
	for _, o := range opts {
		o(d)
	}
	if d.roles == nil {
		d.roles = identity.NewRegistry(db, c, d.rand)
	}
	if d.queue == nil {
		d.queue = alert.NewQueue(db, c, d.rand, nil)
	}
	if d.changes == nil {
		d.changes = change.New(change.Config{DB: db, Audit: log, Clock: c, Rand: d.rand})
	}
	d.registerChanges()
	return d
}

// EmergencyDuration is how long a declared emergency lasts.
func (d *Decider) EmergencyDuration() time.Duration { return d.emergencyFor }

// decision is the outcome of evaluate: either a denial reason or a basis.
type decision struct {
	deny            string
	tenantID        string
	basis           Basis
	ref             string
	allowed         map[string]bool
	emergency       bool
	emergencyReason string
}

func denied(format string, args ...any) decision { return decision{deny: fmt.Sprintf(format, args...)} }

// Decide allows or denies req for s. A denial is logged durably before Decide
// returns; if that log write fails the request is still denied and the error
// says so.
func (d *Decider) Decide(ctx context.Context, s Subject, req Request) (Grant, error) {
	now := d.clock.Now()
	dec, err := d.evaluate(ctx, s, req, now)
	if err != nil {
		return Grant{}, fmt.Errorf("access decision: %w", err)
	}
	if dec.deny != "" && s.Role() == RoleOperator && dec.tenantID == "" && req.PatientID != "" && checkText(req.PatientID) == nil {
		// An operator has no tenant: the attempt belongs in the log of the
		// patient's organisation, so that its security officer sees it
		// (AZ-6, LOG-9).
		err := d.db.QueryRowContext(ctx, `SELECT tenant_id FROM patients WHERE id = $1`, req.PatientID).Scan(&dec.tenantID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Grant{}, fmt.Errorf("access decision: %w", err)
		}
	}
	if dec.deny != "" {
		ev := subjectEvent(s, req.PatientID, audit.Action(req.Action), audit.OutcomeDenied, "")
		if s.TenantID() == "" && dec.tenantID != "" {
			ev.TenantID = dec.tenantID
		}
		ev.Reason = dec.deny
		ev.Purpose = req.Purpose
		if _, err := d.log.Append(ctx, ev); err != nil {
			return Grant{}, fmt.Errorf("log denial: %w", err)
		}
		if s.Role() == RoleOperator && dec.tenantID != "" {
			// An operator reaching for a tenant's health data outside the
			// procedure is a security event for that tenant's officer.
			if err := d.securityEvent(ctx, d.db, SecurityEvent{TenantID: dec.tenantID, Kind: "operator-access-denied", AccountID: s.AccountID(),
				SubjectID: req.PatientID, Detail: string(req.Action) + ": " + dec.deny}); err != nil {
				return Grant{}, fmt.Errorf("log denial: %w", err)
			}
		}
		return Grant{}, &Denied{Reason: dec.deny}
	}
	purpose := req.Purpose
	if dec.emergency {
		purpose = "ETREAT" // v3-ActReason, as IHE BALP asks for break-the-glass
	}
	return Grant{subject: s, tenantID: dec.tenantID, patientID: req.PatientID, action: req.Action, basis: dec.basis,
		ref: dec.ref, allowed: dec.allowed, emergency: dec.emergency, emergencyReason: dec.emergencyReason,
		purpose: purpose, decidedAt: now}, nil
}

// DecideRegistration allows a professional to register a new patient in
// their own organisation, and returns a create Grant for the fresh patient id
// it assigns. The patient does not exist yet, so no relationship can; the
// registration is logged by record like any other write.
func (d *Decider) DecideRegistration(ctx context.Context, s Subject, newPatientID string) (Grant, error) {
	perm, ok, err := d.permission(ctx, s)
	if err != nil {
		return Grant{}, fmt.Errorf("access decision: %w", err)
	}
	reason := ""
	switch {
	case s.AccountID() == "" || s.TenantID() == "":
		reason = "no organisation"
	case !ok || perm.base != RoleProfessional || !perm.actions[Create]:
		reason = fmt.Sprintf("role %s may not register patients", s.Role())
	case s.Assurance() < HealthDataLevel:
		reason = fmt.Sprintf("assurance level %s is below %s", s.Assurance(), HealthDataLevel)
	case newPatientID == "":
		reason = "no patient id"
	}
	if reason == "" {
		// No patient exists yet, so there is no rule query to fold the role
		// check into: it is this decision's one query.
		var held, lapsed sql.NullInt64
		if err := d.db.QueryRowContext(ctx, registrationQuery, s.AccountID(), string(s.Role()), clock.Micros(d.clock.Now())).Scan(&held, &lapsed); err != nil {
			return Grant{}, fmt.Errorf("access decision: %w", err)
		}
		switch {
		case !held.Valid:
			reason = notHeld(s.Role()).deny
		case lapsed.Int64 == 1:
			reason = fmt.Sprintf("the right to act as %s was revoked or has ended", s.Role())
		}
	}
	if reason != "" {
		ev := subjectEvent(s, newPatientID, audit.ActionCreate, audit.OutcomeDenied, "")
		ev.Reason = reason
		if _, err := d.log.Append(ctx, ev); err != nil {
			return Grant{}, fmt.Errorf("log denial: %w", err)
		}
		return Grant{}, &Denied{Reason: reason}
	}
	return Grant{subject: s, tenantID: s.TenantID(), patientID: newPatientID, action: Create, basis: BasisRegistration,
		allowed: perm.categories, decidedAt: d.clock.Now()}, nil
}

// registrationQuery is roleHeld and rightLapsed for DecideRegistration,
// with the account as $1, the role as $2 and now as $3.
const registrationQuery = `SELECT
	(SELECT 1 FROM account_roles ar JOIN accounts a ON a.id = ar.account_id
	  WHERE ar.account_id = $1 AND ar.role = $2 AND a.status = 'active'),
	(SELECT CASE WHEN rr.status = 'revoked' OR (rr.valid_until IS NOT NULL AND rr.valid_until <= $3) THEN 1 ELSE 0 END
	  FROM access_right_requests rr WHERE rr.account_id = $1 AND rr.role = $2 AND rr.status IN ('approved', 'revoked')
	  ORDER BY rr.decided_at DESC LIMIT 1)`

// evaluate returns the decision for req, or an error when the rules could
// not be read (then nothing is allowed).
func (d *Decider) evaluate(ctx context.Context, s Subject, req Request, now time.Time) (decision, error) {
	if s.AccountID() == "" {
		return denied("no subject"), nil
	}
	if s.Kind() == KindSystem {
		return d.evalSystem(ctx, s, req, now)
	}
	perm, ok, err := d.permission(ctx, s)
	if err != nil {
		return decision{}, err
	}
	if !ok {
		return denied("role %s has no access to health data", s.Role()), nil
	}
	if !perm.actions[req.Action] {
		return denied("role %s may not %s", s.Role(), req.Action), nil
	}
	if s.Assurance() < HealthDataLevel {
		return denied("assurance level %s is below %s", s.Assurance(), HealthDataLevel), nil
	}
	if s.Kind() == KindApp && appPerm(req.Action) == 0 {
		return denied("an app may only read and search"), nil
	}
	if req.PatientID == "" {
		return denied("no patient named"), nil
	}
	if checkText(req.PatientID) != nil {
		return denied(noPatient), nil
	}
	if s.OnBehalfOf() != "" && perm.base != RolePerson {
		return denied("only persons act on behalf of a patient"), nil
	}
	var dec decision
	switch perm.base {
	case RoleOperator:
		dec, err = d.evalOperator(ctx, s, req, now, perm)
	case RolePerson:
		dec, err = d.evalPerson(ctx, s, req, now, perm)
	case RoleProfessional, RoleAssistant:
		dec, err = d.evalCare(ctx, s, req, now, perm)
	default:
		return denied("role %s has no access to health data", s.Role()), nil
	}
	if err != nil || dec.deny != "" {
		return dec, err
	}
	if s.Kind() == KindApp {
		// An app acts for the person who consented, within what the person
		// may see and what the consent's scopes reach (EX-2, AZ-4).
		dec.allowed = narrow(dec.allowed, fhir.ScopeCategories(s.Scopes(), appPerm(req.Action)))
		if len(dec.allowed) == 0 {
			return decision{deny: fmt.Sprintf("the app's scopes do not allow %s", req.Action), tenantID: dec.tenantID}, nil
		}
	}
	for _, c := range req.Categories {
		if !dec.allowed["*"] && !dec.allowed[c] {
			return decision{deny: fmt.Sprintf("role %s under %s may not see category %s", s.Role(), dec.basis, c), tenantID: dec.tenantID}, nil
		}
	}
	return dec, nil
}

const noPatient = "no such patient in this organisation"

// appPerm is the SMART permission letter of an action an app may take;
// 0 for the others (apps read and search, EX-2).
func appPerm(a Action) byte {
	switch a {
	case Read:
		return 'r'
	case Search:
		return 's'
	}
	return 0
}

// narrow returns the categories of allowed (CategoryAll: any) that are in
// scoped too.
func narrow(allowed map[string]bool, scoped []string) map[string]bool {
	out := map[string]bool{}
	for _, c := range scoped {
		if allowed[CategoryAll] || allowed[c] {
			out[c] = true
		}
	}
	return out
}

// careQuery finds, in one round trip, the patient's tenant and the first
// current rule that lets the professional in, as "kind id": r a care
// relationship, t a team, d a delegation, e an emergency ("e id reason").
// COALESCE evaluates its arguments in order and stops at the first that is
// not NULL, on SQLite and PostgreSQL alike, so the usual read (a care
// relationship) runs one rule's subquery instead of four; the order is the
// order evalCare prefers the bases in. A patient of another tenant yields
// no rows from any rule, because every rule is filtered on the subject's
// tenant too.
const careQuery = `SELECT p.tenant_id, COALESCE(
	(SELECT 'r ' || r.id || ' ' || COALESCE(r.end_at, 0) FROM care_relationships r
	  WHERE r.professional_id = $2 AND r.patient_id = p.id AND r.tenant_id = $4
	    AND r.start_at <= $3 AND (r.end_at IS NULL OR r.end_at > $3) LIMIT 1),
	(SELECT 't ' || tm.team_id FROM access_team_members tm
	  JOIN access_team_patients tp ON tp.team_id = tm.team_id AND tp.removed_at IS NULL
	  JOIN access_teams t ON t.id = tm.team_id AND t.tenant_id = $4
	  WHERE tm.account_id = $2 AND tm.removed_at IS NULL AND tp.patient_id = p.id LIMIT 1),
	(SELECT 'd ' || dl.id FROM access_delegations dl
	  WHERE dl.to_id = $2 AND dl.patient_id = p.id AND dl.tenant_id = $4 AND dl.revoked_at IS NULL
	    AND dl.start_at <= $3 AND dl.end_at > $3
	    AND EXISTS (SELECT 1 FROM care_relationships r
	      WHERE r.professional_id = dl.from_id AND r.patient_id = dl.patient_id AND r.tenant_id = dl.tenant_id
	        AND r.start_at <= $3 AND (r.end_at IS NULL OR r.end_at > $3)) LIMIT 1),
	(SELECT 'e ' || e.id || ' ' || e.reason FROM access_emergencies e
	  WHERE e.professional_id = $2 AND e.patient_id = p.id AND e.tenant_id = $4
	    AND e.start_at <= $3 AND e.end_at > $3 ORDER BY e.end_at DESC LIMIT 1)),
	` + rightLapsed + `, ` + roleHeld + `, ` + rightEnds + `
	FROM patients p WHERE p.id = $1`

// roleHeld is 1 when the account ($2) holds the role the subject claims ($5)
// and is active (AZ-1, AZ-2): a Subject says what its credential claims,
// the decision checks it against the account's roles in the same round trip.
const roleHeld = `(SELECT 1 FROM account_roles ar JOIN accounts a ON a.id = ar.account_id
	  WHERE ar.account_id = $2 AND ar.role = $5 AND a.status = 'active')`

// notHeld is the denial of a subject whose account does not hold its role.
func notHeld(r Role) decision { return denied("the account does not hold the role %s", r) }

// rightLapsed is 1 when the session's role went through the approval flow
// and its newest approval is revoked or past its end (AZ-7, AZ-8): the role
// then allows nothing, even in a session that started before. The newest
// decision is found with MAX rather than ORDER BY ... LIMIT 1: on SQLite the
// ORDER BY opened a temporary B-tree on every decision, even for a role
// without any request (most of them), which was an eighth of the rule
// query's engine time. Two decisions at the same instant count as lapsed if
// either is (the older form picked one of them at random).
const rightLapsed = `(SELECT MAX(CASE WHEN rr.status = 'revoked' OR (rr.valid_until IS NOT NULL AND rr.valid_until <= $3) THEN 1 ELSE 0 END)
	  FROM access_right_requests rr WHERE rr.account_id = $2 AND rr.role = $5 AND rr.status IN ('approved', 'revoked')
	    AND rr.decided_at = (SELECT MAX(rn.decided_at) FROM access_right_requests rn
	      WHERE rn.account_id = $2 AND rn.role = $5 AND rn.status IN ('approved', 'revoked')))`

// rightEnds is the first future end of an approved right of the role
// ($5) for the account ($2): a cached allow must not outlive it.
const rightEnds = `(SELECT MIN(rr.valid_until) FROM access_right_requests rr
	  WHERE rr.account_id = $2 AND rr.role = $5 AND rr.status = 'approved' AND rr.valid_until > $3)`

func (d *Decider) evalCare(ctx context.Context, s Subject, req Request, now time.Time, perm permission) (decision, error) {
	if s.TenantID() == "" {
		return denied(noPatient), nil
	}
	key := careKey{patient: req.PatientID, account: s.AccountID(), tenant: s.TenantID(), role: s.Role()}
	e, cached := d.cache.get(key, now)
	if !cached {
		var held bool
		var err error
		e, held, cached, err = d.loadCare(ctx, key, now)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && e.tenant != s.TenantID()) {
			return denied(noPatient), nil
		}
		if err != nil {
			return decision{}, err
		}
		if !held {
			return notHeld(s.Role()), nil
		}
		if !cached && e.rule == lapsedRule {
			return denied("the right to act as %s was revoked or has ended", s.Role()), nil
		}
	}
	kind, ref, _ := strings.Cut(e.rule, " ")
	ok := decision{tenantID: e.tenant, allowed: perm.categories}
	switch {
	case kind == "r":
		ok.basis, ok.ref = BasisCareRelationship, ref
	case kind == "t":
		ok.basis, ok.ref = BasisTeam, ref
	case kind == "d":
		// A delegate helps with care; removing data stays with the
		// professional who holds the relationship.
		if req.Action == Delete {
			return denied("a delegation does not allow %s", req.Action), nil
		}
		ok.basis, ok.ref = BasisDelegation, ref
	case kind == "e" && perm.base == RoleProfessional:
		if !emergencyAllows(req.Action) {
			return denied("emergency access does not allow %s", req.Action), nil
		}
		id, reason, _ := strings.Cut(ref, " ")
		ok.basis, ok.ref, ok.emergency, ok.emergencyReason = BasisEmergency, id, true, reason
	default:
		return denied("no care relationship, team, delegation or emergency access for this patient"), nil
	}
	return ok, nil
}

// lapsedRule stands for "the role's right lapsed" in a loaded careEntry.
const lapsedRule = "lapsed"

// loadCare runs careQuery for k at now. held reports whether the account
// holds the role; a lapsed right comes back as e.rule == lapsedRule. The
// entry is kept in the cache, and cached reports it, when it allows under a
// care relationship or a team (see decisioncache.go).
func (d *Decider) loadCare(ctx context.Context, k careKey, now time.Time) (e careEntry, held, cached bool, err error) {
	gen, fresh := d.cache.w.Current(now) // before the query: see put
	var rule sql.NullString
	var lapsed, roleHeld, rightEnd sql.NullInt64
	err = d.db.Stmt(careQuery).QueryRowContext(ctx, k.patient, k.account, clock.Micros(now), k.tenant, string(k.role)).
		Scan(&e.tenant, &rule, &lapsed, &roleHeld, &rightEnd)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, false, err
	}
	if err != nil {
		return e, false, false, fmt.Errorf("access rules: %w", err)
	}
	if !roleHeld.Valid {
		return e, false, false, nil
	}
	if lapsed.Int64 == 1 {
		e.rule = lapsedRule
		return e, true, false, nil
	}
	e.rule = rule.String
	e.until = now.Add(maxDecisionAge)
	switch kind, ref, _ := strings.Cut(e.rule, " "); kind {
	case "r":
		// "r <id> <end>": the relationship's end (0: open-ended) bounds the entry.
		id, end, _ := strings.Cut(ref, " ")
		e.rule = "r " + id
		if us, perr := strconv.ParseInt(end, 10, 64); perr == nil && us != 0 {
			e.until = earliest(e.until, clock.FromMicros(us))
		}
	case "t":
	default:
		return e, true, false, nil
	}
	if rightEnd.Valid {
		e.until = earliest(e.until, clock.FromMicros(rightEnd.Int64))
	}
	if !fresh || e.tenant != k.tenant {
		return e, true, false, nil
	}
	e.gen = gen
	d.cache.put(k, e)
	return e, true, true, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// emergencyAllows says what break-the-glass allows: acute care reads and
// records; deleting and exporting wait for a regular relationship.
func emergencyAllows(a Action) bool {
	switch a {
	case Read, Search, Create, Update:
		return true
	}
	return false
}

const personQuery = `SELECT p.tenant_id,
	(SELECT 1 FROM person_patients pp WHERE pp.account_id = $2 AND pp.patient_id = p.id),
	(SELECT r.id || ' ' || r.categories FROM access_representations r
	  WHERE r.representative_id = $2 AND r.patient_id = p.id AND r.tenant_id = $4 AND r.revoked_at IS NULL
	    AND r.start_at <= $3 AND (r.end_at IS NULL OR r.end_at > $3) ORDER BY r.start_at DESC LIMIT 1),
	` + rightLapsed + `, ` + roleHeld + `
	FROM patients p WHERE p.id = $1`

func (d *Decider) evalPerson(ctx context.Context, s Subject, req Request, now time.Time, perm permission) (decision, error) {
	if s.TenantID() == "" {
		return denied(noPatient), nil
	}
	if s.OnBehalfOf() != "" && s.OnBehalfOf() != req.PatientID {
		return denied("patient is not the person this session acts for"), nil
	}
	var tenant string
	var own sql.NullInt64
	var rep sql.NullString
	var lapsed, held sql.NullInt64
	err := d.db.Stmt(personQuery).QueryRowContext(ctx, req.PatientID, s.AccountID(), clock.Micros(now), s.TenantID(), string(s.Role())).Scan(&tenant, &own, &rep, &lapsed, &held)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && tenant != s.TenantID()) {
		return denied(noPatient), nil
	}
	if err != nil {
		return decision{}, fmt.Errorf("access rules: %w", err)
	}
	if !held.Valid {
		return notHeld(s.Role()), nil
	}
	if lapsed.Int64 == 1 {
		return denied("the right to act as %s was revoked or has ended", s.Role()), nil
	}
	switch {
	case own.Valid:
		return decision{tenantID: tenant, basis: BasisOwnData, allowed: perm.categories}, nil
	case rep.Valid && s.OnBehalfOf() == req.PatientID:
		id, cats, _ := strings.Cut(rep.String, " ")
		return decision{tenantID: tenant, basis: BasisRepresentation, ref: id, allowed: intersect(perm.categories, set(strings.Fields(cats)...))}, nil
	case rep.Valid:
		return denied("the session does not act on behalf of this patient"), nil
	}
	return denied("not the person's own data and no current representation"), nil
}

// operatorQuery returns one row: whether the operator holds the role ($4;
// roleHeld with its own placeholder) and the newest approved, current
// request naming the patient as "id tenant categories...", NULL when none.
const operatorQuery = `SELECT
	(SELECT 1 FROM account_roles ar JOIN accounts a ON a.id = ar.account_id
	  WHERE ar.account_id = $2 AND ar.role = $4 AND a.status = 'active'),
	(SELECT o.id || ' ' || o.tenant_id || ' ' || o.categories FROM access_operator_requests o
	  JOIN access_operator_patients op ON op.request_id = o.id
	  JOIN patients p ON p.id = op.patient_id AND p.tenant_id = o.tenant_id
	  WHERE op.patient_id = $1 AND o.operator_id = $2 AND o.status = 'approved'
	    AND o.start_at <= $3 AND o.end_at > $3
	  ORDER BY o.end_at DESC LIMIT 1)`

func (d *Decider) evalOperator(ctx context.Context, s Subject, req Request, now time.Time, perm permission) (decision, error) {
	var held sql.NullInt64
	var found sql.NullString
	err := d.db.Stmt(operatorQuery).QueryRowContext(ctx, req.PatientID, s.AccountID(), clock.Micros(now), string(s.Role())).Scan(&held, &found)
	if err != nil {
		return decision{}, fmt.Errorf("access rules: %w", err)
	}
	if !held.Valid {
		return notHeld(s.Role()), nil
	}
	if !found.Valid {
		return denied("operators reach health data only through an approved operator request"), nil
	}
	id, rest, _ := strings.Cut(found.String, " ")
	tenant, cats, _ := strings.Cut(rest, " ")
	if s.TenantID() != "" && s.TenantID() != tenant {
		return denied(noPatient), nil
	}
	return decision{tenantID: tenant, basis: BasisOperator, ref: id, allowed: intersect(perm.categories, set(strings.Fields(cats)...))}, nil
}

func subjectEvent(s Subject, patientID string, action audit.Action, outcome audit.Outcome, basis string) audit.Event {
	return audit.Event{
		Action:       action,
		Outcome:      outcome,
		TenantID:     s.TenantID(),
		Organisation: s.Organisation(),
		UserID:       s.AccountID(),
		UserName:     s.Name(),
		Role:         string(s.Role()),
		OnBehalfOf:   s.OnBehalfOf(),
		Assurance:    s.Assurance().String(),
		PatientID:    patientID,
		Basis:        basis,
		// The kind of principal and a token's scopes; a token's client is
		// the source application (empty for a session: the request's
		// application, filled in by the log, stays).
		PrincipalKind: string(s.Kind()),
		Scopes:        s.Scopes(),
		SourceApp:     s.ClientID(),
		Responsible:   s.Responsible(),
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (d *Decider) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(d.rand, b[:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// patientTenant returns the tenant of a patient, or ErrNotFound when the
// patient does not exist or belongs to another tenant than want.
func patientInTenant(ctx context.Context, q store.Querier, patientID, want string) error {
	var tenant string
	err := q.QueryRowContext(ctx, `SELECT tenant_id FROM patients WHERE id = $1`, patientID).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (tenant != want || want == "")) {
		return fmt.Errorf("patient %s: %w", patientID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("look up patient: %w", err)
	}
	return nil
}

// accountInTenant returns the kind of an active account of tenant want, or
// ErrNotFound.
func accountInTenant(ctx context.Context, q store.Querier, accountID, want string) (string, error) {
	var tenant sql.NullString
	var kind, status string
	err := q.QueryRowContext(ctx, `SELECT tenant_id, kind, status FROM accounts WHERE id = $1`, accountID).Scan(&tenant, &kind, &status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (tenant.String != want || want == "" || status != "active")) {
		return "", fmt.Errorf("account %s: %w", accountID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up account: %w", err)
	}
	return kind, nil
}

// actorIs checks that the actor acts in one of roles, with the assurance
// every change to the rules needs.
func actorIs(actor Subject, roles ...Role) error {
	if actor.AccountID() == "" {
		return fmt.Errorf("no actor: %w", ErrForbidden)
	}
	if actor.Assurance() < HealthDataLevel {
		return fmt.Errorf("assurance level %s is below %s: %w", actor.Assurance(), HealthDataLevel, ErrForbidden)
	}
	for _, r := range roles {
		if actor.Role() == r {
			if r != RoleOperator && actor.TenantID() == "" {
				return fmt.Errorf("no organisation: %w", ErrForbidden)
			}
			return nil
		}
	}
	return fmt.Errorf("role %s may not do this: %w", actor.Role(), ErrForbidden)
}

func micros(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return clock.Micros(*t)
}

func fromMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := clock.FromMicros(v.Int64)
	return &t
}

// checkText refuses text a database cannot store or a page should not
// show: invalid UTF-8, NUL and other control characters (tab and line
// breaks aside). PostgreSQL rejects NUL in text, which would otherwise turn
// bad input into an unavailable service.
func checkText(vals ...string) error {
	for _, v := range vals {
		bad := !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool {
			return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
		})
		if bad {
			return invalid("text must be valid UTF-8 without control characters")
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Role is the role a session acts in (AZ-2: one per session).
type Role string

const (
	RoleProfessional    Role = "professional" // zorgverlener
	RoleAssistant       Role = "assistant"
	RoleAppAdmin        Role = "application-admin"
	RoleSecurityOfficer Role = "security-officer"
	RolePerson          Role = "person" // patient or representative
	RoleOperator        Role = "operator"
)

// CategoryAll covers every data category (AZ-9). The categories are
// internal/fhir's (fhir.Categories gives a resource one general category
// from its type and a sensitive one per security label); a role or a basis
// covers a resource only when it covers every category of it.
const CategoryAll = "*"

func knownCategory(c string) bool {
	return c == CategoryAll || slices.Contains(fhir.AllCategories(), c)
}

// RoleDef describes what a role may do with health data: which rules apply
// to it (Base: professional, assistant, person or operator), the actions and
// the data categories. A role without health-data rights has Base "".
type RoleDef struct {
	ID         string   `json:"id,omitempty"`
	TenantID   string   `json:"tenant_id,omitempty"` // "" for predefined roles
	Name       Role     `json:"name"`
	Base       Role     `json:"base"`
	Actions    []Action `json:"actions"`
	Categories []string `json:"categories"`
	Privileged bool     `json:"privileged"` // granted only per event and time-limited (AZ-8)

	Status     string     `json:"status,omitempty"` // pending, approved, rejected; "" for predefined
	ProposedBy string     `json:"proposed_by,omitempty"`
	ProposedAt *time.Time `json:"proposed_at,omitempty"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// PredefinedRoles are the roles every tenant has, with the least rights
// their tasks need (AZ-2):
//   - professional: every action on every category, through the care rules;
//   - assistant: reads and searches demographic, directory and
//     administrative data, through the same care rules, never by emergency;
//   - person: reads, searches and exports their own record or a represented
//     patient's within the representation's scope;
//   - operator: reads and searches only under an approved operator request
//     and within its categories;
//   - application admin and security officer: no health data at all; they
//     manage the rules and review their use. Both are privileged.
func PredefinedRoles() []RoleDef {
	return []RoleDef{
		{Name: RoleProfessional, Base: RoleProfessional, Actions: Actions(), Categories: []string{CategoryAll}},
		{Name: RoleAssistant, Base: RoleAssistant, Actions: []Action{Read, Search},
			Categories: []string{fhir.CategoryDemographics, fhir.CategoryDirectory, fhir.CategoryAdministrative}},
		{Name: RolePerson, Base: RolePerson, Actions: []Action{Read, Search, Export}, Categories: []string{CategoryAll}},
		{Name: RoleOperator, Base: RoleOperator, Actions: []Action{Read, Search}, Categories: []string{CategoryAll}, Privileged: true},
		{Name: RoleAppAdmin, Privileged: true},
		{Name: RoleSecurityOfficer, Privileged: true},
	}
}

func predefined(r Role) (RoleDef, bool) {
	for _, d := range PredefinedRoles() {
		if d.Name == r {
			return d, true
		}
	}
	return RoleDef{}, false
}

type permission struct {
	base       Role
	actions    map[Action]bool
	categories map[string]bool // "*" means every category
}

func (r RoleDef) permission() (permission, bool) {
	if r.Base == "" {
		return permission{}, false
	}
	return permission{base: r.Base, actions: set(r.Actions...), categories: set(r.Categories...)}, true
}

// permission returns what the subject's role allows with health data, and
// false when it allows nothing. Tenant-defined roles are read from the
// database: the newest approved version is in force.
func (d *Decider) permission(ctx context.Context, s Subject) (permission, bool, error) {
	if def, ok := predefined(s.Role()); ok {
		p, ok := def.permission()
		return p, ok, nil
	}
	if s.Role() == "" || s.TenantID() == "" {
		return permission{}, false, nil
	}
	def, err := d.currentRoleDef(ctx, d.db, s.TenantID(), s.Role())
	if errors.Is(err, ErrNotFound) {
		return permission{}, false, nil
	}
	if err != nil {
		return permission{}, false, err
	}
	p, ok := def.permission()
	return p, ok, nil
}

const roleDefCols = `id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at, COALESCE(decided_by, ''), decided_at, note`

func scanRoleDef(row interface{ Scan(...any) error }) (RoleDef, error) {
	var r RoleDef
	var actions, cats string
	var proposed int64
	var decided sql.NullInt64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Base, &actions, &cats, &r.Status, &r.ProposedBy, &proposed, &r.DecidedBy, &decided, &r.Note); err != nil {
		return RoleDef{}, err
	}
	for _, a := range strings.Fields(actions) {
		r.Actions = append(r.Actions, Action(a))
	}
	r.Categories = strings.Fields(cats)
	p := clock.FromMicros(proposed)
	r.ProposedAt, r.DecidedAt = &p, fromMicros(decided)
	return r, nil
}

func (d *Decider) currentRoleDef(ctx context.Context, q store.Querier, tenantID string, name Role) (RoleDef, error) {
	r, err := scanRoleDef(q.QueryRowContext(ctx, `SELECT `+roleDefCols+` FROM access_role_defs
		WHERE tenant_id = $1 AND name = $2 AND status = 'approved' ORDER BY decided_at DESC LIMIT 1`, tenantID, string(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return RoleDef{}, fmt.Errorf("role %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return RoleDef{}, fmt.Errorf("role %s: %w", name, err)
	}
	return r, nil
}

var roleNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,40}$`)

// ProposeRole records a new tenant-defined role, or a new version of one, as
// a pending change. It takes effect only when another person approves it
// with DecideRole (a role definition change is security-relevant: who
// proposed and who approved, and when, are kept with every version).
func (d *Decider) ProposeRole(ctx context.Context, actor Subject, def RoleDef) (RoleDef, error) {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return RoleDef{}, fmt.Errorf("propose role: %w", err)
	}
	if !roleNameRE.MatchString(string(def.Name)) {
		return RoleDef{}, invalid("propose role: a role name is 3 to 41 lower-case letters, digits or hyphens")
	}
	if _, ok := predefined(def.Name); ok {
		return RoleDef{}, invalid("propose role: %s is a predefined role", def.Name)
	}
	if def.Base != RoleProfessional && def.Base != RoleAssistant {
		return RoleDef{}, invalid("propose role: base must be professional or assistant")
	}
	if len(def.Actions) == 0 || len(def.Categories) == 0 {
		return RoleDef{}, invalid("propose role: actions and categories are required")
	}
	base, _ := predefined(def.Base)
	for _, a := range def.Actions {
		if !set(base.Actions...)[a] {
			return RoleDef{}, invalid("propose role: base %s does not allow action %q", def.Base, a)
		}
	}
	for _, c := range def.Categories {
		if !knownCategory(c) {
			return RoleDef{}, invalid("propose role: unknown category %q", c)
		}
		if !set(base.Categories...)[CategoryAll] && !set(base.Categories...)[c] {
			return RoleDef{}, invalid("propose role: base %s does not allow category %q", def.Base, c)
		}
	}
	acts := make([]string, len(def.Actions))
	for i, a := range def.Actions {
		acts[i] = string(a)
	}
	def.TenantID, def.Status, def.ProposedBy = actor.TenantID(), "pending", actor.AccountID()
	err := d.db.Tx(ctx, func(tx *store.Tx) error {
		// The role definition's id is its change request's (GOV-1).
		req, err := d.changes.Propose(ctx, tx, ChangeActor(actor), change.Proposal{Kind: ChangeRole,
			Summary: fmt.Sprintf("role %s (%s): %s on %s", def.Name, def.Base, strings.Join(acts, ","), strings.Join(def.Categories, ",")),
			Payload: def})
		if err != nil {
			return fmt.Errorf("propose role: %w", changeErr(err))
		}
		def.ID, def.ProposedAt = req.ID, &req.ProposedAt
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_role_defs (id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)`, def.ID, actor.TenantID(), string(def.Name), string(def.Base),
			strings.Join(acts, " "), strings.Join(def.Categories, " "), actor.AccountID(), clock.Micros(req.ProposedAt)); err != nil {
			return fmt.Errorf("propose role: %w", err)
		}
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: actor.TenantID(), Kind: "role-definition-proposed", AccountID: actor.AccountID(),
			Ref: def.ID, Detail: fmt.Sprintf("role %s: %s on %s", def.Name, strings.Join(acts, ","), strings.Join(def.Categories, ","))})
	})
	if err != nil {
		return RoleDef{}, err
	}
	return def, nil
}

// DecideRole approves or rejects a pending role definition through its
// change request (GOV-1): the approver is an application admin or security
// officer of the tenant other than the proposer (four eyes).
func (d *Decider) DecideRole(ctx context.Context, actor Subject, id string, approve bool, note string) (RoleDef, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer); err != nil {
		return RoleDef{}, fmt.Errorf("decide role: %w", err)
	}
	if err := checkText(id, note); err != nil {
		return RoleDef{}, err
	}
	if _, err := d.changes.DecideKind(ctx, ChangeActor(actor), ChangeRole, id, approve, note); err != nil {
		return RoleDef{}, fmt.Errorf("decide role: %w", changeErr(err))
	}
	r, err := scanRoleDef(d.db.QueryRowContext(ctx, `SELECT `+roleDefCols+` FROM access_role_defs WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()))
	if err != nil {
		return RoleDef{}, fmt.Errorf("decide role: %w", err)
	}
	return r, nil
}

// closeRoleDef records the end of a role definition's change request on
// its row: approved (then this version is in force), rejected, expired or
// failed. Only an approval needs the row still pending.
func (d *Decider) closeRoleDef(ctx context.Context, tx *store.Tx, r change.Request, status string) error {
	var name, proposer string
	err := tx.QueryRowContext(ctx, `SELECT name, proposed_by FROM access_role_defs WHERE id = $1 AND tenant_id = $2 AND status = 'pending'`,
		r.ID, r.TenantID).Scan(&name, &proposer)
	if errors.Is(err, sql.ErrNoRows) {
		if status != "approved" {
			return nil
		}
		return fmt.Errorf("role definition %s is no longer pending: %w", r.ID, change.ErrInapplicable)
	}
	if err != nil {
		return fmt.Errorf("role definition %s: %w", r.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE access_role_defs SET status = $1, decided_by = $2, decided_at = $3, note = $4 WHERE id = $5 AND status = 'pending'`,
		status, r.DecidedBy, clock.Micros(*r.DecidedAt), r.Note, r.ID); err != nil {
		return fmt.Errorf("role definition %s: %w", r.ID, err)
	}
	return d.securityEvent(ctx, tx, SecurityEvent{TenantID: r.TenantID, Kind: "role-definition-" + status, AccountID: orSystem(r.DecidedBy),
		Ref: r.ID, Detail: fmt.Sprintf("role %s proposed by %s", name, proposer)})
}

// orSystem names the server itself as the actor of a step nobody took (an
// expiry).
func orSystem(account string) string {
	if account == "" {
		return "system"
	}
	return account
}

// RoleDefs lists the predefined roles and every version of the tenant's own
// role definitions, newest first.
func (d *Decider) RoleDefs(ctx context.Context, actor Subject) ([]RoleDef, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer); err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	out := PredefinedRoles()
	rows, err := d.db.QueryContext(ctx, `SELECT `+roleDefCols+` FROM access_role_defs WHERE tenant_id = $1 ORDER BY name, proposed_at DESC`, actor.TenantID())
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRoleDef(rows)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// roleExists reports whether name is a predefined role or an approved role of
// the tenant.
func (d *Decider) roleExists(ctx context.Context, q store.Querier, tenantID string, name Role) (RoleDef, error) {
	if def, ok := predefined(name); ok {
		return def, nil
	}
	return d.currentRoleDef(ctx, q, tenantID, name)
}

func set[T comparable](xs ...T) map[T]bool {
	m := make(map[T]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// intersect returns the categories both a and b cover.
func intersect(a, b map[string]bool) map[string]bool {
	switch {
	case a[CategoryAll]:
		return b
	case b[CategoryAll]:
		return a
	}
	out := map[string]bool{}
	for c := range a {
		if b[c] {
			out[c] = true
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

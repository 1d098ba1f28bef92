package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Relationship is a care relationship between a professional and a patient
// (behandelrelatie, AZ-3), valid from Start until End (nil: open-ended).
type Relationship struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenant_id"`
	ProfessionalID string     `json:"professional_id"`
	PatientID      string     `json:"patient_id"`
	Kind           string     `json:"kind"` // e.g. "treatment", "gp", "referral"
	Start          time.Time  `json:"start"`
	End            *time.Time `json:"end,omitempty"`
	RecordedBy     string     `json:"recorded_by"`
}

// AddRelationship records a care relationship and returns its id. It is the
// low-level write (used by set-up and import); RecordRelationship is the
// checked path for people.
func (d *Decider) AddRelationship(ctx context.Context, r Relationship) (string, error) {
	w, err := d.RelationshipWrite(r)
	if err != nil {
		return "", err
	}
	if err := w.Apply(ctx, d.db); err != nil {
		return "", err
	}
	return w.id, nil
}

// A TxWrite is a write of access's own tables made ready to run in another
// package's transaction: record's batch registers patients and their first
// care relationships together. Only access makes one, so the transaction's
// owner hands over its handle to access's SQL, never to arbitrary code.
type TxWrite struct {
	id    string
	apply func(ctx context.Context, q store.Querier) error
}

// Apply runs the write in q.
func (w TxWrite) Apply(ctx context.Context, q store.Querier) error {
	if w.apply == nil {
		return errors.New("access: empty write")
	}
	return w.apply(ctx, q)
}

// RelationshipWrite checks r and returns the write that records it, for
// bulk registration that writes the patient and the relationship together.
func (d *Decider) RelationshipWrite(r Relationship) (TxWrite, error) {
	if r.TenantID == "" || r.ProfessionalID == "" || r.PatientID == "" || r.Kind == "" || r.RecordedBy == "" {
		return TxWrite{}, invalid("add relationship: tenant, professional, patient, kind and recorder are required")
	}
	if r.End != nil && !r.End.After(r.Start) {
		return TxWrite{}, invalid("add relationship: end must be after start")
	}
	id, err := d.newID("r-")
	if err != nil {
		return TxWrite{}, fmt.Errorf("add relationship: %w", err)
	}
	r.ID = id
	return TxWrite{id: id, apply: func(ctx context.Context, q store.Querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO care_relationships
		(id, tenant_id, professional_id, patient_id, kind, start_at, end_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.ID, r.TenantID, r.ProfessionalID, r.PatientID, r.Kind, clock.Micros(r.Start), micros(r.End), r.RecordedBy, clock.Micros(d.clock.Now()))
		if err != nil {
			return fmt.Errorf("add relationship: %w", err)
		}
		return nil
	}}, nil
}

// RecordRelationship records a care relationship on behalf of an
// application admin of the tenant; the professional and the patient must
// belong to that tenant. A zero Start means now.
func (d *Decider) RecordRelationship(ctx context.Context, actor Subject, r Relationship) (Relationship, error) {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return Relationship{}, fmt.Errorf("record relationship: %w", err)
	}
	if err := checkText(r.ProfessionalID, r.PatientID, r.Kind); err != nil {
		return Relationship{}, err
	}
	if err := patientInTenant(ctx, d.db, r.PatientID, actor.TenantID()); err != nil {
		return Relationship{}, err
	}
	kind, err := accountInTenant(ctx, d.db, r.ProfessionalID, actor.TenantID())
	if err != nil {
		return Relationship{}, err
	}
	if kind != identity.KindProfessional {
		return Relationship{}, invalid("record relationship: %s is not a professional", r.ProfessionalID)
	}
	if r.Start.IsZero() {
		r.Start = d.clock.Now()
	}
	r.TenantID, r.RecordedBy = actor.TenantID(), actor.AccountID()
	r.ID, err = d.AddRelationship(ctx, r)
	return r, err
}

// EndRelationship ends a relationship at the given time (zero: now).
func (d *Decider) EndRelationship(ctx context.Context, actor Subject, id string, at time.Time) error {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return fmt.Errorf("end relationship: %w", err)
	}
	if err := checkText(id); err != nil {
		return err
	}
	if at.IsZero() {
		at = d.clock.Now()
	}
	res, err := d.db.ExecContext(ctx, `UPDATE care_relationships SET end_at = $1
		WHERE id = $2 AND tenant_id = $3 AND start_at < $1 AND (end_at IS NULL OR end_at > $1)`,
		clock.Micros(at), id, actor.TenantID())
	if err != nil {
		return fmt.Errorf("end relationship: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("relationship %s (or one still running then): %w", id, ErrNotFound)
	}
	return nil
}

// Relationships lists the care relationships of a patient of the actor's
// tenant, current and ended.
func (d *Decider) Relationships(ctx context.Context, actor Subject, patientID string) ([]Relationship, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer); err != nil {
		return nil, fmt.Errorf("list relationships: %w", err)
	}
	if err := checkText(patientID); err != nil {
		return nil, err
	}
	if err := patientInTenant(ctx, d.db, patientID, actor.TenantID()); err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, tenant_id, professional_id, patient_id, kind, start_at, end_at, recorded_by
		FROM care_relationships WHERE tenant_id = $1 AND patient_id = $2 ORDER BY start_at`, actor.TenantID(), patientID)
	if err != nil {
		return nil, fmt.Errorf("list relationships: %w", err)
	}
	defer rows.Close()
	out := []Relationship{}
	for rows.Next() {
		var r Relationship
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.ProfessionalID, &r.PatientID, &r.Kind, &start, &end, &r.RecordedBy); err != nil {
			return nil, fmt.Errorf("list relationships: %w", err)
		}
		r.Start, r.End = clock.FromMicros(start), fromMicros(end)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PatientLink is a patient the actor has a current care relationship with,
// and of which kind.
type PatientLink struct {
	PatientID string `json:"patient_id"`
	Kind      string `json:"kind"`
}

// MyPatients lists the patients the actor has a current care relationship
// with: ids and kinds only, so every name shown is then read under its own
// decision and log line.
func (d *Decider) MyPatients(ctx context.Context, actor Subject) ([]PatientLink, error) {
	if actor.AccountID() == "" || actor.TenantID() == "" || actor.Assurance() < HealthDataLevel {
		return nil, fmt.Errorf("my patients: %w", ErrForbidden)
	}
	now := clock.Micros(d.clock.Now())
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT patient_id, kind FROM care_relationships
		WHERE tenant_id = $1 AND professional_id = $2 AND start_at <= $3 AND (end_at IS NULL OR end_at > $3)
		ORDER BY patient_id`, actor.TenantID(), actor.AccountID(), now)
	if err != nil {
		return nil, fmt.Errorf("my patients: %w", err)
	}
	defer rows.Close()
	out := []PatientLink{}
	for rows.Next() {
		var p PatientLink
		if err := rows.Scan(&p.PatientID, &p.Kind); err != nil {
			return nil, fmt.Errorf("my patients: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Team is a workgroup: its members reach the patients assigned to it (AZ-3).
type Team struct {
	ID        string   `json:"id"`
	TenantID  string   `json:"tenant_id"`
	Name      string   `json:"name"`
	Members   []string `json:"members"`
	Patients  []string `json:"patients"`
	CreatedBy string   `json:"created_by"`
}

// CreateTeam creates an empty team in the actor's tenant.
func (d *Decider) CreateTeam(ctx context.Context, actor Subject, name string) (Team, error) {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	if err := checkText(name); err != nil {
		return Team{}, err
	}
	if name == "" || len(name) > 200 {
		return Team{}, invalid("create team: a name of 1 to 200 characters is required")
	}
	id, err := d.newID("tm-")
	if err != nil {
		return Team{}, err
	}
	_, err = d.db.ExecContext(ctx, `INSERT INTO access_teams (id, tenant_id, name, created_by, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id, actor.TenantID(), name, actor.AccountID(), clock.Micros(d.clock.Now()))
	if store.IsUniqueViolation(err) {
		return Team{}, fmt.Errorf("team %q exists: %w", name, ErrConflict)
	}
	if err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	return Team{ID: id, TenantID: actor.TenantID(), Name: name, Members: []string{}, Patients: []string{}, CreatedBy: actor.AccountID()}, nil
}

func (d *Decider) teamInTenant(ctx context.Context, teamID, tenantID string) error {
	var one int
	err := d.db.QueryRowContext(ctx, `SELECT 1 FROM access_teams WHERE id = $1 AND tenant_id = $2`, teamID, tenantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("team %s: %w", teamID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("look up team: %w", err)
	}
	return nil
}

// SetTeamMember adds (member true) or removes a professional or assistant
// account of the tenant to or from a team.
func (d *Decider) SetTeamMember(ctx context.Context, actor Subject, teamID, accountID string, member bool) error {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return fmt.Errorf("team member: %w", err)
	}
	if err := checkText(teamID, accountID); err != nil {
		return err
	}
	if err := d.teamInTenant(ctx, teamID, actor.TenantID()); err != nil {
		return err
	}
	if _, err := accountInTenant(ctx, d.db, accountID, actor.TenantID()); err != nil {
		return err
	}
	return d.setTeamLink(ctx, actor, "access_team_members", "account_id", teamID, accountID, member)
}

// SetTeamPatient assigns (assigned true) or unassigns a patient of the
// tenant to or from a team.
func (d *Decider) SetTeamPatient(ctx context.Context, actor Subject, teamID, patientID string, assigned bool) error {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return fmt.Errorf("team patient: %w", err)
	}
	if err := checkText(teamID, patientID); err != nil {
		return err
	}
	if err := d.teamInTenant(ctx, teamID, actor.TenantID()); err != nil {
		return err
	}
	if err := patientInTenant(ctx, d.db, patientID, actor.TenantID()); err != nil {
		return err
	}
	return d.setTeamLink(ctx, actor, "access_team_patients", "patient_id", teamID, patientID, assigned)
}

// setTeamLink adds or ends a membership row; table and column are constants
// of this file, never input.
func (d *Decider) setTeamLink(ctx context.Context, actor Subject, table, col, teamID, id string, on bool) error {
	now := clock.Micros(d.clock.Now())
	return d.db.Tx(ctx, func(tx *store.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE team_id = $1 AND `+col+` = $2 AND removed_at IS NULL`, teamID, id).Scan(&one)
		active := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("team link: %w", err)
		}
		switch {
		case on && !active:
			_, err = tx.ExecContext(ctx, `INSERT INTO `+table+` (team_id, `+col+`, added_by, added_at) VALUES ($1, $2, $3, $4)`, teamID, id, actor.AccountID(), now)
		case !on && active:
			_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET removed_by = $1, removed_at = $2 WHERE team_id = $3 AND `+col+` = $4 AND removed_at IS NULL`,
				actor.AccountID(), now, teamID, id)
		case !on:
			return fmt.Errorf("%s is not in team %s: %w", id, teamID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("team link: %w", err)
		}
		return nil
	})
}

// Teams lists the tenant's teams with their current members and patients.
func (d *Decider) Teams(ctx context.Context, actor Subject) ([]Team, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, tenant_id, name, created_by FROM access_teams WHERE tenant_id = $1 ORDER BY name`, actor.TenantID())
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	out := []Team{}
	idx := map[string]int{}
	for rows.Next() {
		t := Team{Members: []string{}, Patients: []string{}}
		if err := rows.Scan(&t.ID, &t.TenantID, &t.Name, &t.CreatedBy); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list teams: %w", err)
		}
		idx[t.ID] = len(out)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	for _, q := range []struct {
		sql    string
		member bool
	}{
		{`SELECT m.team_id, m.account_id FROM access_team_members m JOIN access_teams t ON t.id = m.team_id
			WHERE t.tenant_id = $1 AND m.removed_at IS NULL ORDER BY m.account_id`, true},
		{`SELECT p.team_id, p.patient_id FROM access_team_patients p JOIN access_teams t ON t.id = p.team_id
			WHERE t.tenant_id = $1 AND p.removed_at IS NULL ORDER BY p.patient_id`, false},
	} {
		rows, err := d.db.QueryContext(ctx, q.sql, actor.TenantID())
		if err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		for rows.Next() {
			var team, id string
			if err := rows.Scan(&team, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("list teams: %w", err)
			}
			if i, ok := idx[team]; ok && q.member {
				out[i].Members = append(out[i].Members, id)
			} else if ok {
				out[i].Patients = append(out[i].Patients, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
	}
	return out, nil
}

// Delegation lets another professional reach a patient for a while, on the
// authority of a professional who has a care relationship (AZ-3).
type Delegation struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenant_id"`
	FromID    string     `json:"from_id"`
	ToID      string     `json:"to_id"`
	PatientID string     `json:"patient_id"`
	Reason    string     `json:"reason"`
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// MaxDelegation is the longest a delegation may run.
const MaxDelegation = 90 * 24 * time.Hour

// Delegate lets professional to reach patientID until end. The actor must be
// a professional with a current care relationship to the patient; the
// delegation also lapses when that relationship ends.
func (d *Decider) Delegate(ctx context.Context, actor Subject, to, patientID, reason string, end time.Time) (Delegation, error) {
	if err := actorIs(actor, RoleProfessional); err != nil {
		return Delegation{}, fmt.Errorf("delegate: %w", err)
	}
	if err := checkText(to, patientID, reason); err != nil {
		return Delegation{}, err
	}
	now := d.clock.Now()
	switch {
	case reason == "" || len(reason) > 500:
		return Delegation{}, invalid("delegate: a reason of 1 to 500 characters is required")
	case !end.After(now) || end.Sub(now) > MaxDelegation:
		return Delegation{}, invalid("delegate: the end must be in the future and at most %d days away", int(MaxDelegation.Hours()/24))
	case to == actor.AccountID():
		return Delegation{}, invalid("delegate: cannot delegate to oneself")
	}
	if err := patientInTenant(ctx, d.db, patientID, actor.TenantID()); err != nil {
		return Delegation{}, err
	}
	kind, err := accountInTenant(ctx, d.db, to, actor.TenantID())
	if err != nil {
		return Delegation{}, err
	}
	if kind != identity.KindProfessional {
		return Delegation{}, invalid("delegate: %s is not a professional", to)
	}
	var one int
	err = d.db.QueryRowContext(ctx, `SELECT 1 FROM care_relationships WHERE professional_id = $1 AND patient_id = $2 AND tenant_id = $3
		AND start_at <= $4 AND (end_at IS NULL OR end_at > $4) LIMIT 1`, actor.AccountID(), patientID, actor.TenantID(), clock.Micros(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return Delegation{}, fmt.Errorf("only a professional with a care relationship may delegate: %w", ErrForbidden)
	}
	if err != nil {
		return Delegation{}, fmt.Errorf("delegate: %w", err)
	}
	id, err := d.newID("dl-")
	if err != nil {
		return Delegation{}, err
	}
	dl := Delegation{ID: id, TenantID: actor.TenantID(), FromID: actor.AccountID(), ToID: to, PatientID: patientID, Reason: reason, Start: now, End: end}
	_, err = d.db.ExecContext(ctx, `INSERT INTO access_delegations (id, tenant_id, from_id, to_id, patient_id, reason, start_at, end_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)`, id, dl.TenantID, dl.FromID, to, patientID, reason, clock.Micros(now), clock.Micros(end))
	if err != nil {
		return Delegation{}, fmt.Errorf("delegate: %w", err)
	}
	return dl, nil
}

// RevokeDelegation ends a delegation now. The delegating professional or an
// application admin of the tenant may revoke it.
func (d *Decider) RevokeDelegation(ctx context.Context, actor Subject, id string) error {
	if err := actorIs(actor, RoleProfessional, RoleAppAdmin); err != nil {
		return fmt.Errorf("revoke delegation: %w", err)
	}
	if err := checkText(id); err != nil {
		return err
	}
	q := `UPDATE access_delegations SET revoked_by = $1, revoked_at = $2 WHERE id = $3 AND tenant_id = $4 AND revoked_at IS NULL`
	args := []any{actor.AccountID(), clock.Micros(d.clock.Now()), id, actor.TenantID()}
	if actor.Role() == RoleProfessional {
		q += ` AND from_id = $1`
	}
	res, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("revoke delegation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delegation %s: %w", id, ErrNotFound)
	}
	return nil
}

// Delegations lists delegations of the actor's tenant, newest first: for an
// application admin or security officer all of them (of one patient when
// patientID is not empty), for a professional those they gave or received.
func (d *Decider) Delegations(ctx context.Context, actor Subject, patientID string) ([]Delegation, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer, RoleProfessional); err != nil {
		return nil, fmt.Errorf("list delegations: %w", err)
	}
	if err := checkText(patientID); err != nil {
		return nil, err
	}
	q := `SELECT id, tenant_id, from_id, to_id, patient_id, reason, start_at, end_at, revoked_at FROM access_delegations WHERE tenant_id = $1`
	args := []any{actor.TenantID()}
	if actor.Role() == RoleProfessional {
		q += ` AND (from_id = $2 OR to_id = $2)`
		args = append(args, actor.AccountID())
	}
	if patientID != "" {
		args = append(args, patientID)
		q += fmt.Sprintf(` AND patient_id = $%d`, len(args))
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY start_at DESC, id LIMIT 1000`, args...)
	if err != nil {
		return nil, fmt.Errorf("list delegations: %w", err)
	}
	defer rows.Close()
	out := []Delegation{}
	for rows.Next() {
		var dl Delegation
		var start, end int64
		var revoked sql.NullInt64
		if err := rows.Scan(&dl.ID, &dl.TenantID, &dl.FromID, &dl.ToID, &dl.PatientID, &dl.Reason, &start, &end, &revoked); err != nil {
			return nil, fmt.Errorf("list delegations: %w", err)
		}
		dl.Start, dl.End, dl.RevokedAt = clock.FromMicros(start), clock.FromMicros(end), fromMicros(revoked)
		out = append(out, dl)
	}
	return out, rows.Err()
}

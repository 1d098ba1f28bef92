package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// RoleSystem is the role of a third-party system's subject (principal's
// FromSystem). It is no account role: what a system may do is its
// registration in internal/pki (scopes, categories, patient set), which
// evalSystem reads in the decision itself.
const RoleSystem Role = "system"

// systemQuery reads, in one round trip, the registration of the system ($2)
// that the subject claims, whether its responsible person (ID-3) is still
// an active account, whether the certificate it presented ($3) is current
// and not revoked (DP-3: checked on every decision, not only at the
// handshake), the patient's ($1) tenant and whether the patient is in the
// system's patient set. $4 is now.
const systemQuery = `SELECT s.tenant_id, s.status, s.scopes, s.categories, s.patient_set, a.status,
	(SELECT p.tenant_id FROM patients p WHERE p.id = $1),
	(SELECT 1 FROM pki_system_patients sp WHERE sp.system_id = s.id AND sp.patient_id = $1),
	(SELECT 1 FROM pki_certificates c WHERE c.serial = $3 AND c.system_id = s.id AND c.revoked_at IS NULL
	   AND c.not_before <= $4 AND c.not_after > $4)
	FROM pki_systems s JOIN accounts a ON a.id = s.responsible_id WHERE s.id = $2`

// evalSystem decides for a registered system: deny unless the system and
// its responsible person are active, its certificate is current, the
// action is one of its scopes, the patient is of its tenant (and in its
// patient set, when it has one) and every category requested is allowed.
func (d *Decider) evalSystem(ctx context.Context, s Subject, req Request, now time.Time) (decision, error) {
	if s.TenantID() == "" || s.ClientID() == "" {
		return denied("no organisation"), nil
	}
	if req.PatientID == "" {
		return denied("no patient named"), nil
	}
	if checkText(req.PatientID) != nil {
		return denied(noPatient), nil
	}
	var tenant, status, scopes, cats, accStatus string
	var patientSet bool
	var patientTenant sql.NullString
	var inSet, certOK sql.NullInt64
	err := d.db.Stmt(systemQuery).QueryRowContext(ctx, req.PatientID, s.AccountID(), s.ClientID(), clock.Micros(now)).
		Scan(&tenant, &status, &scopes, &cats, &patientSet, &accStatus, &patientTenant, &inSet, &certOK)
	if errors.Is(err, sql.ErrNoRows) {
		return denied("no such system"), nil
	}
	if err != nil {
		return decision{}, fmt.Errorf("access rules: %w", err)
	}
	switch {
	case tenant != s.TenantID():
		return denied("no such system"), nil
	case status != "active":
		return denied("the system is deactivated"), nil
	case accStatus != "active":
		return denied("the system's responsible person is no longer active"), nil
	case !certOK.Valid:
		return denied("the system's certificate is revoked or not current"), nil
	case !set(strings.Fields(scopes)...)[string(req.Action)]:
		return denied("system %s has no scope %s", s.AccountID(), req.Action), nil
	case !patientTenant.Valid || patientTenant.String != tenant:
		return denied(noPatient), nil
	case patientSet && !inSet.Valid:
		return denied("the patient is not in the system's patient set"), nil
	}
	allowed := set(strings.Fields(cats)...)
	for _, c := range req.Categories {
		if !allowed[CategoryAll] && !allowed[c] {
			return decision{deny: fmt.Sprintf("system %s may not see category %s", s.AccountID(), c), tenantID: tenant}, nil
		}
	}
	return decision{tenantID: tenant, basis: BasisSystem, ref: s.AccountID(), allowed: allowed}, nil
}

package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
)

// LogScope is the part of the access log a subject asks to read.
type LogScope struct {
	// PatientID names one patient's log: a person's own record, or that of
	// the patient they represent in this session (LOG-4). Empty asks for
	// the whole log of the subject's tenant (its security officer, LOG-5).
	PatientID string
	// Purpose is the purpose of use recorded with the reading; a security
	// officer's default is HOPERAT (healthcare operations).
	Purpose string
}

// DecideLogRead allows or denies reading the access log, and returns the
// audit.Permit that audit.Log.Read needs: a person may read the log of
// their own record or of a patient they represent in this session (the
// rules Decide applies to reading that record's demographics), a security
// officer the log of their tenant. Everything else is denied, and the
// denial is logged durably before DecideLogRead returns, as Decide does.
func (d *Decider) DecideLogRead(ctx context.Context, s Subject, scope LogScope) (audit.Permit, error) {
	if scope.PatientID == "" {
		return d.decideTenantLog(ctx, s, scope)
	}
	now := d.clock.Now()
	req := Request{PatientID: scope.PatientID, Action: Read, Categories: []string{fhir.CategoryDemographics}, Purpose: scope.Purpose}
	perm, ok, err := d.permission(ctx, s)
	if err != nil {
		return audit.Permit{}, fmt.Errorf("log read decision: %w", err)
	}
	var dec decision
	switch {
	case s.AccountID() == "":
		dec = denied("no subject")
	case !ok || perm.base != RolePerson:
		// Professionals see a patient's log only through the officer's
		// inspection; their care relationship does not extend to it.
		dec = denied("role %s may not read a patient's access log", s.Role())
	default:
		if dec, err = d.evaluate(ctx, s, req, now); err != nil {
			return audit.Permit{}, fmt.Errorf("log read decision: %w", err)
		}
	}
	if dec.deny != "" {
		return audit.Permit{}, d.denyLogRead(ctx, s, scope, dec.deny)
	}
	g := Grant{subject: s, tenantID: dec.tenantID, patientID: req.PatientID, action: req.Action, basis: dec.basis,
		ref: dec.ref, allowed: dec.allowed, purpose: req.Purpose, decidedAt: now}
	return audit.NewPermit(g.Event(audit.ActionLogRead, audit.OutcomeSuccess), dec.tenantID, req.PatientID), nil
}

// decideTenantLog allows a security officer, whose role is still current,
// to read the log of their own tenant.
func (d *Decider) decideTenantLog(ctx context.Context, s Subject, scope LogScope) (audit.Permit, error) {
	err := d.CheckActor(ctx, s, RoleSecurityOfficer)
	if errors.Is(err, ErrForbidden) {
		return audit.Permit{}, d.denyLogRead(ctx, s, scope, "only a security officer reads the organisation's access log: "+err.Error())
	}
	if err != nil {
		return audit.Permit{}, fmt.Errorf("log read decision: %w", err)
	}
	ev := subjectEvent(s, "", audit.ActionLogRead, audit.OutcomeSuccess, "")
	ev.Purpose = scope.Purpose
	if ev.Purpose == "" {
		ev.Purpose = "HOPERAT"
	}
	return audit.NewPermit(ev, s.TenantID(), ""), nil
}

// denyLogRead logs a refused reading of the log and returns the denial.
func (d *Decider) denyLogRead(ctx context.Context, s Subject, scope LogScope, reason string) error {
	pid := scope.PatientID
	if checkText(pid) != nil {
		pid = "" // not a text the log can hold; the reason says what was refused
	}
	ev := subjectEvent(s, pid, audit.ActionLogRead, audit.OutcomeDenied, "")
	ev.Reason, ev.Purpose = reason, scope.Purpose
	if _, err := d.log.Append(ctx, ev); err != nil {
		return fmt.Errorf("log denial: %w", err)
	}
	return &Denied{Reason: reason}
}

// Package principal is the one place that turns a credential into an
// access.Subject: who asks, in which role, how well authenticated, and
// through what kind of credential: a session (FromSession), a third-party
// system's client certificate (FromSystem) or an app's OAuth access token
// (FromApp) or a paired device's token (FromDevice), each returning a
// Subject of its own kind.
//
// A Subject says what the credential claims. access.Decider.Decide still
// checks that the account holds the role it claims, so a Subject made here
// from stale data is denied, not trusted.
package principal

import (
	"context"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// Directory is where the account's name and the organisation's name are
// read (identity.Registry is one).
type Directory interface {
	Account(ctx context.Context, id string) (identity.Account, error)
	Tenant(ctx context.Context, id string) (identity.Tenant, error)
}

// FromSession returns the subject of an authenticated session: its account,
// role, assurance and representation, with the account's display name and
// the organisation's name for the access log. Its kind follows from the
// role (access.KindOfRole); a session has no client id and no scopes.
func FromSession(ctx context.Context, dir Directory, sess authn.Session) (access.Subject, error) {
	if sess.AccountName != "" && (sess.TenantID == "" || sess.Organisation != "") {
		// Authenticate read the names with the session: no second look-up.
		return access.NewSubject(access.SubjectSpec{AccountID: sess.AccountID, Name: sess.AccountName, TenantID: sess.TenantID,
			Organisation: sess.Organisation, Role: sess.Role, Assurance: sess.Assurance, OnBehalfOf: sess.OnBehalfOf}), nil
	}
	acc, err := dir.Account(ctx, sess.AccountID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("session subject: %w", err)
	}
	spec, err := describe(ctx, dir, acc, sess.TenantID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("session subject: %w", err)
	}
	spec.Role, spec.Assurance, spec.OnBehalfOf = sess.Role, sess.Assurance, sess.OnBehalfOf
	return access.NewSubject(spec), nil
}

// ForAccount returns the subject of an account acting in role at assurance
// level without a session: for set-up and data generation (demo, synth),
// which write through the same decisions and log as a user would. The
// account must be active; its organisation is the account's own.
func ForAccount(ctx context.Context, dir Directory, accountID string, role access.Role, level access.Level) (access.Subject, error) {
	acc, err := dir.Account(ctx, accountID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("account subject: %w", err)
	}
	if !acc.Active {
		return access.Subject{}, fmt.Errorf("account subject %s: account is not active", accountID)
	}
	spec, err := describe(ctx, dir, acc, acc.TenantID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("account subject: %w", err)
	}
	spec.Role, spec.Assurance = role, level
	return access.NewSubject(spec), nil
}

// describe fills in the names a subject carries into the access log: the
// account's display name and the name of the organisation it acts for.
func describe(ctx context.Context, dir Directory, acc identity.Account, tenantID string) (access.SubjectSpec, error) {
	spec := access.SubjectSpec{AccountID: acc.ID, Name: acc.DisplayName, TenantID: tenantID}
	if tenantID != "" {
		t, err := dir.Tenant(ctx, tenantID)
		if err != nil {
			return access.SubjectSpec{}, err
		}
		spec.Organisation = t.Name
	}
	return spec, nil
}

// FromSystem returns the subject of a third-party system whose client
// certificate the CA verified (pki.CA.Verify, then Lookup on the request):
// kind system, the system as the user (its id and name), its tenant and
// scopes, the certificate's serial as the client id, and its responsible
// person (ID-3), so that every event of the system names both (LOG-1).
// What the system may do is decided by access from its registration, not
// from these claims.
func FromSystem(p pki.Peer) access.Subject {
	return access.NewSubject(access.SubjectSpec{AccountID: p.SystemID, Name: p.SystemName, TenantID: p.TenantID, Organisation: p.Organisation,
		Role: access.RoleSystem, Kind: access.KindSystem, Assurance: access.Hoog, ClientID: p.Serial, Scopes: p.Scopes,
		Responsible: p.ResponsibleID + " " + p.ResponsibleName})
}

// FromApp returns the subject of an app's access token (EX-2): kind app,
// acting for the person who consented (their account, as a person, at the
// assurance of the log-on that consented), on behalf of the represented
// patient when the consent was for one, with the client as client id and
// the consent's scopes. access.Decide still checks that the person holds
// the role and may see the patient, and narrows to the scopes.
func FromApp(ctx context.Context, dir Directory, a oauth.Access) (access.Subject, error) {
	acc, err := dir.Account(ctx, a.AccountID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("app subject: %w", err)
	}
	spec, err := describe(ctx, dir, acc, a.TenantID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("app subject: %w", err)
	}
	spec.Role, spec.Assurance, spec.Kind, spec.ClientID, spec.Scopes = access.RolePerson, a.Assurance, access.KindApp, a.ClientID, a.Scopes
	if a.OnBehalf {
		spec.OnBehalfOf = a.PatientID
	}
	return access.NewSubject(spec), nil
}

// FromDevice returns the subject of a paired device's token (AUTH-7): kind
// device, acting as the account that paired it, in the pairing session's
// role, at its assurance and on behalf of the patient it represented, with
// the device id as client id. access.Decide decides as for that account,
// so the device reaches only what its user may reach.
func FromDevice(ctx context.Context, dir Directory, a devices.Access) (access.Subject, error) {
	acc, err := dir.Account(ctx, a.AccountID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("device subject: %w", err)
	}
	spec, err := describe(ctx, dir, acc, a.TenantID)
	if err != nil {
		return access.Subject{}, fmt.Errorf("device subject: %w", err)
	}
	spec.Role, spec.Assurance, spec.OnBehalfOf, spec.Kind, spec.ClientID = a.Role, a.Assurance, a.OnBehalfOf, access.KindDevice, a.DeviceID
	return access.NewSubject(spec), nil
}

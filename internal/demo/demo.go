// Package demo fills an empty installation with a demo care organisation so
// that `zorgkluis serve --demo` can be tried at once: a GP with a care
// relationship to a demo patient, a second GP without one, the patient as a
// person account, two application admins and a security officer, and a few
// Observations. Every write goes through the same
// decisions and access log as real use.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// Indexer computes blind indexes (keys.Keyring is one).
type Indexer interface {
	BlindIndex(ctx context.Context, tenantID, kind, value string) ([]byte, error)
}

// Deps are the services the seeder writes through.
type Deps struct {
	IDs     *identity.Registry
	Authn   *authn.Service
	Access  *access.Decider
	Records *record.Store
	Index   Indexer
	Clock   clock.Clock
	Rand    io.Reader
	// Onboard creates the tenant and invites and activates the accounts;
	// its Sender must be Mailbox.
	Onboard *onboard.Service
	Mailbox *Mailbox
}

// User is one demo log-in.
type User struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	TOTPSecret  string `json:"totp_secret"`
	TOTPURI     string `json:"totp_uri"`
	AccountID   string `json:"account_id"`
	Role        string `json:"role"`
	Description string `json:"description"`
}

// Credentials is what the demo prints and writes to demo-credentials.json.
type Credentials struct {
	Tenant    string `json:"tenant"`
	TenantID  string `json:"tenant_id"`
	PatientID string `json:"patient_id"`
	Users     []User `json:"users"`
}

// Mailbox is the demo's second channel: it keeps the activation secrets
// the onboarding sends by e-mail, so that the demo can activate the
// accounts it invites itself. Only `serve --demo` wires it (as the
// onboard.Service's Sender while seeding); a real installation sends by
// mail, SMS or sealed letter to the person invited.
type Mailbox struct {
	mu    sync.Mutex
	inbox map[string]string // address -> the last message's body
}

// Send keeps m for its address.
func (m *Mailbox) Send(_ context.Context, msg authn.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inbox == nil {
		m.inbox = map[string]string{}
	}
	m.inbox[msg.To] = msg.Body
	return nil
}

// Supports says the mailbox takes e-mail only.
func (m *Mailbox) Supports(channel string) bool { return channel == authn.FactorEmail }

// secretLine is the line of onboard's message that holds the secret.
var secretLine = regexp.MustCompile(`(?m)^    ([A-Z2-7]{4}(?:-[A-Z2-7]{1,4})+)$`)

func (m *Mailbox) secret(to string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := secretLine.FindStringSubmatch(m.inbox[to])
	if s == nil {
		return "", fmt.Errorf("demo: no activation secret was sent to %s", to)
	}
	return s[1], nil
}

// Seed creates the demo data. Call it only on an empty installation. The
// organisation and its accounts are made by the same onboarding a real
// installation uses (tenant create, invitations, activation, the first
// roles through four eyes); what is the demo's own is that it chooses the
// passwords (generated, printed) and confirms the authenticator apps
// itself, so that the printed log-ins work at once.
func Seed(ctx context.Context, d Deps) (Credentials, error) {
	if d.Onboard == nil || d.Mailbox == nil {
		return Credentials{}, errors.New("demo: needs the onboarding service with the demo mailbox as its sender")
	}
	operator := audit.Event{UserID: "demo set-up", UserName: "zorgkluis serve --demo", SourceApp: "zorgkluis demo"}
	t, err := d.Onboard.CreateTenant(ctx, operator, "Huisartsenpraktijk De Linde", "90000001", "01000001")
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	cred := Credentials{Tenant: t.Name, TenantID: t.ID}
	type spec struct {
		username, name, kind, role, title, description string
	}
	specs := []spec{
		{"dr.jansen", "Dr. A. Jansen", identity.KindProfessional, string(access.RoleProfessional), "huisarts", "GP with a care relationship to the demo patient"},
		{"dr.bakker", "Dr. B. Bakker", identity.KindProfessional, string(access.RoleProfessional), "huisarts", "GP without a care relationship: reads are denied and logged"},
		{"s.devries", "Sanne de Vries", identity.KindPerson, string(access.RolePerson), "", "the demo patient herself"},
		{"beheer.smit", "M. Smit (beheer)", identity.KindAdmin, string(access.RoleAppAdmin), "", "application admin: requests rights, records relationships"},
		{"beheer.visser", "L. Visser (beheer)", identity.KindAdmin, string(access.RoleAppAdmin), "", "second application admin: approves rights (four eyes)"},
		{"security.mulder", "K. Mulder (security officer)", identity.KindAdmin, string(access.RoleSecurityOfficer), "", "security officer: reviews emergency access, security events and the log"},
	}
	users := map[string]User{}
	// create invites one demo account; activate activates it.
	create := func(sp spec, actor audit.Event, in onboard.Invite) (onboard.Invitation, string, error) {
		in.TenantID, in.Kind, in.Name, in.Username = t.ID, sp.kind, sp.name, sp.username
		in.Email, in.RegistrationMethod, in.VerifiedBy, in.Deliver = sp.username+"@example.invalid", 3, "demo set-up", onboard.DeliverEmail
		if sp.kind == identity.KindProfessional {
			big, err := randomDigits(d.Rand, 11)
			if err != nil {
				return onboard.Invitation{}, "", err
			}
			in.Professional = &identity.Professional{BIG: big, FunctionTitle: sp.title, VerifiedBy: "demo set-up (BIG-register)"}
		}
		inv, err := d.Onboard.CreateInvitation(ctx, actor, in)
		if err != nil {
			return onboard.Invitation{}, "", fmt.Errorf("demo: invite %s: %w", sp.username, err)
		}
		return inv, in.Email, nil
	}
	activate := func(sp spec, inv onboard.Invitation, email string) error {
		secret, err := d.Mailbox.secret(email)
		if err != nil {
			return err
		}
		pw, err := password.Generate(d.Rand)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		enr, err := d.Onboard.StartActivation(ctx, inv.Code, secret, pw, "demo")
		if err != nil {
			return fmt.Errorf("demo: activate %s: %w", sp.username, err)
		}
		err = confirmPreviousStep(d.Clock, enr.Secret, func(code string) (bool, error) {
			_, err := d.Onboard.CompleteActivation(ctx, inv.Code, secret, code, "demo")
			if errors.Is(err, onboard.ErrTOTP) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("demo: activate %s: %w", sp.username, err)
		}
		users[sp.username] = User{Username: sp.username, Password: pw, TOTPSecret: enr.Secret, TOTPURI: enr.URI,
			AccountID: inv.AccountID, Role: sp.role, Description: sp.description}
		return nil
	}
	invite := func(sp spec, actor audit.Event, in onboard.Invite) error {
		inv, email, err := create(sp, actor, in)
		if err != nil {
			return err
		}
		return activate(sp, inv, email)
	}
	byName := map[string]spec{}
	for _, sp := range specs {
		byName[sp.username] = sp
	}
	// The first administrators and the security officer get their roles
	// with the invitation, as the operator's `tenant invite-admin` does:
	// all are invited before any is active, since once a role has an
	// active holder in the tenant it is granted only with a second
	// person's approval (AZ-7).
	firstAdmins := []string{"beheer.smit", "beheer.visser", "security.mulder"}
	invs := make([]onboard.Invitation, len(firstAdmins))
	emails := make([]string, len(firstAdmins))
	for i, u := range firstAdmins {
		var err error
		if invs[i], emails[i], err = create(byName[u], operator, onboard.Invite{Role: byName[u].role}); err != nil {
			return Credentials{}, err
		}
	}
	for i, u := range firstAdmins {
		if err := activate(byName[u], invs[i], emails[i]); err != nil {
			return Credentials{}, err
		}
	}
	smit, err := principal.ForAccount(ctx, d.IDs, users["beheer.smit"].AccountID, access.RoleAppAdmin, access.Hoog)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	visser, err := principal.ForAccount(ctx, d.IDs, users["beheer.visser"].AccountID, access.RoleAppAdmin, access.Hoog)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	// The professionals are invited by an admin and get their role through
	// a right request that the second admin approves (AZ-7).
	for _, u := range []string{"dr.jansen", "dr.bakker"} {
		if err := invite(byName[u], eventOf(smit), onboard.Invite{}); err != nil {
			return Credentials{}, err
		}
		rr, err := d.Access.RequestRight(ctx, smit, access.RightRequest{AccountID: users[u].AccountID, Role: access.RoleProfessional, Reason: "demo GP"})
		if err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		if _, err := d.Access.DecideRight(ctx, visser, rr.ID, true, "demo set-up"); err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
	}
	gp, err := principal.ForAccount(ctx, d.IDs, users["dr.jansen"].AccountID, access.RoleProfessional, access.Hoog)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}

	patientID, err := d.IDs.NewID("p-")
	if err != nil {
		return Credentials{}, err
	}
	bsn, err := nlid.GenerateBSN(d.Rand)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	idx, err := d.Index.BlindIndex(ctx, t.ID, "bsn", bsn)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	g, err := d.Access.DecideRegistration(ctx, gp, patientID)
	if err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	now := d.Clock.Now()
	body, err := resourceJSON(map[string]any{
		"resourceType": "Patient",
		"id":           patientID,
		"meta":         map[string]any{"versionId": "1", "lastUpdated": now.Format(time.RFC3339Nano)},
		"identifier":   []any{map[string]any{"system": nlid.SystemBSN, "value": bsn}},
		"name":         []any{map[string]any{"use": "official", "family": "de Vries", "given": []string{"Sanne"}, "text": "Sanne de Vries"}},
		"gender":       "female",
		"birthDate":    "1984-03-12",
	})
	if err != nil {
		return Credentials{}, err
	}
	if _, err := d.Records.RegisterPatient(ctx, g, d.IDs, idx, body); err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	cred.PatientID = patientID
	if _, err := d.Access.RecordRelationship(ctx, smit, access.Relationship{ProfessionalID: gp.AccountID(), PatientID: patientID,
		Kind: "gp", Start: now.Add(-time.Minute)}); err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	// The patient's own account: the GP hands her an activation code,
	// which links the account to her record.
	if err := invite(byName["s.devries"], eventOf(gp), onboard.Invite{PatientID: patientID, BirthDate: "1984-03-12"}); err != nil {
		return Credentials{}, err
	}
	for _, sp := range specs {
		cred.Users = append(cred.Users, users[sp.username])
	}
	op, err := seedOperator(ctx, d)
	if err != nil {
		return Credentials{}, err
	}
	cred.Users = append(cred.Users, op)
	obs := []struct {
		code, display, unit string
		value               float64
		daysAgo             int
	}{
		{"29463-7", "Lichaamsgewicht", "kg", 68.4, 90},
		{"29463-7", "Lichaamsgewicht", "kg", 67.9, 30},
		{"8480-6", "Systolische bloeddruk", "mm[Hg]", 128, 30},
		{"4548-4", "HbA1c", "mmol/mol", 44, 14},
		{"15074-8", "Glucose", "mmol/L", 5.8, 2},
	}
	for _, o := range obs {
		cg, err := d.Access.Decide(ctx, gp, access.Request{PatientID: patientID, Action: access.Create, Categories: []string{"clinical"}, Purpose: "TREAT"})
		if err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		id, err := d.IDs.NewID("o-")
		if err != nil {
			return Credentials{}, err
		}
		body, err := resourceJSON(map[string]any{
			"resourceType": "Observation",
			"id":           id,
			"meta":         map[string]any{"versionId": "1", "lastUpdated": now.Format(time.RFC3339Nano)},
			"status":       "final",
			"category": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}},
			"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": o.code, "display": o.display}}},
			"subject":           map[string]any{"reference": "Patient/" + patientID},
			"effectiveDateTime": now.AddDate(0, 0, -o.daysAgo).Format(time.RFC3339),
			"valueQuantity":     map[string]any{"value": o.value, "unit": o.unit, "system": "http://unitsofmeasure.org", "code": o.unit},
		})
		if err != nil {
			return Credentials{}, err
		}
		if _, err := d.Records.Insert(ctx, cg, record.Resource{Type: "Observation", ID: id, PatientID: patientID, Categories: []string{"clinical"}, Body: body}); err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
	}
	return cred, nil
}

// eventOf is the access-log template of a set-up subject's actions.
func eventOf(s access.Subject) audit.Event {
	return audit.Event{TenantID: s.TenantID(), UserID: s.AccountID(), UserName: s.Name(), Role: string(s.Role()),
		Assurance: s.Assurance().String(), SourceApp: "zorgkluis demo"}
}

func resourceJSON(v map[string]any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("demo: encode resource: %w", err)
	}
	return b, nil
}

// confirmPreviousStep confirms an authenticator app with its code of the
// previous 30-second step (inside the accepted skew): the current step
// stays unused, so the printed log-in works at once with the code an app
// shows now. A step boundary falling between making the code and checking
// it puts the code two steps back, outside the skew (seen once in CI), so a
// refused code is made once more, of the new step.
func confirmPreviousStep(c clock.Clock, secret string, confirm func(code string) (bool, error)) error {
	for try := 0; ; try++ {
		code, err := totp.GenerateCode(secret, c.Now().Add(-30*time.Second))
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		ok, err := confirm(code)
		switch {
		case err != nil:
			return err
		case ok:
			return nil
		case try == 1:
			return onboard.ErrTOTP
		}
	}
}

func randomDigits(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b), nil
}

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
	"fmt"
	"io"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
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

// Seed creates the demo data. Call it only on an empty installation.
func Seed(ctx context.Context, d Deps) (Credentials, error) {
	t, err := d.IDs.CreateTenant(ctx, identity.Tenant{Name: "Huisartsenpraktijk De Linde", URA: "90000001", AGB: "01000001"})
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
	for _, sp := range specs {
		acc, err := d.IDs.CreateAccount(ctx, identity.Account{
			TenantID: t.ID, Kind: sp.kind, Username: sp.username, DisplayName: sp.name,
			Email: sp.username + "@example.invalid", RegistrationMethod: 3, VerifiedBy: "demo set-up",
		})
		if err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		if sp.kind == identity.KindProfessional {
			big, err := randomDigits(d.Rand, 11)
			if err != nil {
				return Credentials{}, err
			}
			if err := d.IDs.RegisterProfessional(ctx, identity.Professional{AccountID: acc.ID, BIG: big, FunctionTitle: sp.title, VerifiedBy: "demo set-up (BIG-register)"}); err != nil {
				return Credentials{}, fmt.Errorf("demo: %w", err)
			}
		}
		if err := d.IDs.GrantRole(ctx, acc.ID, sp.role, "demo set-up"); err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		pw, err := password.Generate(d.Rand)
		if err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		if err := d.Authn.SetPassword(ctx, acc.ID, pw, false); err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		uri, secret, err := d.Authn.EnrollTOTP(ctx, acc.ID, sp.username)
		if err != nil {
			return Credentials{}, fmt.Errorf("demo: %w", err)
		}
		cred.Users = append(cred.Users, User{Username: sp.username, Password: pw, TOTPSecret: secret, TOTPURI: uri,
			AccountID: acc.ID, Role: sp.role, Description: sp.description})
	}
	gp, err := principal.ForAccount(ctx, d.IDs, cred.Users[0].AccountID, access.RoleProfessional, access.Hoog)
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
	if err := d.IDs.LinkPerson(ctx, cred.Users[2].AccountID, patientID); err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
	if _, err := d.Access.AddRelationship(ctx, access.Relationship{TenantID: t.ID, ProfessionalID: gp.AccountID(), PatientID: patientID,
		Kind: "gp", Start: now.Add(-time.Minute), RecordedBy: "demo set-up"}); err != nil {
		return Credentials{}, fmt.Errorf("demo: %w", err)
	}
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

func resourceJSON(v map[string]any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("demo: encode resource: %w", err)
	}
	return b, nil
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

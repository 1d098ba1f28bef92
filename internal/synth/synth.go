// Package synth generates large, realistic, synthetic Dutch care data for
// tests, benchmarks and the load harness: patients with valid, unique BSNs,
// Dutch names and addresses, professionals with care relationships, person
// accounts linked to their own record, and LOINC-coded Observations with
// plausible values. The content is deterministic for a seed; every write
// goes through the real services (access decisions, sealing with the
// patient's key, the NEN 7513 access log), so generated data is encrypted
// and audited exactly like real data. Identifiers and secrets come from the
// services and from Deps.Rand, so they differ between runs.
package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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

// Keys computes blind indexes and creates new patients' keys in bulk
// (keys.Keyring is one).
type Keys interface {
	BlindIndex(ctx context.Context, tenantID, kind, value string) ([]byte, error)
	CreatePatientKeys(ctx context.Context, tenantID string, patientIDs []string) error
}

// Deps are the services the generator writes through.
type Deps struct {
	IDs     *identity.Registry
	Authn   *authn.Service
	Access  *access.Decider
	Records *record.Store
	Keys    Keys
	Clock   clock.Clock
	Rand    io.Reader // for passwords; crypto/rand.Reader outside tests
}

// Options size the data set.
type Options struct {
	Seed                uint64
	Patients            int
	ResourcesPerPatient int // Observations per patient, besides the Patient resource
	Professionals       int // each gets a share of the patients as care relationships
	Persons             int // the first Persons patients get a person account (default: Professionals)
	Workers             int // concurrent writers (default 4)
	// Batch is how many patients a writer registers per transaction
	// (default 1). Each resource is still checked, sealed and logged on its
	// own; a batch only shares the commit, which is what bounds a bulk load.
	Batch int
	// Progress, when set, is called from one goroutine after each patient
	// with the number of patients done.
	Progress func(done int)
}

// Account is one generated log-in with what the load harness needs.
type Account struct {
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	TOTPSecret string   `json:"totp_secret"`
	AccountID  string   `json:"account_id"`
	Role       string   `json:"role"`
	Patients   []string `json:"patients"` // professionals: patients with a relationship; persons: their own record
}

// Credentials describes a generated data set; zkload reads it. It holds
// passwords and TOTP secrets of synthetic accounts: keep the file 0600.
type Credentials struct {
	Tenant              string    `json:"tenant"`
	TenantID            string    `json:"tenant_id"`
	Seed                uint64    `json:"seed"`
	Patients            int       `json:"patients"` // written, which may be fewer than asked when interrupted
	ResourcesPerPatient int       `json:"resources_per_patient"`
	Professionals       []Account `json:"professionals"`
	Persons             []Account `json:"persons"`
}

// Generate writes a new tenant with the data set o describes. When ctx ends
// early it stops cleanly and returns what was written with ctx's error, so a
// bounded run still yields usable credentials.
func Generate(ctx context.Context, d Deps, o Options) (Credentials, error) {
	if o.Patients < 0 || o.ResourcesPerPatient < 0 || o.Professionals < 1 {
		return Credentials{}, errors.New("synth: need at least one professional and no negative sizes")
	}
	if o.Persons == 0 {
		o.Persons = o.Professionals
	}
	o.Persons = min(o.Persons, o.Patients)
	if o.Workers < 1 {
		o.Workers = 4
	}
	o.Batch = max(o.Batch, 1)
	src := NewSource(o.Seed)
	t, err := d.IDs.CreateTenant(ctx, identity.Tenant{Name: fmt.Sprintf("Synthetische Zorggroep %d", o.Seed), URA: src.Digits(8), AGB: src.Digits(8)})
	if err != nil {
		return Credentials{}, fmt.Errorf("synth: %w", err)
	}
	cred := Credentials{Tenant: t.Name, TenantID: t.ID, Seed: o.Seed, ResourcesPerPatient: o.ResourcesPerPatient}

	// Professionals first: every patient is registered by, and related to, one of them.
	profs := make([]Account, o.Professionals)
	subjects := make([]access.Subject, o.Professionals)
	type profSpec struct{ name, big string }
	specs := make([]profSpec, o.Professionals)
	for i := range specs {
		specs[i] = profSpec{"Dr. " + src.ProfessionalName(), src.Digits(11)}
	}
	err = parallel(ctx, o.Workers, o.Professionals, func(i int) error {
		acc, err := d.account(ctx, t.ID, identity.KindProfessional, fmt.Sprintf("synth%d.prof%04d", o.Seed, i), specs[i].name, access.RoleProfessional)
		if err != nil {
			return err
		}
		if err := d.IDs.RegisterProfessional(ctx, identity.Professional{AccountID: acc.AccountID, BIG: specs[i].big,
			FunctionTitle: "huisarts", VerifiedBy: "synthetic data (BIG-register)"}); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		profs[i] = acc
		subj, err := principal.ForAccount(ctx, d.IDs, acc.AccountID, access.RoleProfessional, access.Hoog)
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		subjects[i] = subj
		return nil
	})
	if err != nil {
		return Credentials{}, err
	}

	// Patients: content is drawn in order on this goroutine (determinism),
	// writes fan out to the workers.
	type job struct {
		i int // position in the data set
		newPatient
	}
	jobs := make(chan []job, o.Workers*2)
	now := d.Clock.Now()
	patientIDs := make([]string, o.Patients)
	persons := make([]Account, o.Persons)
	var done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range jobs {
				ps := make([]newPatient, len(chunk))
				for k, j := range chunk {
					ps[k] = j.newPatient
				}
				pids, err := d.patients(wctx, t.ID, ps, now)
				if err != nil {
					fail(err)
					continue
				}
				for k, j := range chunk {
					patientIDs[j.i] = pids[k]
				}
				for k, j := range chunk {
					if j.i < o.Persons {
						if persons[j.i], err = d.person(wctx, t.ID, j.p, pids[k], fmt.Sprintf("synth%d.pers%04d", o.Seed, j.i)); err != nil {
							fail(err)
							break
						}
					}
				}
				done.Add(int64(len(chunk)))
			}
		}()
	}
	var ticker *time.Ticker
	if o.Progress != nil {
		ticker = time.NewTicker(time.Second)
		defer ticker.Stop()
	}
	var chunk []job
produce:
	for i := 0; i < o.Patients; i++ {
		p, err := src.Person(now)
		if err != nil {
			fail(err)
			break
		}
		obs := make([]Measurement, o.ResourcesPerPatient)
		for k := range obs {
			obs[k] = src.Measurement()
		}
		chunk = append(chunk, job{i: i, newPatient: newPatient{gp: subjects[i%o.Professionals], p: p, obs: obs}})
		if len(chunk) < o.Batch && i < o.Patients-1 {
			continue
		}
		select {
		case jobs <- chunk:
			chunk = nil
		case <-wctx.Done():
			break produce
		}
		if ticker != nil {
			select {
			case <-ticker.C:
				o.Progress(int(done.Load()))
			default:
			}
		}
	}
	close(jobs)
	wg.Wait()
	if o.Progress != nil {
		o.Progress(int(done.Load()))
	}
	for i, pid := range patientIDs {
		if pid == "" {
			continue
		}
		cred.Patients++
		profs[i%o.Professionals].Patients = append(profs[i%o.Professionals].Patients, pid)
	}
	cred.Professionals = profs
	for _, p := range persons {
		if p.AccountID != "" {
			cred.Persons = append(cred.Persons, p)
		}
	}
	if firstErr != nil && ctx.Err() == nil {
		return cred, firstErr
	}
	return cred, ctx.Err()
}

// account creates an account with a role, a generated password and TOTP.
func (d Deps) account(ctx context.Context, tenantID, kind, username, name string, role access.Role) (Account, error) {
	acc, err := d.IDs.CreateAccount(ctx, identity.Account{TenantID: tenantID, Kind: kind, Username: username, DisplayName: name,
		Email: username + "@example.invalid", RegistrationMethod: 3, VerifiedBy: "synthetic data"})
	if err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	if err := d.IDs.GrantRole(ctx, acc.ID, string(role), "synthetic data"); err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	pw, err := password.Generate(d.Rand)
	if err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	if err := d.Authn.SetPassword(ctx, acc.ID, pw, false); err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	_, secret, err := d.Authn.EnrollTOTP(ctx, acc.ID, username)
	if err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	return Account{Username: username, Password: pw, TOTPSecret: secret, AccountID: acc.ID, Role: string(role)}, nil
}

// person creates the person account of a generated patient.
func (d Deps) person(ctx context.Context, tenantID string, p Person, patientID, username string) (Account, error) {
	acc, err := d.account(ctx, tenantID, identity.KindPerson, username, p.Name(), access.RolePerson)
	if err != nil {
		return Account{}, err
	}
	if err := d.IDs.LinkPerson(ctx, acc.AccountID, patientID); err != nil {
		return Account{}, fmt.Errorf("synth: %w", err)
	}
	acc.Patients = []string{patientID}
	return acc, nil
}

// newPatient is one patient to register, by gp, with Observations.
type newPatient struct {
	gp  access.Subject
	p   Person
	obs []Measurement
}

// patients registers ps in tenant tenantID as their gp, relates them, and
// writes their Observations under a create grant each, as the API would:
// every write is decided, sealed with the patient's key and logged. The
// writes share three transactions (keys; patients and relationships;
// Observations, which need the relationships committed to be decided).
func (d Deps) patients(ctx context.Context, tenantID string, ps []newPatient, now time.Time) ([]string, error) {
	pids := make([]string, len(ps))
	for k := range ps {
		pid, err := d.IDs.NewID("p-")
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		pids[k] = pid
	}
	if err := d.Keys.CreatePatientKeys(ctx, tenantID, pids); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	reg := d.Records.NewBatch()
	for k, np := range ps {
		idx, err := d.Keys.BlindIndex(ctx, tenantID, "bsn", np.p.BSN)
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		g, err := d.Access.DecideRegistration(ctx, np.gp, pids[k])
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		body, err := json.Marshal(PatientResource(pids[k], np.p, now))
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		if _, err := reg.RegisterPatient(ctx, g, d.IDs, idx, body); err != nil {
			return nil, fmt.Errorf("synth: register patient: %w", err)
		}
		rel := access.Relationship{TenantID: tenantID, ProfessionalID: np.gp.AccountID(), PatientID: pids[k],
			Kind: "gp", Start: now.Add(-time.Minute), RecordedBy: "synthetic data"}
		w, err := d.Access.RelationshipWrite(rel)
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		reg.With(w)
	}
	if err := reg.Commit(ctx); err != nil {
		return nil, fmt.Errorf("synth: register patients: %w", err)
	}
	obs := d.Records.NewBatch()
	n := 0
	for k, np := range ps {
		if len(np.obs) == 0 {
			continue
		}
		cg, err := d.Access.Decide(ctx, np.gp, access.Request{PatientID: pids[k], Action: access.Create, Categories: []string{"clinical"}, Purpose: "TREAT"})
		if err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		for _, m := range np.obs {
			id, err := d.IDs.NewID("o-")
			if err != nil {
				return nil, fmt.Errorf("synth: %w", err)
			}
			body, err := json.Marshal(ObservationResource(id, pids[k], m, now))
			if err != nil {
				return nil, fmt.Errorf("synth: %w", err)
			}
			if _, err := obs.Insert(ctx, cg, record.Resource{Type: "Observation", ID: id, PatientID: pids[k],
				Categories: []string{"clinical"}, Body: body}); err != nil {
				return nil, fmt.Errorf("synth: insert observation: %w", err)
			}
			n++
		}
	}
	if n > 0 {
		if err := obs.Commit(ctx); err != nil {
			return nil, fmt.Errorf("synth: insert observations: %w", err)
		}
	}
	return pids, nil
}

// PatientResource is the FHIR R4 Patient for p.
func PatientResource(id string, p Person, now time.Time) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"id":           id,
		"meta":         map[string]any{"versionId": "1", "lastUpdated": now.UTC().Format(time.RFC3339Nano)},
		"identifier":   []any{map[string]any{"system": nlid.SystemBSN, "value": p.BSN}},
		"name":         []any{map[string]any{"use": "official", "family": p.Family, "given": []string{p.Given}, "text": p.Name()}},
		"gender":       p.Gender,
		"birthDate":    p.BirthDate,
		"address": []any{map[string]any{"use": "home", "line": []string{fmt.Sprintf("%s %d", p.Street, p.HouseNr)},
			"postalCode": p.PostalCode, "city": p.City, "country": "NL"}},
	}
}

// ObservationResource is the FHIR R4 Observation for m about patient pid.
func ObservationResource(id, pid string, m Measurement, now time.Time) map[string]any {
	res := map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": m.Category}}}},
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": m.Code, "display": m.Display}}},
		"subject":           map[string]any{"reference": "Patient/" + pid},
		"effectiveDateTime": now.AddDate(0, 0, -m.DaysAgo).UTC().Format(time.RFC3339),
		"valueQuantity":     map[string]any{"value": m.Value, "unit": m.Unit, "system": "http://unitsofmeasure.org", "code": m.Unit},
	}
	if id != "" {
		res["id"] = id
		res["meta"] = map[string]any{"versionId": "1", "lastUpdated": now.UTC().Format(time.RFC3339Nano)}
	}
	return res
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the
// first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	errs := make(chan error, workers)
	for range min(workers, n) {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				if err := fn(i); err != nil {
					next.Store(int64(n))
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range min(workers, n) {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

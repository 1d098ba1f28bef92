package keys

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// memStore is an in-memory Store for unit tests. One mutex makes each method
// atomic, which is how it keeps the Store invariants.
type memStore struct {
	mu   sync.Mutex
	keks map[string][]TenantKEK // per tenant, oldest first
	deks map[[2]string]memDEK
}

type memDEK struct {
	PatientDEK
	shredded bool
}

func newMemStore() *memStore {
	return &memStore{keks: map[string][]TenantKEK{}, deks: map[[2]string]memDEK{}}
}

var _ Store = (*memStore)(nil)

func (s *memStore) TenantKEKs(_ context.Context, tenantID string) ([]TenantKEK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TenantKEK
	for _, k := range s.keks[tenantID] {
		k.Wrapped = bytes.Clone(k.Wrapped)
		out = append(out, k)
	}
	return out, nil
}

func (s *memStore) PutTenantKEK(_ context.Context, k TenantKEK) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keks[k.TenantID]
	for i := range ks {
		if ks[i].Version == k.Version {
			return ErrExists
		}
		if ks[i].Version < k.Version && ks[i].Retired.IsZero() {
			ks[i].Retired = k.Created
		}
	}
	k.Wrapped = bytes.Clone(k.Wrapped)
	ks = append(ks, k)
	slices.SortFunc(ks, func(a, b TenantKEK) int { return a.Version - b.Version })
	s.keks[k.TenantID] = ks
	return nil
}

func (s *memStore) RewrapTenantKEK(_ context.Context, oldMasterID string, k TenantKEK) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.keks[k.TenantID] {
		if r.Version == k.Version && r.MasterID == oldMasterID {
			s.keks[k.TenantID][i].MasterID = k.MasterID
			s.keks[k.TenantID][i].Wrapped = bytes.Clone(k.Wrapped)
			return nil
		}
	}
	return ErrNotFound
}

func (s *memStore) TenantKEKsNotUnder(_ context.Context, masterID string, limit int) ([]TenantKEK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []TenantKEK
	for _, ks := range s.keks {
		for _, k := range ks {
			if k.MasterID != masterID && len(out) < limit {
				k.Wrapped = bytes.Clone(k.Wrapped)
				out = append(out, k)
			}
		}
	}
	return out, nil
}

func (s *memStore) DeleteTenantKEK(_ context.Context, tenantID string, version int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keks[tenantID]
	i := slices.IndexFunc(ks, func(k TenantKEK) bool { return k.Version == version })
	if i < 0 {
		return ErrNotFound
	}
	if i == len(ks)-1 {
		return ErrInUse
	}
	for key, d := range s.deks {
		if key[0] == tenantID && !d.shredded && d.KEKVersion == version {
			return ErrInUse
		}
	}
	s.keks[tenantID] = slices.Delete(ks, i, i+1)
	return nil
}

func (s *memStore) PatientDEK(_ context.Context, tenantID, patientID string) (PatientDEK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deks[[2]string{tenantID, patientID}]
	switch {
	case !ok:
		return PatientDEK{}, ErrNotFound
	case d.shredded:
		return PatientDEK{}, ErrShredded
	}
	d.Wrapped = bytes.Clone(d.Wrapped)
	return d.PatientDEK, nil
}

func (s *memStore) PutPatientDEK(_ context.Context, k PatientDEK) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.keks[k.TenantID], func(r TenantKEK) bool { return r.Version == k.KEKVersion }) {
		return ErrNotFound
	}
	key := [2]string{k.TenantID, k.PatientID}
	if _, ok := s.deks[key]; ok {
		return ErrExists
	}
	k.Wrapped = bytes.Clone(k.Wrapped)
	s.deks[key] = memDEK{PatientDEK: k}
	return nil
}

func (s *memStore) PatientDEKsBelow(_ context.Context, tenantID string, kekVersion, limit int) ([]PatientDEK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PatientDEK
	for key, d := range s.deks {
		if key[0] == tenantID && !d.shredded && d.KEKVersion < kekVersion {
			d.Wrapped = bytes.Clone(d.Wrapped)
			out = append(out, d.PatientDEK)
		}
	}
	slices.SortFunc(out, func(a, b PatientDEK) int { return strings.Compare(a.PatientID, b.PatientID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *memStore) RewrapPatientDEK(_ context.Context, oldKEKVersion int, k PatientDEK) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{k.TenantID, k.PatientID}
	d, ok := s.deks[key]
	if !ok || d.shredded || d.KEKVersion != oldKEKVersion {
		return ErrNotFound
	}
	if !slices.ContainsFunc(s.keks[k.TenantID], func(r TenantKEK) bool { return r.Version == k.KEKVersion }) {
		return ErrNotFound
	}
	d.KEKVersion, d.Wrapped = k.KEKVersion, bytes.Clone(k.Wrapped)
	s.deks[key] = d
	return nil
}

func (s *memStore) ShredPatientDEK(_ context.Context, tenantID, patientID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{tenantID, patientID}
	d, ok := s.deks[key]
	if !ok {
		d = memDEK{PatientDEK: PatientDEK{TenantID: tenantID, PatientID: patientID, Created: at}}
	}
	if !d.shredded {
		d.shredded = true
		d.KEKVersion, d.Wrapped = 0, nil
	}
	s.deks[key] = d
	return nil
}

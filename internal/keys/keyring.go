package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Config configures a Keyring. Master and Store are required.
type Config struct {
	Master Master
	Store  Store
	// Rand supplies keys and nonces; crypto/rand.Reader when nil. It must
	// be safe for concurrent use.
	Rand io.Reader
	// Now is the clock for key timestamps and cache expiry; time.Now when nil.
	Now func() time.Time
	// CacheEntries bounds the number of unwrapped keys held (default 10000).
	CacheEntries int
	// CacheTTL is how long an unwrapped key is held (default 30 s). It bounds
	// how long another replica can still use a key this one has shredded.
	CacheTTL time.Duration
}

// Keyring seals and opens patients' data under their keys. It is safe for
// concurrent use.
type Keyring struct {
	master Master
	store  Store
	rand   io.Reader
	now    func() time.Time
	cache  *cache
}

// indexKeyPatient is the reserved patient id under which a tenant's
// blind-index key is stored: no real patient has an empty id, the key hangs
// under the tenant KEK so RotateTenant re-wraps it, and it needs no table of
// its own.
const indexKeyPatient = ""

// batch is how many keys a rotation re-wraps per store round trip.
const batch = 100

// NewKeyring returns a keyring over c.Store whose tenant keys are wrapped
// by c.Master.
func NewKeyring(c Config) (*Keyring, error) {
	if c.Master == nil || c.Store == nil {
		return nil, errors.New("keys: a keyring needs a master key and a store")
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = 10000
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 30 * time.Second
	}
	return &Keyring{
		master: c.Master,
		store:  c.Store,
		rand:   c.Rand,
		now:    c.Now,
		cache:  newCache(c.CacheEntries, c.CacheTTL, c.Now),
	}, nil
}

// MasterID is the fingerprint of the master key that wraps new tenant keys.
func (k *Keyring) MasterID() string { return k.master.ID() }

// Seal encrypts plaintext under the patient's key, creating the tenant's and
// the patient's key on first use. ad names what the value is and must be
// given again to Open. Seal fails with ErrShredded for a shredded patient.
func (k *Keyring) Seal(ctx context.Context, tenantID, patientID string, plaintext []byte, ad AD) ([]byte, error) {
	if err := checkIDs(tenantID, patientID); err != nil {
		return nil, err
	}
	if ad.label == "" {
		return nil, errNoPurpose
	}
	d, err := k.dek(ctx, tenantID, patientID, true)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(k.rand, nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return sealWith(d.aead, d.id, nonce, plaintext, ad), nil
}

// Open decrypts what Seal returned for the same tenant, patient and ad, in
// either ciphertext format. It fails with ErrShredded when the patient's key
// was destroyed and with ErrDecrypt when the ciphertext is not theirs, was
// altered or ad differs.
func (k *Keyring) Open(ctx context.Context, tenantID, patientID string, ciphertext []byte, ad AD) ([]byte, error) {
	if err := checkIDs(tenantID, patientID); err != nil {
		return nil, err
	}
	id, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	d, err := k.dek(ctx, tenantID, patientID, false)
	if err != nil {
		return nil, err
	}
	if id != d.id {
		return nil, fmt.Errorf("%w: sealed under another patient key", ErrDecrypt)
	}
	return openWith(d.aead, ciphertext, ad)
}

// BlindIndex returns HMAC-SHA256 of (kind, value) under the tenant's index
// key, so an identifier such as a BSN can be looked up by equality without
// being stored in plaintext. It is deterministic per tenant and differs
// between tenants. value is used as given: normalise it first. The index key
// is random, created on first use, wrapped by the tenant KEK and never
// replaced by RotateTenant (a new index key would mean recomputing every
// stored index); shredding a patient does not touch it.
func (k *Keyring) BlindIndex(ctx context.Context, tenantID, kind, value string) ([]byte, error) {
	if tenantID == "" {
		return nil, errors.New("keys: empty tenant id")
	}
	d, err := k.dek(ctx, tenantID, indexKeyPatient, true)
	if err != nil {
		return nil, fmt.Errorf("keys: blind-index key: %w", err)
	}
	return blindIndex(d.mac, kind, value), nil
}

// Shred destroys the patient's key, so everything sealed for them is
// unreadable forever; Open then fails with ErrShredded. A later Seal for the
// patient fails with ErrShredded too rather than creating a fresh key:
// silently starting a new key would let new health data accumulate for a
// person whose data was erased, under an erasure the organisation believes
// complete, and would make "shredded" depend on timing. A caller that
// really needs to keep data for this person again must use a new patient id.
// A Seal racing with Shred may still succeed; its output is unreadable too.
func (k *Keyring) Shred(ctx context.Context, tenantID, patientID string) error {
	if err := checkIDs(tenantID, patientID); err != nil {
		return err
	}
	if err := k.store.ShredPatientDEK(ctx, tenantID, patientID, k.now()); err != nil {
		return fmt.Errorf("keys: shred patient key: %w", err)
	}
	k.cache.invalidate(cacheKey{tenant: tenantID, patient: patientID})
	return nil
}

// RotateMaster re-wraps every tenant KEK not yet wrapped by the current
// master key and returns how many it re-wrapped. No data is re-encrypted,
// and serving continues: until a KEK's new wrapping is stored its old one is
// read, which the master can still unwrap. When RotateMaster returns nil,
// no KEK uses another master key, and older master keys can be removed.
func (k *Keyring) RotateMaster(ctx context.Context) (int, error) {
	cur := k.master.ID()
	n := 0
	for {
		rows, err := k.store.TenantKEKsNotUnder(ctx, cur, batch)
		if err != nil {
			return n, fmt.Errorf("keys: rotate master: %w", err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		for _, r := range rows {
			ad := tenantKeyAD(r.TenantID, r.Version)
			raw, err := k.master.Unwrap(ctx, r.Wrapped, ad)
			if err != nil {
				return n, fmt.Errorf("keys: rotate master: tenant %s key version %d (master %s): %w", r.TenantID, r.Version, r.MasterID, err)
			}
			w, err := k.master.Wrap(ctx, raw, ad)
			if err != nil {
				return n, fmt.Errorf("keys: rotate master: %w", err)
			}
			old := r.MasterID
			r.MasterID, r.Wrapped = cur, w
			switch err := k.store.RewrapTenantKEK(ctx, old, r); {
			case err == nil:
				n++
			case errors.Is(err, ErrNotFound):
				// Re-wrapped or deleted meanwhile by another rotation.
			default:
				return n, fmt.Errorf("keys: rotate master: %w", err)
			}
		}
	}
}

// RotateTenant gives the tenant a new KEK version, re-wraps the tenant's
// patient keys (and blind-index key) under it and deletes the older versions
// nothing references any more; it returns how many patient keys it
// re-wrapped. Data is not re-encrypted and serving continues. A tenant
// without keys is left alone. If another process rotates the same tenant at
// the same time, both converge on the newest version.
func (k *Keyring) RotateTenant(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, errors.New("keys: empty tenant id")
	}
	rows, err := k.store.TenantKEKs(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("keys: rotate tenant: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	target, err := k.newKEK(ctx, tenantID, rows[len(rows)-1].Version+1)
	if errors.Is(err, ErrExists) {
		target, err = k.currentKEK(ctx, tenantID)
	}
	if err != nil {
		return 0, fmt.Errorf("keys: rotate tenant: %w", err)
	}
	n := 0
	for {
		deks, err := k.store.PatientDEKsBelow(ctx, tenantID, target.version, batch)
		if err != nil {
			return n, fmt.Errorf("keys: rotate tenant: %w", err)
		}
		if len(deks) == 0 {
			break
		}
		progress := false
		for _, d := range deks {
			raw, err := k.unwrapDEK(ctx, d)
			if errors.Is(err, ErrNotFound) {
				continue // re-wrapped by a concurrent rotation since we listed it
			}
			if err != nil {
				return n, fmt.Errorf("keys: rotate tenant: %w", err)
			}
			w, err := k.wrapDEK(target, tenantID, d.PatientID, raw)
			if err != nil {
				return n, err
			}
			old := d.KEKVersion
			d.KEKVersion, d.Wrapped = target.version, w
			switch err := k.store.RewrapPatientDEK(ctx, old, d); {
			case err == nil:
				n++
				progress = true
			case errors.Is(err, ErrNotFound):
				progress = true // shredded or re-wrapped meanwhile
			default:
				return n, fmt.Errorf("keys: rotate tenant: %w", err)
			}
		}
		if !progress {
			return n, fmt.Errorf("keys: rotate tenant %s: patient keys keep referring to deleted key versions; retry", tenantID)
		}
	}
	for _, r := range rows {
		if r.Version >= target.version {
			continue
		}
		switch err := k.store.DeleteTenantKEK(ctx, tenantID, r.Version); {
		case err == nil, errors.Is(err, ErrNotFound):
			k.cache.invalidate(cacheKey{tenant: tenantID, version: r.Version})
		case errors.Is(err, ErrInUse):
			// A patient key created under it by another process while we
			// re-wrapped; the next rotation moves it.
		default:
			return n, fmt.Errorf("keys: rotate tenant: %w", err)
		}
	}
	return n, nil
}

func checkIDs(tenantID, patientID string) error {
	if tenantID == "" || patientID == "" {
		return errors.New("keys: empty tenant or patient id")
	}
	return nil
}

// kek is an unwrapped tenant KEK version.
type kek struct {
	version int
	e       *cacheEntry
}

// dek returns the patient's unwrapped key, from the cache or the store,
// creating it if create is set and the patient has none.
func (k *Keyring) dek(ctx context.Context, tenantID, patientID string, create bool) (*cacheEntry, error) {
	ck := cacheKey{tenant: tenantID, patient: patientID}
	if e, ok := k.cache.get(ck); ok {
		return e, nil
	}
	epoch := k.cache.snapshot()
	// A few rounds: a lost creation race or a KEK version deleted under us
	// sends us back to read what the winner stored.
	for range 4 {
		row, err := k.store.PatientDEK(ctx, tenantID, patientID)
		var raw []byte
		switch {
		case err == nil:
			raw, err = k.unwrapDEK(ctx, row)
			if errors.Is(err, ErrNotFound) {
				continue // re-wrapped and its old KEK deleted since we read it
			}
		case errors.Is(err, ErrNotFound) && create:
			raw, err = k.createDEK(ctx, tenantID, patientID)
			if errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
				continue // lost the race, or our KEK version was just deleted
			}
		}
		if errors.Is(err, ErrShredded) || errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("keys: patient key: %w", err)
		}
		e, err := newDEKEntry(ck, raw)
		if err != nil {
			return nil, err
		}
		k.cache.put(epoch, e)
		return e, nil
	}
	return nil, errors.New("keys: patient key kept changing while being created; retry")
}

func newDEKEntry(ck cacheKey, raw []byte) (*cacheEntry, error) {
	a, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	e := &cacheEntry{key: ck, aead: a, id: dekID(raw)}
	if ck.patient == indexKeyPatient {
		e.mac = raw
	}
	return e, nil
}

func (k *Keyring) createDEK(ctx context.Context, tenantID, patientID string) ([]byte, error) {
	kk, err := k.currentKEK(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	raw, row, err := k.newDEK(kk, tenantID, patientID)
	if err != nil {
		return nil, err
	}
	if err := k.store.PutPatientDEK(ctx, row); err != nil {
		return nil, err
	}
	return raw, nil
}

// newDEK generates a patient key and its row, wrapped by kk.
func (k *Keyring) newDEK(kk kek, tenantID, patientID string) ([]byte, PatientDEK, error) {
	raw := make([]byte, keySize)
	if _, err := io.ReadFull(k.rand, raw); err != nil {
		return nil, PatientDEK{}, fmt.Errorf("generate patient key: %w", err)
	}
	w, err := k.wrapDEK(kk, tenantID, patientID, raw)
	if err != nil {
		return nil, PatientDEK{}, err
	}
	return raw, PatientDEK{TenantID: tenantID, PatientID: patientID, KEKVersion: kk.version, Wrapped: w, Created: k.now()}, nil
}

// batchPutter is a Store that inserts many patients' keys in one write
// (the SQL store); others get them one by one.
type batchPutter interface {
	PutPatientDEKs(ctx context.Context, ks []PatientDEK) error
}

// CreatePatientKeys creates the keys of new patients in one write where the
// store allows it, instead of one write per patient on first Seal: for bulk
// registration (synthetic data). It fails with ErrExists, and creates none
// on the SQL store, when any of the patients has a key already.
func (k *Keyring) CreatePatientKeys(ctx context.Context, tenantID string, patientIDs []string) error {
	kk, err := k.currentKEK(ctx, tenantID)
	if err != nil {
		return err
	}
	epoch := k.cache.snapshot()
	rows := make([]PatientDEK, len(patientIDs))
	raws := make([][]byte, len(patientIDs))
	for i, pid := range patientIDs {
		if err := checkIDs(tenantID, pid); err != nil {
			return err
		}
		if raws[i], rows[i], err = k.newDEK(kk, tenantID, pid); err != nil {
			return err
		}
	}
	if bp, ok := k.store.(batchPutter); ok {
		err = bp.PutPatientDEKs(ctx, rows)
	} else {
		for _, r := range rows {
			if err = k.store.PutPatientDEK(ctx, r); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("keys: create patient keys: %w", err)
	}
	for i, pid := range patientIDs {
		e, err := newDEKEntry(cacheKey{tenant: tenantID, patient: pid}, raws[i])
		if err != nil {
			return err
		}
		k.cache.put(epoch, e)
	}
	return nil
}

func (k *Keyring) wrapDEK(kk kek, tenantID, patientID string, raw []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(k.rand, nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return sealWith(kk.e.aead, kk.e.id, nonce, raw, patientKeyAD(tenantID, patientID)), nil
}

func (k *Keyring) unwrapDEK(ctx context.Context, d PatientDEK) ([]byte, error) {
	kk, err := k.kekVersion(ctx, d.TenantID, d.KEKVersion)
	if err != nil {
		return nil, err
	}
	id, err := parseHeader(d.Wrapped)
	if err != nil {
		return nil, err
	}
	if id != kk.e.id {
		return nil, fmt.Errorf("%w: patient key of tenant %s is not wrapped by key version %d", ErrDecrypt, d.TenantID, d.KEKVersion)
	}
	raw, err := openWith(kk.e.aead, d.Wrapped, patientKeyAD(d.TenantID, d.PatientID))
	if err != nil {
		return nil, fmt.Errorf("unwrap patient key of tenant %s: %w", d.TenantID, err)
	}
	return raw, nil
}

// currentKEK returns the tenant's newest KEK version, creating version 1 for
// a new tenant. It reads the store rather than the cache so a patient key is
// never wrapped by a version another process has already rotated away from
// (and possibly deleted).
func (k *Keyring) currentKEK(ctx context.Context, tenantID string) (kek, error) {
	for range 4 {
		rows, err := k.store.TenantKEKs(ctx, tenantID)
		if err != nil {
			return kek{}, err
		}
		if len(rows) > 0 {
			return k.unwrapKEK(ctx, rows[len(rows)-1])
		}
		kk, err := k.newKEK(ctx, tenantID, 1)
		if errors.Is(err, ErrExists) {
			continue
		}
		return kk, err
	}
	return kek{}, fmt.Errorf("keys: tenant %s key kept changing; retry", tenantID)
}

// newKEK creates and stores the tenant's KEK version; ErrExists if another
// process stored that version first.
func (k *Keyring) newKEK(ctx context.Context, tenantID string, version int) (kek, error) {
	raw := make([]byte, keySize)
	if _, err := io.ReadFull(k.rand, raw); err != nil {
		return kek{}, fmt.Errorf("generate tenant key: %w", err)
	}
	w, err := k.master.Wrap(ctx, raw, tenantKeyAD(tenantID, version))
	if err != nil {
		return kek{}, fmt.Errorf("wrap tenant key: %w", err)
	}
	row := TenantKEK{TenantID: tenantID, Version: version, MasterID: k.master.ID(), Wrapped: w, Created: k.now()}
	epoch := k.cache.snapshot()
	if err := k.store.PutTenantKEK(ctx, row); err != nil {
		return kek{}, err
	}
	return k.kekEntry(epoch, tenantID, version, raw)
}

// kekVersion returns one unwrapped version of the tenant's KEK.
func (k *Keyring) kekVersion(ctx context.Context, tenantID string, version int) (kek, error) {
	if e, ok := k.cache.get(cacheKey{tenant: tenantID, version: version}); ok {
		return kek{version: version, e: e}, nil
	}
	rows, err := k.store.TenantKEKs(ctx, tenantID)
	if err != nil {
		return kek{}, err
	}
	for _, r := range rows {
		if r.Version == version {
			return k.unwrapKEK(ctx, r)
		}
	}
	return kek{}, fmt.Errorf("tenant %s key version %d: %w", tenantID, version, ErrNotFound)
}

func (k *Keyring) unwrapKEK(ctx context.Context, r TenantKEK) (kek, error) {
	if e, ok := k.cache.get(cacheKey{tenant: r.TenantID, version: r.Version}); ok {
		return kek{version: r.Version, e: e}, nil
	}
	epoch := k.cache.snapshot()
	raw, err := k.master.Unwrap(ctx, r.Wrapped, tenantKeyAD(r.TenantID, r.Version))
	if err != nil {
		return kek{}, fmt.Errorf("unwrap tenant %s key version %d (master %s): %w", r.TenantID, r.Version, r.MasterID, err)
	}
	return k.kekEntry(epoch, r.TenantID, r.Version, raw)
}

func (k *Keyring) kekEntry(epoch uint64, tenantID string, version int, raw []byte) (kek, error) {
	a, err := newAEAD(raw)
	if err != nil {
		return kek{}, err
	}
	e := &cacheEntry{key: cacheKey{tenant: tenantID, version: version}, aead: a, id: versionID(version)}
	k.cache.put(epoch, e)
	return kek{version: version, e: e}, nil
}
